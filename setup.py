"""Build fastnn's C/Cython extensions.

Environment switches (all optional):

FASTNN_OPENMP=auto|0|1   auto (default): probe the compiler and fall back to a
                         serial build with a loud warning; 0: never use OpenMP;
                         1: fail the build if OpenMP does not work.
FASTNN_NATIVE=1          add -march=native (private local builds only: such a
                         binary may crash with SIGILL on another CPU).
FASTNN_DEBUG_SYMBOLS=1   compile with -g instead of -g0.
FASTNN_CYTHON_DEBUG=1    turn Cython bounds checking back on.
FASTNN_SANITIZE=LIST     build with the given GCC/Clang sanitizers, e.g.
                         address,undefined: adds -fsanitize=LIST
                         -fno-omit-frame-pointer to compile and link, and -g
                         (for tests/run_sanitizers.sh; never for a wheel).
"""

import os
import sys
import sysconfig

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from build_tools.openmp_probe import openmp_flags, probe_openmp  # noqa: E402

C_SOURCES = ["src_c/kernels_f32.c", "src_c/kernels_f64.c", "src_c/common.c", "src_c/isa.c",
             "src_c/allsum.c"] + [
    # the elementwise loops, once per instruction set and dtype (src_c/fnn_isa.h)
    "src_c/isa_%s_%s.c" % (isa, dtype)
    for isa in ("generic", "avx2", "avx512") for dtype in ("f32", "f64")]


def _env_flag(name, default="0"):
    return os.environ.get(name, default).strip().lower()


def _sanitizers():
    """The sanitizer list of FASTNN_SANITIZE ("" or "0" for none)."""
    value = _env_flag("FASTNN_SANITIZE", "")
    if value in ("", "0"):
        return ""
    names = [n.strip() for n in value.split(",") if n.strip()]
    for name in names:
        if not all(c.isalnum() or c in "-_" for c in name):
            raise SystemExit("FASTNN_SANITIZE must be a comma-separated list of sanitizer "
                             "names such as address,undefined; got %r" % value)
    return ",".join(names)


class BuildExt(build_ext):
    """Adds compiler flags per compiler type and the OpenMP probe result."""

    def build_extensions(self):
        compiler = self.compiler
        msvc = compiler.compiler_type == "msvc"
        if msvc:
            base = ["/O2"]
        else:
            # No -ffast-math: NaN/inf detection and exact parity with the NumPy
            # reference depend on IEEE semantics. fp-contract=off keeps a*b+c
            # from becoming an FMA on some targets and not others. fastnn never
            # unmasks floating-point traps, so -fno-trapping-math changes no
            # value; it lets GCC turn the selects of the branch-free math
            # (src_c/vmath.inc.c) into vector blends instead of branches.
            base = ["-O3", "-std=c99", "-ffp-contract=off", "-fno-math-errno",
                    "-fno-trapping-math"]
            base.append("-g" if _env_flag("FASTNN_DEBUG_SYMBOLS") == "1" else "-g0")
            if _env_flag("FASTNN_NATIVE") == "1":
                base.append("-march=native")
        sanitize = _sanitizers()
        san_flags = []
        if sanitize:
            if msvc:
                raise SystemExit("FASTNN_SANITIZE is supported with GCC and Clang only")
            # the release optimization level, so the code checked is the code
            # shipped; frame pointers and -g give full stack traces; -fno-wrapv
            # undoes Python's -fwrapv so signed overflow is reported
            san_flags = ["-fsanitize=" + sanitize, "-fno-omit-frame-pointer"]
            base = [f for f in base if f != "-g0"] + ["-g", "-fno-wrapv"] + san_flags

        mode = _env_flag("FASTNN_OPENMP", "auto")
        if mode not in ("auto", "0", "1"):
            raise SystemExit("FASTNN_OPENMP must be auto, 0 or 1, got %r" % mode)
        omp_compile, omp_link = [], []
        if mode == "0":
            status = "disabled by FASTNN_OPENMP=0"
        else:
            ok, message = probe_openmp(compiler, [] if msvc else ["-std=c99"])
            if ok:
                omp_compile, omp_link = openmp_flags(compiler)
                status = "enabled"
            elif mode == "1":
                raise SystemExit(
                    "FASTNN_OPENMP=1 but OpenMP does not work with this compiler: " + message)
            else:
                status = "unavailable (" + message + ")"
                bar = "#" * 78
                print("\n%s\n# WARNING: fastnn is being built WITHOUT OpenMP: every kernel will run on one\n"
                      "# thread. Reason: %s\n%s\n" % (bar, message, bar), file=sys.stderr)
                if not msvc:
                    omp_compile = ["-fopenmp-simd"]  # keeps `omp simd` loops vectorized

        flags = base + omp_compile
        config = "openmp=%s; cflags=%s" % (status, " ".join(flags))
        for ext in self.extensions:
            ext.extra_compile_args = flags + list(ext.extra_compile_args)
            ext.extra_link_args = omp_link + san_flags + list(ext.extra_link_args)
            ext.define_macros = list(ext.define_macros) + [
                ("FASTNN_BUILD_CONFIG", '"%s"' % config.replace('"', "'")),
            ]
        print("fastnn build: " + config)
        super().build_extensions()


def extensions():
    include = ["src_c"]
    return [
        Extension("fastnn._kernels", ["fastnn/_kernels.pyx"] + C_SOURCES,
                  include_dirs=include, depends=[os.path.join("src_c", f)
                                                 for f in os.listdir("src_c")]),
        Extension("fastnn._openmp", ["fastnn/_openmp.pyx"], include_dirs=include,
                  depends=["src_c/fnn_omp.h"]),
    ]


directives = {
    "language_level": 3,
    "boundscheck": _env_flag("FASTNN_CYTHON_DEBUG") == "1",
    "wraparound": False,
    "initializedcheck": False,
    "cdivision": True,
    "embedsignature": True,
}

setup(
    ext_modules=cythonize(extensions(), compiler_directives=directives),
    cmdclass={"build_ext": BuildExt},
)
