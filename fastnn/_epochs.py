"""One epoch of mini-batches through a training engine, in runs: the loop that
fastnn.Sequential's trainer and the scikit-learn estimators share.

Design: the engine (fastnn._backends) runs many batches per call with the GIL
released. A call lasts about RUN_SECONDS, so progress output moves and Ctrl-C
is answered quickly: a KeyboardInterrupt can only arrive between calls, when
the parameters are those of a completed step. Where a run starts and ends
changes no result: batch b of an epoch is always the rows
perm[b * batch_size:(b + 1) * batch_size].
"""

from collections import namedtuple
import time

import numpy as np

from fastnn._validation import is_finite

RUN_SECONDS = 0.1

EpochOutcome = namedtuple("EpochOutcome", "failed_batch params_finite run")
EpochOutcome.__doc__ = """How an epoch ended. failed_batch: None, or the batch whose loss
or gradient was not finite (the parameters then hold the last finite step);
params_finite: whether every parameter is finite at the end (an optimizer step
can overflow them without a non-finite loss); run: the run length to start
the next epoch with."""


def batch_rows(n_samples, batch_size, drop_last=False):
    """The rows of every batch of an epoch, as float64 (they weight the batch
    losses in the epoch's mean); the last batch is smaller unless drop_last."""
    n_batches = n_samples // batch_size if drop_last else -(-n_samples // batch_size)
    rows = np.full(n_batches, batch_size, dtype=np.float64)
    if not drop_last and n_samples % batch_size:
        rows[-1] = n_samples % batch_size
    return rows


def batch_weight_sums(sample_weight, perm, batch_size, n_batches):
    """The sample-weight sum of each of the first n_batches batches of an
    epoch (batch b is the rows perm[b * batch_size:(b + 1) * batch_size]), in
    float64."""
    rows = perm[:min(perm.shape[0], n_batches * batch_size)]
    starts = np.arange(n_batches) * batch_size
    return np.add.reduceat(sample_weight[rows].astype(np.float64), starts)


def next_run_length(run, elapsed):
    """Batches for the next call, scaled so that it lasts about RUN_SECONDS, at
    most 2 run + 64 so one fast call cannot make the next one very long."""
    return int(min(max(run * RUN_SECONDS / max(elapsed, 1e-6), 1), 2 * run + 64))


def run_epoch(net, params, X, Y, perm, batch_size, lrs, losses, nt, run=1,
              before_batch=None, after_run=None, sample_weight=None):
    """Every batch of one epoch (len(lrs) of them) through the engine `net`, in
    calls of about RUN_SECONDS, starting with `run` batches per call.

    lrs, losses : one entry per batch (the learning rate in, the batch's loss out)
    params : the parameter arena, checked for finiteness at the end
    before_batch : called with the batch index before each batch, which then
        runs on its own (for a caller that needs the state before every batch)
    after_run : called with (batches done, batches in this call) after each call
    sample_weight : None, or the (n_rows,) weights of X's rows (a batch whose
        weights sum to zero raises ZeroDivisionError, the parameters those of
        the step before it)

    Returns an EpochOutcome; the epoch stops at the first non-finite batch."""
    n_batches = lrs.shape[0]
    first = 0
    while first < n_batches:
        n = 1 if before_batch is not None else min(run, n_batches - first)
        if before_batch is not None:
            before_batch(first)
        started = time.perf_counter()
        bad, done = net.train_batches(X, Y, perm, batch_size, first, n,
                                      lrs[first:first + n], losses[first:first + n], nt,
                                      sample_weight)
        if bad:
            return EpochOutcome(first + done, is_finite(params, nt), run)
        first += n
        if n == run:  # a shorter final call says little about the speed
            run = next_run_length(run, time.perf_counter() - started)
        if after_run is not None:
            after_run(first, n)
    return EpochOutcome(None, is_finite(params, nt), run)


def run_stream_epoch(net, params, buffers, batch_size, lrs, losses, nt, run=1, after_run=None):
    """One epoch whose rows arrive in buffers (a fastnn.data source): each
    (X, Y, perm) runs through run_epoch as the next batches of the epoch.
    Every buffer but the last holds whole batches, so batch b of the epoch
    is the same whether its rows were read at once or in buffers; batches
    past len(lrs) (a drop_last remainder) are not run.

    Returns (EpochOutcome with the epoch's batch numbering, None or the failed
    buffer as (X, Y, perm, its failed batch))."""
    n_batches, done = lrs.shape[0], 0
    for X, Y, perm in buffers:
        n = min(-(-perm.shape[0] // batch_size), n_batches - done)
        if n <= 0:
            break
        report = None if after_run is None else \
            (lambda first, k, offset=done: after_run(offset + first, k))
        outcome = run_epoch(net, params, X, Y, perm, batch_size, lrs[done:done + n],
                            losses[done:done + n], nt, run, after_run=report)
        run = outcome.run
        if outcome.failed_batch is not None or not outcome.params_finite:
            failed = None if outcome.failed_batch is None else done + outcome.failed_batch
            return (EpochOutcome(failed, outcome.params_finite, run),
                    (X, Y, perm, outcome.failed_batch))
        done += n
    if done != n_batches:
        raise RuntimeError("the source gave %d batches of the epoch's %d: it changed since "
                           "training started" % (done, n_batches))
    return EpochOutcome(None, True, run), None
