"""fastnn.sklearn.MLPClassifier and MLPRegressor: scikit-learn's estimator
checks, and the same fits as sklearn.neural_network, step for step.

Both draw the initial weights, the early-stopping split and every shuffle from
the same RandomState in the same order and take the same optimizer steps, so
after a few epochs in float64 the two agree to rounding (tests/tolerances.py,
kind "training"): loss curves, weights, step counts, learning rates, validation
scores."""

import contextlib
import copy
import inspect
import io
import pickle
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
import scipy.sparse  # noqa: E402
import sklearn.neural_network as sk  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import (load_breast_cancer, load_diabetes, load_digits,  # noqa: E402
                              load_iris, make_multilabel_classification, make_regression)
from sklearn.exceptions import ConvergenceWarning, NotFittedError  # noqa: E402
from sklearn.metrics import accuracy_score, r2_score  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import fastnn  # noqa: E402
from fastnn.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

from .tolerances import assert_close  # noqa: E402

FASTNN = {"MLPClassifier": MLPClassifier, "MLPRegressor": MLPRegressor}
EXTRA_PARAMS = {"dtype": None, "dropout": 0.0, "clip_norm": None, "n_threads": None}

# ---------------------------------------------------------------- estimator checks

_PARTIAL_FIT = ("partial_fit refuses early_stopping=True, as scikit-learn's MLPClassifier "
                "does: early stopping holds out part of the whole training set, which "
                "partial_fit never sees")
_TOO_SMALL = ("the check fits 10 samples: a validation_fraction=0.1 split leaves too few "
              "for early stopping, and the fit raises, as scikit-learn's MLPClassifier "
              "with early_stopping=True does")


_SPLIT_DRAWS_ROWS = ("the early-stopping split draws rows, so a sample repeated twice can land "
                     "in both parts where a weighted one lands in one (scikit-learn's "
                     "MLPClassifier(early_stopping=True) fails this check the same way)")
_DROPOUT_PER_ROW = ("dropout draws a mask per row: a sample repeated twice gets two masks, a "
                    "sample of weight 2 one")
_FLOAT32 = ("float32 training: the weighted and the repeated fits agree to float32 rounding "
            "(3e-8 in predict_proba), the check asks for 1e-7 relative and 1e-9 absolute")


def expected_failed_checks(estimator):
    """Checks that cannot apply to early stopping (scikit-learn's own
    MLPClassifier(early_stopping=True) fails the same ones), to dropout, or to
    float32 at float64 tolerances."""
    failed = {}
    weights = ("check_sample_weight_equivalence_on_dense_data",
               "check_sample_weight_equivalence_on_sparse_data")
    if estimator.dropout > 0:
        failed.update(dict.fromkeys(weights, _DROPOUT_PER_ROW))
    elif estimator.dtype == "float32":
        failed.update(dict.fromkeys(weights, _FLOAT32))
    if not estimator.early_stopping:
        return failed
    failed.update(dict.fromkeys(weights, _SPLIT_DRAWS_ROWS))
    failed.update({"check_fit_score_takes_y": _PARTIAL_FIT,
                   "check_n_features_in_after_fitting": _PARTIAL_FIT,
                   "check_estimators_partial_fit_n_features": _PARTIAL_FIT,
                   "check_estimators_nan_inf": _TOO_SMALL,
                   "check_classifiers_one_label": _TOO_SMALL,
                   "check_fit2d_1feature": _TOO_SMALL})
    return failed


CHECKED = [
    MLPClassifier(max_iter=100),
    MLPRegressor(max_iter=100),
    MLPClassifier(solver="sgd", max_iter=100),
    MLPRegressor(solver="sgd", max_iter=100),
    MLPClassifier(solver="lbfgs", max_iter=100),
    MLPRegressor(solver="lbfgs", activation="tanh", max_iter=100),
    MLPClassifier(dtype="float32", dropout=0.1, clip_norm=5.0, activation="leaky_relu",
                  max_iter=100),
    MLPRegressor(dtype=None, max_iter=100),
    MLPClassifier(early_stopping=True, max_iter=100),
]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks(CHECKED, expected_failed_checks=expected_failed_checks)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# ---------------------------------------------------------------- data

def _scaled(loader):
    X, y = loader(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.fixture(scope="module")
def iris():
    return _scaled(load_iris)


@pytest.fixture(scope="module")
def digits():
    return _scaled(load_digits)


@pytest.fixture(scope="module")
def cancer():
    return _scaled(load_breast_cancer)


@pytest.fixture(scope="module")
def multilabel():
    X, Y = make_multilabel_classification(300, 10, n_classes=4, random_state=0)
    return StandardScaler().fit_transform(X), Y


@pytest.fixture(scope="module")
def multioutput():
    X, Y = make_regression(300, 8, n_targets=3, noise=5.0, random_state=0)
    return X, Y / 100.0


@pytest.fixture(scope="module")
def diabetes():
    X, y = _scaled(load_diabetes)
    return X, (y - y.mean()) / y.std()


@pytest.fixture(scope="module")
def counts():
    """Poisson counts whose log-mean is linear in X (diabetes features)."""
    X, _ = _scaled(load_diabetes)
    rng = np.random.default_rng(0)
    return X, rng.poisson(np.exp(0.5 + X @ rng.uniform(-0.3, 0.3, X.shape[1])))


def _mixed_weights(n):
    """Sample weights as users pass them, with zeros and a few negative ones."""
    w = np.random.default_rng(1).uniform(0.0, 3.0, n)
    w[::7] = 0.0
    w[3::11] = -0.25
    return w


def _quiet_fit(est, X, y, sample_weight=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if sample_weight is None:
            return est.fit(X, y)
        return est.fit(X, y, sample_weight=sample_weight)


def assert_same_fit(ours, theirs):
    """The fitted state of a fastnn.sklearn estimator against scikit-learn's."""
    dt = theirs.coefs_[0].dtype  # the precision of the training
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.t_ == theirs.t_
    assert ours.n_layers_ == theirs.n_layers_
    assert ours.n_outputs_ == theirs.n_outputs_
    assert ours.out_activation_ == theirs.out_activation_
    assert ours.n_features_in_ == theirs.n_features_in_
    assert len(ours.coefs_) == len(theirs.coefs_)
    for mine, ref in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        assert mine.shape == ref.shape and mine.dtype == ref.dtype
        assert_close(mine, ref, "training", dtype=dt)
    assert_close(ours.loss_, theirs.loss_, "training", dtype=dt)
    if hasattr(theirs, "loss_curve_"):
        assert len(ours.loss_curve_) == len(theirs.loss_curve_)
        assert_close(np.array(ours.loss_curve_), np.array(theirs.loss_curve_), "training",
                     dtype=dt)
        if theirs.best_loss_ is None:
            assert ours.best_loss_ is None
        else:
            assert_close(ours.best_loss_, theirs.best_loss_, "training", dtype=dt)
    if getattr(theirs, "validation_scores_", None) is not None:
        assert_close(np.array(ours.validation_scores_), np.array(theirs.validation_scores_),
                     "training", dtype=dt)
        assert_close(ours.best_validation_score_, theirs.best_validation_score_, "training",
                     dtype=dt)
    elif hasattr(theirs, "validation_scores_"):
        assert ours.validation_scores_ is None and ours.best_validation_score_ is None
    if hasattr(theirs, "classes_"):
        np.testing.assert_array_equal(ours.classes_, theirs.classes_)


def fit_both(name, X, y, sample_weight=None, **params):
    theirs = _quiet_fit(getattr(sk, name)(**params), X, y, sample_weight)
    ours = _quiet_fit(FASTNN[name](**params), X, y, sample_weight)
    return ours, theirs


# ---------------------------------------------------------------- the API

@pytest.mark.parametrize("name", ["MLPClassifier", "MLPRegressor"])
def test_constructor_is_sklearns_plus_fastnn_extras(name):
    theirs = inspect.signature(getattr(sk, name)).parameters
    ours = inspect.signature(FASTNN[name]).parameters
    assert list(ours)[:len(theirs)] == list(theirs)
    for key, param in theirs.items():
        assert ours[key].default == param.default, key
        assert ours[key].kind == param.kind, key
    extras = {k: p.default for k, p in ours.items() if k not in theirs}
    assert extras == EXTRA_PARAMS
    assert "n_jobs" not in ours


@pytest.mark.parametrize("name", ["MLPClassifier", "MLPRegressor"])
def test_fitted_attributes_are_sklearns(name, iris, diabetes):
    X, y = iris if name == "MLPClassifier" else diabetes
    ours, theirs = fit_both(name, X, y, max_iter=5, random_state=0)
    public = {k for k in vars(theirs) if k.endswith("_") and not k.startswith("_")}
    assert public <= set(vars(ours))
    assert set(k for k in vars(ours) if k.endswith("_") and not k.startswith("_")) \
        == public | {"n_threads_"}
    assert ours.n_threads_ == fastnn.get_num_threads()
    assert_same_fit(ours, theirs)


def test_tags_follow_sklearn():
    from sklearn.utils import get_tags
    clf, reg = get_tags(MLPClassifier()), get_tags(MLPRegressor())
    assert clf.input_tags.sparse and reg.input_tags.sparse
    assert clf.classifier_tags.multi_label
    assert reg.target_tags.multi_output
    assert clf.estimator_type == "classifier" and reg.estimator_type == "regressor"


# ---------------------------------------------------------------- same fits as scikit-learn

SAME_FIT_CASES = {
    "adam-multiclass": ("MLPClassifier", "digits", dict(max_iter=8)),
    "sgd-nesterov": ("MLPClassifier", "digits",
                     dict(solver="sgd", learning_rate_init=0.01, max_iter=8)),
    "sgd-momentum": ("MLPClassifier", "digits",
                     dict(solver="sgd", nesterovs_momentum=False, momentum=0.5,
                          learning_rate_init=0.01, max_iter=8)),
    "sgd-no-momentum": ("MLPClassifier", "iris",
                        dict(solver="sgd", momentum=0.0, learning_rate_init=0.1, max_iter=20)),
    "binary-logistic": ("MLPClassifier", "cancer",
                        dict(activation="logistic", batch_size=64, max_iter=10)),
    "binary-tanh-early-stopping": ("MLPClassifier", "cancer",
                                   dict(activation="tanh", early_stopping=True, batch_size=32,
                                        max_iter=40)),
    "multilabel": ("MLPClassifier", "multilabel", dict(alpha=0.01, max_iter=10)),
    "two-hidden-layers": ("MLPClassifier", "iris",
                          dict(hidden_layer_sizes=(20, 10), batch_size=16, max_iter=10)),
    "no-hidden-layer": ("MLPClassifier", "iris", dict(hidden_layer_sizes=(), max_iter=10)),
    "regression-identity-no-shuffle": ("MLPRegressor", "diabetes",
                                       dict(activation="identity", shuffle=False,
                                            batch_size=100, max_iter=10)),
    "regression-sgd": ("MLPRegressor", "diabetes", dict(solver="sgd", max_iter=10)),
    # with several outputs scikit-learn reports the squared error averaged over
    # the outputs too, while its L2 term is not: each batch's penalty is needed
    "multioutput-l2": ("MLPRegressor", "multioutput", dict(alpha=0.5, batch_size=50,
                                                           max_iter=10)),
    "multioutput-early-stopping": ("MLPRegressor", "multioutput",
                                   dict(hidden_layer_sizes=(30, 20), early_stopping=True,
                                        max_iter=30)),
    "lbfgs-classifier": ("MLPClassifier", "iris", dict(solver="lbfgs", max_iter=15)),
    "lbfgs-multioutput": ("MLPRegressor", "multioutput",
                          dict(solver="lbfgs", alpha=0.1, max_iter=15)),
    # Poisson regression: exp output, half Poisson deviance summed over outputs
    "poisson-adam": ("MLPRegressor", "counts", dict(loss="poisson", max_iter=10)),
    "poisson-lbfgs": ("MLPRegressor", "counts", dict(loss="poisson", solver="lbfgs",
                                                     alpha=0.01, max_iter=15)),
}

# the same with sample weights (zeros and negative ones among them): the
# weighted mean loss, the L2 term divided by each batch's weight sum, the
# weights split with their rows for early stopping, a weighted validation score
WEIGHTED_FIT_CASES = {
    "weighted-adam-multiclass": ("MLPClassifier", "digits", dict(alpha=0.01, max_iter=8)),
    "weighted-sgd-binary-early-stopping": ("MLPClassifier", "cancer",
                                           dict(solver="sgd", early_stopping=True,
                                                learning_rate_init=0.01, max_iter=15)),
    "weighted-multilabel": ("MLPClassifier", "multilabel", dict(alpha=0.01, max_iter=10)),
    "weighted-multioutput-l2": ("MLPRegressor", "multioutput",
                                dict(alpha=0.5, batch_size=50, max_iter=10)),
    "weighted-multioutput-early-stopping": ("MLPRegressor", "multioutput",
                                            dict(alpha=0.5, early_stopping=True, max_iter=20)),
    "weighted-lbfgs-classifier": ("MLPClassifier", "iris", dict(solver="lbfgs", max_iter=15)),
    "weighted-lbfgs-multioutput": ("MLPRegressor", "multioutput",
                                   dict(solver="lbfgs", alpha=0.1, max_iter=15)),
    "weighted-poisson-sgd": ("MLPRegressor", "counts",
                             dict(loss="poisson", solver="sgd", learning_rate_init=0.001,
                                  alpha=0.1, batch_size=64, max_iter=10)),
    "weighted-poisson-lbfgs": ("MLPRegressor", "counts",
                               dict(loss="poisson", solver="lbfgs", max_iter=15)),
}


@pytest.mark.parametrize("case", list(SAME_FIT_CASES) + list(WEIGHTED_FIT_CASES))
def test_same_fit_as_sklearn(case, request):
    weighted = case in WEIGHTED_FIT_CASES
    name, data, params = (WEIGHTED_FIT_CASES if weighted else SAME_FIT_CASES)[case]
    X, y = request.getfixturevalue(data)
    sw = _mixed_weights(X.shape[0]) if weighted else None
    ours, theirs = fit_both(name, X, y, sample_weight=sw, random_state=3, **params)
    assert_same_fit(ours, theirs)
    assert_close(ours.predict(X) if name == "MLPRegressor" else ours.predict_proba(X),
                 theirs.predict(X) if name == "MLPRegressor" else theirs.predict_proba(X),
                 "training")


def test_invscaling_counts_samples_seen(digits):
    X, y = digits
    params = dict(solver="sgd", learning_rate="invscaling", learning_rate_init=0.2,
                  power_t=0.4, max_iter=6, random_state=0)
    ours, theirs = fit_both("MLPClassifier", X, y, **params)
    assert_same_fit(ours, theirs)
    # the rate for the next epoch: lr_init / (t + 1) ** power_t, t = samples seen
    expected = 0.2 / (6 * X.shape[0] + 1) ** 0.4
    assert theirs._optimizer.learning_rate == pytest.approx(expected, rel=1e-15)
    assert ours._optimizer_state["learning_rate"] == pytest.approx(expected, rel=1e-15)


def test_adaptive_divides_the_rate_by_5(iris):
    X, y = iris
    params = dict(solver="sgd", learning_rate="adaptive", learning_rate_init=0.2, tol=1e-2,
                  n_iter_no_change=2, max_iter=60, random_state=0)
    ours, theirs = fit_both("MLPClassifier", X, y, **params)
    assert_same_fit(ours, theirs)
    lr = ours._optimizer_state["learning_rate"]
    assert lr == pytest.approx(theirs._optimizer.learning_rate, rel=1e-15)
    # the rate was divided by 5 at least twice and stopped above 1e-6 / 5
    divisions = np.log(0.2 / lr) / np.log(5)
    assert divisions >= 2 and divisions == pytest.approx(round(divisions))
    assert ours.n_iter_ < 60  # stopped once the rate was too small


def test_adam_steps_continue_across_partial_fit(iris):
    X, y = iris
    ours = MLPClassifier(random_state=0, batch_size=50)
    theirs = sk.MLPClassifier(random_state=0, batch_size=50)
    for rows in (slice(0, 50), slice(50, 100), slice(100, 150), slice(None)):
        ours.partial_fit(X[rows], y[rows], classes=np.unique(y))
        theirs.partial_fit(X[rows], y[rows], classes=np.unique(y))
        assert ours.n_iter_ == theirs.n_iter_ == 1
        assert ours._optimizer_state["t"] == theirs._optimizer.t
    assert_same_fit(ours, theirs)
    assert ours.t_ == 50 + 50 + 50 + 150


@pytest.mark.parametrize("name", ["MLPClassifier", "MLPRegressor"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_partial_fit_matches_sklearn(name, weighted, iris, diabetes):
    X, y = iris if name == "MLPClassifier" else diabetes
    sw = _mixed_weights(len(y)) if weighted else None
    ours = FASTNN[name](solver="sgd", learning_rate_init=0.05, random_state=1, batch_size=20,
                        alpha=0.01)
    theirs = getattr(sk, name)(solver="sgd", learning_rate_init=0.05, random_state=1,
                               batch_size=20, alpha=0.01)
    extra = {"classes": np.unique(y)} if name == "MLPClassifier" else {}
    for rows in np.array_split(np.random.default_rng(0).permutation(len(y)), 4):
        if weighted:
            extra["sample_weight"] = sw[rows]
        ours.partial_fit(X[rows], y[rows], **extra)
        theirs.partial_fit(X[rows], y[rows], **extra)
        extra = {}
    assert_same_fit(ours, theirs)


def test_partial_fit_multilabel(multilabel):
    X, Y = multilabel
    ours, theirs = MLPClassifier(random_state=0), sk.MLPClassifier(random_state=0)
    for _ in range(3):
        ours.partial_fit(X, Y, classes=np.arange(Y.shape[1]))
        theirs.partial_fit(X, Y, classes=np.arange(Y.shape[1]))
    assert_same_fit(ours, theirs)
    assert ours.predict(X).shape == Y.shape


def test_warm_start_matches_sklearn(digits):
    X, y = digits
    ours = MLPClassifier(max_iter=4, random_state=0, solver="sgd", learning_rate="invscaling",
                         learning_rate_init=0.1)
    theirs = sk.MLPClassifier(max_iter=4, random_state=0, solver="sgd",
                              learning_rate="invscaling", learning_rate_init=0.1)
    for est in (ours, theirs):
        _quiet_fit(est, X, y)
        est.set_params(warm_start=True, max_iter=3)
        _quiet_fit(est, X, y)
    assert len(ours.loss_curve_) == 7 and ours.n_iter_ == 3
    assert ours.t_ == 7 * X.shape[0]
    assert_same_fit(ours, theirs)
    # without warm_start a fit starts over
    cold = _quiet_fit(clone(ours).set_params(warm_start=False, max_iter=4), X, y)
    assert len(cold.loss_curve_) == 4


def test_warm_start_refuses_other_classes_or_shapes(iris):
    X, y = iris
    clf = _quiet_fit(MLPClassifier(max_iter=2, warm_start=True, random_state=0), X, y)
    with pytest.raises(ValueError, match="warm_start can only be used where `y` has the same"):
        clf.fit(X[y < 2], y[y < 2])
    clf.set_params(hidden_layer_sizes=(7,))
    with pytest.raises(ValueError, match="weight shapes"):
        clf.fit(X, y)


def test_early_stopping_keeps_the_best_weights(cancer):
    X, y = cancer
    params = dict(early_stopping=True, n_iter_no_change=3, tol=0.0, max_iter=60,
                  learning_rate_init=0.01, random_state=5)
    ours, theirs = fit_both("MLPClassifier", X, y, **params)
    assert_same_fit(ours, theirs)
    assert ours.best_loss_ is None
    assert len(ours.validation_scores_) == ours.n_iter_
    assert ours.best_validation_score_ == max(ours.validation_scores_)
    # the weights returned are those of the best epoch, not the last
    best = int(np.argmax(ours.validation_scores_))
    assert best < ours.n_iter_ - 1
    again = _quiet_fit(MLPClassifier(**{**params, "early_stopping": False,
                                        "max_iter": best + 1}), X, y)
    # without the held-out split the batches differ: only the count is comparable
    assert again.n_iter_ == best + 1


def test_convergence_warning_and_batch_size_clipping(iris):
    X, y = iris
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(3\) reached"):
        MLPClassifier(max_iter=3, random_state=0).fit(X, y)
    with pytest.warns(UserWarning, match="It is going to be clipped"):
        clf = _quiet_fit(MLPClassifier(batch_size=1000, max_iter=3, random_state=0), X, y)
    with pytest.warns(UserWarning, match="It is going to be clipped"):
        theirs = _quiet_fit(sk.MLPClassifier(batch_size=1000, max_iter=3, random_state=0), X, y)
    assert_same_fit(clf, theirs)


def test_verbose_output_is_sklearns(iris):
    X, y = iris
    params = dict(solver="sgd", learning_rate="adaptive", learning_rate_init=0.2, tol=1e-2,
                  n_iter_no_change=2, max_iter=30, random_state=0, verbose=True)
    out = []
    for cls in (MLPClassifier, sk.MLPClassifier):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            _quiet_fit(cls(**params), X, y)
        out.append(buf.getvalue())
    assert "Setting learning rate to" in out[1]
    assert out[0] == out[1]


# ---------------------------------------------------------------- predictions

def test_predict_proba_and_log_proba(iris, cancer, multilabel):
    for X, y in (iris, cancer, multilabel):
        clf = _quiet_fit(MLPClassifier(max_iter=20, random_state=0), X, y)
        proba = clf.predict_proba(X)
        n_classes = y.shape[1] if y.ndim == 2 else len(np.unique(y))
        assert proba.shape == (len(X), n_classes)
        if y.ndim == 1:
            np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
            np.testing.assert_array_equal(clf.classes_[np.argmax(proba, axis=1)],
                                          clf.predict(X))
        np.testing.assert_array_equal(clf.predict_log_proba(X), np.log(proba))
    # a saturated output: log(0) is -inf, as in scikit-learn, without a warning
    X, y = cancer
    clf = _quiet_fit(MLPClassifier(max_iter=5, random_state=0), X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isneginf(clf.predict_log_proba(X * 1e4)).any()


def test_score_is_accuracy_and_r2(iris, diabetes):
    X, y = iris
    clf = _quiet_fit(MLPClassifier(max_iter=20, random_state=0), X, y)
    assert clf.score(X, y) == accuracy_score(y, clf.predict(X))
    X, y = diabetes
    reg = _quiet_fit(MLPRegressor(max_iter=20, random_state=0), X, y)
    assert reg.score(X, y) == r2_score(y, reg.predict(X))


def test_multioutput_regression_shapes(multioutput):
    X, Y = multioutput
    reg = _quiet_fit(MLPRegressor(max_iter=20, random_state=0), X, Y)
    assert reg.n_outputs_ == 3 and reg.predict(X).shape == Y.shape
    reg1 = _quiet_fit(MLPRegressor(max_iter=20, random_state=0), X, Y[:, 0])
    assert reg1.predict(X).shape == (len(X),)


def test_string_labels(iris):
    X, y = iris
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    ours, theirs = fit_both("MLPClassifier", X, names, max_iter=10, random_state=0)
    assert_same_fit(ours, theirs)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


# ---------------------------------------------------------------- fastnn's options

def test_dtype_float32_and_none(digits):
    X, y = digits
    X32 = X.astype(np.float32)
    f64 = _quiet_fit(MLPClassifier(max_iter=10, random_state=0, dtype="float64"), X32, y)
    assert f64.coefs_[0].dtype == np.float64
    f32 = _quiet_fit(MLPClassifier(max_iter=10, random_state=0, dtype="float32"), X, y)
    assert f32.coefs_[0].dtype == np.float32 and f32.predict_proba(X).dtype == np.float32
    # the default, dtype=None, is scikit-learn's rule: float32 input trains in float32
    ours = _quiet_fit(MLPClassifier(max_iter=3, random_state=0), X32, y)
    theirs = _quiet_fit(sk.MLPClassifier(max_iter=3, random_state=0), X32, y)
    assert ours.coefs_[0].dtype == theirs.coefs_[0].dtype == np.float32
    for mine, ref in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        assert_close(mine, ref, "training")
    # the same steps; only the reported loss differs where scikit-learn clips a
    # probability below float32's eps (1.2e-7) before its log: digits has one
    # such sample in the first epoch, fastnn's loss from the logits is exact
    assert ours.loss_curve_[-1] == pytest.approx(theirs.loss_curve_[-1], rel=1e-5)
    iris_X, iris_y = load_iris(return_X_y=True)
    iris_X = StandardScaler().fit_transform(iris_X).astype(np.float32)
    ours = _quiet_fit(MLPClassifier(max_iter=20, random_state=0, dtype=None), iris_X, iris_y)
    theirs = _quiet_fit(sk.MLPClassifier(max_iter=20, random_state=0), iris_X, iris_y)
    assert_same_fit(ours, theirs)
    assert _quiet_fit(MLPClassifier(max_iter=2, dtype=None), X, y).coefs_[0].dtype == np.float64
    # float32 and float64 fits of the same run stay close
    assert_close(f32.predict_proba(X), f64.predict_proba(X).astype(np.float32), "training",
                 scale=1.0)


def test_sparse_input_gives_the_dense_fit(digits):
    X, y = digits
    dense = _quiet_fit(MLPClassifier(max_iter=5, random_state=0), X, y)
    sparse = _quiet_fit(MLPClassifier(max_iter=5, random_state=0), scipy.sparse.csr_matrix(X), y)
    for a, b in zip(dense.coefs_ + dense.intercepts_, sparse.coefs_ + sparse.intercepts_):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(dense.predict_proba(X),
                                  sparse.predict_proba(scipy.sparse.csc_matrix(X)))


def test_one_or_two_threads_give_the_same_bits(digits):
    X, y = digits
    fits = [_quiet_fit(MLPClassifier(max_iter=5, random_state=0, n_threads=n), X, y)
            for n in (1, 2)]
    assert [f.n_threads_ for f in fits] == [1, 2]
    for a, b in zip(fits[0].coefs_ + fits[0].intercepts_, fits[1].coefs_ + fits[1].intercepts_):
        np.testing.assert_array_equal(a, b)


def test_dropout_and_clip_norm(digits):
    X, y = digits
    base = dict(max_iter=5, random_state=0)
    plain = _quiet_fit(MLPClassifier(**base), X, y)
    dropped = [_quiet_fit(MLPClassifier(dropout=0.3, **base), X, y) for _ in range(2)]
    np.testing.assert_array_equal(dropped[0].coefs_[0], dropped[1].coefs_[0])  # reproducible
    assert not np.allclose(dropped[0].coefs_[0], plain.coefs_[0])
    assert dropped[0].score(X, y) > 0.8
    # a clip above every gradient norm changes nothing; a tight one changes the steps
    loose = _quiet_fit(MLPClassifier(clip_norm=1e6, **base), X, y)
    np.testing.assert_array_equal(loose.coefs_[0], plain.coefs_[0])
    sgd = dict(solver="sgd", momentum=0.0, learning_rate_init=0.1, max_iter=1, random_state=0,
               batch_size=len(X))
    start = MLPClassifier(**{**sgd, "max_iter": 1, "learning_rate_init": 1e-300})
    w0 = _quiet_fit(start, X, y).coefs_ + start.intercepts_
    tight = _quiet_fit(MLPClassifier(clip_norm=1e-3, **sgd), X, y)
    step = np.sqrt(sum(np.sum((a - b) ** 2) for a, b in zip(tight.coefs_ + tight.intercepts_,
                                                           w0)))
    assert step == pytest.approx(0.1 * 1e-3, rel=1e-6)  # one step of lr * clip_norm


def _teach_sklearn_the_extra_activations(monkeypatch):
    """scikit-learn's MLP with fastnn's leaky_relu (slope 0.01) and softplus
    added to its tables of activations and of their derivatives in terms of
    the output, as fastnn.reference writes them."""
    from sklearn.neural_network import _base
    from sklearn.utils._param_validation import StrOptions

    def leaky_relu(X):
        np.maximum(X, 0.01 * X, out=X)
        return X

    def leaky_relu_derivative(Z, delta):
        delta[Z <= 0] *= 0.01

    def softplus(X):
        np.logaddexp(0.0, X, out=X)
        return X

    def softplus_derivative(Z, delta):
        delta *= -np.expm1(-Z)  # sigmoid(z) = 1 - exp(-softplus(z))

    for table, extra in ((_base.ACTIVATIONS, {"leaky_relu": leaky_relu, "softplus": softplus}),
                         (_base.DERIVATIVES, {"leaky_relu": leaky_relu_derivative,
                                              "softplus": softplus_derivative})):
        for name, fn in extra.items():
            monkeypatch.setitem(table, name, fn)
    names = StrOptions({"identity", "logistic", "tanh", "relu", "leaky_relu", "softplus"})
    monkeypatch.setitem(sk.MLPClassifier._parameter_constraints, "activation", [names])


@pytest.mark.parametrize("activation", ["leaky_relu", "softplus"])
def test_extra_activations(iris, activation, monkeypatch):
    # the same fit as scikit-learn's MLP computing the same activation
    X, y = iris
    _teach_sklearn_the_extra_activations(monkeypatch)
    ours, theirs = fit_both("MLPClassifier", X, y, activation=activation, max_iter=200,
                            random_state=0, learning_rate_init=0.01)
    assert_same_fit(ours, theirs)
    assert_close(ours.predict_proba(X), theirs.predict_proba(X), "training")
    assert ours.score(X, y) == theirs.score(X, y) > 0.9
    # the activation is what these fits share: relu's differs
    relu = _quiet_fit(MLPClassifier(max_iter=200, random_state=0, learning_rate_init=0.01),
                      X, y)
    assert not np.allclose(relu.coefs_[0], ours.coefs_[0])


def test_pickle_keeps_the_optimizer_state(iris):
    X, y = iris
    classes = np.unique(y)
    a = MLPClassifier(random_state=0).partial_fit(X, y, classes=classes)
    b = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    for est in (a, b):
        est.partial_fit(X, y)
    for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_array_equal(p, q)


def test_assigned_weights_are_used(iris):
    X, y = iris
    ours, theirs = fit_both("MLPClassifier", X, y, max_iter=3, random_state=0)
    proba = ours.predict_proba(X)
    for est in (ours, theirs):
        est.coefs_ = [c * 0.5 for c in est.coefs_]
        est.intercepts_ = [b * 0.5 for b in est.intercepts_]
    assert not np.allclose(ours.predict_proba(X), proba)
    assert_close(ours.predict_proba(X), theirs.predict_proba(X), "training")
    for est in (ours, theirs):  # a warm start continues from the assigned weights
        _quiet_fit(est.set_params(warm_start=True, max_iter=2), X, y)
    assert_same_fit(ours, theirs)


def test_feature_names(iris):
    pd = pytest.importorskip("pandas")
    X, y = iris
    df = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    clf = _quiet_fit(MLPClassifier(max_iter=5, random_state=0), df, y)
    np.testing.assert_array_equal(clf.feature_names_in_, ["a", "b", "c", "d"])
    with pytest.warns(UserWarning, match="feature names"):
        clf.predict(X)
    with pytest.raises(ValueError, match="feature names"):
        clf.predict(df[["b", "a", "c", "d"]])


# ---------------------------------------------------------------- errors

def test_errors(iris, diabetes):
    X, y = iris
    with pytest.raises(NotFittedError):
        MLPClassifier().predict(X)
    with pytest.raises(ValueError, match="loss='poisson' needs targets >= 0"):
        MLPRegressor(loss="poisson").fit(diabetes[0], diabetes[1] - 100.0)
    with pytest.raises(ValueError, match="'alpha' parameter"):
        MLPClassifier(alpha=-1.0).fit(X, y)
    with pytest.raises(ValueError, match="'n_threads' parameter"):
        MLPClassifier(n_threads=0).fit(X, y)
    with pytest.raises(ValueError, match="hidden_layer_sizes must be > 0"):
        MLPClassifier(hidden_layer_sizes=(5, 0)).fit(X, y)
    for sizes in [(3.5,), (4, 3.0), (True,)]:  # scikit-learn's TypeError, not truncation
        with pytest.raises(TypeError, match="hidden_layer_sizes must hold integers"):
            MLPClassifier(hidden_layer_sizes=sizes).fit(X, y)
    assert MLPClassifier(hidden_layer_sizes=(np.int64(3),), max_iter=1).fit(X, y).coefs_[0]\
        .shape == (4, 3)
    with pytest.raises(ValueError, match="dropout needs a stochastic solver"):
        MLPClassifier(solver="lbfgs", dropout=0.5).fit(X, y)
    with pytest.raises(ValueError, match="clip_norm needs a stochastic solver"):
        MLPRegressor(solver="lbfgs", clip_norm=1.0).fit(X, y.astype(float))
    with pytest.raises(ValueError, match=r"sample_weight.shape == \(3,\), expected \(150,\)"):
        MLPClassifier().fit(X, y, sample_weight=np.ones(3))
    lbfgs = MLPClassifier(solver="lbfgs")
    assert not hasattr(lbfgs, "partial_fit")
    with pytest.raises(AttributeError, match="has no attribute 'partial_fit'") as info:
        lbfgs.partial_fit(X, y)
    assert "only available for stochastic optimizers" in str(info.value.__cause__)
    assert not hasattr(MLPRegressor(solver="lbfgs"), "partial_fit")
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        MLPClassifier().partial_fit(X, y)
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping"):
        MLPClassifier(early_stopping=True).partial_fit(X, y, classes=np.unique(y))
    clf = _quiet_fit(MLPClassifier(max_iter=2), X, y)
    with pytest.raises(ValueError, match="X has 3 features"):
        clf.predict(X[:, :3])
    with pytest.raises(ValueError, match="`y` has classes not in `self.classes_`"):
        clf.partial_fit(X, y + 1)


@pytest.mark.parametrize("case", ["loss", "weights-full-batch", "weights-mini-batches"])
def test_divergence_raises_and_keeps_finite_weights(case, diabetes):
    X, y = diabetes
    if case == "loss":  # the loss overflows first
        reg = MLPRegressor(solver="sgd", learning_rate_init=10.0, momentum=0.99, max_iter=50,
                           random_state=0)
        X, y, kept = X * 1e3, y * 1e3, "last finite step"
    else:  # an update overflows float32 weights
        reg = MLPRegressor(solver="sgd", learning_rate_init=1e39, momentum=0.0, max_iter=5,
                           dtype="float32", random_state=0,
                           batch_size=len(X) if case == "weights-full-batch" else 50)
        kept = "start of that iteration"
    with pytest.raises(ValueError, match="non-finite parameter weights.*" + kept):
        reg.fit(X, y)
    assert all(np.all(np.isfinite(w)) for w in reg.coefs_ + reg.intercepts_)
    assert np.all(np.isfinite(reg.predict(X)))


def test_lbfgs_on_overflowing_data_stops_like_sklearn(diabetes):
    X, y = diabetes
    results = []
    for cls in (MLPRegressor, sk.MLPRegressor):
        reg = cls(solver="lbfgs", max_iter=20, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's overflows in scikit-learn
            with pytest.warns(ConvergenceWarning, match="lbfgs failed to converge"):
                reg.fit(X * 1e160, y)
        results.append(reg)
    ours, theirs = results
    assert np.isnan(ours.loss_) and np.isnan(theirs.loss_)
    assert ours.n_iter_ == theirs.n_iter_ == 0
    # the weights stay the initial ones, in both
    for mine, ref in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_array_equal(mine, ref)


@pytest.mark.parametrize("learning_rate", ["constant", "invscaling", "adaptive"])
def test_optimizer_learning_rate_is_scikit_learns(learning_rate):
    """_optimizer.learning_rate holds the current learning rate, as in
    scikit-learn: after the same iterations both estimators report the same."""
    X = np.array([[3, 2], [1, 6], [5, 6], [-2, -4]], dtype=float)
    y = np.array([1, 1, 1, 0])
    kw = dict(solver="sgd", hidden_layer_sizes=(4,), learning_rate=learning_rate, max_iter=30,
              power_t=0.25, warm_start=True, random_state=0, n_iter_no_change=2, tol=10.0,
              momentum=0.0)
    ours, theirs = MLPClassifier(**kw), sk.MLPClassifier(**kw)
    assert not hasattr(ours, "_optimizer")
    for _ in range(2):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            ours.fit(X, y)
            theirs.fit(X, y)
        assert ours._optimizer.learning_rate == theirs._optimizer.learning_rate
    if learning_rate == "invscaling":
        assert ours._optimizer.learning_rate == 0.001 / (ours.t_ + 1) ** 0.25
    # the rate written is the rate the next partial_fit trains with
    ours._optimizer.learning_rate = 0.0
    before = [c.copy() for c in ours.coefs_]
    ours.partial_fit(X, y)
    for b, c in zip(before, ours.coefs_):
        np.testing.assert_array_equal(b, c)


@pytest.mark.parametrize("change", [dict(momentum=0.1), dict(nesterovs_momentum=False),
                                    dict(solver="adam"), dict(learning_rate="invscaling"),
                                    dict(learning_rate_init=0.5)])
def test_partial_fit_keeps_the_optimizer_its_stream_made(iris, change):
    """Parameters set between partial_fit calls leave the solver as it was
    made, as scikit-learn's _optimizer keeps them; a new fit makes it anew."""
    X, y = iris
    fits = []
    for cls in (MLPClassifier, sk.MLPClassifier):
        est = cls(hidden_layer_sizes=(7,), solver="sgd", learning_rate_init=0.05,
                  random_state=1)
        est.partial_fit(X, y, classes=[0, 1, 2])
        est.set_params(**change)
        for _ in range(3):
            est.partial_fit(X, y)
        fits.append(est)
    assert_same_fit(*fits)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for est in fits:
            est.set_params(max_iter=3).fit(X, y)
    assert_same_fit(*fits)


def test_a_stream_pickled_before_its_solver_settings_were_kept_continues(iris):
    # an estimator whose optimizer state lacks them takes its parameters' as they are
    X, y = iris
    ours = MLPClassifier(hidden_layer_sizes=(5,), random_state=0)
    ours.partial_fit(X, y, classes=[0, 1, 2])
    same = copy.deepcopy(ours)
    del ours._optimizer_state["settings"]
    ours = pickle.loads(pickle.dumps(ours))
    assert ours._optimizer.learning_rate == same._optimizer.learning_rate
    ours.partial_fit(X, y)
    same.partial_fit(X, y)
    for mine, ref in zip(ours.coefs_, same.coefs_):
        np.testing.assert_array_equal(mine, ref)


def test_precision_follows_scikit_learn_beyond_the_first_fit(iris):
    """dtype=None: L-BFGS ends with float64 weights (SciPy's parameters), also
    continuing float32 ones; a continued stochastic fit keeps the weights'
    precision, and float64 X meets float32 weights in float64, as in
    scikit-learn; MLPClassifier has scikit-learn's loss attribute."""
    X, y = iris
    X32 = X.astype(np.float32)
    kw = dict(hidden_layer_sizes=(7,), max_iter=15, random_state=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = MLPClassifier(solver="lbfgs", **kw).fit(X32, y)
        theirs = sk.MLPClassifier(solver="lbfgs", **kw).fit(X32, y)
        assert ours.coefs_[0].dtype == theirs.coefs_[0].dtype == np.float64
        # scikit-learn's first steps mix in float32: the same fit up to its rounding
        np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=1e-5)
        assert ours.predict_proba(X32).dtype == np.float64
        for first, then in ((X, X32), (X32, X)):
            for est in (MLPClassifier(**kw), sk.MLPClassifier(**kw)):
                est.fit(first, y)
                est.partial_fit(then, y)
                assert est.coefs_[0].dtype == first.dtype
            for est in (MLPClassifier(warm_start=True, **kw),
                        sk.MLPClassifier(warm_start=True, **kw)):
                assert est.fit(first, y).fit(then, y).coefs_[0].dtype == first.dtype
        ours, theirs = MLPClassifier(**kw).fit(X32, y), sk.MLPClassifier(**kw).fit(X32, y)
    mine, ref = ours.predict_proba(X), theirs.predict_proba(X)
    assert mine.dtype == ref.dtype == np.float64
    np.testing.assert_allclose(mine, ref, rtol=1e-5)
    assert MLPClassifier().loss == sk.MLPClassifier().loss == "log_loss"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for est in (ours, theirs):
            est.set_params(solver="lbfgs", warm_start=True, max_iter=5).fit(X32, y)
            assert est.coefs_[0].dtype == np.float64
        # scikit-learn's SGD solver counts no steps: only adam's has a t
        for est in (MLPClassifier(solver="sgd", **kw), sk.MLPClassifier(solver="sgd", **kw)):
            with pytest.raises(AttributeError, match="'SGDOptimizer' object has no attribute 't'"):
                est.fit(X, y)._optimizer.t


def test_adams_learning_rate_is_scikit_learns_step_size(iris):
    """With adam, _optimizer.learning_rate is the bias-corrected step size of
    the last step, as scikit-learn's AdamOptimizer holds it; a value written
    is shown until the next step and trains nothing."""
    X, y = iris
    kw = dict(hidden_layer_sizes=(8,), max_iter=5, random_state=0, batch_size=50)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours, theirs = MLPClassifier(**kw).fit(X, y), sk.MLPClassifier(**kw).fit(X, y)
    assert ours._optimizer.t == theirs._optimizer.t == 15
    assert ours._optimizer.learning_rate == theirs._optimizer.learning_rate
    assert ours._optimizer.learning_rate == pytest.approx(
        0.001 * np.sqrt(1 - 0.999 ** 15) / (1 - 0.9 ** 15), rel=1e-15)
    untouched = copy.deepcopy(ours)
    ours._optimizer.learning_rate = theirs._optimizer.learning_rate = 0.0
    assert ours._optimizer.learning_rate == 0.0
    for est in (ours, theirs, untouched):
        est.partial_fit(X, y)
    assert ours._optimizer.learning_rate == theirs._optimizer.learning_rate
    for mine, ref in zip(ours.coefs_, untouched.coefs_):
        np.testing.assert_array_equal(mine, ref)
    assert_same_fit(ours, theirs)


def test_diverging_fit_with_early_stopping_goes_on_as_scikit_learns(iris):
    """With early_stopping=True a diverging fit does not raise: like
    scikit-learn's it records NaN losses and validation scores up to max_iter
    and ends with the best weights."""
    X, y = iris
    kw = dict(hidden_layer_sizes=100, activation="identity", solver="sgd", alpha=0.0001,
              learning_rate="constant", learning_rate_init=1, max_iter=20, early_stopping=True,
              n_iter_no_change=10, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = MLPRegressor(**kw).fit(X, y.astype(float))
        theirs = sk.MLPRegressor(**kw).fit(X, y.astype(float))
    assert np.isnan(ours.loss_curve_[-1]) and np.isnan(ours.validation_scores_[-1])
    assert isinstance(ours.validation_scores_[-1], float)
    assert ours.n_iter_ == theirs.n_iter_ == 20 and ours.t_ == theirs.t_
    np.testing.assert_array_equal(np.isnan(ours.loss_curve_), np.isnan(theirs.loss_curve_))
    np.testing.assert_array_equal(np.isnan(ours.validation_scores_),
                                  np.isnan(theirs.validation_scores_))
    assert_close(ours.best_validation_score_, theirs.best_validation_score_, "training")
    assert_close(ours.predict(X), theirs.predict(X), "training", scale=1.0)


# ---------------------------------------------------------------- sample weights, lbfgs objective

@pytest.mark.parametrize("name", ["MLPClassifier", "MLPRegressor"])
def test_a_batch_whose_weights_sum_to_zero_raises_as_in_sklearn(name, iris, diabetes):
    """scikit-learn's weighted mean raises ZeroDivisionError for such a batch;
    both estimators then hold the weights of the step before it."""
    X, y = iris if name == "MLPClassifier" else diabetes
    X, y = X[:40], y[:40]
    sw = np.ones(40)
    sw[12:16] = [1.0, -1.0, 2.0, -2.0]  # rows 12..15: the fourth batch of 4, sum 0
    params = dict(solver="sgd", batch_size=4, shuffle=False, max_iter=3, random_state=0)
    theirs, ours = getattr(sk, name)(**params), FASTNN[name](**params)
    for est in (theirs, ours):
        with pytest.raises(ZeroDivisionError):
            est.fit(X, y, sample_weight=sw)
    for mine, ref in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        assert_close(mine, ref, "training")
    assert ours.n_iter_ == theirs.n_iter_ == 0  # the first iteration did not end


@pytest.mark.parametrize("case", ["classifier", "multilabel", "regressor", "poisson"])
def test_loss_grad_lbfgs_is_sklearns(case, iris, multilabel, multioutput, counts):
    """The objective L-BFGS minimizes, at any packed parameters, with and
    without sample weights: loss, flat gradient, the coef_grads and
    intercept_grads lists, and coefs_/intercepts_ set to the parameters."""
    name = "MLPRegressor" if case in ("regressor", "poisson") else "MLPClassifier"
    X, y = {"classifier": iris, "multilabel": multilabel, "regressor": multioutput,
            "poisson": counts}[case]
    params = dict(solver="lbfgs", hidden_layer_sizes=(6, 4), alpha=0.3, max_iter=2,
                  random_state=0, activation="tanh")
    if case == "poisson":
        params["loss"] = "poisson"
    ours, theirs = fit_both(name, X, y, **params)
    Y = theirs._label_binarizer.transform(y) if name == "MLPClassifier" else y
    Y = Y.reshape(len(y), -1)
    theta = np.random.default_rng(2).standard_normal(
        sum(c.size for c in theirs.coefs_ + theirs.intercepts_)) * 0.3
    for sw in (None, _mixed_weights(X.shape[0])):
        results = []
        for est in (ours, theirs):
            grads = [[np.empty_like(c) for c in est.coefs_],
                     [np.empty_like(b) for b in est.intercepts_]]
            acts = [X] + [None] * len(est.coefs_)
            loss, grad = est._loss_grad_lbfgs(theta, X, Y, sw, acts, [None] * len(est.coefs_),
                                              grads[0], grads[1])
            results.append((loss, grad, grads, [c.copy() for c in est.coefs_]))
        (loss, grad, grads, coefs), (rloss, rgrad, rgrads, rcoefs) = results
        assert_close(loss, rloss, "training")
        assert_close(grad, rgrad, "training", scale=np.abs(rgrad).max())
        for mine, ref in zip(grads[0] + grads[1], rgrads[0] + rgrads[1]):
            assert_close(mine, ref, "training", scale=np.abs(rgrad).max())
        for mine, ref in zip(coefs, rcoefs):
            np.testing.assert_array_equal(mine, ref)
