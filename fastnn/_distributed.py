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
MPI_Allreduce instead (faster: measured 1.4-3x), whose identical result on
every process is then checked on the weights after every epoch. mpi4py is
imported only when a communicator is given.

The steps of an epoch run in C without returning to Python between them
(Net.train_shard_batches, src_c/allsum.c): the C loop calls the MPI library
mpi4py has loaded, through the addresses of its functions found here at run
time, so fastnn itself is built without MPI. Where they cannot be found (an
MPI library mpi4py opens itself rather than links to, or a platform whose
loader does not look into a module's dependencies), or with
FASTNN_MPI_LOOP=python, each step returns to Python for the sum through
mpi4py instead: the same calls on the same buffer, so the same bits
(docs/distributed.md, "Where the step returns to Python").
"""

from collections import namedtuple
import ctypes
import hashlib
import os
import time

import numpy as np

from fastnn import _kernels
from fastnn._collective import agree
from fastnn._epochs import next_run_length
from fastnn._threads import get_num_threads, resolve_n_threads
from fastnn._validation import is_finite

EpochPlan = namedtuple("EpochPlan", "rows positions starts counts")
EpochPlan.__doc__ = """This process's part of an epoch: rows (the positions,
among its own training rows, of its rows of every batch, batch after batch),
positions (where each of them lies in its batch: it keys the row's dropout
masks as in a one-process fit), and where each batch's part starts in rows
and how many rows it has."""

DistributedOutcome = namedtuple("DistributedOutcome", "failed_batch params_finite")


_NON_FINITE = _kernels.STATUS_CODES["enonfinite"]
_COMM_FAILED = _kernels.STATUS_CODES["ecomm"]

SUM_ENV_VAR = "FASTNN_MPI_SUM"
SUM_METHODS = ("reduce", "allreduce")
LOOP_ENV_VAR = "FASTNN_MPI_LOOP"
LOOPS = ("c", "python")
MPI_FUNCTIONS = ("MPI_Reduce", "MPI_Bcast", "MPI_Allreduce")


def _mpi():
    from mpi4py import MPI
    return MPI


def _choice(name, allowed):
    value = os.environ.get(name, "").strip().lower() or allowed[0]
    if value not in allowed:
        raise ValueError("%s must be %s, got %r" % (name, " or ".join(repr(a) for a in allowed),
                                                    os.environ[name]))
    return value


def sum_method():
    """How gradients are summed: FASTNN_MPI_SUM, "reduce" (Reduce + Bcast, the
    default) or "allreduce"."""
    return _choice(SUM_ENV_VAR, SUM_METHODS)


def step_loop():
    """Where the steps of an epoch loop: FASTNN_MPI_LOOP, "c" (in the C loop,
    the default, when the MPI functions can be found) or "python"."""
    return _choice(LOOP_ENV_VAR, LOOPS)


def mpi_function_addresses(MPI):
    """The addresses of MPI_FUNCTIONS in the MPI library mpi4py calls, or None
    when they cannot be found: looked up through mpi4py's extension module,
    whose dependencies include the library it links to, then among the
    symbols loaded globally."""
    for path in (MPI.__file__, None):
        try:
            lib = ctypes.CDLL(path)
            return tuple(ctypes.cast(getattr(lib, name), ctypes.c_void_p).value
                         for name in MPI_FUNCTIONS)
        except (OSError, AttributeError):
            continue
    return None


def process_sum(comm, dtype, allreduce):
    """A _kernels.ProcessSum over comm for arrays of dtype (float32 or
    float64), or None when the MPI functions or handles cannot be used from C."""
    MPI = _mpi()
    addresses = mpi_function_addresses(MPI)
    handle_bytes = {MPI._sizeof(MPI.Comm), MPI._sizeof(MPI.Datatype), MPI._sizeof(MPI.Op)}
    if addresses is None or len(handle_bytes) != 1 or not all(addresses):
        return None
    datatype = MPI.FLOAT if np.dtype(dtype) == np.float32 else MPI.DOUBLE
    size = handle_bytes.pop()
    try:
        return _kernels.ProcessSum(*addresses, *(signed_handle(h.handle, size) for h in
                                                 (comm, datatype, MPI.SUM)),
                                   int(MPI.IN_PLACE), size, np.dtype(dtype).itemsize,
                                   allreduce, comm.Get_rank(), comm.Get_size())
    except ValueError:  # handles of a size the C side does not call with
        return None


def signed_handle(handle, size):
    """An MPI handle (mpi4py's .handle) as the signed integer of its C type's
    size in bytes, which the C sum takes. mpi4py reports MPICH's int handles
    as unsigned 64-bit values, sign-extended: a communicator made by Dup or
    Split, 0x84000001, is 0xFFFFFFFF84000001, the int -2080374783."""
    bits = 8 * size
    value = handle & ((1 << bits) - 1)
    return value - (1 << bits) if value >> (bits - 1) else value


class Group:
    """The processes of a communicator that train one model together, and the
    sizes of their shards."""

    def __init__(self, comm):
        MPI = _mpi()
        if not isinstance(comm, MPI.Intracomm):
            raise TypeError("comm must be an mpi4py intracommunicator (such as "
                            "mpi4py.MPI.COMM_WORLD), got %r" % (comm,))
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        # settings every process must share: a bad or a differing one raises on all
        self.method, self.loop = self.agree(lambda: (sum_method(), step_loop()))
        self.check_same((self.method, self.loop), "(%s, %s) settings" % (SUM_ENV_VAR,
                                                                          LOOP_ENV_VAR),
                        "give every process the same environment")
        self.sizes = None
        self.offset = self.n_total = 0
        self._process_sums = {}
        # steps per call into the C loop, carried from epoch to epoch
        self.run_length = 1

    def set_shard(self, n_local):
        """Exchange the shard sizes: the global rows, and where this shard
        starts among them."""
        self.sizes = np.array(self.comm.allgather(int(n_local)), dtype=np.int64)
        self.offset = int(self.sizes[:self.rank].sum())
        self.n_total = int(self.sizes.sum())
        return self.n_total

    def agree(self, fn):
        """Run fn() on every process and return its result; when it raises on
        any process, every process raises (fastnn._collective.agree)."""
        return agree(self.comm, fn)

    def n_threads(self, n_threads):
        """This process's OpenMP threads for a fit's n_threads: as given, or
        for None fastnn.get_num_threads() but at most this process's share of
        the cores it may run on, the cores being shared with the processes of
        the group on this machine that may run on any of them. MPICH starts
        its processes unbound, each of which would otherwise start a thread
        per core: measured here, 2 processes of 2 threads on 2 cores took 48x
        as long per epoch as 2 of 1 thread (docs/distributed.md). Launchers
        that bind each process to its own cores (Open MPI, Slurm) leave every
        process its own. Called by every process, whatever its n_threads; a
        bad n_threads on one process raises on all."""
        MPI = _mpi()
        cores = _usable_cores()
        local = self.comm.Split_type(MPI.COMM_TYPE_SHARED)
        try:
            everyone = local.allgather(cores)
        finally:
            local.Free()
        share = core_share(cores, everyone)
        return self.agree(lambda: min(get_num_threads(), share) if n_threads is None
                          else resolve_n_threads(n_threads))

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

    def c_sum(self, dtype):
        """The ProcessSum the C loop sums dtype's gradients with, or None (the
        steps then return to Python for the sum). The same answer on every
        process: the C loop only when every process can run it."""
        key = np.dtype(dtype).str
        if key not in self._process_sums:
            found = None
            if self.loop == "c":
                found = process_sum(self.comm, dtype, self.method == "allreduce")
            everywhere = all(self.comm.allgather(found is not None))
            self._process_sums[key] = found if everywhere else None
        return self._process_sums[key]

    def raise_comm_error(self, code):
        """The RuntimeError for an MPI call from the C loop that returned code."""
        MPI = _mpi()
        raise RuntimeError("summing the gradients over the processes failed in MPI (error "
                           "%d: %s)" % (code, MPI.Get_error_string(code)))

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

    def check_same_options(self, options, what, hint):
        """Raise ValueError on every process unless every process gave the same
        options (a dict {name: value}, compared as option_text), naming the
        options that differ and the processes."""
        texts = {k: option_text(v) for k, v in options.items()}
        everyone = self.comm.allgather(texts)
        for rank, other in enumerate(everyone):
            differ = [k for k in sorted(set(other) | set(everyone[0]))
                      if other.get(k) != everyone[0].get(k)]
            if differ:
                theirs = ", ".join("%s=%s" % (k, other.get(k)) for k in differ)
                ours = ", ".join("%s=%s" % (k, everyone[0].get(k)) for k in differ)
                raise ValueError("the processes' %s differ: process 0 has %s, process %d has "
                                 "%s; %s" % (what, ours, rank, theirs, hint))

    def check_same(self, value, what, hint, show=repr):
        """Raise ValueError on every process unless value (compared with ==,
        shown with show) is the same on every process, naming the first
        process that differs from process 0."""
        everyone = self.comm.allgather(value)
        for rank, other in enumerate(everyone):
            if other != everyone[0]:
                raise ValueError("the processes' %s differ: process 0 has %s, process %d has "
                                 "%s; %s" % (what, show(everyone[0]), rank, show(other), hint))

    def check_identical(self, arrays, what="the parameters", hint=""):
        """Raise RuntimeError unless the arrays have the same bytes on every
        process (compared by digest); hint ends the message."""
        digest = hashlib.sha256()
        for a in arrays:
            digest.update(np.ascontiguousarray(a).tobytes())
        digests = self.comm.allgather(digest.hexdigest())
        differ = [r for r, d in enumerate(digests) if d != digests[0]]
        if differ:
            raise RuntimeError("%s differ between processes: process %d's are not process "
                               "0's%s" % (what, differ[0], hint))

    def squared_sums(self, w, Y, pred, first=()):
        """The sums of R^2 over the processes' validation shards, per output:
        the weighted squared residuals and the weighted squares about the
        global weighted mean of Y. The mean needs every shard's sums, so two
        sums over the processes; `first` (this process's other sums) goes with
        the first one.

        w : (n, 1) row weights; Y, pred : (n, k) float64 (n may be 0)

        Returns (first summed, weight sum, residual sums (k,), centered sums
        (k,)); ValueError on every process when the shards have no weight."""
        k, n_first = Y.shape[1], len(first)
        sums = self.sum_(np.concatenate([np.asarray(first, dtype=np.float64), [w.sum()],
                                         np.sum(w * (pred - Y) ** 2, axis=0),
                                         np.sum(w * Y, axis=0)]))
        weight = sums[n_first]
        if weight == 0:
            raise ValueError("the validation shards have no weight: there is nothing to "
                             "evaluate")
        mean = sums[n_first + 1 + k:] / weight
        centered = self.sum_(np.ascontiguousarray(np.sum(w * (Y - mean) ** 2, axis=0),
                                                  dtype=np.float64))
        return sums[:n_first], weight, sums[n_first + 1:n_first + 1 + k], centered


def core_share(cores, everyone):
    """How many threads a process that may run on `cores` keeps: its cores
    divided among the processes (everyone: each one's cores, its own
    included) that may run on any of them, at least 1."""
    return max(1, len(cores) // sum(1 for other in everyone if other & cores))


def _usable_cores():
    """The CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return frozenset(os.sched_getaffinity(0))
    return frozenset(range(os.cpu_count() or 1))


def option_text(value):
    """An option as text that processes compare: an object with a
    configuration (an optimizer, a loss) by its class and configuration, a
    dict whatever its order, anything else by its repr."""
    if hasattr(value, "get_config"):
        return "%s(%s)" % (type(value).__name__, option_text(value.get_config()))
    if isinstance(value, dict):
        return "{%s}" % ", ".join(sorted("%r: %s" % (k, option_text(v))
                                         for k, v in value.items()))
    return repr(value)


def run_epoch(group, net, arena, X, Y, rows, plan, denoms, lrs, losses, nt,
              sample_weight=None, after_batch=None, l2_losses=None):
    """Every batch of one data-parallel epoch (len(lrs) of them): this
    process's rows of the batch through the gradient phase, the gradient
    arena summed over the processes, then the apply phase; in calls of about
    fastnn._epochs.RUN_SECONDS into the C loop, or step by step from Python
    (step_loop()).

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
    data_loss = np.zeros(n_batches, dtype=np.float64)
    l2_loss = np.zeros(n_batches, dtype=np.float64) if l2_losses is None else l2_losses
    l2_loss[:] = 0
    denoms = np.ascontiguousarray(denoms, dtype=np.float64)
    c_sum = group.c_sum(arena.params.dtype)
    if c_sum is not None:
        failed = _c_steps(group, net, X, Y, rows, plan, denoms, lrs, data_loss, l2_loss, nt,
                          sample_weight, after_batch, c_sum)
    else:
        failed = _python_steps(group, net, arena.grads, X, Y, rows, plan, denoms, lrs,
                               data_loss, l2_loss, nt, sample_weight, after_batch)
    losses[:] = group.sum_(data_loss) + l2_loss
    return DistributedOutcome(failed, is_finite(arena.params, nt))


def _c_steps(group, net, X, Y, rows, plan, denoms, lrs, data_loss, l2_loss, nt,
             sample_weight, after_batch, c_sum):
    """The steps in calls into the C loop, which sums with c_sum between the
    two phases of a step; returns the failed batch or None. The calls start
    at the run length the group's last epoch reached."""
    first, n_batches = 0, lrs.shape[0]
    while first < n_batches:
        run = group.run_length
        n = min(run, n_batches - first)
        started = time.perf_counter()
        status, done = net.train_shard_batches(
            X, Y, rows, plan.positions, plan.starts, plan.counts, denoms, first, n,
            lrs[first:first + n], data_loss[first:first + n], l2_loss[first:first + n], nt,
            c_sum, sample_weight)
        if status == _COMM_FAILED:
            group.raise_comm_error(c_sum.error)
        if status == _NON_FINITE:
            return first + done
        first += n
        if n == run:  # a shorter final call says little about the speed
            group.run_length = next_run_length(run, time.perf_counter() - started)
        if after_batch is not None:
            after_batch(first)
    return None


def _python_steps(group, net, grads, X, Y, rows, plan, denoms, lrs, data_loss, l2_loss, nt,
                  sample_weight, after_batch):
    """The steps one at a time, the gradient arena grads summed through
    mpi4py between the two C calls of a step; returns the failed batch or
    None."""
    for b in range(lrs.shape[0]):
        if denoms[b] == 0:
            continue
        data_loss[b] = net.train_grad(X, Y, rows, plan.positions, plan.starts[b],
                                      plan.counts[b], denoms[b], nt, sample_weight)
        group.sum_(grads)
        bad, l2_loss[b] = net.train_apply(denoms[b], lrs[b], nt)
        if bad:
            return b
        if after_batch is not None:
            after_batch(b + 1)
    return None
