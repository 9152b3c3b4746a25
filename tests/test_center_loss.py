"""Center loss (spec section 12) in training: it pulls each class's features
together relative to the distance between classes, without costing accuracy."""

import numpy as np
import pytest

import fastnn as fn

pytest.importorskip("sklearn")
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402


def _features(model, X):
    """The features that feed the output layer: the hidden layer's output."""
    W, b = model.weights[0]
    return fn.ops.dense_forward(X.astype(W.dtype), W, b, "relu").astype(np.float64)


def _compactness(F, y):
    """mean distance of a sample to its class mean / mean distance between class means"""
    means = np.array([F[y == c].mean(axis=0) for c in np.unique(y)])
    intra = np.mean([np.linalg.norm(F[y == c] - means[c], axis=1).mean() for c in np.unique(y)])
    diffs = means[:, None, :] - means[None, :, :]
    inter = np.linalg.norm(diffs, axis=2)[np.triu_indices(len(means), 1)].mean()
    return intra / inter


def test_center_loss_tightens_classes_on_digits():
    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    scaler = fn.Standardizer().fit(X_tr)
    X_tr, X_te = scaler.transform(X_tr), scaler.transform(X_te)
    results = {}
    for lam in (0.0, 0.1):
        model = fn.Sequential([fn.Dense(64, activation="relu"),
                               fn.Dense(10, activation="softmax")], input_dim=64, seed=0)
        model.fit(X_tr, y_tr, loss=fn.losses.CrossEntropy(center_loss=lam, center_alpha=0.5),
                  optimizer=fn.optim.Adam(lr=2e-3), batch_size=32, epochs=30)
        results[lam] = (_compactness(_features(model, X_te), y_te),
                        model.evaluate(X_te, y_te)["accuracy"])
    (plain_ratio, plain_acc), (center_ratio, center_acc) = results[0.0], results[0.1]
    assert center_ratio < 0.8 * plain_ratio, results
    assert center_acc >= plain_acc - 0.01, results


def test_center_loss_needs_a_hidden_layer_and_cross_entropy():
    X, y = np.random.default_rng(0).standard_normal((20, 3)), np.arange(20) % 2
    model = fn.Sequential([fn.Dense(2, activation="softmax")], input_dim=3)
    with pytest.raises(ValueError, match="two Dense layers"):
        model.fit(X, y, loss=fn.losses.CrossEntropy(center_loss=0.1))
    with pytest.raises(ValueError, match="center_loss"):
        fn.losses.CrossEntropy(center_loss=-1)
    with pytest.raises(ValueError, match="center_alpha"):
        fn.losses.CrossEntropy(center_alpha=2)


def test_centers_are_saved_and_training_resumes_exactly(tmp_path):
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((120, 6)), rng.integers(0, 3, 120)
    loss = fn.losses.CrossEntropy(center_loss=0.2, center_alpha=0.5)

    def model():
        return fn.Sequential([fn.Dense(8, activation="tanh"), fn.Dense(3, activation="softmax")],
                             input_dim=6, seed=4, dtype="float64")
    straight = model()
    straight.fit(X, y, loss=loss, optimizer=fn.optim.Adam(lr=0.01), epochs=4)
    first = model()
    first.fit(X, y, loss=loss, optimizer=fn.optim.Adam(lr=0.01), epochs=2)
    first.save(tmp_path / "m.npz")
    resumed = fn.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(resumed.centers_, first.centers_)
    resumed.fit(X, y, loss=loss, optimizer=None, epochs=2)
    np.testing.assert_array_equal(resumed.get_params_flat(), straight.get_params_flat())
    np.testing.assert_array_equal(resumed.centers_, straight.centers_)


def test_partial_fit_takes_the_same_center_loss_again():
    # a later call may repeat its stream's loss, also as a new object; another differs
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((40, 3)), rng.integers(0, 3, 40)
    model = fn.Sequential([fn.Dense(4, activation="tanh"), fn.Dense(3, activation="softmax")],
                          input_dim=3, seed=0)
    for lo in (0, 20):
        model.partial_fit(X[lo:lo + 20], y[lo:lo + 20], classes=[0, 1, 2], batch_size=10,
                          loss=fn.losses.CrossEntropy(center_loss=0.1))
    assert model.epochs_trained_ == 2
    with pytest.raises(ValueError, match="loss differ"):
        model.partial_fit(X[:20], y[:20], loss=fn.losses.CrossEntropy(center_loss=0.2))
