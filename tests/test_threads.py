"""Thread counts: every kernel gives bitwise identical results with 1 and 2
threads, and fastnn's thread settings act through the OpenMP runtime the
standard way (OMP_NUM_THREADS, set_num_threads, threadpoolctl)."""

import os
import subprocess
import sys

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import fastnn
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
    fastnn.set_num_threads(before)


def test_threadpoolctl_sees_and_limits_fastnn_openmp():
    if not fastnn._openmp.openmp_enabled():
        pytest.skip("this build has no OpenMP")
    ops.dense_forward(np.ones((2, 2)), np.ones((2, 2)), None, "relu")
    assert any(lib["user_api"] == "openmp" for lib in threadpool_info())
    with threadpool_limits(limits=1, user_api="openmp"):
        assert fastnn.get_num_threads() == 1
    assert fastnn.get_num_threads() >= 1


def test_blas_threads_restored_after_call():
    from fastnn._threads import _scipy_blas_controllers
    libs = _scipy_blas_controllers()
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


def test_negative_n_threads_means_all_cores(dtype):
    from fastnn._threads import resolve_n_threads
    assert resolve_n_threads(-1) == (os.cpu_count() or 1)
    assert resolve_n_threads(None) == fastnn.get_num_threads()
    X = np.ones((3, 2), dtype=dtype)
    np.testing.assert_array_equal(ops.activation_forward(X, "relu", n_threads=-1), X)
