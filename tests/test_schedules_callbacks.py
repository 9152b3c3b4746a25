"""Learning-rate schedules, callbacks (EarlyStopping, ModelCheckpoint, custom),
History and its plots, and the Standardizer.

Schedules are checked against their closed forms and against what a fit
records; callbacks against the weights each epoch really had, captured by a
recording callback.
"""

import math
import sys

import numpy as np
import pytest

import fastnn
from fastnn import optim
from fastnn.schedules import (Constant, CosineDecay, ExponentialDecay, LinearWarmup,
                              StepDecay)

from .tolerances import assert_close


def _assert_rates(schedule, steps, expected, steps_per_epoch=1):
    got = schedule(np.asarray(steps), steps_per_epoch)
    assert got.dtype == np.float64 and got.shape == (len(steps),)
    # closed forms in float64: a pow or a cos rounds once, no slack beyond that
    np.testing.assert_allclose(got, expected, rtol=4 * np.finfo(np.float64).eps, atol=0)


# ---------------------------------------------------------------- schedules: closed forms


def test_constant():
    _assert_rates(Constant(0.1), [0, 1, 7, 10**6], [0.1] * 4)
    _assert_rates(Constant(0.1), [0, 13], [0.1, 0.1], steps_per_epoch=5)
    assert float(Constant(0.25)(3)) == 0.25


def test_step_decay_per_step():
    s = StepDecay(0.1, step_size=3, gamma=0.5)
    _assert_rates(s, [0, 1, 2, 3, 5, 6, 8, 9, 30],
                  [0.1, 0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.0125, 0.1 * 0.5 ** 10])


def test_step_decay_per_epoch():
    s = StepDecay(0.1, step_size=2, gamma=0.5, unit="epoch")
    # 4 steps per epoch: steps 0-7 are epochs 0-1, 8-15 epochs 2-3, 16.. epoch 4
    _assert_rates(s, [0, 3, 4, 7, 8, 15, 16, 23], [0.1] * 4 + [0.05] * 2 + [0.025] * 2,
                  steps_per_epoch=4)


def test_exponential_decay_per_step():
    s = ExponentialDecay(0.2, decay_rate=0.5, decay_steps=4)
    _assert_rates(s, [0, 2, 4, 6, 8, 12],
                  [0.2, 0.2 * 0.5 ** 0.5, 0.1, 0.2 * 0.5 ** 1.5, 0.05, 0.025])


def test_exponential_decay_per_epoch():
    s = ExponentialDecay(0.2, decay_rate=0.5, unit="epoch")
    _assert_rates(s, [0, 2, 3, 5, 6, 9], [0.2, 0.2, 0.1, 0.1, 0.05, 0.025], steps_per_epoch=3)


def test_cosine_decay_per_step():
    s = CosineDecay(0.1, total_steps=10, min_lr=0.01)
    expected = [0.01 + 0.045 * (1 + math.cos(math.pi * k / 10)) for k in (0, 2, 5, 9)]
    _assert_rates(s, [0, 2, 5, 9, 10, 11, 1000], expected + [0.01, 0.01, 0.01])
    assert float(s(0)) == 0.1 and float(s(10)) == 0.01


def test_cosine_decay_to_zero_per_epoch():
    s = CosineDecay(0.1, total_steps=4, unit="epoch")
    # 5 steps per epoch: the rate holds within an epoch and reaches 0 at epoch 4
    c = math.cos(math.pi / 4)
    _assert_rates(s, [0, 4, 5, 10, 15, 19, 20, 50],
                  [0.1, 0.1, 0.05 * (1 + c), 0.05, 0.05 * (1 - c), 0.05 * (1 - c), 0.0, 0.0],
                  steps_per_epoch=5)


def test_linear_warmup_to_a_number():
    _assert_rates(LinearWarmup(0.1, warmup_steps=4), [0, 1, 2, 3, 4, 5, 100],
                  [0.0, 0.025, 0.05, 0.075, 0.1, 0.1, 0.1])
    _assert_rates(LinearWarmup(0.1, warmup_steps=4, start_factor=0.2), [0, 2, 4],
                  [0.02, 0.1 * (0.2 + 0.8 * 0.5), 0.1])


def test_linear_warmup_to_a_schedule():
    # the target starts counting when the warm-up ends
    s = LinearWarmup(StepDecay(0.1, step_size=2, gamma=0.5), warmup_steps=3)
    _assert_rates(s, [0, 1, 2, 3, 4, 5, 6, 7, 9],
                  [0.0, 0.1 / 3, 0.2 / 3, 0.1, 0.1, 0.05, 0.05, 0.025, 0.0125])


def test_linear_warmup_per_epoch():
    s = LinearWarmup(0.1, warmup_steps=2, unit="epoch")
    _assert_rates(s, [0, 3, 4, 7, 8, 100], [0.0, 0.0, 0.05, 0.05, 0.1, 0.1], steps_per_epoch=4)


def test_linear_warmup_per_epoch_to_an_epoch_schedule():
    s = LinearWarmup(ExponentialDecay(0.1, decay_rate=0.5, unit="epoch"), warmup_steps=1,
                     unit="epoch")
    _assert_rates(s, [0, 1, 2, 3, 4, 5, 6], [0.0, 0.0, 0.1, 0.1, 0.05, 0.05, 0.025],
                  steps_per_epoch=2)


def test_schedule_is_usable_as_optimizer_lr():
    opt = optim.Adam(lr=StepDecay(0.1, step_size=2))
    _assert_rates(opt.lr, [0, 2], [0.1, 0.1 * 0.1])
    assert optim.SGD(lr=0.3).lr.get_config() == {"lr": 0.3, "type": "Constant"}


def _bad(id, make, exc, name):
    return pytest.param(make, exc, name, id=id)


BAD_ARGUMENTS = [
    _bad("constant-negative", lambda: Constant(-0.1), ValueError, "lr"),
    _bad("constant-string", lambda: Constant("0.1"), TypeError, "lr"),
    _bad("constant-nan", lambda: Constant(float("nan")), ValueError, "lr"),
    _bad("constant-bool", lambda: Constant(True), TypeError, "lr"),
    _bad("step-lr", lambda: StepDecay(-1.0, 3), ValueError, "lr"),
    _bad("step-size-zero", lambda: StepDecay(0.1, 0), ValueError, "step_size"),
    _bad("step-size-float", lambda: StepDecay(0.1, 1.5), TypeError, "step_size"),
    _bad("step-gamma", lambda: StepDecay(0.1, 3, gamma=-0.5), ValueError, "gamma"),
    _bad("step-unit", lambda: StepDecay(0.1, 3, unit="batch"), ValueError, "unit"),
    _bad("exp-rate", lambda: ExponentialDecay(0.1, -0.5), ValueError, "decay_rate"),
    _bad("exp-rate-string", lambda: ExponentialDecay(0.1, "fast"), TypeError, "decay_rate"),
    _bad("exp-steps", lambda: ExponentialDecay(0.1, 0.5, decay_steps=0), ValueError,
         "decay_steps"),
    _bad("exp-unit", lambda: ExponentialDecay(0.1, 0.5, unit="epochs"), ValueError, "unit"),
    _bad("cos-total", lambda: CosineDecay(0.1, 0), ValueError, "total_steps"),
    _bad("cos-total-float", lambda: CosineDecay(0.1, 10.0), TypeError, "total_steps"),
    _bad("cos-min-negative", lambda: CosineDecay(0.1, 10, min_lr=-0.01), ValueError, "min_lr"),
    _bad("cos-min-above-lr", lambda: CosineDecay(0.1, 10, min_lr=0.5), ValueError, "min_lr"),
    _bad("cos-unit", lambda: CosineDecay(0.1, 10, unit=None), ValueError, "unit"),
    _bad("warmup-steps", lambda: LinearWarmup(0.1, 0), ValueError, "warmup_steps"),
    _bad("warmup-steps-string", lambda: LinearWarmup(0.1, "5"), TypeError, "warmup_steps"),
    _bad("warmup-start", lambda: LinearWarmup(0.1, 5, start_factor=1.5), ValueError,
         "start_factor"),
    _bad("warmup-target-negative", lambda: LinearWarmup(-0.1, 5), ValueError, "target"),
    _bad("warmup-target-string", lambda: LinearWarmup("cosine", 5), TypeError, "target"),
    _bad("warmup-unit", lambda: LinearWarmup(0.1, 5, unit="step "), ValueError, "unit"),
    _bad("optimizer-lr", lambda: optim.Adam(lr=-1.0), ValueError, "lr"),
]


@pytest.mark.parametrize("make, exc, name", BAD_ARGUMENTS)
def test_invalid_schedule_argument_names_it(make, exc, name):
    with pytest.raises(exc, match=r"^%s (must|=)" % name):
        make()


# ---------------------------------------------------------------- schedules in a fit


CENTERS = np.random.default_rng(100).standard_normal((3, 5)) * 2


def _blobs(seed, m):
    """m samples around three fixed centers; the seed picks the samples."""
    rng = np.random.default_rng(seed)
    centers = CENTERS
    y = rng.integers(0, len(centers), m)
    X = centers[y] + rng.standard_normal((m, centers.shape[1]))
    return X, y


def _net(seed=0, hidden=16, n_features=5, dtype="float64", dropout=0.0):
    layers = [fastnn.Dense(hidden, activation="relu")]
    if dropout:
        layers.append(fastnn.Dropout(dropout))
    layers.append(fastnn.Dense(3, activation="softmax"))
    return fastnn.Sequential(layers, input_dim=n_features, dtype=dtype, seed=seed)


SCHEDULES = {
    "constant": lambda: Constant(0.05),
    "step": lambda: StepDecay(0.1, step_size=6, gamma=0.5),
    "step-epoch": lambda: StepDecay(0.1, step_size=2, gamma=0.5, unit="epoch"),
    "exponential": lambda: ExponentialDecay(0.1, decay_rate=0.9, decay_steps=3),
    "exponential-epoch": lambda: ExponentialDecay(0.1, decay_rate=0.5, unit="epoch"),
    "cosine": lambda: CosineDecay(0.1, total_steps=14, min_lr=0.001),
    "cosine-epoch": lambda: CosineDecay(0.1, total_steps=4, unit="epoch"),
    "warmup": lambda: LinearWarmup(0.1, warmup_steps=10),
    "warmup-epoch-cosine": lambda: LinearWarmup(CosineDecay(0.1, total_steps=12), 2,
                                                start_factor=0.1, unit="epoch"),
}


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_fit_records_the_rate_of_each_epochs_last_step(name):
    X, y = _blobs(0, 64)
    model = _net()
    schedule = SCHEDULES[name]()
    history = model.fit(X, y, optimizer=optim.SGD(lr=schedule), batch_size=16, epochs=5)
    steps_per_epoch = 4
    last_steps = np.arange(1, 6) * steps_per_epoch - 1
    expected = schedule(last_steps, steps_per_epoch)
    assert history["lr"] == list(expected)
    assert len(history["lr"]) == len(history) == 5


def test_recorded_rates_match_closed_forms():
    X, y = _blobs(0, 64)
    per_step = _net().fit(X, y, optimizer=optim.SGD(lr=StepDecay(0.1, step_size=6, gamma=0.5)),
                          batch_size=16, epochs=5)
    # last steps of the epochs: 3, 7, 11, 15, 19
    assert per_step["lr"] == [0.1, 0.05, 0.05, 0.025, 0.0125]
    per_epoch = _net().fit(X, y, optimizer=optim.Adam(lr=ExponentialDecay(0.1, 0.5,
                                                                          unit="epoch")),
                           batch_size=16, epochs=4)
    assert per_epoch["lr"] == [0.1, 0.05, 0.025, 0.0125]
    warm = _net().fit(X, y, optimizer=optim.SGD(lr=LinearWarmup(0.2, warmup_steps=8)),
                      batch_size=16, epochs=3)
    assert warm["lr"] == [0.2 * 3 / 8, 0.2 * 7 / 8, 0.2]


def test_schedule_continues_across_fits():
    X, y = _blobs(0, 64)
    schedule = StepDecay(0.1, step_size=3, gamma=0.5)
    straight = _net().fit(X, y, optimizer=optim.SGD(lr=schedule), batch_size=16, epochs=5)
    model = _net()
    first = model.fit(X, y, optimizer=optim.SGD(lr=schedule), batch_size=16, epochs=2)
    rest = model.fit(X, y, optimizer=None, batch_size=16, epochs=3)
    assert first["lr"] + rest["lr"] == straight["lr"]
    assert rest.epochs == [2, 3, 4]


def test_schedule_changes_the_training():
    X, y = _blobs(0, 64)
    a, b = _net(), _net()
    a.fit(X, y, optimizer=optim.SGD(lr=0.1), batch_size=16, epochs=3)
    b.fit(X, y, optimizer=optim.SGD(lr=StepDecay(0.1, step_size=4, gamma=0.5)),
          batch_size=16, epochs=3)
    first_epoch = _net()
    first_epoch.fit(X, y, optimizer=optim.SGD(lr=0.1), batch_size=16, epochs=1)
    c = _net()
    c.fit(X, y, optimizer=optim.SGD(lr=StepDecay(0.1, step_size=4, gamma=0.5)),
          batch_size=16, epochs=1)
    # the first epoch (steps 0-3) has the same rate, later ones do not
    np.testing.assert_array_equal(c.get_params_flat(), first_epoch.get_params_flat())
    assert not np.array_equal(a.get_params_flat(), b.get_params_flat())


# ---------------------------------------------------------------- EarlyStopping


class Recorder(fastnn.Callback):
    """Stores the parameters (and optionally predictions) at the end of every epoch."""

    def __init__(self, X=None):
        self.X = X
        self.params, self.proba, self.logs = {}, {}, {}
        self.began = self.ended = 0

    def on_train_begin(self, logs=None):
        self.began += 1

    def on_epoch_end(self, epoch, logs):
        self.params[epoch] = self.model.get_params_flat()
        self.logs[epoch] = dict(logs)
        if self.X is not None:
            self.proba[epoch] = self.model.predict_proba(self.X)
        return False

    def on_train_end(self, logs=None):
        self.ended += 1


@pytest.fixture(scope="module")
def overfit_data():
    """A tiny training set of random labels and a separate validation set: a
    large network memorizes the first, so the validation loss rises."""
    rng = np.random.default_rng(1)
    X_train, y_train = rng.standard_normal((24, 8)), rng.integers(0, 3, 24)
    X_val, y_val = rng.standard_normal((60, 8)), rng.integers(0, 3, 60)
    return X_train, y_train, X_val, y_val


def _big_net(seed=0):
    return fastnn.Sequential([fastnn.Dense(64), fastnn.Dense(64),
                              fastnn.Dense(3, activation="softmax")], input_dim=8, seed=seed)


def _overfit(data, epochs=60, **kwargs):
    X_train, y_train, X_val, y_val = data
    model = _big_net()
    recorder = Recorder(X_val)
    callbacks = [recorder] + kwargs.pop("callbacks", [])
    history = model.fit(X_train, y_train, validation_data=(X_val, y_val),
                        optimizer=optim.Adam(lr=0.01), batch_size=8, epochs=epochs,
                        callbacks=callbacks, **kwargs)
    return model, history, recorder


def test_early_stopping_restores_the_best_epoch(overfit_data):
    es = fastnn.EarlyStopping(patience=2, restore_best=True)
    model, history, recorder = _overfit(overfit_data, early_stopping=es)

    assert history.stopped == "early_stopping"
    val = history["val_loss"]
    best = int(np.argmin(val))
    assert val[-1] > val[best]  # the validation loss did rise
    assert len(history) < 60
    assert es.best_epoch == history.epochs[best]
    assert es.best == val[best]
    # patience=2: training stops after two epochs without improvement
    assert history.epochs[-1] == es.best_epoch + 2 == es.stopped_epoch
    assert all(v >= val[best] for v in val[best + 1:])
    np.testing.assert_array_equal(model.get_params_flat(), recorder.params[es.best_epoch])
    assert not np.array_equal(model.get_params_flat(), recorder.params[history.epochs[-1]])
    np.testing.assert_array_equal(model.predict_proba(overfit_data[2]),
                                  recorder.proba[es.best_epoch])
    assert model.evaluate(overfit_data[2], overfit_data[3])["loss"] == val[best]
    assert recorder.began == recorder.ended == 1


def test_early_stopping_without_restore_keeps_the_last_weights(overfit_data):
    es = fastnn.EarlyStopping(patience=2, restore_best=False)
    model, history, recorder = _overfit(overfit_data, early_stopping=es)
    assert history.stopped == "early_stopping"
    assert es.best_weights is None
    np.testing.assert_array_equal(model.get_params_flat(), recorder.params[history.epochs[-1]])


def test_early_stopping_on_val_accuracy_maximizes(overfit_data):
    es = fastnn.EarlyStopping(monitor="val_accuracy", patience=2)
    model, history, recorder = _overfit(overfit_data, early_stopping=es)
    acc = history["val_accuracy"]
    best = int(np.argmax(acc))  # the first epoch with the highest accuracy
    assert history.stopped == "early_stopping"
    assert es.best == max(acc) and es.best_epoch == history.epochs[best]
    assert history.epochs[-1] == es.best_epoch + 2
    assert es.best_epoch != history.epochs[int(np.argmin(acc))]
    np.testing.assert_array_equal(model.get_params_flat(), recorder.params[es.best_epoch])


class FakeModel:
    """Enough of a model for a callback: parameters are the epoch's number."""

    def __init__(self):
        self.current = None
        self.restored = None

    def get_params_flat(self):
        return np.array([self.current])

    def set_params_flat(self, flat):
        self.restored = int(flat[0])


def _drive(callback, records):
    """Feed callback one log dict per epoch, as fit does; returns the epoch it stopped at."""
    model = FakeModel()
    callback.set_model(model)
    callback.on_train_begin({})
    stopped = None
    for epoch, logs in enumerate(records):
        model.current = epoch
        if callback.on_epoch_end(epoch, dict(logs)):
            stopped = epoch
            break
    callback.on_train_end({})
    return stopped, model


def test_early_stopping_patience_on_a_sequence():
    losses = [1.0, 0.8, 0.9, 0.7, 0.75, 0.72, 0.71, 0.6]
    es = fastnn.EarlyStopping(patience=2)
    stopped, model = _drive(es, [{"loss": 9.0, "val_loss": v} for v in losses])
    assert (es.best_epoch, es.best, stopped, es.stopped_epoch) == (3, 0.7, 5, 5)
    assert model.restored == 3


def test_early_stopping_patience_zero_stops_at_the_first_miss():
    es = fastnn.EarlyStopping(patience=0)
    stopped, model = _drive(es, [{"val_loss": v} for v in [3.0, 2.0, 2.5, 1.0]])
    assert (stopped, es.best_epoch, model.restored) == (2, 1, 1)


def test_early_stopping_min_delta():
    # improvements of 0.05 do not count when min_delta is 0.1
    es = fastnn.EarlyStopping(patience=1, min_delta=0.1)
    stopped, model = _drive(es, [{"val_loss": v} for v in [1.0, 0.95, 0.9, 0.5, 0.45]])
    assert (stopped, es.best_epoch, model.restored) == (1, 0, 0)


def test_early_stopping_mode_max_on_accuracy_sequence():
    acc = [0.5, 0.6, 0.55, 0.58, 0.59, 0.7]
    es = fastnn.EarlyStopping(monitor="val_accuracy", patience=2)
    stopped, model = _drive(es, [{"val_loss": 1.0, "val_accuracy": a} for a in acc])
    assert (es.best_epoch, es.best, stopped, model.restored) == (1, 0.6, 3, 1)
    # the same numbers as a loss to minimize: epoch 0 is best
    es = fastnn.EarlyStopping(monitor="val_accuracy", patience=2, mode="min")
    stopped, model = _drive(es, [{"val_accuracy": a} for a in acc])
    assert (es.best_epoch, stopped) == (0, 2)


def test_early_stopping_ignores_non_finite_values():
    es = fastnn.EarlyStopping(patience=2)
    stopped, model = _drive(es, [{"val_loss": v} for v in [1.0, float("nan"), 0.5, 0.4]])
    assert es.best_epoch == 3 and stopped is None and model.restored == 3


def test_early_stopping_without_validation_monitors_the_training_loss():
    es = fastnn.EarlyStopping(patience=1)
    stopped, model = _drive(es, [{"loss": v} for v in [1.0, 0.5, 0.6, 0.7]])
    assert (es.best_epoch, es.best, stopped, model.restored) == (1, 0.5, 2, 1)


def test_early_stopping_in_a_fit_without_validation_data():
    X, y = _blobs(0, 64)
    model = _net()
    es = fastnn.EarlyStopping(patience=1)
    history = model.fit(X, y, optimizer=optim.Adam(lr=0.01), batch_size=16, epochs=6,
                        early_stopping=es)
    assert "val_loss" not in history.history
    assert es.best == min(history["loss"])
    assert es.best_epoch == history.epochs[int(np.argmin(history["loss"]))]


def test_early_stopping_on_a_missing_quantity_says_so():
    X, y = _blobs(0, 64)
    es = fastnn.EarlyStopping(monitor="val_accuracy")
    with pytest.raises(KeyError, match="val_accuracy.*give validation data"):
        _net().fit(X, y, batch_size=16, epochs=2, early_stopping=es)


def test_early_stopping_arguments():
    with pytest.raises(ValueError, match="patience"):
        fastnn.EarlyStopping(patience=-1)
    with pytest.raises(ValueError, match="patience"):
        fastnn.EarlyStopping(patience=1.5)
    es = fastnn.EarlyStopping(mode="sideways")
    with pytest.raises(ValueError, match="mode must be"):
        _drive(es, [{"val_loss": 1.0}])
    assert fastnn.EarlyStopping().best is None  # before any training


def test_early_stopping_must_be_an_early_stopping():
    X, y = _blobs(0, 64)
    with pytest.raises(TypeError, match="early_stopping must be a fastnn.EarlyStopping"):
        _net().fit(X, y, epochs=1, early_stopping="val_loss")


# ---------------------------------------------------------------- ModelCheckpoint


def test_checkpoint_keeps_the_best_epoch(tmp_path, overfit_data):
    path = tmp_path / "best.npz"
    checkpoint = fastnn.ModelCheckpoint(path, save_best_only=True)
    model, history, recorder = _overfit(overfit_data, epochs=12, callbacks=[checkpoint])
    val = history["val_loss"]
    best = history.epochs[int(np.argmin(val))]
    assert best < history.epochs[-1]  # a later, worse epoch did not overwrite it
    improvements = [e for e in history.epochs if val[e] < min(val[:e], default=np.inf)]
    assert checkpoint.saved == [str(path)] * len(improvements)

    loaded = fastnn.load(path)
    assert loaded.epochs_trained_ == best + 1
    np.testing.assert_array_equal(loaded.get_params_flat(), recorder.params[best])
    np.testing.assert_array_equal(loaded.predict_proba(overfit_data[2]), recorder.proba[best])
    assert loaded.optimizer_.get_config() == model.optimizer_.get_config()


def test_checkpoint_every_epoch_with_epoch_in_the_name(tmp_path, overfit_data):
    checkpoint = fastnn.ModelCheckpoint(tmp_path / "model-{epoch}.npz", save_best_only=False,
                                        include_optimizer=False)
    model, history, recorder = _overfit(overfit_data, epochs=4, callbacks=[checkpoint])
    names = ["model-%d.npz" % e for e in range(4)]
    assert sorted(p.name for p in tmp_path.iterdir()) == names
    assert checkpoint.saved == [str(tmp_path / n) for n in names]
    for epoch in range(4):
        loaded = fastnn.load(tmp_path / names[epoch])
        assert loaded.epochs_trained_ == epoch + 1 and loaded.optimizer_ is None
        np.testing.assert_array_equal(loaded.get_params_flat(), recorder.params[epoch])


def test_checkpoint_without_validation_monitors_the_training_loss(tmp_path):
    X, y = _blobs(0, 64)
    checkpoint = fastnn.ModelCheckpoint(tmp_path / "m.npz")
    recorder = Recorder()
    model = _net()
    history = model.fit(X, y, optimizer=optim.SGD(lr=0.05), batch_size=16, epochs=4,
                        callbacks=[recorder, checkpoint])
    best = history.epochs[int(np.argmin(history["loss"]))]
    np.testing.assert_array_equal(fastnn.load(tmp_path / "m.npz").get_params_flat(),
                                  recorder.params[best])


def test_checkpoint_with_early_stopping(tmp_path, overfit_data):
    path = tmp_path / "best.npz"
    es = fastnn.EarlyStopping(patience=2)
    model, history, recorder = _overfit(overfit_data, early_stopping=es,
                                        callbacks=[fastnn.ModelCheckpoint(path)])
    np.testing.assert_array_equal(fastnn.load(path).get_params_flat(), model.get_params_flat())


# ---------------------------------------------------------------- custom callbacks


class StopAfter(fastnn.Callback):
    def __init__(self, last_epoch):
        self.last_epoch = last_epoch
        self.seen = []

    def on_epoch_end(self, epoch, logs):
        self.seen.append((epoch, sorted(logs)))
        return epoch == self.last_epoch


def test_callback_returning_true_stops_training():
    X, y = _blobs(0, 64)
    X_val, y_val = _blobs(1, 20)
    model = _net()
    cb = StopAfter(2)
    history = model.fit(X, y, validation_data=(X_val, y_val), batch_size=16, epochs=10,
                        callbacks=[cb])
    assert history.stopped == "callback"
    assert history.epochs == [0, 1, 2] and model.epochs_trained_ == 3
    assert [e for e, _ in cb.seen] == [0, 1, 2]
    assert cb.seen[0][1] == sorted(["loss", "time", "samples_per_sec", "lr", "val_loss",
                                    "val_accuracy"])
    assert cb.model is model


def test_any_object_with_on_epoch_end_is_a_callback():
    class Minimal:
        def __init__(self):
            self.epochs = []

        def on_epoch_end(self, epoch, logs):
            self.epochs.append((epoch, logs["loss"]))

    X, y = _blobs(0, 64)
    cb = Minimal()
    history = _net().fit(X, y, batch_size=16, epochs=3, callbacks=[cb])
    assert history.stopped is None
    assert cb.epochs == list(zip(history.epochs, history["loss"]))


@pytest.mark.parametrize("bad", [object(), "print", lambda epoch, logs: False],
                         ids=["object", "string", "function"])
def test_callback_without_on_epoch_end_raises_type_error(bad):
    X, y = _blobs(0, 64)
    model = _net()
    before = model.get_params_flat()
    with pytest.raises(TypeError, match="on_epoch_end"):
        model.fit(X, y, epochs=1, callbacks=[bad])
    np.testing.assert_array_equal(model.get_params_flat(), before)
    assert model.epochs_trained_ == 0


# ---------------------------------------------------------------- History


def _history(diagnostics=False, validation=True):
    X, y = _blobs(0, 64)
    kwargs = {"validation_data": _blobs(1, 20)} if validation else {}
    return _net(dropout=0.2).fit(X, y, batch_size=16, epochs=3, diagnostics=diagnostics,
                                 **kwargs)


def test_history_records():
    history = _history(diagnostics=True)
    assert len(history) == 3 and history.epochs == [0, 1, 2]
    for key in ("loss", "val_loss", "val_accuracy", "lr", "time", "samples_per_sec"):
        assert len(history[key]) == 3, key
    assert len(history.diagnostics) == 2  # one per Dense layer
    for layer in history.diagnostics:
        assert sorted(layer) == ["act_mean", "act_var", "dead_fraction", "grad_norm"]
        assert all(len(values) == 3 for values in layer.values())
    assert "3 epochs" in repr(history)


def _assert_png(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 10000  # a real picture, not an empty canvas


@pytest.mark.parametrize("diagnostics, validation", [(False, True), (True, True),
                                                     (False, False)],
                         ids=["curves", "diagnostics", "no-validation"])
def test_history_plot_writes_a_png(tmp_path, diagnostics, validation):
    matplotlib = pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt
    history = _history(diagnostics, validation)
    backend, open_figures = matplotlib.get_backend(), plt.get_fignums()
    path = tmp_path / "history.png"
    fig = history.plot(path)
    _assert_png(path)
    assert len(fig.axes) == (4 if diagnostics else 2)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[:2] == ["Learning curves",
                          "Validation metric" if validation else "Throughput"]
    if diagnostics:
        assert titles[2:] == ["Per-layer activation variance", "Per-layer gradient norm"]
        assert len(fig.axes[2].get_lines()) == 2  # one line per Dense layer
    lines = fig.axes[0].get_lines()
    assert len(lines) == (2 if validation else 1)
    np.testing.assert_array_equal(lines[0].get_ydata(), history["loss"])
    # plotting leaves the session's backend and pyplot's figures alone
    assert matplotlib.get_backend() == backend and plt.get_fignums() == open_figures


def test_history_plot_without_matplotlib(monkeypatch):
    history = _history()
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match="matplotlib"):
        history.plot()


# ---------------------------------------------------------------- Standardizer


def _features(rng, m, dtype):
    scales = np.array([0.01, 1.0, 30.0, 1000.0])
    offsets = np.array([5.0, -2.0, 100.0, 1e4])
    return (rng.standard_normal((m, 4)) * scales + offsets).astype(dtype)


def test_standardizer_fit_transform(dtype, rng):
    X = _features(rng, 200, dtype)
    s = fastnn.Standardizer().fit(X)
    assert s.n_features_in_ == 4
    assert s.mean_.dtype == dtype and s.std_.dtype == dtype and s.scale_.dtype == dtype
    assert_close(s.mean_, X.astype(np.float64).mean(axis=0), "gemm",
                 scale=np.abs(X).max(), k=200, dtype=dtype)
    assert_close(s.std_, X.astype(np.float64).std(axis=0), "gemm",
                 scale=np.abs(X - X.mean(axis=0)).max(), k=200, dtype=dtype)
    Xt = s.transform(X)
    assert Xt.dtype == dtype and Xt.shape == X.shape
    np.testing.assert_array_equal(Xt, (X - s.mean_) / s.std_)
    np.testing.assert_array_equal(fastnn.Standardizer().fit_transform(X), Xt)
    assert_close(Xt.astype(np.float64).mean(axis=0), np.zeros(4), "gemm",
                 scale=float(np.abs(X).max(axis=0).max() / s.std_.min()), k=200, dtype=dtype)
    assert_close(Xt.astype(np.float64).std(axis=0), np.ones(4), "gemm", k=200, dtype=dtype)


def test_standardizer_inverse_transform_round_trip(dtype, rng):
    X = _features(rng, 50, dtype)
    s = fastnn.Standardizer()
    back = s.inverse_transform(s.fit_transform(X))
    assert back.dtype == dtype
    # a few roundings, each relative to the size of the column's values
    for j in range(X.shape[1]):
        assert_close(back[:, j], X[:, j], "elementwise", scale=np.abs(X[:, j]).max(), k=4)


def test_standardizer_reuses_the_training_statistics(dtype, rng):
    train, test = _features(rng, 100, dtype), _features(rng, 30, dtype) * 2
    s = fastnn.Standardizer().fit(train)
    mean, std = s.mean_.copy(), s.std_.copy()
    got = s.transform(test)
    np.testing.assert_array_equal(got, (test - mean) / std)
    np.testing.assert_array_equal(s.mean_, mean)
    np.testing.assert_array_equal(s.std_, std)
    # the test data's own statistics would give something else
    assert not np.allclose(got, fastnn.Standardizer().fit_transform(test))


def test_standardizer_converts_to_the_fitted_dtype(rng):
    s = fastnn.Standardizer().fit(_features(rng, 20, np.float32))
    assert s.transform(_features(rng, 5, np.float64)).dtype == np.float32
    ints = fastnn.Standardizer().fit(np.arange(12).reshape(6, 2))
    assert ints.mean_.dtype == np.float64
    np.testing.assert_array_equal(ints.mean_, [5.0, 6.0])


def test_standardizer_constant_columns(dtype):
    X = np.empty((7, 3), dtype=dtype)
    X[:, 0] = np.arange(7)
    X[:, 1] = 0.1
    X[:, 2] = -3.0
    s = fastnn.Standardizer().fit(X)
    np.testing.assert_array_equal(s.std_[1:], 0)
    np.testing.assert_array_equal(s.scale_, [s.std_[0], 1, 1])
    Xt = s.transform(X)
    np.testing.assert_array_equal(Xt[:, 1:], 0)
    np.testing.assert_array_equal(s.inverse_transform(Xt)[:, 1:], X[:, 1:])
    # new data in a constant column is shifted, not divided by zero
    new = X[:2].copy()
    new[:, 1] = 1.1
    np.testing.assert_array_equal(s.transform(new)[:, 1], new[:, 1] - s.mean_[1])


def test_standardizer_feature_count_mismatch(rng):
    s = fastnn.Standardizer().fit(_features(rng, 20, np.float64))
    with pytest.raises(ValueError, match="X has 3 features, but the Standardizer was fitted "
                                         "on 4"):
        s.transform(np.zeros((5, 3)))
    with pytest.raises(ValueError, match=r"shape \(m, 4\).*\(5, 3\)"):
        s.inverse_transform(np.zeros((5, 3)))
    with pytest.raises(ValueError, match=r"shape \(m, 4\).*\(5, 1\)"):
        s.inverse_transform(np.zeros((5, 1)))  # would broadcast silently
    with pytest.raises(ValueError, match="2-dimensional"):
        s.transform(np.zeros(4))


def test_standardizer_not_fitted():
    s = fastnn.Standardizer()
    for method in (s.transform, s.inverse_transform):
        with pytest.raises(RuntimeError, match="not fitted"):
            method(np.zeros((2, 2)))


def test_standardizer_rejects_bad_values(rng):
    X = _features(rng, 10, np.float64)
    X[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity"):
        fastnn.Standardizer().fit(X)
    with pytest.raises(TypeError, match="bool"):
        fastnn.Standardizer().fit(np.ones((3, 2), dtype=bool))
