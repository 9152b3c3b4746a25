"""fit(..., comm=comm) under mpiexec: every process ends with the same bits, and
they are those of one process training on the concatenated shards, up to
float64 rounding.

Each test runs tests/distributed_worker.py under ``mpiexec -n 2`` or ``-n 3``
(a subprocess with a timeout) and reads what every process wrote. mpi4py and
the MPI library come with the test extra: without them these tests fail,
they are not skipped. The launcher is the one beside the interpreter, so
the same tests run under MPICH (the test extra) or Open MPI (the
mpi-openmpi extra), whose handles are pointers rather than integers.
"""

import importlib.util
import json
import os
import re
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
SUM_WORKER = os.path.join(os.path.dirname(__file__), "distributed_sum_worker.py")
EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(__file__)), "examples",
                       "train_distributed.py")
ROOT = os.path.dirname(os.path.dirname(fastnn.__file__))
TIMEOUT = 60


def _mpiexec():
    """The launcher's command line up to the process count. Open MPI's refuses
    more processes than cores and, as root, to run at all, unless told."""
    if importlib.util.find_spec("mpi4py") is None:
        pytest.fail("mpi4py is missing: install the test extra (pip install -e '.[test]')")
    path = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    path = path if os.path.exists(path) else shutil.which("mpiexec")
    if path is None:
        pytest.fail("mpiexec is missing: install the test extra (the mpich wheel provides it)")
    version = subprocess.run([path, "--version"], capture_output=True, text=True).stdout
    if "Open MPI" not in version:
        return [path]
    return [path, "--oversubscribe"] + (["--allow-run-as-root"] if os.geteuid() == 0 else [])


def launch(tmp_path, mode, n, threads=1, timeout=TIMEOUT, sum_method="reduce", loop="c",
           worker=WORKER, args=None):
    """Run the worker on n processes; (its CompletedProcess, output directory).
    loop: FASTNN_MPI_LOOP, where the steps of an epoch loop; args: the
    worker's arguments (by default the mode, output directory and threads of
    WORKER, the output directory of another)."""
    out = tmp_path / ("%s-%d-%d-%s-%s" % (mode, n, threads, sum_method, loop))
    out.mkdir()
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               FASTNN_MPI_SUM=sum_method, FASTNN_MPI_LOOP=loop)
    if args is None:
        args = [str(out)] if worker != WORKER else [mode, str(out), str(threads)]
    # a session of its own, so that a run that times out is ended whole
    proc = subprocess.Popen(_mpiexec() + ["-n", str(n), sys.executable, worker] + args,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
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


def test_a_schedule_counts_the_steps_the_processes_take_together(runs):
    # two of the seven global batches of each epoch weigh nothing on every process
    # (one of them spans two shards): no process steps on them, and the schedule
    # gives the later batches the rates of the steps they take, as in one process
    out = runs("schedule", 3)
    arrays, records = results(out, 3)
    assert_same_on_every_process(arrays, records)
    assert_like_one_process(arrays, records, out)
    assert int(arrays[0]["t"]) == 6 * 5
    assert records[0]["history"]["lr"][-1] == 0.2 * 0.8 ** (29 // 2)


def test_a_shard_that_weighs_nothing_trains_with_the_others(runs):
    # the weights are summed over the processes: one shard of weight 0 takes part
    # (and its loss counts for nothing); all of them weighing 0 fails everywhere
    out = runs("weightless", 3)
    arrays, records = results(out, 3)
    assert_same_on_every_process(arrays, records)
    assert_like_one_process(arrays, records, out)
    for r in range(3):
        errors = json.loads((out / ("errors%d.json" % r)).read_text())
        assert errors["train"] == "every training sample has weight 0: nothing to train on"
        assert errors["validation"].startswith(
            "every validation sample has weight 0 (sample_weight_val)")


@pytest.mark.parametrize("derived", ["dup", "split"])
def test_a_communicator_made_by_dup_or_split_trains_as_comm_world(runs, derived):
    # a library that duplicates its communicator passes one whose MPICH handle is a
    # negative int: the C sum takes it as one
    base, base_records = results(runs("regression", 2), 2)
    arrays, records = results(runs("regression@" + derived, 2), 2)
    for r in range(2):
        assert arrays[r]["params"].tobytes() == base[r]["params"].tobytes()
        assert records[r]["history"]["loss"] == base_records[r]["history"]["loss"]


def test_allreduce_sum_trains_alike(tmp_path):
    # FASTNN_MPI_SUM=allreduce: MPICH's allreduce, and Open MPI's, give every process
    # the same bits here (the fit checks it after every epoch), and the fit is the
    # same to rounding
    proc, out = launch(tmp_path, "train", 3, sum_method="allreduce")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    arrays, records = results(out, 3)
    assert_same_on_every_process(arrays, records)
    assert_like_one_process(arrays, records, out)


@pytest.mark.parametrize("sum_method", ["reduce", "allreduce"])
def test_the_c_loop_gives_the_bits_of_the_python_loop(tmp_path, runs, sum_method):
    # the steps in the C loop, the sum called from C, against the steps driven from
    # Python with the sum through mpi4py: the same MPI calls on the same buffers
    outs = []
    for loop in ("c", "python"):
        proc, out = launch(tmp_path, "train", 3, sum_method=sum_method, loop=loop)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        outs.append(results(out, 3))
    (c_arrays, c_records), (py_arrays, py_records) = outs
    for r in range(3):
        for key in ("params", "states", "t"):
            assert c_arrays[r][key].tobytes() == py_arrays[r][key].tobytes(), (r, key)
        for key, values in py_records[r]["history"].items():
            if key.split()[-1] not in ("time", "samples_per_sec"):
                assert c_records[r]["history"][key] == values, key


def test_the_example_trains_one_model_on_two_processes(tmp_path):
    # examples/train_distributed.py as documented: process 0 reports the test
    # accuracy of the model it saved and every process loaded
    proc, _ = launch(tmp_path, "example", 2, worker=EXAMPLE, args=[])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    last = proc.stdout.strip().splitlines()[-1]
    found = re.match(r"2 processes, \d+ epochs \(.*\): test accuracy ([0-9.]+)$", last)
    assert found, last
    assert float(found.group(1)) > 0.95


def test_the_sum_called_from_c(tmp_path):
    # the MPI functions are found through mpi4py, the C sum gives the bits of mpi4py's
    # Reduce + Bcast (and Allreduce), and a failing MPI call raises on every process
    proc, out = launch(tmp_path, "sum", 3, worker=SUM_WORKER)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    records = [json.loads((out / ("rank%d.json" % r)).read_text()) for r in range(3)]
    for record in records:
        for dtype in ("float32", "float64"):
            assert record["found " + dtype]
            assert record["status " + dtype] == 0
            assert record["same bits " + dtype] and record["close " + dtype]
            assert record["allreduce same bits " + dtype]
            assert record["digest " + dtype] == records[0]["digest " + dtype]
        assert record["broken status"] == fastnn._kernels.STATUS_CODES["ecomm"]
        assert record["broken error"] != 0
        assert "summing the gradients over the processes failed in MPI" in record["fit error"]
        assert "communicator" in record["fit error"].lower()


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
    # a diverging fit raises scikit-learn's error on every process, at the batch where
    # the one-process fit raises it
    assert "non-finite parameter weights" in records[0]["diverged"]
    assert records[0]["diverged"] == ref_record["diverged"]


def assert_estimators_like_one_process(arrays, records, out):
    """The estimators' weights, loss curves and validation scores against one
    process's, to float64 rounding ("training" tolerance); their counters
    equal."""
    ref, ref_record = single(out)
    assert_close(arrays[0]["params"], ref["params"], "training", scale=1.0)
    for key in ("t", "n_iter", "no_improvement"):
        assert records[0][key] == ref_record[key], key
    for key in ("loss", "validation"):
        for i, (got, want) in enumerate(zip(records[0][key], ref_record[key])):
            if want is None:
                assert got is None, (key, i)
            else:
                assert_close(got, want, "training", scale=1.0, err_msg="%s %d" % (key, i))
    for got, want in zip(records[0]["best_validation"], ref_record["best_validation"]):
        assert (got is None) == (want is None)
        if want is not None:
            assert_close(got, want, "training", scale=1.0, err_msg="best_validation")


def test_standardizer_and_pipeline_on_shards(runs):
    # the Standardizer's statistics are those of the union of the shards, the same
    # bits everywhere; a Pipeline whose Standardizer and estimator are fitted with
    # comm trains the one-process pipeline's model
    # the worker's 6 features, a constant column, one constant per shard, one near 1e7
    n, n_cols = 3, 9
    arrays, records = results(runs("preprocessing", n), n)
    assert_same_on_every_process(arrays, records)
    ref, ref_record = single(runs("preprocessing", n))
    stats = arrays[0]["params"][:4 * n_cols].reshape(4, n_cols)
    ref_stats = ref["params"][:4 * n_cols].reshape(4, n_cols)
    for row, dtype in enumerate(["float32"] * 2 + ["float64"] * 2):  # mean, std per dtype
        tol = 10 * np.finfo(dtype).eps
        np.testing.assert_allclose(stats[row], ref_stats[row], rtol=tol, atol=tol)
    for dtype, (mean, std) in (("float32", stats[:2]), ("float64", stats[2:])):
        # the constant column keeps std 0 and its value exactly; the column that is
        # constant within each shard has the std of its values over the union
        assert std[6] == 0 and mean[6] == np.asarray(0.3, dtype=dtype)
        assert std[7] > 0
    assert_close(arrays[0]["params"][4 * n_cols:], ref["params"][4 * n_cols:], "training",
                 scale=1.0)
    assert_close(records[0]["loss"], ref_record["loss"], "training", scale=1.0)
    assert records[0]["predictions"] == ref_record["predictions"]
    assert all(record["nan error"] for record in records)


def test_estimators_stop_early_together(runs):
    # early_stopping on 2 processes: each holds out a quarter of its shard, the
    # accuracy (weighted) and the two-output R^2 are those of the union of the
    # held-out rows, so every process stops at the same iteration, with the same
    # scores and best weights; one process holding out the same rows agrees
    out = runs("early_stopping", 2)
    arrays, records = results(out, 2)
    assert_same_on_every_process(arrays, records)
    assert all(n < 40 for n in records[0]["n_iter"])  # both stopped before max_iter
    assert_estimators_like_one_process(arrays, records, out)


def test_warm_started_estimators_continue_on_shards(runs):
    # a classifier fitted twice with comm, and a regressor fitted first by process 0
    # alone, then with comm: every process continues process 0's estimator, as one
    # process fitting twice (shard 0, then every row) does
    out = runs("warm_start", 2)
    arrays, records = results(out, 2)
    assert_same_on_every_process(arrays, records)
    assert [len(curve) for curve in records[0]["loss"]] == [6, 6]  # two fits' curves
    assert_estimators_like_one_process(arrays, records, out)


def test_balanced_class_weights_count_every_shard(runs):
    # class_weight="balanced" on 3 processes (process 1's shard lacks a class), with
    # sample weights: the class counts are summed over the shards, so the fit is the
    # one-process fit of the concatenated shards with its balanced weights
    out = runs("balanced", 3)
    arrays, records = results(out, 3)
    assert_same_on_every_process(arrays, records)
    assert_like_one_process(arrays, records, out)


def test_partial_fit_on_shards_of_each_chunk_is_one_process_on_the_chunks(runs):
    # three chunks (24, 30 and 7 rows: the first lacks a class, the last is smaller
    # than batch_size), each split unevenly over 3 processes: Sequential.partial_fit
    # told the classes (dropout, sample and class weights, l2, clip_norm) and taking
    # the union of the first chunk's labels (one shard has them all), MLPClassifier
    # and a two-output MLPRegressor (the first chunk given by process 0 alone: every
    # process continues its estimator and optimizer state); as one process given the
    # concatenated chunks, to float64 rounding, with the same bits everywhere
    n = 3
    arrays, records = results(runs("partial_fit", n), n)
    errors = [record.pop("errors") for record in records]
    assert_same_on_every_process(arrays, records)
    ref, ref_record = single(runs("partial_fit", n))
    ref_record.pop("errors")
    assert arrays[0]["t"].tolist() == ref["t"].tolist() == [3 + 4 + 1, 2 + 2 + 1, 61, 61]
    for key in ("params", "states"):
        assert_close(arrays[0][key], ref[key], "training", scale=1.0, err_msg=key)
    for key in ("loss", "union loss", "clf_loss", "reg_loss"):
        assert_close(records[0][key], ref_record[key], "training", scale=1.0, err_msg=key)
    for key in ("epochs", "classes", "n_iter"):
        assert records[0][key] == ref_record[key], key
    # the calls after the stream failed on every process and changed nothing (the
    # weights above are those of the three chunks): an option changed on process 1,
    # an empty shard on process 2, a first call whose options differ on process 2, a
    # classifier's first call without classes on process 1, early_stopping
    for name, rank, message in (
            ("changed", 1, "partial_fit keeps the training options of its first call; l2"),
            ("empty", 2, "X is empty"),
            ("no classes", 1, "classes must be passed on the first call")):
        for r in range(n):
            assert message in errors[r][name], (name, r)
            assert (r == rank) != ("process %d of 3" % rank in errors[r][name]), (name, r)
    for r in range(n):
        assert "process 0 has batch_size=9, process 2 has batch_size=8" in errors[r]["differ"]
        assert "does not support early_stopping" in errors[r]["early_stopping"]
    assert records[0]["fresh untouched"]


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
    # process 0's seed draws every shard's held-out rows, also where the process made
    # its model with seed=None: the fit of models all made with process 0's seed
    for r in range(2):
        seeded = json.loads((out / ("seeded%d.json" % r)).read_text())
        assert seeded["validation_rows"] == first[r]["validation_rows"]
        assert seeded["history"]["loss"] == first[r]["history"]["loss"]
        assert (np.load(out / ("seeded%d.npz" % r))["params"].tobytes()
                == np.load(out / ("first%d.npz" % r))["params"].tobytes())


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


def test_columns_in_another_order_and_labels_of_another_kind_fail_on_every_process(tmp_path):
    # the same columns in another order, or string labels on one process and
    # integers on another, are refused before training, on every process
    proc, out = launch(tmp_path, "names", 2)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    records = [json.loads((out / ("rank%d.json" % r)).read_text()) for r in range(2)]
    names = ("the processes' feature names differ: process 0 has ['f0', 'f1', 'f2', 'f3', "
             "'f4', 'f5'], process 1 has ['f5', 'f4', 'f3', 'f2', 'f1', 'f0']; every process "
             "gives its columns in the same order")
    for record in records:
        assert record["sequential names"] == names
        assert record["estimator names"] == names
        assert record["estimator labels"] == (
            "the processes' kinds of class labels differ: process 0 has strings, process 1 "
            "has numbers; every shard's labels are numbers, or every shard's are strings")


@pytest.mark.parametrize("mode", ["continued", "loaded"])
def test_a_model_trained_or_loaded_on_one_process_continues_as_process_0s(runs, mode):
    # models trained alone first end at different steps and epochs (or exist on
    # process 0 only): the fit with comm continues process 0's, its weights,
    # optimizer state, step and epoch count, as one process continuing it on
    # the concatenated shards would
    out = runs(mode, 2)
    arrays, records = results(out, 2)
    assert_same_on_every_process(arrays, records)
    assert_like_one_process(arrays, records, out)
    assert records[0]["epochs"] == [2, 3]


def test_processes_that_made_different_models_fail_before_any_change(tmp_path):
    proc, out = launch(tmp_path, "layers", 2)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    records = [json.loads((out / ("rank%d.json" % r)).read_text()) for r in range(2)]
    for record in records:
        assert record["error"].startswith("the processes' layers differ: process 0 has "
                                          "[{'type': 'Dense', 'units': 16,")
        assert "process 1 has [{'type': 'Dense', 'units': 17," in record["error"]
        assert record["error"].endswith("every process makes the same model")
        assert record["unchanged"]


def test_settings_that_differ_fail_on_every_process(tmp_path):
    # the environment's sum and loop settings, and early stopping, are compared:
    # processes that summed differently would wait on each other forever, and a
    # bad value on one process fails every process
    proc, out = launch(tmp_path, "settings", 2)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    records = [json.loads((out / ("rank%d.json" % r)).read_text()) for r in range(2)]
    for record in records:
        assert record["sum"] == (
            "the processes' (FASTNN_MPI_SUM, FASTNN_MPI_LOOP) settings differ: process 0 has "
            "('reduce', 'c'), process 1 has ('allreduce', 'c'); give every process the same "
            "environment")
        assert "FASTNN_MPI_LOOP must be 'c' or 'python', got 'fast'" in record["loop"]
        assert record["early_stopping"].startswith(
            "the processes' fit options differ: process 0 has early_stopping=EarlyStopping(")
        assert "'restore_best': True" in record["early_stopping"]
        assert "'restore_best': False" in record["early_stopping"]
    assert "process 1 of 2" in records[0]["loop"]


def test_options_that_differ_fail_on_every_process(tmp_path):
    proc, out = launch(tmp_path, "option_mismatch", 3)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    records = [json.loads((out / ("rank%d.json" % r)).read_text()) for r in range(3)]
    for record in records:
        assert record["fit"] == ("the processes' fit options differ: process 0 has l2=0.05, "
                                 "process 2 has l2=0.1; every process passes the same "
                                 "training options")
        assert record["estimator"].startswith("the processes' parameters differ: process 0 "
                                              "has alpha=0.01, process 2 has alpha=0.1;")
        # an integer random_state on some processes only, on process 0 or another
        drawn = "'None or a RandomState (process 0 draws)'"
        assert record["seeded on 0"].startswith(
            "the processes' parameters differ: process 0 has random_state=0, process 1 has "
            "random_state=" + drawn)
        assert record["seeded on 2"].startswith(
            "the processes' parameters differ: process 0 has random_state=" + drawn
            + ", process 2 has random_state=0")


def test_the_progress_bar_counts_every_global_row(tmp_path):
    # process 0 alone shows the bar, and each epoch's bar reaches all the global
    # rows (the runs of batches in one call into the C loop each add all theirs)
    proc, _ = launch(tmp_path, "progress", 2)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for epoch in (0, 1):
        assert re.search(r"epoch %d: 100%%\|.*\| 61\.0/61\.0 " % epoch, proc.stderr), \
            proc.stderr
    assert proc.stderr.count("epoch 0:   0%") == 1  # one bar: process 0's


def test_processes_on_one_machine_share_its_cores_by_default(tmp_path):
    # mpiexec (MPICH) starts the processes unbound: by default each takes its
    # share of the cores rather than a thread per core; a given n_threads is
    # kept, and a bad one on one process raises on every process
    proc, out = launch(tmp_path, "threads", 2)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    records = [json.loads((out / ("rank%d.json" % r)).read_text()) for r in range(2)]
    for record in records:
        assert record["default"] == min(record["limit"], max(1, record["cores"] // 2))
        assert record["given"] == 2
        assert "n_threads=0 is not valid" in record["bad"]
    assert "process 1 of 2" in records[0]["bad"]


@pytest.mark.parametrize("cores, others, share", [
    ({0, 1}, [{0, 1}], 1),                        # 2 unbound processes on 2 cores
    (set(range(8)), [set(range(8))] * 3, 2),        # 4 unbound on 8 cores
    (set(range(8)), [set(range(8))] * 2, 2),        # 3 unbound on 8 cores: 8 // 3
    ({0}, [{0, 1, 2}], 1),                          # never fewer than 1
    (set(range(4)), [set(range(4, 8))], 4),         # bound apart, one per socket
    (set(range(4)), [set(range(4)), set(range(4, 8))], 2),  # two on each socket
    ({3}, [{0}, {1}, {2}], 1),                      # bound one core each
])
def test_a_process_keeps_its_share_of_the_cores(cores, others, share):
    from fastnn._distributed import core_share
    cores, others = frozenset(cores), [frozenset(c) for c in others]
    assert core_share(cores, [cores] + others) == share


def test_a_callback_that_raises_on_one_process_raises_on_all(tmp_path):
    # at the start of training, at the end of an epoch and at the end of training: the
    # other process would wait for it in the next collective call
    proc, out = launch(tmp_path, "callback_error", 2, timeout=30)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    records = [json.loads((out / ("rank%d.json" % r)).read_text()) for r in range(2)]
    for hook in ("on_train_begin", "on_epoch_end", "on_train_end"):
        assert records[1][hook] == "RuntimeError: a callback failed in " + hook
        assert ("ValueError: the fit failed on process 1 of 2: RuntimeError: a callback "
                "failed in " + hook) in records[0][hook]
    # a callback on one process that sets the weights is named as the likely cause
    for record in records:
        assert record["weights_moved"] == (
            "RuntimeError: the parameters differ between processes: process 1's are not "
            "process 0's; a callback that sets the weights, as EarlyStopping(restore_best="
            "True) does, goes to every process")


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
