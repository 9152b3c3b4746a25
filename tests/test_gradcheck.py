"""Finite-difference gradient checks in float64.

Each analytic gradient of fastnn.reference is checked against scikit-learn's
4th-order central difference; the same gradients from fastnn.ops are checked
too, so fast == reference == numerical derivative. Inputs are kept away from
the kinks of relu and leaky_relu, where the derivative is not defined."""

import numpy as np
import pytest

import fastnn
from fastnn import ops
from fastnn import reference as ref

from .tolerances import FD_ATOL, FD_RTOL, FD_STEP

BACKENDS = [ref, ops]


def numerical_grad(f, x, h=FD_STEP):
    """d f / d x for a scalar f of an array x, by the 4th-order central difference."""
    grad = np.zeros_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        orig = flat[i]
        vals = []
        for step in (-2, -1, 1, 2):
            flat[i] = orig + step * h
            vals.append(f())
        flat[i] = orig
        gflat[i] = (vals[0] - 8 * vals[1] + 8 * vals[2] - vals[3]) / (12 * h)
    return grad


def check(analytic, f, x):
    np.testing.assert_allclose(analytic, numerical_grad(f, x), rtol=FD_RTOL, atol=FD_ATOL)


def _away_from_kinks(Z, margin=0.05):
    return np.where(np.abs(Z) < margin, Z + 2 * margin * np.sign(Z + 1e-300), Z)


@pytest.mark.parametrize("backend", BACKENDS, ids=["reference", "fast"])
@pytest.mark.parametrize("act", list(fastnn.ACTIVATIONS))
def test_dense_backward(act, backend):
    rng = np.random.default_rng(5)
    m, n_in, n_out = 4, 3, 5
    X = rng.standard_normal((m, n_in))
    W = rng.standard_normal((n_in, n_out))
    b = rng.standard_normal(n_out)
    # move every pre-activation away from 0 (a kink for relu): shift the bias per element
    Z = X @ W + b
    b_shift = _away_from_kinks(Z) - Z
    R = rng.standard_normal((m, n_out))  # L = sum(R * A), so dL/dA = R

    def loss():
        return float(np.sum(R * ref.activation_forward(X @ W + b + b_shift, act)))

    # the shift is a constant added to Z, so dX, dW and db are those of X @ W + b
    A = ref.activation_forward(X @ W + b + b_shift, act)
    dX, dW, db = backend.dense_backward(X, W, A, R, act)
    check(dW, loss, W)
    check(db, loss, b)
    check(dX, loss, X)


@pytest.mark.parametrize("backend", BACKENDS, ids=["reference", "fast"])
def test_l2_term(backend):
    rng = np.random.default_rng(6)
    X, W, R = rng.standard_normal((6, 3)), rng.standard_normal((3, 2)), rng.standard_normal((6, 2))
    lam, m = 0.7, 6

    def loss():
        # spec section 5: J = J0 + lambda / (2m) ||W||^2
        return float(np.sum(R * (X @ W))) + backend.l2_penalty([W], lam, m)

    _, dW, _ = backend.linear_backward(X, W, R, l2=lam / m)
    check(dW, loss, W)


@pytest.mark.parametrize("backend", BACKENDS, ids=["reference", "fast"])
@pytest.mark.parametrize("targets", ["labels", "one_hot", "soft"])
def test_softmax_cross_entropy(targets, backend):
    rng = np.random.default_rng(7)
    Z = rng.standard_normal((5, 4)) * 2
    y = rng.integers(0, 4, 5)
    if targets == "one_hot":
        y = np.eye(4)[y]
    elif targets == "soft":
        y = rng.random((5, 4))
        y /= y.sum(axis=1, keepdims=True)
    _, dZ = backend.softmax_cross_entropy(Z, y)
    check(dZ, lambda: backend.softmax_cross_entropy(Z, y)[0], Z)


@pytest.mark.parametrize("backend", BACKENDS, ids=["reference", "fast"])
@pytest.mark.parametrize("n", [1, 3])
def test_sigmoid_binary_cross_entropy(n, backend):
    rng = np.random.default_rng(8)
    Z = rng.standard_normal((6, n)) * 3
    y = rng.integers(0, 2, (6, n)).astype(float)
    _, dZ = backend.sigmoid_binary_cross_entropy(Z, y)
    check(dZ, lambda: backend.sigmoid_binary_cross_entropy(Z, y)[0], Z)
    # and it is the textbook -1/m sum [y ln a + (1 - y) ln(1 - a)]
    a = 1 / (1 + np.exp(-Z))
    textbook = -np.mean(np.sum(y * np.log(a) + (1 - y) * np.log(1 - a), axis=1))
    np.testing.assert_allclose(backend.sigmoid_binary_cross_entropy(Z, y)[0], textbook,
                               rtol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS, ids=["reference", "fast"])
def test_mse(backend):
    rng = np.random.default_rng(9)
    A, Y = rng.standard_normal((7, 2)), rng.standard_normal((7, 2))
    _, dA = backend.mse(A, Y)
    check(dA, lambda: backend.mse(A, Y)[0], A)


@pytest.mark.parametrize("backend", BACKENDS, ids=["reference", "fast"])
def test_poisson_loss(backend):
    rng = np.random.default_rng(10)
    Z = rng.standard_normal((6, 2))
    Y = rng.poisson(1.5, (6, 2)).astype(float)  # zeros included: y log y is 0 there
    _, dZ = backend.poisson_loss(Z, Y)
    check(dZ, lambda: backend.poisson_loss(Z, Y)[0], Z)


# the weighted forms: mixed signs and a zero weight; their sum is not zero
WEIGHTS = np.array([0.5, 2.0, 0.0, -0.3, 1.0, 3.0])


def _weighted_case(name, rng):
    m = WEIGHTS.size
    Z = rng.standard_normal((m, 3)) * 2
    if name == "softmax_cross_entropy":
        return Z, rng.integers(0, 3, m)
    if name == "sigmoid_binary_cross_entropy":
        return Z, rng.integers(0, 2, (m, 3)).astype(float)
    if name == "poisson_loss":
        return Z, rng.poisson(1.5, (m, 3)).astype(float)
    return Z, rng.standard_normal((m, 3))


@pytest.mark.parametrize("backend", BACKENDS, ids=["reference", "fast"])
@pytest.mark.parametrize("name", ["softmax_cross_entropy", "sigmoid_binary_cross_entropy",
                                  "mse", "poisson_loss"])
def test_weighted_losses(name, backend):
    Z, y = _weighted_case(name, np.random.default_rng(11))
    loss = getattr(backend, name)
    _, dZ = loss(Z, y, sample_weight=WEIGHTS)
    check(dZ, lambda: loss(Z, y, sample_weight=WEIGHTS)[0], Z)


@pytest.mark.parametrize("backend", BACKENDS, ids=["reference", "fast"])
@pytest.mark.parametrize("hidden", ["tanh", "sigmoid", "softplus", "leaky_relu"])
def test_two_layer_network_end_to_end(hidden, backend):
    """forward -> fused loss -> backward through two layers, every parameter."""
    rng = np.random.default_rng(10)
    X = rng.standard_normal((8, 4))
    y = rng.integers(0, 3, 8)
    W1, b1 = rng.standard_normal((4, 6)) * 0.5, rng.standard_normal(6) * 0.1
    W2, b2 = rng.standard_normal((6, 3)) * 0.5, rng.standard_normal(3) * 0.1

    def forward():
        A1 = backend.dense_forward(X, W1, b1, hidden)
        Z2 = backend.dense_forward(A1, W2, b2, "identity")
        return A1, Z2

    def loss():
        return backend.softmax_cross_entropy(forward()[1], y)[0]

    A1, Z2 = forward()
    _, dZ2 = backend.softmax_cross_entropy(Z2, y)
    dA1, dW2, db2 = backend.linear_backward(A1, W2, dZ2)
    _, dW1, db1 = backend.dense_backward(X, W1, A1, dA1, hidden, need_dX=False)
    for grad, param in ((dW1, W1), (db1, b1), (dW2, W2), (db2, b2)):
        check(grad, loss, param)


def test_clip_by_norm_keeps_direction():
    rng = np.random.default_rng(11)
    g = [rng.standard_normal((3, 4)), rng.standard_normal(4)]
    before = np.concatenate([a.ravel() for a in g])
    norm = ops.clip_grad_norm(g, 0.5)
    after = np.concatenate([a.ravel() for a in g])
    np.testing.assert_allclose(norm, np.linalg.norm(before), rtol=1e-14)
    np.testing.assert_allclose(np.linalg.norm(after), 0.5, rtol=1e-14)
    np.testing.assert_allclose(after / np.linalg.norm(after), before / np.linalg.norm(before),
                               rtol=1e-13)


@pytest.mark.parametrize("backend", BACKENDS, ids=["reference", "fast"])
def test_center_loss(backend):
    rng = np.random.default_rng(12)
    X = rng.standard_normal((6, 4))
    y = rng.integers(0, 3, 6)
    C = rng.standard_normal((3, 4))
    _, dX = backend.center_loss(X, y, C, 0.7)
    check(dX, lambda: backend.center_loss(X, y, C, 0.7)[0], X)
