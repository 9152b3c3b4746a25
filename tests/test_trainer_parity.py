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
    if task == "poisson":
        return X, rng.poisson(1.5, (m, 3)), 3, "exp"
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
@pytest.mark.parametrize("task", ["cross_entropy", "binary_cross_entropy", "mse", "poisson"])
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


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("task", ["cross_entropy", "binary_cross_entropy", "mse", "poisson"])
def test_weighted_training_matches_reference(task, dtype):
    """The C loop with sample weights (gathered with each batch's rows, the
    loss their weighted mean, the L2 term divided by their sum) against the
    reference loop, for two epochs of shuffled batches."""
    from fastnn._backends import TrainingSetup, make_network
    from fastnn._epochs import batch_rows, run_epoch
    from fastnn._fit_data import prepare_targets

    def run(backend):
        rng = np.random.default_rng(9)
        X, y, k, out_act = _data(task, rng)
        sw = rng.uniform(-0.2, 3.0, X.shape[0]).astype(dtype)
        model = fn.Sequential([fn.Dense(11, activation="tanh"), fn.Dropout(0.25),
                               fn.Dense(k, activation=out_act)],
                              input_dim=X.shape[1], dtype=dtype, seed=7)
        opt = fn.optim.Adam(lr=0.01)
        arena = model.arena_
        states = [np.zeros(arena.n_params, dtype) for _ in range(opt.n_states)]
        setup = TrainingSetup(model, task, opt, states, 32, 0.05, 1.0, 0.0, False,
                              weighted=True)
        net = make_network(setup, backend, 0)
        X = np.ascontiguousarray(X, dtype=dtype)
        Y, _ = prepare_targets(model, y, task, X.shape[0])
        losses = []
        for epoch in range(2):
            perm = np.random.default_rng(epoch).permutation(X.shape[0]).astype(np.int64)
            n_batches = len(batch_rows(X.shape[0], 32))
            lrs, out = np.full(n_batches, 0.01), np.zeros(n_batches)
            outcome = run_epoch(net, arena.params, X, Y, perm, 32, lrs, out, 1,
                                sample_weight=sw)
            assert outcome.failed_batch is None
            losses.append(out)
        return arena.params.copy(), np.concatenate(losses)

    (fast, fast_loss), (ref, ref_loss) = run("fast"), run("reference")
    bound = 5e-6 if dtype == "float32" else 1e-13
    np.testing.assert_allclose(fast, ref, rtol=0, atol=bound * np.abs(ref).max())
    np.testing.assert_allclose(fast_loss, ref_loss, rtol=bound)


@pytest.mark.parametrize("backend", ["fast", "reference"])
def test_a_batch_whose_weights_sum_to_zero_stops_before_its_step(backend):
    from fastnn._backends import TrainingSetup, make_network
    rng = np.random.default_rng(4)
    X = rng.standard_normal((8, 3))
    Y = rng.standard_normal((8, 1))
    sw = np.array([1.0, 2.0, 1.0, -1.0, 0.5, 0.5, 1.0, 1.0])  # batch 1 (rows 2, 3) sums to 0
    model = fn.Sequential([fn.Dense(1, activation="identity")], input_dim=3, seed=0,
                          dtype="float64")
    arena = model.arena_
    setup = TrainingSetup(model, "mse", fn.optim.SGD(lr=0.1), [], 2, 0.0, 0.0, 0.0, False,
                          weighted=True)
    net = make_network(setup, backend, 0)
    perm = np.arange(8, dtype=np.int64)
    lrs, out = np.full(4, 0.1), np.zeros(4)
    net.train_batches(X, Y, perm, 2, 0, 1, lrs[:1], out[:1], 1, sw)
    after_first = arena.params.copy()
    with pytest.raises(ZeroDivisionError, match="batch 1 .* sum to zero"):
        net.train_batches(X, Y, perm, 2, 1, 3, lrs[1:], out[1:], 1, sw)
    np.testing.assert_array_equal(arena.params, after_first)
    assert net.t == 1


@pytest.mark.parametrize("backend", ["fast", "reference"])
def test_an_epoch_over_some_rows_of_X_equals_one_over_their_copy(backend):
    """perm may visit a subset of X's rows (a validation split's training
    rows): the steps are those of the same rows copied out, bitwise, and the
    last batch is the epoch's remainder, not X's."""
    from fastnn._backends import TrainingSetup, make_network
    rng = np.random.default_rng(6)
    X = rng.standard_normal((30, 4))
    Y = rng.standard_normal((30, 2))
    rows = np.ascontiguousarray(rng.permutation(30)[:17], dtype=np.int64)

    def train(X, Y, perm):
        model = fn.Sequential([fn.Dense(5, activation="tanh"), fn.Dense(2)], input_dim=4,
                              seed=0, dtype="float64")
        setup = TrainingSetup(model, "mse", fn.optim.SGD(lr=0.1), [], 4, 0.0, 0.0, 0.0, False)
        net = make_network(setup, backend, 0)
        lrs, out = np.full(5, 0.1), np.zeros(5)
        assert net.train_batches(X, Y, perm, 4, 0, 5, lrs, out, 1) == (False, 5)
        return model.get_params_flat(), out

    subset, subset_loss = train(X, Y, rows)
    copied, copied_loss = train(X[rows], Y[rows], np.arange(17, dtype=np.int64))
    np.testing.assert_array_equal(subset, copied)
    np.testing.assert_array_equal(subset_loss, copied_loss)


def test_rows_outside_X_are_refused_before_any_step():
    from fastnn._backends import TrainingSetup, make_network
    X, Y = np.zeros((6, 2)), np.zeros((6, 1))
    model = fn.Sequential([fn.Dense(1)], input_dim=2, seed=0, dtype="float64")
    setup = TrainingSetup(model, "mse", fn.optim.SGD(lr=0.1), [], 2, 0.0, 0.0, 0.0, False)
    net = make_network(setup, "fast", 0)
    before = model.get_params_flat()
    for bad in (6, -1):
        perm = np.array([0, 1, 2, bad], dtype=np.int64)
        with pytest.raises(ValueError, match="outside X's 6 rows"):
            net.train_batches(X, Y, perm, 2, 0, 2, np.full(2, 0.1), np.zeros(2), 1)
    with pytest.raises(ValueError, match="X has 6 rows, y 5"):
        net.train_batches(X, Y[:5], np.arange(4, dtype=np.int64), 2, 0, 1, np.full(1, 0.1),
                          np.zeros(1), 1)
    np.testing.assert_array_equal(model.get_params_flat(), before)
    assert net.t == 0


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_weighted_fit_matches_the_reference_backend(dtype):
    """Sequential.fit with string labels, sample and class weights (the first
    batch weighing nothing, so it takes no step) and a stratified validation
    split, in the C loop and in the reference loop."""
    def run(backend):
        rng = np.random.default_rng(11)
        X = rng.standard_normal((120, 7))
        y = np.array(["a", "b", "c", "d"])[rng.integers(0, 4, 120)]
        sw = rng.uniform(0.0, 2.0, 120)
        sw[:45] = 0.0  # the first 32 training rows lie among these
        model = fn.Sequential([fn.Dense(9, activation="tanh"), fn.Dropout(0.2),
                               fn.Dense(4, activation="softmax")],
                              input_dim=7, dtype=dtype, seed=3)
        h = model.fit(X, y, sample_weight=sw, class_weight="balanced", validation_split=0.2,
                      optimizer=fn.optim.Adam(lr=0.01), batch_size=32, epochs=2, shuffle=False,
                      l2=0.01, backend=backend)
        return model, h
    (fast, hf), (ref, hr) = run("fast"), run("reference")
    bound = 5e-6 if dtype == "float32" else 1e-13
    a, b = fast.get_params_flat(), ref.get_params_flat()
    np.testing.assert_allclose(a, b, rtol=0, atol=bound * np.abs(b).max())
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(hf[key], hr[key], rtol=bound)
    assert fast.t_ == ref.t_ == 2 * 2  # 96 training rows: the first of 3 batches is empty
