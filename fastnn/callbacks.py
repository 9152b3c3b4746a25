"""Callbacks: code that runs at the end of every epoch of a fit.

The protocol is small: ``set_model(model)`` once, ``on_train_begin(logs)``,
``on_epoch_end(epoch, logs)`` returning True to stop training, and
``on_train_end(logs)``. ``logs`` is a dict of the epoch's records (loss,
val_loss, ...); on_train_end's holds "stopped", how training stopped (as
History.stopped: None when it ran every epoch). Any object with these
methods works; subclass Callback to get no-op defaults.
"""

import math

import numpy as np

from fastnn._validation import check_int, check_scalar


class Callback:
    model = None

    def set_model(self, model):
        self.model = model

    def on_train_begin(self, logs=None):
        pass

    def on_epoch_end(self, epoch, logs):
        return False

    def on_train_end(self, logs=None):
        pass


def _mode_for(owner, monitor, mode):
    if not isinstance(monitor, str):
        raise TypeError("%s's monitor must be the name of a logged quantity (such as "
                        "'val_loss'), got %r" % (owner, monitor))
    if mode not in ("auto", "min", "max"):
        raise ValueError("%s's mode must be 'auto', 'min' or 'max', got %r" % (owner, mode))
    if mode == "auto":
        return "max" if ("accuracy" in monitor or monitor.endswith("r2")) else "min"
    return mode


def _tracked(monitor, logged):
    """The quantity tracked for `monitor` in a fit that logs `logged`:
    val_loss falls back to loss without validation data."""
    return monitor if monitor in logged or monitor != "val_loss" else "loss"


def _check_logged(owner, monitor, logged):
    if _tracked(monitor, logged) not in logged:
        raise ValueError("%s monitors %r, which this fit does not log (it logs: %s); give "
                         "validation data to monitor validation quantities"
                         % (owner, monitor, ", ".join(sorted(logged))))


class _Monitor:
    """Tracks the best value of a logged quantity for the callback `owner`."""

    def __init__(self, owner, monitor, mode, min_delta):
        self.owner, self.monitor = owner, monitor
        self.mode = _mode_for(owner, monitor, mode)
        self.min_delta = abs(float(min_delta))
        self.best = math.inf if self.mode == "min" else -math.inf

    def value(self, logs):
        _check_logged(self.owner, self.monitor, logs)
        return logs[self.monitor]

    def improved(self, value):
        if value is None or not np.isfinite(value):
            return False
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta


class EarlyStopping(Callback):
    """Stop after `patience` consecutive epochs in which `monitor` did not
    improve by more than min_delta (patience=0 stops at the first such epoch); with
    restore_best, put back the weights of the best epoch when training ends, unless
    it ended on a non-finite loss or gradient (the model then keeps its last
    completed step, with the optimizer state of that step).
    monitor defaults to "val_loss", falling back to "loss" without validation data."""

    def __init__(self, monitor="val_loss", patience=5, min_delta=0.0, restore_best=True,
                 mode="auto"):
        patience = check_int(patience, "patience", low=0)
        min_delta = check_scalar(min_delta, "min_delta")
        _mode_for("EarlyStopping", monitor, mode)
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta
        self.restore_best, self.mode = restore_best, mode
        self._tracker = None
        self.best_epoch = None
        self.best_weights = None
        self.stopped_epoch = None

    def on_train_begin(self, logs=None):
        self._tracker = None
        self.wait = 0
        self.best_epoch = None
        self.best_weights = None
        self.stopped_epoch = None

    def get_config(self):
        """The settings (processes training together compare them)."""
        return {"monitor": self.monitor, "patience": self.patience,
                "min_delta": self.min_delta, "restore_best": self.restore_best,
                "mode": self.mode}

    def check_logged(self, logged):
        """Raise ValueError, before training, when a fit logging the names
        `logged` does not log the monitored quantity."""
        _check_logged(type(self).__name__, self.monitor, logged)

    def on_epoch_end(self, epoch, logs):
        if self._tracker is None:
            self._tracker = _Monitor(type(self).__name__, _tracked(self.monitor, logs),
                                     self.mode, self.min_delta)
        value = self._tracker.value(logs)
        if self._tracker.improved(value):
            self._tracker.best = value
            self.best_epoch = epoch
            self.wait = 0
            if self.restore_best:
                self.best_weights = self.model.get_params_flat()
            return False
        self.wait += 1
        if self.wait >= max(self.patience, 1):
            self.stopped_epoch = epoch
            return True
        return False

    def on_train_end(self, logs=None):
        if (logs or {}).get("stopped") == "non_finite":
            return  # the best weights would not go with the optimizer state kept
        if self.restore_best and self.best_weights is not None:
            self.model.set_params_flat(self.best_weights)

    @property
    def best(self):
        return None if self._tracker is None else self._tracker.best


class ModelCheckpoint(Callback):
    """Save the model to `path` at the end of each epoch whose `monitor`
    improved (or every epoch with save_best_only=False). The path may contain
    "{epoch}". Saves are atomic, so an interruption never leaves a broken file."""

    def __init__(self, path, monitor="val_loss", save_best_only=True, mode="auto",
                 include_optimizer=True):
        _mode_for("ModelCheckpoint", monitor, mode)
        try:  # checked now: a bad field would fail after the first epoch has trained
            str(path).format(epoch=0)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError("ModelCheckpoint's path may hold the field {epoch} (with a format "
                             "spec such as {epoch:03d}) and no other, got %r (%s: %s)"
                             % (str(path), type(exc).__name__, exc)) from None
        self.path, self.monitor, self.save_best_only = str(path), monitor, save_best_only
        self.mode, self.include_optimizer = mode, include_optimizer
        self.saved = []

    def on_train_begin(self, logs=None):
        self._tracker = None

    def check_logged(self, logged):
        """Raise ValueError, before training, when a fit logging the names
        `logged` does not log the monitored quantity."""
        _check_logged(type(self).__name__, self.monitor, logged)

    def on_epoch_end(self, epoch, logs):
        if self._tracker is None:
            self._tracker = _Monitor(type(self).__name__, _tracked(self.monitor, logs),
                                     self.mode, 0.0)
        value = self._tracker.value(logs)
        if not self.save_best_only or self._tracker.improved(value):
            if self._tracker.improved(value):
                self._tracker.best = value
            path = self.path.format(epoch=epoch)
            self.model.save(path, include_optimizer=self.include_optimizer)
            self.saved.append(path)
        return False
