"""fastnn.ops dense forward/backward against fastnn.reference: GEMM-based,
so compared with the GEMM tolerance scaled by |A| @ |B| (tests/tolerances.py)."""

import numpy as np
import pytest

import fastnn
from fastnn import ops
from fastnn import reference as ref

from .conftest import LAYOUTS, with_layout
from .tolerances import assert_close, gemm_scale

# (m, n_in, n_out): one row, one unit, odd and prime sizes, and larger ones
SHAPES = [(1, 1, 1), (1, 5, 3), (5, 1, 1), (7, 3, 1), (1, 31, 17), (13, 17, 19),
          (64, 33, 10), (129, 97, 61), (300, 256, 130), (40, 700, 300), (197, 290, 33)]
ACTS = list(fastnn.ACTIVATIONS)


def _layer(rng, m, n_in, n_out, dtype):
    X = rng.standard_normal((m, n_in)).astype(dtype)
    W = (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(dtype)
    b = rng.standard_normal(n_out).astype(dtype)
    return X, W, b


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("act", ACTS)
def test_dense_forward(act, shape, dtype, n_threads, rng, gemm_variant):
    X, W, b = _layer(rng, *shape, dtype)
    got = ops.dense_forward(X, W, b, act, n_threads=n_threads)
    want = ref.dense_forward(X, W, b, act)
    assert got.dtype == dtype and got.shape == want.shape
    # activations are 1-Lipschitz, so the GEMM's error bound carries over
    assert_close(got, want, "gemm", scale=gemm_scale(X, W) + np.abs(b).max(), k=shape[1])


@pytest.mark.parametrize("act", ["identity", "relu", "softmax"])
def test_dense_forward_without_bias(act, dtype, rng):
    X, W, _ = _layer(rng, 9, 4, 6, dtype)
    got = ops.dense_forward(X, W, None, act)
    assert_close(got, ref.dense_forward(X, W, None, act), "gemm", scale=gemm_scale(X, W), k=4)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("act", ACTS)
def test_dense_backward(act, shape, dtype, n_threads, rng, gemm_variant):
    m, n_in, n_out = shape
    X, W, b = _layer(rng, m, n_in, n_out, dtype)
    A = ref.dense_forward(X, W, b, act)
    dA = rng.standard_normal(A.shape).astype(dtype)
    l2 = 0.1 if act == "tanh" else 0.0
    dX, dW, db = ops.dense_backward(X, W, A, dA, act, l2=l2, n_threads=n_threads)
    rdX, rdW, rdb = ref.dense_backward(X, W, A, dA, act, l2=l2)
    dZ = ref.activation_backward(A, dA, act)
    for got in (dX, dW, db):
        assert got.dtype == dtype
    assert_close(dW, rdW, "gemm", scale=gemm_scale(X.T, dZ) + l2 * np.abs(W).max(), k=m)
    assert_close(db, rdb, "gemm", scale=np.abs(dZ).sum(axis=0).max(), k=m)
    assert_close(dX, rdX, "gemm", scale=gemm_scale(dZ, W.T), k=n_out)


def test_dense_backward_without_dX(dtype, rng):
    X, W, b = _layer(rng, 8, 5, 3, dtype)
    A = ref.dense_forward(X, W, b, "sigmoid")
    dA = rng.standard_normal(A.shape).astype(dtype)
    dX, dW, db = ops.dense_backward(X, W, A, dA, "sigmoid", need_dX=False)
    assert dX is None
    _, rdW, rdb = ref.dense_backward(X, W, A, dA, "sigmoid", need_dX=False)
    assert_close(dW, rdW, "gemm", scale=gemm_scale(X.T, np.abs(dA)), k=8)
    assert_close(db, rdb, "gemm", scale=np.abs(dA).sum(axis=0).max(), k=8)


def test_out_buffers_are_used_and_filled(dtype, rng):
    X, W, b = _layer(rng, 10, 6, 4, dtype)
    out = np.full((10, 4), np.nan, dtype=dtype)
    A = ops.dense_forward(X, W, b, "tanh", out=out)
    assert A is out
    dA = rng.standard_normal(A.shape).astype(dtype)
    want = ref.dense_backward(X, W, A, dA, "tanh")
    bufs = dict(out_dX=np.full(X.shape, np.nan, dtype), out_dW=np.full(W.shape, np.nan, dtype),
                out_db=np.full(4, np.nan, dtype), out_dZ=dA)  # dZ overwrites dA
    got = ops.dense_backward(X, W, A, dA, "tanh", **bufs)
    assert got[0] is bufs["out_dX"] and got[1] is bufs["out_dW"] and got[2] is bufs["out_db"]
    for g, w in zip(got, want):
        assert_close(g, w, "gemm", scale=np.abs(w).max() + 1, k=10)


def test_linear_backward_matches_reference(dtype, n_threads, rng):
    X, W, _ = _layer(rng, 33, 12, 7, dtype)
    dZ = rng.standard_normal((33, 7)).astype(dtype)
    dZ_before = dZ.copy()
    got = ops.linear_backward(X, W, dZ, l2=0.01, n_threads=n_threads)
    want = ref.linear_backward(X, W, dZ, l2=0.01)
    np.testing.assert_array_equal(dZ, dZ_before)  # an input, never written
    for g, w in zip(got, want):
        assert_close(g, w, "gemm", scale=np.abs(w).max() + 1, k=33)


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (9, 1), (100, 70), (3000, 5)], ids=str)
def test_bias_grad(shape, dtype, n_threads, rng):
    dZ = rng.standard_normal(shape).astype(dtype)
    got = ops.bias_grad(dZ, n_threads=n_threads)
    assert_close(got, ref.bias_grad(dZ), "gemm", scale=np.abs(dZ).sum(axis=0).max(),
                 k=shape[0])


@pytest.mark.parametrize("layout", LAYOUTS)
def test_dense_any_input_layout(layout, dtype, rng):
    X, W, b = _layer(rng, 12, 7, 5, dtype)
    want = ref.dense_forward(X, W, b, "relu")
    got = ops.dense_forward(with_layout(X, layout), with_layout(W, layout),
                            with_layout(b, layout), "relu")
    assert_close(got, want, "gemm", scale=gemm_scale(X, W) + np.abs(b).max(), k=7)
    dA = rng.standard_normal(want.shape).astype(dtype)
    got = ops.dense_backward(with_layout(X, layout), with_layout(W, layout),
                             with_layout(want, layout), with_layout(dA, layout), "relu")
    for g, w in zip(got, ref.dense_backward(X, W, want, dA, "relu")):
        assert_close(g, w, "gemm", scale=np.abs(w).max() + 1, k=12)


def test_integer_input_is_converted(dtype, rng):
    X = rng.integers(-3, 4, size=(6, 4))
    W = rng.standard_normal((4, 2)).astype(dtype)
    got = ops.dense_forward(X, W, None, "identity")
    assert got.dtype == dtype
    assert_close(got, X.astype(dtype) @ W, "gemm", scale=gemm_scale(X, W), k=4)
