"""Sequential.fit end to end: real data, the spec's lessons, faults, and the API."""


import numpy as np
import pytest

import fastnn as fn

sklearn = pytest.importorskip("sklearn")
from sklearn.datasets import load_diabetes, load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    scaler = fn.Standardizer().fit(X_tr)
    return scaler.transform(X_tr), y_tr, scaler.transform(X_te), y_te


# ---------------------------------------------------------------- real data

@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_digits_reach_95_percent(digits, dtype):
    X_tr, y_tr, X_te, y_te = digits
    model = fn.Sequential([fn.Dense(128, activation="relu", init="he"), fn.Dropout(0.1),
                           fn.Dense(10, activation="softmax")], input_dim=64, dtype=dtype, seed=0)
    history = model.fit(X_tr, y_tr, optimizer=fn.optim.Adam(lr=1e-3), batch_size=32, epochs=30,
                        l2=1e-4, validation_split=0.1,
                        early_stopping=fn.EarlyStopping(patience=5, restore_best=True))
    scores = model.evaluate(X_te, y_te)
    assert scores["accuracy"] >= 0.95, scores
    assert np.mean(model.predict(X_te) == y_te) == pytest.approx(scores["accuracy"])
    proba = model.predict_proba(X_te)
    assert proba.shape == (len(y_te), 10) and proba.dtype == np.dtype(dtype)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    assert history["loss"][-1] < history["loss"][0]


def test_diabetes_regression_has_sensible_r2():
    X, y = load_diabetes(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=0)
    xs, ys = fn.Standardizer().fit(X_tr), fn.Standardizer().fit(y_tr.reshape(-1, 1))
    model = fn.Sequential([fn.Dense(32, activation="tanh"), fn.Dense(1, activation="identity")],
                          input_dim=10, dtype="float64", seed=0)
    model.fit(xs.transform(X_tr), ys.transform(y_tr.reshape(-1, 1)).ravel(), loss="mse",
              optimizer=fn.optim.Adam(lr=3e-3), batch_size=32, epochs=20, l2=3.0)
    scores = model.evaluate(xs.transform(X_te), ys.transform(y_te.reshape(-1, 1)).ravel())
    # least squares scores 0.36 on this split; this noisy set tops out near 0.4-0.5
    assert scores["r2"] > 0.35, scores
    pred = model.predict(xs.transform(X_te))
    assert pred.shape == y_te.shape


def test_binary_classification():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2000, 4))
    y = (X[:, 0] * X[:, 1] > 0).astype(int)  # XOR-like: needs the hidden layer
    model = fn.Sequential([fn.Dense(16, activation="tanh"), fn.Dense(1, activation="sigmoid")],
                          input_dim=4, seed=1)
    model.fit(X[:1500], y[:1500], optimizer=fn.optim.Adam(lr=1e-2), epochs=40, batch_size=32)
    assert model.evaluate(X[1500:], y[1500:])["accuracy"] > 0.93
    assert set(np.unique(model.predict(X[1500:]))) <= {0, 1}


def test_poisson_regression_learns_the_glm():
    """An exp output with the Poisson loss is Poisson regression with the log
    link: without a hidden layer it converges to scikit-learn's GLM, and
    predict returns the means."""
    from sklearn.linear_model import PoissonRegressor
    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 3))
    y = rng.poisson(np.exp(0.4 + X @ np.array([0.5, -0.3, 0.2])))
    model = fn.Sequential([fn.Dense(1, activation="exp")], input_dim=3, dtype="float64", seed=0)
    history = model.fit(X, y, optimizer=fn.optim.Adam(lr=0.05), batch_size=400, epochs=400)
    assert model.loss_ == "poisson"  # chosen from the output activation
    glm = PoissonRegressor(alpha=0, tol=1e-10, max_iter=1000).fit(X, y)
    np.testing.assert_allclose(model.predict(X), glm.predict(X), rtol=1e-3)
    W, b = model.weights[0]
    np.testing.assert_allclose(W[:, 0], glm.coef_, atol=1e-3)
    # evaluate's loss is the half Poisson deviance of the means, as trained
    half_deviance = np.mean(np.where(y > 0, y * np.log(np.maximum(y, 1) / glm.predict(X)), 0)
                            - y + glm.predict(X))
    np.testing.assert_allclose(model.evaluate(X, y)["loss"], half_deviance, rtol=1e-4)
    np.testing.assert_allclose(history["loss"][-1], model.evaluate(X, y)["loss"], rtol=1e-4)


def test_poisson_needs_an_exp_output_and_counts():
    X = np.ones((4, 2))
    model = fn.Sequential([fn.Dense(1, activation="identity")], input_dim=2)
    with pytest.raises(ValueError, match="loss 'poisson' needs the output activation 'exp'"):
        model.fit(X, [0, 1, 2, 3], loss="poisson")
    model = fn.Sequential([fn.Dense(1, activation="exp")], input_dim=2)
    with pytest.raises(ValueError, match="poisson must be counts or rates >= 0"):
        model.fit(X, [0, 1, -2, 3])


# ---------------------------------------------------------------- the spec's lessons

def test_zero_init_keeps_units_identical():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((200, 5)), rng.integers(0, 3, 200)
    with pytest.warns(UserWarning, match="symmetry"):
        model = fn.Sequential([fn.Dense(6, activation="tanh", init="zeros"),
                               fn.Dense(3, activation="softmax", init="zeros")],
                              input_dim=5, dtype="float64", seed=0)
    model.fit(X, y, optimizer=fn.optim.SGD(lr=0.5), epochs=5)
    W1, b1 = model.weights[0]
    # every hidden unit computes the same function: identical columns
    np.testing.assert_array_equal(W1, np.repeat(W1[:, :1], 6, axis=1))
    np.testing.assert_array_equal(b1, b1[0])


def _deep_variances(init, activation, depth=20, width=64):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((256, width))
    y = rng.integers(0, 10, 256)
    layers = [fn.Dense(width, activation=activation, init=init) for _ in range(depth)]
    model = fn.Sequential(layers + [fn.Dense(10, activation="softmax")], input_dim=width,
                          dtype="float64", seed=0)
    model.fit(X, y, optimizer=fn.optim.SGD(lr=1e-6), batch_size=256, epochs=1, diagnostics=True)
    d = model.history_.diagnostics[:depth]
    return np.array([layer["act_var"][0] for layer in d]), \
        np.array([layer["grad_norm"][0] for layer in d])


def test_deep_tanh_normal_init_saturates_xavier_keeps_variance():
    var_normal, grad_normal = _deep_variances("normal", "tanh")
    var_xavier, grad_xavier = _deep_variances("xavier", "tanh")
    # N(0, 1) weights on 64 inputs: pre-activations of std ~8, tanh saturates at +-1,
    # and the gradient grows by orders of magnitude towards the input
    assert np.all(var_normal > 0.85)
    assert grad_normal[0] / grad_normal[-1] > 1e3
    # xavier: each layer changes the variance by a bounded factor, and the
    # gradient norm is the same at every depth
    ratios = var_xavier[1:] / var_xavier[:-1]
    assert np.all((ratios > 0.4) & (ratios < 1.5))
    assert grad_xavier.max() / grad_xavier.min() < 3


def test_deep_relu_normal_init_explodes_he_keeps_variance():
    var_normal, grad_normal = _deep_variances("normal", "relu")
    var_he, grad_he = _deep_variances("he", "relu")
    # N(0, 1) on 64 inputs multiplies the variance by ~32 per layer
    assert var_normal[-1] / var_normal[0] > 1e20
    assert grad_normal.min() > 1e10
    assert var_he.max() / var_he.min() < 10
    assert grad_he.max() / grad_he.min() < 3


def test_standardized_inputs_converge_in_fewer_epochs():
    rng = np.random.default_rng(0)
    m = 1000
    X = np.column_stack([rng.uniform(5, 50, m), rng.uniform(3, 7, m), rng.uniform(0, 1e3, m)])
    y = ((X[:, 0] - 27.5) / 13 + (X[:, 1] - 5) - (X[:, 2] - 500) / 290 > 0).astype(int)

    def epochs_to(X_in, target=0.3, max_epochs=60):
        model = fn.Sequential([fn.Dense(16, activation="tanh"),
                               fn.Dense(2, activation="softmax")], input_dim=3, seed=0)
        hist = model.fit(X_in, y, optimizer=fn.optim.SGD(lr=0.05), batch_size=32,
                         epochs=max_epochs)
        below = [i for i, v in enumerate(hist["loss"]) if v < target]
        return below[0] + 1 if below else max_epochs + 1

    raw = epochs_to(X)
    standardized = epochs_to(fn.Standardizer().fit_transform(X))
    assert standardized < raw
    assert standardized <= 10


# ---------------------------------------------------------------- faults

def _diverging_model():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((300, 8)) * 50, rng.standard_normal(300) * 1e3
    model = fn.Sequential([fn.Dense(32, activation="relu"), fn.Dense(32, activation="relu"),
                           fn.Dense(1, activation="identity")],
                          input_dim=8, dtype="float32", seed=0)
    return model, X, y


def test_divergence_raises_naming_epoch_batch_and_layer():
    model, X, y = _diverging_model()
    with pytest.raises(fn.NonFiniteError) as info:
        model.fit(X, y, loss="mse", optimizer=fn.optim.SGD(lr=10.0), epochs=20, batch_size=30)
    err = info.value
    assert "epoch" in str(err) and "batch" in str(err)
    assert "layer" in err.where or "loss" in err.where
    assert err.history is model.history_
    params = model.get_params_flat()
    assert np.all(np.isfinite(params))  # the last good weights
    # the model holds exactly the weights of its last completed step
    ref_model, _, _ = _diverging_model()
    with pytest.raises(fn.NonFiniteError) as ref_info:
        ref_model.fit(X, y, loss="mse", optimizer=fn.optim.SGD(lr=10.0), epochs=20,
                      batch_size=30, backend="reference")
    assert (ref_info.value.epoch, ref_info.value.batch) == (err.epoch, err.batch)
    assert ref_model.t_ == model.t_


def test_divergence_can_warn_instead():
    model, X, y = _diverging_model()
    with pytest.warns(RuntimeWarning, match="diverged"):
        history = model.fit(X, y, loss="mse", optimizer=fn.optim.SGD(lr=10.0), epochs=20,
                            batch_size=30, on_nonfinite="warn")
    assert history.stopped == "non_finite"
    assert np.all(np.isfinite(model.get_params_flat()))
    assert model.predict(X[:5]).shape == (5,)


def test_clipping_turns_a_diverging_run_into_a_finite_one():
    # the same data, learning rate and schedule: only clip_norm differs
    run = dict(loss="mse", optimizer=fn.optim.SGD(lr=10.0), epochs=20, batch_size=30)
    model, X, y = _diverging_model()
    with pytest.raises(fn.NonFiniteError):
        model.fit(X, y, **run)
    model, X, y = _diverging_model()
    history = model.fit(X, y, clip_norm=1.0, **run)
    assert history.stopped is None and model.t_ == 20 * 10
    assert np.all(np.isfinite(history["loss"]))
    assert np.all(np.isfinite(model.get_params_flat()))


class _Interrupt(fn.Callback):
    def __init__(self, at):
        self.at = at

    def on_epoch_end(self, epoch, logs):
        if epoch == self.at:
            raise KeyboardInterrupt


def test_keyboard_interrupt_keeps_weights_and_history():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((300, 6)), rng.integers(0, 3, 300)
    model = fn.Sequential([fn.Dense(8), fn.Dense(3, activation="softmax")], input_dim=6, seed=0)
    with pytest.warns(RuntimeWarning, match="interrupted"):
        history = model.fit(X, y, epochs=10, callbacks=[_Interrupt(2)])
    assert history.stopped == "interrupted"
    assert len(history["loss"]) == 3
    assert model.history_ is history
    # the weights are those of a completed run of 3 epochs
    twin = fn.Sequential([fn.Dense(8), fn.Dense(3, activation="softmax")], input_dim=6, seed=0)
    twin.fit(X, y, epochs=3)
    np.testing.assert_array_equal(model.get_params_flat(), twin.get_params_flat())


def test_failed_fit_leaves_a_fitted_model_unchanged():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((100, 4)), rng.integers(0, 3, 100)
    model = fn.Sequential([fn.Dense(5), fn.Dense(3, activation="softmax")], input_dim=4, seed=0)
    model.fit(X, y, epochs=2)
    before = (model.get_params_flat(), model.t_, model.epochs_trained_, model.history_)
    bad_calls = [
        lambda: model.fit(X, np.full(100, 7), epochs=1),             # label out of range
        lambda: model.fit(X[:, :3], y, epochs=1),                    # wrong feature count
        lambda: model.fit(np.where(X > 1, np.nan, X), y, epochs=1),  # NaN in X
        lambda: model.fit(X, y, epochs=0),
        lambda: model.fit(X, y, batch_size=0),
        lambda: model.fit(X, y, batch_size=1000),
        lambda: model.fit(X, y, optimizer="adamax"),
        lambda: model.fit(X, y, loss="hinge"),
        lambda: model.fit(X, y, loss="binary_cross_entropy"),
        lambda: model.fit(X, y[:50]),
        lambda: model.fit(X, y, l2=-1.0),
        lambda: model.fit(X, y, optimizer=fn.optim.SGD(lr=0.1), clip_norm=0.0),
    ]
    for call in bad_calls:
        with pytest.raises((ValueError, TypeError)):
            call()
        np.testing.assert_array_equal(model.get_params_flat(), before[0])
        assert (model.t_, model.epochs_trained_, model.history_) == before[1:]


# ---------------------------------------------------------------- the API

def test_history_records_every_epoch():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((256, 10)), rng.integers(0, 4, 256)
    model = fn.Sequential([fn.Dense(16, activation="relu"), fn.Dropout(0.5),
                           fn.Dense(16, activation="tanh"), fn.Dense(4, activation="softmax")],
                          input_dim=10, seed=0)
    h = model.fit(X, y, epochs=4, validation_split=0.25, diagnostics=True)
    for key in ("loss", "val_loss", "val_accuracy", "time", "samples_per_sec", "lr"):
        assert len(h[key]) == 4, key
    # the 192 training rows (not the 64 held out) over each epoch's time
    assert h["samples_per_sec"] == [192 / t for t in h["time"]]
    assert h["lr"] == [1e-3] * 4  # Adam's default rate, constant
    # the last epoch's validation scores are those of the model fit returned, on the
    # 64 rows held out
    rows = h.validation_rows
    assert len(rows) == 64 and len(np.unique(rows)) == 64
    scores = model.evaluate(X[rows], y[rows])
    assert (h["val_loss"][-1], h["val_accuracy"][-1]) == (scores["loss"], scores["accuracy"])
    assert len(h.diagnostics) == 3
    for layer in h.diagnostics:
        assert set(layer) == {"act_mean", "act_var", "grad_norm", "dead_fraction"}
        assert all(len(v) == 4 for v in layer.values())
        # on standard normal inputs every unit is positive for some row of an epoch
        assert layer["dead_fraction"] == [0.0] * 4
    assert h.epochs == [0, 1, 2, 3]
    h2 = model.fit(X, y, epochs=2)
    assert h2.epochs == [4, 5]


def test_dead_relu_fraction_is_reported():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((128, 4)), rng.integers(0, 2, 128)
    model = fn.Sequential([fn.Dense(8, activation="relu"), fn.Dense(2, activation="softmax")],
                          input_dim=4, seed=0)
    model.weights[0][1][:4] = -100.0  # four units can never fire
    h = model.fit(X, y, epochs=2, optimizer=fn.optim.SGD(lr=1e-3), diagnostics=True)
    # those four, and only those: the other four are positive for some rows
    assert h.diagnostics[0]["dead_fraction"] == [0.5, 0.5]


def test_diagnostics_are_means_over_the_batches_that_step():
    # batch 1 weighs nothing and takes no step: the means are those of the other
    # three, as a fit without its rows records them (lr=0 keeps the weights alike)
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((64, 3)), rng.integers(0, 2, 64)
    w = np.ones(64)
    w[16:32] = 0.0
    kw = dict(epochs=1, batch_size=16, shuffle=False, optimizer=fn.optim.SGD(lr=0.0),
              diagnostics=True)

    def model():
        return fn.Sequential([fn.Dense(5, activation="relu"), fn.Dense(2, activation="softmax")],
                             input_dim=3, seed=0, dtype="float64")
    weighted = model().fit(X, y, sample_weight=w, **kw).diagnostics
    without = model().fit(np.delete(X, np.s_[16:32], 0), np.delete(y, np.s_[16:32]),
                          **kw).diagnostics
    for mine, theirs in zip(weighted, without):
        for key in ("act_mean", "act_var", "grad_norm"):
            np.testing.assert_allclose(mine[key], theirs[key], rtol=1e-14)


def test_verbose_levels(capsys):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((64, 3)), rng.integers(0, 2, 64)
    model = fn.Sequential([fn.Dense(4), fn.Dense(2, activation="softmax")], input_dim=3, seed=0)
    model.fit(X, y, epochs=2, verbose=0)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    model.fit(X, y, epochs=2, verbose=1)
    assert "epoch" in capsys.readouterr().err
    model.fit(X, y, epochs=2, verbose=2)
    assert "loss=" in capsys.readouterr().out


def test_inputs_of_any_dtype_and_layout_are_converted_once():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 5))
    X_int = np.round(X * 100).astype(np.int64)  # |x| < 500: exact in float32
    y = rng.integers(0, 3, 120)

    def trained(X_in):
        model = fn.Sequential([fn.Dense(6), fn.Dense(3, activation="softmax")],
                              input_dim=5, seed=0)
        model.fit(X_in, y, epochs=2)
        return model.get_params_flat()

    # the model computes in float32: every input trains as its float32 values
    want = trained(X.astype(np.float32))
    for X_in in (X, np.asfortranarray(X), np.repeat(X, 2, axis=1)[:, ::2]):
        np.testing.assert_array_equal(trained(X_in), want)
    np.testing.assert_array_equal(trained(X_int), trained(X_int.astype(np.float32)))


def test_one_hot_targets_equal_labels():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((90, 5)), rng.integers(0, 3, 90)
    runs = []
    for target in (y, np.eye(3)[y]):
        model = fn.Sequential([fn.Dense(6), fn.Dense(3, activation="softmax")],
                              input_dim=5, seed=0)
        model.fit(X, target, epochs=2)
        runs.append(model.get_params_flat())
    np.testing.assert_array_equal(*runs)


def test_last_batch_is_used_unless_dropped():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((70, 3)), rng.integers(0, 2, 70)
    model = fn.Sequential([fn.Dense(4), fn.Dense(2, activation="softmax")], input_dim=3, seed=0)
    model.fit(X, y, epochs=1, batch_size=32)
    assert model.t_ == 3
    model.fit(X, y, epochs=1, batch_size=32, drop_last=True)
    assert model.t_ == 5


def test_bad_model_definitions():
    with pytest.raises(ValueError, match="unknown activation"):
        fn.Dense(3, activation="swish")
    with pytest.raises(ValueError, match="unknown initializer"):
        fn.Dense(3, init="orthogonal")
    with pytest.raises(ValueError, match="first layer"):
        fn.Sequential([fn.Dropout(0.1), fn.Dense(3)])
    with pytest.raises(ValueError, match="last layer"):
        fn.Sequential([fn.Dense(3), fn.Dropout(0.1)])
    with pytest.raises(ValueError, match="dropout rate"):
        fn.Dropout(1.0)
    with pytest.raises(TypeError):
        fn.Sequential([fn.Dense(3), "relu"])
    model = fn.Sequential([fn.Dense(3, activation="softmax")], input_dim=2)
    with pytest.raises(ValueError, match="features"):
        model.predict(np.ones((4, 5)))


def test_leaky_relu_object_sets_alpha():
    model = fn.Sequential([fn.Dense(4, activation=fn.LeakyReLU(alpha=0.3)),
                           fn.Dense(1, activation="identity")], input_dim=2, seed=0,
                          dtype="float64")
    W, b = model.weights[0]
    W[...] = -1.0
    out = model._forward(np.ones((1, 2)))
    W2, _ = model.weights[1]
    np.testing.assert_allclose(out, (np.full((1, 4), -2.0) * 0.3) @ W2)


class _Snapshots(fn.Callback):
    def __init__(self):
        self.params = []

    def on_epoch_end(self, epoch, logs):
        self.params.append(self.model.get_params_flat().copy())


def test_optimizer_strings_and_schedules():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((64, 3)), rng.integers(0, 2, 64)

    def net():
        return fn.Sequential([fn.Dense(4), fn.Dense(2, activation="softmax")], input_dim=3,
                             seed=0)

    # a name trains as the optimizer it names, with its default hyperparameters
    named = {"sgd": fn.optim.SGD(), "momentum": fn.optim.Momentum(),
             "nesterov": fn.optim.Nesterov(), "rmsprop": fn.optim.RMSProp(),
             "adam": fn.optim.Adam(), "adamw": fn.optim.AdamW()}
    trained = []
    for name, explicit in named.items():
        model, twin = net(), net()
        model.fit(X, y, optimizer=name, epochs=2)
        twin.fit(X, y, optimizer=explicit, epochs=2)
        assert model.optimizer_.get_config() == explicit.get_config(), name
        np.testing.assert_array_equal(model.get_params_flat(), twin.get_params_flat(), name)
        trained.append(model.get_params_flat())
    # the six differ, so a name taken for another optimizer would show
    assert all(not np.array_equal(a, b) for i, a in enumerate(trained) for b in trained[i + 1:])

    # a schedule gives each step its rate: History's "lr" is the rate of each
    # epoch's last step (rtol: the same formula, rounded in another order)
    steps = np.arange(4)
    cosine = 0.05 * (1.0 + np.cos(np.pi * steps / 10))  # 0.1 decaying to 0 over 10 steps
    sgd = fn.optim.SGD(lr=fn.schedules.CosineDecay(0.1, total_steps=10))
    history = net().fit(X, y, optimizer=sgd, batch_size=32, epochs=2)
    np.testing.assert_allclose(history["lr"], cosine[[1, 3]], rtol=1e-15)
    # with one step an epoch, plain SGD at each of those rates takes the same steps
    model = net()
    history = model.fit(X, y, optimizer=sgd, batch_size=64, epochs=4)
    np.testing.assert_allclose(history["lr"], cosine, rtol=1e-15)
    chained = net()
    for lr in history["lr"]:
        chained.fit(X, y, optimizer=fn.optim.SGD(lr=lr), batch_size=64, epochs=1)
    np.testing.assert_array_equal(model.get_params_flat(), chained.get_params_flat())

    model, snapshots = net(), _Snapshots()
    initial = model.get_params_flat().copy()
    history = model.fit(X, y, optimizer=fn.optim.Adam(lr=fn.schedules.LinearWarmup(
        1e-2, warmup_steps=3)), batch_size=64, epochs=4, callbacks=[snapshots])
    np.testing.assert_allclose(history["lr"], [0.0, 1e-2 / 3, 2e-2 / 3, 1e-2], rtol=1e-15)
    # the warm-up starts at rate 0: the first step leaves the weights as they were
    np.testing.assert_array_equal(snapshots.params[0], initial)
    assert not np.array_equal(snapshots.params[1], initial)


def test_build_from_given_weights():
    model = fn.Sequential([fn.Dense(3, activation="tanh"), fn.Dense(2, activation="softmax")],
                          dtype="float32", seed=0)
    rng = np.random.default_rng(0)
    given = [(rng.standard_normal((4, 3)), rng.standard_normal(3)),
             (rng.standard_normal((3, 2)), rng.standard_normal(2))]
    model.build(4, weights=given)
    for (W, b), (W0, b0) in zip(model.weights, given):
        assert W.dtype == np.float32
        np.testing.assert_array_equal(W, W0.astype(np.float32))
        np.testing.assert_array_equal(b, b0.astype(np.float32))
    assert np.shares_memory(model.weights[0][0], model.arena_.params)
    with pytest.raises(ValueError, match="2 Dense layers"):
        model.build(4, weights=given[:1])
    with pytest.raises(ValueError, match="layer needs"):
        model.build(5, weights=given)
    bad = [(given[0][0] * np.nan, given[0][1]), given[1]]
    with pytest.raises(ValueError, match="NaN or infinity"):
        model.build(4, weights=bad)
