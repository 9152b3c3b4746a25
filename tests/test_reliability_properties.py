"""Property-based tests of the kernels (hypothesis) against fastnn.reference:
random shapes including zero-size dimensions, random memory layouts (Fortran
order, strided and reversed views, read-only), random values including the
dtype's extremes, zeros of both signs and subnormals, in float32 and float64.

For every drawn input a kernel either matches the reference (and produces
no NaN from finite input) or, where a zero-size input is invalid, raises a
ValueError saying the input is empty; it never crashes. Examples are drawn
deterministically (derandomize=True), so a run is reproducible.
"""

import contextlib
import os
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fastnn as fn
from fastnn import ops
from fastnn import reference as ref

from .tolerances import ATOL_FACTOR, gemm_scale, tol

# FASTNN_PROPERTY_EXAMPLES=1000 explores further (and FASTNN_PROPERTY_RANDOM=1 draws
# new examples each run instead of the fixed, reproducible ones)
SETTINGS = settings(max_examples=int(os.environ.get("FASTNN_PROPERTY_EXAMPLES", "60")),
                    derandomize=os.environ.get("FASTNN_PROPERTY_RANDOM") != "1",
                    deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.differing_executors])
DTYPES = st.sampled_from([np.float32, np.float64])
LAYOUTS = st.sampled_from(["C", "F", "strided", "reversed", "read-only"])
# exp(z) overflows to inf past z = 88.7 (float32) / 709.8 (float64), which is its right
# value there, and inf * 0 is NaN in its derivative: the finiteness properties below hold
# for the other activations; test_parity_activations.py checks exp's overflow itself
ACTS = [a for a in fn.ACTIVATIONS if a != "exp"]


def _values(dtype, bound=None):
    """Finite values of dtype, subnormals included; bounded by `bound` when given."""
    width = 32 if dtype == np.float32 else 64
    if bound is None:
        return st.floats(allow_nan=False, allow_infinity=False, width=width)
    return st.floats(-bound, bound, allow_nan=False, allow_infinity=False, width=width)


def _with_extremes(dtype, bound):
    """Mostly ordinary magnitudes, with zeros, subnormals and +-bound mixed in."""
    info = np.finfo(dtype)
    special = st.sampled_from([0.0, -0.0, float(info.smallest_subnormal),
                               -float(info.smallest_subnormal), float(info.tiny), bound,
                               -bound])
    return st.one_of(_values(dtype, 4.0), _values(dtype, bound), special)


def arrays(dtype, shape, elements):
    return hnp.arrays(dtype, shape, elements=elements)


def _layout(a, layout):
    """The same values in another memory layout."""
    if layout == "C":
        return np.ascontiguousarray(a)
    if layout == "F":
        return np.asfortranarray(a)
    if layout == "strided":
        big = np.zeros(tuple(2 * s + 1 for s in a.shape), a.dtype)
        view = big[tuple(slice(1, None, 2) for _ in a.shape)]
        view[...] = a
        return view
    if layout == "reversed":
        idx = tuple(slice(None, None, -1) for _ in a.shape)
        return np.ascontiguousarray(a[idx])[idx]
    r = np.array(a)
    r.flags.writeable = False
    return r


@contextlib.contextmanager
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the reference overflows loudly
        yield


def _close(got, want, kind, dtype, scale=None, k=1):
    """tolerances.assert_close, with an absolute floor of a few units of the
    smallest normal number: a result in the subnormal range has lost relative
    precision by construction (a subnormal has fewer significant bits)."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape
    if want.size == 0:
        return
    rtol, eps = tol(dtype, kind)
    if scale is None:
        scale = float(np.max(np.abs(want)))
    atol = max(ATOL_FACTOR * eps * np.sqrt(k) * float(scale), 8 * float(np.finfo(dtype).tiny))
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


def _no_nan(*arrays):
    for a in arrays:
        assert not np.any(np.isnan(a)), a


def _expect_empty_error(call, name):
    with pytest.raises(ValueError, match=r"\b%s is empty" % name):
        call()


shapes_2d = st.tuples(st.integers(0, 9), st.integers(0, 9))


# --------------------------------------------------------------------------
# activations
# --------------------------------------------------------------------------

@SETTINGS
@given(data=st.data(), dtype=DTYPES, shape=shapes_2d, act=st.sampled_from(ACTS),
       layout=LAYOUTS)
def test_activation_forward_any_shape_layout_and_finite_values(data, dtype, shape, act,
                                                               layout):
    Z = data.draw(arrays(dtype, shape, _values(dtype)), label="Z")
    Zl = _layout(Z, layout)
    if Z.size == 0:
        _expect_empty_error(lambda: ops.activation_forward(Zl, act), "Z")
        return
    got = ops.activation_forward(Zl, act)
    with _quiet():
        want = ref.activation_forward(Z, act)
    assert got.dtype == dtype and got.shape == shape
    _no_nan(got)
    _close(got, want, "elementwise", dtype)
    np.testing.assert_array_equal(Zl, Z)  # inputs are not modified


@SETTINGS
@given(data=st.data(), dtype=DTYPES, shape=shapes_2d, act=st.sampled_from(ACTS),
       layout=LAYOUTS)
def test_activation_backward_any_shape_layout_and_values(data, dtype, shape, act, layout):
    Z = data.draw(arrays(dtype, shape, _with_extremes(dtype, 1e4)), label="Z")
    dA = data.draw(arrays(dtype, shape, _with_extremes(dtype, 1e6)), label="dA")
    with _quiet():
        A = ref.activation_forward(Z, act) if Z.size else Z
    if Z.size == 0:
        _expect_empty_error(lambda: ops.activation_backward(A, dA, act), "A")
        return
    got = ops.activation_backward(_layout(A, layout), _layout(dA, layout), act)
    with _quiet():
        want = ref.activation_backward(A, dA, act)
    _no_nan(got)
    kind = "gemm" if act == "softmax" else "elementwise"
    _close(got, want, kind, dtype, scale=float(np.abs(dA).max()), k=shape[1])


@SETTINGS
@given(data=st.data(), dtype=DTYPES, shape=shapes_2d, act=st.sampled_from(ACTS),
       layout=LAYOUTS)
def test_bias_activation_any_shape_layout_and_values(data, dtype, shape, act, layout):
    Z = data.draw(arrays(dtype, shape, _with_extremes(dtype, 1e4)), label="Z")
    b = data.draw(arrays(dtype, (shape[1],), _with_extremes(dtype, 1e4)), label="b")
    if Z.size == 0:
        _expect_empty_error(lambda: ops.bias_activation(_layout(Z, layout), b, act), "Z")
        return
    got = ops.bias_activation(_layout(Z, layout), _layout(b, layout), act)
    with _quiet():
        want = ref.bias_activation(Z, b, act)
    _no_nan(got)
    _close(got, want, "elementwise", dtype)


# --------------------------------------------------------------------------
# dense layer
# --------------------------------------------------------------------------

dense_shapes = st.tuples(st.integers(0, 9), st.integers(0, 9), st.integers(0, 9))


@SETTINGS
@given(data=st.data(), dtype=DTYPES, mkn=dense_shapes, act=st.sampled_from(ACTS),
       layouts=st.tuples(LAYOUTS, LAYOUTS), with_bias=st.booleans())
def test_dense_forward_any_shape_layout_and_values(data, dtype, mkn, act, layouts, with_bias):
    m, k, n = mkn
    X = data.draw(arrays(dtype, (m, k), _with_extremes(dtype, 1e3)), label="X")
    W = data.draw(arrays(dtype, (k, n), _with_extremes(dtype, 1e3)), label="W")
    b = data.draw(arrays(dtype, (n,), _with_extremes(dtype, 1e3)), label="b") \
        if with_bias else None
    call = lambda: ops.dense_forward(_layout(X, layouts[0]), _layout(W, layouts[1]),  # noqa
                                     b, act)
    if X.size == 0 or W.size == 0:
        with pytest.raises(ValueError, match=r"\b[XW] is empty"):
            call()
        return
    got = call()
    with _quiet():
        want = ref.dense_forward(X, W, b, act)
    _no_nan(got)
    scale = gemm_scale(X, W) + (float(np.abs(b).max()) if b is not None else 0.0)
    _close(got, want, "gemm", dtype, scale=scale, k=k)


@SETTINGS
@given(data=st.data(), dtype=DTYPES, mkn=dense_shapes, act=st.sampled_from(ACTS),
       layout=LAYOUTS, need_dX=st.booleans(), l2=st.sampled_from([0.0, 1e-3, 0.5]))
def test_dense_backward_any_shape_layout_and_values(data, dtype, mkn, act, layout, need_dX,
                                                    l2):
    m, k, n = mkn
    X = data.draw(arrays(dtype, (m, k), _with_extremes(dtype, 1e3)), label="X")
    W = data.draw(arrays(dtype, (k, n), _with_extremes(dtype, 1e3)), label="W")
    dA = data.draw(arrays(dtype, (m, n), _with_extremes(dtype, 1e3)), label="dA")
    if X.size == 0 or W.size == 0:
        A = np.zeros((m, n), dtype)
        with pytest.raises(ValueError, match=r"\b[XW] is empty"):
            ops.dense_backward(X, W, A, dA, act, need_dX, l2=l2)
        return
    with _quiet():
        A = ref.dense_forward(X, W, None, act)
    L = lambda a: _layout(a, layout)  # noqa: E731
    dX, dW, db = ops.dense_backward(L(X), L(W), L(A), L(dA), act, need_dX, l2=l2)
    with _quiet():
        want = ref.dense_backward(X, W, A, dA, act, need_dX, l2=l2)
        dZ = ref.activation_backward(A, dA, act)
    for g in (dX, dW, db):
        if g is not None:
            _no_nan(g)
    assert (dX is None) == (not need_dX)
    dz_scale = float(np.abs(dZ).max()) if dZ.size else 0.0
    _close(dW, want[1], "gemm", dtype, scale=gemm_scale(X.T, np.abs(dZ)) + l2 *
           float(np.abs(W).max()) + dz_scale, k=m * max(n, 1))
    _close(db, want[2], "gemm", dtype, scale=dz_scale, k=m * max(n, 1))
    if need_dX:
        _close(dX, want[0], "gemm", dtype, scale=gemm_scale(np.abs(dZ), W.T) + dz_scale,
               k=n * max(n, 1))
    # the same gradients from dZ directly (no activation), which is left as it was
    dZ_in = _layout(dZ.astype(dtype), layout)
    got = ops.linear_backward(L(X), L(W), dZ_in, need_dX, l2=l2)
    np.testing.assert_array_equal(dZ_in, dZ.astype(dtype))
    with _quiet():
        want = ref.linear_backward(X, W, dZ.astype(dtype), need_dX, l2=l2)
    _close(got[1], want[1], "gemm", dtype, scale=gemm_scale(X.T, np.abs(dZ)) + l2 *
           float(np.abs(W).max()) + dz_scale, k=m * max(n, 1))
    _close(got[2], want[2], "gemm", dtype, scale=dz_scale, k=m * max(n, 1))


# --------------------------------------------------------------------------
# losses
# --------------------------------------------------------------------------

@SETTINGS
@given(data=st.data(), dtype=DTYPES, shape=shapes_2d, layout=LAYOUTS,
       targets=st.sampled_from(["labels", "probabilities"]))
def test_softmax_cross_entropy_any_shape_and_logits(data, dtype, shape, layout, targets):
    m, k = shape
    Z = data.draw(arrays(dtype, shape, _with_extremes(dtype, 1e4)), label="Z")
    if targets == "labels":
        y = data.draw(arrays(np.int64, (m,), st.integers(0, max(k - 1, 0))), label="y")
    else:
        raw = data.draw(arrays(dtype, shape, st.floats(0, 1, width=32)), label="y")
        y = raw / np.maximum(raw.sum(axis=1, keepdims=True), 1).astype(dtype)
    call = lambda: ops.softmax_cross_entropy(_layout(Z, layout), y)  # noqa: E731
    if Z.size == 0:
        _expect_empty_error(call, "Z")
        return
    loss, dZ = call()
    with _quiet():
        want_loss, want_dZ = ref.softmax_cross_entropy(Z, y)
    assert np.isfinite(loss)
    _no_nan(dZ)
    _close(loss, want_loss, "gemm", dtype, scale=float(np.abs(Z).max()) + 1, k=k)
    _close(dZ, want_dZ, "gemm", dtype, scale=1.0 / m, k=k)


@SETTINGS
@given(data=st.data(), dtype=DTYPES, shape=shapes_2d, layout=LAYOUTS)
def test_sigmoid_bce_and_mse_any_shape_and_values(data, dtype, shape, layout):
    Z = data.draw(arrays(dtype, shape, _with_extremes(dtype, 1e4)), label="Z")
    Y = data.draw(arrays(dtype, shape, st.sampled_from([0.0, 1.0, 0.25])), label="Y")
    for name in ("sigmoid_binary_cross_entropy", "mse"):
        call = lambda: getattr(ops, name)(_layout(Z, layout), _layout(Y, layout))  # noqa
        if Z.size == 0:
            with pytest.raises(ValueError, match=r"\b[ZA] is empty"):
                call()
            continue
        loss, dZ = call()
        with _quiet():
            want_loss, want_dZ = getattr(ref, name)(Z, Y)
        assert np.isfinite(loss)
        _no_nan(dZ)
        zmax = float(np.abs(Z).max()) + 1
        _close(loss, want_loss, "gemm", dtype, scale=zmax ** (2 if name == "mse" else 1),
               k=Z.size)
        _close(dZ, want_dZ, "elementwise", dtype, scale=zmax / Z.shape[0])


# --------------------------------------------------------------------------
# optimizers: any shape (zero-size is a valid no-op), strided parameters
# --------------------------------------------------------------------------

any_shape = st.one_of(st.tuples(st.integers(0, 40)), shapes_2d,
                      st.tuples(st.integers(0, 4), st.integers(0, 4), st.integers(0, 4)))

STEPS = {
    "sgd": (0, lambda mod, p, g, s, t, lr: mod.sgd_step(p, g, lr)),
    "momentum": (1, lambda mod, p, g, s, t, lr: mod.momentum_step(p, g, s[0], lr, 0.9)),
    "classical": (1, lambda mod, p, g, s, t, lr: mod.classical_momentum_step(p, g, s[0], lr,
                                                                             0.8)),
    "nesterov": (1, lambda mod, p, g, s, t, lr: mod.classical_momentum_step(
        p, g, s[0], lr, 0.9, nesterov=True)),
    "rmsprop": (1, lambda mod, p, g, s, t, lr: mod.rmsprop_step(p, g, s[0], lr, 0.9, 1e-8)),
    "adam": (2, lambda mod, p, g, s, t, lr: mod.adam_step(p, g, s[0], s[1], t, lr)),
    "adamw": (2, lambda mod, p, g, s, t, lr: mod.adam_step(p, g, s[0], s[1], t, lr,
                                                           weight_decay=0.01)),
    "adam_folded": (2, lambda mod, p, g, s, t, lr: mod.adam_folded_step(p, g, s[0], s[1], t,
                                                                        lr)),
}


def _strided_param(p, strided):
    if not strided or p.ndim == 0:
        return p.copy()
    big = np.zeros(tuple(2 * s for s in p.shape), p.dtype)
    view = big[tuple(slice(None, None, 2) for _ in p.shape)]
    view[...] = p
    return view


@SETTINGS
@given(data=st.data(), dtype=DTYPES, shape=any_shape, name=st.sampled_from(list(STEPS)),
       strided=st.booleans(), lr=st.sampled_from([0.0, 1e-30, 1e-3, 0.5, 1e4]),
       steps=st.integers(1, 3))
def test_optimizer_steps_any_shape_layout_and_values_match_reference_bitwise(
        data, dtype, shape, name, strided, lr, steps):
    n_state, step = STEPS[name]
    p0 = data.draw(arrays(dtype, shape, _with_extremes(dtype, 1e6)), label="param")
    grads = [data.draw(arrays(dtype, shape, _with_extremes(dtype, 1e6)), label="grad")
             for _ in range(steps)]
    p = _strided_param(p0, strided)
    state = [_strided_param(np.zeros(shape, dtype), strided) for _ in range(n_state)]
    rp, rstate = p0.copy(), [np.zeros(shape, dtype) for _ in range(n_state)]
    for t, g in enumerate(grads, start=1):
        step(ops, p, g, state, t, lr)
        with _quiet():
            step(ref, rp, g, rstate, t, lr)
    _no_nan(p, *state)
    np.testing.assert_array_equal(p, rp)
    for s, rs in zip(state, rstate):
        np.testing.assert_array_equal(s, rs)


# --------------------------------------------------------------------------
# norms, clipping, dropout: any shape, zero-size included
# --------------------------------------------------------------------------

def norm_k(arrays):
    return sum(a.size for a in arrays) + 1


@SETTINGS
@given(data=st.data(), dtype=DTYPES, shapes=st.lists(any_shape, min_size=1, max_size=4),
       max_norm=st.sampled_from([1e-6, 0.5, 3.0, 1e6]), clip=st.sampled_from([0.0, 0.1, 10.0]),
       layout=LAYOUTS)
def test_norms_and_clipping_any_shapes_and_values(data, dtype, shapes, max_norm, clip, layout):
    grads = [data.draw(arrays(dtype, s, _with_extremes(dtype, 1e6)), label="grad")
             for s in shapes]
    norm = ops.global_norm([_layout(g, layout) for g in grads])
    want = ref.global_norm(grads)
    assert np.isfinite(norm)
    _close(norm, want, "gemm", np.float64, k=norm_k(grads))
    ours, theirs = [g.copy() for g in grads], [g.copy() for g in grads]
    total = ops.clip_grad_norm(ours, max_norm)
    ref.clip_grad_norm(theirs, max_norm)
    assert total == norm
    for a, b in zip(ours, theirs):
        _no_nan(a)
        _close(a, b, "gemm", dtype, scale=max_norm, k=2)
    penalty = ops.l2_penalty(grads, 0.5, 3)
    _close(penalty, ref.l2_penalty(grads, 0.5, 3), "gemm", np.float64, k=norm_k(grads))
    ours, theirs = [g.copy() for g in grads], [g.copy() for g in grads]
    ops.clip_grad_value(ours, clip)
    ref.clip_grad_value(theirs, clip)
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a, b)


@SETTINGS
@given(data=st.data(), dtype=DTYPES, shape=any_shape, layout=LAYOUTS,
       rate=st.sampled_from([0.0, 0.1, 0.5, 0.999]), seed=st.integers(0, 2**64 - 1),
       step=st.integers(0, 2**40), layer=st.integers(0, 50))
def test_dropout_any_shape_layout_and_values_matches_reference_bitwise(data, dtype, shape,
                                                                      layout, rate, seed,
                                                                      step, layer):
    A = data.draw(arrays(dtype, shape, _values(dtype)), label="A")
    got = ops.dropout_forward(_layout(A, layout), rate, seed, step, layer)
    with _quiet():
        want = ref.dropout_forward(A, rate, seed, step, layer)
    assert got.shape == A.shape and got.dtype == dtype
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(ops.dropout_mask(shape, rate, seed, step, layer, dtype),
                                  ref.dropout_mask(shape, rate, seed, step, layer, dtype))


# --------------------------------------------------------------------------
# standardization and diagnostics
# --------------------------------------------------------------------------

@SETTINGS
@given(data=st.data(), dtype=DTYPES, shape=shapes_2d, layout=LAYOUTS)
def test_standardize_any_shape_layout_and_values(data, dtype, shape, layout):
    X = data.draw(arrays(dtype, shape, _with_extremes(dtype, 1e6)), label="X")
    if X.size == 0:
        _expect_empty_error(lambda: ops.standardize_fit(_layout(X, layout)), "X")
        return
    mean, std = ops.standardize_fit(_layout(X, layout))
    want_mean, want_std = ref.standardize_fit(X)
    _no_nan(mean, std)
    spread = float(np.abs(X).max())
    _close(mean, want_mean, "gemm", dtype, scale=spread, k=shape[0])
    _close(std, want_std, "gemm", dtype, scale=spread, k=shape[0])
    np.testing.assert_array_equal(std == 0, want_std == 0)  # constant columns exactly
    got = ops.standardize_transform(_layout(X, layout), want_mean, want_std)
    with _quiet():
        want = ref.standardize_transform(X, want_mean, want_std)
    _no_nan(got)
    _close(got, want, "elementwise", dtype)


@SETTINGS
@given(data=st.data(), dtype=DTYPES, shape=shapes_2d, layout=LAYOUTS)
def test_layer_stats_any_shape_layout_and_values(data, dtype, shape, layout):
    A = data.draw(arrays(dtype, shape, _with_extremes(dtype, 1e6)), label="A")
    if A.size == 0:
        _expect_empty_error(lambda: ops.layer_stats(_layout(A, layout)), "A")
        return
    got = ops.layer_stats(_layout(A, layout))
    want = ref.layer_stats(A)
    scale = float(np.abs(A).max())
    _close(got[0], want[0], "gemm", dtype, scale=scale, k=A.size)
    _close(got[1], want[1], "gemm", dtype, scale=scale ** 2, k=A.size)
    assert got[2] == want[2]


@SETTINGS
@given(data=st.data(), dtype=DTYPES, shape=shapes_2d, layout=LAYOUTS)
def test_bias_grad_any_shape_layout_and_values(data, dtype, shape, layout):
    dZ = data.draw(arrays(dtype, shape, _with_extremes(dtype, 1e6)), label="dZ")
    if dZ.size == 0:
        _expect_empty_error(lambda: ops.bias_grad(_layout(dZ, layout)), "dZ")
        return
    got = ops.bias_grad(_layout(dZ, layout))
    _close(got, ref.bias_grad(dZ), "gemm", dtype, scale=float(np.abs(dZ).max()), k=shape[0])
