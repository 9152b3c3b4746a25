"""Saving and loading models (model.save, fastnn.load).

A saved model comes back bitwise identical, and training resumed from a file
continues exactly where it stopped. Saves are atomic. Loading a damaged or
hostile file raises fastnn.ModelFileError (FileNotFoundError for a missing
path) with a message naming the problem: it never unpickles, never allocates
what the file merely declares, and never fails with another exception type.
"""

import io
import json
import os
import pickle
import re
import stat
import subprocess
import sys
import threading
import tracemalloc
import warnings
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastnn
import fastnn as fn
from fastnn import optim
from fastnn.io import MAX_PARAMS, MAX_UNITS


N_FEATURES, N_CLASSES = 6, 3


def _data(seed=0, m=96):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, N_FEATURES))
    y = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0.5)
    return X, y


def _model(dtype="float32", dropout=True, seed=3):
    layers = [fastnn.Dense(12, activation=fastnn.LeakyReLU(alpha=0.2))]
    if dropout:
        layers.append(fastnn.Dropout(0.25))
    layers.append(fastnn.Dense(8, activation="tanh"))
    if dropout:
        layers.append(fastnn.Dropout(0.1))
    layers.append(fastnn.Dense(N_CLASSES, activation="softmax"))
    return fastnn.Sequential(layers, input_dim=N_FEATURES, dtype=dtype, seed=seed)


def _temp_files(folder):
    return [name for name in os.listdir(folder) if name.startswith(".fastnn-")]


def _assert_same_model(a, b):
    assert b.get_config() == a.get_config()
    assert b.dtype == a.dtype
    assert b.seed == a.seed and b.seed_ == a.seed_
    assert b.input_dim == a.input_dim
    assert (b.loss_, b.epochs_trained_, b.t_, b.optimizer_first_epoch_) == (
        a.loss_, a.epochs_trained_, a.t_, a.optimizer_first_epoch_)
    for (Wa, ba), (Wb, bb) in zip(a.weights, b.weights, strict=True):
        assert Wb.dtype == a.dtype and bb.dtype == a.dtype
        np.testing.assert_array_equal(Wb, Wa)
        np.testing.assert_array_equal(bb, ba)
    np.testing.assert_array_equal(b.get_params_flat(), a.get_params_flat())


# ---------------------------------------------------------------- round trip


@pytest.mark.parametrize("dropout", [True, False], ids=["dropout", "no-dropout"])
def test_round_trip_is_bitwise(tmp_path, dtype, dropout):
    X, y = _data()
    model = _model(dtype, dropout)
    model.fit(X, y, optimizer=optim.Adam(lr=0.01), epochs=2, batch_size=16)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = fastnn.load(path)

    assert isinstance(loaded, fastnn.Sequential)
    _assert_same_model(model, loaded)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert loaded.predict_proba(X).dtype == np.dtype(dtype)

    act = loaded.dense_layers_[0].activation
    assert isinstance(act, fastnn.Activation)
    assert act == fastnn.LeakyReLU(alpha=0.2)
    assert act.name == "leaky_relu" and act.alpha == 0.2
    rates = [layer.rate for layer in loaded.layers if isinstance(layer, fastnn.Dropout)]
    assert rates == ([0.25, 0.1] if dropout else [])
    assert loaded.seed == 3

    assert loaded.optimizer_.get_config() == model.optimizer_.get_config()
    assert len(loaded.optimizer_state_) == 2
    for got, want in zip(loaded.optimizer_state_, model.optimizer_state_, strict=True):
        assert got.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(got, want)


def test_round_trip_of_an_untrained_model(tmp_path, dtype):
    model = _model(dtype)
    path = tmp_path / "fresh.npz"
    model.save(path)
    loaded = fastnn.load(path)
    _assert_same_model(model, loaded)
    assert loaded.optimizer_ is None and loaded.optimizer_state_ is None
    X, _ = _data()
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_random_seed_is_kept_so_training_stays_reproducible(tmp_path):
    X, y = _data()
    model = _model(seed=None)
    assert model.seed is None
    path = tmp_path / "m.npz"
    model.save(path)
    loaded = fastnn.load(path)
    assert loaded.seed is None and loaded.seed_ == model.seed_
    model.fit(X, y, epochs=2, batch_size=16)
    loaded.fit(X, y, epochs=2, batch_size=16)  # same shuffles and dropout masks
    np.testing.assert_array_equal(loaded.get_params_flat(), model.get_params_flat())


def test_save_without_optimizer(tmp_path):
    X, y = _data()
    model = _model()
    model.fit(X, y, epochs=1, batch_size=16)
    path = tmp_path / "m.npz"
    model.save(path, include_optimizer=False)
    with np.load(path) as data:
        assert not any(name.startswith("opt_state") for name in data.files)
    loaded = fastnn.load(path)
    assert loaded.optimizer_ is None and loaded.optimizer_state_ is None
    np.testing.assert_array_equal(loaded.get_params_flat(), model.get_params_flat())


def test_loading_a_zero_initialized_model_does_not_warn(tmp_path):
    with pytest.warns(UserWarning, match="zero initialization"):
        model = fastnn.Sequential([fastnn.Dense(3, activation="softmax", init="zeros")],
                                  input_dim=2, seed=0)
    model.save(tmp_path / "zeros.npz")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = fastnn.load(tmp_path / "zeros.npz")
    assert loaded.dense_layers_[0].init == "zeros"
    np.testing.assert_array_equal(loaded.get_params_flat(), 0)


def test_unbuilt_model_cannot_be_saved(tmp_path):
    model = fastnn.Sequential([fastnn.Dense(3, activation="softmax")])
    with pytest.raises(RuntimeError, match="not built"):
        model.save(tmp_path / "m.npz")
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------- resuming


OPTIMIZERS = {
    "adam": lambda: optim.Adam(lr=0.01),
    "nesterov": lambda: optim.Nesterov(lr=0.05, momentum=0.9),
    "classical_momentum": lambda: optim.ClassicalMomentum(lr=0.05, momentum=0.8),
    "adam-cosine": lambda: optim.Adam(lr=fastnn.schedules.CosineDecay(0.02, total_steps=30)),
}


@pytest.mark.parametrize("continue_with", ["previous", "same-config"])
@pytest.mark.parametrize("opt", list(OPTIMIZERS))
def test_resume_from_file_is_exact(tmp_path, dtype, opt, continue_with):
    X, y = _data(1)
    kwargs = dict(epochs=2, batch_size=16, shuffle=True)

    straight = _model(dtype)
    straight.fit(X, y, optimizer=OPTIMIZERS[opt](), **{**kwargs, "epochs": 4})

    first = _model(dtype)
    first.fit(X, y, optimizer=OPTIMIZERS[opt](), **kwargs)
    path = tmp_path / "half.npz"
    first.save(path)
    resumed = fastnn.load(path)
    history = resumed.fit(X, y, optimizer=None if continue_with == "previous"
                          else OPTIMIZERS[opt](), **kwargs)

    np.testing.assert_array_equal(resumed.get_params_flat(), straight.get_params_flat())
    for got, want in zip(resumed.optimizer_state_, straight.optimizer_state_, strict=True):
        np.testing.assert_array_equal(got, want)
    assert history.epochs == [2, 3]
    assert history["loss"] == straight.history_["loss"][2:]
    assert (resumed.t_, resumed.epochs_trained_) == (straight.t_, straight.epochs_trained_)


def test_resume_without_optimizer_state_differs(tmp_path):
    # the resume test above is sensitive: losing the Adam moments changes the run
    X, y = _data(1)
    straight = _model()
    straight.fit(X, y, optimizer=optim.Adam(lr=0.01), epochs=4, batch_size=16)
    first = _model()
    first.fit(X, y, optimizer=optim.Adam(lr=0.01), epochs=2, batch_size=16)
    path = tmp_path / "no-opt.npz"
    first.save(path, include_optimizer=False)
    resumed = fastnn.load(path)
    resumed.fit(X, y, optimizer=optim.Adam(lr=0.01), epochs=2, batch_size=16)
    assert not np.array_equal(resumed.get_params_flat(), straight.get_params_flat())


# ---------------------------------------------------------------- atomic save


def _trained(seed):
    X, y = _data()
    model = _model(seed=seed)
    model.fit(X, y, epochs=1, batch_size=32)
    return model


def test_save_replaces_an_existing_file(tmp_path):
    a, b = _trained(1), _trained(2)
    path = tmp_path / "m.npz"
    a.save(path)
    b.save(path)
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]
    np.testing.assert_array_equal(fastnn.load(path).get_params_flat(), b.get_params_flat())
    assert not np.array_equal(a.get_params_flat(), b.get_params_flat())


def test_save_takes_a_str_path_and_leaves_no_temporary_file(tmp_path):
    model = _trained(1)
    path = str(tmp_path / "model.npz")
    model.save(path)
    model.save(path)
    assert os.listdir(tmp_path) == ["model.npz"]
    assert _temp_files(tmp_path) == []


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()],
                         ids=["OSError", "KeyboardInterrupt"])
def test_failed_save_keeps_the_old_file(tmp_path, monkeypatch, error):
    old, new = _trained(1), _trained(2)
    path = tmp_path / "m.npz"
    old.save(path)
    before = path.read_bytes()

    def broken_savez(file, **arrays):
        file.write(b"half a file")
        raise error

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(type(error)):
        new.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.npz"]
    np.testing.assert_array_equal(fastnn.load(path).get_params_flat(), old.get_params_flat())


def test_failed_first_save_leaves_nothing(tmp_path, monkeypatch):
    model = _trained(1)

    def broken_savez(file, **arrays):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        model.save(tmp_path / "m.npz")
    assert os.listdir(tmp_path) == []


def test_save_into_a_missing_folder_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        _trained(1).save(tmp_path / "no" / "such" / "m.npz")
    assert os.listdir(tmp_path) == []


def test_saved_file_has_ordinary_permissions(tmp_path):
    # like any file the process writes (0666 less the umask), not 0600
    plain = tmp_path / "plain.bin"
    plain.write_bytes(b"x")
    path = tmp_path / "m.npz"
    _trained(1).save(path)
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)


# ---------------------------------------------------------------- hostile files


@pytest.fixture(scope="module")
def valid(tmp_path_factory):
    """A saved model (with Dropout and Adam state): its path, arrays and architecture."""
    X, y = _data()
    model = _model("float32")
    model.fit(X, y, optimizer=optim.Adam(lr=0.01), epochs=1, batch_size=32)
    path = tmp_path_factory.mktemp("valid") / "model.npz"
    model.save(path)
    with np.load(path) as data:
        arrays = {name: data[name] for name in data.files}
    arch = json.loads(arrays["architecture"].tobytes().decode("utf-8"))
    return path, arrays, arch


def _arch_bytes(arch):
    text = arch if isinstance(arch, str) else json.dumps(arch)
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)


def _write(path, arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


def _set_arch(key, value):
    def mutate(arrays, arch):
        arch[key] = value
    return mutate


def _set_layer(index, key, value):
    def mutate(arrays, arch):
        arch["layers"][index][key] = value
    return mutate


def _set_array(name, value):
    def mutate(arrays, arch):
        arrays[name] = value(arrays[name]) if callable(value) else value
    return mutate


def _drop(name):
    def mutate(arrays, arch):
        del arrays[name]
    return mutate


def _set_optimizer(key, value):
    def mutate(arrays, arch):
        arch["optimizer"][key] = value
    return mutate


def _put(index, value):
    def change(a):
        a = a.copy()
        a.flat[index] = value
        return a
    return change


def _case(id, mutate, pattern):
    return pytest.param(mutate, pattern, id=id)


HOSTILE = [
    # envelope
    _case("format-wrong", _set_array("format", np.array("keras-model")),
          r"not a fastnn model file \(format is 'keras-model'\)"),
    _case("format-bytes", _set_array("format", np.array(b"fastnn-model")),
          r"not a fastnn model file"),
    _case("format-missing", _drop("format"), r"missing format or architecture"),
    _case("version-2", _set_array("format_version", np.array(2, np.int64)),
          r"unsupported model format version 2"),
    _case("version-float", _set_array("format_version", np.array(1.0)),
          r"format_version must be an integer"),
    _case("version-array", _set_array("format_version", np.array([1, 1], np.int64)),
          r"format_version must be an integer scalar"),
    _case("architecture-missing", _drop("architecture"), r"missing format or architecture"),
    _case("architecture-int32", _set_array("architecture", lambda a: a.astype(np.int32)),
          r"architecture entry must be .*UTF-8 bytes"),
    _case("architecture-2d", _set_array("architecture", lambda a: a.reshape(1, -1)),
          r"architecture entry must be .*UTF-8 bytes"),
    _case("architecture-not-json", _set_array("architecture", _arch_bytes("{not json")),
          r"architecture is not valid JSON"),
    _case("architecture-not-utf8", _set_array("architecture",
                                              np.frombuffer(b"\xff\xfe{}", np.uint8)),
          r"architecture is not valid JSON"),
    _case("architecture-list", _set_array("architecture", _arch_bytes("[1, 2]")),
          r"architecture must be a JSON object"),
    _case("architecture-string", _set_array("architecture", _arch_bytes('"Dense"')),
          r"architecture must be a JSON object"),
    _case("architecture-null", _set_array("architecture", _arch_bytes("null")),
          r"architecture must be a JSON object"),
    _case("architecture-deeply-nested", _set_array(
        "architecture", _arch_bytes("[" * 100000 + "]" * 100000)), r"malformed"),
    # layers
    _case("layers-dict", _set_arch("layers", {"0": {"type": "Dense"}}),
          r"'layers' must be a non-empty list"),
    _case("layers-empty", _set_arch("layers", []), r"'layers' must be a non-empty list"),
    _case("layers-missing", _set_arch("layers", None), r"'layers' must be a non-empty list"),
    _case("layer-string", _set_arch("layers", ["Dense"]), r"each layer must be a JSON object"),
    _case("layer-unknown-type", _set_layer(0, "type", "Conv2D"), r"unknown layer type 'Conv2D'"),
    _case("layer-no-type", lambda arrays, arch: arch["layers"][0].pop("type"),
          r"must be a dict with a 'type'"),
    _case("units-string", _set_layer(0, "units", "12"), r"'units' must be an integer.*'12'"),
    _case("units-float", _set_layer(0, "units", 12.0), r"'units' must be an integer.*12\.0"),
    _case("units-bool", _set_layer(0, "units", True), r"'units' must be an integer.*True"),
    _case("units-negative", _set_layer(0, "units", -12), r"'units' = -12 is out of range"),
    _case("units-zero", _set_layer(0, "units", 0), r"'units' = 0 is out of range"),
    _case("units-null", _set_layer(0, "units", None), r"'units' must be an integer"),
    _case("units-too-large", _set_layer(0, "units", 10**12),
          r"'units' = 1000000000000 is out of range"),
    _case("units-disagree-with-W", _set_layer(0, "units", 13),
          r"W0 has shape \(6, 12\) but the architecture needs \(6, 13\)"),
    _case("activation-unknown", _set_layer(0, "activation", "swish"),
          r"unknown activation 'swish'"),
    _case("activation-number", _set_layer(0, "activation", 3),
          r"needs string 'activation' and 'init'"),
    _case("init-unknown", _set_layer(0, "init", "bogus"), r"unknown initializer 'bogus'"),
    _case("alpha-string", _set_layer(0, "alpha", "0.2"), r"alpha must be a number"),
    _case("alpha-negative", _set_layer(0, "alpha", -1.0), r"alpha .* must be >= 0"),
    _case("alpha-overflow", _set_layer(0, "alpha", 10**400), r"malformed"),
    _case("dropout-rate-string", _set_layer(1, "rate", "0.25"), r"Dropout rate must be a number"),
    _case("dropout-rate-one", _set_layer(1, "rate", 1.0), r"dropout rate must be < 1"),
    _case("dropout-first", lambda arrays, arch: arch["layers"].insert(
        0, {"type": "Dropout", "rate": 0.5}), r"first layer must be Dense"),
    # model fields
    _case("input_dim-string", _set_arch("input_dim", "6"), r"'input_dim' must be an integer"),
    _case("input_dim-zero", _set_arch("input_dim", 0), r"'input_dim' = 0 is out of range"),
    _case("input_dim-disagree-with-W", _set_arch("input_dim", 7),
          r"W0 has shape \(6, 12\) but the architecture needs \(7, 12\)"),
    _case("dtype-float16", _set_arch("dtype", "float16"), r"dtype must be float32 or float64"),
    _case("dtype-list", _set_arch("dtype", ["float32"]), r"dtype must be float32 or float64"),
    _case("dtype-disagree-with-W", _set_arch("dtype", "float64"),
          r"W0 has dtype float32 but the model is float64"),
    _case("seed-negative", _set_arch("seed", -1), r"'seed' = -1 is out of range"),
    _case("seed-string", _set_arch("seed", "3"), r"'seed' must be an integer"),
    _case("seed_-too-large", _set_arch("seed_", 2**64), r"'seed_' = \d+ is out of range"),
    _case("loss-unknown", _set_arch("loss", "hinge"), r"unknown loss 'hinge'"),
    _case("epochs_trained-negative", _set_arch("epochs_trained", -1),
          r"'epochs_trained' = -1 is out of range"),
    _case("optimizer_first_epoch-after-the-epochs", _set_arch("optimizer_first_epoch", 10**6),
          r"'optimizer_first_epoch' = 1000000 is after epochs_trained = \d+"),
    _case("t-string", _set_arch("t", "3"), r"'t' must be an integer"),
    _case("t-too-large", _set_arch("t", 2**70), r"'t' = \d+ is out of range"),
    _case("y_1d-string", _set_arch("y_1d", "yes"), r"'y_1d' must be true or false"),
    # optimizer
    _case("optimizer-string", _set_arch("optimizer", "adam"),
          r"optimizer must be a JSON object or null"),
    _case("optimizer-unknown", _set_optimizer("type", "Lion"), r"unknown optimizer type"),
    _case("optimizer-bad-beta1", _set_optimizer("beta1", 2.0), r"beta1 must be < 1"),
    _case("optimizer-unknown-field", _set_optimizer("foo", 1), r"malformed.*foo"),
    _case("optimizer-no-lr", lambda arrays, arch: arch["optimizer"].pop("lr"),
          r"malformed.*'lr'"),
    _case("optimizer-unknown-schedule", _set_optimizer("lr", {"type": "Magic", "lr": 0.1}),
          r"unknown schedule"),
    _case("optimizer-negative-lr", _set_optimizer("lr", {"type": "Constant", "lr": -1.0}),
          r"lr must be >= 0"),
    # arrays
    _case("W0-transposed", _set_array("W0", lambda a: np.ascontiguousarray(a.T)),
          r"W0 has shape \(12, 6\) but the architecture needs \(6, 12\)"),
    _case("b1-too-long", _set_array("b1", np.zeros(9, np.float32)),
          r"b1 has shape \(9,\) but the architecture needs \(8,\)"),
    _case("b2-scalar", _set_array("b2", np.float32(0)),
          r"b2 has shape \(\) but the architecture needs \(3,\)"),
    _case("W0-float64", _set_array("W0", lambda a: a.astype(np.float64)),
          r"W0 has dtype float64 but the model is float32"),
    _case("W0-big-endian", _set_array("W0", lambda a: a.astype(">f4")),
          r"W0 has dtype >f4 but the model is float32"),
    _case("W1-int", _set_array("W1", lambda a: a.astype(np.int32)),
          r"W1 has dtype int32 but the model is float32"),
    _case("W0-nan", _set_array("W0", _put(5, np.nan)), r"W0 contains NaN or infinity"),
    _case("b2-inf", _set_array("b2", _put(1, -np.inf)), r"b2 contains NaN or infinity"),
    _case("opt_state1-nan", _set_array("opt_state1", _put(0, np.nan)),
          r"opt_state1 contains NaN or infinity"),
    _case("opt_state0-short", _set_array("opt_state0", lambda a: a[:-1].copy()),
          r"opt_state0 has shape \(\d+,\) but the architecture needs \(\d+,\)"),
    _case("extra-W3", _set_array("W3", np.zeros((3, 3), np.float32)),
          r"unexpected arrays: W3"),
    _case("extra-name", _set_array("evil", np.zeros(1, np.float32)),
          r"unexpected arrays: evil"),
    _case("missing-W1", _drop("W1"), r"missing arrays: W1"),
    _case("missing-b0", _drop("b0"), r"missing arrays: b0"),
    _case("missing-opt_state1", _drop("opt_state1"), r"missing arrays: opt_state1"),
    _case("states-without-optimizer", _set_arch("optimizer", None),
          r"unexpected arrays: opt_state0, opt_state1"),
    # class labels
    _case("classes-short", _set_array("classes", lambda a: a[:2].copy()),
          r"classes has shape \(2,\) but the model has 3 classes"),
    _case("classes-object", _set_array("classes", np.array([0, "a", None], dtype=object)),
          r"classes must hold integers, booleans, floats or strings of at most 1024 "
          r"characters, got dtype object"),
    _case("classes-nan", _set_array("classes", np.array([0.0, 1.0, np.nan])),
          r"classes contains NaN or infinity"),
    _case("classes-unsorted", _set_array("classes", lambda a: a[::-1].copy()),
          r"classes must be sorted and distinct"),
    _case("classes-repeated", _set_array("classes", np.array(["a", "a", "b"])),
          r"classes must be sorted and distinct"),
    _case("classes-of-a-regression", _set_arch("loss", "mse"),
          r"the file has class labels, but its loss 'mse' has no classes"),
    # feature names
    _case("feature-names-short", _set_array("feature_names", np.array(["a", "b"])),
          r"feature_names has shape \(2,\) but the model has \d+ inputs"),
    _case("feature-names-numbers", _set_array("feature_names", np.arange(N_FEATURES)),
          r"feature_names must hold strings, got dtype int64"),
]


@pytest.mark.parametrize("mutate, pattern", HOSTILE)
def test_hostile_file_raises_model_file_error(tmp_path, valid, mutate, pattern):
    _, arrays, arch = valid
    arrays, arch = dict(arrays), json.loads(json.dumps(arch))
    mutate(arrays, arch)
    if "architecture" in arrays and arrays["architecture"] is valid[1]["architecture"]:
        arrays["architecture"] = _arch_bytes(arch)  # the JSON, after its mutation
    path = _write(tmp_path / "hostile.npz", arrays)
    with pytest.raises(fastnn.ModelFileError, match=pattern):
        fastnn.load(path)


def test_the_unmutated_file_loads(tmp_path, valid):
    # the hostile cases above differ from a loadable file only by their mutation
    _, arrays, arch = valid
    arrays = dict(arrays, architecture=_arch_bytes(arch))
    model = fastnn.load(_write(tmp_path / "same.npz", arrays))
    assert model.optimizer_.get_config()["type"] == "Adam"


def test_model_file_error_is_a_value_error():
    assert issubclass(fastnn.ModelFileError, ValueError)


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        fastnn.load(tmp_path / "nothing.npz")


@pytest.mark.parametrize("fraction", [0.0, 0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99])
def test_truncated_file(tmp_path, valid, fraction):
    raw = valid[0].read_bytes()
    cut = tmp_path / "cut.npz"
    cut.write_bytes(raw[:int(len(raw) * fraction)])
    with pytest.raises(fastnn.ModelFileError, match="cut.npz"):
        fastnn.load(cut)


def test_truncated_file_at_every_zip_boundary(tmp_path, valid):
    raw = valid[0].read_bytes()
    with zipfile.ZipFile(valid[0]) as z:
        offsets = sorted({info.header_offset for info in z.infolist()} |
                         {raw.rfind(b"PK\x01\x02"), raw.rfind(b"PK\x05\x06")})
    cut = tmp_path / "cut.npz"
    for n in sorted({o + d for o in offsets for d in (-1, 0, 1, 30)} - {len(raw)}):
        if 0 <= n < len(raw):
            cut.write_bytes(raw[:n])
            with pytest.raises(fastnn.ModelFileError):
                fastnn.load(cut)


@pytest.mark.parametrize("kind", ["random", "zip-magic-then-random", "npy-magic-then-random",
                                  "text", "empty"])
def test_garbage_file(tmp_path, kind):
    rng = np.random.default_rng(7)
    noise = rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()
    content = {"random": noise, "zip-magic-then-random": b"PK\x03\x04" + noise,
               "npy-magic-then-random": b"\x93NUMPY\x01\x00" + noise,
               "text": b"W0 = [[1, 2], [3, 4]]\n", "empty": b""}[kind]
    path = tmp_path / "garbage.npz"
    path.write_bytes(content)
    with pytest.raises(fastnn.ModelFileError, match="garbage.npz"):
        fastnn.load(path)


def test_directory_instead_of_file(tmp_path):
    with pytest.raises(fastnn.ModelFileError, match="not a regular file"):
        fastnn.load(tmp_path)


def test_single_npy_array_instead_of_npz(tmp_path):
    path = tmp_path / "weights.npy"
    np.save(path, np.zeros((6, 12), np.float32))
    with pytest.raises(fastnn.ModelFileError, match=r"single \.npy array"):
        fastnn.load(path)


def test_zip_with_entries_that_are_not_npy(tmp_path, valid):
    path = tmp_path / "raw.npz"
    with zipfile.ZipFile(valid[0]) as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename))
        dst.writestr("format", b"fastnn-model")
    with pytest.raises(fastnn.ModelFileError, match=r"not distinct \.npy arrays"):
        fastnn.load(path)


def _corrupt_member(tmp_path, valid, name, offset):
    raw = bytearray(valid[0].read_bytes())
    with zipfile.ZipFile(valid[0]) as z:
        info = z.getinfo(name)
        start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    raw[start + offset] ^= 0x5A
    path = tmp_path / "corrupt.npz"
    path.write_bytes(bytes(raw))
    return path


def test_corrupted_array_data_fails_the_checksum(tmp_path, valid):
    path = _corrupt_member(tmp_path, valid, "W0.npy", 128 + 10)  # inside the data
    with pytest.raises(fastnn.ModelFileError, match=r"entry W0 cannot be read.*CRC"):
        fastnn.load(path)


def test_corrupted_compression_method(tmp_path, valid):
    raw = bytearray(valid[0].read_bytes())
    central = raw.find(b"PK\x01\x02")
    raw[central + 10] = 99  # an unknown compression method in the central directory
    path = tmp_path / "method.npz"
    path.write_bytes(bytes(raw))
    with pytest.raises(fastnn.ModelFileError, match="compression method"):
        fastnn.load(path)


def test_encrypted_flag(tmp_path, valid):
    raw = bytearray(valid[0].read_bytes())
    central = raw.find(b"PK\x01\x02")
    raw[central + 8] |= 1
    path = tmp_path / "encrypted.npz"
    path.write_bytes(bytes(raw))
    with pytest.raises(fastnn.ModelFileError, match="encrypted"):
        fastnn.load(path)


# ---- nothing is unpickled

UNPICKLED = []


def _record_unpickling(tag):
    UNPICKLED.append(tag)
    return tag


class _Payload:
    """Unpickling this object calls _record_unpickling: a stand-in for code execution."""

    def __init__(self, tag):
        self.tag = tag

    def __reduce__(self):
        return (_record_unpickling, (self.tag,))


@pytest.mark.parametrize("entry", ["W0", "opt_state0", "architecture", "format",
                                   "format_version", "extra"])
def test_pickled_object_array_is_never_unpickled(tmp_path, valid, entry):
    _, arrays, _ = valid
    arrays = dict(arrays)
    payload = np.empty(2, dtype=object)
    payload[0], payload[1] = _Payload(entry), _Payload(entry + "-2")
    arrays[entry] = payload
    path = _write(tmp_path / "pickled.npz", arrays)
    del UNPICKLED[:]
    with pytest.raises(fastnn.ModelFileError):
        fastnn.load(path)
    assert UNPICKLED == []
    # the file really does carry a live pickle
    with np.load(path, allow_pickle=True) as data:
        data[entry]
    assert UNPICKLED == [entry, entry + "-2"]


def test_pickle_file_is_never_unpickled(tmp_path):
    path = tmp_path / "model.npz"
    path.write_bytes(pickle.dumps(_Payload("file")))
    del UNPICKLED[:]
    with pytest.raises(fastnn.ModelFileError, match="pickled"):
        fastnn.load(path)
    assert UNPICKLED == []


# ---- sizes the file only declares


def _npy_header(shape, descr="<f4"):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def _load_with_peak(path):
    """The error loading `path` raises, and the most memory Python held
    meanwhile: a file is refused from what it declares, before anything of
    the declared size is built or read."""
    tracemalloc.start()
    try:
        with pytest.raises(fastnn.ModelFileError) as info:
            fastnn.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return info.value, peak


def test_absurd_units_fail_fast(tmp_path, valid):
    _, arrays, arch = valid
    arch = json.loads(json.dumps(arch))
    arch["layers"][0]["units"] = 10**12
    path = _write(tmp_path / "huge.npz", dict(arrays, architecture=_arch_bytes(arch)))
    error, peak = _load_with_peak(path)
    assert "'units' = 1000000000000 is out of range" in str(error)
    assert peak < 1 << 20


def test_too_many_parameters_fail_fast(tmp_path, valid):
    _, arrays, arch = valid
    arch = json.loads(json.dumps(arch))
    arch["input_dim"] = MAX_UNITS
    arch["layers"][0]["units"] = MAX_UNITS
    path = _write(tmp_path / "huge.npz", dict(arrays, architecture=_arch_bytes(arch)))
    error, peak = _load_with_peak(path)
    assert "more than fastnn loads (%d)" % MAX_PARAMS in str(error)
    assert peak < 1 << 20


def test_large_architecture_with_small_arrays_allocates_nothing(tmp_path, valid):
    # 3000 x 3000 weights are within the limits, but the file does not hold
    # them: that is found from the array headers, before any model is built
    _, arrays, arch = valid
    arch = json.loads(json.dumps(arch))
    arch["input_dim"] = 3000
    arch["layers"][0]["units"] = 3000
    path = _write(tmp_path / "big.npz", dict(arrays, architecture=_arch_bytes(arch)))
    error, peak = _load_with_peak(path)
    assert "W0 has shape (6, 12) but the architecture needs (3000, 3000)" in str(error)
    assert peak < 1 << 20  # building the model would take > 70 MB


@pytest.mark.parametrize("entry, shape, descr, pattern", [
    ("W0", (10**6, 10**6), "<f4", r"W0 has shape \(1000000, 1000000\)"),
    ("architecture", (10**12,), "|u1", r"architecture entry must be at most"),
    ("format", (), "<U100000000", r"not a fastnn model file"),
    ("format_version", (10**10,), "<i8", r"format_version must be an integer scalar"),
])
def test_array_header_declaring_a_huge_array(tmp_path, valid, entry, shape, descr, pattern):
    """An .npy header is read and checked before its data: a header that
    declares terabytes allocates nothing."""
    path = tmp_path / "declared.npz"
    with zipfile.ZipFile(valid[0]) as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            content = src.read(info.filename)
            if info.filename == entry + ".npy":
                content = _npy_header(shape, descr) + b"\0" * 64
            dst.writestr(info.filename, content)
    error, peak = _load_with_peak(path)
    assert re.search(pattern, str(error)), str(error)
    assert peak < 1 << 20


# ---- mutation fuzzing


@pytest.fixture(scope="module")
def valid_bytes(valid):
    raw = valid[0].read_bytes()
    with zipfile.ZipFile(valid[0]) as z:
        marks = {info.header_offset for info in z.infolist()}
        # the .npy headers, where shapes and dtypes are declared
        marks |= {info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
                  for info in z.infolist()}
    marks |= {raw.rfind(b"PK\x01\x02"), raw.rfind(b"PK\x05\x06"), raw.find(b"PK\x01\x02")}
    return raw, sorted(marks)


_X_PROBE = np.random.default_rng(5).standard_normal((4, N_FEATURES))


@st.composite
def _mutations(draw, raw, marks):
    n = len(raw)
    position = st.one_of(
        st.integers(0, n - 1),
        st.sampled_from(marks).flatmap(lambda m: st.integers(m, min(m + 120, n - 1))))
    ops = draw(st.lists(st.one_of(
        st.tuples(st.just("flip"), position, st.integers(1, 255)),
        st.tuples(st.just("overwrite"), position, st.binary(min_size=1, max_size=16)),
        st.tuples(st.just("truncate"), st.integers(0, n - 1), st.just(b"")),
        st.tuples(st.just("delete"), position, st.integers(1, 64)),
        st.tuples(st.just("insert"), position, st.binary(min_size=1, max_size=16)),
    ), min_size=1, max_size=4))
    data = bytearray(raw)
    for op, pos, arg in ops:
        pos = min(pos, max(len(data) - 1, 0))
        if op == "flip" and data:
            data[pos] ^= arg
        elif op == "overwrite":
            data[pos:pos + len(arg)] = arg
        elif op == "truncate":
            del data[pos:]
        elif op == "delete":
            del data[pos:pos + arg]
        elif op == "insert":
            data[pos:pos] = arg
    return bytes(data)


def test_mutated_files_load_or_raise_model_file_error(valid_bytes, tmp_path_factory):
    raw, marks = valid_bytes
    folder = tmp_path_factory.mktemp("fuzz")
    outcomes = {"loaded": 0, "refused": 0}

    @settings(max_examples=50, deadline=None, database=None)
    @given(content=_mutations(raw, marks))
    def check(content):
        path = folder / "mutated.npz"
        path.write_bytes(content)
        try:
            model = fastnn.load(path)
        except fastnn.ModelFileError as exc:
            assert str(exc)
            outcomes["refused"] += 1
            return
        # a mutation that leaves a valid model (a timestamp, a comment): it works
        out = model.predict_proba(_X_PROBE)
        assert out.shape == (4, N_CLASSES) and np.all(np.isfinite(out))
        outcomes["loaded"] += 1

    check()
    assert outcomes["refused"] > 0
    assert _temp_files(folder) == []


# --------------------------------------------------------------------------
# Hostile files beyond the mutations above: pickles that would run code (here:
# create a marker file) wherever fastnn.load could meet them, a compression
# bomb behind an entry that declares a small array, duplicated entries, and
# device files. Each is refused with ModelFileError, the pickle never runs, and
# nothing the file merely declares is allocated.
# --------------------------------------------------------------------------

# seconds only a hang reaches: the loads and processes here take well under one
HANG_SECONDS = 120


class _CreatesFile:
    """Unpickling this creates the file at `path`: open(path, "w"). The pickle
    refers only to the built-in open, so it is live in any process."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((64, 5)), rng.integers(0, 3, 64)
    model = fn.Sequential([fn.Dense(7, activation="relu"), fn.Dense(3, activation="softmax")],
                          input_dim=5, seed=0)
    model.fit(X, y, epochs=1, batch_size=16)
    path = tmp_path_factory.mktemp("saved") / "model.npz"
    model.save(path)
    with np.load(path) as data:
        arrays = {name: data[name] for name in data.files}
    return model, path, arrays


def _payload_array(marker):
    arr = np.empty(1, dtype=object)
    arr[0] = _CreatesFile(marker)
    return arr


def _npz(path, arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


def _entry_bytes(arr):
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    return buf.getvalue()


# each maker writes a hostile file; it returns the path and a function that
# runs the payload the way an unguarded reader would (to show it is live)

def _raw_pickle(marker, tmp_path, arrays, protocol=2):
    path = tmp_path / "model.npz"
    path.write_bytes(pickle.dumps(_CreatesFile(marker), protocol=protocol))
    return path, lambda: pickle.loads(path.read_bytes())


def _text_pickle(marker, tmp_path, arrays):
    return _raw_pickle(marker, tmp_path, arrays, protocol=0)


def _npy_file(marker, tmp_path, arrays):
    path = tmp_path / "model.npy"
    path.write_bytes(_entry_bytes(_payload_array(marker)))
    return path, lambda: np.load(path, allow_pickle=True)


def _entry_replaced(entry):
    def make(marker, tmp_path, arrays):
        path = _npz(tmp_path / "model.npz", dict(arrays, **{entry: _payload_array(marker)}))

        def run():
            with np.load(path, allow_pickle=True) as data:
                data[entry]
        return path, run
    return make


def _pickle_bytes_as_entry(marker, tmp_path, arrays):
    """A zip entry named like an array that holds a bare pickle, not an .npy."""
    path = tmp_path / "model.npz"
    _npz(path, arrays)
    with zipfile.ZipFile(path, "a") as z:
        z.writestr("W9.npy", pickle.dumps(_CreatesFile(marker)))

    def run():
        with zipfile.ZipFile(path) as z:
            pickle.loads(z.read("W9.npy"))
    return path, run


PAYLOADS = {
    "whole-file-is-a-pickle": _raw_pickle,
    "whole-file-is-a-protocol-0-pickle": _text_pickle,
    "npy-file-with-object-array": _npy_file,
    "W0-object-array": _entry_replaced("W0"),
    "b1-object-array": _entry_replaced("b1"),
    "opt_state0-object-array": _entry_replaced("opt_state0"),
    "architecture-object-array": _entry_replaced("architecture"),
    "format-object-array": _entry_replaced("format"),
    "format_version-object-array": _entry_replaced("format_version"),
    "extra-entry-object-array": _entry_replaced("payload"),
    "entry-holding-a-bare-pickle": _pickle_bytes_as_entry,
}


@pytest.mark.parametrize("kind", list(PAYLOADS))
def test_pickled_payload_in_a_model_file_never_runs(kind, saved, tmp_path):
    _, _, arrays = saved
    marker = tmp_path / "UNPICKLED"
    path, run_payload = PAYLOADS[kind](marker, tmp_path, arrays)
    with pytest.raises(fn.ModelFileError):
        fn.load(path)
    assert not marker.exists(), "loading the file ran the pickle"
    run_payload()  # the payload is live: an unguarded reader runs it
    assert marker.exists()


def test_pickled_payload_never_runs_in_a_fresh_process(saved, tmp_path):
    """The same in a process that has never imported this test module."""
    _, _, arrays = saved
    marker = tmp_path / "UNPICKLED"
    path = _npz(tmp_path / "model.npz", dict(arrays, W0=_payload_array(marker)))
    root = os.path.dirname(os.path.dirname(os.path.abspath(fn.__file__)))
    code = ("import sys, fastnn\n"
            "try:\n    fastnn.load(sys.argv[1])\n"
            "except fastnn.ModelFileError as e:\n    print('refused:', e)\n")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                         text=True, timeout=HANG_SECONDS,
                         env=dict(os.environ, PYTHONPATH=root + os.pathsep +
                                  os.environ.get("PYTHONPATH", "")))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("refused:")
    assert not marker.exists()


def test_compression_bomb_behind_a_small_declared_array_costs_nothing(saved, tmp_path):
    """W0.npy declares its real (5, 7) shape but is followed by 64 MB of
    zeros that compress to almost nothing: loading reads what it needs."""
    model, src, _ = saved
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(src) as z, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for info in z.infolist():
            content = z.read(info.filename)
            if info.filename == "W0.npy":
                content += bytes(64 << 20)
            out.writestr(info.filename, content)
    assert path.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        try:
            loaded = fn.load(path)
        except fn.ModelFileError:
            loaded = None
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, "loading allocated %d MB" % (peak >> 20)
    if loaded is not None:  # the declared array is intact: the trailing bytes are ignored
        np.testing.assert_array_equal(loaded.get_params_flat(), model.get_params_flat())


def test_duplicated_entry_is_refused(saved, tmp_path):
    _, src, arrays = saved
    path = tmp_path / "dup.npz"
    with zipfile.ZipFile(src) as z, zipfile.ZipFile(path, "w") as out:
        for info in z.infolist():
            out.writestr(info.filename, z.read(info.filename))
        with pytest.warns(UserWarning, match="Duplicate name"):
            out.writestr("W0.npy", _entry_bytes(np.zeros_like(arrays["W0"])))
    with pytest.raises(fn.ModelFileError, match=r"not distinct"):
        fn.load(path)


def _load_error_within_hang_bound(path):
    """The exception fn.load(path) raised, in a thread given HANG_SECONDS: a
    reader that blocks or reads on never returns, which only a hang bound can
    tell (a refusal takes milliseconds)."""
    raised = []

    def load():
        try:
            fn.load(path)
        except BaseException as exc:  # noqa: B036  (reported below)
            raised.append(exc)
    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    thread.join(HANG_SECONDS)
    assert not thread.is_alive(), "loading %s has not returned" % path
    assert len(raised) == 1, raised
    return raised[0]


def test_a_named_pipe_is_refused_without_opening_it(tmp_path):
    # opening a pipe for reading blocks until a writer comes
    pipe = tmp_path / "m.npz"
    os.mkfifo(pipe)
    error = _load_error_within_hang_bound(pipe)
    assert isinstance(error, fn.ModelFileError) and "not a regular file" in str(error)


def test_paths_the_system_cannot_stat_are_model_file_errors(saved, tmp_path):
    path = str(saved[1])
    for bad in (os.path.join(path, "x"), path + "\0"):  # through a file; a NUL byte
        with pytest.raises(fn.ModelFileError, match="not a readable .npz model file"):
            fn.load(bad)


def test_whole_number_float_labels_are_saved_and_loaded(tmp_path):
    # fit takes labels 1.0, 2.0, 3.0 (a float column), and so does the file
    X = np.random.default_rng(0).standard_normal((30, 3))
    model = fn.Sequential([fn.Dense(3, activation="softmax")], input_dim=3, seed=0,
                          dtype="float64")
    model.fit(X, np.tile([1.0, 2.0, 3.0], 10), epochs=1, batch_size=10)
    model.save(tmp_path / "m.npz")
    loaded = fn.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.classes_, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_a_leaky_slope_beyond_the_dtype_is_refused_in_a_model_and_in_a_file(tmp_path):
    # 1e308 is a float64 but infinite as a float32: every prediction would be NaN
    with pytest.raises(ValueError, match=r"LeakyReLU slope alpha of Dense layer 0=1e\+308 is "
                                         r"too large for float32"):
        fn.Sequential([fn.Dense(3, activation=fn.LeakyReLU(1e308))], input_dim=2)
    fn.Sequential([fn.Dense(3, activation=fn.LeakyReLU(1e308))], input_dim=2, dtype="float64")
    model = fn.Sequential([fn.Dense(3, activation=fn.LeakyReLU(0.5)),
                           fn.Dense(2, activation="softmax")], input_dim=2)
    model.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz") as data:
        arrays = {k: data[k] for k in data.files}
    arch = json.loads(arrays["architecture"].tobytes().decode("utf-8"))
    arch["layers"][0]["alpha"] = 1e308
    arrays["architecture"] = np.frombuffer(json.dumps(arch).encode("utf-8"), np.uint8)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(fn.ModelFileError, match="LeakyReLU slope .* too large for float32"):
        fn.load(tmp_path / "bad.npz")


def test_a_seed_beyond_64_bits_is_refused_when_the_model_is_made():
    with pytest.raises(ValueError, match=r"seed must be <= 18446744073709551615"):
        fn.Sequential([fn.Dense(2)], input_dim=2, seed=2**64)


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null", "/dev/urandom"])
def test_device_file_is_refused_without_reading_it_all(device):
    if not os.path.exists(device):
        pytest.skip("no %s" % device)
    # /dev/zero and /dev/urandom never end
    assert isinstance(_load_error_within_hang_bound(device), fn.ModelFileError)


def test_architecture_json_with_huge_numbers_is_refused(saved, tmp_path):
    _, _, arrays = saved
    arch = json.loads(arrays["architecture"].tobytes().decode("utf-8"))
    text = json.dumps(arch).replace('"input_dim": 5', '"input_dim": 1e999')
    path = _npz(tmp_path / "m.npz", dict(arrays, architecture=np.frombuffer(
        text.encode("utf-8"), np.uint8)))
    with pytest.raises(fn.ModelFileError, match="input_dim"):
        fn.load(path)
