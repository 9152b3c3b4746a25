"""Callbacks: EarlyStopping, ModelCheckpoint and custom ones, checked against
the weights each epoch really had, captured by a recording callback."""

import numpy as np
import pytest

import fastnn
from fastnn import optim

from .small_nets import blobs, small_net


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
    X, y = blobs(0, 64)
    model = small_net()
    es = fastnn.EarlyStopping(patience=1)
    history = model.fit(X, y, optimizer=optim.Adam(lr=0.01), batch_size=16, epochs=6,
                        early_stopping=es)
    assert "val_loss" not in history.history
    assert es.best == min(history["loss"])
    assert es.best_epoch == history.epochs[int(np.argmin(history["loss"]))]


@pytest.mark.parametrize("make, validation", [
    (lambda path: fastnn.EarlyStopping(monitor="val_accuracy"), False),
    (lambda path: fastnn.EarlyStopping(monitor="val_acc"), True),
    (lambda path: fastnn.ModelCheckpoint(path, monitor="val_r2"), True),  # a classifier's
    (lambda path: fastnn.ModelCheckpoint(path, monitor="val_accuracy"), False),
])
def test_a_monitor_the_fit_does_not_log_is_refused_before_training(tmp_path, make, validation):
    # the monitored quantity is checked against what the fit will log before the
    # model changes, and the error names the callback and what is logged
    X, y = blobs(0, 64)
    callback = make(str(tmp_path / "best.npz"))
    model = small_net()
    before = model.get_params_flat()
    kw = ({"early_stopping": callback} if isinstance(callback, fastnn.EarlyStopping)
          else {"callbacks": [callback]})
    logged = "it logs: loss, lr, samples_per_sec, time"
    if validation:
        kw["validation_split"] = 0.25
        logged += ", val_accuracy, val_loss"
    with pytest.raises(ValueError) as raised:
        model.fit(X, y, batch_size=16, epochs=2, **kw)
    message = str(raised.value)
    assert message.startswith("%s monitors %r, which this fit does not log (%s);"
                              % (type(callback).__name__, callback.monitor, logged)), message
    assert message.endswith("give validation data to monitor validation quantities")
    assert model.epochs_trained_ == 0 and model.t_ == 0
    np.testing.assert_array_equal(model.get_params_flat(), before)
    assert not (tmp_path / "best.npz").exists()


@pytest.mark.parametrize("loss, n_out, target", [
    ("cross_entropy", 3, "labels"), ("binary_cross_entropy", 2, "binary"),
    ("poisson", 2, "counts"), ("mse", 2, "values")])
def test_the_monitors_are_checked_against_what_each_loss_really_logs(loss, n_out, target):
    # trainer.METRICS and EPOCH_LOGS, which the monitors are checked against, are
    # what a fit with validation data logs and what evaluate returns
    from fastnn import trainer
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 4))
    y = {"labels": rng.integers(0, 3, 40), "binary": rng.integers(0, 2, (40, 2)),
         "counts": rng.poisson(1.0, (40, 2)), "values": rng.standard_normal((40, 2))}[target]
    out = {"cross_entropy": "softmax", "binary_cross_entropy": "sigmoid", "poisson": "exp",
           "mse": "identity"}[loss]
    model = fastnn.Sequential([fastnn.Dense(n_out, activation=out)], input_dim=4, seed=0)
    recorder = Recorder()
    model.fit(X, y, loss=loss, batch_size=10, epochs=1, validation_split=0.25,
              callbacks=[recorder])
    assert set(recorder.logs[0]) == set(trainer.EPOCH_LOGS) | {
        "val_" + m for m in trainer.METRICS[loss]}
    assert set(model.evaluate(X, y)) == set(trainer.METRICS[loss])


def test_early_stopping_arguments():
    with pytest.raises(ValueError, match="patience"):
        fastnn.EarlyStopping(patience=-1)
    with pytest.raises(TypeError, match="patience must be an integer, got 1.5"):
        fastnn.EarlyStopping(patience=1.5)
    # a bad mode or monitor is refused when the callback is made, naming it
    with pytest.raises(ValueError, match="EarlyStopping's mode must be 'auto', 'min' or 'max', "
                                         "got 'maximum'"):
        fastnn.EarlyStopping(mode="maximum")
    with pytest.raises(ValueError, match="ModelCheckpoint's mode must be 'auto', 'min' or "
                                         "'max', got 'maximum'"):
        fastnn.ModelCheckpoint("best.npz", mode="maximum")
    with pytest.raises(TypeError, match="EarlyStopping's monitor must be the name"):
        fastnn.EarlyStopping(monitor=3)
    assert fastnn.EarlyStopping().best is None  # before any training


def test_early_stopping_must_be_an_early_stopping():
    X, y = blobs(0, 64)
    with pytest.raises(TypeError, match="early_stopping must be a fastnn.EarlyStopping"):
        small_net().fit(X, y, epochs=1, early_stopping="val_loss")


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
    X, y = blobs(0, 64)
    checkpoint = fastnn.ModelCheckpoint(tmp_path / "m.npz")
    recorder = Recorder()
    model = small_net()
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
    X, y = blobs(0, 64)
    X_val, y_val = blobs(1, 20)
    model = small_net()
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

    X, y = blobs(0, 64)
    cb = Minimal()
    history = small_net().fit(X, y, batch_size=16, epochs=3, callbacks=[cb])
    assert history.stopped is None
    assert cb.epochs == list(zip(history.epochs, history["loss"]))


@pytest.mark.parametrize("bad", [object(), "print", lambda epoch, logs: False],
                         ids=["object", "string", "function"])
def test_callback_without_on_epoch_end_raises_type_error(bad):
    X, y = blobs(0, 64)
    model = small_net()
    before = model.get_params_flat()
    with pytest.raises(TypeError, match="on_epoch_end"):
        model.fit(X, y, epochs=1, callbacks=[bad])
    np.testing.assert_array_equal(model.get_params_flat(), before)
    assert model.epochs_trained_ == 0


def test_callback_settings_are_checked_when_made():
    # a bad one would otherwise fail, or silently never stop, after an epoch trained
    with pytest.raises(TypeError, match="min_delta must be a real number, got None"):
        fastnn.EarlyStopping(min_delta=None)
    with pytest.raises(ValueError, match="min_delta must be finite, got nan"):
        fastnn.EarlyStopping(min_delta=float("nan"))
    assert fastnn.EarlyStopping(patience=np.int64(3)).patience == 3
    with pytest.raises(ValueError, match=r"may hold the field \{epoch\}.*'ck_\{val_loss\}.npz'"):
        fastnn.ModelCheckpoint("ck_{val_loss}.npz")
    with pytest.raises(ValueError, match="may hold the field"):
        fastnn.ModelCheckpoint("ck_{}.npz")
    assert fastnn.ModelCheckpoint("ck_{epoch:03d}.npz").path == "ck_{epoch:03d}.npz"


def test_restore_best_leaves_a_diverged_fit_at_its_last_completed_step():
    # the best epoch's weights would not go with the optimizer state and step kept
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 3))
    y = X @ np.array([1.0, 2.0, 3.0])
    seen = {}

    class Record(fastnn.Callback):
        def on_epoch_end(self, epoch, logs):
            seen[epoch] = self.model.get_params_flat()
            if epoch == 3:  # the next epoch diverges
                self.model.set_params_flat(seen[epoch] * 1e150)
                seen[epoch] = self.model.get_params_flat()

    model = fastnn.Sequential([fastnn.Dense(4, activation="identity"),
                               fastnn.Dense(1, activation="identity")], input_dim=3, seed=0,
                              dtype="float64")
    with pytest.raises(fastnn.NonFiniteError):
        model.fit(X, y, epochs=10, batch_size=16, optimizer="sgd", callbacks=[Record()],
                  validation_data=(X, -y),
                  early_stopping=fastnn.EarlyStopping(patience=20, restore_best=True))
    assert model.t_ == 16 and model.epochs_trained_ == 4
    np.testing.assert_array_equal(model.get_params_flat(), seen[3])
