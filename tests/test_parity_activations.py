"""fastnn.ops activations (forward, bias epilogue, backward from A) against
fastnn.reference, over shapes, dtypes, layouts, thread counts and extreme inputs."""

import numpy as np
import pytest

import fastnn
from fastnn import ops
from fastnn import reference as ref

from .conftest import LAYOUTS, with_layout
from .tolerances import assert_close

SHAPES = [(1, 1), (1, 7), (7, 1), (13, 17), (64, 33), (257, 129)]  # the last runs threaded
ACTS = list(fastnn.ACTIVATIONS)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("act", ACTS)
def test_forward_matches_reference(act, shape, dtype, n_threads, rng, isa):
    Z = (rng.standard_normal(shape) * 3).astype(dtype)
    got = ops.activation_forward(Z, act, n_threads=n_threads)
    want = ref.activation_forward(Z, act)
    assert got.dtype == dtype
    assert_close(got, want, "elementwise")


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("act", ACTS)
def test_bias_activation_matches_reference(act, shape, dtype, n_threads, rng, isa):
    Z = rng.standard_normal(shape).astype(dtype)
    b = rng.standard_normal(shape[1]).astype(dtype)
    got = ops.bias_activation(Z, b, act, n_threads=n_threads)
    assert_close(got, ref.bias_activation(Z, b, act), "elementwise")


@pytest.mark.parametrize("act", ACTS)
def test_bias_activation_in_place(act, dtype, rng):
    Z = rng.standard_normal((9, 5)).astype(dtype)
    b = rng.standard_normal(5).astype(dtype)
    want = ref.bias_activation(Z, b, act)
    out = ops.bias_activation(Z, b, act, out=Z)
    assert out is Z
    assert_close(Z, want, "elementwise")


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("act", ACTS)
def test_backward_matches_reference(act, shape, dtype, n_threads, rng, isa):
    A = ref.activation_forward(rng.standard_normal(shape).astype(dtype), act)
    dA = rng.standard_normal(shape).astype(dtype)
    got = ops.activation_backward(A, dA, act, n_threads=n_threads)
    want = ref.activation_backward(A, dA, act)
    assert got.dtype == dtype
    # softmax's backward sums over a row: it is a reduction of length n
    kind = "gemm" if act == "softmax" else "elementwise"
    assert_close(got, want, kind, scale=np.abs(dA).max(), k=shape[1])


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("act", ["tanh", "softmax", "leaky_relu"])
def test_any_input_layout(act, layout, dtype, rng):
    Z = rng.standard_normal((11, 6)).astype(dtype)
    b = rng.standard_normal(6).astype(dtype)
    want = ref.bias_activation(Z, b, act)
    got = ops.bias_activation(with_layout(Z, layout), with_layout(b, layout), act)
    assert_close(got, want, "elementwise")
    A = ref.activation_forward(Z, act)
    dA = rng.standard_normal(Z.shape).astype(dtype)
    got = ops.activation_backward(with_layout(A, layout), with_layout(dA, layout), act)
    assert_close(got, ref.activation_backward(A, dA, act), "gemm", scale=1.0, k=6)


@pytest.mark.parametrize("act", [a for a in ACTS if a != "exp"])
def test_extreme_inputs_stay_finite(act, dtype):
    z = np.array([[-1e4, -700.0, -88.0, -30.0, -1e-30, 0.0, 1e-30, 30.0, 88.0, 700.0, 1e4]],
                 dtype=np.float64)
    Z = np.clip(z, np.finfo(dtype).min, np.finfo(dtype).max).astype(dtype)
    got = ops.activation_forward(Z, act)
    assert np.all(np.isfinite(got)), got
    assert_close(got, ref.activation_forward(Z, act), "elementwise")
    dA = np.ones_like(Z)
    d = ops.activation_backward(got, dA, act)
    assert np.all(np.isfinite(d)), d


def test_exp_overflows_to_inf_and_its_derivative_is_its_output(dtype, isa):
    """exp is finite up to log(max float) and inf beyond, as in NumPy, with no
    NaN; its derivative is dA * A."""
    big = float(np.log(np.finfo(dtype).max))
    Z = np.array([[-1e4, -big, -1.0, 0.0, 1.0, big * 0.999, big * 1.001, 1e4]]).astype(dtype)
    got = ops.activation_forward(Z, "exp")
    with np.errstate(over="ignore"):
        want = np.exp(Z)
    assert not np.any(np.isnan(got))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
    finite = np.isfinite(want)
    assert_close(got[finite], want[finite], "elementwise")
    A = got[:, :6]
    dA = np.linspace(-1, 1, 6).reshape(1, 6).astype(dtype)  # dA * A stays finite
    assert_close(ops.activation_backward(A, dA, "exp"), dA * A, "elementwise")


def test_activation_ranges(dtype, rng):
    Z = (rng.standard_normal((50, 20)) * 20).astype(dtype)
    assert np.all((ops.activation_forward(Z, "sigmoid") >= 0) &
                  (ops.activation_forward(Z, "sigmoid") <= 1))
    assert np.all(np.abs(ops.activation_forward(Z, "tanh")) <= 1)
    assert np.all(ops.activation_forward(Z, "relu") >= 0)
    assert np.all(ops.activation_forward(Z, "softplus") >= 0)
    sm = ops.activation_forward(Z, "softmax")
    np.testing.assert_allclose(sm.sum(axis=1, dtype=np.float64), 1.0,
                               rtol=0, atol=50 * np.finfo(dtype).eps)


def test_relu_derivative_is_zero_at_zero(dtype):
    A = np.zeros((1, 3), dtype=dtype)
    dA = np.ones((1, 3), dtype=dtype)
    np.testing.assert_array_equal(ops.activation_backward(A, dA, "relu"), 0)
    np.testing.assert_array_equal(ops.activation_backward(A, dA, "leaky_relu", alpha=0.01),
                                  dtype(0.01))


def test_leaky_relu_alpha_is_a_parameter(dtype, rng):
    Z = rng.standard_normal((5, 4)).astype(dtype)
    for alpha in (0.0, 0.2, 0.5):
        got = ops.activation_forward(Z, "leaky_relu", alpha=alpha)
        assert_close(got, ref.activation_forward(Z, "leaky_relu", alpha=alpha), "elementwise")
        A = got
        dA = rng.standard_normal(Z.shape).astype(dtype)
        assert_close(ops.activation_backward(A, dA, "leaky_relu", alpha=alpha),
                     ref.activation_backward(A, dA, "leaky_relu", alpha=alpha), "elementwise")


def test_backward_out_may_be_dA(dtype, rng):
    A = ref.activation_forward(rng.standard_normal((6, 5)).astype(dtype), "tanh")
    dA = rng.standard_normal((6, 5)).astype(dtype)
    want = ref.activation_backward(A, dA, "tanh")
    out = ops.activation_backward(A, dA, "tanh", out=dA)
    assert out is dA
    assert_close(dA, want, "elementwise")
