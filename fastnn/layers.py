"""Layer descriptions for :class:`fastnn.Sequential`: what to build, not the
arrays (those live in the model's flat parameter arena; a built Dense layer
reaches its own through views into it)."""

import numpy as np

from fastnn._validation import check_in_dtype, check_int, check_scalar
from fastnn.activations import Activation, get_activation
from fastnn.initializers import check_initializer, default_initializer


class Dense:
    """A fully connected layer: A = g(X @ W + b).

    Parameters
    ----------
    units : int
        Number of output units (n_out).
    activation : str or fastnn.activations.Activation, default "relu"
        identity, sigmoid, tanh, relu, leaky_relu, softplus, softmax or exp;
        an object such as ``LeakyReLU(alpha=0.1)`` carries parameters.
    init : str or None
        Weight initializer (see fastnn.initializers); None picks he for
        relu/leaky_relu and glorot otherwise.

    Once its model is built, ``W`` (n_in, n_out) and ``b`` (n_out,) are views
    into the model's parameter arena: reading them shows the current weights,
    writing into them (``layer.W[...] = ...``) or assigning them
    (``layer.W = ...``, shape and dtype checked) changes the model.
    ``get_weights()`` returns copies, ``set_weights([W, b])`` assigns both.
    """

    def __init__(self, units, activation="relu", init=None):
        self.units = check_int(units, "units", low=1)
        self.activation = get_activation(activation)
        self.init = check_initializer(init) if init is not None \
            else default_initializer(self.activation.name)
        self._arena, self._index = None, None

    def _bind(self, arena, index):
        """Called by the model that builds this layer: its arrays are arena.W[index], .b[index]."""
        self._arena, self._index = arena, index

    def _views(self):
        if self._arena is None:
            raise RuntimeError("the layer has no weights yet: its model is not built (give "
                               "input_dim, call build or fit)")
        return self._arena.W[self._index], self._arena.b[self._index]

    @property
    def W(self):
        """The weight matrix (n_in, n_out): a view into the model's parameters."""
        return self._views()[0]

    @W.setter
    def W(self, value):
        _assign(self._views()[0], value, "W")

    @property
    def b(self):
        """The bias vector (n_out,): a view into the model's parameters."""
        return self._views()[1]

    @b.setter
    def b(self, value):
        _assign(self._views()[1], value, "b")

    def get_weights(self):
        """[W, b] as copies."""
        W, b = self._views()
        return [W.copy(), b.copy()]

    def set_weights(self, weights):
        """Assign [W, b] (shapes and dtype checked; nothing changes unless both pass)."""
        if not isinstance(weights, (list, tuple)) or len(weights) != 2:
            raise ValueError("set_weights takes a pair [W, b]")
        W, b = self._views()
        new_W, new_b = _checked(W, weights[0], "W"), _checked(b, weights[1], "b")
        W[...], b[...] = new_W, new_b

    def get_config(self):
        return {"type": "Dense", "units": self.units, "activation": self.activation.name,
                "alpha": self.activation.alpha, "init": self.init}

    def __repr__(self):
        return "Dense(%d, activation=%r, init=%r)" % (self.units, self.activation, self.init)


def _checked(target, value, name):
    """value as an array that may be written into target: the same shape,
    finite, of the model's float dtype (integers are converted; the other
    float precision is refused, as fastnn's kernels refuse it)."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf":
        raise TypeError("%s must be numeric, got dtype %s" % (name, arr.dtype))
    if arr.dtype.kind == "f" and arr.dtype != target.dtype:
        raise TypeError("%s has dtype %s but the model is %s; convert it with .astype(np.%s)"
                        % (name, arr.dtype, target.dtype, target.dtype))
    if arr.shape != target.shape:
        raise ValueError("%s must have shape %s, got %s" % (name, target.shape, arr.shape))
    if not np.all(np.isfinite(arr)):
        raise ValueError("%s contains NaN or infinity" % name)
    return arr


def _assign(target, value, name):
    target[...] = _checked(target, value, name)


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


def check_slopes(dense_layers, dtype):
    """Raise ValueError when a LeakyReLU slope would round to infinity in the
    model's dtype (its kernels take it in that precision: 1e308 is a float64
    but infinite as a float32, and every prediction would be NaN)."""
    for i, layer in enumerate(dense_layers):
        if layer.activation.name == "leaky_relu":
            check_in_dtype(layer.activation.alpha, "the LeakyReLU slope alpha of Dense layer "
                           "%d" % i, dtype)


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
