"""Activation names, their kernel ids, and their parameters (spec section 3)."""

from fastnn._validation import check_scalar

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
    if not isinstance(name, str):
        raise TypeError("activation must be a string, one of %s; got %r"
                        % (", ".join(ACTIVATIONS), name))
    if name not in ACTIVATION_IDS:
        raise ValueError("unknown activation %r; valid activations are: %s"
                         % (name, ", ".join(ACTIVATIONS)))
    return ACTIVATION_IDS[name]


def check_alpha(alpha):
    """leaky_relu's slope for negative inputs must be a finite number >= 0."""
    return check_scalar(alpha, "alpha (the leaky_relu slope)", low=0.0)
