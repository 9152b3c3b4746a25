/* allsum.c: the sum of a buffer over the processes of an MPI communicator,
 * called from inside the data-parallel training loop (train.inc.c).
 *
 * Design: fastnn is built without MPI headers or libraries, so that
 * `pip install .` needs no MPI. The MPI functions are those of the library
 * mpi4py has loaded, found at run time (fastnn/_distributed.py), and reach
 * this file as addresses with the communicator's, datatype's and operation's
 * handles as integers. The MPI standard leaves a handle's C type to the
 * implementation: MPICH's handles are ints, Open MPI's and the standard
 * ABI's are pointers. Both are passed in integer registers, but a call must
 * still name the right type, so the functions are called through one of two
 * prototypes chosen by the handles' size. MPI counts are ints: a longer
 * buffer is summed in pieces of at most max_count elements. */
#include <limits.h>

#include "fnn.h"

typedef int (*reduce_i32)(const void *, void *, int, int32_t, int32_t, int, int32_t);
typedef int (*bcast_i32)(void *, int, int32_t, int, int32_t);
typedef int (*allreduce_i32)(const void *, void *, int, int32_t, int32_t, int32_t);
typedef int (*reduce_ptr)(const void *, void *, int, intptr_t, intptr_t, int, intptr_t);
typedef int (*bcast_ptr)(void *, int, intptr_t, int, intptr_t);
typedef int (*allreduce_ptr)(const void *, void *, int, intptr_t, intptr_t, intptr_t);

static int sum_piece(fnn_allsum *s, char *buf, int count)
{
    const int root = s->rank == 0;
    const void *send = root ? s->in_place : buf;
    void *recv = root ? buf : NULL; /* significant at the root only */
    int err;
    if (s->handle_bytes == 4) {
        const int32_t comm = (int32_t)s->comm, type = (int32_t)s->datatype,
                      op = (int32_t)s->op;
        if (s->allreduce)
            return ((allreduce_i32)s->allreduce_fn)(s->in_place, buf, count, type, op, comm);
        err = ((reduce_i32)s->reduce_fn)(send, recv, count, type, op, 0, comm);
        if (err != 0) return err;
        return ((bcast_i32)s->bcast_fn)(buf, count, type, 0, comm);
    }
    if (s->allreduce)
        return ((allreduce_ptr)s->allreduce_fn)(s->in_place, buf, count, (intptr_t)s->datatype,
                                                (intptr_t)s->op, (intptr_t)s->comm);
    err = ((reduce_ptr)s->reduce_fn)(send, recv, count, (intptr_t)s->datatype, (intptr_t)s->op,
                                     0, (intptr_t)s->comm);
    if (err != 0) return err;
    return ((bcast_ptr)s->bcast_fn)(buf, count, (intptr_t)s->datatype, 0, (intptr_t)s->comm);
}

int fnn_allsum_run(fnn_allsum *s, void *buf, int64_t count)
{
    char *p = (char *)buf;
    const int64_t most = s->max_count > 0 ? s->max_count : INT_MAX;
    if (s->n_procs <= 1) return FNN_OK;
    if (s->handle_bytes != 4 && s->handle_bytes != (int)sizeof(intptr_t)) return FNN_EINVAL;
    while (count > 0) {
        const int piece = (int)(count > most ? most : count);
        const int err = sum_piece(s, p, piece);
        if (err != 0) {
            s->error = err;
            return FNN_ECOMM;
        }
        p += (size_t)piece * (size_t)s->item_bytes;
        count -= piece;
    }
    return FNN_OK;
}
