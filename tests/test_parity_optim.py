"""Optimizer steps against fastnn.reference over several steps: parameters and
every state buffer, in place, both dtypes, 1 and 2 threads.

Both implementations round the same operations in the same order (scalars
rounded once to the array's dtype, no FMA contraction), so they agree to the
last bit; the test asserts exactly that."""

import numpy as np
import pytest

from fastnn import ops
from fastnn import reference as ref

STEPS = 10
SIZES = [1, 7, 1000, 70001]  # the last is above the threaded-loop threshold

OPTIMIZERS = {
    "sgd": (lambda mod, p, g, s, t: mod.sgd_step(p, g, 0.05), 0),
    "momentum": (lambda mod, p, g, s, t: mod.momentum_step(p, g, s[0], 0.05, 0.9), 1),
    "classical": (lambda mod, p, g, s, t: mod.classical_momentum_step(p, g, s[0], 0.05, 0.9), 1),
    "nesterov": (lambda mod, p, g, s, t: mod.classical_momentum_step(p, g, s[0], 0.05, 0.9,
                                                                    nesterov=True), 1),
    "rmsprop": (lambda mod, p, g, s, t: mod.rmsprop_step(p, g, s[0], 0.01, 0.9, 1e-8), 1),
    "adam": (lambda mod, p, g, s, t: mod.adam_step(p, g, s[0], s[1], t, 1e-3, 0.9, 0.999,
                                                   1e-8), 2),
    "adamw": (lambda mod, p, g, s, t: mod.adam_step(p, g, s[0], s[1], t, 1e-3, 0.9, 0.999,
                                                    1e-8, weight_decay=0.01), 2),
    "adam_folded": (lambda mod, p, g, s, t: mod.adam_folded_step(p, g, s[0], s[1], t, 1e-3,
                                                                 0.9, 0.999, 1e-8), 2),
}


def _run(mod, name, p0, grads, **kw):
    step, n_state = OPTIMIZERS[name]
    p = p0.copy()
    state = [np.zeros_like(p0) for _ in range(n_state)]
    buffers = [p] + state
    for t, g in enumerate(grads, start=1):
        step(mod, p, g, state, t)
        assert all(b is buffers[i] for i, b in enumerate([p] + state))
    return p, state


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizer_matches_reference_bitwise(name, size, dtype, n_threads, rng, isa):
    import fastnn
    fastnn.set_num_threads(n_threads)
    p0 = rng.standard_normal(size).astype(dtype)
    grads = [rng.standard_normal(size).astype(dtype) for _ in range(STEPS)]
    p, state = _run(ops, name, p0, grads)
    rp, rstate = _run(ref, name, p0, grads)
    assert p.dtype == dtype
    np.testing.assert_array_equal(p, rp)
    for s, rs in zip(state, rstate):
        np.testing.assert_array_equal(s, rs)
    assert not np.array_equal(p, p0)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizer_updates_non_contiguous_params_in_place(name, dtype, rng):
    big = rng.standard_normal((6, 8)).astype(dtype)
    p = big[:, ::2]  # a strided view: updated through the view
    p0 = p.copy()
    grads = [rng.standard_normal(p.shape).astype(dtype) for _ in range(3)]
    step, n_state = OPTIMIZERS[name]
    state = [np.zeros_like(p0)[:, :] for _ in range(n_state)]
    rp, rstate = p0.copy(), [np.zeros_like(p0) for _ in range(n_state)]
    for t, g in enumerate(grads, start=1):
        step(ops, p, g, state, t)
        step(ref, rp, g, rstate, t)
    np.testing.assert_array_equal(big[:, ::2], rp)


def test_adam_first_step_moves_by_lr(dtype):
    # with bias correction, the first Adam step is lr * g / (|g| + eps)
    p = np.zeros(5, dtype=dtype)
    g = np.array([3.0, -2.0, 1e-3, -1e3, 0.5], dtype=dtype)
    m, v = np.zeros_like(p), np.zeros_like(p)
    ops.adam_step(p, g, m, v, 1, 0.1)
    g64 = g.astype(np.float64)
    np.testing.assert_allclose(p, -0.1 * g64 / (np.abs(g64) + 1e-8), rtol=1e-6)


def test_adamw_decays_weights_without_gradient(dtype):
    p = np.ones(4, dtype=dtype)
    z = np.zeros_like(p)
    ops.adam_step(p, z, z.copy(), z.copy(), 1, lr=0.1, weight_decay=0.5)
    np.testing.assert_allclose(p, 1 - 0.1 * 0.5, rtol=1e-6)


def test_sgd_with_l2_is_weight_shrinking(dtype, rng):
    # spec section 5: W <- (1 - lr lambda / m) W - lr dJ0/dW
    X = rng.standard_normal((10, 3)).astype(dtype)
    W = rng.standard_normal((3, 2)).astype(dtype)
    dZ = rng.standard_normal((10, 2)).astype(dtype)
    lam, m, lr = 0.5, 10, 0.1
    _, dW, _ = ops.linear_backward(X, W, dZ, l2=lam / m)
    W1 = W.copy()
    ops.sgd_step(W1, dW, lr)
    expected = (1 - lr * lam / m) * W.astype(np.float64) - lr * (X.T @ dZ).astype(np.float64)
    np.testing.assert_allclose(W1, expected, rtol=1e-5 if dtype == np.float32 else 1e-12,
                               atol=1e-6 if dtype == np.float32 else 1e-14)


def test_adam_folded_matches_scikit_learns_adam():
    pytest.importorskip("sklearn")
    from sklearn.neural_network._stochastic_optimizers import AdamOptimizer
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal(50)
    ours, theirs = p0.copy(), [p0.copy()]
    sk = AdamOptimizer(theirs, learning_rate_init=0.01)
    m, v = np.zeros_like(p0), np.zeros_like(p0)
    for t in range(1, 11):
        g = rng.standard_normal(50)
        ops.adam_folded_step(ours, g, m, v, t, 0.01)
        sk.update_params(theirs, [g])
    np.testing.assert_allclose(ours, theirs[0], rtol=1e-14, atol=1e-15)


def test_nesterov_matches_scikit_learns_sgd():
    pytest.importorskip("sklearn")
    from sklearn.neural_network._stochastic_optimizers import SGDOptimizer
    rng = np.random.default_rng(1)
    p0 = rng.standard_normal(50)
    for nesterov in (False, True):
        ours, theirs = p0.copy(), [p0.copy()]
        sk = SGDOptimizer(theirs, learning_rate_init=0.05, momentum=0.9, nesterov=nesterov)
        vel = np.zeros_like(p0)
        for _ in range(10):
            g = rng.standard_normal(50)
            ops.classical_momentum_step(ours, g, vel, 0.05, 0.9, nesterov=nesterov)
            sk.update_params(theirs, [g])
        np.testing.assert_allclose(ours, theirs[0], rtol=1e-14, atol=1e-15)
