"""Learning-rate schedules: checked against their closed forms and against
what a fit records."""

import math

import numpy as np
import pytest

import fastnn
from fastnn import optim
from fastnn.schedules import (Constant, CosineDecay, ExponentialDecay, LinearWarmup, Schedule,
                              StepDecay)

from .small_nets import blobs, small_net


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
    X, y = blobs(0, 64)
    model = small_net()
    schedule = SCHEDULES[name]()
    history = model.fit(X, y, optimizer=optim.SGD(lr=schedule), batch_size=16, epochs=5)
    steps_per_epoch = 4
    last_steps = np.arange(1, 6) * steps_per_epoch - 1
    expected = schedule(last_steps, steps_per_epoch)
    assert history["lr"] == list(expected)
    assert len(history["lr"]) == len(history) == 5


def test_recorded_rates_match_closed_forms():
    X, y = blobs(0, 64)
    per_step = small_net().fit(X, y, optimizer=optim.SGD(lr=StepDecay(0.1, step_size=6,
                                                                      gamma=0.5)),
                               batch_size=16, epochs=5)
    # last steps of the epochs: 3, 7, 11, 15, 19
    assert per_step["lr"] == [0.1, 0.05, 0.05, 0.025, 0.0125]
    per_epoch = small_net().fit(X, y, optimizer=optim.Adam(lr=ExponentialDecay(0.1, 0.5,
                                                                               unit="epoch")),
                                batch_size=16, epochs=4)
    assert per_epoch["lr"] == [0.1, 0.05, 0.025, 0.0125]
    warm = small_net().fit(X, y, optimizer=optim.SGD(lr=LinearWarmup(0.2, warmup_steps=8)),
                           batch_size=16, epochs=3)
    assert warm["lr"] == [0.2 * 3 / 8, 0.2 * 7 / 8, 0.2]


def test_schedule_continues_across_fits():
    X, y = blobs(0, 64)
    schedule = StepDecay(0.1, step_size=3, gamma=0.5)
    straight = small_net().fit(X, y, optimizer=optim.SGD(lr=schedule), batch_size=16, epochs=5)
    model = small_net()
    first = model.fit(X, y, optimizer=optim.SGD(lr=schedule), batch_size=16, epochs=2)
    rest = model.fit(X, y, optimizer=None, batch_size=16, epochs=3)
    assert first["lr"] + rest["lr"] == straight["lr"]
    assert rest.epochs == [2, 3, 4]


def test_schedule_changes_the_training():
    X, y = blobs(0, 64)
    a, b = small_net(), small_net()
    a.fit(X, y, optimizer=optim.SGD(lr=0.1), batch_size=16, epochs=3)
    b.fit(X, y, optimizer=optim.SGD(lr=StepDecay(0.1, step_size=4, gamma=0.5)),
          batch_size=16, epochs=3)
    first_epoch = small_net()
    first_epoch.fit(X, y, optimizer=optim.SGD(lr=0.1), batch_size=16, epochs=1)
    c = small_net()
    c.fit(X, y, optimizer=optim.SGD(lr=StepDecay(0.1, step_size=4, gamma=0.5)),
          batch_size=16, epochs=1)
    # the first epoch (steps 0-3) has the same rate, later ones do not
    np.testing.assert_array_equal(c.get_params_flat(), first_epoch.get_params_flat())
    assert not np.array_equal(a.get_params_flat(), b.get_params_flat())


# --------------------------------------------------------------------------
# unit="epoch" counts the optimizer's epochs, whatever their number of steps
# --------------------------------------------------------------------------

def _halving_each_epoch():
    return optim.SGD(lr=StepDecay(0.1, step_size=1, gamma=0.5, unit="epoch"))


@pytest.mark.parametrize("backend", ["fast", "reference"])
def test_an_epoch_schedule_counts_epochs_with_batches_that_take_no_step(backend):
    # the first two of each epoch's five batches weigh nothing: 3 steps an epoch
    X, y = blobs(0, 40)
    w = np.r_[np.zeros(16), np.ones(24)]
    h = small_net().fit(X, y, sample_weight=w, optimizer=_halving_each_epoch(), batch_size=8,
                        epochs=4, shuffle=False, backend=backend)
    assert h["lr"] == [0.1, 0.05, 0.025, 0.0125]


@pytest.mark.parametrize("backend", ["fast", "reference"])
def test_an_epoch_schedule_counts_partial_fit_calls_of_any_size(backend):
    X, y = blobs(0, 64)
    model, rates = small_net(), []
    for lo, hi in [(0, 32), (32, 40), (40, 48), (48, 64)]:
        h = model.partial_fit(X[lo:hi], y[lo:hi], classes=[0, 1, 2], batch_size=8,
                              optimizer=_halving_each_epoch(), backend=backend)
        rates += h["lr"]
    assert rates == [0.1, 0.05, 0.025, 0.0125]
    assert model.epochs_trained_ == 4 and model.optimizer_first_epoch_ == 0


def test_an_epoch_schedule_starts_with_a_new_optimizer_and_continues_with_the_model(tmp_path):
    # a fit given a new optimizer starts its schedule at epoch 0; a fit that continues
    # the optimizer, with another batch size or after save and load, counts on
    X, y = blobs(0, 64)
    model = small_net()
    model.fit(X, y, optimizer="adam", batch_size=16, epochs=3)
    assert model.fit(X, y, optimizer=_halving_each_epoch(), batch_size=16,
                     epochs=2)["lr"] == [0.1, 0.05]
    assert model.optimizer_first_epoch_ == 3
    assert model.fit(X, y, batch_size=32, epochs=1)["lr"] == [0.025]
    model.save(tmp_path / "m.npz")
    loaded = fastnn.load(tmp_path / "m.npz")
    assert loaded.optimizer_first_epoch_ == 3 and loaded.epochs_trained_ == 6
    assert loaded.fit(X, y, batch_size=8, epochs=2)["lr"] == [0.0125, 0.00625]


def test_an_epoch_warm_up_hands_an_epoch_schedule_the_epochs_after_it():
    # warm-up over 2 epochs, then halving from 0.2 each epoch; the calls differ in size
    X, y = blobs(0, 64)
    schedule = LinearWarmup(ExponentialDecay(0.2, decay_rate=0.5, unit="epoch"),
                            warmup_steps=2, unit="epoch")
    model, rates = small_net(), []
    for lo, hi in [(0, 8), (8, 40), (40, 48), (48, 64), (0, 24)]:
        h = model.partial_fit(X[lo:hi], y[lo:hi], classes=[0, 1, 2], batch_size=8,
                              optimizer=optim.SGD(lr=schedule))
        rates += h["lr"]
    assert rates == [0.0, 0.1, 0.2, 0.1, 0.05]


def test_a_target_in_the_other_unit_counts_from_the_optimizers_first_step_or_epoch():
    # the warm-up replaces the target's rates while it lasts: its length in the other
    # unit is not known when the steps of an epoch change
    by_epoch = LinearWarmup(StepDecay(0.1, step_size=3, gamma=0.5), warmup_steps=2,
                            unit="epoch")
    _assert_rates(by_epoch, [0, 4, 8, 11], [0.0, 0.05, 0.025, 0.0125], steps_per_epoch=4)
    by_step = LinearWarmup(StepDecay(0.1, step_size=1, gamma=0.5, unit="epoch"),
                           warmup_steps=2)
    _assert_rates(by_step, [0, 1, 2, 3, 4], [0.0, 0.05, 0.1, 0.1, 0.05], steps_per_epoch=4)
    # in a fit and over partial_fit calls of other sizes, the target counts the
    # optimizer's epochs, one more for each
    X, y = blobs(0, 64)
    model = small_net()
    assert (model.fit(X, y, optimizer=optim.SGD(lr=by_step), batch_size=16, epochs=3)["lr"]
            + model.fit(X, y, batch_size=4, epochs=1)["lr"]) == [0.1, 0.05, 0.025, 0.0125]
    model, rates = small_net(), []
    for lo, hi in [(0, 32), (32, 64), (0, 64), (0, 8), (8, 64)]:  # 4, 4, 8, 1, 7 steps
        rates += model.partial_fit(X[lo:hi], y[lo:hi], classes=[0, 1, 2], batch_size=8,
                                   optimizer=optim.SGD(lr=by_step))["lr"]
    assert rates == [0.1, 0.05, 0.025, 0.0125, 0.00625]


def test_a_model_saved_before_the_first_epoch_was_kept_counts_epochs_from_its_steps():
    # a file or pickle without optimizer_first_epoch: an epoch-unit schedule takes
    # its epoch from the steps at this fit's steps per epoch, as it did then
    X, y = blobs(0, 64)
    model = small_net()
    model.fit(X, y, optimizer="adam", batch_size=16, epochs=5)
    model.fit(X, y, optimizer=optim.SGD(lr=StepDecay(0.1, 5, gamma=0.1, unit="epoch")),
              batch_size=16, epochs=5)
    state = model.state_dict()
    del state["config"]["optimizer_first_epoch"]
    older = fastnn.Sequential.from_state_dict(state)
    assert older.optimizer_first_epoch_ is None
    assert older.fit(X, y, batch_size=16, epochs=1)["lr"] == pytest.approx([0.01], rel=1e-15)
    assert older.optimizer_first_epoch_ == 5
    pickled = small_net()
    del pickled.optimizer_first_epoch_  # as a model pickled before it existed
    assert pickled.optimizer_first_epoch_ is None
    pickled.fit(X, y, batch_size=16, epochs=1)
    assert pickled.optimizer_first_epoch_ == 0


def test_a_schedule_whose_call_takes_no_epochs_still_serves():
    # a subclass that overrides __call__(steps, steps_per_epoch): it gets no epochs
    class Halving(Schedule):
        def __init__(self, lr):
            self.lr = lr

        def __call__(self, steps, steps_per_epoch=1):
            return self.lr * 0.5 ** np.asarray(steps, dtype=np.float64)

    X, y = blobs(0, 64)
    h = small_net().fit(X, y, optimizer=optim.SGD(lr=Halving(0.1)), batch_size=16, epochs=2)
    assert h["lr"] == [0.1 * 0.5 ** 3, 0.1 * 0.5 ** 7]
    warm = LinearWarmup(Halving(0.1), 3)
    h = small_net().fit(X, y, optimizer=optim.SGD(lr=warm), batch_size=16, epochs=2)
    assert h["lr"] == [0.1, 0.1 * 0.5 ** 4]
