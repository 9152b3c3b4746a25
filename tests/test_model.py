"""fastnn.Sequential owns its state: every attribute exists from __init__ on,
fitting, saving and loading change only those, and state_dict /
from_state_dict carry all of it."""

import numpy as np

import fastnn as fn
from fastnn import optim
from fastnn.losses import CrossEntropy


def _data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 5))
    return X, (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)


def _model(seed=0):
    return fn.Sequential([fn.Dense(8, activation="tanh"), fn.Dropout(0.1),
                          fn.Dense(3, activation="softmax")], dtype="float64", seed=seed)


def test_no_attribute_appears_after_init(tmp_path):
    model = _model()
    names = set(vars(model))
    X, y = _data()
    model.fit(X, y, epochs=2, batch_size=16, loss=CrossEntropy(center_loss=0.1),
              optimizer=optim.Adam(lr=0.01))
    model.evaluate(X, y)
    model.predict(X)
    model.save(tmp_path / "m.npz")
    assert set(vars(model)) == names
    assert set(vars(fn.load(tmp_path / "m.npz"))) == names


def test_state_dict_round_trip_carries_the_whole_state():
    model = _model()
    X, y = _data()
    model.fit(X, y, epochs=2, batch_size=16, loss=CrossEntropy(center_loss=0.1),
              optimizer=optim.RMSProp(lr=0.01))
    state = model.state_dict()
    assert state["arrays"]["W0"] is not None and np.shares_memory(state["arrays"]["W0"],
                                                                  model.arena_.params)
    copy = fn.Sequential.from_state_dict({"config": dict(state["config"]),
                                          "arrays": {k: v.copy()
                                                     for k, v in state["arrays"].items()}})
    np.testing.assert_array_equal(copy.get_params_flat(), model.get_params_flat())
    for name in ("seed_", "loss_", "t_", "epochs_trained_", "y_1d_"):
        assert getattr(copy, name) == getattr(model, name), name
    np.testing.assert_array_equal(copy.centers_, model.centers_)
    assert copy.optimizer_.get_config() == model.optimizer_.get_config()
    for a, b in zip(copy.optimizer_state_, model.optimizer_state_):
        np.testing.assert_array_equal(a, b)
    # the copy continues training exactly as the original does
    model.fit(X, y, epochs=1, batch_size=16, loss=CrossEntropy(center_loss=0.1))
    copy.fit(X, y, epochs=1, batch_size=16, loss=CrossEntropy(center_loss=0.1))
    np.testing.assert_array_equal(copy.get_params_flat(), model.get_params_flat())


def test_state_dict_without_the_optimizer():
    model = _model()
    X, y = _data()
    model.fit(X, y, epochs=1, batch_size=16, loss=CrossEntropy(center_loss=0.1))
    state = model.state_dict(include_optimizer=False)
    assert state["config"]["optimizer"] is None
    assert not any(k.startswith("opt_state") or k == "centers" for k in state["arrays"])


def test_load_state_dict_into_a_model_of_the_same_architecture():
    model = _model()
    X, y = _data()
    model.fit(X, y, epochs=2, batch_size=16, optimizer=optim.Adam(lr=0.01))
    other = _model(seed=5).build(5)
    assert not np.array_equal(other.get_params_flat(), model.get_params_flat())
    assert other.load_state_dict(model.state_dict()) is other
    np.testing.assert_array_equal(other.get_params_flat(), model.get_params_flat())
    assert other.t_ == model.t_ and other.seed_ == model.seed_
    # its own arrays, not the source's: training one leaves the other alone
    before = model.get_params_flat()
    other.fit(X, y, epochs=1, batch_size=16)
    np.testing.assert_array_equal(model.get_params_flat(), before)


def test_load_state_dict_refuses_another_architecture():
    model = _model().build(5)
    wide = fn.Sequential([fn.Dense(9, activation="tanh"), fn.Dense(3, activation="softmax")],
                         dtype="float64", seed=0).build(5)
    import pytest
    with pytest.raises(ValueError, match="another architecture"):
        wide.load_state_dict(model.state_dict())
