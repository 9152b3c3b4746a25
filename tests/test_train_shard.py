"""The data-parallel C loop (Net.train_shard_batches, src_c/train.inc.c)
against its twin, the same steps driven one at a time from Python
(fastnn._distributed._python_steps: train_grad, the sum, train_apply), and,
on one process holding every row, against the NumPy reference loop.

Both run in one process here, whose sum over the processes is the buffer
itself (a ProcessSum of one process never calls MPI), on this process's part
of the global batches of a two-process plan: parts of different sizes, a
batch with no row here, a batch whose weights sum to zero, dropout, L2 and
clipping. They call the same C functions in the same order, so they must
give the same bits. The sum across processes through MPI is tested under
mpiexec (tests/test_distributed.py).
"""

from types import SimpleNamespace

import numpy as np
import pytest

import fastnn as fn
from fastnn import _distributed, _kernels
from fastnn._backends import FastNetwork, TrainingSetup

N_IN = 7


class OneProcess:
    """A group of one process: its sum is the buffer itself."""
    size = 1

    def sum_(self, buf):
        return buf


def _one_process_sum(dtype):
    # addresses that are never called: a sum over one process returns at once
    return _kernels.ProcessSum(1, 1, 1, 0, 0, 0, -1, 4, np.dtype(dtype).itemsize, False, 0, 1)


def _plan(n_local, n_other, batch_size, seed):
    """Process 0's part of an epoch over n_local + n_other global rows, as
    Group.plan draws it."""
    planner = SimpleNamespace(sizes=np.array([n_local, n_other]), rank=0, offset=0,
                              check_identical=lambda *a, **k: None)
    n_total = n_local + n_other
    perm = np.random.default_rng(seed).permutation(n_total)
    n_batches = -(-n_total // batch_size)
    return _distributed.Group.plan(planner, perm, batch_size, n_batches), n_batches


def _problem(task, dtype, rng, m):
    X = rng.standard_normal((m, N_IN)).astype(dtype)
    if task == "cross_entropy":
        return X, rng.integers(0, 4, m).astype(np.int64), 4, "softmax"
    if task == "binary_cross_entropy":
        return X, rng.integers(0, 2, (m, 2)).astype(dtype), 2, "sigmoid"
    if task == "poisson":
        return X, rng.poisson(1.5, (m, 3)).astype(dtype), 3, "exp"
    return X, rng.standard_normal((m, 3)).astype(dtype), 3, "identity"


def _engine(task, dtype, k, out_act, batch_size, hidden, dropout, l2, clip_norm, clip_value,
            weighted):
    layers = [fn.Dense(hidden, activation="tanh")]
    if dropout:
        layers.append(fn.Dropout(dropout))
    layers.append(fn.Dense(k, activation=out_act))
    model = fn.Sequential(layers, input_dim=N_IN, dtype=dtype, seed=3)
    model.build(N_IN)
    optimizer = fn.optim.Adam(lr=0.05)
    states = [model.arena_.new_state() for _ in range(optimizer.n_states)]
    setup = TrainingSetup(model, task, optimizer, states, batch_size, l2, clip_norm or 0.0,
                          clip_value or 0.0, False, weighted=weighted, skip_zero_weight=True)
    return model, FastNetwork(setup, 0), states


def _run(loop, task, dtype, nt, batch_size=11, hidden=5, dropout=0.3, l2=0.02, clip_norm=0.5,
         clip_value=None, weighted=True, poison=None, zero_batch=True):
    rng = np.random.default_rng(7)
    n_local, n_other = 29, 24  # an uneven split of 53 rows, batch 11: a part may be empty
    X, y, k, out_act = _problem(task, dtype, rng, n_local)
    plan, n_batches = _plan(n_local, n_other, batch_size, seed=1)
    if poison is not None:
        y[plan.rows[plan.starts[poison]]] = np.nan  # that batch's loss is not finite
    sw = rng.uniform(0.5, 2.0, n_local).astype(dtype) if weighted else None
    # the global batches' rows (or weight sums, made up: the other process's
    # part is not here); a zero stands for a batch whose weights sum to zero
    denoms = np.full(n_batches, float(batch_size))
    denoms[-1] = (n_local + n_other) - batch_size * (n_batches - 1)
    if weighted:
        denoms *= 1.3
    if zero_batch:
        denoms[2] = 0.0
    model, net, states = _engine(task, dtype, k, out_act, batch_size, hidden, dropout, l2,
                                 clip_norm, clip_value, weighted)
    lrs = np.linspace(0.05, 0.02, n_batches)
    data_loss = np.zeros(n_batches)
    l2_loss = np.zeros(n_batches)
    if loop == "c":
        status, done = net.train_shard_batches(X, y, plan.rows, plan.positions, plan.starts,
                                               plan.counts, denoms, 0, n_batches, lrs,
                                               data_loss, l2_loss, nt, _one_process_sum(dtype),
                                               sw)
        failed = None if status == _kernels.STATUS_CODES["ok"] else done
    else:
        failed = _distributed._python_steps(OneProcess(), net, model.arena_.grads, X, y,
                                            plan.rows, plan, denoms, lrs, data_loss, l2_loss,
                                            nt, sw, None)
    return model.arena_.params.copy(), [s.copy() for s in states], net.t, data_loss, l2_loss, \
        failed, plan


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("task", ["cross_entropy", "binary_cross_entropy", "poisson", "mse"])
@pytest.mark.parametrize("nt", [1, 2])
def test_c_loop_gives_the_bits_of_the_python_steps(dtype, task, nt):
    c = _run("c", task, dtype, nt)
    py = _run("python", task, dtype, nt)
    assert c[0].tobytes() == py[0].tobytes()
    for a, b in zip(c[1], py[1]):
        assert a.tobytes() == b.tobytes()
    assert c[2] == py[2]
    np.testing.assert_array_equal(c[3], py[3])
    np.testing.assert_array_equal(c[4], py[4])
    assert c[5] is None and py[5] is None
    plan = c[6]
    # every batch but the zero-weight one took a step, including any with no row here
    assert c[2] == len(plan.counts) - 1
    assert c[3][2] == 0 and c[4][2] == 0


def test_a_batch_with_no_row_here_still_steps():
    # the process's gradient is 0, but the L2 term and the optimizer act on the sum
    rng = np.random.default_rng(0)
    X, y, k, out_act = _problem("cross_entropy", "float64", rng, 10)
    model, net, _ = _engine("cross_entropy", "float64", k, out_act, 4, 3, 0.0, 0.1, None,
                            None, False)
    before = model.arena_.params.copy()
    rows = np.zeros(0, dtype=np.int64)
    status, done = net.train_shard_batches(X, y, rows, rows, np.zeros(1, np.int64),
                                           np.zeros(1, np.int64), np.array([4.0]), 0, 1,
                                           np.array([0.1]), np.zeros(1), np.zeros(1), 1,
                                           _one_process_sum("float64"))
    assert (status, done, net.t) == (0, 1, 1)
    assert not np.array_equal(model.arena_.params, before)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_non_finite_batch_stops_both_loops_at_it_without_a_step(dtype):
    c = _run("c", "mse", dtype, 1, poison=4, dropout=0.0, clip_norm=None)
    py = _run("python", "mse", dtype, 1, poison=4, dropout=0.0, clip_norm=None)
    assert c[5] == py[5] == 4
    assert c[0].tobytes() == py[0].tobytes()
    assert c[2] == py[2] == 3  # batches 0, 1 and 3 stepped; 2 weighs nothing
    assert np.all(np.isfinite(c[0]))


def test_runs_of_batches_give_the_bits_of_one_call():
    rng = np.random.default_rng(2)
    X, y, k, out_act = _problem("cross_entropy", "float64", rng, 29)
    plan, n_batches = _plan(29, 24, 11, seed=4)
    denoms = np.full(n_batches, 11.0)
    denoms[-1] = 53 - 11 * (n_batches - 1)
    lrs = np.linspace(0.08, 0.02, n_batches)
    results = []
    for runs in ([n_batches], [1, 2, n_batches - 3]):
        model, net, _ = _engine("cross_entropy", "float64", k, out_act, 11, 5, 0.3, 0.02, 0.5,
                                None, False)
        losses, first = np.zeros(n_batches), 0
        for n in runs:
            status, done = net.train_shard_batches(
                X, y, plan.rows, plan.positions, plan.starts, plan.counts, denoms, first, n,
                lrs[first:first + n], losses[first:first + n], np.zeros(n), 1,
                _one_process_sum("float64"))
            assert (status, done) == (0, n)
            first += n
        results.append((model.arena_.params.tobytes(), losses.tobytes()))
    assert results[0] == results[1]



class _RecordingEngine:
    """An engine whose C loop only records how many steps each call asked for."""

    def __init__(self):
        self.calls = []

    def train_shard_batches(self, *args):
        n = args[8]
        self.calls.append(n)
        return _kernels.STATUS_CODES["ok"], n


def test_an_epoch_starts_at_the_run_length_the_last_one_reached(monkeypatch):
    # the calls into the C loop grow to about RUN_SECONDS each; the next epoch
    # goes on from there rather than from one step per call. A clock that
    # stands still makes every call look instant, so each grows by the most.
    monkeypatch.setattr(_distributed, "time", SimpleNamespace(perf_counter=lambda: 0.0))
    group, net, n_batches = SimpleNamespace(run_length=1), _RecordingEngine(), 500
    zeros = np.zeros(n_batches)
    plan = SimpleNamespace(positions=None, starts=None, counts=None)
    epochs = []
    for _ in range(2):
        net.calls = []
        assert _distributed._c_steps(group, net, None, None, None, plan, zeros, zeros,
                                     zeros.copy(), zeros.copy(), 1, None, None, None) is None
        epochs.append(net.calls)
    assert sum(epochs[0]) == sum(epochs[1]) == n_batches
    assert epochs[0][0] == 1
    # each full call grows the next to 2 run + 64: 1, 66, 196, then the rest
    assert epochs[0][:3] == [1, 66, 196]
    assert epochs[1][0] == 456  # where the last full call of the first epoch led


def _checked_call(net, X, y, plan, denoms, first=0, n=None, lrs=None, process_sum=None,
                  rows=None, counts=None, starts=None):
    n = len(plan.counts) if n is None else n
    return net.train_shard_batches(
        X, y, plan.rows if rows is None else rows, plan.positions,
        plan.starts if starts is None else starts, plan.counts if counts is None else counts,
        denoms, first, n, np.full(n, 0.1) if lrs is None else lrs, np.zeros(n), np.zeros(n), 1,
        _one_process_sum("float64") if process_sum is None else process_sum)


def test_out_of_range_arguments_raise_before_any_step():
    rng = np.random.default_rng(3)
    X, y, k, out_act = _problem("cross_entropy", "float64", rng, 29)
    plan, n_batches = _plan(29, 24, 11, seed=4)
    denoms = np.full(n_batches, 11.0)
    model, net, _ = _engine("cross_entropy", "float64", k, out_act, 11, 5, 0.0, 0.0, None,
                            None, False)
    before = model.arena_.params.copy()
    bad_rows = plan.rows.copy()
    bad_rows[-1] = 29
    with pytest.raises(ValueError, match="outside X's 29 rows"):
        _checked_call(net, X, y, plan, denoms, rows=bad_rows)
    with pytest.raises(ValueError, match="more rows than the network's 11"):
        _checked_call(net, X, y, plan, denoms, counts=plan.counts + 12)
    with pytest.raises(ValueError, match="lies outside rows"):
        starts = plan.starts.copy()
        starts[-1] = len(plan.rows)
        _checked_call(net, X, y, plan, denoms, starts=starts)
    with pytest.raises(ValueError, match="do not cover batches"):
        _checked_call(net, X, y, plan, denoms, first=1)
    with pytest.raises(ValueError, match="do not cover batches"):
        _checked_call(net, X, y, plan, denoms, lrs=np.full(1, 0.1))
    with pytest.raises(ValueError, match="datatype is not the network's"):
        _checked_call(net, X, y, plan, denoms, process_sum=_one_process_sum("float32"))
    with pytest.raises(ValueError, match="X has 29 rows, y 28"):
        _checked_call(net, X, y[:28], plan, denoms)
    assert model.arena_.params.tobytes() == before.tobytes() and net.t == 0


@pytest.mark.parametrize("args, message", [
    (dict(handle_bytes=2), "handles of 2 bytes"),
    (dict(item_bytes=2), "item_bytes"),
    (dict(rank=2), "rank 2 is not among 2"),
    (dict(reduce_fn=0), "address is missing"),
])
def test_process_sum_refuses_what_it_cannot_call(args, message):
    kwargs = dict(reduce_fn=1, bcast_fn=1, allreduce_fn=1, comm=0, datatype=0, op=0,
                  in_place=-1, handle_bytes=4, item_bytes=8, allreduce=False, rank=0,
                  n_procs=2)
    kwargs.update(args)
    with pytest.raises(ValueError, match=message):
        _kernels.ProcessSum(**kwargs)


def test_a_sum_over_one_process_leaves_the_buffer():
    buf = np.arange(5.0)
    assert _one_process_sum("float64").sum(buf) == 0
    np.testing.assert_array_equal(buf, np.arange(5.0))
    with pytest.raises(ValueError, match="read-only"):
        frozen = np.arange(5.0)
        frozen.flags.writeable = False
        _one_process_sum("float64").sum(frozen)


@pytest.mark.parametrize("variable, read, default, other", [
    ("FASTNN_MPI_LOOP", _distributed.step_loop, "c", "python"),
    ("FASTNN_MPI_SUM", _distributed.sum_method, "reduce", "allreduce"),
])
def test_the_loop_and_sum_settings(monkeypatch, variable, read, default, other):
    monkeypatch.delenv(variable, raising=False)
    assert read() == default
    monkeypatch.setenv(variable, " %s " % other.upper())
    assert read() == other
    monkeypatch.setenv(variable, "fast")
    with pytest.raises(ValueError, match="%s must be .*got 'fast'" % variable):
        read()


@pytest.mark.parametrize("dtype, tol", [("float32", 5e-6), ("float64", 1e-13)])
@pytest.mark.parametrize("task", ["cross_entropy", "mse"])
@pytest.mark.parametrize("nt", [1, 2])
def test_one_process_holding_every_row_follows_the_numpy_reference(dtype, tol, task, nt):
    # the whole epoch on one process (its parts are the whole batches) against
    # fit(backend="reference"), the NumPy definition of the step (fastnn.reference):
    # the same initial weights, batches and dropout masks; they differ by the
    # rounding of the matrix products (tolerances of tests/test_trainer_parity.py)
    rng = np.random.default_rng(5)
    n, batch_size = 37, 8  # an uneven last batch
    X, y, k, out_act = _problem(task, dtype, rng, n)
    sw = rng.uniform(0.5, 2.0, n).astype(dtype)
    plan, n_batches = _plan(n, 0, batch_size, seed=0)
    denoms = np.add.reduceat(sw[plan.rows].astype(np.float64), plan.starts)
    model, net, _ = _engine(task, dtype, k, out_act, batch_size, 5, 0.3, 0.02, 0.5, None, True)
    status, done = net.train_shard_batches(X, y, plan.rows, plan.positions, plan.starts,
                                           plan.counts, denoms, 0, n_batches,
                                           np.full(n_batches, 0.05), np.zeros(n_batches),
                                           np.zeros(n_batches), nt, _one_process_sum(dtype), sw)
    assert (status, done) == (0, n_batches)

    reference = fn.Sequential([fn.Dense(5, activation="tanh"), fn.Dropout(0.3),
                               fn.Dense(k, activation=out_act)], input_dim=N_IN, dtype=dtype,
                              seed=3)
    order = plan.rows  # the epoch's order of the rows: batch b is order[b*8:(b+1)*8]
    reference.fit(X[order], y[order], loss=task, optimizer=fn.optim.Adam(lr=0.05),
                  batch_size=batch_size, epochs=1, shuffle=False, l2=0.02, clip_norm=0.5,
                  sample_weight=sw[order], backend="reference", n_threads=nt)
    expected = reference.arena_.params
    scale = np.max(np.abs(expected))
    np.testing.assert_allclose(model.arena_.params, expected, rtol=0, atol=tol * scale)
