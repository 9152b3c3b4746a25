"""Thread counts: fastnn's OpenMP threads and the BLAS threads it uses.

Design: fastnn never caches a thread count. ``n_threads=None`` means the
OpenMP runtime's current limit, read on every call, so ``OMP_NUM_THREADS``,
:func:`set_num_threads` and ``threadpoolctl.threadpool_limits`` all take
effect the standard way. The matrix products go through SciPy's BLAS, a
second thread pool: during a fastnn call it is held to at most fastnn's own
thread count (never raised above the limit the user gave it), so the two pools
do not run more threads than asked for between them.
"""

import numbers
import os
import threading
from contextlib import contextmanager

from fastnn import _openmp


def get_num_threads():
    """The number of threads fastnn's kernels use when ``n_threads`` is None."""
    return _openmp.max_threads()


def set_num_threads(n):
    """Set the number of threads fastnn's kernels use by default.

    This sets the OpenMP runtime's limit (as ``omp_set_num_threads`` does), the
    same knob ``OMP_NUM_THREADS`` and threadpoolctl act on."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError("the number of threads must be an integer, got %r" % (n,))
    if n < 1:
        raise ValueError("the number of threads must be >= 1, got %r" % (n,))
    _openmp.set_max_threads(int(n))


MAX_THREADS = 2**31 - 1


def resolve_n_threads(n_threads):
    """scikit-learn's rules: None -> the current limit; n >= 1 -> n;
    n < 0 -> cpu_count + 1 + n (so -1 is every core); 0 is an error."""
    if n_threads is None:
        return get_num_threads()
    if isinstance(n_threads, bool) or not isinstance(n_threads, numbers.Integral):
        raise TypeError("n_threads must be an integer or None, got %r" % (n_threads,))
    n_threads = int(n_threads)
    if n_threads == 0:
        raise ValueError("n_threads=0 is not valid; use None, a positive count, or -1 for all cores")
    if n_threads < 0:
        return max(1, (os.cpu_count() or 1) + 1 + n_threads)
    if n_threads > MAX_THREADS:  # the kernels take the count as a C int
        raise ValueError("n_threads=%d is more than the %d threads fastnn can start"
                         % (n_threads, MAX_THREADS))
    return n_threads


_blas_lock = threading.Lock()
_blas_libs = None


def scipy_blas_controllers():
    """threadpoolctl controllers of the BLAS that scipy.linalg.cython_blas calls
    (found once; NumPy's own BLAS copy is left alone)."""
    global _blas_libs
    if _blas_libs is None:
        with _blas_lock:
            if _blas_libs is None:
                import scipy.linalg.cython_blas  # noqa: F401  (load the library first)
                from threadpoolctl import ThreadpoolController
                libs = ThreadpoolController().select(user_api="blas").lib_controllers
                scipy_libs = [lib for lib in libs
                              if "numpy" not in os.path.dirname(lib.filepath).lower()]
                _blas_libs = scipy_libs or list(libs)
    return _blas_libs


def _thread_count_functions(lib):
    """(get, set) of a BLAS's process-wide thread count, callable from any
    thread. For OpenBLAS these are its own C functions (possibly with a
    `scipy_` prefix): threadpoolctl lets only one Python thread change an
    OpenBLAS pool and silently ignores the others, which would leave a fit in
    a second thread with a threaded BLAS under fastnn's threads."""
    if lib.internal_api == "openblas":
        for prefix in ("", "scipy_"):
            for suffix in ("", "64_"):
                get = getattr(lib.dynlib, prefix + "openblas_get_num_threads" + suffix, None)
                put = getattr(lib.dynlib, prefix + "openblas_set_num_threads" + suffix, None)
                if get is not None and put is not None:
                    return get, put
    return lib.get_num_threads, lib.set_num_threads


_single_lock = threading.Lock()
_single_depth = 0        # how many fastnn calls, in any thread, need the BLAS on one thread
_single_saved = []       # (set function, thread count to restore) taken by the first of them


@contextmanager
def blas_single_thread():
    """Hold SciPy's BLAS to one thread while any fastnn kernel runs.

    fastnn's own OpenMP threads make the BLAS calls (one per GEMM block), so the
    BLAS must not start threads of its own. The limit is process-wide, so it is
    reference-counted across Python threads: the first caller saves the user's
    setting and the last one restores it. Two fits running at once in two
    threads therefore never see the BLAS switch back to several threads in the
    middle of a call, which would change their results."""
    global _single_depth
    with _single_lock:
        if _single_depth == 0:
            _single_saved.clear()
            for lib in scipy_blas_controllers():
                get, put = _thread_count_functions(lib)
                try:
                    current = get()
                except Exception:  # some runtimes cannot report; leave them alone
                    continue
                if current is not None and current > 1:
                    put(1)
                    _single_saved.append((put, current))
        _single_depth += 1
    try:
        yield
    finally:
        with _single_lock:
            _single_depth -= 1
            if _single_depth == 0:
                for put, previous in _single_saved:
                    put(previous)
                _single_saved.clear()


def blas_threads(n):
    """Hold SciPy's BLAS to one thread inside the block (n must be 1: every
    fastnn GEMM runs single-threaded on fastnn's own threads)."""
    if n != 1:
        raise ValueError("fastnn runs the BLAS on one thread only")
    return blas_single_thread()
