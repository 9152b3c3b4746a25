"""Activation names, their kernel ids, and their parameters (spec section 3)."""

DEFAULT_LEAKY_ALPHA = 0.01

# Ids shared with the C kernels (src_c/fnn.h, FNN_ACT_*).
ACTIVATION_IDS = {
    "identity": 0,
    "sigmoid": 1,
    "tanh": 2,
    "relu": 3,
    "leaky_relu": 4,
    "softplus": 5,
    "softmax": 6,
}
ACTIVATIONS = tuple(ACTIVATION_IDS)


def activation_id(name):
    """The kernel id of an activation name; unknown names raise a ValueError listing the valid ones."""
    if not isinstance(name, str) or name not in ACTIVATION_IDS:
        raise ValueError("unknown activation %r; valid activations are: %s"
                         % (name, ", ".join(ACTIVATIONS)))
    return ACTIVATION_IDS[name]


def check_alpha(alpha):
    """leaky_relu's slope for negative inputs must be a finite number >= 0."""
    alpha = float(alpha)
    if not (alpha >= 0.0 and alpha < float("inf")):
        raise ValueError("leaky_relu alpha must be a finite number >= 0, got %r" % alpha)
    return alpha
