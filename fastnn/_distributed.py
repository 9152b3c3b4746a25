"""Synchronous data-parallel training over MPI: one model trained by several
processes, each holding a shard of the rows (docs/distributed.md).

Design: the global data set is the concatenation of the processes' shards in
rank order; only the shard sizes are exchanged (one allgather per fit). Every
process draws the same permutation of the global rows from the model's seed,
so batch b is the same rows everywhere, and each process runs the rows of
batch b that lie in its shard. A step is split in two C calls
(src_c/train.inc.c): the gradient phase leaves this process's part of the
batch-mean gradient in the gradient arena (its rows' sum over the whole
batch's rows or weight sum), the arena is summed over the processes in place,
and the apply phase (L2, finiteness check, clipping, optimizer) runs on the
sum, identical everywhere, so every process takes the same step.

The sum is MPI_Reduce to rank 0 followed by MPI_Bcast, not MPI_Allreduce: an
allreduce may add the terms in a different order on different processes,
which gives weights that differ in the last bits; a reduce computes one sum,
in an order fixed by the process count and message size, and the broadcast
copies its bits. Both calls work on the arena itself (MPI_IN_PLACE at the
root), with no copy. FASTNN_MPI_SUM=allreduce selects an in-place
MPI_Allreduce instead (faster: measured 1.5-3x), whose identical result on
every process is then checked on the weights after every epoch. mpi4py is
imported only when a communicator is given.
"""

from collections import namedtuple
import hashlib
import os

import numpy as np

from fastnn._validation import is_finite

EpochPlan = namedtuple("EpochPlan", "rows positions starts counts")
EpochPlan.__doc__ = """This process's part of an epoch: rows (the positions,
among its own training rows, of its rows of every batch, batch after batch),
positions (where each of them lies in its batch: it keys the row's dropout
masks as in a one-process fit), and where each batch's part starts in rows
and how many rows it has."""

DistributedOutcome = namedtuple("DistributedOutcome", "failed_batch params_finite")


SUM_ENV_VAR = "FASTNN_MPI_SUM"
SUM_METHODS = ("reduce", "allreduce")


def _mpi():
    from mpi4py import MPI
    return MPI


def sum_method():
    """How gradients are summed: FASTNN_MPI_SUM, "reduce" (Reduce + Bcast, the
    default) or "allreduce"."""
    value = os.environ.get(SUM_ENV_VAR, "").strip().lower() or "reduce"
    if value not in SUM_METHODS:
        raise ValueError("%s must be 'reduce' or 'allreduce', got %r"
                         % (SUM_ENV_VAR, os.environ[SUM_ENV_VAR]))
    return value


class Group:
    """The processes of a communicator that train one model together, and the
    sizes of their shards."""

    def __init__(self, comm):
        MPI = _mpi()
        if not isinstance(comm, MPI.Intracomm):
            raise TypeError("comm must be an mpi4py intracommunicator (such as "
                            "mpi4py.MPI.COMM_WORLD), got %r" % (comm,))
        self.comm = comm
        self.method = sum_method()
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        self.sizes = None
        self.offset = self.n_total = 0

    def set_shard(self, n_local):
        """Exchange the shard sizes: the global rows, and where this shard
        starts among them."""
        self.sizes = np.array(self.comm.allgather(int(n_local)), dtype=np.int64)
        self.offset = int(self.sizes[:self.rank].sum())
        self.n_total = int(self.sizes.sum())
        return self.n_total

    def agree(self, fn):
        """Run fn() on every process and return its result; when it raises on
        any process, every process raises (its own error, or one that names
        the process that failed), so none is left waiting in a collective."""
        try:
            result, error = fn(), None
        except Exception as exc:  # re-raised below, on every process
            result, error = None, exc
        messages = self.comm.allgather(None if error is None else
                                       "%s: %s" % (type(error).__name__, error))
        if error is not None:
            raise error
        failed = [(r, m) for r, m in enumerate(messages) if m is not None]
        if failed:
            raise ValueError("the fit failed on process %d of %d: %s"
                             % (failed[0][0], self.size, failed[0][1]))
        return result

    def allgather(self, value):
        return self.comm.allgather(value)

    def sum_(self, buf):
        """buf (a C-contiguous NumPy array) <- its sum over the processes, in
        place, with the same bits on every process (reduce to rank 0, then
        broadcast; or one allreduce, checked by check_epoch)."""
        if self.size == 1:
            return buf
        MPI = _mpi()
        if self.method == "allreduce":
            self.comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
            return buf
        if self.rank == 0:
            self.comm.Reduce(MPI.IN_PLACE, buf, op=MPI.SUM, root=0)
        else:
            self.comm.Reduce(buf, None, op=MPI.SUM, root=0)
        self.comm.Bcast(buf, root=0)
        return buf

    def broadcast(self, buf):
        """buf <- rank 0's buf, in place."""
        if self.size > 1:
            self.comm.Bcast(buf, root=0)
        return buf

    def check_epoch(self, arrays):
        """After an epoch summed with allreduce: the weights are the same on
        every process, or RuntimeError."""
        if self.method == "allreduce":
            self.check_identical(arrays, "the weights summed with %s=allreduce" % SUM_ENV_VAR)

    def plan(self, perm, batch_size, n_batches):
        """This process's part of the epoch whose global row order is perm:
        batch b is perm[b * batch_size:(b + 1) * batch_size], and this process
        takes its rows that lie in its shard, in batch order."""
        # every process must draw the same order (from the same seed): checked, since
        # different orders would still give every process the same weights
        self.check_identical([perm], "the epoch's orders of the rows")
        used = perm[:min(perm.shape[0], n_batches * batch_size)]
        n_local = int(self.sizes[self.rank])
        pos = np.flatnonzero((used >= self.offset) & (used < self.offset + n_local))
        rows = np.ascontiguousarray(used[pos] - self.offset, dtype=np.int64)
        counts = np.bincount(pos // batch_size, minlength=n_batches).astype(np.int64)
        starts = np.zeros(n_batches, dtype=np.int64)
        np.cumsum(counts[:-1], out=starts[1:])
        return EpochPlan(rows, np.ascontiguousarray(pos % batch_size, dtype=np.int64), starts,
                         counts)

    def batch_weight_sums(self, sample_weight, x_rows, plan):
        """The sample-weight sum of every global batch (float64, the same bits
        on every process): this process's sums, then their sum over the
        processes."""
        n_batches = plan.counts.shape[0]
        batch_of = np.repeat(np.arange(n_batches), plan.counts)
        local = np.bincount(batch_of, weights=sample_weight[x_rows].astype(np.float64),
                            minlength=n_batches)
        return self.sum_(np.ascontiguousarray(local, dtype=np.float64))

    def check_identical(self, arrays, what="the parameters"):
        """Raise RuntimeError unless the arrays have the same bytes on every
        process (compared by digest)."""
        digest = hashlib.sha256()
        for a in arrays:
            digest.update(np.ascontiguousarray(a).tobytes())
        digests = self.comm.allgather(digest.hexdigest())
        differ = [r for r, d in enumerate(digests) if d != digests[0]]
        if differ:
            raise RuntimeError("%s differ between processes: process %d's are not process "
                               "0's" % (what, differ[0]))


def run_epoch(group, net, arena, X, Y, rows, plan, denoms, lrs, losses, nt,
              sample_weight=None, after_batch=None, l2_losses=None):
    """Every batch of one data-parallel epoch (len(lrs) of them): this
    process's rows of the batch through the gradient phase, the gradient
    arena summed over the processes, then the apply phase.

    rows : (n,) int64, the rows of X of this process's part of every batch,
        batch after batch (plan.rows mapped to rows of X)
    plan : the EpochPlan giving each batch's part of rows
    denoms : (n_batches,) the global batches' rows or weight sums; a batch
        whose weights sum to 0 takes no step (loss 0) on any process
    losses : (n_batches,) OUT, the global batch losses (the same bits on every
        process); batches after a failed one are 0
    after_batch : called with the number of batches done, or None
    l2_losses : None, or (n_batches,) OUT: the L2 term of each batch's loss

    Returns a DistributedOutcome: failed_batch (None, or the batch whose
    summed gradient or a loss was not finite: no step was taken for it), and
    params_finite."""
    n_batches = lrs.shape[0]
    grads = arena.grads  # the arena the engine writes its gradient into
    data_loss = np.zeros(n_batches, dtype=np.float64)
    l2_loss = np.zeros(n_batches, dtype=np.float64) if l2_losses is None else l2_losses
    l2_loss[:] = 0
    failed = None
    for b in range(n_batches):
        if denoms[b] == 0:
            continue
        data_loss[b] = net.train_grad(X, Y, rows, plan.positions, plan.starts[b],
                                      plan.counts[b], denoms[b], nt, sample_weight)
        group.sum_(grads)
        bad, l2_loss[b] = net.train_apply(denoms[b], lrs[b], nt)
        if bad:
            failed = b
            break
        if after_batch is not None:
            after_batch(b + 1)
    losses[:] = group.sum_(data_loss) + l2_loss
    return DistributedOutcome(failed, is_finite(arena.params, nt))
