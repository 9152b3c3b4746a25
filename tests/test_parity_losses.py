"""Fused losses against fastnn.reference: loss (a float) and gradient."""

import numpy as np
import pytest

from fastnn import ops
from fastnn import reference as ref

from .conftest import LAYOUTS, with_layout
from .tolerances import assert_close

SHAPES = [(1, 1), (1, 2), (2, 1), (7, 3), (64, 10), (257, 130)]


def _check(got, want, m, k, dtype):
    loss, dZ = got
    rloss, rdZ = want
    assert isinstance(loss, float)
    assert dZ.dtype == dtype
    # the loss is a float64 reduction of m*k terms, whatever the dtype
    assert_close(loss, rloss, "gemm", scale=abs(rloss) + 1.0, k=m * k, dtype=dtype)
    # gradients are (p - y) / m: their error is relative to 1/m, not to themselves
    assert_close(dZ, rdZ, "elementwise", scale=1.0 / m)


@pytest.mark.parametrize("shape", [s for s in SHAPES if s[1] > 1] + [(5, 1)], ids=str)
def test_softmax_cross_entropy_labels(shape, dtype, n_threads, rng, isa):
    m, k = shape
    Z = (rng.standard_normal(shape) * 4).astype(dtype)
    y = rng.integers(0, k, size=m)
    _check(ops.softmax_cross_entropy(Z, y, n_threads=n_threads),
           ref.softmax_cross_entropy(Z, y), m, k, dtype)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_softmax_cross_entropy_one_hot_and_soft(shape, dtype, rng, isa):
    m, k = shape
    Z = rng.standard_normal(shape).astype(dtype)
    y = rng.integers(0, k, size=m)
    Y = np.eye(k, dtype=dtype)[y]
    got = ops.softmax_cross_entropy(Z, Y)
    _check(got, ref.softmax_cross_entropy(Z, Y), m, k, dtype)
    # one-hot targets are the same problem as labels
    _check(got, ops.softmax_cross_entropy(Z, y), m, k, dtype)
    P = rng.random(shape)
    P = (P / P.sum(axis=1, keepdims=True)).astype(dtype)
    _check(ops.softmax_cross_entropy(Z, P), ref.softmax_cross_entropy(Z, P), m, k, dtype)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_sigmoid_binary_cross_entropy(shape, dtype, n_threads, rng, isa):
    Z = (rng.standard_normal(shape) * 4).astype(dtype)
    y = rng.integers(0, 2, size=shape).astype(dtype)
    _check(ops.sigmoid_binary_cross_entropy(Z, y, n_threads=n_threads),
           ref.sigmoid_binary_cross_entropy(Z, y), *shape, dtype)


def test_sigmoid_bce_accepts_flat_targets(dtype, rng):
    Z = rng.standard_normal((9, 1)).astype(dtype)
    y = rng.integers(0, 2, size=9)
    _check(ops.sigmoid_binary_cross_entropy(Z, y), ref.sigmoid_binary_cross_entropy(Z, y),
           9, 1, dtype)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_mse(shape, dtype, n_threads, rng, isa):
    A = rng.standard_normal(shape).astype(dtype)
    Y = rng.standard_normal(shape).astype(dtype)
    loss, dA = ops.mse(A, Y, n_threads=n_threads)
    rloss, rdA = ref.mse(A, Y)
    assert_close(loss, rloss, "gemm", k=A.size, dtype=dtype)
    assert_close(dA, rdA, "elementwise", scale=np.abs(A - Y).max() / shape[0])


def test_losses_with_extreme_logits_are_finite(dtype, isa):
    Z = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [88.0, 89.0, -88.0]], dtype=dtype)
    y = np.array([1, 0, 2])
    loss, dZ = ops.softmax_cross_entropy(Z, y)
    rloss, rdZ = ref.softmax_cross_entropy(Z, y)
    assert np.isfinite(loss) and np.all(np.isfinite(dZ))
    assert_close(loss, rloss, "gemm", k=9, dtype=dtype)
    assert_close(dZ, rdZ, "elementwise", scale=1 / 3)
    zb = np.array([[1e4], [-1e4], [0.0], [50.0]], dtype=dtype)
    yb = np.array([0.0, 1.0, 1.0, 1.0])
    loss, dZ = ops.sigmoid_binary_cross_entropy(zb, yb)
    rloss, rdZ = ref.sigmoid_binary_cross_entropy(zb, yb)
    assert np.isfinite(loss) and np.all(np.isfinite(dZ))
    # -ln(sigmoid(-1e4)) = 1e4 for the first two rows
    assert_close(loss, (1e4 + 1e4 + np.log(2) + np.log1p(np.exp(-50.0))) / 4, "gemm",
                 dtype=dtype)
    assert_close(loss, rloss, "gemm", dtype=dtype)
    assert_close(dZ, rdZ, "elementwise", scale=1 / 4)


def test_cross_entropy_is_log_of_softmax(rng):
    Z = rng.standard_normal((5, 4))
    y = np.array([0, 3, 2, 1, 1])
    P = np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True)
    loss, dZ = ops.softmax_cross_entropy(Z, y)
    np.testing.assert_allclose(loss, -np.mean(np.log(P[np.arange(5), y])), rtol=1e-13)
    np.testing.assert_allclose(dZ, (P - np.eye(4)[y]) / 5, rtol=1e-12, atol=1e-16)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_losses_any_layout(layout, dtype, rng):
    Z = rng.standard_normal((8, 3)).astype(dtype)
    y = rng.integers(0, 3, size=8)
    _check(ops.softmax_cross_entropy(with_layout(Z, layout), with_layout(y, layout)),
           ref.softmax_cross_entropy(Z, y), 8, 3, dtype)
    Y = rng.standard_normal((8, 3)).astype(dtype)
    loss, dA = ops.mse(with_layout(Z, layout), with_layout(Y, layout))
    assert_close(loss, ref.mse(Z, Y)[0], "gemm", k=24, dtype=dtype)


def test_loss_gradient_can_overwrite_logits(dtype, rng):
    Z = rng.standard_normal((6, 4)).astype(dtype)
    y = rng.integers(0, 4, size=6)
    rloss, rdZ = ref.softmax_cross_entropy(Z, y)
    loss, dZ = ops.softmax_cross_entropy(Z, y, out=Z)
    assert dZ is Z
    _check((loss, dZ), (rloss, rdZ), 6, 4, dtype)
