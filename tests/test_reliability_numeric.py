"""Numerical faults: overflow-prone inputs never turn into NaN inside the
kernels when the input is finite, and a training run that diverges stops
with fastnn.NonFiniteError, keeping the weights of its last good step.

Pre-activations up to |z| = 1e4 (far past where exp overflows) go through
every activation, its derivative, the dense layer and the fused losses;
optimizer steps run with learning rates from 0 and subnormal up to 1e30.
"""

import warnings

import numpy as np
import pytest

import fastnn as fn
from fastnn import ops
from fastnn import reference as ref

from .tolerances import assert_close

# exp(z) overflows to inf past z = 88.7 (float32) / 709.8 (float64), which is its right
# value there, and inf * 0 is NaN in its derivative: the finiteness properties below hold
# for the other activations; test_parity_activations.py checks exp's overflow itself
ACTS = [a for a in fn.ACTIVATIONS if a != "exp"]


def _extreme_z(dtype, rng, rows=6):
    """Pre-activations from -1e4 to 1e4: the exp/log1p overflow and underflow
    points of both dtypes, zeros of both signs, subnormals, and random values."""
    tiny = np.finfo(dtype).smallest_subnormal
    fixed = np.array([-1e4, -1e3, -745.2, -710.0, -104.0, -88.8, -87.3, -30.0, -17.0, -1.0,
                      -1e-7, -tiny, -0.0, 0.0, tiny, 1e-7, 1.0, 17.0, 30.0, 87.3, 88.8, 104.0,
                      710.0, 745.2, 1e3, 1e4])
    random = rng.uniform(-1e4, 1e4, size=(rows, fixed.size))
    return np.vstack([fixed, fixed[::-1], -fixed, random]).astype(dtype)


def _no_nan(*arrays):
    for a in arrays:
        a = np.asarray(a)
        assert not np.any(np.isnan(a)), "NaN at %s" % (np.argwhere(np.isnan(a))[:5].tolist(),)


@pytest.mark.parametrize("act", ACTS)
def test_activation_with_z_up_to_1e4_gives_no_nan(act, dtype, rng):
    Z = _extreme_z(dtype, rng)
    A = ops.activation_forward(Z, act)
    assert np.all(np.isfinite(A)), act
    with np.errstate(all="ignore"):
        want = ref.activation_forward(Z, act)
    assert_close(A, want, "elementwise")
    dA = rng.standard_normal(Z.shape).astype(dtype)
    dZ = ops.activation_backward(A, dA, act)
    assert np.all(np.isfinite(dZ)), act
    kind = "gemm" if act == "softmax" else "elementwise"
    assert_close(dZ, ref.activation_backward(A, dA, act), kind, scale=np.abs(dA).max(),
                 k=Z.shape[1])
    b = rng.uniform(-10, 10, Z.shape[1]).astype(dtype)
    _no_nan(ops.bias_activation(Z, b, act))


@pytest.mark.parametrize("act", ACTS)
def test_dense_layer_with_z_up_to_1e4_gives_no_nan(act, dtype, rng):
    # X @ W + b spans [-1e4, 1e4]: one-hot rows pick rows of W exactly
    Z = _extreme_z(dtype, rng)
    n_in = Z.shape[0]
    X = np.eye(n_in, dtype=dtype)
    W = Z.copy()
    b = np.zeros(Z.shape[1], dtype)
    A = ops.dense_forward(X, W, b, act)
    assert np.all(np.isfinite(A))
    assert_close(A, ops.activation_forward(Z, act), "elementwise")
    dA = rng.standard_normal(A.shape).astype(dtype)
    dX, dW, db = ops.dense_backward(X, W, A, dA, act, l2=1e-3)
    _no_nan(dX, dW, db)
    assert all(np.all(np.isfinite(g)) for g in (dX, dW, db))


@pytest.mark.parametrize("targets", ["labels", "one-hot", "soft"])
def test_softmax_cross_entropy_with_logits_up_to_1e4_gives_no_nan(targets, dtype, rng):
    Z = _extreme_z(dtype, rng)
    m, k = Z.shape
    labels = rng.integers(0, k, m)
    y = {"labels": labels, "one-hot": np.eye(k, dtype=dtype)[labels],
         "soft": rng.dirichlet(np.ones(k), m).astype(dtype)}[targets]
    loss, dZ = ops.softmax_cross_entropy(Z, y)
    assert np.isfinite(loss) and np.all(np.isfinite(dZ))
    with np.errstate(all="ignore"):
        want_loss, want_dZ = ref.softmax_cross_entropy(Z, y)
    assert_close(loss, want_loss, "gemm", scale=np.abs(Z).max(), k=k, dtype=dtype)
    assert_close(dZ, want_dZ, "gemm", scale=1.0 / m, k=k)


@pytest.mark.parametrize("loss_name", ["sigmoid_binary_cross_entropy", "mse"])
def test_binary_cross_entropy_and_mse_with_z_up_to_1e4_give_no_nan(loss_name, dtype, rng):
    Z = _extreme_z(dtype, rng)
    Y = (rng.random(Z.shape) < 0.5).astype(dtype)
    loss, dZ = getattr(ops, loss_name)(Z, Y)
    assert np.isfinite(loss) and np.all(np.isfinite(dZ))
    with np.errstate(all="ignore"):
        want_loss, want_dZ = getattr(ref, loss_name)(Z, Y)
    scale = np.abs(Z).max() ** (2 if loss_name == "mse" else 1)
    assert_close(loss, want_loss, "gemm", scale=scale, k=Z.size, dtype=dtype)
    assert_close(dZ, want_dZ, "elementwise", scale=np.abs(want_dZ).max())


# --------------------------------------------------------------------------
# optimizer steps with tiny and huge learning rates
# --------------------------------------------------------------------------

def _sgd(mod, p, g, s, lr, t):
    mod.sgd_step(p, g, lr)


def _momentum(mod, p, g, s, lr, t):
    mod.momentum_step(p, g, s[0], lr, 0.9)


def _nesterov(mod, p, g, s, lr, t):
    mod.classical_momentum_step(p, g, s[0], lr, 0.9, nesterov=True)


def _rmsprop(mod, p, g, s, lr, t):
    mod.rmsprop_step(p, g, s[0], lr, 0.9, 1e-8)


def _adam(mod, p, g, s, lr, t):
    mod.adam_step(p, g, s[0], s[1], t, lr, 0.9, 0.999, 1e-8)


def _adamw(mod, p, g, s, lr, t):
    mod.adam_step(p, g, s[0], s[1], t, lr, 0.9, 0.999, 1e-8, weight_decay=1e-3)


def _adam_folded(mod, p, g, s, lr, t):
    mod.adam_folded_step(p, g, s[0], s[1], t, lr, 0.9, 0.999, 1e-8)


STEPPERS = {"sgd": (_sgd, 0), "momentum": (_momentum, 1), "nesterov": (_nesterov, 1),
            "rmsprop": (_rmsprop, 1), "adam": (_adam, 2), "adamw": (_adamw, 2),
            "adam_folded": (_adam_folded, 2)}
LEARNING_RATES = {"zero": 0.0, "subnormal-double": 5e-324, "subnormal-float": 1e-45,
                  "tiny": 1e-30, "huge": 1e30}


def _gradients(dtype, rng, steps=4, n=64):
    """Finite gradients with zeros, subnormals, and magnitudes up to 1e4."""
    tiny = np.finfo(dtype).smallest_subnormal
    special = np.array([0.0, -0.0, tiny, -tiny, 1e-30, 1e4, -1e4, 1.0], dtype)
    out = []
    for _ in range(steps):
        g = (rng.standard_normal(n) * 10.0 ** rng.integers(-6, 4, n)).astype(dtype)
        g[:special.size] = special
        out.append(g)
    return out


@pytest.mark.parametrize("lr_name", list(LEARNING_RATES))
@pytest.mark.parametrize("name", list(STEPPERS))
def test_optimizer_with_tiny_or_huge_learning_rate_gives_no_nan(name, lr_name, dtype, rng):
    """Step after step while every input is finite (a huge step may overflow
    the weights to infinity, which is not NaN; the steps stop there)."""
    lr = LEARNING_RATES[lr_name]
    step, n_state = STEPPERS[name]
    p0 = rng.standard_normal(64).astype(dtype)
    p0[:4] = [0.0, -0.0, np.finfo(dtype).smallest_subnormal, 1e4]
    got = [p0.copy()] + [np.zeros_like(p0) for _ in range(n_state)]
    want = [a.copy() for a in got]
    for t, g in enumerate(_gradients(dtype, rng), start=1):
        assert all(np.all(np.isfinite(a)) for a in got)
        step(ops, got[0], g, got[1:], lr, t)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # the reference overflows loudly
            step(ref, want[0], g, want[1:], lr, t)
        _no_nan(*got)
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)
        if not all(np.all(np.isfinite(a)) for a in got):
            break
    if lr_name == "zero" or (lr_name.startswith("subnormal") and dtype == np.float32):
        np.testing.assert_array_equal(got[0], p0)  # a step of size 0 changes nothing
    if lr_name == "huge":
        assert not np.array_equal(got[0], p0)


@pytest.mark.parametrize("name", list(STEPPERS))
def test_learning_rate_beyond_float32_range_is_refused(name, rng):
    """1e300 is a finite double but rounds to infinity in float32, and an
    infinite step times a zero gradient is NaN: refused, nothing touched."""
    p = rng.standard_normal(8).astype(np.float32)
    g = np.zeros(8, np.float32)
    state = [np.zeros(8, np.float32) for _ in range(STEPPERS[name][1])]
    before = [a.copy() for a in [p] + state]
    with pytest.raises(ValueError, match=r"\blr=1e\+300 is too large for float32"):
        STEPPERS[name][0](ops, p, g, state, 1e300, 1)
    for a, b in zip([p] + state, before):
        np.testing.assert_array_equal(a, b)
    p64 = p.astype(np.float64)
    STEPPERS[name][0](ops, p64, g.astype(np.float64), [s.astype(np.float64) for s in state],
                      1e300, 1)
    _no_nan(p64)


@pytest.mark.parametrize("call, pattern", [
    pytest.param(lambda p, g: ops.rmsprop_step(p, g, np.zeros_like(p), 0.1, eps=1e-50),
                 r"\beps=1e-50 rounds to 0 in float32", id="rmsprop-eps-rounds-to-zero"),
    pytest.param(lambda p, g: ops.adam_step(p, g, np.zeros_like(p), np.zeros_like(p), 1, 0.1,
                                            eps=1e-46), r"\beps=1e-46 rounds to 0 in float32",
                 id="adam-eps-rounds-to-zero"),
    pytest.param(lambda p, g: ops.adam_step(p, g, np.zeros_like(p), np.zeros_like(p), 1, 1e30,
                                            weight_decay=1e10),
                 r"lr \* weight_decay=1e\+40 is too large", id="adamw-decay-overflows"),
    pytest.param(lambda p, g: ops.adam_folded_step(p, g, np.zeros_like(p), np.zeros_like(p), 1,
                                                   1e37, beta1=0.999999),
                 r"lr sqrt\(1 - beta2\^t\) / \(1 - beta1\^t\)=.* is too large",
                 id="adam-folded-step-size-overflows"),
    pytest.param(lambda p, g: ops.activation_forward(p.reshape(1, -1), "leaky_relu",
                                                     alpha=1e39),
                 r"\balpha=1e\+39 is too large for float32", id="leaky-alpha-overflows"),
    pytest.param(lambda p, g: ops.dense_backward(np.ones((1, 8), np.float32),
                                                 np.ones((8, 1), np.float32),
                                                 np.zeros((1, 1), np.float32),
                                                 np.ones((1, 1), np.float32), "relu", l2=1e39),
                 r"\bl2=1e\+39 is too large for float32", id="l2-overflows"),
])
def test_hyperparameter_that_rounds_to_zero_or_infinity_is_refused(call, pattern):
    p, g = np.zeros(8, np.float32), np.zeros(8, np.float32)
    with pytest.raises(ValueError, match=pattern):
        call(p, g)
    np.testing.assert_array_equal(p, 0)


@pytest.mark.parametrize("name", ["rmsprop", "adam"])
def test_optimizer_with_gradient_near_dtype_max_gives_no_nan(name, dtype):
    big = np.finfo(dtype).max / 4
    p = np.zeros(3, dtype)
    g = np.array([big, -big, 1.0], dtype)
    state = [np.zeros(3, dtype) for _ in range(STEPPERS[name][1])]
    STEPPERS[name][0](ops, p, g, state, 10.0, 1)
    _no_nan(p, *state)
    want = [np.zeros(3, dtype), g.copy()] + [np.zeros(3, dtype) for _ in state]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # g^2 overflows in the reference too
        STEPPERS[name][0](ref, want[0], want[1], want[2:], 10.0, 1)
    for got, expected in zip([p] + state, [want[0]] + want[2:]):
        np.testing.assert_array_equal(got, expected)
    # g^2 overflows to inf, so the huge gradients take a step of 0; the third
    # takes the step of its optimizer on a gradient of 1 (from zero state, t=1)
    third = 10.0 / (np.sqrt(0.1) + 1e-8) if name == "rmsprop" else 10.0 / (1.0 + 1e-8)
    np.testing.assert_array_equal(p[:2], 0.0)
    assert_close(p[2], -third, "elementwise", dtype=dtype)


@pytest.mark.parametrize("loss, output, k", [("cross_entropy", "softmax", 3),
                                           ("binary_cross_entropy", "sigmoid", 1),
                                           ("mse", "identity", 1)])
@pytest.mark.parametrize("act", [a for a in ACTS if a != "softmax"])
def test_training_with_preactivations_beyond_1e4_stays_finite(act, loss, output, k, dtype):
    """Inputs large enough that the first layer's |z| exceeds 1e4: the C loop's
    forward pass, fused loss and backward pass stay finite."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 4)) * 3e3
    y = rng.integers(0, 3, 64) if k == 3 else (rng.random(64) < 0.5).astype(np.float64)
    model = fn.Sequential([fn.Dense(8, activation=act, init="normal"),
                           fn.Dense(k, activation=output, init="normal")],
                          input_dim=4, seed=0, dtype=np.dtype(dtype).name)
    W, b = model.weights[0]
    assert np.abs(X.astype(dtype) @ W + b).max() > 1e4
    history = model.fit(X, y, loss=loss, optimizer=fn.optim.SGD(lr=1e-9), epochs=2,
                        batch_size=16)
    assert np.all(np.isfinite(history["loss"]))
    assert np.all(np.isfinite(model.get_params_flat()))
    assert np.all(np.isfinite(model.predict_proba(X)))


# --------------------------------------------------------------------------
# diverging training runs
# --------------------------------------------------------------------------

def _regression_data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((96, 4))
    return X, X @ rng.standard_normal(4) * 10


def _net(dtype):
    return fn.Sequential([fn.Dense(8, activation="tanh"), fn.Dense(1, activation="identity")],
                         input_dim=4, seed=0, dtype=dtype)


DIVERGING = [  # found by search: each diverges mid-epoch, after at least one whole epoch,
    # with every GEMM variant (FMA or not), well past the smallest rate that diverges
    ("float32", "sgd", lambda: fn.optim.SGD(lr=1.0)),
    ("float32", "momentum", lambda: fn.optim.Momentum(lr=100.0)),
    ("float32", "nesterov", lambda: fn.optim.Nesterov(lr=1.5)),
    ("float64", "sgd", lambda: fn.optim.SGD(lr=3.0)),
    ("float64", "momentum", lambda: fn.optim.Momentum(lr=100.0)),
]


@pytest.mark.parametrize("dtype_name, opt_name, make_opt", [
    pytest.param(*case, id="%s-%s" % case[:2]) for case in DIVERGING])
def test_diverging_run_raises_non_finite_error_keeping_the_last_good_step(dtype_name, opt_name,
                                                                           make_opt):
    X, t = _regression_data()
    B = 16
    model = _net(dtype_name)
    with pytest.raises(fn.NonFiniteError) as info:
        model.fit(X, t, loss="mse", optimizer=make_opt(), epochs=40, batch_size=B,
                  shuffle=False)
    err = info.value
    assert err.batch is not None and err.epoch >= 1
    assert "epoch %d, batch %d" % (err.epoch, err.batch) in str(err)
    assert err.history is model.history_ and model.history_.stopped == "non_finite"
    assert model.history_.epochs == list(range(err.epoch))
    assert model.epochs_trained_ == err.epoch
    assert model.t_ == err.epoch * (len(X) // B) + err.batch
    params = model.get_params_flat()
    assert np.all(np.isfinite(params))
    assert np.all(np.isfinite(model.predict(X)))
    # a twin that runs exactly the completed steps and stops there holds the same bits
    twin = _net(dtype_name)
    twin.fit(X, t, loss="mse", optimizer=make_opt(), epochs=err.epoch, batch_size=B,
             shuffle=False)
    if err.batch:
        twin.fit(X[:err.batch * B], t[:err.batch * B], loss="mse", optimizer=None, epochs=1,
                 batch_size=B, shuffle=False)
    assert twin.t_ == model.t_
    np.testing.assert_array_equal(params, twin.get_params_flat())
    for got, want in zip(model.optimizer_state_, twin.optimizer_state_, strict=True):
        np.testing.assert_array_equal(got, want)


def test_optimizer_step_overflowing_the_weights_restores_the_start_of_the_epoch():
    # one batch per epoch: the overflow is found by the end-of-epoch check
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((32, 4)) * 100, rng.integers(0, 3, 32)
    model = fn.Sequential([fn.Dense(8, activation="relu"), fn.Dense(3, activation="softmax")],
                          input_dim=4, seed=0, dtype="float32")
    model.fit(X, y, optimizer=fn.optim.SGD(lr=1e-3), epochs=2, batch_size=32)
    before = model.get_params_flat()
    with pytest.raises(fn.NonFiniteError) as info:
        model.fit(X, y, optimizer=fn.optim.SGD(lr=1e38), epochs=3, batch_size=32)
    assert info.value.batch is None and "weights" in info.value.where
    np.testing.assert_array_equal(model.get_params_flat(), before)
    assert model.epochs_trained_ == 2


def test_huge_learning_rate_overflowing_float32_weights_keeps_finite_weights():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((64, 4)) * 100, rng.integers(0, 3, 64)
    model = fn.Sequential([fn.Dense(8, activation="relu"), fn.Dense(3, activation="softmax")],
                          input_dim=4, seed=0, dtype="float32")
    with pytest.raises(fn.NonFiniteError):
        model.fit(X, y, optimizer=fn.optim.SGD(lr=1e38), epochs=3, batch_size=16)
    assert np.all(np.isfinite(model.get_params_flat()))


@pytest.mark.parametrize("opt", ["sgd", "momentum", "rmsprop", "adam"])
def test_huge_learning_rate_run_never_leaves_nan_weights(opt, dtype):
    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((64, 4)), rng.integers(0, 3, 64)
    model = fn.Sequential([fn.Dense(8, activation="relu"), fn.Dense(3, activation="softmax")],
                          input_dim=4, seed=0, dtype=np.dtype(dtype).name)
    optimizer = fn.optim.get_optimizer(opt)
    optimizer = type(optimizer)(lr=1e30)
    try:
        model.fit(X, y, optimizer=optimizer, epochs=3, batch_size=16)
    except fn.NonFiniteError as err:
        assert err.history is model.history_
    assert not np.any(np.isnan(model.get_params_flat()))
