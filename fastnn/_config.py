"""show_config(): how this fastnn was built and what it will run on."""

import sys

from fastnn import _isa, _kernels, _openmp
from fastnn._threads import scipy_blas_controllers, get_num_threads
from fastnn._version import __version__


def config_info():
    """The facts show_config() prints, as a dict."""
    import numpy
    import scipy
    import threadpoolctl

    info = {
        "fastnn": __version__,
        "python": sys.version.split()[0],
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "openmp": _openmp.openmp_enabled(),
        "build": _kernels.build_config(),
        "threads": get_num_threads(),
        "isa": _isa.get_isa(),
        "isas_available": _isa.available_isas(),
        "gemm_path": _isa.get_gemm_path(),
        "gemm_path_in_use": _gemm_path_in_use(),
    }
    runtimes = [lib for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "openmp"]
    info["openmp_runtime"] = ", ".join("%s (%s)" % (r["prefix"], r["filepath"]) for r in runtimes) \
        or "none loaded"
    info["blas"] = ", ".join("%s %s, %s, %d threads (%s)"
                             % (lib.internal_api, lib.version, getattr(lib, "threading_layer", "?"),
                                lib.num_threads, lib.filepath)
                             for lib in scipy_blas_controllers()) or "not found"
    return info


def _gemm_path_in_use():
    descriptions = {_kernels.GEMM_PATHS["packed"]: "packed micro-kernels (src_c/gemm.inc.c)",
                    _kernels.GEMM_PATHS["blas"]: "the BLAS, one single-threaded call per block"}
    return descriptions[_kernels.gemm_path_in_use()]


def show_config(file=None):
    """Print fastnn's version, OpenMP status and runtime, BLAS, threads and build flags."""
    info = config_info()
    out = file or sys.stdout
    print("fastnn %s (Python %s, NumPy %s, SciPy %s)"
          % (info["fastnn"], info["python"], info["numpy"], info["scipy"]), file=out)
    if info["openmp"]:
        print("OpenMP: on, runtime %s" % info["openmp_runtime"], file=out)
    else:
        print("OpenMP: OFF (built without OpenMP; every kernel runs on one thread)", file=out)
    print("threads: %d (fastnn.set_num_threads, OMP_NUM_THREADS or threadpoolctl change it)"
          % info["threads"], file=out)
    print("instruction set of the kernels: %s (this CPU runs: %s; FASTNN_ISA selects)"
          % (info["isa"], ", ".join(info["isas_available"])), file=out)
    print("matrix products: %s (FASTNN_GEMM=%s)" % (info["gemm_path_in_use"], info["gemm_path"]),
          file=out)
    print("BLAS (via scipy.linalg.cython_blas): %s" % info["blas"], file=out)
    print("build: %s" % info["build"], file=out)
