# Design: the sum of a buffer over the processes of an MPI communicator, for
# the data-parallel training loop that sums the gradient arena between the
# gradient and apply phases of every step without returning to Python
# (src_c/allsum.c). fastnn is built without MPI: fastnn._distributed finds
# the MPI functions in the library mpi4py has loaded and hands their
# addresses and the handles over as integers.
# Included into _kernels.pyx.
from libc.stdint cimport intptr_t, uintptr_t


cdef class ProcessSum:
    """An in-place sum over the processes of a communicator, through the MPI
    library's MPI_Reduce and MPI_Bcast (allreduce=False: process 0 adds,
    then sends its bits to all) or MPI_Allreduce.

    reduce_fn, bcast_fn, allreduce_fn : the functions' addresses
    comm, datatype, op : the handles of the communicator, of MPI_FLOAT or
        MPI_DOUBLE (item_bytes 4 or 8) and of MPI_SUM, as integers
    in_place : the value of MPI_IN_PLACE
    handle_bytes : the size of an MPI handle: 4 (int handles, MPICH) or the
        size of a pointer (Open MPI, the MPI ABI)
    max_count : the most elements per MPI call (0: the largest int); a
        longer buffer is summed in pieces
    """
    cdef fnn_allsum s

    def __init__(self, uintptr_t reduce_fn, uintptr_t bcast_fn, uintptr_t allreduce_fn,
                 int64_t comm, int64_t datatype, int64_t op, intptr_t in_place,
                 int handle_bytes, int item_bytes, bint allreduce, int rank, int n_procs,
                 int max_count=0):
        if handle_bytes != 4 and handle_bytes != sizeof(void *):
            raise ValueError("ProcessSum: MPI handles of %d bytes are not supported (4 or %d)"
                             % (handle_bytes, sizeof(void *)))
        if item_bytes != 4 and item_bytes != 8:
            raise ValueError("ProcessSum: item_bytes must be 4 (float32) or 8 (float64)")
        if not (0 <= rank < n_procs):
            raise ValueError("ProcessSum: rank %d is not among %d processes" % (rank, n_procs))
        if max_count < 0:
            raise ValueError("ProcessSum: max_count must be >= 0 (0: no limit but MPI's)")
        if reduce_fn == 0 or bcast_fn == 0 or allreduce_fn == 0:
            raise ValueError("ProcessSum: an MPI function's address is missing")
        self.s.reduce_fn = <void *>reduce_fn
        self.s.bcast_fn = <void *>bcast_fn
        self.s.allreduce_fn = <void *>allreduce_fn
        self.s.comm = comm
        self.s.datatype = datatype
        self.s.op = op
        self.s.in_place = <void *>in_place
        self.s.handle_bytes = handle_bytes
        self.s.item_bytes = item_bytes
        self.s.allreduce = allreduce
        self.s.rank = rank
        self.s.n_procs = n_procs
        self.s.max_count = max_count
        self.s.error = 0

    @property
    def item_bytes(self):
        return self.s.item_bytes

    @property
    def error(self):
        """The MPI error code of the last call that failed (0: none failed)."""
        return self.s.error

    def sum(self, buf):
        """buf (a C-contiguous 1-D array of the datatype's size) <- its sum
        over the processes, in place. Returns the status: FNN_OK or FNN_ECOMM
        (the MPI code is then in error)."""
        cdef int st
        cdef void *p = _data(buf, b"f" if self.s.item_bytes == 4 else b"d")
        cdef int64_t n = buf.shape[0]
        if not buf.flags.writeable:
            raise ValueError("ProcessSum.sum: the buffer is read-only")
        with nogil:
            st = fnn_allsum_run(&self.s, p, n)
        return st
