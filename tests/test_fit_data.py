"""What Sequential.fit does with the data it is given: the held-out validation
rows, class labels of any kind, sample and class weights, and the default
batch size on small data."""

import warnings

import numpy as np
import pytest

import fastnn as fn

sklearn_datasets = pytest.importorskip("sklearn.datasets")


@pytest.fixture(scope="module")
def iris():
    """Iris as it ships: rows sorted by class, inputs standardized."""
    X, y = sklearn_datasets.load_iris(return_X_y=True)
    return (X - X.mean(axis=0)) / X.std(axis=0), y


def _classifier(k=3, seed=0, dtype="float64", input_dim=4):
    return fn.Sequential([fn.Dense(8, activation="tanh"), fn.Dense(k, activation="softmax")],
                         input_dim=input_dim, seed=seed, dtype=dtype)


# --------------------------------------------------------------------------
# the validation rows
# --------------------------------------------------------------------------

def test_validation_split_is_shuffled_and_stratified_on_sorted_data(iris):
    X, y = iris
    model = _classifier()
    h = model.fit(X, y, validation_split=0.2, epochs=30, batch_size=16,
                  optimizer=fn.optim.Adam(lr=0.02))
    rows = h.validation_rows
    assert len(rows) == 30
    # each class holds out its share: 10 of its 50 rows
    np.testing.assert_array_equal(np.bincount(y[rows]), [10, 10, 10])
    # so the validation set is one the model learns to predict, from the first epochs on
    assert h["val_accuracy"][-1] > 0.8
    assert min(h["val_accuracy"][:5]) > 0.0
    # the training rows are the others, in their order
    scores = model.evaluate(X[rows], y[rows])
    assert scores["accuracy"] == h["val_accuracy"][-1]


def test_validation_rows_come_from_the_seed(iris):
    X, y = iris

    def rows(seed):
        return _classifier(seed=seed).fit(X, y, validation_split=0.2, epochs=1).validation_rows
    np.testing.assert_array_equal(rows(3), rows(3))
    assert not np.array_equal(rows(3), rows(4))


def test_last_rows_stay_available_for_time_ordered_data(iris):
    X, y = iris
    h = _classifier().fit(X, y, validation_split=0.2, validation_rows="last", epochs=1)
    np.testing.assert_array_equal(h.validation_rows, np.arange(120, 150))
    with pytest.raises(ValueError, match="validation_rows must be 'random' or 'last'"):
        _classifier().fit(X, y, validation_split=0.2, validation_rows="tail")


def test_regression_validation_rows_are_a_random_draw():
    rng = np.random.default_rng(0)
    X = np.sort(rng.standard_normal((200, 1)), axis=0)  # sorted, like a time series
    t = X[:, 0] * 2.0
    model = fn.Sequential([fn.Dense(1, activation="identity")], input_dim=1, seed=1)
    rows = model.fit(X, t, validation_split=0.25, epochs=1).validation_rows
    assert len(rows) == 50
    # spread over the whole range, not the tail
    assert rows.min() < 50 and rows.max() > 150


def test_stratified_shares_are_rounded_by_largest_remainder():
    from fastnn._fit_data import holdout_rows
    strata = np.array([0] * 7 + [1] * 2 + [2] * 1)  # 10 rows, 3 held out
    train, val = holdout_rows(10, 0.3, "random", strata, seed=5)
    assert len(val) == 3 and len(train) == 7
    assert np.bincount(strata[val], minlength=3).tolist() == [2, 1, 0]  # 2.1, 0.6, 0.3
    assert np.intersect1d(train, val).size == 0


# --------------------------------------------------------------------------
# class labels
# --------------------------------------------------------------------------

def test_string_labels(iris, tmp_path):
    X, y = iris
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    model = _classifier()
    model.fit(X, names, epochs=40, batch_size=16, optimizer=fn.optim.Adam(lr=0.02))
    np.testing.assert_array_equal(model.classes_, ["setosa", "versicolor", "virginica"])
    pred = model.predict(X)
    assert pred.dtype.kind == "U" and np.mean(pred == names) > 0.9
    # a subset of the classes is fine; a label that is not a class is refused
    assert model.evaluate(X[:50], names[:50])["accuracy"] > 0.9
    with pytest.raises(ValueError, match=r"not trained on: \['rose'\]"):
        model.evaluate(X[:2], ["setosa", "rose"])
    # saved and loaded as a unicode array, without pickle
    model.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as data:
        assert data["classes"].dtype.kind == "U"
    loaded = fn.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.classes_, model.classes_)
    np.testing.assert_array_equal(loaded.predict(X), pred)


def test_integer_labels_other_than_unit_indices(iris):
    X, y = iris
    labels = np.array([10, 20, 30])[y]
    model = _classifier()
    model.fit(X, labels, epochs=30, batch_size=16, optimizer=fn.optim.Adam(lr=0.02))
    np.testing.assert_array_equal(model.classes_, [10, 20, 30])
    assert set(np.unique(model.predict(X))) <= {10, 20, 30}
    assert np.mean(model.predict(X) == labels) > 0.85
    # a later fit on a subset of the labels continues with the same classes
    model.fit(X[:100], labels[:100], epochs=1)
    np.testing.assert_array_equal(model.classes_, [10, 20, 30])
    with pytest.raises(ValueError, match=r"not trained on: \[40\]"):
        model.fit(X[:3], [10, 20, 40])


def test_unit_indices_stay_the_classes_even_when_one_is_absent(iris):
    X, y = iris
    model = _classifier()
    model.fit(X[:100], y[:100], epochs=1)  # classes 0 and 1 only
    np.testing.assert_array_equal(model.classes_, [0, 1, 2])


def test_boolean_and_string_labels_for_a_sigmoid_output():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 3))
    flag = X[:, 0] + X[:, 1] > 0
    for labels, classes in ((flag, [False, True]), (np.where(flag, "yes", "no"), ["no", "yes"])):
        model = fn.Sequential([fn.Dense(1, activation="sigmoid")], input_dim=3, seed=0)
        model.fit(X, labels, epochs=40, optimizer=fn.optim.Adam(lr=0.05))
        np.testing.assert_array_equal(model.classes_, classes)
        pred = model.predict(X)
        assert pred.dtype == np.asarray(classes).dtype
        assert np.mean(pred == labels) > 0.9


def test_labels_that_cannot_be_classes_are_refused(iris):
    X, y = iris
    with pytest.raises(ValueError, match=r"has 2 distinct labels \['a', 'b'\], but the output "
                                         r"layer stands for 3 classes"):
        _classifier().fit(X, np.where(y > 0, "a", "b"))
    with pytest.raises(TypeError, match="holds Python objects"):
        _classifier().fit(X, np.array([None] * 150, dtype=object))


# --------------------------------------------------------------------------
# sample and class weights
# --------------------------------------------------------------------------

def _full_batch_sgd_fit(X, y, **kw):
    model = _classifier(seed=2)
    model.fit(X, y, optimizer=fn.optim.SGD(lr=0.5), batch_size=X.shape[0], shuffle=False,
              epochs=5, l2=0.1, **kw)
    return model


def test_integer_sample_weights_equal_repeated_rows(iris):
    """One full batch: the weighted mean loss (and its L2 term over the
    weight sum) is that of the data with each row repeated w times."""
    X, y = iris
    w = np.random.default_rng(0).integers(0, 4, 150)
    weighted = _full_batch_sgd_fit(X, y, sample_weight=w)
    repeated = _full_batch_sgd_fit(np.repeat(X, w, axis=0), np.repeat(y, w))
    np.testing.assert_allclose(weighted.get_params_flat(), repeated.get_params_flat(),
                               rtol=0, atol=1e-12)
    np.testing.assert_allclose(weighted.history_["loss"], repeated.history_["loss"],
                               rtol=1e-12)
    plain = _full_batch_sgd_fit(X, y)
    assert not np.allclose(plain.get_params_flat(), weighted.get_params_flat(), atol=1e-3)


def test_class_weight_is_a_per_class_sample_weight(iris):
    X, y = iris
    by_class = _full_batch_sgd_fit(X, y, class_weight={0: 2.0, 2: 0.5})
    by_row = _full_batch_sgd_fit(X, y, sample_weight=np.array([2.0, 1.0, 0.5])[y])
    np.testing.assert_array_equal(by_class.get_params_flat(), by_row.get_params_flat())
    # and multiplies sample weights
    sw = np.linspace(0.5, 1.5, 150)
    both = _full_batch_sgd_fit(X, y, sample_weight=sw, class_weight={1: 3.0})
    rows = _full_batch_sgd_fit(X, y, sample_weight=sw * np.array([1.0, 3.0, 1.0])[y])
    np.testing.assert_allclose(both.get_params_flat(), rows.get_params_flat(), rtol=1e-15,
                               atol=1e-15)


def test_balanced_class_weight_is_scikit_learns(iris):
    from sklearn.utils.class_weight import compute_class_weight
    from fastnn._fit_data import class_weights
    X, y = iris
    y = y[:130]  # 50, 50, 30
    ours = class_weights("balanced", np.arange(3), y)
    np.testing.assert_allclose(ours, compute_class_weight("balanced", classes=np.arange(3), y=y))
    # a class absent from the training rows: the others are balanced among themselves
    part = class_weights("balanced", np.arange(3), y[:80])  # 50, 30, 0
    np.testing.assert_allclose(part[:2], compute_class_weight("balanced", classes=np.arange(2),
                                                              y=y[:80]))
    a = _full_batch_sgd_fit(X[:130], y, class_weight="balanced")
    b = _full_batch_sgd_fit(X[:130], y, sample_weight=ours[y])
    np.testing.assert_allclose(a.get_params_flat(), b.get_params_flat(), rtol=0, atol=1e-15)


def test_class_weights_with_string_labels(iris):
    X, y = iris
    names = np.array(["a", "b", "c"])[y]
    a = _full_batch_sgd_fit(X, names, class_weight={"c": 4.0})
    b = _full_batch_sgd_fit(X, y, class_weight={2: 4.0})
    np.testing.assert_array_equal(a.get_params_flat(), b.get_params_flat())
    with pytest.raises(ValueError, match=r"class_weight has labels the model was not trained "
                                         r"on: \['d'\]"):
        _classifier().fit(X, names, class_weight={"d": 1.0})


def test_a_batch_of_zero_weights_takes_no_step(iris):
    X, y = iris
    w = np.ones(150)
    w[:30] = 0.0  # with batches of 30 in order: the first batch weighs nothing
    model = _classifier()
    h = model.fit(X, y, sample_weight=w, batch_size=30, shuffle=False, epochs=2,
                  optimizer=fn.optim.SGD(lr=0.1))
    assert model.t_ == 2 * 4  # 4 of 5 batches per epoch took a step
    same = _classifier()
    h2 = same.fit(X[30:], y[30:], batch_size=30, shuffle=False, epochs=2,
                  optimizer=fn.optim.SGD(lr=0.1))
    np.testing.assert_allclose(model.get_params_flat(), same.get_params_flat(), rtol=0,
                               atol=1e-15)
    # the epoch's loss is the weighted mean: the empty batch does not count
    np.testing.assert_allclose(h["loss"], h2["loss"], rtol=1e-14)


@pytest.mark.parametrize("backend", ["fast", "reference"])
def test_a_schedule_counts_the_steps_taken_not_the_batches(iris, backend):
    # batches 1 and 3 of each epoch weigh nothing and take no step: the schedule,
    # a function of the optimizer step, gives every later batch the rate of the
    # step it takes, as in a fit of the other rows alone; the logged rate is the
    # last step's
    X, y = iris
    w = np.ones(150)
    w[30:60] = w[90:120] = 0.0
    schedule = fn.schedules.StepDecay(0.2, 1, 0.5)  # halves at every step
    model = _classifier()
    h = model.fit(X, y, sample_weight=w, batch_size=30, shuffle=False, epochs=2,
                  optimizer=fn.optim.SGD(lr=schedule), backend=backend)
    keep = w > 0
    same = _classifier()
    h2 = same.fit(X[keep], y[keep], batch_size=30, shuffle=False, epochs=2,
                  optimizer=fn.optim.SGD(lr=fn.schedules.StepDecay(0.2, 1, 0.5)),
                  backend=backend)
    assert model.t_ == same.t_ == 6
    np.testing.assert_allclose(model.get_params_flat(), same.get_params_flat(), rtol=0,
                               atol=1e-15)
    assert h["lr"] == h2["lr"] == [0.2 * 0.5 ** 2, 0.2 * 0.5 ** 5]


def test_evaluate_and_validation_are_weighted(iris):
    X, y = iris
    model = _classifier()
    w = np.random.default_rng(1).uniform(0.0, 2.0, 150)
    h = model.fit(X, y, sample_weight=w, validation_split=0.2, epochs=3)
    rows = h.validation_rows
    scores = model.evaluate(X[rows], y[rows], sample_weight=w[rows])
    assert (h["val_loss"][-1], h["val_accuracy"][-1]) == (scores["loss"], scores["accuracy"])
    correct = model.predict(X[rows]) == y[rows]
    np.testing.assert_allclose(scores["accuracy"], np.average(correct, weights=w[rows]))
    assert scores != model.evaluate(X[rows], y[rows])


def test_weighted_regression_metrics():
    from sklearn.metrics import mean_squared_error, r2_score
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 2))
    t = np.stack([X[:, 0] + 0.3 * rng.standard_normal(60), X[:, 1] * 2.0], axis=1)
    w = rng.uniform(0.0, 3.0, 60)
    model = fn.Sequential([fn.Dense(2, activation="identity")], input_dim=2, seed=0,
                          dtype="float64")
    model.fit(X, t, epochs=5)
    scores = model.evaluate(X, t, sample_weight=w)
    pred = model.predict(X)
    np.testing.assert_allclose(scores["mse"], mean_squared_error(t, pred, sample_weight=w))
    np.testing.assert_allclose(scores["r2"], r2_score(t, pred, sample_weight=w,
                                                      multioutput="variance_weighted"))


@pytest.mark.parametrize("kw, exc, pattern", [
    (dict(sample_weight=-np.ones(150)), ValueError, r"sample_weight must be >= 0"),
    (dict(sample_weight=np.ones(149)), ValueError, r"sample_weight must have shape \(150,\)"),
    (dict(sample_weight=np.zeros(150)), ValueError, r"every training sample has weight 0"),
    (dict(class_weight="uniform"), ValueError, r"class_weight must be a dict .* or 'balanced'"),
    (dict(class_weight={0: -1.0}), ValueError, r"class_weight\[0\] must be a finite number"),
    (dict(class_weight={7: 1.0}), ValueError, r"class_weight has labels the model was not"),
    (dict(sample_weight=np.ones(150), loss=fn.losses.CrossEntropy(center_loss=0.1)),
     ValueError, r"the center loss is not weighted"),
])
def test_bad_weights_are_refused_before_anything_changes(iris, kw, exc, pattern):
    X, y = iris
    model = _classifier()
    before = model.get_params_flat()
    with pytest.raises(exc, match=pattern):
        model.fit(X, y, **kw)
    np.testing.assert_array_equal(model.get_params_flat(), before)
    assert model.t_ == 0 and model.classes_ is None


@pytest.mark.parametrize("kw, where", [
    (dict(validation_data="zero weights"), r"\(sample_weight_val\)"),
    (dict(validation_split=0.2, validation_rows="last",
          sample_weight=np.r_[np.ones(40), np.zeros(10)]),
     r"\(the rows validation_split holds out\)"),
])
def test_validation_rows_that_all_weigh_nothing_are_refused_before_anything_changes(kw,
                                                                                   where):
    # the first epoch would train, then its validation divide by a zero weight sum
    rng = np.random.default_rng(3)
    X = rng.standard_normal((50, 3))
    y = X @ np.array([1.0, -2.0, 0.5])
    if kw.get("validation_data") == "zero weights":
        kw = dict(validation_data=(X[:7], y[:7], np.zeros(7)))
    model = fn.Sequential([fn.Dense(4, activation="tanh"), fn.Dense(1)], input_dim=3, seed=0,
                          dtype="float64")
    model.fit(X, y, epochs=2, batch_size=10)
    before, history = model.get_params_flat(), model.history_
    with pytest.raises(ValueError, match="every validation sample has weight 0 " + where):
        model.fit(X, y, epochs=3, batch_size=10, **kw)
    np.testing.assert_array_equal(model.get_params_flat(), before)
    assert model.t_ == 10 and model.epochs_trained_ == 2 and model.history_ is history


def test_class_weight_needs_class_labels():
    X = np.ones((4, 2))
    model = fn.Sequential([fn.Dense(1, activation="identity")], input_dim=2)
    with pytest.raises(ValueError, match="class_weight needs class labels"):
        model.fit(X, [0.5, 1.0, 2.0, 3.0], class_weight="balanced")


@pytest.mark.parametrize("units, y_shape, expected", [
    (2, (30,), r"y must have shape \(30, 2\) for an output layer of 2 units, got \(30,\)"),
    (2, (30, 3), r"y must have shape \(30, 2\) for an output layer of 2 units, got \(30, 3\)"),
    (1, (30, 2), r"y must have shape \(30,\) or \(30, 1\) for an output layer of 1 unit, "
                 r"got \(30, 2\)"),
    (3, (30, 1), r"y must have shape \(30, 3\) for an output layer of 3 units, got \(30, 1\)"),
])
def test_a_regression_target_of_the_wrong_shape_names_the_shapes_that_fit(units, y_shape,
                                                                          expected):
    # a 1-d target fits one output unit only, so it is offered only then
    model = fn.Sequential([fn.Dense(units)], input_dim=3)
    with pytest.raises(ValueError, match=expected):
        model.fit(np.zeros((30, 3)), np.zeros(y_shape), loss="mse", epochs=1)
    model.build(3)
    with pytest.raises(ValueError, match=expected):
        model.evaluate(np.zeros((30, 3)), np.zeros(y_shape))


# --------------------------------------------------------------------------
# the default batch size on small data
# --------------------------------------------------------------------------

def test_the_default_batch_size_is_clipped_on_small_data(iris):
    X, y = iris
    model = _classifier()
    with pytest.warns(UserWarning, match="default batch_size=32 is larger than the 20 "
                                         "training samples; using batch_size=20"):
        model.fit(X[::7][:20], y[::7][:20], epochs=2)
    assert model.t_ == 2  # one batch of 20 per epoch
    with pytest.raises(ValueError, match="batch_size=64 is larger than the 20 training"):
        model.fit(X[::7][:20], y[::7][:20], batch_size=64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit(X, y, epochs=1)  # no warning when the data holds a default batch
