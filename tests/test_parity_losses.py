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


@pytest.mark.parametrize("n_threads", [1, 2])
def test_a_class_without_target_mass_adds_nothing_even_at_minus_infinity(dtype, isa, n_threads):
    # a logit of -inf where the target is 0 (a masked class): one-hot and soft
    # targets give the loss of class labels, as the reference defines it
    Z = np.array([[-np.inf, 0.0, 1.0], [2.0, -np.inf, 0.5], [0.3, 0.1, -0.2]], dtype=dtype)
    Y = np.array([[0.0, 0.0, 1.0], [0.25, 0.0, 0.75], [0.0, 1.0, 0.0]], dtype=dtype)
    loss, dZ = ops.softmax_cross_entropy(Z, Y, n_threads=n_threads)
    rloss, rdZ = ref.softmax_cross_entropy(Z, Y)
    assert np.isfinite(loss) and np.all(np.isfinite(dZ))
    assert_close(loss, rloss, "gemm", k=9, dtype=dtype)
    assert_close(dZ, rdZ, "elementwise", scale=1 / 3)
    one_hot, _ = ops.softmax_cross_entropy(Z[[0, 2]], Y[[0, 2]], n_threads=n_threads)
    labels, _ = ops.softmax_cross_entropy(Z[[0, 2]], np.array([2, 1]), n_threads=n_threads)
    assert_close(one_hot, labels, "gemm", k=6, dtype=dtype)


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


# --------------------------------------------------------------------------
# Poisson regression's loss and the weighted forms of every loss
# --------------------------------------------------------------------------

@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_poisson_loss(shape, dtype, n_threads, rng, isa):
    m, k = shape
    Z = (rng.standard_normal(shape) * 2).astype(dtype)
    Y = rng.poisson(2.0, shape).astype(dtype)
    loss, dZ = ops.poisson_loss(Z, Y, n_threads=n_threads)
    rloss, rdZ = ref.poisson_loss(Z, Y)
    assert_close(loss, rloss, "gemm", scale=abs(rloss) + 1.0, k=m * k, dtype=dtype)
    assert_close(dZ, rdZ, "elementwise", scale=(np.exp(np.abs(Z).max()) + Y.max()) / m)


def test_poisson_loss_is_half_the_mean_poisson_deviance(rng):
    """An independent definition: scikit-learn's mean Poisson deviance of the
    means exp(Z), halved; dZ is the mean's residual."""
    metrics = pytest.importorskip("sklearn.metrics")
    Z = rng.standard_normal((40, 1))
    Y = rng.poisson(np.exp(Z[:, 0])).astype(float)
    Y[0] = 0.0  # a zero count takes the y log y = 0 branch
    loss, dZ = ops.poisson_loss(Z, Y)
    np.testing.assert_allclose(loss, 0.5 * metrics.mean_poisson_deviance(Y, np.exp(Z[:, 0])),
                               rtol=1e-12)
    np.testing.assert_allclose(dZ[:, 0], (np.exp(Z[:, 0]) - Y) / 40, rtol=1e-12)


def _loss_case(name, rng, m, k, dtype):
    Z = (rng.standard_normal((m, k)) * 2).astype(dtype)
    if name == "softmax_cross_entropy":
        return Z, rng.integers(0, k, m)
    if name == "sigmoid_binary_cross_entropy":
        return Z, rng.integers(0, 2, (m, k)).astype(dtype)
    if name == "poisson_loss":
        return Z, rng.poisson(2.0, (m, k)).astype(dtype)
    return Z, rng.standard_normal((m, k)).astype(dtype)


LOSSES = ["softmax_cross_entropy", "sigmoid_binary_cross_entropy", "mse", "poisson_loss"]


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("shape", [(1, 2), (2, 1), (7, 3), (257, 130)], ids=str)
def test_weighted_losses_match_reference(name, shape, dtype, n_threads, rng, isa):
    m, k = shape
    if name == "softmax_cross_entropy" and k == 1:
        k = 2
    Z, y = _loss_case(name, rng, m, k, dtype)
    sw = rng.uniform(-0.5, 2.0, m)
    sw[0] = 1.0 + abs(sw.sum())  # keeps the sum away from zero
    loss, dZ = getattr(ops, name)(Z, y, sample_weight=sw, n_threads=n_threads)
    rloss, rdZ = getattr(ref, name)(Z, y, sample_weight=sw)
    assert_close(loss, rloss, "gemm", scale=abs(rloss) + 1.0, k=m * k, dtype=dtype)
    assert_close(dZ, rdZ, "elementwise",
                 scale=(np.abs(rdZ).max() + np.finfo(dtype).tiny) * 4)


@pytest.mark.parametrize("name", LOSSES)
def test_integer_weights_repeat_rows(name, rng):
    """A weight of 2 is the row twice, 0 is the row left out: the weighted mean
    and its gradient are those of the repeated batch."""
    w = np.array([2, 0, 1, 3, 1])
    Z, y = _loss_case(name, rng, 5, 3, np.float64)
    loss, dZ = getattr(ops, name)(Z, y, sample_weight=w)
    rows = np.repeat(np.arange(5), w)
    rep_loss, rep_dZ = getattr(ops, name)(Z[rows], y[rows])
    np.testing.assert_allclose(loss, rep_loss, rtol=1e-13)
    # the repeated rows' gradients, added back per original row
    summed = np.zeros_like(dZ)
    np.add.at(summed, rows, rep_dZ)
    np.testing.assert_allclose(dZ, summed, rtol=1e-12, atol=1e-16)


@pytest.mark.parametrize("name", LOSSES)
def test_unit_weights_change_nothing(name, dtype, rng):
    Z, y = _loss_case(name, rng, 9, 3, dtype)
    loss, dZ = getattr(ops, name)(Z, y)
    wloss, wdZ = getattr(ops, name)(Z, y, sample_weight=np.ones(9))
    assert wloss == loss
    np.testing.assert_array_equal(wdZ, dZ)


@pytest.mark.parametrize("module", [ops, ref], ids=["ops", "reference"])
@pytest.mark.parametrize("name", LOSSES)
def test_weights_summing_to_zero_are_refused(name, module, rng):
    Z, y = _loss_case(name, rng, 4, 3, np.float64)
    with pytest.raises(ZeroDivisionError, match="sample_weight sums to zero"):
        getattr(module, name)(Z, y, sample_weight=[1.0, -1.0, 0.0, 0.0])
