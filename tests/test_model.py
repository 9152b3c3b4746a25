"""fastnn.Sequential owns its state: every attribute exists from __init__ on,
fitting, saving and loading change only those, and state_dict /
from_state_dict carry all of it."""

import inspect
import re

import numpy as np
import pytest

import fastnn as fn
from fastnn import optim, trainer
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


# --------------------------------------------------------------------------
# signatures and docstrings that say what the methods take
# --------------------------------------------------------------------------

def _documented(doc):
    """{name: the text after "default=" or None} of each entry of a numpydoc
    Parameters section, in order."""
    section = doc.split("Parameters\n")[1].split("Returns\n")[0]
    entries = re.findall(r"^ {8}(\w+) : ([^\n]*)$", section, re.M)
    return {name: (spec.split("default=")[1] if "default=" in spec else None)
            for name, spec in entries}


@pytest.mark.parametrize("method, implementation", [
    ("fit", trainer.fit), ("evaluate", trainer.evaluate),
    ("predict", None), ("predict_proba", None)])
def test_signatures_are_explicit_and_documented(method, implementation):
    """Every option is a keyword-only parameter with a default, the same as
    the function that checks it, and is documented with that default."""
    sig = inspect.signature(getattr(fn.Sequential, method))
    params = list(sig.parameters.values())[1:]  # after self
    assert all(p.kind is not p.VAR_KEYWORD for p in params)
    data_args = [p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]
    assert data_args == (["X", "y"] if method in ("fit", "evaluate") else ["X"])
    options = [p for p in params if p.kind is p.KEYWORD_ONLY]
    if implementation is not None:
        theirs = [p for p in inspect.signature(implementation).parameters.values()
                  if p.kind is p.KEYWORD_ONLY and not p.name.startswith("_")]
        assert [(p.name, p.default) for p in options] == [(p.name, p.default) for p in theirs]
    doc = _documented(getattr(fn.Sequential, method).__doc__)
    assert list(doc) == [p.name for p in params]
    for p in options:
        assert doc[p.name] == repr(p.default), p.name


# --------------------------------------------------------------------------
# a Dense layer's own arrays
# --------------------------------------------------------------------------

def test_dense_layers_read_and_write_their_weights():
    X, y = _data()
    model = _model()
    dense = model.layers[0]
    with pytest.raises(RuntimeError, match="its model is not built"):
        dense.W
    model.fit(X, y, epochs=1, batch_size=16)
    W0, b0 = model.weights[0]
    assert np.shares_memory(dense.W, model.arena_.params) and dense.W.shape == (5, 8)
    np.testing.assert_array_equal(dense.W, W0)
    np.testing.assert_array_equal(dense.b, b0)
    # writes take effect in the model
    before = model.predict_proba(X)
    dense.W[...] = 0.0
    dense.b = np.ones(8)
    np.testing.assert_array_equal(model.weights[0][0], 0.0)
    np.testing.assert_array_equal(model.weights[0][1], 1.0)
    assert not np.allclose(model.predict_proba(X), before)
    # get_weights copies, set_weights assigns both after checking both
    W, b = model.layers[2].get_weights()
    W[...] = 5.0
    assert not np.any(model.layers[2].W == 5.0)
    model.layers[2].set_weights([W, b])
    np.testing.assert_array_equal(model.layers[2].W, 5.0)
    kept = model.get_params_flat()
    with pytest.raises(ValueError, match=r"b must have shape \(3,\), got \(4,\)"):
        model.layers[2].set_weights([np.zeros((8, 3)), np.zeros(4)])
    with pytest.raises(TypeError, match="W has dtype float32 but the model is float64"):
        dense.W = np.zeros((5, 8), np.float32)
    with pytest.raises(ValueError, match="W contains NaN"):
        dense.W = np.full((5, 8), np.nan)
    with pytest.raises(ValueError, match=r"W must have shape \(5, 8\)"):
        dense.W = np.zeros((8, 5))
    np.testing.assert_array_equal(model.get_params_flat(), kept)


def test_a_built_layer_belongs_to_one_model():
    layers = [fn.Dense(4), fn.Dense(2, activation="softmax")]
    fn.Sequential(layers, input_dim=3)
    with pytest.raises(ValueError, match="already holds the weights of another model"):
        fn.Sequential(layers, input_dim=3)


def test_a_pickled_model_trains_on_as_the_original():
    """A pickle round trip keeps the weights, the optimizer state and the
    layers' views into the copy's own arena, so both train on alike."""
    import pickle
    X, y = _data()
    model = _model()
    model.partial_fit(X, y, l2=0.01, batch_size=16)
    copy = pickle.loads(pickle.dumps(model))
    assert np.shares_memory(copy.layers[0].W, copy.arena_.params)
    for m in (model, copy):
        m.partial_fit(X, y)
    np.testing.assert_array_equal(copy.get_params_flat(), model.get_params_flat())
    np.testing.assert_array_equal(copy.layers[0].W, model.layers[0].W)
    assert copy.t_ == model.t_ and copy.history_.epochs == model.history_.epochs
    unbuilt = pickle.loads(pickle.dumps(_model()))
    assert not unbuilt.built
