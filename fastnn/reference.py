"""Plain NumPy twins of every fastnn kernel: the definition of correct.

Each function has the name, signature and in-place behaviour of its fast twin
in :mod:`fastnn.ops`, and is written to read like ``shared/spec.md`` (section
numbers in the docstrings). Reductions accumulate in float64; elementwise math
runs in the array's own dtype, with hyperparameters entering as Python floats so
NumPy's promotion keeps float32 arrays float32. ``n_threads`` is accepted and
ignored so both modules can be called the same way.

The tests hold :mod:`fastnn.ops` against this module; it is also usable on its
own, for instance to step through a training run in a debugger.

Each public function validates its arguments with the same function of
:mod:`fastnn._kernel_args` as its twin, so the two accept and refuse the same
inputs, then computes on the validated arrays. The training-loop functions
compose the unvalidated private forms: a diverging run must be able to carry
NaN from one layer to the next and be detected at the end, as the C loop does.
"""

import math

import numpy as np

from fastnn import _kernel_args as args
from fastnn.activations import DEFAULT_LEAKY_ALPHA

__all__ = [
    "activation_forward", "bias_activation", "activation_backward",
    "dense_forward", "dense_backward", "linear_backward", "bias_grad",
    "softmax_cross_entropy", "sigmoid_binary_cross_entropy", "mse", "poisson_loss",
    "sgd_step", "momentum_step", "classical_momentum_step", "rmsprop_step", "adam_step",
    "adam_folded_step",
    "global_norm", "clip_grad_norm", "clip_grad_value", "l2_penalty",
    "dropout_mask", "dropout_forward", "dropout_backward",
    "standardize_fit", "standardize_transform", "layer_stats", "center_loss", "center_update",
]
# the training loop's twin (fastnn._backends.FastNetwork runs it in C)
TRAINING = ["network_forward", "optimizer_update", "train_step"]

_F64 = np.float64


def _store(result, out):
    """Return result, written into out when a buffer is given."""
    if out is None:
        return result
    out[...] = result
    return out


# --------------------------------------------------------------------------
# Section 3: activations and their derivatives from the output A
# --------------------------------------------------------------------------

def _sigmoid(z):
    # sign-split form: exp never sees a large positive argument
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def _activate(z, activation, alpha):
    if activation == "identity":
        return z.copy()
    if activation == "sigmoid":
        return _sigmoid(z)
    if activation == "tanh":
        return np.tanh(z)
    if activation == "relu":
        return np.where(z > 0, z, z.dtype.type(0))
    if activation == "leaky_relu":
        return np.where(z > 0, z, z.dtype.type(alpha) * z)
    if activation == "softplus":
        return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))
    if activation == "exp":
        with np.errstate(over="ignore"):  # exp overflows to inf, as the kernel's does
            return np.exp(z)
    # softmax, row-wise, max-subtracted; normalizer summed in float64
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True, dtype=_F64)).astype(z.dtype)


def activation_forward(Z, activation, alpha=DEFAULT_LEAKY_ALPHA, *, out=None, n_threads=None):
    """A = g(Z) (spec section 3)."""
    return bias_activation(Z, None, activation, alpha, out=out, n_threads=n_threads)


def bias_activation(Z, b, activation, alpha=DEFAULT_LEAKY_ALPHA, *, out=None, n_threads=None):
    """A = g(Z + b): the epilogue of a dense layer's matrix product; b may be None."""
    Z, b, _, alpha, out, _ = args.bias_activation(Z, b, activation, alpha, out, n_threads)
    return _store(_activate(Z if b is None else Z + b, activation, alpha), out)


def activation_backward(A, dA, activation, alpha=DEFAULT_LEAKY_ALPHA, *, out=None,
                        n_threads=None):
    """dZ = dA * g'(Z), with g' written in terms of the output A (spec section 3)."""
    A, dA, _, alpha, out, _ = args.activation_backward(A, dA, activation, alpha, out, n_threads)
    return _store(_activation_backward(A, dA, activation, alpha), out)


def _activation_backward(A, dA, activation, alpha):
    one = A.dtype.type(1)
    if activation == "identity":
        dZ = dA.copy()
    elif activation == "sigmoid":
        dZ = dA * (A * (one - A))
    elif activation == "tanh":
        dZ = dA * (one - A * A)
    elif activation == "relu":
        dZ = np.where(A > 0, dA, A.dtype.type(0))
    elif activation == "leaky_relu":
        dZ = np.where(A > 0, dA, dA * A.dtype.type(alpha))
    elif activation == "softplus":
        # g'(z) = sigmoid(z) = 1 - exp(-a)
        dZ = dA * (-np.expm1(-A))
    elif activation == "exp":
        # g'(z) = exp(z) = a
        dZ = dA * A
    else:
        # softmax: dz_j = a_j (da_j - sum_k da_k a_k)
        dot = np.sum(dA.astype(_F64) * A.astype(_F64), axis=1, keepdims=True)
        dZ = A * (dA.astype(_F64) - dot).astype(A.dtype)
    return dZ


# --------------------------------------------------------------------------
# Dense layer: Z = X @ W + b, A = g(Z)
# --------------------------------------------------------------------------

def dense_forward(X, W, b, activation, alpha=DEFAULT_LEAKY_ALPHA, *, out=None, n_threads=None):
    """A = g(X @ W + b); b may be None."""
    X, W, b, _, alpha, out, _ = args.dense_forward(X, W, b, activation, alpha, out, n_threads)
    return _store(_dense_forward(X, W, b, activation, alpha), out)


def _dense_forward(X, W, b, activation, alpha):
    Z = X @ W
    if b is not None:
        Z = Z + b
    return _activate(Z, activation, alpha)


def bias_grad(dZ, *, out=None, n_threads=None):
    """db = column sums of dZ, accumulated in float64."""
    dZ, out, _ = args.bias_grad(dZ, out, n_threads)
    return _store(_bias_grad(dZ), out)


def _bias_grad(dZ):
    return dZ.sum(axis=0, dtype=_F64).astype(dZ.dtype)


def linear_backward(X, W, dZ, need_dX=True, l2=0.0, *, out_dX=None, out_dW=None,
                    out_db=None, n_threads=None):
    """Gradients of Z = X @ W + b given dZ: (dX or None, dW, db).

    dW = X^T dZ + l2 * W, where l2 is the spec's lambda / m (section 5)."""
    X, W, dZ, need_dX, l2, out_dX, out_dW, out_db, _ = args.linear_backward(
        X, W, dZ, need_dX, l2, out_dX, out_dW, out_db, n_threads)
    return _linear_backward(X, W, dZ, need_dX, l2, out_dX, out_dW, out_db)


def _linear_backward(X, W, dZ, need_dX, l2, out_dX, out_dW, out_db):
    dW = X.T @ dZ
    if l2 != 0.0:
        dW = dW + l2 * W
    dX = dZ @ W.T if need_dX else None
    return (_store(dX, out_dX) if need_dX else None, _store(dW, out_dW),
            _store(_bias_grad(dZ), out_db))


def dense_backward(X, W, A, dA, activation, need_dX=True, alpha=DEFAULT_LEAKY_ALPHA, l2=0.0,
                   *, out_dX=None, out_dW=None, out_db=None, out_dZ=None, n_threads=None):
    """Backward pass of A = g(X @ W + b) given dA: (dX or None, dW, db)."""
    (X, W, A, dA, _, need_dX, alpha, l2, out_dX, out_dW, out_db, out_dZ,
     _) = args.dense_backward(X, W, A, dA, activation, need_dX, alpha, l2, out_dX, out_dW,
                              out_db, out_dZ, n_threads)
    return _dense_backward(X, W, A, dA, activation, need_dX, alpha, l2, out_dX, out_dW,
                           out_db, out_dZ)


def _dense_backward(X, W, A, dA, activation, need_dX, alpha, l2, out_dX=None, out_dW=None,
                    out_db=None, out_dZ=None):
    dZ = _store(_activation_backward(A, dA, activation, alpha), out_dZ)
    return _linear_backward(X, W, dZ, need_dX, l2, out_dX, out_dW, out_db)


# --------------------------------------------------------------------------
# Section 4: losses, each with the gradient it feeds the backward pass
# --------------------------------------------------------------------------

def _row_weights(sw, m):
    """(w as a float64 column, the mean's denominator): rows, or the weights' sum."""
    if sw is None:
        return np.ones((m, 1)), float(m)
    w = np.asarray(sw, dtype=_F64).reshape(m, 1)
    return w, float(np.sum(w))


def softmax_cross_entropy(Z, y, *, sample_weight=None, out=None, n_threads=None):
    """Softmax + categorical cross-entropy: (loss, dZ).

    y is either integer labels of shape (m,) or targets of shape (m, k), one-hot
    or probabilities. loss = 1/m sum_i sum_j y_ij (logsumexp(z_i) - z_ij);
    dZ = (P * sum_j y_ij - Y) / m, which is (P - Y) / m for one-hot rows. With
    sample weights w the loss is sum_i w_i l_i / sum_i w_i and row i of dZ is
    scaled by w_i m / sum_i w_i."""
    Z, labels, Y, sw, out, _ = args.softmax_cross_entropy(Z, y, sample_weight, out, n_threads)
    loss, dZ = _softmax_cross_entropy(Z, Y if labels is None else labels, sw)
    return loss, _store(dZ, out)


def _softmax_cross_entropy(Z, y, sw=None):
    m, k = Z.shape
    w, denom = _row_weights(sw, m)
    if y.ndim == 1:
        Y = np.zeros((m, k), dtype=_F64)
        Y[np.arange(m), y.astype(np.int64)] = 1.0
    else:
        Y = y.astype(_F64)
    e = np.exp(Z - Z.max(axis=1, keepdims=True))
    s = e.sum(axis=1, keepdims=True, dtype=_F64)
    lse = Z.max(axis=1, keepdims=True).astype(_F64) + np.log(s)
    ysum = Y.sum(axis=1, keepdims=True)
    # a class with no target mass adds nothing, even at a logit of -inf (0 * -inf is NaN)
    with np.errstate(invalid="ignore"):
        yz = np.where(Y != 0, Y * Z.astype(_F64), 0.0)
    rows = ysum * lse - np.sum(yz, axis=1, keepdims=True)
    loss = float(np.sum(w * rows) / denom)
    P = e / s
    return loss, ((P * ysum - Y) * (w / denom)).astype(Z.dtype)


def sigmoid_binary_cross_entropy(Z, y, *, sample_weight=None, out=None, n_threads=None):
    """Sigmoid + binary cross-entropy: (loss, dZ).

    J = -1/m sum [y ln a + (1 - y) ln(1 - a)], computed from z as
    max(z, 0) - z y + ln(1 + e^-|z|); dZ = (sigmoid(z) - y) / m. y has Z's shape,
    or shape (m,) when Z is (m, 1). Sample weights as for softmax_cross_entropy."""
    Z, Y, sw, out, _ = args.sigmoid_binary_cross_entropy(Z, y, sample_weight, out, n_threads)
    loss, dZ = _sigmoid_binary_cross_entropy(Z, Y, sw)
    return loss, _store(dZ, out)


def _sigmoid_binary_cross_entropy(Z, y, sw=None):
    w, denom = _row_weights(sw, Z.shape[0])
    z = Z.astype(_F64)
    Y = np.asarray(y, dtype=_F64).reshape(Z.shape)
    e = np.exp(-np.abs(z))
    loss = float(np.sum(w * (np.maximum(z, 0) - z * Y + np.log1p(e))) / denom)
    p = np.where(z >= 0, 1 / (1 + e), e / (1 + e))
    return loss, ((p - Y) * (w / denom)).astype(Z.dtype)


def mse(A, Y, *, sample_weight=None, out=None, n_threads=None):
    """Quadratic cost: (J, dA) with J = 1/(2m) sum (a - y)^2 and dA = (A - Y) / m.
    Y has A's shape, or shape (m,) when A is (m, 1). Sample weights as for
    softmax_cross_entropy."""
    A, Y, sw, out, _ = args.mse(A, Y, sample_weight, out, n_threads)
    loss, dA = _mse(A, Y, sw)
    return loss, _store(dA, out)


def _mse(A, Y, sw=None):
    w, denom = _row_weights(sw, A.shape[0])
    d = A.astype(_F64) - np.asarray(Y, dtype=_F64).reshape(A.shape)
    loss = float(np.sum(w * (d * d)) / denom * 0.5)
    return loss, (d * (w / denom)).astype(A.dtype)


def poisson_loss(Z, Y, *, sample_weight=None, out=None, n_threads=None):
    """exp + half Poisson deviance (Poisson regression, log link): (loss, dZ).

    With mu = exp(z): loss = 1/m sum_ij [y log(y / mu) - y + mu], y log y
    taken as 0 at y = 0; dZ = (mu - Y) / m. Y (counts >= 0) has Z's shape, or
    shape (m,) when Z is (m, 1). Sample weights as for softmax_cross_entropy."""
    Z, Y, sw, out, _ = args.poisson_loss(Z, Y, sample_weight, out, n_threads)
    loss, dZ = _poisson_loss(Z, Y, sw)
    return loss, _store(dZ, out)


def _poisson_loss(Z, y, sw=None):
    w, denom = _row_weights(sw, Z.shape[0])
    z = Z.astype(_F64)
    Y = np.asarray(y, dtype=_F64).reshape(Z.shape)
    with np.errstate(over="ignore"):  # exp overflows to inf, as the kernel's does
        mu = np.exp(z)
    ylogy = np.where(Y > 0, Y * np.log(np.where(Y > 0, Y, 1.0)), 0.0)
    loss = float(np.sum(w * (ylogy - Y * z - Y + mu)) / denom)
    return loss, ((mu - Y) * (w / denom)).astype(Z.dtype)


# --------------------------------------------------------------------------
# Section 8: optimizers, in place; hyperparameters stay Python floats
# --------------------------------------------------------------------------

def sgd_step(param, grad, lr, *, n_threads=None):
    """W <- W - lr dW."""
    grad, lr, _ = args.sgd_step(param, grad, lr, n_threads)
    param -= lr * grad


def momentum_step(param, grad, velocity, lr, beta=0.9, *, n_threads=None):
    """Exponentially weighted momentum: V <- beta V + (1 - beta) dW; W <- W - lr V."""
    grad, lr, beta, _ = args.momentum_step(param, grad, velocity, lr, beta, n_threads)
    velocity[...] = beta * velocity + (1.0 - beta) * grad
    param -= lr * velocity


def classical_momentum_step(param, grad, velocity, lr, momentum=0.9, nesterov=False, *,
                            n_threads=None):
    """Classical momentum: V <- mu V - lr dW; W <- W + V.
    Nesterov (scikit-learn's form): after the same V update, W <- W + (mu V - lr dW)."""
    grad, lr, mu, nesterov, _ = args.classical_momentum_step(param, grad, velocity, lr,
                                                             momentum, nesterov, n_threads)
    velocity[...] = mu * velocity - lr * grad
    if nesterov:
        param += mu * velocity - lr * grad
    else:
        param += velocity


def rmsprop_step(param, grad, sq, lr, beta=0.9, eps=1e-8, *, n_threads=None):
    """S <- beta S + (1 - beta) dW^2; W <- W - lr (dW / (sqrt(S) + eps))."""
    grad, lr, beta, eps, _ = args.rmsprop_step(param, grad, sq, lr, beta, eps, n_threads)
    sq[...] = beta * sq + (1.0 - beta) * (grad * grad)
    param -= lr * (grad / (np.sqrt(sq) + eps))


def adam_step(param, grad, m, v, t, lr, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0,
              *, n_threads=None):
    """Adam with bias correction (t counts from 1) and decoupled weight decay:

    W <- W - (lr wd) W                      (AdamW; skipped when wd == 0)
    V <- b1 V + (1 - b1) dW;  S <- b2 S + (1 - b2) dW^2
    W <- W - lr (V / (1 - b1^t)) / (sqrt(S / (1 - b2^t)) + eps)

    The last line is evaluated as W - step (V / (sqrt(S) c + eps)) with the
    scalars step = lr / (1 - b1^t) and c = 1 / sqrt(1 - b2^t): the same value,
    one division per element, and a bounded ratio, so a gradient whose square
    overflows gives a finite step rather than inf / inf."""
    grad, t, lr, beta1, beta2, eps, weight_decay, _ = args.adam_step(
        param, grad, m, v, t, lr, beta1, beta2, eps, weight_decay, n_threads)
    if weight_decay != 0.0:
        param -= (lr * weight_decay) * param
    m[...] = beta1 * m + (1.0 - beta1) * grad
    v[...] = beta2 * v + (1.0 - beta2) * (grad * grad)
    step = lr / (1.0 - beta1 ** t)
    c = 1.0 / math.sqrt(1.0 - beta2 ** t)  # a Python float, so float32 stays float32
    param -= step * (m / (np.sqrt(v) * c + eps))


def adam_folded_step(param, grad, m, v, t, lr, beta1=0.9, beta2=0.999, eps=1e-8, *,
                     n_threads=None):
    """Adam with the bias correction folded into the step size (scikit-learn's MLP):

    V <- b1 V + (1 - b1) dW;  S <- b2 S + (1 - b2) dW^2
    W <- W + (-lr_t) (V / (sqrt(S) + eps)),  lr_t = lr sqrt(1 - b2^t) / (1 - b1^t)"""
    grad, t, lr, beta1, beta2, eps, _ = args.adam_folded_step(param, grad, m, v, t, lr, beta1,
                                                              beta2, eps, n_threads)
    lr_t = lr * np.sqrt(1.0 - beta2 ** t) / (1.0 - beta1 ** t)
    m[...] = beta1 * m + (1.0 - beta1) * grad
    v[...] = beta2 * v + (1.0 - beta2) * (grad * grad)
    param += -float(lr_t) * (m / (np.sqrt(v) + eps))


# --------------------------------------------------------------------------
# Sections 5 and 9: L2 penalty, norms and clipping
# --------------------------------------------------------------------------

def _sumsq(x):
    x = np.asarray(x).astype(_F64).ravel()
    return float(np.dot(x, x))


def global_norm(arrays, *, n_threads=None):
    """||g||: the L2 norm over all arrays together (one array counts as a list of one)."""
    arrays, _ = args.global_norm(arrays, n_threads)
    return _global_norm(arrays)


def _global_norm(arrays):
    return float(np.sqrt(sum(_sumsq(a) for a in arrays)))


def clip_grad_norm(grads, max_norm, *, n_threads=None):
    """Scale every gradient by max_norm / ||g|| when ||g|| > max_norm; return ||g||."""
    grads, max_norm, _ = args.clip_grad_norm(grads, max_norm, n_threads)
    total = _global_norm(grads)
    if total > max_norm:
        scale = max_norm / total
        for g in grads:
            g *= scale
    return total


def clip_grad_value(grads, clip_value, *, n_threads=None):
    """Clip every gradient element to [-c, c], in place."""
    grads, c, _ = args.clip_grad_value(grads, clip_value, n_threads)
    _clip_grad_value(grads, c)


def _clip_grad_value(grads, c):
    for g in grads:
        np.clip(g, -c, c, out=g)


def l2_penalty(weights, l2, m, *, n_threads=None):
    """The L2 term of the cost: lambda / (2m) * sum_l ||W[l]||_F^2 (biases excluded)."""
    weights, l2, m, _ = args.l2_penalty(weights, l2, m, n_threads)
    return _l2_penalty(weights, l2, m)


def _l2_penalty(weights, l2, m):
    return float(l2) / (2.0 * m) * sum(_sumsq(w) for w in weights)


# --------------------------------------------------------------------------
# Section 6: inverted dropout from a counter-based random stream
# --------------------------------------------------------------------------

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix64(x):
    """SplitMix64's finalizer on uint64 arrays (wrapping arithmetic)."""
    x = np.asarray(x, dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = x ^ (x >> np.uint64(30))
        x = x * np.uint64(0xBF58476D1CE4E5B9)
        x = x ^ (x >> np.uint64(27))
        x = x * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return x


def dropout_key(seed, step, layer):
    """The 64-bit key of the mask for one (seed, step, layer)."""
    k = _mix64(np.uint64(seed)) ^ np.uint64(step)
    return int(_mix64(_mix64(k) ^ np.uint64(layer)))


def dropout_mask(shape, rate, seed, step, layer, dtype=np.float64):
    """The inverted-dropout mask: 1/q where kept (probability q = 1 - rate), else 0.

    Element i (flat, row-major) keeps when the top 53 bits of
    mix64(key + (i + 1) * 0x9E3779B97F4A7C15), as a fraction of 2^53, are below q."""
    shape, (rate, seed, step, layer), dtype = args.dropout_mask(shape, rate, seed, step,
                                                                layer, dtype)
    return _dropout_mask(shape, rate, seed, step, layer, dtype)


def _dropout_mask(shape, rate, seed, step, layer, dtype):
    q = 1.0 - rate
    n = int(np.prod(shape))
    idx = np.arange(1, n + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        bits = _mix64(np.uint64(dropout_key(seed, step, layer)) + idx * _GOLDEN)
    u = (bits >> np.uint64(11)).astype(_F64) * 2.0 ** -53
    scale = dtype.type(1.0 / q)
    return np.where(u < q, scale, dtype.type(0)).reshape(shape)


def dropout_forward(A, rate, seed, step, layer, *, out=None, n_threads=None):
    """A * mask during training (spec section 6)."""
    A, stream, out, _ = args.dropout_forward(A, rate, seed, step, layer, out, n_threads)
    return _store(_dropout(A, *stream), out)


def _dropout(A, rate, seed, step, layer):
    mask = _dropout_mask(A.shape, rate, seed % 2**64, step % 2**64, layer, A.dtype)
    return np.where(mask != 0, A * mask, A.dtype.type(0))


def dropout_backward(dA, rate, seed, step, layer, *, out=None, n_threads=None):
    """dA * mask: the same mask as the forward pass of that step and layer."""
    dA, stream, out, _ = args.dropout_forward(dA, rate, seed, step, layer, out, n_threads,
                                              "dA")
    return _store(_dropout(dA, *stream), out)


# --------------------------------------------------------------------------
# Section 1: input standardization; section 10: diagnostics
# --------------------------------------------------------------------------

def standardize_fit(X, *, n_threads=None):
    """Per-column mean and population std (ddof = 0), in X's dtype.
    A constant column has std exactly 0."""
    X, _ = args.standardize_fit(X, n_threads)
    x = X.astype(_F64)
    mean = x.mean(axis=0)
    std = np.sqrt(((x - mean) ** 2).mean(axis=0))
    constant = X.min(axis=0) == X.max(axis=0)
    mean = np.where(constant, x[0], mean)
    std = np.where(constant, 0.0, std)
    return mean.astype(X.dtype), std.astype(X.dtype)


def standardize_transform(X, mean, std, *, out=None, n_threads=None):
    """(X - mean) / std, dividing by 1 where std == 0."""
    X, mean, std, out, _ = args.standardize_transform(X, mean, std, out, n_threads)
    safe = np.where(std == 0, std.dtype.type(1), std)
    return _store((X - mean) / safe, out)


def layer_stats(A, *, n_threads=None):
    """(mean, variance, dead fraction) of a layer's activations: the mean and
    population variance over all elements, and the fraction of units (columns)
    with no positive activation in the batch."""
    A, _ = args.layer_stats(A, n_threads)
    a = A.astype(_F64)
    mean = float(a.mean())
    var = float(((a - mean) ** 2).mean())
    dead = float(np.mean(~np.any(A > 0, axis=0)))
    return mean, var, dead


# --------------------------------------------------------------------------
# The training step (sections 4 to 9 together), as src_c/train.inc.c runs it
# --------------------------------------------------------------------------

def center_loss(X, y, centers, lam, *, out=None, n_threads=None):
    """Center loss (spec section 12): L_c = lam / (2m) sum_i ||x_i - c_(y_i)||^2,
    returned with its gradient dX = (lam / m) (X - C[y])."""
    X, y, C, lam, out, _ = args.center_loss(X, y, centers, lam, out, n_threads)
    loss, dX = _center_loss(X, y, C, lam)
    return loss, _store(dX, out)


def _center_loss(X, y, C, lam):
    m = X.shape[0]
    diff = X - C[np.asarray(y, dtype=np.int64)]
    loss = float(0.5 * lam * np.sum(diff.astype(_F64) ** 2) / m)
    return loss, X.dtype.type(lam / m) * diff


def center_update(X, y, centers, alpha, *, n_threads=None):
    """c_j <- c_j - alpha sum_(i: y_i = j) (c_j - x_i) / (1 + n_j), in place
    (Wen et al. 2016: each center moves towards its class's features)."""
    X, y, centers, alpha, _ = args.center_update(X, y, centers, alpha, n_threads)
    _center_update(X, y, centers, alpha)


def _center_update(X, y, centers, alpha):
    y = np.asarray(y, dtype=np.int64)
    k, d = centers.shape
    sums = np.zeros((k, d))
    np.add.at(sums, y, centers[y].astype(_F64) - X.astype(_F64))
    counts = np.bincount(y, minlength=k).astype(_F64)
    seen = counts > 0
    new = centers.astype(_F64) - alpha * sums / (1.0 + counts)[:, None]
    centers[seen] = new[seen].astype(centers.dtype)


def network_forward(layers, X, training=False, fused_loss=False, seed=0, step=0):
    """Forward pass through dense layers (dicts with W, b, activation, alpha,
    dropout). Training applies dropout (the output of dense layer l uses
    dropout position l + 1) and, for a fused loss, leaves the output layer
    linear. Returns the list of (A, A after dropout) per layer."""
    outs, inp = [], X
    for l, layer in enumerate(layers):
        act = layer["activation"]
        if training and fused_loss and l == len(layers) - 1:
            act = "identity"
        A = _dense_forward(inp, layer["W"], layer["b"], act, layer["alpha"])
        A_drop = A
        if training and layer["dropout"] > 0:
            A_drop = _dropout(A, layer["dropout"], seed, step, l + 1)
        outs.append((A, A_drop))
        inp = A_drop
    return outs


def optimizer_update(kind, params, grads, states, n_weights, t, lr, hyper):
    """One optimizer step over the flat arenas (t counts from 1); decoupled
    weight decay touches only the weights prefix."""
    if kind == "sgd":
        sgd_step(params, grads, lr)
    elif kind == "momentum":
        momentum_step(params, grads, states[0], lr, hyper["beta"])
    elif kind in ("classical_momentum", "nesterov"):
        classical_momentum_step(params, grads, states[0], lr, hyper["momentum"],
                                nesterov=kind == "nesterov")
    elif kind == "rmsprop":
        rmsprop_step(params, grads, states[0], lr, hyper["beta"], hyper["eps"])
    elif kind == "adam":
        w = slice(0, n_weights)
        rest = slice(n_weights, None)
        scalars = (t, lr, hyper["beta1"], hyper["beta2"], hyper["eps"])
        adam_step(params[w], grads[w], states[0][w], states[1][w], *scalars,
                  weight_decay=hyper["weight_decay"])
        if n_weights < params.size:
            adam_step(params[rest], grads[rest], states[0][rest], states[1][rest], *scalars)
    elif kind == "adam_folded":
        adam_folded_step(params, grads, states[0], states[1], t, lr, hyper["beta1"],
                         hyper["beta2"], hyper["eps"])
    else:
        raise ValueError("unknown optimizer kind %r" % (kind,))


def train_step(layers, params, grads, n_weights, xb, yb, loss, *, l2=0.0, clip_norm=0.0,
               clip_value=0.0, seed=0, step=0, centers=None, center_lambda=0.0,
               center_alpha=0.0, sw=None):
    """Forward, loss, backward and clipping for one mini-batch.

    layers: dicts with W, b, dW, db (views into the params/grads arenas, all
    weights first), activation, alpha, dropout. Returns (loss, finite): the
    batch loss including the L2 term lambda / (2m) sum ||W||^2, and whether the
    loss and every gradient are finite. The caller then takes the optimizer
    step (optimizer_update) only when finite is True. With center_lambda > 0
    (cross-entropy only) the center loss on the features feeding the output
    layer joins the loss and gradient, and the centers are updated in place.
    sw: None, or the batch's sample weights: the loss is their weighted mean
    and the L2 term is divided by their sum instead of the rows (a
    ZeroDivisionError when that sum is 0)."""
    _, denom = _row_weights(sw, xb.shape[0])
    if denom == 0.0:
        raise ZeroDivisionError("the sample weights of the batch sum to zero")
    fused = loss != "mse"
    outs = network_forward(layers, xb, training=True, fused_loss=fused, seed=seed, step=step)
    out = outs[-1][1]
    if loss == "cross_entropy":
        J, g = _softmax_cross_entropy(out, np.asarray(yb), sw)
    elif loss == "binary_cross_entropy":
        J, g = _sigmoid_binary_cross_entropy(out, yb, sw)
    elif loss == "poisson":
        J, g = _poisson_loss(out, yb, sw)
    else:
        J, g = _mse(out, yb, sw)
    use_centers = center_lambda > 0 and centers is not None
    if use_centers:
        features = outs[-2][1]
        J += _center_loss(features, yb, centers, center_lambda)[0]
    if l2 > 0:
        J += _l2_penalty([params[:n_weights]], l2, denom)
    if not np.isfinite(J):
        return J, False
    for l in range(len(layers) - 1, -1, -1):
        layer = layers[l]
        inp = xb if l == 0 else outs[l - 1][1]
        if use_centers and l == len(layers) - 2:
            g = g + _center_loss(outs[l][1], yb, centers, center_lambda)[1]
        if layer["dropout"] > 0:
            g = _dropout(g, layer["dropout"], seed, step, l + 1)
        act = "identity" if fused and l == len(layers) - 1 else layer["activation"]
        g, _, _ = _dense_backward(inp, layer["W"], outs[l][0], g, act, l > 0, layer["alpha"],
                                  l2 / denom, out_dW=layer["dW"], out_db=layer["db"])
    norm = _global_norm([grads])
    if not np.isfinite(norm):
        return J, False
    if use_centers:
        _center_update(outs[-2][1], yb, centers, center_alpha)
    if clip_norm > 0 and norm > clip_norm:
        grads *= clip_norm / norm
    if clip_value > 0:
        _clip_grad_value([grads], clip_value)
    return J, True
