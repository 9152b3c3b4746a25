"""fit(..., comm=comm) under mpiexec: every process ends with the same bits, and
they are those of one process training on the concatenated shards, up to
float64 rounding.

Each test runs tests/distributed_worker.py under ``mpiexec -n 2`` or ``-n 3``
(a subprocess with a timeout) and reads what every process wrote. mpi4py and
the MPI library come with the test extra: without them these tests fail,
they are not skipped.
"""

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import fastnn
from tests.tolerances import assert_close

WORKER = os.path.join(os.path.dirname(__file__), "distributed_worker.py")
ROOT = os.path.dirname(os.path.dirname(fastnn.__file__))
TIMEOUT = 60


def _mpiexec():
    if importlib.util.find_spec("mpi4py") is None:
        pytest.fail("mpi4py is missing: install the test extra (pip install -e '.[test]')")
    path = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    path = path if os.path.exists(path) else shutil.which("mpiexec")
    if path is None:
        pytest.fail("mpiexec is missing: install the test extra (the mpich wheel provides it)")
    return path


def launch(tmp_path, mode, n, threads=1, timeout=TIMEOUT, sum_method="reduce"):
    """Run the worker on n processes; (its CompletedProcess, output directory)."""
    out = tmp_path / ("%s-%d-%d-%s" % (mode, n, threads, sum_method))
    out.mkdir()
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               FASTNN_MPI_SUM=sum_method)
    # a session of its own, so that a run that times out is ended whole
    proc = subprocess.Popen([_mpiexec(), "-n", str(n), sys.executable, WORKER, mode, str(out),
                             str(threads)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr), out


def results(out, n):
    """(arrays, records) of processes 0..n-1."""
    arrays = [dict(np.load(out / ("rank%d.npz" % r))) for r in range(n)]
    records = [json.loads((out / ("rank%d.json" % r)).read_text()) for r in range(n)]
    return arrays, records


def single(out):
    return dict(np.load(out / "single.npz")), json.loads((out / "single.json").read_text())


def assert_same_on_every_process(arrays, records):
    for r in range(1, len(arrays)):
        for key in ("params", "states", "t"):
            assert arrays[r][key].tobytes() == arrays[0][key].tobytes(), (r, key)
        assert records[r] == records[0], r  # the History too, times included


def assert_like_one_process(arrays, records, out):
    """Weights and History against one process on the concatenated shards:
    float64 rounding only (the processes' partial gradients are summed in
    another order than one process's product adds the rows), carried through
    every Adam step: the "training" tolerance, rtol 1e-10."""
    ref, ref_record = single(out)
    assert int(arrays[0]["t"]) == int(ref["t"])
    assert_close(arrays[0]["params"], ref["params"], "training", scale=1.0)
    assert_close(arrays[0]["states"], ref["states"], "training", scale=1.0)
    assert records[0]["epochs"] == ref_record["epochs"]
    assert records[0]["stopped"] == ref_record["stopped"]
    for key, values in ref_record["history"].items():
        if key.split()[-1] not in ("time", "samples_per_sec"):  # the clock's, not the fit's
            assert_close(records[0]["history"][key], values, "training", scale=1.0,
                         err_msg=key)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Each (mode, processes, threads) run once for the module."""
    cache, base = {}, tmp_path_factory.mktemp("mpi")

    def run(mode, n, threads=1):
        if (mode, n, threads) not in cache:
            proc, out = launch(base, mode, n, threads)
            assert proc.returncode == 0, proc.stdout + proc.stderr
            cache[mode, n, threads] = out
        return cache[mode, n, threads]
    return run


@pytest.mark.parametrize("n", [2, 3])
def test_shards_train_like_one_process(runs, n):
    # string labels (one shard lacks a class), sample weights, uneven shards and last
    # batch, l2 and clip_norm, validation shards, early stopping; seed=None except on
    # process 0, whose weights and seed every process takes
    out = runs("train", n)
    arrays, records = results(out, n)
    assert_same_on_every_process(arrays, records)
    assert_like_one_process(arrays, records, out)
    assert "val_accuracy" in records[0]["history"]


def test_allreduce_sum_trains_alike(tmp_path):
    # FASTNN_MPI_SUM=allreduce: MPICH's allreduce gives every process the same bits
    # here (the fit checks it after every epoch), and the fit is the same to rounding
    proc, out = launch(tmp_path, "train", 3, sum_method="allreduce")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    arrays, records = results(out, 3)
    assert_same_on_every_process(arrays, records)
    assert_like_one_process(arrays, records, out)


def test_other_losses_and_their_validation_metrics(runs):
    # binary cross-entropy (multi-label and labels) and poisson: weights, loss, and
    # the validation loss, accuracy, mse and r2 summed over weighted shards
    out = runs("losses", 2)
    arrays, records = results(out, 2)
    assert_same_on_every_process(arrays, records)
    assert_like_one_process(arrays, records, out)
    assert {"multilabel val_accuracy", "labels val_accuracy", "poisson val_r2"} <= set(
        records[0]["history"])


def test_validation_metrics_of_regression_shards(runs):
    out = runs("regression", 2)
    arrays, records = results(out, 2)
    assert_same_on_every_process(arrays, records)
    assert_like_one_process(arrays, records, out)
    assert {"val_loss", "val_mse", "val_r2"} <= set(records[0]["history"])
    assert records[0]["epochs"] == [0, 1, 2, 3] and records[0]["stopped"] == "callback"


def test_sklearn_estimators_on_shards(runs):
    # MLPClassifier (string labels, one shard lacking a class, sample weights) and a
    # two-output MLPRegressor, with alpha and clip_norm: as one process, to float64
    # rounding ("training" tolerance, rtol 1e-10), and the same bits on every process
    out = runs("sklearn", 3)
    arrays, records = results(out, 3)
    assert_same_on_every_process(arrays, records)
    ref, ref_record = single(out)
    assert_close(arrays[0]["params"], ref["params"], "training", scale=1.0)
    for key in ("clf_loss", "reg_loss"):
        assert_close(records[0][key], ref_record[key], "training", scale=1.0, err_msg=key)
    for key in ("t", "n_iter", "classes"):
        assert records[0][key] == ref_record[key], key


def test_float32_dropout_split_and_a_continued_fit_agree_everywhere(runs):
    out = runs("options", 2)
    arrays, records = results(out, 2)
    assert_same_on_every_process(arrays, records)
    assert records[0]["epochs"] == [2, 3]  # the second fit continued the first
    # the first fit's History lists the held-out rows among the global rows: the
    # same on every process, 20% of each shard (40 and 21 rows)
    first = [json.loads((out / ("first%d.json" % r)).read_text()) for r in range(2)]
    assert first[0] == first[1]
    held_out = np.array(first[0]["validation_rows"])
    assert np.sum(held_out < 40) == 8 and np.sum(held_out >= 40) == 5


def test_runs_repeat_bitwise_at_any_thread_count(runs, tmp_path):
    first = runs("train", 3)
    proc, again = launch(tmp_path, "train", 3, threads=2)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for a, b in zip(results(first, 3)[0], results(again, 3)[0]):
        for key in ("params", "states", "t"):
            assert a[key].tobytes() == b[key].tobytes(), key


def test_overflow_on_one_process_stops_every_process(runs):
    # process 1's loss overflows at one batch: every process stops before that step
    # with the weights of the step before, as one process would
    out = runs("nonfinite", 2)
    arrays, records = results(out, 2)
    assert_same_on_every_process(arrays, records)
    assert_like_one_process(arrays, records, out)
    assert records[0]["stopped"] == "non_finite"
    assert "summed over the 2 processes" in records[0]["detail"]
    assert 0 < int(arrays[0]["t"]) < 21  # it stopped in the first of 3 epochs of 7 steps


def test_shards_that_disagree_fail_on_every_process(tmp_path):
    proc, out = launch(tmp_path, "mismatch", 2)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    records = [json.loads((out / ("rank%d.json" % r)).read_text()) for r in range(2)]
    assert "X has 7 features" in records[1]["error"]
    assert "process 1 of 2" in records[0]["error"] and "X has 7 features" in records[0]["error"]


def test_a_callback_that_raises_on_one_process_raises_on_all(tmp_path):
    proc, out = launch(tmp_path, "callback_error", 2, timeout=30)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    records = [json.loads((out / ("rank%d.json" % r)).read_text()) for r in range(2)]
    assert records[1]["error"] == "RuntimeError: a callback failed"
    assert "process 1 of 2: RuntimeError: a callback failed" in records[0]["error"]


def test_a_killed_process_ends_the_run(tmp_path):
    started = time.monotonic()
    proc, out = launch(tmp_path, "kill", 2, timeout=30)
    assert proc.returncode != 0
    assert time.monotonic() - started < 30
    pids = [int((out / ("pid%d" % r)).read_text()) for r in range(2)]
    deadline = time.monotonic() + 5
    alive = pids
    while alive and time.monotonic() < deadline:
        alive = [p for p in pids if _running(p)]
        time.sleep(0.05)
    assert not alive, "processes left running: %s" % alive


def _running(pid):
    """Whether pid is a live process (not a zombie)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
