"""Weight initialization (spec section 2). Biases start at zero.

| name | W ~ |
|---|---|
| zeros | 0 (every unit of a layer stays identical: the symmetry problem) |
| normal | N(0, 1) (signals vanish or explode in deep networks) |
| xavier | N(0, 1) * sqrt(1 / n_in)  (LeCun; tanh) |
| he | N(0, 1) * sqrt(2 / n_in)  (relu, leaky_relu) |
| glorot | N(0, 1) * sqrt(2 / (n_in + n_out))  (tanh, sigmoid) |
| xavier_uniform, he_uniform, glorot_uniform | U(-r, r) with the same variance, r = sqrt(3) * std |
"""

import warnings

import numpy as np

INITIALIZERS = ("zeros", "normal", "xavier", "he", "glorot",
                "xavier_uniform", "he_uniform", "glorot_uniform")


def default_initializer(activation_name):
    """he for relu and leaky_relu, glorot otherwise."""
    return "he" if activation_name in ("relu", "leaky_relu") else "glorot"


def init_std(name, n_in, n_out):
    """The standard deviation an initializer gives the weights."""
    base = name.replace("_uniform", "")
    if base == "zeros":
        return 0.0
    if base == "normal":
        return 1.0
    if base == "xavier":
        return np.sqrt(1.0 / n_in)
    if base == "he":
        return np.sqrt(2.0 / n_in)
    return np.sqrt(2.0 / (n_in + n_out))  # glorot


def check_initializer(name):
    if not isinstance(name, str) or name not in INITIALIZERS:
        raise ValueError("unknown initializer %r; valid initializers are: %s"
                         % (name, ", ".join(INITIALIZERS)))
    return name


def initialize_weights(name, n_in, n_out, rng, dtype):
    """A (n_in, n_out) weight matrix drawn from `rng` (a numpy Generator)."""
    check_initializer(name)
    if name == "zeros":
        warnings.warn("zero initialization makes every unit of a layer compute the same "
                      "function and receive the same gradient, so they never differ "
                      "(the symmetry problem); use it only to demonstrate that",
                      UserWarning, stacklevel=3)
        return np.zeros((n_in, n_out), dtype=dtype)
    std = init_std(name, n_in, n_out)
    if name.endswith("_uniform"):
        r = np.sqrt(3.0) * std
        w = rng.uniform(-r, r, size=(n_in, n_out))
    else:
        w = rng.standard_normal((n_in, n_out)) * std
    return w.astype(dtype)
