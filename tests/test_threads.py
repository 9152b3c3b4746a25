"""Thread counts: every kernel gives bitwise identical results with 1 and 2
threads, and fastnn's thread settings act through the OpenMP runtime the
standard way (OMP_NUM_THREADS, set_num_threads, threadpoolctl)."""

import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import threadpoolctl
from threadpoolctl import threadpool_info, threadpool_limits

import fastnn
import fastnn as fn
from fastnn import ops


# big enough that every kernel takes its threaded path
M, N_IN, N_OUT = 512, 300, 257


def _same_for_1_and_2_threads(fn):
    one = fn(1)
    two = fn(2)
    for a, b in zip(one, two):
        if a is None:
            assert b is None
        else:
            np.testing.assert_array_equal(a, b)


def _data(dtype, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((M, N_IN)).astype(dtype)
    W = (rng.standard_normal((N_IN, N_OUT)) / 17).astype(dtype)
    b = rng.standard_normal(N_OUT).astype(dtype)
    return rng, X, W, b


@pytest.mark.parametrize("act", list(fastnn.ACTIVATIONS))
def test_dense_bitwise(act, dtype):
    rng, X, W, b = _data(dtype)
    A = ops.dense_forward(X, W, b, act)
    dA = rng.standard_normal(A.shape).astype(dtype)
    _same_for_1_and_2_threads(lambda nt: [ops.dense_forward(X, W, b, act, n_threads=nt)])
    _same_for_1_and_2_threads(lambda nt: [ops.activation_forward(A, act, n_threads=nt)])
    _same_for_1_and_2_threads(lambda nt: [ops.activation_backward(A, dA, act, n_threads=nt)])
    _same_for_1_and_2_threads(
        lambda nt: ops.dense_backward(X, W, A, dA, act, l2=0.01, n_threads=nt))


def test_losses_and_reductions_bitwise(dtype):
    rng, X, _, _ = _data(dtype)
    Z = rng.standard_normal((5000, 10)).astype(dtype)
    y = rng.integers(0, 10, 5000)
    yb = rng.integers(0, 2, (5000, 10)).astype(dtype)

    def losses(nt):
        l1, d1 = ops.softmax_cross_entropy(Z, y, n_threads=nt)
        l2, d2 = ops.sigmoid_binary_cross_entropy(Z, yb, n_threads=nt)
        l3, d3 = ops.mse(Z, yb, n_threads=nt)
        return [np.array([l1, l2, l3]), d1, d2, d3]
    _same_for_1_and_2_threads(losses)
    _same_for_1_and_2_threads(lambda nt: [ops.bias_grad(X, n_threads=nt)])
    _same_for_1_and_2_threads(lambda nt: list(ops.standardize_fit(X * 3 + 1, n_threads=nt)))
    _same_for_1_and_2_threads(lambda nt: [np.array(ops.layer_stats(X, n_threads=nt))])
    big = [rng.standard_normal(300001).astype(dtype), X]
    _same_for_1_and_2_threads(lambda nt: [np.array(ops.global_norm(big, n_threads=nt))])

    def clipped(nt):
        g = [a.copy() for a in big]
        norm = ops.clip_grad_norm(g, 1.0, n_threads=nt)
        return [np.array(norm)] + g
    _same_for_1_and_2_threads(clipped)
    _same_for_1_and_2_threads(lambda nt: [ops.dropout_forward(X, 0.4, 3, 2, 1, n_threads=nt)])


def test_optimizers_bitwise(dtype):
    rng = np.random.default_rng(1)
    p0 = rng.standard_normal(200001).astype(dtype)
    g = rng.standard_normal(p0.size).astype(dtype)

    def adam(nt):
        p, m, v = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
        for t in (1, 2, 3):
            ops.adam_step(p, g, m, v, t, 1e-3, weight_decay=0.01, n_threads=nt)
        return [p, m, v]
    _same_for_1_and_2_threads(adam)


def test_training_gives_the_same_weights_on_any_thread_count(dtype, gemm_variant):
    """Whole fits through the C training loop and its GEMM workspace, on
    layers that cross the products' tile and K-block edges."""
    rng = np.random.default_rng(2)
    X = rng.standard_normal((600, 300)).astype(dtype)
    y = rng.integers(0, 10, 600)

    def fit(nt):
        model = fastnn.Sequential([fastnn.Dense(200, activation="tanh"),
                                   fastnn.Dense(70, activation="relu"),
                                   fastnn.Dense(10, activation="softmax")],
                                  input_dim=300, seed=3, dtype=np.dtype(dtype).name)
        model.fit(X, y, loss="cross_entropy", epochs=2, batch_size=250, n_threads=nt)
        return [model.get_params_flat(), model.predict_proba(X, n_threads=nt)]
    one = fit(1)
    for nt in (2, 3, 7):
        for got, want in zip(fit(nt), one):
            np.testing.assert_array_equal(got, want)


def test_num_threads_round_trip():
    before = fastnn.get_num_threads()
    fastnn.set_num_threads(1)
    assert fastnn.get_num_threads() == 1
    fastnn.set_num_threads(2)
    assert fastnn.get_num_threads() == 2
    fastnn.set_num_threads(np.int64(1))  # any integer type, as everywhere else
    assert fastnn.get_num_threads() == 1
    fastnn.set_num_threads(before)
    for bad in (True, 1.0, "2"):
        with pytest.raises(TypeError, match="must be an integer"):
            fastnn.set_num_threads(bad)


def test_n_threads_takes_numpy_integers():
    X, W = np.ones((3, 2)), np.ones((2, 2))
    want = fastnn.ops.dense_forward(X, W, None, "relu", n_threads=2)
    got = fastnn.ops.dense_forward(X, W, None, "relu", n_threads=np.int64(2))
    np.testing.assert_array_equal(got, want)
    with pytest.raises(TypeError, match="n_threads must be an integer or None, got 2.0"):
        fastnn.ops.dense_forward(X, W, None, "relu", n_threads=2.0)


def test_threadpoolctl_sees_and_limits_fastnn_openmp():
    if not fastnn._openmp.openmp_enabled():
        pytest.skip("this build has no OpenMP")
    ops.dense_forward(np.ones((2, 2)), np.ones((2, 2)), None, "relu")
    assert any(lib["user_api"] == "openmp" for lib in threadpool_info())
    with threadpool_limits(limits=1, user_api="openmp"):
        assert fastnn.get_num_threads() == 1
    assert fastnn.get_num_threads() >= 1


def test_blas_threads_restored_after_call():
    from fastnn._threads import scipy_blas_controllers
    libs = scipy_blas_controllers()
    before = [lib.get_num_threads() for lib in libs]
    rng = np.random.default_rng(0)
    ops.dense_forward(rng.standard_normal((64, 64)), rng.standard_normal((64, 64)), None,
                      "relu", n_threads=1)
    assert [lib.get_num_threads() for lib in libs] == before


def test_omp_num_threads_is_honoured():
    # a count that is neither the number of cores (OpenMP's default) nor 1
    n = (os.cpu_count() or 1) + 2
    code = "import fastnn; print(fastnn.get_num_threads())"
    env = dict(os.environ, OMP_NUM_THREADS=str(n))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    # a build without OpenMP runs every kernel on one thread
    expected = str(n) if fastnn._openmp.openmp_enabled() else "1"
    assert out.stdout.strip() == expected


def test_counts_beyond_a_c_int_are_named():
    # the kernels take the thread count as an int and Adam's step count as an int64
    with pytest.raises(ValueError, match=r"n_threads=2147483648 is more than the 2147483647"):
        ops.activation_forward(np.ones((3, 2)), "tanh", n_threads=2**31)
    p = np.ones(3)
    with pytest.raises(ValueError,
                       match=r"t must be <= 9223372036854775807, got 9223372036854775808"):
        ops.adam_step(p, np.ones(3), np.zeros(3), np.zeros(3), 2**63, 0.1)
    ops.adam_step(p, np.ones(3), np.zeros(3), np.zeros(3), 2**63 - 1, 0.1)


def test_negative_n_threads_means_all_cores(dtype):
    from fastnn._threads import resolve_n_threads
    assert resolve_n_threads(-1) == (os.cpu_count() or 1)
    assert resolve_n_threads(None) == fastnn.get_num_threads()
    X = np.ones((3, 2), dtype=dtype)
    np.testing.assert_array_equal(ops.activation_forward(X, "relu", n_threads=-1), X)


# --------------------------------------------------------------------------
# Concurrency: Python threads using fastnn at the same time. The kernels keep
# no global mutable state and release the GIL for their whole run, so two
# models trained in two threads at once end bitwise where they end trained one
# after the other; one model predicts from several threads at once; changing
# the default thread count while another thread trains disturbs neither; and
# another Python thread keeps running during a long kernel call.
# --------------------------------------------------------------------------

def _main_thread_controls_blas():
    """Put threadpoolctl's OpenBLAS control where a program that used fastnn in
    its main thread first has it: with the main thread. (threadpoolctl lets one
    thread at a time set a pthreads OpenBLAS's thread count; a test that let a
    worker thread take control would silently unpin the BLAS for every later
    test.)"""
    controller = getattr(threadpoolctl, "OpenBLASController", None)
    if controller is not None and hasattr(controller, "clear_controlling_thread"):
        controller.clear_controlling_thread(force=True)
    assert threading.current_thread() is threading.main_thread()
    ops.dense_forward(np.ones((2, 2)), np.ones((2, 2)), None, "relu")


@pytest.fixture(params=["blas-held-to-one-thread", "blas-default"])
def blas(request):
    """Whether SciPy's BLAS is held to one thread for the whole process (so the
    kernels alone are under test) or left as fastnn finds it."""
    _main_thread_controls_blas()
    try:
        if request.param == "blas-held-to-one-thread":
            with threadpool_limits(limits=1, user_api="blas"):
                yield request.param
        else:
            yield request.param
    finally:
        _main_thread_controls_blas()


def _job(kind):
    """(make model, X, y, fit kwargs): two deliberately different trainings."""
    rng = np.random.default_rng({"a": 1, "b": 2}[kind])
    if kind == "a":
        X = rng.standard_normal((3000, 24)).astype(np.float32)
        y = (X[:, 0] * X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 0.5)
        make = lambda: fn.Sequential([fn.Dense(96, activation="relu"), fn.Dropout(0.2),  # noqa
                                      fn.Dense(48, activation="tanh"),
                                      fn.Dense(3, activation="softmax")],
                                     input_dim=24, dtype="float32", seed=11)
        kwargs = dict(optimizer=fn.optim.Adam(lr=3e-3), batch_size=16, epochs=6, l2=1e-4,
                      validation_split=0.1)
    else:
        X = rng.standard_normal((2500, 40))
        y = np.sin(X[:, :3].sum(axis=1))
        make = lambda: fn.Sequential([fn.Dense(128, activation="softplus"),  # noqa
                                      fn.Dense(1, activation="identity")],
                                     input_dim=40, dtype="float64", seed=12)
        kwargs = dict(loss="mse", optimizer=fn.optim.Nesterov(lr=1e-3, momentum=0.9),
                      batch_size=32, epochs=6, clip_norm=5.0)
    return make, X, y, kwargs


def _train(kind, **extra):
    make, X, y, kwargs = _job(kind)
    model = make()
    history = model.fit(X, y, **kwargs, **extra)
    return model, history


def _result(model, history):
    return (model.get_params_flat(), [s.copy() for s in model.optimizer_state_], model.t_,
            history["loss"], history.history.get("val_loss"))


def _assert_same(got, want):
    np.testing.assert_array_equal(got[0], want[0])
    for a, b in zip(got[1], want[1], strict=True):
        np.testing.assert_array_equal(a, b)
    assert got[2:] == want[2:]


@pytest.fixture(scope="module")
def sequential():
    """Each training run alone, one after the other."""
    _main_thread_controls_blas()
    return {kind: _result(*_train(kind)) for kind in ("a", "b")}


def _in_threads(*targets):
    """Run the callables in threads started together; re-raise their errors."""
    barrier = threading.Barrier(len(targets))
    results, errors = [None] * len(targets), []

    def run(i, target):
        try:
            barrier.wait()
            results[i] = target()
        except BaseException as exc:  # noqa: B902 - reported in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, t)) for i, t in enumerate(targets)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
        assert not t.is_alive(), "a thread did not finish"
    if errors:
        raise errors[0]
    return results


@pytest.mark.parametrize("n_threads", [None, 1, 2])
def test_two_models_trained_in_two_threads_at_once_equal_sequential_training(sequential,
                                                                            n_threads, blas):
    results = _in_threads(lambda: _result(*_train("a", n_threads=n_threads)),
                          lambda: _result(*_train("b", n_threads=n_threads)))
    _assert_same(results[0], sequential["a"])
    _assert_same(results[1], sequential["b"])


def test_same_architecture_trained_in_four_threads_at_once_equals_sequential(sequential,
                                                                             blas):
    results = _in_threads(*[lambda: _result(*_train("a")) for _ in range(4)])
    for r in results:
        _assert_same(r, sequential["a"])


def test_predicting_from_one_model_in_several_threads_at_once(blas):
    model, _ = _train("a")
    rng = np.random.default_rng(5)
    batches = [rng.standard_normal((m, 24)).astype(np.float32) for m in (1, 7, 500, 5000)]
    want = [(model.predict_proba(X, n_threads=1), model.predict(X, n_threads=1))
            for X in batches]
    params = model.get_params_flat()

    def predict_many(n_threads):
        for _ in range(15):
            for X, (proba, labels) in zip(batches, want):
                np.testing.assert_array_equal(model.predict_proba(X, n_threads=n_threads),
                                              proba)
                np.testing.assert_array_equal(model.predict(X, n_threads=n_threads), labels)
        return True

    assert all(_in_threads(*[lambda nt=nt: predict_many(nt) for nt in (None, 1, 2, 2)]))
    np.testing.assert_array_equal(model.get_params_flat(), params)
    X, y = _job("a")[1:3]
    scores = _in_threads(*[lambda: model.evaluate(X, y) for _ in range(3)])
    assert scores[0] == scores[1] == scores[2] == model.evaluate(X, y)


def test_set_num_threads_while_another_thread_trains(sequential, blas):
    done = threading.Event()
    seen = []

    def train():
        try:
            return _result(*_train("a"))
        finally:
            done.set()

    def toggle():
        n = 0
        while not done.is_set():
            fn.set_num_threads(1 + n % 2)
            seen.append(fn.get_num_threads())
            n += 1
            time.sleep(0.0005)
        fn.set_num_threads(2)
        return fn.get_num_threads()

    trained, last = _in_threads(train, toggle)
    _assert_same(trained, sequential["a"])
    assert last == 2 and len(seen) > 10 and set(seen) <= {1, 2}


def test_training_in_the_main_thread_while_another_thread_sets_num_threads(sequential):
    stop = threading.Event()

    def toggle():
        n = 0
        while not stop.is_set():
            fn.set_num_threads(1 + n % 2)
            n += 1
            time.sleep(0.0005)

    before = fn.get_num_threads()
    thread = threading.Thread(target=toggle)
    thread.start()
    try:
        trained = _result(*_train("b"))
    finally:
        stop.set()
        thread.join()
    _assert_same(trained, sequential["b"])
    assert fn.get_num_threads() == before  # a thread's setting is its own


def _seen_mid_call(call, prepare, mid_call, attempts=20):
    """Whether this thread, polling while call() runs in another thread, finds
    mid_call() true: the call's output part written. Seeing that proves this
    thread ran during the call, since a call holding the GIL keeps every other
    Python thread waiting until it returns. When this thread gets to run
    depends on the machine's load, so nothing is timed: the call is repeated
    (prepare() resets its output) until this thread has seen one in progress."""
    for _ in range(attempts):
        prepare()
        thread = threading.Thread(target=call)
        thread.start()
        seen = False
        while thread.is_alive() and not seen:
            seen = mid_call()
            time.sleep(0)  # lets the call's thread take the GIL when it needs it
        thread.join()
        if seen:
            return True
    return False


def test_a_long_kernel_call_releases_the_gil():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((1600, 1600)).astype(np.float32)
    W = rng.standard_normal((1600, 1600)).astype(np.float32)
    out = np.empty((1600, 1600), np.float32)
    # the product writes its output tile by tile: first row first, last row last
    assert _seen_mid_call(lambda: ops.dense_forward(X, W, None, "tanh", out=out, n_threads=1),
                          lambda: out.fill(np.nan),
                          lambda: not np.isnan(out[0, 0]) and np.isnan(out[-1, -1]))
    np.testing.assert_array_equal(out, ops.dense_forward(X, W, None, "tanh", n_threads=1))


def test_training_releases_the_gil(monkeypatch):
    from fastnn import _backends, _epochs
    runs = []
    original = _backends.FastNetwork.train_batches

    def recorded(self, X, y, perm, batch_size, first, n, lrs, losses, nt, sw=None):
        runs.append(losses[:n])  # the C loop writes each batch's loss as it goes
        return original(self, X, y, perm, batch_size, first, n, lrs, losses, nt, sw)

    monkeypatch.setattr(_backends.FastNetwork, "train_batches", recorded)
    monkeypatch.setattr(_epochs, "RUN_SECONDS", 10.0)  # runs as long as whole epochs
    rng = np.random.default_rng(0)
    X = rng.standard_normal((8000, 64)).astype(np.float32)
    y = rng.integers(0, 3, 8000)
    model = fn.Sequential([fn.Dense(256, activation="relu"), fn.Dense(3, activation="softmax")],
                          input_dim=64, seed=0)
    # a run with its first losses written and its last not yet: inside the C loop
    assert _seen_mid_call(lambda: model.fit(X, y, epochs=3, batch_size=4, n_threads=1),
                          runs.clear,
                          lambda: bool(runs) and runs[-1][0] > 0 and runs[-1][-1] == 0)
