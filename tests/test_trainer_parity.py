"""The C training loop against the NumPy reference loop (fastnn.reference.train_step),
step by step: same initial weights, same batches, same dropout masks.

Both loops do the same operations and differ only in how the BLAS and NumPy
order the sums inside a matrix product, ~1 ulp per product; training feeds
each step's rounding into the next. Measured after these 6 steps: weights
agree to ~6e-8 of their largest value in float32 and ~2e-16 in float64. The
bounds (5e-6 and 1e-13 of the largest weight) leave room for other shapes of
the same rounding, and stay far below any real disagreement: a wrong dropout
mask, L2 term or optimizer constant moves the weights by > 1e-3 of their scale."""

import numpy as np
import pytest

import fastnn as fn

OPTIMIZERS = [
    fn.optim.SGD(lr=0.1),
    fn.optim.Momentum(lr=0.1, beta=0.9),
    fn.optim.ClassicalMomentum(lr=0.05, momentum=0.9),
    fn.optim.Nesterov(lr=0.05, momentum=0.9),
    fn.optim.RMSProp(lr=0.01),
    fn.optim.Adam(lr=0.01),
    fn.optim.AdamW(lr=0.01, weight_decay=0.1),
    fn.optim.AdamFolded(lr=0.01),
]


def _data(task, rng, m=90, n=7):
    X = rng.standard_normal((m, n))
    if task == "cross_entropy":
        return X, rng.integers(0, 4, m), 4, "softmax"
    if task == "binary_cross_entropy":
        return X, rng.integers(0, 2, (m, 2)), 2, "sigmoid"
    return X, rng.standard_normal((m, 3)), 3, "identity"


def _train(backend, dtype, optimizer, task, hidden="tanh", dropout=0.25, l2=0.01,
           clip_norm=1.0, clip_value=None, epochs=2, batch_size=32):
    rng = np.random.default_rng(123)
    X, y, k, out_act = _data(task, rng)
    model = fn.Sequential([fn.Dense(11, activation=hidden), fn.Dropout(dropout),
                           fn.Dense(6, activation="relu"),
                           fn.Dense(k, activation=out_act)],
                          input_dim=X.shape[1], dtype=dtype, seed=7)
    hist = model.fit(X, y, loss=task, optimizer=optimizer, batch_size=batch_size, epochs=epochs,
                     l2=l2, clip_norm=clip_norm, clip_value=clip_value, backend=backend)
    return model, hist


def _compare(fast, ref, dtype):
    a, b = fast[0].get_params_flat(), ref[0].get_params_flat()
    scale = np.abs(b).max()
    bound = 5e-6 if dtype == "float32" else 1e-13
    np.testing.assert_allclose(a, b, rtol=0, atol=bound * scale)
    np.testing.assert_allclose(fast[1]["loss"], ref[1]["loss"], rtol=bound)
    for s, r in zip(fast[0].optimizer_state_, ref[0].optimizer_state_):
        np.testing.assert_allclose(s, r, rtol=0, atol=bound * (np.abs(r).max() + 1e-30))
    assert fast[0].t_ == ref[0].t_ == 6


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("optimizer", OPTIMIZERS, ids=lambda o: type(o).__name__)
def test_each_optimizer_matches_reference(optimizer, dtype):
    fast = _train("fast", dtype, optimizer, "cross_entropy")
    ref = _train("reference", dtype, optimizer, "cross_entropy")
    _compare(fast, ref, dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("task", ["cross_entropy", "binary_cross_entropy", "mse"])
@pytest.mark.parametrize("hidden", ["sigmoid", "relu", "leaky_relu", "softplus"])
def test_each_loss_and_activation_matches_reference(task, hidden, dtype):
    opt = fn.optim.Adam(lr=0.01)
    fast = _train("fast", dtype, opt, task, hidden=hidden, clip_norm=None, clip_value=0.05)
    ref = _train("reference", dtype, opt, task, hidden=hidden, clip_norm=None, clip_value=0.05)
    _compare(fast, ref, dtype)


def test_reference_and_fast_differ_when_something_differs():
    """The comparison has teeth: one different hyperparameter is visible."""
    opt = fn.optim.Adam(lr=0.01)
    a = _train("fast", "float32", opt, "cross_entropy")[0].get_params_flat()
    b = _train("reference", "float32", opt, "cross_entropy", l2=0.02)[0].get_params_flat()
    assert np.abs(a - b).max() > 1e-3 * np.abs(b).max()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_same_seed_same_bits_for_1_and_2_threads(dtype):
    runs = []
    for nt in (1, 2):
        rng = np.random.default_rng(0)
        X = rng.standard_normal((700, 120))
        y = rng.integers(0, 10, 700)
        model = fn.Sequential([fn.Dense(300, activation="relu"), fn.Dropout(0.2),
                               fn.Dense(10, activation="softmax")],
                              input_dim=120, dtype=dtype, seed=3)
        model.fit(X, y, optimizer=fn.optim.Adam(lr=1e-3), batch_size=128, epochs=2,
                  l2=1e-3, clip_norm=5.0, n_threads=nt, diagnostics=True)
        runs.append(model)
    np.testing.assert_array_equal(runs[0].get_params_flat(), runs[1].get_params_flat())
    np.testing.assert_array_equal(runs[0].history_["loss"], runs[1].history_["loss"])
    for d0, d1 in zip(runs[0].history_.diagnostics, runs[1].history_.diagnostics):
        assert d0 == d1


def test_same_seed_same_run_and_different_seed_differs():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((200, 5)), rng.integers(0, 3, 200)

    def run(seed):
        m = fn.Sequential([fn.Dense(8), fn.Dropout(0.3), fn.Dense(3, activation="softmax")],
                          input_dim=5, seed=seed)
        m.fit(X, y, epochs=3)
        return m.get_params_flat()
    np.testing.assert_array_equal(run(1), run(1))
    assert not np.array_equal(run(1), run(2))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_center_loss_training_matches_reference(dtype):
    def run(backend):
        rng = np.random.default_rng(5)
        X, y = rng.standard_normal((90, 7)), rng.integers(0, 4, 90)
        model = fn.Sequential([fn.Dense(9, activation="tanh"), fn.Dropout(0.2),
                               fn.Dense(4, activation="softmax")],
                              input_dim=7, dtype=dtype, seed=3)
        model.fit(X, y, loss=fn.losses.CrossEntropy(center_loss=0.5, center_alpha=0.3),
                  optimizer=fn.optim.Adam(lr=0.01), batch_size=32, epochs=2, backend=backend)
        return model
    fast, ref = run("fast"), run("reference")
    bound = 5e-6 if dtype == "float32" else 1e-13
    a, b = fast.get_params_flat(), ref.get_params_flat()
    np.testing.assert_allclose(a, b, rtol=0, atol=bound * np.abs(b).max())
    np.testing.assert_allclose(fast.centers_, ref.centers_, rtol=0,
                               atol=bound * np.abs(ref.centers_).max())
    assert np.abs(fast.centers_).max() > 0
