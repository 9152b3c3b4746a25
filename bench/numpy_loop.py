"""A plain NumPy training loop for a multilayer perceptron: the "NumPy" peer of
bench/compare.py and bench/sweep.py.

It is written the way a user writes one: per mini-batch, gather the shuffled
rows, forward with ``A @ W + b`` and the activation, the gradient of the fused
output and loss (softmax + cross-entropy, sigmoid + binary cross-entropy, or
identity + MSE), backward with matrix products, then the optimizer update in
place. Everything stays in the data's dtype: hyperparameters enter as Python
floats, which NumPy 2 does not let promote a float32 array, so a float32 run
does no float64 work. Like fastnn and every other peer it never forms the
gradient with respect to the input data, and it does not compute the loss
value (only its gradient).

The loss follows fastnn's definitions: mean cross-entropy over the batch, and
MSE as J = 1/(2m) sum (a - y)^2, so dJ/dz = (a - y) / m for every loss.
"""

import numpy as np

LEAKY_ALPHA = 0.01


def _sigmoid(z):
    # the tanh form cannot overflow, unlike 1 / (1 + exp(-z)) for large -z
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def activate(name, z):
    """The activation of pre-activation z."""
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "leaky_relu":
        return np.where(z > 0, z, LEAKY_ALPHA * z)
    if name == "tanh":
        return np.tanh(z)
    if name == "sigmoid":
        return _sigmoid(z)
    if name == "softplus":
        return np.logaddexp(0.0, z)
    raise ValueError("unknown activation %r" % (name,))


def activation_backward(name, z, a, da):
    """dL/dz from dL/da, for a = activation(z)."""
    if name == "relu":
        return da * (z > 0)
    if name == "leaky_relu":
        return np.where(z > 0, da, LEAKY_ALPHA * da)
    if name == "tanh":
        return da * (1.0 - a * a)
    if name == "sigmoid":
        return da * a * (1.0 - a)
    if name == "softplus":
        return da * _sigmoid(z)
    raise ValueError("unknown activation %r" % (name,))


def output_gradient(loss, z, y):
    """dJ/dz of the mean loss over the batch, for the output pre-activation z."""
    m = z.shape[0]
    if loss == "cross_entropy":
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        p[np.arange(m), y] -= 1.0
        p *= 1.0 / m
        return p
    if loss == "binary_cross_entropy":
        return (_sigmoid(z) - y.reshape(m, -1)) * (1.0 / m)
    if loss == "mse":
        return (z - y.reshape(m, -1)) * (1.0 / m)
    raise ValueError("unknown loss %r" % (loss,))


class NumpyMLP:
    """Weights, biases and optimizer state as plain arrays of `dtype`.

    sizes : widths (input, hidden..., output); activation applies to the
    hidden layers; optimizer is "sgd", "classical_momentum", "nesterov",
    "rmsprop" or "adam", with its hyperparameters in `hyper` (momentum; beta,
    eps; beta1, beta2, eps) as fastnn names them.
    """

    def __init__(self, sizes, activation, loss, optimizer, lr, hyper, dtype="float32", seed=0):
        rng = np.random.default_rng(seed)
        dtype = np.dtype(dtype)
        self.activation, self.loss, self.optimizer, self.lr = activation, loss, optimizer, lr
        self.hyper = dict(hyper)
        self.W = [rng.standard_normal((a, b), dtype=dtype) * float(np.sqrt(2.0 / a))
                  for a, b in zip(sizes[:-1], sizes[1:])]
        self.b = [np.zeros(b, dtype=dtype) for b in sizes[1:]]
        self.params = self.W + self.b
        n_states = {"sgd": 0, "classical_momentum": 1, "nesterov": 1, "rmsprop": 1,
                    "adam": 2}[optimizer]
        self.state = [[np.zeros_like(p) for p in self.params] for _ in range(n_states)]
        self.t = 0

    def _forward(self, x):
        """Pre-activations and activations of every layer (the last one's z is the logits)."""
        zs, acts = [], [x]
        for i, (W, b) in enumerate(zip(self.W, self.b)):
            z = acts[-1] @ W + b
            zs.append(z)
            if i < len(self.W) - 1:
                acts.append(activate(self.activation, z))
        return zs, acts

    def predict_proba(self, x):
        z = self._forward(x)[0][-1]
        if self.loss == "cross_entropy":
            p = np.exp(z - z.max(axis=1, keepdims=True))
            return p / p.sum(axis=1, keepdims=True)
        return _sigmoid(z) if self.loss == "binary_cross_entropy" else z

    def gradients(self, x, y):
        """Gradients of the batch's mean loss, in the order of self.params."""
        zs, acts = self._forward(x)
        n = len(self.W)
        gW, gb = [None] * n, [None] * n
        dz = output_gradient(self.loss, zs[-1], y)
        for i in range(n - 1, -1, -1):
            gW[i] = acts[i].T @ dz
            gb[i] = dz.sum(axis=0)
            if i > 0:  # no gradient for the input data
                dz = activation_backward(self.activation, zs[i - 1], acts[i],
                                         dz @ self.W[i].T)
        return gW + gb

    def step(self, grads):
        """One optimizer update of every parameter, in place."""
        lr, h = self.lr, self.hyper
        self.t += 1
        for k, (p, g) in enumerate(zip(self.params, grads)):
            if self.optimizer == "sgd":
                p -= lr * g
            elif self.optimizer in ("classical_momentum", "nesterov"):
                v = self.state[0][k]
                v *= h["momentum"]
                v -= lr * g
                if self.optimizer == "nesterov":
                    p += h["momentum"] * v - lr * g
                else:
                    p += v
            elif self.optimizer == "rmsprop":
                s = self.state[0][k]
                s *= h["beta"]
                s += (1.0 - h["beta"]) * g * g
                p -= lr * g / (np.sqrt(s) + h["eps"])
            else:  # adam, with bias correction
                m, v = self.state[0][k], self.state[1][k]
                m *= h["beta1"]
                m += (1.0 - h["beta1"]) * g
                v *= h["beta2"]
                v += (1.0 - h["beta2"]) * g * g
                m_hat = m * (1.0 / (1.0 - h["beta1"] ** self.t))
                v_hat = v * (1.0 / (1.0 - h["beta2"] ** self.t))
                p -= lr * m_hat / (np.sqrt(v_hat) + h["eps"])

    def train_epoch(self, X, y, batch_size, rng):
        """One pass over (X, y) in shuffled mini-batches; the last one may be smaller."""
        perm = rng.permutation(len(X))
        for lo in range(0, len(X), batch_size):
            idx = perm[lo:lo + batch_size]
            self.step(self.gradients(X[idx], y[idx]))
