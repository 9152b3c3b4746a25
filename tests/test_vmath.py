"""The vector math functions behind the activations and fused losses
(src_c/vmath.inc.c): accuracy in ulp against NumPy's float64 functions over a
dense sample of each dtype's range, exact special values and saturation, and
the instruction-set variants (FASTNN_ISA) agreeing to the bit."""

import os
import subprocess
import sys

import numpy as np
import pytest

import fastnn
from fastnn import _kernels, ops
from tools.vmath_ulp import reference, ulp_error

from .tolerances import MAX_ULP

FUNCTIONS = list(_kernels.VM_FUNCTIONS)


def vm(name, x, n_threads=1):
    x = np.ascontiguousarray(x)
    y = np.empty_like(x)
    _kernels.vm_apply(_kernels.VM_FUNCTIONS[name], x, y, n_threads)
    return y


def dense_sample(dtype, rng):
    """Every 2^k-th bit pattern of the dtype (both signs, all exponents,
    subnormals, infinities and NaNs), random values in the ranges where the
    functions change behaviour, and the values around each threshold."""
    if dtype == np.float32:
        bits = np.arange(0, 1 << 32, 997, dtype=np.uint64).astype(np.uint32).view(np.float32)
    else:
        hi = np.arange(0, 1 << 32, 9973, dtype=np.uint64) << np.uint64(32)
        bits = (hi | rng.integers(0, 1 << 32, hi.size, dtype=np.uint64)).view(np.float64)
    info = np.finfo(dtype)
    scales = [1e-30, 1e-8, 1e-3, 0.1, 0.5, 1, 3, 10, 30, 100, 700]
    rand = np.concatenate([rng.standard_normal(20000) * s for s in scales])
    tiniest = float(info.smallest_subnormal)
    edges = [0.0, -0.0, np.inf, -np.inf, np.nan, -1.0, 1.0, -0.5, info.tiny, -info.tiny,
             tiniest, info.max, -info.max,
             np.log(float(info.max)), np.log(float(info.tiny)), np.log(tiniest),
             np.log(tiniest) - np.log(2.0), 0.4, 9.0, 10.0, 19.0, 20.0, 88.72, 709.78,
             -103.97, -745.13, -30.0, -40.0, np.log(2) / 2, -np.log(2) / 2]
    edges = np.array(edges, dtype=np.float64).astype(dtype)
    with np.errstate(over="ignore"):  # the neighbours of +-max are +-inf
        around = np.concatenate([np.nextafter(edges, np.array(np.inf, dtype)),
                                 np.nextafter(edges, np.array(-np.inf, dtype))])
    return np.concatenate([bits, rand.astype(dtype), edges, around]).astype(dtype)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_accuracy_in_ulp(name, dtype, isa, rng):
    x = dense_sample(dtype, rng)
    err = ulp_error(vm(name, x, n_threads=2), reference(name, x), dtype)
    i = int(np.argmax(err))
    assert err[i] <= MAX_ULP[dtype], "%s(%r): %.2f ulp" % (name, x[i], err[i])


def test_ulp_error_detects_a_wrong_result():
    # the measure itself: one ulp off is 1, a NaN or inf where a number is due is inf
    x = np.array([1.0, 2.0, 3.0], np.float32)
    got = np.exp(x.astype(np.float64)).astype(np.float32)
    got[1] = np.nextafter(got[1], np.float32(np.inf))
    got[2] = np.nan
    err = ulp_error(got, reference("exp", x), np.float32)
    assert err[0] <= 0.5 and 0.5 <= err[1] <= 1.5 and err[2] == np.inf


@pytest.mark.parametrize("name", FUNCTIONS)
def test_nan_in_nan_out(name, dtype, isa):
    x = np.array([np.nan, -np.nan, 1.0, np.nan], dtype)
    y = vm(name, x)
    assert np.isnan(y[[0, 1, 3]]).all() and np.isfinite(y[2])


@pytest.mark.parametrize("name", ["exp", "expm1", "log1p", "log", "tanh", "sigmoid", "softplus"])
def test_infinities(name, dtype, isa):
    want = {"exp": (np.inf, 0.0), "expm1": (np.inf, -1.0), "log1p": (np.inf, np.nan),
            "log": (np.inf, np.nan), "tanh": (1.0, -1.0), "sigmoid": (1.0, 0.0),
            "softplus": (np.inf, 0.0)}[name]
    y = vm(name, np.array([np.inf, -np.inf], dtype))
    np.testing.assert_array_equal(y, np.array(want, dtype))


@pytest.mark.parametrize("name", ["expm1", "log1p", "tanh"])
def test_signed_zero_is_kept(name, dtype, isa):
    y = vm(name, np.array([0.0, -0.0], dtype))
    assert y[0] == 0 and not np.signbit(y[0])
    assert y[1] == 0 and np.signbit(y[1])


def test_log_and_log1p_at_their_poles(dtype, isa):
    np.testing.assert_array_equal(vm("log", np.array([0.0, -0.0, -1.0], dtype)),
                                  np.array([-np.inf, -np.inf, np.nan], dtype))
    np.testing.assert_array_equal(vm("log1p", np.array([-1.0, -2.0], dtype)),
                                  np.array([-np.inf, np.nan], dtype))


def test_exp_overflow_and_underflow_thresholds(dtype, isa):
    info = np.finfo(dtype)
    # the largest input with a finite result, and the next one
    x = np.array(np.log(info.max), dtype)
    while not np.isfinite(np.exp(np.float64(x))) or np.exp(np.float64(x)) > info.max:
        x = np.nextafter(x, dtype(-np.inf))
    y = vm("exp", np.array([x, np.nextafter(x, dtype(np.inf))], dtype))
    assert np.isfinite(y[0]) and y[1] == np.inf
    # results in the subnormal range, and below half the smallest subnormal: 0
    sub = np.log(np.array([info.tiny / 4, info.smallest_subnormal * 3], np.float64))
    got = vm("exp", sub.astype(dtype))
    assert (got > 0).all() and (got < info.tiny).all()
    assert vm("exp", np.array([np.log(info.smallest_subnormal) - 1], dtype))[0] == 0


def test_saturation_is_exact(dtype, isa):
    big = np.array([20.0, 50.0, 1e4, 1e30], dtype) if dtype == np.float32 else \
        np.array([40.0, 100.0, 1e4, 1e300], dtype)
    np.testing.assert_array_equal(vm("tanh", big), np.ones_like(big))
    np.testing.assert_array_equal(vm("tanh", -big), -np.ones_like(big))
    np.testing.assert_array_equal(vm("sigmoid", big), np.ones_like(big))
    np.testing.assert_array_equal(vm("sigmoid", -big * 100), np.zeros_like(big))
    np.testing.assert_array_equal(vm("softplus", big), big)
    np.testing.assert_array_equal(vm("softplus", -big * 100), np.zeros_like(big))
    np.testing.assert_array_equal(vm("expm1", -big * 100), -np.ones_like(big))


def test_no_activation_returns_nan_for_finite_input(dtype, isa):
    info = np.finfo(dtype)
    z = np.array([[info.max, -info.max, 1e4, -1e4, info.tiny, -info.smallest_subnormal, 0.0]],
                 dtype)
    for act in fastnn.ACTIVATIONS:
        if act == "softmax":
            continue  # a row holding both +max and -max overflows its max subtraction
        a = ops.activation_forward(z, act)
        assert not np.isnan(a).any(), (act, a)


def test_variants_agree_to_the_bit(dtype, rng):
    """Every instruction-set variant computes the same bits: the functions,
    the activations forward and backward, the fused losses and an Adam step."""
    isas = fastnn.available_isas()
    if len(isas) < 2:
        pytest.skip("this machine runs one instruction-set variant only")
    x = dense_sample(dtype, rng)
    Z = (rng.standard_normal((37, 129)) * 4).astype(dtype)
    dA = rng.standard_normal(Z.shape).astype(dtype)
    labels = rng.integers(0, Z.shape[1], Z.shape[0])
    Y = rng.random(Z.shape).astype(dtype)
    g = rng.standard_normal(1000).astype(dtype)
    results = {}
    for name in isas:
        fastnn.set_isa(name)
        out = [vm(f, x) for f in FUNCTIONS]
        for act in fastnn.ACTIVATIONS:
            A = ops.activation_forward(Z, act)
            out += [A, ops.activation_backward(A, dA, act)]
        out += list(ops.softmax_cross_entropy(Z, labels)) + list(ops.sigmoid_binary_cross_entropy(Z, Y))
        out += list(ops.mse(Z, Y))
        p, m, v = g.copy(), np.zeros_like(g), np.zeros_like(g)
        ops.adam_step(p, g, m, v, 1, lr=1e-2)
        out += [p, m, v]
        results[name] = out
    first = results[isas[0]]
    for name in isas[1:]:
        for a, b in zip(first, results[name]):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=name)


def _import_with(value):
    env = dict(os.environ, FASTNN_ISA=value)
    return subprocess.run([sys.executable, "-c", "import fastnn; print(fastnn.get_isa())"],
                          env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("name", fastnn.available_isas() + ["auto"])
def test_environment_variable_selects_the_variant(name):
    result = _import_with(name)
    assert result.returncode == 0, result.stderr
    want = fastnn.available_isas()[0] if name == "auto" else name
    assert result.stdout.strip() == want


def test_environment_variable_refuses_unknown_and_unsupported_variants():
    result = _import_with("sse9")
    assert result.returncode != 0 and "FASTNN_ISA=sse9" in result.stderr
    assert "unknown instruction set" in result.stderr
    missing = [n for n in ("avx512", "avx2") if n not in fastnn.available_isas()]
    if missing:
        result = _import_with(missing[0])
        assert result.returncode != 0 and "not supported" in result.stderr


def test_set_isa_errors_and_return_value():
    with pytest.raises(ValueError, match="unknown instruction set 'sse9'"):
        fastnn.set_isa("sse9")
    with pytest.raises(TypeError):
        fastnn.set_isa(2)
    current = fastnn.get_isa()
    assert fastnn.set_isa("generic") == current
    assert fastnn.get_isa() == "generic"
    for name in ("avx512", "avx2"):
        if name not in fastnn.available_isas():
            with pytest.raises(RuntimeError, match="not supported"):
                fastnn.set_isa(name)
            assert fastnn.get_isa() == "generic"
