"""Data frames in, as users have them: pandas and polars DataFrames and pyarrow
Tables train and predict as their arrays do, and the column names are
recorded and checked as scikit-learn checks them."""

import warnings

import numpy as np
import pytest

import fastnn as fn

pd = pytest.importorskip("pandas")
pl = pytest.importorskip("polars")
pa = pytest.importorskip("pyarrow")

COLUMNS = ["alpha", "beta", "gamma"]


def _data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 3))
    return X, np.where(X[:, 0] + X[:, 1] > 0, "up", "down")


def _frame(kind, X, columns=COLUMNS):
    if kind == "pandas":
        return pd.DataFrame(X, columns=columns)
    if kind == "polars":
        return pl.DataFrame({c: X[:, i] for i, c in enumerate(columns)})
    return pa.table({c: X[:, i] for i, c in enumerate(columns)})


def _model():
    return fn.Sequential([fn.Dense(6, activation="tanh"), fn.Dense(2, activation="softmax")],
                         seed=0, dtype="float64")


KINDS = ["pandas", "polars", "pyarrow"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_frame_trains_and_predicts_as_its_array(kind, tmp_path):
    X, y = _data()
    from_frame, from_array = _model(), _model()
    target = {"pandas": pd.Series, "polars": pl.Series,
              "pyarrow": lambda v: pa.chunked_array([v])}[kind](y)
    from_frame.fit(_frame(kind, X), target, epochs=3, batch_size=16)
    from_array.fit(X, y, epochs=3, batch_size=16)
    np.testing.assert_array_equal(from_frame.get_params_flat(), from_array.get_params_flat())
    np.testing.assert_array_equal(from_frame.feature_names_in_, COLUMNS)
    assert from_array.feature_names_in_ is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same names: no warning
        np.testing.assert_array_equal(from_frame.predict(_frame(kind, X)),
                                      from_array.predict(X))
        assert from_frame.evaluate(_frame(kind, X), y) == from_array.evaluate(X, y)
    # saved and loaded with the model
    from_frame.save(tmp_path / "m.npz")
    np.testing.assert_array_equal(fn.load(tmp_path / "m.npz").feature_names_in_, COLUMNS)


@pytest.mark.parametrize("kind", KINDS)
def test_names_are_checked_as_scikit_learn_checks_them(kind):
    X, y = _data()
    model = _model()
    model.fit(_frame(kind, X), y, epochs=1)
    with pytest.raises(ValueError, match="feature names should match.*unseen at fit time: "
                                         "delta.*missing: gamma"):
        model.predict(_frame(kind, X, ["alpha", "beta", "delta"]))
    with pytest.raises(ValueError, match="the same names in another order"):
        model.predict(_frame(kind, X[:, ::-1], COLUMNS[::-1]))
    with pytest.warns(UserWarning, match="X does not have valid feature names, but "
                                         "Sequential was fitted with feature names"):
        model.predict(X)
    plain = _model()
    plain.fit(X, y, epochs=1)
    with pytest.warns(UserWarning, match="X has feature names, but Sequential was fitted "
                                         "without feature names"):
        plain.predict(_frame(kind, X))
    # a later fit continues with the first fit's names
    with pytest.raises(ValueError, match="feature names should match"):
        model.fit(_frame(kind, X, ["alpha", "beta", "delta"]), y, epochs=1)


@pytest.mark.parametrize("kind", KINDS)
def test_non_numeric_columns_are_refused_by_name(kind):
    X, y = _data()
    names = np.array(["a", "b"] * 32)
    if kind == "pandas":
        frame = pd.DataFrame({"alpha": X[:, 0], "city": names, "beta": X[:, 1]})
    elif kind == "polars":
        frame = pl.DataFrame({"alpha": X[:, 0], "city": names, "beta": X[:, 1]})
    else:
        frame = pa.table({"alpha": X[:, 0], "city": names, "beta": X[:, 1]})
    model = _model()
    with pytest.raises(TypeError, match="X has non-numeric columns 'city'"):
        model.fit(frame, y)
    assert not model.built


@pytest.mark.parametrize("kind", ["pandas", "pyarrow"])  # polars has no repeated names
def test_repeated_column_names_are_refused(kind):
    # looked up by name, a repeated name is every column it names at once: a
    # 3-column frame would train as 4 columns under 3 names
    X, y = _data()
    frame = (pd.DataFrame(X, columns=["a", "a", "c"]) if kind == "pandas"
             else pa.Table.from_arrays([pa.array(X[:, i]) for i in range(3)], ["a", "a", "c"]))
    model = _model()
    with pytest.raises(ValueError, match="X has duplicate column names 'a'; give each column "
                                         "its own name"):
        model.fit(frame, y, epochs=1)
    assert not model.built


def test_integer_column_names_are_not_feature_names():
    X, y = _data()
    model = _model()
    model.fit(pd.DataFrame(X), y, epochs=1)  # columns 0, 1, 2
    assert model.feature_names_in_ is None


@pytest.mark.parametrize("kind", KINDS)
def test_scikit_learn_estimators_take_frames(kind):
    from fastnn.sklearn import MLPClassifier
    X, y = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence
        clf = MLPClassifier(hidden_layer_sizes=(5,), max_iter=20, random_state=0)
        clf.fit(_frame(kind, X), y)
        twin = MLPClassifier(hidden_layer_sizes=(5,), max_iter=20, random_state=0).fit(X, y)
    np.testing.assert_array_equal(clf.feature_names_in_, COLUMNS)
    np.testing.assert_array_equal(clf.predict(_frame(kind, X)), twin.predict(X))
    with pytest.raises(ValueError, match="feature names"):
        clf.predict(_frame(kind, X, ["alpha", "beta", "delta"]))
