"""ONNX export: the graphs fastnn.onnx writes, run by onnxruntime, give
fastnn's own predictions within rounding, for Sequential models of every
activation, depth and dtype, for the scikit-learn estimators (alone, with
skl2onnx's options, and inside a Pipeline converted by skl2onnx), and the
files are valid ONNX that older runtimes load.

Tolerances (tests/tolerances.py, kind "gemm"): rtol 1e-5 in float32 and 1e-12
in float64, plus an atol of 8 eps sqrt(k) max|expected|: onnxruntime's GEMM
sums in another order than fastnn's kernels and its float32 tanh, sigmoid and
exp are other approximations, so results agree to rounding, not bitwise.
Labels are compared exactly on every row whose decision is not within that
rounding of a tie.
"""

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import fastnn as fn

from .tolerances import assert_close, tol

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
skl2onnx = pytest.importorskip("skl2onnx")
pytest.importorskip("sklearn")

import fastnn.onnx as fo  # noqa: E402
from fastnn.sklearn import MLPClassifier, MLPRegressor  # noqa: E402
from sklearn.exceptions import ConvergenceWarning, NotFittedError  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

DTYPES = [np.float32, np.float64]
HIDDEN = [a for a in fn.ACTIVATIONS if a != "softmax"]
BATCHES = (1, 7, 100)  # the batch dimension is dynamic


def _session(proto):
    return ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])


def _run(proto, X):
    """{output name: value} of proto on X."""
    session = _session(proto)
    return {o.name: v for o, v in zip(session.get_outputs(), session.run(None, {"X": X}))}


def _activation(name):
    # a slope other than the default, so an exported alpha that is not the layer's shows
    return fn.LeakyReLU(alpha=0.2) if name == "leaky_relu" else name


def _model(hidden, output, depth, units, dtype, dropout=0.1, seed=0):
    layers = []
    for i in range(depth):
        layers.append(fn.Dense(5 + i, activation=_activation(hidden)))
        if dropout and i % 2 == 0:
            layers.append(fn.Dropout(dropout))
    layers.append(fn.Dense(units, activation=_activation(output)))
    return fn.Sequential(layers, input_dim=4, dtype=np.dtype(dtype).name, seed=seed)


def _inputs(n, dtype, seed=1, n_features=4):
    return (2.0 * np.random.default_rng(seed).standard_normal((n, n_features))).astype(dtype)


def _decided(proba, dtype, threshold=None, matrix=False):
    """Where a label is not within rounding of a tie: the probability is
    farther from the threshold (per element for a label matrix, else for
    every column of the row), or the two largest probabilities of the row
    differ, by more than ten times the relative tolerance."""
    rtol, _ = tol(dtype, "gemm")
    margin = 10 * rtol
    if threshold is not None:
        far = np.abs(proba - threshold) > margin
        return far if matrix else np.all(far, axis=1)
    top = np.sort(proba, axis=1)
    return top[:, -1] - top[:, -2] > margin


def _assert_labels(got, expected, decided):
    assert got.shape == expected.shape
    if decided.size >= 20:  # on a larger batch the comparison covers nearly every label
        assert decided.mean() > 0.9
    np.testing.assert_array_equal(got[decided], expected[decided])


# ---------------------------------------------------------------- Sequential


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("output", fn.ACTIVATIONS)
def test_every_activation_gives_the_networks_outputs(dtype, output):
    for i, hidden in enumerate(HIDDEN):
        model = _model(hidden, output, depth=1 + i % 3, units=3, dtype=dtype, dropout=0.3)
        proto = fo.to_onnx(model)
        session = _session(proto)
        for n in BATCHES:
            X = _inputs(n, dtype, seed=n)
            names = [o.name for o in session.get_outputs()]
            got = session.run(None, {"X": X})[-1]
            assert names[-1] == ("probabilities" if output in ("softmax", "sigmoid")
                                 else "output")
            assert got.dtype == dtype and got.shape == (n, 3)
            assert_close(got, model.predict_proba(X), "gemm", k=8,
                         err_msg="%s hidden, %s output, %d rows" % (hidden, output, n))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_float64_graphs_avoid_operators_without_double_kernels(dtype):
    model = _model("softplus", "leaky_relu", depth=2, units=2, dtype=dtype)
    ops = {node.op_type for node in fo.to_onnx(model).graph.node}
    assert "Dropout" not in ops
    if dtype == np.float64:
        assert not ops & {"Softplus", "LeakyRelu"}
    else:
        assert {"Softplus", "LeakyRelu"} <= ops


@pytest.mark.parametrize("dtype, bias", [(np.float32, -20.0), (np.float64, -30.0)],
                         ids=["f32", "f64"])
def test_softplus_keeps_its_relative_accuracy_where_it_is_tiny(dtype, bias):
    # softplus(z) ~ exp(z) for very negative z: log(1 + u) would round 1 + u and lose it
    model = fn.Sequential([fn.Dense(3, activation="softplus")], input_dim=4,
                          dtype=np.dtype(dtype).name, seed=0)
    model.weights[0][1][...] = bias
    X = 0.1 * _inputs(7, dtype)
    expected = model.predict_proba(X)
    assert np.all(expected < 1e-8)
    # the atol scales with max|expected|, so this is a relative comparison
    assert_close(_run(fo.to_onnx(model), X)["output"], expected, "gemm", k=4)


def _labels(kind, X):
    """(labels, output activation, units) of a target kind."""
    up = X[:, 0] + X[:, 1] > 0
    return {
        "strings": (np.where(up, "yes", "no"), "softmax", 2),
        "ints": (np.digitize(X[:, 0], [-1.0, 1.0]) * 5 - 3, "softmax", 3),
        "bools": (up, "sigmoid", 1),
        "binary strings": (np.where(up, "b", "a"), "sigmoid", 1),
        "multi-label": ((X[:, :3] > 0).astype(int), "sigmoid", 3),
    }[kind]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("kind", ["strings", "ints", "bools", "binary strings", "multi-label"])
def test_a_classifier_gives_predicts_labels_and_probabilities(dtype, kind):
    X = _inputs(120, dtype)
    y, output, units = _labels(kind, X)
    model = _model("tanh", output, depth=2, units=units, dtype=dtype)
    model.fit(X, y, epochs=2)
    proto = fo.to_onnx(model)
    assert [o.name for o in proto.graph.output] == ["label", "probabilities"]
    for n in BATCHES:
        Xn = _inputs(n, dtype, seed=n)
        out = _run(proto, Xn)
        proba, expected = model.predict_proba(Xn), model.predict(Xn)
        assert_close(out["probabilities"], proba, "gemm", k=8)
        assert out["label"].shape == expected.shape
        if expected.dtype.kind == "U":
            assert out["label"].dtype == object  # onnxruntime's strings
        else:
            assert out["label"].dtype == expected.dtype
        threshold = 0.5 if output == "sigmoid" else None
        _assert_labels(out["label"], expected,
                       _decided(proba, dtype, threshold, matrix=expected.ndim == 2))


def test_a_probability_of_one_half_decides_as_predict_does():
    # Sequential.predict takes class 1 at p >= 0.5: weights that give p = 0.5 exactly
    model = fn.Sequential([fn.Dense(1, activation="sigmoid")], input_dim=2, dtype="float64")
    model.fit(np.eye(2), np.array(["a", "b"]), epochs=1, batch_size=2)
    model.weights[0][0][...] = 0.0
    model.weights[0][1][...] = 0.0
    X = np.zeros((3, 2))
    np.testing.assert_array_equal(_run(fo.to_onnx(model), X)["label"], model.predict(X))
    assert list(model.predict(X)) == ["b"] * 3
    # scikit-learn's label binarizer takes class 1 at p > 0.5 only
    est = _fit_quietly(MLPClassifier((2,), max_iter=1, random_state=0), np.eye(2),
                       np.array(["a", "b"]))
    for W, b in zip(est.coefs_, est.intercepts_):
        W[...], b[...] = 0.0, 0.0
    out = _run(fo.to_onnx(est, options={"zipmap": False}), X)
    np.testing.assert_array_equal(out["label"], est.predict(X))
    assert list(est.predict(X)) == ["a"] * 3


def test_a_model_never_fitted_exports_its_outputs():
    softmax = _model("relu", "softmax", depth=1, units=3, dtype=np.float32)
    assert softmax.classes_ is None
    assert [o.name for o in fo.to_onnx(softmax).graph.output] == ["probabilities"]
    regression = _model("relu", "identity", depth=1, units=2, dtype=np.float32)
    assert [o.name for o in fo.to_onnx(regression).graph.output] == ["output"]
    # multi-label labels need no classes_: 0/1 where p >= 0.5, as predict gives
    multilabel = _model("relu", "sigmoid", depth=1, units=3, dtype=np.float64)
    X = _inputs(50, np.float64)
    out = _run(fo.to_onnx(multilabel), X)
    _assert_labels(out["label"], multilabel.predict(X),
                   _decided(multilabel.predict_proba(X), np.float64, 0.5, matrix=True))


def test_a_model_not_built_is_refused():
    model = fn.Sequential([fn.Dense(2, activation="softmax")])
    with pytest.raises(ValueError, match="not built"):
        fo.to_onnx(model)
    with pytest.raises(TypeError, match="exports a fastnn.Sequential"):
        fo.to_onnx(object())
    with pytest.raises(ValueError, match="a Sequential takes none"):
        fo.to_onnx(_model("relu", "softmax", 1, 2, np.float32), options={"zipmap": False})


# ---------------------------------------------------------------- the file


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_one_input_X_with_a_dynamic_batch_dimension(dtype):
    proto = fo.to_onnx(_model("relu", "softmax", depth=1, units=3, dtype=dtype))
    onnx.checker.check_model(proto, full_check=True)
    assert len(proto.graph.input) == 1
    x = proto.graph.input[0]
    assert x.name == "X"
    assert x.type.tensor_type.elem_type == onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    batch, features = x.type.tensor_type.shape.dim
    assert batch.dim_param == "N" and features.dim_value == 4
    # the estimators' graphs, which skl2onnx writes, too
    X = _inputs(30, dtype)
    est = _fit_quietly(MLPRegressor(hidden_layer_sizes=(3,), max_iter=2, random_state=0), X,
                       X[:, 0])
    (x,) = fo.to_onnx(est).graph.input
    assert x.name == "X"
    assert x.type.tensor_type.elem_type == onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    batch, features = x.type.tensor_type.shape.dim
    assert batch.dim_param == "N" and features.dim_value == 4


def test_the_default_opset_and_ir_version_are_pinned():
    proto = fo.to_onnx(_model("tanh", "softmax", depth=1, units=3, dtype=np.float32))
    assert [(o.domain, o.version) for o in proto.opset_import] == [("", fo.DEFAULT_OPSET)]
    # IR 8 goes with opset 17: onnxruntime 1.13 and later load it, whatever onnx wrote it
    assert (fo.DEFAULT_OPSET, proto.ir_version) == (17, 8)
    assert proto.ir_version < onnx.IR_VERSION
    # an estimator's graph: skl2onnx writes the opset its operators need, at most the target
    X = _inputs(30, np.float32)
    est = _fit_quietly(MLPClassifier((3,), max_iter=2, random_state=0), X, X[:, 0] > 0)
    proto = fo.to_onnx(est)
    opsets = dict((o.domain, o.version) for o in proto.opset_import)
    assert opsets[""] <= fo.DEFAULT_OPSET and proto.ir_version <= 8
    assert proto.ir_version == onnx.helper.find_min_ir_version_for(list(proto.opset_import))


@pytest.mark.parametrize("opset", [fo.MIN_OPSET, 18, 21])
def test_an_explicit_opset_is_written_and_runs(opset):
    model = _model("softplus", "softmax", depth=2, units=3, dtype=np.float64)
    proto = fo.to_onnx(model, opset=opset)
    assert proto.opset_import[0].version == opset
    assert proto.ir_version == onnx.helper.find_min_ir_version_for(list(proto.opset_import))
    X = _inputs(20, np.float64)
    assert_close(_run(proto, X)["probabilities"], model.predict_proba(X), "gemm", k=8)


@pytest.mark.parametrize("opset, error, match", [
    (fo.MIN_OPSET - 1, ValueError, "too old"),
    (1000, ValueError, "newer than the installed onnx"),
    ("17", TypeError, "integer"),
    (True, TypeError, "integer"),
])
def test_a_bad_opset_is_refused(opset, error, match):
    with pytest.raises(error, match=match):
        fo.to_onnx(_model("relu", "identity", 1, 1, np.float32), opset=opset)


def test_a_file_written_at_path_loads_back(tmp_path):
    model = _model("sigmoid", "exp", depth=2, units=2, dtype=np.float32)
    path = tmp_path / "model.onnx"
    proto = fo.to_onnx(model, path)
    loaded = onnx.load(str(path))
    assert loaded.SerializeToString() == proto.SerializeToString()
    X = _inputs(7, np.float32)
    assert_close(_run(loaded, X)["output"], model.predict_proba(X), "gemm", k=8)
    fo.to_onnx(model, str(tmp_path / "again.onnx"))  # a str path too
    assert os.path.getsize(tmp_path / "again.onnx") == os.path.getsize(path)


# ---------------------------------------------------------------- estimators


def _fit_quietly(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


def _probabilities(out, zipmap):
    """The probability matrix of either output convention."""
    if zipmap is False:
        return out["probabilities"]
    if zipmap == "columns":
        return np.column_stack([v for k, v in out.items() if k != "output_label"])
    return np.array([[row[k] for k in sorted(row)] for row in out["output_probability"]])


# ZipMap takes float32 only: a float64 classifier exports without it or with columns
CLASSIFIER_CASES = [(dtype, zipmap, kind)
                    for dtype, zipmap in [(np.float32, True), (np.float32, False),
                                          (np.float64, False), (np.float32, "columns"),
                                          (np.float64, "columns")]
                    for kind in ["strings", "ints", "bools", "multi-label"]]


@pytest.mark.parametrize("dtype, zipmap, kind", CLASSIFIER_CASES)
def test_the_classifier_gives_its_predict_and_predict_proba(dtype, zipmap, kind):
    X = _inputs(150, dtype)
    y, _, _ = _labels(kind, X)
    est = _fit_quietly(MLPClassifier((6, 5), activation="tanh", max_iter=5, random_state=0,
                                     dtype=np.dtype(dtype).name), X, y)
    out = _run(fo.to_onnx(est, options={"zipmap": zipmap}), X)
    proba = est.predict_proba(X)
    assert_close(_probabilities(out, zipmap), proba, "gemm", k=8)
    label = out["label" if zipmap is False else "output_label"]
    # skl2onnx's convention: int64 labels for integer and bool classes, strings otherwise
    assert label.dtype == (object if kind == "strings" else np.int64)
    threshold = 0.5 if kind in ("bools", "multi-label") else None
    _assert_labels(label, est.predict(X),
                   _decided(proba, dtype, threshold, matrix=kind == "multi-label"))


def _signature(proto):
    """(name, element type, the map's key and value types or None) of each
    output. (Declared ranks are left out: for multi-label classifiers
    skl2onnx declares a rank-1 label but returns the (N, k) matrix, which
    fastnn declares; the values' shapes are compared instead.)"""
    out = []
    for o in proto.graph.output:
        t = o.type
        if t.HasField("sequence_type"):  # zipmap: a sequence of maps
            m = t.sequence_type.elem_type.map_type
            out.append((o.name, "seq(map)", (m.key_type, m.value_type.tensor_type.elem_type)))
        else:
            out.append((o.name, t.tensor_type.elem_type, None))
    return out


@pytest.mark.parametrize("zipmap", [True, False, "columns"])
@pytest.mark.parametrize("kind", ["strings", "ints", "bools", "multi-label"])
def test_the_outputs_are_those_skl2onnx_gives_scikit_learns_estimators(zipmap, kind):
    """The same names, element types and ranks, and the same values on the
    same weights, as skl2onnx's conversion of scikit-learn's MLPClassifier."""
    from sklearn.neural_network import MLPClassifier as SkMLPClassifier
    X = _inputs(120, np.float32)
    y, _, _ = _labels(kind, X)
    ours = _fit_quietly(MLPClassifier((6,), activation="tanh", max_iter=5, random_state=0), X, y)
    theirs = _fit_quietly(SkMLPClassifier((6,), activation="tanh", max_iter=5,
                                          random_state=0), X, y)
    theirs.coefs_ = [c.astype(np.float64) for c in ours.coefs_]  # the same weights
    theirs.intercepts_ = [b.astype(np.float64) for b in ours.intercepts_]
    options = {"zipmap": zipmap}
    proto = fo.to_onnx(ours, options=options)
    reference = skl2onnx.to_onnx(theirs, X[:1], options=options, target_opset=17)
    assert _signature(proto) == _signature(reference)
    got, expected = _run(proto, X), _run(reference, X)
    assert list(got) == list(expected)
    label = "label" if zipmap is False else "output_label"
    assert got[label].dtype == expected[label].dtype
    np.testing.assert_array_equal(got[label], expected[label])
    assert_close(_probabilities(got, zipmap), _probabilities(expected, zipmap), "gemm", k=8)


def test_the_regressor_outputs_are_those_skl2onnx_gives_scikit_learns():
    """One target: skl2onnx 1.20 reshapes a multi-output regressor's (N, k)
    predictions to (N k, 1), which fastnn does not copy (it gives (N, k))."""
    from sklearn.neural_network import MLPRegressor as SkMLPRegressor
    X = _inputs(80, np.float32)
    Y = X[:, 0] - X[:, 1]
    ours = _fit_quietly(MLPRegressor(hidden_layer_sizes=(5,), max_iter=5, random_state=0), X, Y)
    theirs = _fit_quietly(SkMLPRegressor(hidden_layer_sizes=(5,), max_iter=5, random_state=0),
                          X, Y)
    theirs.coefs_ = [c.astype(np.float64) for c in ours.coefs_]
    theirs.intercepts_ = [b.astype(np.float64) for b in ours.intercepts_]
    proto = fo.to_onnx(ours)
    reference = skl2onnx.to_onnx(theirs, X[:1], target_opset=17)
    assert _signature(proto) == _signature(reference)
    assert_close(_run(proto, X)["variable"], _run(reference, X)["variable"], "gemm", k=5)


def test_a_float64_classifier_with_zipmap_is_refused_with_the_way_out():
    X = _inputs(40, np.float64)
    est = _fit_quietly(MLPClassifier((4,), max_iter=2, random_state=0), X, X[:, 0] > 0)
    with pytest.raises(ValueError, match="zipmap': False"):
        fo.to_onnx(est)


def test_option_nocl_gives_class_indices():
    X = _inputs(60, np.float32)
    y = np.where(X[:, 0] > 0, "up", "down")
    est = _fit_quietly(MLPClassifier((4,), max_iter=3, random_state=0), X, y)
    out = _run(fo.to_onnx(est, options={"zipmap": False, "nocl": True}), X)
    decided = _decided(est.predict_proba(X), np.float32)
    _assert_labels(out["label"], np.searchsorted(est.classes_, est.predict(X)), decided)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("loss, activation, n_targets", [
    ("squared_error", "relu", 1), ("squared_error", "logistic", 2),
    ("poisson", "leaky_relu", 1), ("squared_error", "softplus", 3)])
def test_the_regressor_gives_its_predict(dtype, loss, activation, n_targets):
    X = _inputs(80, dtype)
    y = np.abs(X[:, :n_targets]) if n_targets > 1 else np.abs(X[:, 0])
    est = _fit_quietly(MLPRegressor(loss=loss, hidden_layer_sizes=(6, 3), activation=activation,
                                    max_iter=5, random_state=0, dtype=np.dtype(dtype).name),
                       X, y)
    out = _run(fo.to_onnx(est), X)
    assert list(out) == ["variable"]
    assert out["variable"].dtype == dtype
    assert_close(out["variable"], est.predict(X).reshape(80, n_targets), "gemm", k=8)


def test_an_estimator_not_fitted_is_refused():
    with pytest.raises(NotFittedError):
        fo.to_onnx(MLPRegressor())


def test_a_pipeline_converts_through_skl2onnx():
    X = _inputs(100, np.float32) * 10 + 3
    y = np.where(X[:, 0] > 3, "high", "low")
    pipe = make_pipeline(StandardScaler(), MLPClassifier((6,), max_iter=5, random_state=0))
    _fit_quietly(pipe, X, y)
    proto = skl2onnx.to_onnx(pipe, X[:1], target_opset={"": 17, "ai.onnx.ml": 3},
                             options={"zipmap": False})
    session = _session(proto)
    label, proba = session.run(None, {session.get_inputs()[0].name: X})
    expected = pipe.predict_proba(X)
    assert_close(proba, expected, "gemm", k=8)
    _assert_labels(label, pipe.predict(X), _decided(expected, np.float32))

    # a float64 network fed float32 by the scaler: the graph casts to the network's
    # dtype, as fastnn does, and gives float32 outputs, as skl2onnx does
    regressor = make_pipeline(StandardScaler(), MLPRegressor(
        hidden_layer_sizes=(5,), max_iter=5, random_state=0, dtype="float64"))
    _fit_quietly(regressor, X, X[:, 1])
    assert regressor[-1].coefs_[0].dtype == np.float64
    proto = skl2onnx.to_onnx(regressor, X[:1], target_opset=17)
    session = _session(proto)
    (pred,) = session.run(None, {session.get_inputs()[0].name: X})
    assert pred.dtype == np.float32
    assert_close(pred[:, 0], regressor.predict(X), "gemm", k=8, dtype=np.float32)


# ---------------------------------------------------------------- without onnx


def _python(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)


def test_fastnn_does_not_import_onnx():
    result = _python("import sys, fastnn, fastnn.sklearn\n"
                     "print(sorted(m for m in sys.modules\n"
                     "             if m.split('.')[0] in ('onnx', 'onnxruntime', 'skl2onnx')))")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_without_onnx_the_error_names_the_extra():
    result = _python(
        "import sys\n"
        "sys.modules['onnx'] = None  # as if onnx were not installed\n"
        "import fastnn as fn, fastnn.onnx\n"
        "model = fn.Sequential([fn.Dense(2, activation='softmax')], input_dim=3)\n"
        "try:\n"
        "    fastnn.onnx.to_onnx(model)\n"
        "except ImportError as exc:\n"
        "    print(exc)\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "fastnn.onnx needs onnx: pip install 'fastnn[onnx]'"
