"""Activation names, their kernel ids, and their parameters (spec section 3)."""

from fastnn._kernels import ACTIVATION_IDS
from fastnn._validation import check_scalar

DEFAULT_LEAKY_ALPHA = 0.01
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


class Activation:
    """An activation with its parameters, for ``Dense(units, activation=...)``.

    Strings name the parameter-free ones; objects carry parameters, as
    :class:`LeakyReLU` does its slope."""

    def __init__(self, name, alpha=DEFAULT_LEAKY_ALPHA):
        activation_id(name)
        self.name = name
        self.alpha = check_alpha(alpha)

    def get_config(self):
        return {"name": self.name, "alpha": self.alpha}

    def __eq__(self, other):
        return isinstance(other, Activation) and self.get_config() == other.get_config()

    def __repr__(self):
        if self.name == "leaky_relu":
            return "LeakyReLU(alpha=%r)" % self.alpha
        return "Activation(%r)" % self.name


class LeakyReLU(Activation):
    """max(alpha z, z), with derivative 1 for z > 0 and alpha otherwise."""

    def __init__(self, alpha=DEFAULT_LEAKY_ALPHA):
        super().__init__("leaky_relu", alpha)


def get_activation(activation):
    """An Activation from a name or an Activation object."""
    if isinstance(activation, Activation):
        return activation
    activation_id(activation)
    return Activation(activation)
