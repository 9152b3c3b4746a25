"""Build-time OpenMP detection: compile, link and run a small OpenMP program.

Design: a header check is not enough (a compiler may accept ``-fopenmp`` but
ship no runtime to link against), so the probe builds and runs a real program
with the same compiler and flags the extensions will use. The result decides
whether the extensions get OpenMP flags or a serial build.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap

PROBE_SOURCE = textwrap.dedent(
    """\
    #include <omp.h>
    #include <stdio.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += 1;
        printf("%d %d\\n", n, omp_get_max_threads());
        return n >= 1 ? 0 : 1;
    }
    """
)


def openmp_flags(compiler):
    """Compile and link flags that enable OpenMP for this compiler type."""
    if compiler.compiler_type == "msvc":
        return ["/openmp"], []
    if sys.platform == "darwin":
        # Apple clang needs the preprocessor flag and an explicit libomp.
        return ["-Xpreprocessor", "-fopenmp"], ["-lomp"]
    return ["-fopenmp"], ["-fopenmp"]


def probe_openmp(compiler, extra_compile_args=()):
    """Return (ok, message). ok is True when an OpenMP program builds and runs."""
    compile_flags, link_flags = openmp_flags(compiler)
    tmp = tempfile.mkdtemp(prefix="fastnn-omp-")
    cwd = os.getcwd()
    try:
        os.chdir(tmp)
        with open("probe.c", "w") as f:
            f.write(PROBE_SOURCE)
        objects = compiler.compile(
            ["probe.c"], output_dir=tmp,
            extra_postargs=list(extra_compile_args) + compile_flags,
        )
        compiler.link_executable(objects, "probe", output_dir=tmp,
                                 extra_postargs=link_flags)
        exe = os.path.join(tmp, "probe" + (".exe" if os.name == "nt" else ""))
        out = subprocess.run([exe], capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            return False, "the OpenMP test program failed to run: " + out.stderr.strip()
        return True, "OpenMP test program ran (threads, max threads = %s)" % out.stdout.strip()
    except Exception as exc:  # any compile, link or run failure means no OpenMP
        return False, "%s: %s" % (type(exc).__name__, exc)
    finally:
        os.chdir(cwd)
        shutil.rmtree(tmp, ignore_errors=True)
