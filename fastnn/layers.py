"""Layer descriptions for :class:`fastnn.Sequential`: what to build, not the
arrays (those live in the model's flat parameter arena)."""

from fastnn._validation import check_int, check_scalar
from fastnn.activations import Activation, get_activation
from fastnn.initializers import check_initializer, default_initializer


class Dense:
    """A fully connected layer: A = g(X @ W + b).

    Parameters
    ----------
    units : int
        Number of output units (n_out).
    activation : str or fastnn.activations.Activation, default "relu"
        identity, sigmoid, tanh, relu, leaky_relu, softplus or softmax; an
        object such as ``LeakyReLU(alpha=0.1)`` carries parameters.
    init : str or None
        Weight initializer (see fastnn.initializers); None picks he for
        relu/leaky_relu and glorot otherwise.
    """

    def __init__(self, units, activation="relu", init=None):
        self.units = check_int(units, "units", low=1)
        self.activation = get_activation(activation)
        self.init = check_initializer(init) if init is not None \
            else default_initializer(self.activation.name)

    def get_config(self):
        return {"type": "Dense", "units": self.units, "activation": self.activation.name,
                "alpha": self.activation.alpha, "init": self.init}

    def __repr__(self):
        return "Dense(%d, activation=%r, init=%r)" % (self.units, self.activation, self.init)


class Dropout:
    """Inverted dropout on the previous layer's output (spec section 6): during
    training each value is kept with probability 1 - rate and scaled by
    1 / (1 - rate); at inference it is the identity."""

    def __init__(self, rate):
        self.rate = check_scalar(rate, "dropout rate", low=0.0, high=1.0, high_inclusive=False)

    def get_config(self):
        return {"type": "Dropout", "rate": self.rate}

    def __repr__(self):
        return "Dropout(%r)" % self.rate


def layer_from_config(config):
    """Rebuild a layer from get_config() output (used by fastnn.load)."""
    if not isinstance(config, dict) or "type" not in config:
        raise ValueError("a layer description must be a dict with a 'type', got %r" % (config,))
    kind = config["type"]
    if kind == "Dense":
        act = Activation(config["activation"], config.get("alpha", 0.01))
        return Dense(config["units"], act, config["init"])
    if kind == "Dropout":
        return Dropout(config["rate"])
    raise ValueError("unknown layer type %r; valid types are Dense, Dropout" % (kind,))


def check_stack(layers):
    """The layers of a Sequential model as a list, checked: Dense and Dropout
    only, Dense first and last, no two Dropout layers in a row."""
    layers = list(layers)
    if not layers:
        raise ValueError("a Sequential model needs at least one Dense layer")
    for i, layer in enumerate(layers):
        if not isinstance(layer, (Dense, Dropout)):
            raise TypeError("layer %d is %r; Sequential takes fastnn.Dense and "
                            "fastnn.Dropout layers" % (i, layer))
    if not isinstance(layers[0], Dense):
        raise ValueError("the first layer must be Dense (dropout on the inputs is not "
                         "supported)")
    if not isinstance(layers[-1], Dense):
        raise ValueError("the last layer must be Dense: dropout after the output layer "
                         "would drop predictions")
    for a, b in zip(layers, layers[1:]):
        if isinstance(a, Dropout) and isinstance(b, Dropout):
            raise ValueError("two Dropout layers in a row; use one with the combined rate")
    return layers


def dense_shapes(layers, input_dim):
    """The (n_in, n_out) of every Dense layer of a stack fed input_dim features."""
    shapes, n_in = [], input_dim
    for layer in layers:
        if isinstance(layer, Dense):
            shapes.append((n_in, layer.units))
            n_in = layer.units
    return shapes
