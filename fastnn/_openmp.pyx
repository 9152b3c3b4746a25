# Design: the OpenMP runtime as fastnn sees it. The thread limit is read from
# the runtime on every call (omp_get_max_threads), so OMP_NUM_THREADS,
# fastnn.set_num_threads and threadpoolctl's limits all act the standard way;
# in a build without OpenMP every answer is the serial one.

cdef extern from "fnn_omp.h" nogil:
    int FNN_HAVE_OPENMP
    int fnn_omp_max_threads() noexcept
    void fnn_omp_set_threads(int n) noexcept


def openmp_enabled():
    """True when fastnn was compiled with OpenMP."""
    return bool(FNN_HAVE_OPENMP)


def max_threads():
    """The OpenMP runtime's current thread limit (1 without OpenMP)."""
    return fnn_omp_max_threads()


def set_max_threads(int n):
    """Set the OpenMP runtime's thread limit for regions started by this thread."""
    fnn_omp_set_threads(n)
