"""Small data and networks that several training tests share: three Gaussian
blobs in five dimensions and a one-hidden-layer softmax classifier for them."""

import numpy as np

import fastnn

CENTERS = np.random.default_rng(100).standard_normal((3, 5)) * 2


def blobs(seed, m):
    """m samples around three fixed centers; the seed picks the samples."""
    rng = np.random.default_rng(seed)
    centers = CENTERS
    y = rng.integers(0, len(centers), m)
    X = centers[y] + rng.standard_normal((m, centers.shape[1]))
    return X, y


def small_net(seed=0, hidden=16, n_features=5, dtype="float64", dropout=0.0):
    layers = [fastnn.Dense(hidden, activation="relu")]
    if dropout:
        layers.append(fastnn.Dropout(dropout))
    layers.append(fastnn.Dense(3, activation="softmax"))
    return fastnn.Sequential(layers, input_dim=n_features, dtype=dtype, seed=seed)
