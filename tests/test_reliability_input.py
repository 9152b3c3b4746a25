"""Bad input at every public entry point above the kernels: Sequential.fit,
predict, predict_proba and evaluate, Standardizer, fastnn.load (fastnn.ops
has its own matrix in test_errors.py).

Every bad input raises a TypeError (wrong type or dtype) or a ValueError
(wrong shape or value) whose message names the problem; a failing fit leaves
an already fitted model exactly as it was. Unusual but valid input (Fortran
order, strided views, read-only and memory-mapped arrays, integers, lists)
works and gives the same bits as plain C-ordered float input.
"""

import warnings
from types import SimpleNamespace

import numpy as np
import pytest

import fastnn as fn

N, D, K = 48, 5, 3
NAN, INF = float("nan"), float("inf")
# memory layouts that must work like C-ordered float input (see _layout)
LAYOUTS = ["fortran", "strided", "reversed", "read-only", "memmap", "list"]


def _classifier(dtype="float32", seed=0):
    return fn.Sequential([fn.Dense(6, activation="tanh"), fn.Dropout(0.1),
                          fn.Dense(K, activation="softmax")], input_dim=D, dtype=dtype,
                         seed=seed)


def _regressor(dtype="float32", seed=0):
    return fn.Sequential([fn.Dense(6, activation="relu"), fn.Dense(1, activation="identity")],
                         input_dim=D, dtype=dtype, seed=seed)


def _binary(dtype="float32", seed=0):
    return fn.Sequential([fn.Dense(6, activation="relu"), fn.Dense(1, activation="sigmoid")],
                         input_dim=D, dtype=dtype, seed=seed)


def _data(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, D))
    y = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0.5)
    t = X @ rng.standard_normal(D)
    return X, y, t


@pytest.fixture
def c(tmp_path):
    """Data and fitted objects shared by the cases (rebuilt per test)."""
    X, y, t = _data()
    clf = _classifier()
    clf.fit(X, y, epochs=2, batch_size=8)
    reg = _regressor()
    reg.fit(X, t, loss="mse", epochs=2, batch_size=8)
    return SimpleNamespace(X=X, y=y, t=t, clf=clf, reg=reg, scaler=fn.Standardizer().fit(X),
                           tmp=tmp_path)


def _put(a, index, value):
    a = np.array(a, dtype=float)
    a[index] = value
    return a


def _case(id, call, exc, pattern):
    return pytest.param(call, exc, pattern, id=id)


VALID_ACTIVATIONS = r"identity, sigmoid, tanh, relu, leaky_relu, softplus, softmax, exp"
VALID_INITS = r"zeros, normal, xavier, he, glorot"
VALID_LOSSES = r"mse, binary_cross_entropy, cross_entropy"
VALID_OPTIMIZERS = r"sgd, momentum, .*nesterov, rmsprop, adam, adamw"
DTYPE_HINT = r"float32 or float64"

# (id naming the entry point and the fault, call(c), exception, message pattern)
FIT_CASES = [
    # number of dimensions
    _case("fit-X-1d", lambda c: c.clf.fit(c.X[:, 0], c.y), ValueError,
          r"X must be 2-dimensional, got shape \(48,\).*reshape\(1, -1\)"),
    _case("fit-X-3d", lambda c: c.clf.fit(c.X[None], c.y), ValueError,
          r"X must be 2-dimensional, got shape \(1, 48, 5\)"),
    _case("fit-X-0d", lambda c: c.clf.fit(np.float64(1.0), c.y), ValueError,
          r"X must be 2-dimensional, got shape \(\)"),
    _case("fit-y-3d", lambda c: c.clf.fit(c.X, np.zeros((N, K, 1))), ValueError,
          r"\by\b.*cross_entropy.*\(48, 3, 1\)"),
    _case("fit-y-2d-not-one-hot", lambda c: c.clf.fit(c.X, np.ones((N, K))), ValueError,
          r"2-D y for cross_entropy must be one-hot with 3 columns"),
    _case("fit-mse-y-wrong-width", lambda c: c.reg.fit(c.X, np.zeros((N, 2)), loss="mse"),
          ValueError, r"\by must have shape \(48,\) or \(48, 1\).*\(48, 2\)"),
    # feature count and lengths
    _case("fit-feature-count-differs-from-fitted-model", lambda c: c.clf.fit(c.X[:, :4], c.y),
          ValueError, r"X has 4 features, but the model was built for 5"),
    _case("fit-X-y-length-mismatch", lambda c: c.clf.fit(c.X, c.y[:-1]), ValueError,
          r"X has 48 samples but y has 47"),
    _case("fit-X-y-length-mismatch-mse", lambda c: c.reg.fit(c.X[:-3], c.t, loss="mse"),
          ValueError, r"X has 45 samples but y has 48"),
    _case("fit-validation-data-length-mismatch",
          lambda c: c.clf.fit(c.X, c.y, validation_data=(c.X[:6], c.y[:5])), ValueError,
          r"X has 6 samples but y_val has 5"),
    _case("fit-validation-data-feature-count",
          lambda c: c.clf.fit(c.X, c.y, validation_data=(c.X[:6, :4], c.y[:6])), ValueError,
          r"X_val has 4 features but X has 5"),
    # NaN and infinity
    _case("fit-X-nan", lambda c: c.clf.fit(_put(c.X, (3, 2), NAN), c.y), ValueError,
          r"\bX contains NaN or infinity"),
    _case("fit-X-inf", lambda c: c.clf.fit(_put(c.X, (0, 0), INF), c.y), ValueError,
          r"\bX contains NaN or infinity"),
    _case("fit-X-neg-inf", lambda c: c.clf.fit(_put(c.X, (47, 4), -INF), c.y), ValueError,
          r"\bX contains NaN or infinity"),
    _case("fit-X-beyond-float32", lambda c: c.clf.fit(_put(c.X, (2, 1), -1e300), c.y),
          ValueError, r"\bX has values beyond the range of float32 \(largest magnitude 1e\+300, "
          r"the largest float32 is 3.4e\+38\): scale it, or use a float64 model"),
    _case("fit-y-targets-beyond-float32",
          lambda c: c.reg.fit(c.X, _put(c.t, 3, 1e39), loss="mse"), ValueError,
          r"\by has values beyond the range of float32 \(largest magnitude 1e\+39"),
    _case("fit-y-labels-nan", lambda c: c.clf.fit(c.X, _put(c.y, 5, NAN)), ValueError,
          r"\by contains NaN or infinity"),
    _case("fit-y-targets-nan", lambda c: c.reg.fit(c.X, _put(c.t, 5, NAN), loss="mse"),
          ValueError, r"\by contains NaN or infinity"),
    _case("fit-y-targets-inf", lambda c: c.reg.fit(c.X, _put(c.t, 0, -INF), loss="mse"),
          ValueError, r"\by contains NaN or infinity"),
    _case("fit-validation-X-nan",
          lambda c: c.clf.fit(c.X, c.y, validation_data=(_put(c.X[:4], (1, 1), NAN), c.y[:4])),
          ValueError, r"\bX_val contains NaN or infinity"),
    # empty data
    _case("fit-X-empty-rows", lambda c: c.clf.fit(np.empty((0, D)), np.empty(0, int)),
          ValueError, r"\bX is empty \(shape \(0, 5\)\)"),
    _case("fit-X-empty-features", lambda c: c.clf.fit(np.empty((N, 0)), c.y), ValueError,
          r"\bX is empty \(shape \(48, 0\)\)"),
    # batches, epochs and options
    _case("fit-batch-larger-than-data", lambda c: c.clf.fit(c.X, c.y, batch_size=N + 1),
          ValueError, r"batch_size=49 is larger than the 48 training samples"),
    _case("fit-batch-larger-than-training-split",
          lambda c: c.clf.fit(c.X, c.y, batch_size=40, validation_split=0.25), ValueError,
          r"batch_size=40 is larger than the 36 training samples"),
    _case("fit-batch-size-zero", lambda c: c.clf.fit(c.X, c.y, batch_size=0), ValueError,
          r"batch_size must be >= 1, got 0"),
    _case("fit-batch-size-negative", lambda c: c.clf.fit(c.X, c.y, batch_size=-8), ValueError,
          r"batch_size must be >= 1, got -8"),
    _case("fit-batch-size-float", lambda c: c.clf.fit(c.X, c.y, batch_size=8.0), TypeError,
          r"batch_size must be an integer"),
    _case("fit-batch-size-bool", lambda c: c.clf.fit(c.X, c.y, batch_size=True), TypeError,
          r"batch_size must be an integer"),
    _case("fit-epochs-zero", lambda c: c.clf.fit(c.X, c.y, epochs=0), ValueError,
          r"epochs must be >= 1, got 0"),
    _case("fit-epochs-negative", lambda c: c.clf.fit(c.X, c.y, epochs=-1), ValueError,
          r"epochs must be >= 1, got -1"),
    _case("fit-lr-negative", lambda c: c.clf.fit(c.X, c.y, optimizer=fn.optim.SGD(lr=-0.1)),
          ValueError, r"\blr must be >= 0"),
    _case("fit-lr-nan", lambda c: c.clf.fit(c.X, c.y, optimizer=fn.optim.Adam(lr=NAN)),
          ValueError, r"\blr must be finite, got nan"),
    _case("fit-lr-inf", lambda c: c.clf.fit(c.X, c.y, optimizer=fn.optim.SGD(lr=INF)),
          ValueError, r"\blr must be finite, got inf"),
    _case("fit-l2-negative", lambda c: c.clf.fit(c.X, c.y, l2=-1e-3), ValueError,
          r"\bl2 must be >= 0"),
    _case("fit-l2-nan", lambda c: c.clf.fit(c.X, c.y, l2=NAN), ValueError,
          r"\bl2 must be finite"),
    _case("fit-clip-norm-zero", lambda c: c.clf.fit(c.X, c.y, clip_norm=0.0), ValueError,
          r"\bclip_norm must be > 0"),
    _case("fit-validation-split-one", lambda c: c.clf.fit(c.X, c.y, validation_split=1.0),
          ValueError, r"validation_split must be < 1"),
    _case("fit-n-threads-zero", lambda c: c.clf.fit(c.X, c.y, n_threads=0), ValueError,
          r"n_threads=0 is not valid"),
    # names
    _case("fit-unknown-loss", lambda c: c.clf.fit(c.X, c.y, loss="hinge"), ValueError,
          r"unknown loss 'hinge'; valid losses are: " + VALID_LOSSES),
    _case("fit-loss-needs-other-output", lambda c: c.clf.fit(c.X, c.y,
                                                             loss="binary_cross_entropy"),
          ValueError, r"binary_cross_entropy.*needs the output activation 'sigmoid'"),
    _case("fit-unknown-optimizer", lambda c: c.clf.fit(c.X, c.y, optimizer="adamax"),
          ValueError, r"unknown optimizer 'adamax'; valid optimizers are: " + VALID_OPTIMIZERS),
    _case("fit-optimizer-wrong-type", lambda c: c.clf.fit(c.X, c.y, optimizer=3), ValueError,
          r"unknown optimizer 3; valid optimizers are: " + VALID_OPTIMIZERS),
    _case("fit-unknown-backend", lambda c: c.clf.fit(c.X, c.y, backend="gpu"), ValueError,
          r"backend must be 'fast' or 'reference'"),
    _case("fit-diagnostics-reference", lambda c: c.clf.fit(c.X, c.y, diagnostics=True,
                                                            backend="reference"),
          ValueError, r"diagnostics are recorded by the C loop: fit with backend='fast'"),
    _case("fit-shuffle-string", lambda c: c.clf.fit(c.X, c.y, shuffle="no"), TypeError,
          r"shuffle must be True or False, got 'no'"),
    _case("fit-drop-last-int", lambda c: c.clf.fit(c.X, c.y, drop_last=2), TypeError,
          r"drop_last must be True or False, got 2"),
    # labels and targets
    # a label the fitted model has no class for (an unbuilt model: 4 labels for 3 units)
    _case("fit-label-equals-output-units", lambda c: c.clf.fit(c.X, _put(c.y, 7, K)),
          ValueError, r"y has labels the model was not trained on: \[3(\.0)?\]; its classes_ are "
          r"\[0, 1, 2\]"),
    _case("fit-label-negative", lambda c: c.clf.fit(c.X, _put(c.y, 7, -1)), ValueError,
          r"y has labels the model was not trained on: \[-1(\.0)?\]"),
    _case("fit-label-fractional", lambda c: c.clf.fit(c.X, _put(c.y, 2, 0.5)), ValueError,
          r"\by holds class labels and must contain whole numbers"),
    _case("fit-one-hot-wrong-width", lambda c: c.clf.fit(c.X, np.eye(K + 1)[c.y]), ValueError,
          r"one-hot with 3 columns"),
    _case("fit-binary-target-above-one",
          lambda c: _binary().fit(c.X, _put((c.y > 0), 1, 2.0)), ValueError,
          r"\by has 3 distinct labels \[0.0, 1.0, 2.0\], but the output layer stands for 2 "
          r"classes"),
    # dtypes
    _case("fit-X-object", lambda c: c.clf.fit(c.X.astype(object), c.y), TypeError,
          r"\bX has dtype object.*" + DTYPE_HINT),
    _case("fit-X-string", lambda c: c.clf.fit(c.X.astype(str), c.y), TypeError,
          r"\bX has dtype <U\d+.*" + DTYPE_HINT),
    _case("fit-X-complex", lambda c: c.clf.fit(c.X.astype(np.complex64), c.y), TypeError,
          r"\bX has dtype complex64.*" + DTYPE_HINT),
    _case("fit-X-bool", lambda c: c.clf.fit(c.X > 0, c.y), TypeError,
          r"\bX has dtype bool.*" + DTYPE_HINT),
    _case("fit-y-bytes", lambda c: c.clf.fit(c.X, np.where(c.y > 0, b"yes", b"no")),
          TypeError, r"\by holds bytes \(dtype \|S3\); targets must be numbers, booleans or "
          r"strings: decode them first, e\.g\. y\.astype\(str\)"),
    _case("fit-y-object", lambda c: c.clf.fit(c.X, c.y.astype(object)), TypeError,
          r"\by holds Python objects; targets must be numbers, booleans or strings"),
    _case("fit-y-string-regression", lambda c: c.reg.fit(c.X, c.t.astype(str), loss="mse"),
          TypeError, r"\by has dtype <U\d+; targets of mse must be numeric"),
    _case("fit-y-complex", lambda c: c.reg.fit(c.X, c.t.astype(complex), loss="mse"),
          TypeError, r"\by has dtype complex128; targets must be numbers, booleans or strings"),
    # labels of another kind than the fitted model's classes (an unbuilt model: 2 for 3)
    _case("fit-y-bool-labels", lambda c: c.clf.fit(c.X, c.y > 0), ValueError,
          r"\by has labels the model was not trained on: \[False, True\]"),
]


def _unbuilt():
    return fn.Sequential([fn.Dense(4), fn.Dense(K, activation="softmax")])


PREDICT_CASES = [
    _case("%s-%s" % (method, fault), (lambda m, x: lambda c: getattr(c.clf, m)(x(c)))(
        method, make), exc, pattern)
    for method in ("predict", "predict_proba")
    for fault, make, exc, pattern in [
        ("X-1d", lambda c: c.X[0], ValueError, r"X must be 2-dimensional.*reshape\(1, -1\)"),
        ("X-3d", lambda c: c.X[None], ValueError, r"X must be 2-dimensional"),
        ("feature-count-differs-from-fit", lambda c: c.X[:, :4], ValueError,
         r"X has 4 features, but the model expects 5"),
        ("X-nan", lambda c: _put(c.X, (2, 2), NAN), ValueError, r"\bX contains NaN"),
        ("X-inf", lambda c: _put(c.X, (2, 2), -INF), ValueError, r"\bX contains NaN"),
        ("X-empty-rows", lambda c: np.empty((0, D)), ValueError, r"\bX is empty"),
        ("X-empty-features", lambda c: np.empty((3, 0)), ValueError, r"\bX is empty"),
        ("X-object", lambda c: c.X.astype(object), TypeError, r"dtype object"),
        ("X-string", lambda c: c.X.astype(str), TypeError, r"dtype <U"),
        ("X-complex", lambda c: c.X.astype(complex), TypeError, r"dtype complex128"),
        ("X-bool", lambda c: c.X > 0, TypeError, r"dtype bool"),
    ]
] + [
    _case("predict-unbuilt-model", lambda c: _unbuilt().predict(c.X), RuntimeError,
          r"not built"),
    _case("predict-n-threads-zero", lambda c: c.clf.predict(c.X, n_threads=0), ValueError,
          r"n_threads=0"),
]

EVALUATE_CASES = [
    _case("evaluate-X-1d", lambda c: c.clf.evaluate(c.X[0], c.y[:1]), ValueError,
          r"X must be 2-dimensional"),
    _case("evaluate-feature-count-differs-from-fit", lambda c: c.clf.evaluate(c.X[:, :3], c.y),
          ValueError, r"X has 3 features, but the model expects 5"),
    _case("evaluate-X-y-length-mismatch", lambda c: c.clf.evaluate(c.X, c.y[:10]), ValueError,
          r"X has 48 samples but y has 10"),
    _case("evaluate-X-nan", lambda c: c.clf.evaluate(_put(c.X, (1, 1), NAN), c.y), ValueError,
          r"\bX contains NaN"),
    _case("evaluate-y-nan", lambda c: c.reg.evaluate(c.X, _put(c.t, 1, NAN)), ValueError,
          r"\by contains NaN"),
    _case("evaluate-X-empty", lambda c: c.clf.evaluate(np.empty((0, D)), np.empty(0, int)),
          ValueError, r"\bX is empty"),
    _case("evaluate-label-out-of-range", lambda c: c.clf.evaluate(c.X, c.y + K), ValueError,
          r"\by has labels the model was not trained on: \[3, 4, 5\]"),
    _case("evaluate-X-object", lambda c: c.clf.evaluate(c.X.astype(object), c.y), TypeError,
          r"dtype object"),
    _case("evaluate-X-complex", lambda c: c.clf.evaluate(c.X.astype(complex), c.y), TypeError,
          r"dtype complex128"),
    _case("evaluate-y-string", lambda c: c.clf.evaluate(c.X, c.y.astype(str)), ValueError,
          r"\by has labels the model was not trained on: \['0', '1', '2'\]"),
    _case("evaluate-unbuilt-model", lambda c: _unbuilt().evaluate(c.X, c.y), RuntimeError,
          r"not built"),
]

STANDARDIZER_CASES = [
    _case("%s-%s" % (method, fault),
          (lambda m, x: lambda c: (getattr(fn.Standardizer(), m) if m.startswith("fit")
                                   else getattr(c.scaler, m))(x(c)))(method, make),
          exc, pattern)
    for method in ("fit", "fit_transform", "transform", "inverse_transform")
    for fault, make, exc, pattern in [
        ("X-1d", lambda c: c.X[0], ValueError, r"2-dimensional|shape \(m, 5\)"),
        ("X-3d", lambda c: c.X[None], ValueError, r"2-dimensional|shape \(m, 5\)"),
        ("X-nan", lambda c: _put(c.X, (4, 0), NAN), ValueError, r"\bX contains NaN"),
        ("X-inf", lambda c: _put(c.X, (4, 0), INF), ValueError, r"\bX contains NaN"),
        ("X-empty-rows", lambda c: np.empty((0, D)), ValueError, r"\bX is empty"),
        ("X-object", lambda c: c.X.astype(object), TypeError, r"dtype object"),
        ("X-string", lambda c: c.X.astype(str), TypeError, r"dtype <U"),
        ("X-complex", lambda c: c.X.astype(complex), TypeError, r"dtype complex128"),
        ("X-bool", lambda c: c.X > 0, TypeError, r"dtype bool"),
    ]
] + [
    _case("transform-feature-count-differs-from-fit", lambda c: c.scaler.transform(c.X[:, :4]),
          ValueError, r"X has 4 features, but the Standardizer was fitted on 5"),
    _case("inverse_transform-feature-count-differs-from-fit",
          lambda c: c.scaler.inverse_transform(c.X[:, :4]), ValueError,
          r"shape \(m, 5\).*\(48, 4\)"),
    _case("transform-before-fit", lambda c: fn.Standardizer().transform(c.X), RuntimeError,
          r"not fitted"),
    _case("fit-n-threads-zero", lambda c: fn.Standardizer(n_threads=0).fit(c.X), ValueError,
          r"n_threads=0"),
]

LOAD_CASES = [
    _case("load-None", lambda c: fn.load(None), TypeError, r"NoneType"),
    _case("load-int", lambda c: fn.load(3), TypeError, r"int"),
    _case("load-missing-file", lambda c: fn.load(c.tmp / "missing.npz"), FileNotFoundError,
          r"missing\.npz"),
    _case("load-directory", lambda c: fn.load(c.tmp), fn.ModelFileError, r"not a regular file"),
    _case("load-empty-file", lambda c: fn.load(_write(c.tmp / "empty.npz", b"")),
          fn.ModelFileError, r"empty\.npz"),
    _case("load-text-file", lambda c: fn.load(_write(c.tmp / "text.npz", b"W0 = [1, 2]\n")),
          fn.ModelFileError, r"text\.npz"),
]


def _write(path, content):
    path.write_bytes(content)
    return path


MODEL_DEFINITION_CASES = [
    _case("Dense-unknown-activation", lambda c: fn.Dense(4, activation="swish"), ValueError,
          r"unknown activation 'swish'; valid activations are: " + VALID_ACTIVATIONS),
    _case("Dense-activation-not-a-string", lambda c: fn.Dense(4, activation=3), TypeError,
          r"activation"),
    _case("Dense-unknown-initializer", lambda c: fn.Dense(4, init="orthogonal"), ValueError,
          r"unknown initializer 'orthogonal'; valid initializers are: " + VALID_INITS),
    _case("Dense-units-zero", lambda c: fn.Dense(0), ValueError, r"units must be >= 1"),
    _case("Dense-units-float", lambda c: fn.Dense(2.5), TypeError, r"units must be an integer"),
    _case("Dropout-rate-one", lambda c: fn.Dropout(1.0), ValueError,
          r"dropout rate must be < 1"),
    _case("Dropout-rate-above-one", lambda c: fn.Dropout(1.5), ValueError,
          r"dropout rate must be < 1"),
    _case("Dropout-rate-negative", lambda c: fn.Dropout(-0.1), ValueError,
          r"dropout rate must be >= 0"),
    _case("Dropout-rate-nan", lambda c: fn.Dropout(NAN), ValueError,
          r"dropout rate must be finite"),
    _case("LeakyReLU-alpha-negative", lambda c: fn.LeakyReLU(alpha=-0.5), ValueError,
          r"alpha.*>= 0"),
    _case("Sequential-dtype-float16", lambda c: fn.Sequential([fn.Dense(2)], dtype="float16"),
          ValueError, r"dtype must be 'float32' or 'float64'"),
    _case("Sequential-input-dim-zero", lambda c: fn.Sequential([fn.Dense(2)], input_dim=0),
          ValueError, r"input_dim must be >= 1"),
    _case("Sequential-not-a-layer", lambda c: fn.Sequential([fn.Dense(2), "relu"]), TypeError,
          r"layer 1 is 'relu'"),
    _case("SGD-lr-negative", lambda c: fn.optim.SGD(lr=-1.0), ValueError, r"\blr\b.*>= 0"),
    _case("Adam-beta1-one", lambda c: fn.optim.Adam(beta1=1.0), ValueError, r"\bbeta1\b"),
]


def _sklearn_estimators():
    """The scikit-learn estimators (fastnn.sklearn) this matrix runs through:
    (id, factory of a small unfitted estimator) pairs; empty where
    fastnn.sklearn cannot be imported. Add new estimators here."""
    try:
        from fastnn.sklearn import MLPClassifier, MLPRegressor
    except ImportError:
        return []
    return [("MLPClassifier", lambda **kw: MLPClassifier(**{
                "hidden_layer_sizes": (6,), "max_iter": 3, "random_state": 0, **kw})),
            ("MLPRegressor", lambda **kw: MLPRegressor(**{
                "hidden_layer_sizes": (6,), "max_iter": 3, "random_state": 0, **kw}))]


SKLEARN = _sklearn_estimators()
# scikit-learn's conventions hold here: object arrays of numbers and boolean
# arrays are converted (as scikit-learn's own estimators do), strings and
# complex numbers are refused
SKLEARN_FIT_FAULTS = [
    ("X-1d", {}, lambda c: (c.X[:, 0], c.y), ValueError, r"Expected 2D array"),
    ("X-3d", {}, lambda c: (c.X[None], c.y), ValueError, r"dim 3"),
    ("X-nan", {}, lambda c: (_put(c.X, (0, 0), NAN), c.y), ValueError, r"X contains NaN"),
    ("X-inf", {}, lambda c: (_put(c.X, (0, 0), INF), c.y), ValueError, r"X contains infinity"),
    ("y-nan", {}, lambda c: (c.X, _put(c.y, 0, NAN)), ValueError, r"y contains NaN"),
    ("X-y-length-mismatch", {}, lambda c: (c.X, c.y[:-1]), ValueError,
     r"inconsistent numbers of samples: \[48, 47\]"),
    ("X-empty-rows", {}, lambda c: (np.empty((0, D)), np.empty(0, int)), ValueError,
     r"0 sample"),
    ("X-string", {}, lambda c: (np.full(c.X.shape, "a"), c.y), ValueError,
     r"could not convert string to float"),
    ("X-complex", {}, lambda c: (c.X.astype(complex), c.y), ValueError, r"Complex data"),
    ("learning-rate-negative", {"learning_rate_init": -0.1}, lambda c: (c.X, c.y), ValueError,
     r"learning_rate_init"),
    ("batch-size-zero", {"batch_size": 0}, lambda c: (c.X, c.y), ValueError, r"batch_size"),
    ("max-iter-zero", {"max_iter": 0}, lambda c: (c.X, c.y), ValueError, r"max_iter"),
    ("alpha-negative", {"alpha": -1.0}, lambda c: (c.X, c.y), ValueError, r"alpha"),
    ("unknown-activation", {"activation": "swish"}, lambda c: (c.X, c.y), ValueError,
     r"activation.*relu"),
    ("unknown-solver", {"solver": "adamax"}, lambda c: (c.X, c.y), ValueError,
     r"solver.*adam"),
    ("hidden-layer-zero-units", {"hidden_layer_sizes": (0,)}, lambda c: (c.X, c.y),
     ValueError, r"hidden_layer_sizes"),
]
SKLEARN_CASES = [pytest.param(name, factory, kw, make, exc, pattern, id="%s-fit-%s" % (name, f))
                 for name, factory in SKLEARN for f, kw, make, exc, pattern in SKLEARN_FIT_FAULTS]


# --------------------------------------------------------------------------
# every bad input raises a named error
# --------------------------------------------------------------------------

ALL_CASES = (FIT_CASES + PREDICT_CASES + EVALUATE_CASES + STANDARDIZER_CASES + LOAD_CASES
             + MODEL_DEFINITION_CASES)


@pytest.mark.parametrize("call, exc, pattern", ALL_CASES)
def test_bad_input_raises_a_named_error(call, exc, pattern, c):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a refusal, not a warning and a wrong result
        with pytest.raises(exc, match=pattern):
            call(c)


@pytest.mark.skipif(not SKLEARN, reason="fastnn.sklearn is not available")
@pytest.mark.parametrize("name, factory, kw, make, exc, pattern", SKLEARN_CASES)
def test_sklearn_estimator_bad_input_raises_a_named_error(name, factory, kw, make, exc,
                                                         pattern, c):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings of the fitted twin
        fitted = factory().fit(c.X, c.y)
    before = (fitted_state(fitted), fitted.predict(c.X))
    with pytest.raises(exc, match=pattern):
        factory(**kw).fit(*make(c))
    with pytest.raises(exc, match=pattern):
        fitted.set_params(**kw).fit(*make(c))
    fitted.set_params(**{k: factory().get_params()[k] for k in kw})
    # a failing fit leaves the fitted estimator as it was
    assert fitted_state(fitted) == before[0]
    np.testing.assert_array_equal(fitted.predict(c.X), before[1])


def fitted_state(estimator):
    """The fitted state of a scikit-learn estimator: its fitted attributes."""
    return {k: _freeze(v) for k, v in vars(estimator).items() if k.endswith("_")
            and not k.startswith("_")}


@pytest.mark.skipif(not SKLEARN, reason="fastnn.sklearn is not available")
@pytest.mark.parametrize("name, factory", [pytest.param(*e, id=e[0]) for e in SKLEARN])
def test_sklearn_estimator_predict_bad_input(name, factory, c):
    from sklearn.exceptions import NotFittedError
    with pytest.raises(NotFittedError):
        factory().predict(c.X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = factory().fit(c.X, c.y)
    with pytest.raises(ValueError, match=r"X has 4 features, but \w+ is expecting 5"):
        fitted.predict(c.X[:, :4])
    with pytest.raises(ValueError, match=r"X contains NaN"):
        fitted.predict(_put(c.X, (1, 1), NAN))
    with pytest.raises(ValueError, match=r"Complex data"):
        fitted.predict(c.X.astype(complex))


@pytest.mark.skipif(not SKLEARN, reason="fastnn.sklearn is not available")
@pytest.mark.parametrize("layout", LAYOUTS + ["object", "integer"])
@pytest.mark.parametrize("name, factory", [pytest.param(*e, id=e[0]) for e in SKLEARN])
def test_sklearn_estimator_accepts_any_layout(name, factory, layout, tmp_path):
    X, y, _ = _data(7)
    if layout == "integer":
        X = np.round(X * 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = factory().fit(X, y)
        Xl = X.astype(object) if layout == "object" else \
            X.astype(np.int64) if layout == "integer" else _layout(X, layout, tmp_path / "X")
        yl = y if layout in ("object", "integer") else _layout(y, layout, tmp_path / "y")
        got = factory().fit(Xl, yl)
    for a, b in zip(got.coefs_ + got.intercepts_, want.coefs_ + want.intercepts_,
                    strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(got.predict(Xl), want.predict(X))


# --------------------------------------------------------------------------
# a failing fit changes nothing
# --------------------------------------------------------------------------

def _freeze(value):
    if isinstance(value, np.ndarray):
        return ("array", value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(_freeze(v) for v in value))
    if isinstance(value, (int, float, str, bool, type(None), np.dtype)):
        return ("value", value)
    return ("object", id(value))


def model_state(model):
    """Everything a model holds, arrays by content and objects by identity,
    plus the parameter arena's content and its History's records."""
    state = {name: _freeze(value) for name, value in vars(model).items()}
    if model.arena_ is not None:
        state["params"] = _freeze(model.arena_.params)
    if model.history_ is not None:
        h = model.history_
        state["history"] = (list(h.epochs), {k: list(v) for k, v in h.history.items()},
                            h.stopped)
    return state


@pytest.mark.parametrize("call, exc, pattern", FIT_CASES)
def test_failing_fit_leaves_a_fitted_model_exactly_as_it_was(call, exc, pattern, c):
    before = (model_state(c.clf), model_state(c.reg))
    with pytest.raises(exc):
        call(c)
    assert (model_state(c.clf), model_state(c.reg)) == before
    # and it trains on exactly as an untouched twin does
    twin = _classifier()
    twin.fit(c.X, c.y, epochs=2, batch_size=8)
    c.clf.fit(c.X, c.y, epochs=1, batch_size=8)
    twin.fit(c.X, c.y, epochs=1, batch_size=8)
    np.testing.assert_array_equal(c.clf.get_params_flat(), twin.get_params_flat())


@pytest.mark.parametrize("call, exc, pattern", [
    case for case in FIT_CASES if case.id != "fit-feature-count-differs-from-fitted-model"])
def test_failing_fit_leaves_an_unbuilt_model_unbuilt(call, exc, pattern, c):
    model = fn.Sequential([fn.Dense(6, activation="tanh"), fn.Dense(K, activation="softmax")],
                          seed=0)
    c.clf = model
    c.reg = fn.Sequential([fn.Dense(1, activation="identity")], seed=0)
    before = (model_state(c.clf), model_state(c.reg))
    with pytest.raises(exc):
        call(c)
    assert not model.built
    assert (model_state(c.clf), model_state(c.reg)) == before


def test_failing_fit_with_non_finite_schedule_leaves_the_model_as_it_was(c):
    before = model_state(c.clf)
    bad = fn.optim.SGD(lr=fn.schedules.ExponentialDecay(1.0, decay_rate=1e300))
    with np.errstate(over="ignore"), pytest.raises(ValueError, match="learning-rate schedule"):
        c.clf.fit(c.X, c.y, optimizer=bad, batch_size=8)
    assert model_state(c.clf) == before


# --------------------------------------------------------------------------
# unusual but valid input works, with the same bits
# --------------------------------------------------------------------------

def _layout(a, layout, path):
    if layout == "C":
        return np.ascontiguousarray(a)
    if layout == "fortran":
        return np.asfortranarray(a)
    if layout == "strided":
        big = np.zeros((2 * a.shape[0],) + tuple(3 * s for s in a.shape[1:]), a.dtype)
        view = big[(slice(None, None, 2),) + tuple(slice(None, None, 3) for _ in a.shape[1:])]
        view[...] = a
        return view
    if layout == "reversed":
        return np.ascontiguousarray(a[::-1])[::-1]
    if layout == "read-only":
        r = np.array(a)
        r.flags.writeable = False
        return r
    if layout == "memmap":
        mm = np.memmap(path, dtype=a.dtype, mode="w+", shape=a.shape)
        mm[...] = a
        mm.flush()
        del mm
        return np.memmap(path, dtype=a.dtype, mode="r", shape=a.shape)
    if layout == "list":
        return a.tolist()
    raise ValueError(layout)




def _fit_predict_evaluate(X, y, make, loss, dtype, **fit_kw):
    model = make(dtype)
    history = model.fit(X, y, loss=loss, epochs=2, batch_size=8, **fit_kw)
    return (model.get_params_flat(), history["loss"], model.predict_proba(X),
            model.predict(X), model.evaluate(X, y))


def _assert_same_run(got, want):
    for g, w in zip(got, want, strict=True):
        if isinstance(w, dict):
            assert g == w
        else:
            np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("task", ["classifier", "regressor"])
def test_any_layout_of_X_and_y_trains_predicts_and_evaluates_identically(task, layout, dtype,
                                                                        tmp_path):
    X, y, t = _data(1)
    target, make, loss = (y, _classifier, "cross_entropy") if task == "classifier" else \
        (t, _regressor, "mse")
    dt = np.dtype(dtype).name
    want = _fit_predict_evaluate(X.astype(dtype), target, make, loss, dt)
    Xl = _layout(X.astype(dtype), layout, tmp_path / "X.dat")
    yl = _layout(target, layout, tmp_path / "y.dat")
    _assert_same_run(_fit_predict_evaluate(Xl, yl, make, loss, dt), want)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_any_layout_of_validation_data_gives_the_same_history(layout, tmp_path):
    X, y, _ = _data(2)
    Xv, yv = X[:12] * 0.5, y[:12]
    want = _classifier().fit(X, y, epochs=2, batch_size=8, validation_data=(Xv, yv))
    got = _classifier().fit(X, y, epochs=2, batch_size=8, validation_data=(
        _layout(Xv, layout, tmp_path / "Xv.dat"), _layout(yv, layout, tmp_path / "yv.dat")))
    assert got["val_loss"] == want["val_loss"]
    assert got["val_accuracy"] == want["val_accuracy"]


@pytest.mark.parametrize("int_dtype", [np.int8, np.int32, np.int64, np.uint8, np.uint16])
def test_integer_X_is_converted_to_the_model_dtype(int_dtype, dtype):
    rng = np.random.default_rng(3)
    Xi = rng.integers(0, 20, size=(N, D)).astype(int_dtype)
    y = rng.integers(0, K, N)
    dt = np.dtype(dtype).name
    want = _fit_predict_evaluate(Xi.astype(dtype), y, _classifier, "cross_entropy", dt)
    got = _fit_predict_evaluate(Xi, y.astype(int_dtype), _classifier, "cross_entropy", dt)
    _assert_same_run(got, want)
    assert got[2].dtype == np.dtype(dtype)


@pytest.mark.parametrize("int_dtype", [np.int16, np.int64, np.uint8])
def test_integer_regression_and_binary_targets_are_converted(int_dtype):
    X, y, t = _data(4)
    ti = np.abs(np.round(t * 10))  # whole numbers that fit every integer dtype here
    want = _fit_predict_evaluate(X, ti, _regressor, "mse", "float32")
    got = _fit_predict_evaluate(X, ti.astype(int_dtype), _regressor, "mse", "float32")
    _assert_same_run(got, want)
    yb = y > 0
    want = _fit_predict_evaluate(X, yb.astype(np.float32), _binary, "binary_cross_entropy",
                                 "float32")
    for target in (yb.astype(int_dtype), yb):  # integers and booleans are 0/1 targets
        got = _fit_predict_evaluate(X, target, _binary, "binary_cross_entropy", "float32")
        _assert_same_run(got, want)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_standardizer_accepts_any_layout(layout, dtype, tmp_path):
    X = _data(5)[0].astype(dtype) * 3 + 1
    if layout == "list":  # a list has no dtype: it is float64 data
        X = X.astype(np.float64)
    want = fn.Standardizer().fit(X)
    got = fn.Standardizer().fit(_layout(X, layout, tmp_path / "fit.dat"))
    np.testing.assert_array_equal(got.mean_, want.mean_)
    np.testing.assert_array_equal(got.std_, want.std_)
    Xt = want.transform(X)
    np.testing.assert_array_equal(got.transform(_layout(X, layout, tmp_path / "t.dat")), Xt)
    np.testing.assert_array_equal(
        got.inverse_transform(_layout(Xt, layout, tmp_path / "i.dat")),
        want.inverse_transform(Xt))


def test_standardizer_converts_integer_input():
    Xi = np.arange(40, dtype=np.int32).reshape(8, 5) ** 2
    s = fn.Standardizer().fit(Xi)
    want = fn.Standardizer().fit(Xi.astype(np.float64))
    np.testing.assert_array_equal(s.mean_, want.mean_)
    np.testing.assert_array_equal(s.transform(Xi), want.transform(Xi.astype(np.float64)))
    np.testing.assert_array_equal(s.inverse_transform(Xi), want.inverse_transform(
        Xi.astype(np.float64)))


def test_inputs_are_never_modified(tmp_path):
    X, y, t = _data(6)
    arrays = [X, y, t]
    copies = [a.copy() for a in arrays]
    model = _classifier("float64")
    model.fit(X, y, epochs=2, batch_size=8, validation_data=(X, y))
    model.predict(X)
    model.evaluate(X, y)
    reg = _regressor("float64")
    reg.fit(X, t, loss="mse", epochs=1, batch_size=8)
    s = fn.Standardizer().fit(X)
    s.inverse_transform(s.transform(X))
    for a, copy in zip(arrays, copies):
        np.testing.assert_array_equal(a, copy)


def test_model_file_loads_from_str_bytes_and_pathlike(c):
    path = c.tmp / "m.npz"
    c.clf.save(path)
    for p in (path, str(path), bytes(path)):
        np.testing.assert_array_equal(fn.load(p).get_params_flat(), c.clf.get_params_flat())


# --------------------------------------------------------------------------
# fastnn.ops: output buffers that overlap what the kernel reads
# --------------------------------------------------------------------------

def _square_operands(dtype=np.float64):
    rng = np.random.default_rng(8)
    X, W = rng.standard_normal((4, 4)).astype(dtype), rng.standard_normal((4, 4)).astype(dtype)
    A = fn.ops.dense_forward(X, W, None, "tanh")
    return X, W, A, rng.standard_normal((4, 4)).astype(dtype)


@pytest.mark.parametrize("case, pattern", [
    ("out_dW-is-W", r"out_dW must not overlap W"),
    ("out_dX-is-X", r"out_dX must not overlap X"),
    ("out_dX-is-dA", r"out_dX must not overlap dA"),
    ("out_dZ-is-X", r"out_dZ must not overlap X"),
    ("out_dW-is-out_dX", r"out_dX must not overlap out_dW"),
    ("out_db-inside-W", r"out_db must not overlap W"),
])
def test_dense_backward_out_buffer_overlapping_an_input_is_refused(case, pattern):
    X, W, A, dA = _square_operands()
    before = [a.copy() for a in (X, W, A, dA)]
    buf = np.empty((4, 4))
    kwargs = {"out_dW-is-W": dict(out_dW=W), "out_dX-is-X": dict(out_dX=X),
              "out_dX-is-dA": dict(out_dX=dA), "out_dZ-is-X": dict(out_dZ=X),
              "out_dW-is-out_dX": dict(out_dW=buf, out_dX=buf),
              "out_db-inside-W": dict(out_db=W[1])}[case]
    with pytest.raises(ValueError, match=pattern):
        fn.ops.dense_backward(X, W, A, dA, "tanh", l2=0.1, **kwargs)
    for a, b in zip((X, W, A, dA), before):
        np.testing.assert_array_equal(a, b)


def test_dense_backward_in_place_dZ_over_dA_still_works():
    X, W, A, dA = _square_operands()
    want = fn.reference.dense_backward(X, W, A, dA.copy(), "tanh")
    got = fn.ops.dense_backward(X, W, A, dA, "tanh", out_dZ=dA)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------
# Sizes beyond the BLAS's 32-bit interface
# --------------------------------------------------------------------------

@pytest.mark.parametrize("m_max, width, pattern", [
    (2**31, 4, r"rows per batch 2147483648 exceeds 2\*\*31 - 1"),
    (8, 2**31, r"layer width 2147483648 exceeds 2\*\*31 - 1"),
])
def test_the_training_loop_refuses_sizes_the_blas_cannot_take(m_max, width, pattern):
    """Every fit (the C loop, the reference loop and the full-batch lbfgs pass of
    fastnn.sklearn) sets up through TrainingSetup: a batch or a layer beyond
    2**31 - 1 is refused there, before anything is allocated for it."""
    from fastnn._backends import TrainingSetup
    from fastnn.optim import SGD
    model = fn.Sequential([fn.Dense(3, activation="tanh"), fn.Dense(2, activation="softmax")],
                          dtype="float64", seed=0)
    model.build(4)
    if width > 2**31 - 1:  # a layer that wide cannot be built here; pretend one was
        model.dense_layers_[0].units = width
    with pytest.raises(ValueError, match=pattern):
        TrainingSetup(model, "cross_entropy", SGD(lr=0.1), [], m_max, 0.0, 0.0, 0.0, False)


def test_the_blas_path_refuses_a_size_that_would_wrap():
    """Behind the Python checks, the C product refuses sizes above INT_MAX on the
    BLAS path (whose interface is 32-bit) instead of letting them wrap. The
    operands are zero-stride views, so no memory of that size exists."""
    from fastnn import _kernels
    from numpy.lib.stride_tricks import as_strided
    cell = np.ones(1)
    A = as_strided(cell, shape=(2**31, 1), strides=(0, 8))  # op(A) = A^T: K = 2**31
    B = as_strided(cell, shape=(2**31, 1), strides=(0, 8))
    C = np.zeros((1, 1))
    before = fn.get_gemm_path()
    fn.set_gemm_path("blas")
    try:
        with pytest.raises(ValueError, match="outside its domain"):
            _kernels.gemm(A, B, C, True, False, False, 1)
    finally:
        fn.set_gemm_path(before)
    assert C[0, 0] == 0.0


@pytest.mark.parametrize("case", ["float32 X", "Fortran-order X", "float labels"])
def test_the_compiled_network_refuses_arrays_it_would_misread(case):
    """Net reads every array through a typed memoryview: a wrong dtype or layout
    raises rather than being read as raw memory of another type."""
    from fastnn._backends import TrainingSetup, make_network
    from fastnn.optim import SGD
    model = fn.Sequential([fn.Dense(3, activation="tanh"), fn.Dense(2, activation="softmax")],
                          dtype="float64", seed=0)
    model.build(4)
    setup = TrainingSetup(model, "cross_entropy", SGD(lr=0.1), [], 8, 0.0, 0.0, 0.0, False)
    net = make_network(setup, "fast", 0)
    X = np.ones((8, 4))
    y = np.zeros(8, dtype=np.int64)
    if case == "float32 X":
        X = X.astype(np.float32)
    elif case == "Fortran-order X":
        X = np.asfortranarray(np.ones((8, 4)) + np.arange(4))
    else:
        y = y.astype(np.float64)
    before = model.arena_.params.copy()
    with pytest.raises(ValueError):
        net.train_batches(X, y, np.arange(8, dtype=np.int64), 8, 0, 1, np.full(1, 0.1),
                          np.zeros(1), 1)
    np.testing.assert_array_equal(model.arena_.params, before)
