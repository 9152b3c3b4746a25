"""Norms, clipping, L2, dropout, standardization and layer statistics against
fastnn.reference."""

import numpy as np
import pytest

from fastnn import ops
from fastnn import reference as ref

from .conftest import LAYOUTS, with_layout
from .tolerances import assert_close


def _grads(rng, dtype, sizes):
    return [rng.standard_normal(s).astype(dtype) for s in sizes]


GRAD_SIZES = [[(1,)], [(3, 4), (4,)], [(300, 200), (200,), (200, 10), (10,)]]


@pytest.mark.parametrize("sizes", GRAD_SIZES, ids=str)
def test_global_norm(sizes, dtype, n_threads, rng):
    g = _grads(rng, dtype, sizes)
    n = sum(a.size for a in g)
    assert_close(ops.global_norm(g, n_threads=n_threads), ref.global_norm(g), "gemm", k=n,
                 dtype=np.float64)


@pytest.mark.parametrize("sizes", GRAD_SIZES, ids=str)
@pytest.mark.parametrize("clip", [True, False])
def test_clip_grad_norm(sizes, clip, dtype, n_threads, rng):
    g = _grads(rng, dtype, sizes)
    rg = [a.copy() for a in g]
    norm = ref.global_norm(g)
    max_norm = norm / 3 if clip else norm * 2
    ids = [id(a) for a in g]
    got = ops.clip_grad_norm(g, max_norm, n_threads=n_threads)
    want = ref.clip_grad_norm(rg, max_norm)
    assert [id(a) for a in g] == ids
    assert_close(got, want, "gemm", dtype=np.float64)
    for a, r in zip(g, rg):
        assert_close(a, r, "elementwise")
    if clip:
        assert_close(ref.global_norm(g), max_norm, "elementwise", dtype=dtype)


@pytest.mark.parametrize("view", ["every-other", "reversed", "column"])
def test_clip_grad_norm_of_views_that_flatten_to_views(view, dtype, n_threads, rng):
    # a strided, reversed or column view flattens to a view, not a copy: the norm
    # is taken of a contiguous copy and the view is scaled in place
    make = {"every-other": lambda a: a[::2], "reversed": lambda a: a[::-1],
            "column": lambda a: a.reshape(-1, 2)[:, :1]}[view]
    base = rng.standard_normal(30).astype(dtype)
    mine, theirs = base.copy(), base.copy()
    g, rg = make(mine), make(theirs)
    norm = ref.global_norm([rg.copy()])
    got = ops.clip_grad_norm([g], norm / 3, n_threads=n_threads)
    want = ref.clip_grad_norm([rg], norm / 3)
    assert_close(got, want, "gemm", dtype=np.float64)
    assert_close(mine, theirs, "elementwise")


def test_clip_grad_value(dtype, n_threads, rng):
    g = _grads(rng, dtype, [(50, 40), (40,)])
    rg = [a.copy() for a in g]
    ops.clip_grad_value(g, 0.5, n_threads=n_threads)
    ref.clip_grad_value(rg, 0.5)
    for a, r in zip(g, rg):
        np.testing.assert_array_equal(a, r)
        assert np.abs(a).max() <= dtype(0.5)


def test_clip_non_contiguous_grads_in_place(dtype, rng):
    big = rng.standard_normal((10, 10)).astype(dtype) * 10
    view = big[::2, ::3]
    want = np.clip(view, -1, 1)
    ops.clip_grad_value([view], 1.0)
    np.testing.assert_array_equal(big[::2, ::3], want)
    view2 = big[1::2, ::3]
    rv = view2.copy()
    ops.clip_grad_norm([view2], 0.1)
    ref.clip_grad_norm([rv], 0.1)
    assert_close(big[1::2, ::3], rv, "elementwise")


def test_l2_penalty(dtype, rng):
    W = _grads(rng, dtype, [(20, 10), (10, 3)])
    assert_close(ops.l2_penalty(W, 0.3, 50), ref.l2_penalty(W, 0.3, 50), "gemm", k=230,
                 dtype=dtype)
    expected = 0.3 / 100 * sum(float(np.sum(w.astype(np.float64) ** 2)) for w in W)
    assert_close(ops.l2_penalty(W, 0.3, 50), expected, "gemm", k=230, dtype=dtype)


# ---------------------------------------------------------------- dropout

@pytest.mark.parametrize("rate", [0.0, 0.1, 0.5, 0.9])
@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (128, 300)], ids=str)
def test_dropout_mask_matches_reference(rate, shape, dtype):
    got = ops.dropout_mask(shape, rate, seed=42, step=3, layer=1, dtype=dtype)
    want = ref.dropout_mask(shape, rate, seed=42, step=3, layer=1, dtype=dtype)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, want)


def test_dropout_forward_and_backward_share_the_mask(dtype, n_threads, rng):
    A = rng.standard_normal((200, 257)).astype(dtype)
    dA = rng.standard_normal(A.shape).astype(dtype)
    out = ops.dropout_forward(A, 0.3, 7, 11, 2, n_threads=n_threads)
    np.testing.assert_array_equal(out, ref.dropout_forward(A, 0.3, 7, 11, 2))
    back = ops.dropout_backward(dA, 0.3, 7, 11, 2, n_threads=n_threads)
    np.testing.assert_array_equal(back, ref.dropout_backward(dA, 0.3, 7, 11, 2))
    np.testing.assert_array_equal(out == 0, back == 0)


def test_dropout_statistics(dtype):
    rate = 0.3
    mask = ops.dropout_mask((400, 500), rate, seed=1, step=0, layer=0, dtype=dtype)
    kept = mask != 0
    n = mask.size
    # the keep fraction is Binomial(n, q)/n: 6 standard deviations
    assert abs(kept.mean() - (1 - rate)) < 6 * np.sqrt(rate * (1 - rate) / n)
    np.testing.assert_array_equal(mask[kept], dtype(1 / (1 - rate)))
    # inverted dropout keeps the expected activation
    assert abs(mask.astype(np.float64).mean() - 1.0) < 6 * np.sqrt(rate / (1 - rate) / n)
    # rows and columns are not correlated with the index
    assert abs(kept[:, ::2].mean() - kept[:, 1::2].mean()) < 0.01


def test_dropout_masks_differ_by_seed_step_and_layer():
    base = ops.dropout_mask((50, 50), 0.5, 1, 1, 1)
    for args in [(2, 1, 1), (1, 2, 1), (1, 1, 2)]:
        other = ops.dropout_mask((50, 50), 0.5, *args)
        assert 0.4 < np.mean(base != other) < 0.6
    np.testing.assert_array_equal(base, ops.dropout_mask((50, 50), 0.5, 1, 1, 1))


def test_dropout_rate_zero_is_identity(dtype, rng):
    A = rng.standard_normal((9, 4)).astype(dtype)
    np.testing.assert_array_equal(ops.dropout_forward(A, 0.0, 1, 2, 3), A)


def test_dropout_in_place(dtype, rng):
    A = rng.standard_normal((9, 4)).astype(dtype)
    want = ref.dropout_forward(A, 0.5, 1, 2, 3)
    assert ops.dropout_forward(A, 0.5, 1, 2, 3, out=A) is A
    np.testing.assert_array_equal(A, want)


# ---------------------------------------------------------------- standardization

@pytest.mark.parametrize("shape", [(1, 1), (1, 5), (5, 1), (100, 3), (500, 130)], ids=str)
def test_standardize(shape, dtype, n_threads, rng):
    X = (rng.standard_normal(shape) * rng.uniform(0.1, 50, shape[1])
         + rng.uniform(-100, 100, shape[1])).astype(dtype)
    mean, std = ops.standardize_fit(X, n_threads=n_threads)
    rmean, rstd = ref.standardize_fit(X)
    assert mean.dtype == dtype and std.dtype == dtype
    assert_close(mean, rmean, "gemm", scale=np.abs(X).max(), k=shape[0])
    assert_close(std, rstd, "gemm", scale=np.abs(X - rmean).max(), k=shape[0])
    Xt = ops.standardize_transform(X, mean, std, n_threads=n_threads)
    np.testing.assert_array_equal(Xt, ref.standardize_transform(X, mean, std))
    if shape[0] > 1:
        x64 = Xt.astype(np.float64)
        moving = std > 0
        # x - mean rounds relative to |x|, so the error is relative to |x| / std
        scale = float((np.abs(X).max(axis=0)[moving] / std[moving]).max())
        assert_close(x64.mean(axis=0)[moving], 0 * mean[moving], "gemm", scale=scale,
                     k=shape[0], dtype=dtype)
        assert_close(x64.std(axis=0)[moving], 1 + 0 * mean[moving], "gemm", k=shape[0],
                     dtype=dtype)


def test_standardize_constant_column_divides_by_one(dtype, rng):
    X = rng.standard_normal((50, 3)).astype(dtype)
    X[:, 1] = 0.1  # 0.1 is not exact in binary: its mean must still be exact
    X[:, 2] = 7.0
    mean, std = ops.standardize_fit(X)
    assert std[1] == 0 and std[2] == 0
    assert mean[1] == dtype(0.1) and mean[2] == dtype(7.0)
    Xt = ops.standardize_transform(X, mean, std)
    np.testing.assert_array_equal(Xt[:, 1:], 0)
    assert np.all(np.isfinite(Xt))


def test_standardize_reuses_training_statistics(dtype, rng):
    train = (rng.standard_normal((80, 4)) * [1, 10, 100, 1000]).astype(dtype)
    test = (rng.standard_normal((30, 4)) * [1, 10, 100, 1000] + 5).astype(dtype)
    mean, std = ops.standardize_fit(train)
    got = ops.standardize_transform(test, mean, std)
    np.testing.assert_array_equal(got, (test - mean) / std)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_standardize_any_layout(layout, dtype, rng):
    X = rng.standard_normal((20, 6)).astype(dtype)
    mean, std = ops.standardize_fit(X)
    m2, s2 = ops.standardize_fit(with_layout(X, layout))
    np.testing.assert_array_equal(mean, m2)
    np.testing.assert_array_equal(std, s2)


def test_standardize_large_offset_is_stable():
    # two-pass variance: a large offset does not destroy the small spread
    rng = np.random.default_rng(0)
    X = 1e8 + rng.standard_normal((1000, 2))
    mean, std = ops.standardize_fit(X)
    np.testing.assert_allclose(std, X.std(axis=0), rtol=1e-9)


# ---------------------------------------------------------------- diagnostics

@pytest.mark.parametrize("shape", [(1, 1), (4, 9), (300, 200)], ids=str)
def test_layer_stats(shape, dtype, n_threads, rng):
    A = np.maximum(rng.standard_normal(shape), 0).astype(dtype)
    A[:, ::3] = 0  # dead units
    got = ops.layer_stats(A, n_threads=n_threads)
    want = ref.layer_stats(A)
    assert_close(got[0], want[0], "gemm", scale=np.abs(A).max(), k=A.size, dtype=dtype)
    assert_close(got[1], want[1], "gemm", scale=np.abs(A).max() ** 2, k=A.size, dtype=dtype)
    assert got[2] == want[2]
    assert got[2] >= (shape[1] + 2) // 3 / shape[1]


# ---------------------------------------------------------------- center loss

@pytest.mark.parametrize("shape", [(1, 1, 1), (7, 5, 3), (300, 64, 10)], ids=str)
def test_center_loss_and_update(shape, dtype, n_threads, rng):
    m, d, k = shape
    X = rng.standard_normal((m, d)).astype(dtype)
    y = rng.integers(0, k, m)
    C = rng.standard_normal((k, d)).astype(dtype)
    loss, dX = ops.center_loss(X, y, C, 0.3, n_threads=n_threads)
    rloss, rdX = ref.center_loss(X, y, C, 0.3)
    assert dX.dtype == dtype
    assert_close(loss, rloss, "gemm", k=m * d, dtype=dtype)
    assert_close(dX, rdX, "elementwise", scale=0.3 / m * np.abs(X - C[y]).max())
    C1, C2 = C.copy(), C.copy()
    ops.center_update(X, y, C1, 0.5, n_threads=n_threads)
    ref.center_update(X, y, C2, 0.5)
    assert_close(C1, C2, "gemm", scale=np.abs(C).max() + np.abs(X).max(), k=m)
    # classes absent from the batch keep their center
    absent = np.setdiff1d(np.arange(k), y)
    np.testing.assert_array_equal(C1[absent], C[absent])


def test_center_update_moves_centers_towards_their_class(dtype):
    X = np.array([[2.0, 0.0], [4.0, 0.0], [0.0, -3.0]], dtype=dtype)
    y = np.array([0, 0, 1])
    C = np.zeros((2, 2), dtype=dtype)
    ops.center_update(X, y, C, 1.0)
    # c_0 - sum(c_0 - x_i) / (1 + n_0) = (2 + 4) / 3
    np.testing.assert_allclose(C, [[2.0, 0.0], [0.0, -1.5]], rtol=1e-6)
