"""Learning-rate schedules, usable with any optimizer: ``Adam(lr=CosineDecay(1e-3, 1000))``.

A schedule maps the optimizer step (0 for the first step) to a learning rate;
with ``unit="epoch"`` the step is first turned into the epoch it belongs to:
in a fit, the optimizer's epoch (0 for the first epoch it steps in, one more
for every epoch or partial_fit call after it, whatever its number of steps);
called alone, the step's quotient by the steps of an epoch.
Schedules are evaluated for a whole run of batches at once (NumPy arrays of
steps), so they cost nothing per batch.
"""

import inspect

import numpy as np

from fastnn._validation import check_int, check_scalar


class Schedule:
    """Base class: subclasses implement ``rate(steps)`` on a float64 array."""

    unit = "step"

    def _check_unit(self, unit):
        if unit not in ("step", "epoch"):
            raise ValueError("unit must be 'step' or 'epoch', got %r" % (unit,))
        self.unit = unit

    def __call__(self, steps, steps_per_epoch=1, epochs=None):
        """Learning rates for the given 0-based optimizer steps; epochs: the
        0-based epoch of each step (see the module's docstring)."""
        steps = np.asarray(steps, dtype=np.float64)
        if self.unit == "epoch":
            steps = _epochs_of(steps, steps_per_epoch, epochs)
        return self.rate(steps)

    def rate(self, steps):
        raise NotImplementedError

    def get_config(self):
        cfg = dict(vars(self))
        for key, value in cfg.items():
            if isinstance(value, Schedule):
                cfg[key] = value.get_config()
        cfg["type"] = type(self).__name__
        return cfg


class Constant(Schedule):
    """lr at every step."""

    def __init__(self, lr):
        self.lr = check_scalar(lr, "lr", low=0.0)

    def rate(self, steps):
        return np.full(steps.shape, self.lr)


class StepDecay(Schedule):
    """lr * gamma ** floor(step / step_size)."""

    def __init__(self, lr, step_size, gamma=0.1, unit="step"):
        self.lr = check_scalar(lr, "lr", low=0.0)
        self.step_size = check_int(step_size, "step_size", low=1)
        self.gamma = check_scalar(gamma, "gamma", low=0.0)
        self._check_unit(unit)

    def rate(self, steps):
        return self.lr * self.gamma ** np.floor(steps / self.step_size)


class ExponentialDecay(Schedule):
    """lr * decay_rate ** (step / decay_steps)."""

    def __init__(self, lr, decay_rate, decay_steps=1, unit="step"):
        self.lr = check_scalar(lr, "lr", low=0.0)
        self.decay_rate = check_scalar(decay_rate, "decay_rate", low=0.0)
        self.decay_steps = check_int(decay_steps, "decay_steps", low=1)
        self._check_unit(unit)

    def rate(self, steps):
        return self.lr * self.decay_rate ** (steps / self.decay_steps)


class CosineDecay(Schedule):
    """Cosine from lr down to min_lr over total_steps, then min_lr."""

    def __init__(self, lr, total_steps, min_lr=0.0, unit="step"):
        self.lr = check_scalar(lr, "lr", low=0.0)
        self.total_steps = check_int(total_steps, "total_steps", low=1)
        self.min_lr = check_scalar(min_lr, "min_lr", low=0.0, high=self.lr)
        self._check_unit(unit)

    def rate(self, steps):
        frac = np.minimum(steps / self.total_steps, 1.0)
        return self.min_lr + 0.5 * (self.lr - self.min_lr) * (1.0 + np.cos(np.pi * frac))


class LinearWarmup(Schedule):
    """Linear ramp from start_factor * target to the target over warmup_steps,
    then the target: a number or another schedule. A target that counts in
    the warm-up's unit starts counting after the warm-up; one that counts in
    the other unit counts from the optimizer's first step or epoch, the
    warm-up replacing its rates while it lasts (the steps of an epoch can
    change between fits and partial_fit calls, so a warm-up's length in one
    unit is not known in the other)."""

    def __init__(self, target, warmup_steps, start_factor=0.0, unit="step"):
        self.target = target if isinstance(target, Schedule) else \
            Constant(check_scalar(target, "target", low=0.0))
        self.warmup_steps = check_int(warmup_steps, "warmup_steps", low=1)
        self.start_factor = check_scalar(start_factor, "start_factor", low=0.0, high=1.0)
        self._check_unit(unit)

    def __call__(self, steps, steps_per_epoch=1, epochs=None):
        steps = np.asarray(steps, dtype=np.float64)
        epochs = _epochs_of(steps, steps_per_epoch, epochs)
        warm = epochs if self.unit == "epoch" else steps
        target = self.target
        if getattr(target, "unit", "step") != self.unit:
            after = rates(target, steps, steps_per_epoch, epochs)
        elif self.unit == "step":
            after = rates(target, np.maximum(steps - self.warmup_steps, 0), steps_per_epoch,
                          epochs)
        else:
            after = rates(target, steps, steps_per_epoch,
                          np.maximum(epochs - self.warmup_steps, 0))
        ramp = self.start_factor + (1.0 - self.start_factor) * warm / self.warmup_steps
        first = rates(target, np.zeros_like(steps), steps_per_epoch, np.zeros_like(steps))
        return np.where(warm < self.warmup_steps, ramp * first, after)


def rates(schedule, steps, steps_per_epoch, epochs):
    """schedule's rates for the steps, given their epochs when its __call__
    takes them (a subclass may override __call__(steps, steps_per_epoch), as
    one written before epochs were passed does)."""
    try:
        params = inspect.signature(schedule.__call__).parameters.values()
    except (TypeError, ValueError):  # no signature to read: pass the epochs
        return schedule(steps, steps_per_epoch, epochs)
    takes = any(p.name == "epochs" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
                for p in params)
    return schedule(steps, steps_per_epoch, epochs) if takes else \
        schedule(steps, steps_per_epoch)


def _epochs_of(steps, steps_per_epoch, epochs):
    """The epoch of each step, as float64: as given, else the step's quotient
    by the steps of an epoch."""
    if epochs is None:
        return np.floor(steps / max(int(steps_per_epoch), 1))
    return np.broadcast_to(np.asarray(epochs, dtype=np.float64), steps.shape).copy()


SCHEDULES = {cls.__name__: cls for cls in
             (Constant, StepDecay, ExponentialDecay, CosineDecay, LinearWarmup)}


def as_schedule(lr):
    """A Schedule from a number or a Schedule."""
    if isinstance(lr, Schedule):
        return lr
    return Constant(check_scalar(lr, "lr", low=0.0))
