"""fastnn's kernels as Python functions: validate at the boundary, then run one
C kernel with the GIL released.

Every function here has a twin of the same name and signature in
:mod:`fastnn.reference` (plain NumPy, the definition of correct). Functions
that return arrays accept ``out=`` buffers (exact shape and dtype,
C-contiguous) so a caller can run without allocating. Optimizer steps update
their arrays in place and return None. ``n_threads=None`` uses the current
OpenMP limit (see :func:`fastnn.get_num_threads`).
"""

import numpy as np

from fastnn import _kernels
from fastnn._threads import blas_threads, resolve_n_threads
from fastnn._validation import (as_float_array, check_blas_dims, check_finite,
                                check_in_dtype, check_int, check_scalar, check_shape,
                                compute_dtype, inplace_array, out_buffer)
from fastnn.activations import DEFAULT_LEAKY_ALPHA, activation_id, check_alpha

__all__ = [
    "activation_forward", "bias_activation", "activation_backward",
    "dense_forward", "dense_backward", "linear_backward", "bias_grad",
    "softmax_cross_entropy", "sigmoid_binary_cross_entropy", "mse",
    "sgd_step", "momentum_step", "classical_momentum_step", "rmsprop_step", "adam_step",
    "adam_folded_step",
    "global_norm", "clip_grad_norm", "clip_grad_value", "l2_penalty",
    "dropout_mask", "dropout_forward", "dropout_backward",
    "standardize_fit", "standardize_transform", "layer_stats", "center_loss", "center_update",
]


def _finite(arr, name):
    check_finite(arr, name, lambda flat: _kernels.all_finite(flat, 1))


def _bias(b, dtype, n_out):
    if b is None:
        return None
    b = as_float_array(b, "b", dtype, ndim=1)
    check_shape(b, "b", (n_out,))
    return b


# --------------------------------------------------------------------------
# Activations (spec section 3)
# --------------------------------------------------------------------------

def bias_activation(Z, b, activation, alpha=DEFAULT_LEAKY_ALPHA, *, out=None, n_threads=None):
    """A = g(Z + b), the epilogue of a dense layer. ``out=Z`` runs in place.

    Parameters
    ----------
    Z : array of shape (m, n)
    b : array of shape (n,) or None
    activation : str, one of fastnn.activations.ACTIVATIONS
    alpha : float, leaky_relu's slope for negative inputs
    """
    act = activation_id(activation)
    alpha = check_alpha(alpha)
    dtype = compute_dtype(Z, b)
    check_in_dtype(alpha, "alpha", dtype)
    Z = as_float_array(Z, "Z", dtype, ndim=2)
    b = _bias(b, dtype, Z.shape[1])
    nt = resolve_n_threads(n_threads)
    A = out_buffer(out, "out", Z.shape, dtype)
    if A is not Z:
        np.copyto(A, Z)
    _kernels.bias_act_fwd(A, b, act, alpha, nt)
    return A


def activation_forward(Z, activation, alpha=DEFAULT_LEAKY_ALPHA, *, out=None, n_threads=None):
    """A = g(Z) for Z of shape (m, n)."""
    return bias_activation(Z, None, activation, alpha, out=out, n_threads=n_threads)


def activation_backward(A, dA, activation, alpha=DEFAULT_LEAKY_ALPHA, *, out=None,
                        n_threads=None):
    """dZ = dA * g'(A), from the stored output A; ``out=dA`` runs in place."""
    act = activation_id(activation)
    alpha = check_alpha(alpha)
    dtype = compute_dtype(A, dA)
    check_in_dtype(alpha, "alpha", dtype)
    A = as_float_array(A, "A", dtype, ndim=2)
    dA = as_float_array(dA, "dA", dtype, ndim=2)
    check_shape(dA, "dA", A.shape)
    nt = resolve_n_threads(n_threads)
    dZ = out_buffer(out, "out", A.shape, dtype)
    _kernels.act_bwd(A, dA, dZ, act, alpha, nt)
    return dZ


# --------------------------------------------------------------------------
# Dense layer: Z = X @ W + b, A = g(Z)
# --------------------------------------------------------------------------

def _dense_operands(X, W):
    dtype = compute_dtype(W, X)
    W = as_float_array(W, "W", dtype, ndim=2)
    X = as_float_array(X, "X", dtype, ndim=2)
    if X.shape[1] != W.shape[0]:
        raise ValueError("X has %d features (columns) but W expects %d (W has shape %s)"
                         % (X.shape[1], W.shape[0], W.shape))
    check_blas_dims(*X.shape, *W.shape)
    return X, W, dtype


def dense_forward(X, W, b, activation, alpha=DEFAULT_LEAKY_ALPHA, *, out=None, n_threads=None):
    """A = g(X @ W + b): one GEMM with the bias and activation fused into it.

    Parameters
    ----------
    X : array of shape (m, n_in), finite
    W : array of shape (n_in, n_out); its dtype is the dtype of the computation
    b : array of shape (n_out,) or None
    activation : str
    out : array of shape (m, n_out), optional

    Returns
    -------
    A : array of shape (m, n_out)
    """
    act = activation_id(activation)
    alpha = check_alpha(alpha)
    X, W, dtype = _dense_operands(X, W)
    check_in_dtype(alpha, "alpha", dtype)
    _finite(X, "X")
    b = _bias(b, dtype, W.shape[1])
    nt = resolve_n_threads(n_threads)
    A = out_buffer(out, "out", (X.shape[0], W.shape[1]), dtype)
    if np.shares_memory(A, X) or np.shares_memory(A, W):
        raise ValueError("out must not overlap X or W")
    with blas_threads(1):  # the kernel runs one single-threaded BLAS call per block
        _kernels.dense_fwd(X, W, b, A, act, alpha, nt)
    return A


def _check_no_overlap(outs, inputs):
    """Caller-provided output buffers (name, array or None) must not overlap the
    arrays the kernel reads (name, array) while it writes them, nor each other:
    the result would silently be wrong."""
    outs = [(name, o) for name, o in outs if o is not None]
    for i, (name, o) in enumerate(outs):
        for other, arr in list(inputs) + outs[i + 1:]:
            if np.shares_memory(o, arr):
                raise ValueError("%s must not overlap %s" % (name, other))


def _backward(X, W, A, dA, act, alpha, need_dX, l2, out_dX, out_dW, out_db, dZ, nt):
    n_out = W.shape[1]
    dtype = W.dtype
    dW = out_buffer(out_dW, "out_dW", W.shape, dtype)
    db = out_buffer(out_db, "out_db", (n_out,), dtype)
    dX = out_buffer(out_dX, "out_dX", X.shape, dtype) if need_dX else None
    _check_no_overlap([("out_dW", out_dW), ("out_db", out_db),
                       ("out_dX", out_dX if need_dX else None)],
                      [("X", X), ("W", W), ("A", A), ("dA", dA), ("dZ", dZ)])
    with blas_threads(1):
        _kernels.dense_bwd(X, W, A, dA, act, alpha, l2, dZ, dX, dW, db, nt)
    return dX, dW, db


def dense_backward(X, W, A, dA, activation, need_dX=True, alpha=DEFAULT_LEAKY_ALPHA, l2=0.0,
                   *, out_dX=None, out_dW=None, out_db=None, out_dZ=None, n_threads=None):
    """Backward pass of A = g(X @ W + b) given dA = dJ/dA.

    dZ = dA * g'(A); dW = X^T dZ + l2 W; db = sum of dZ over rows; dX = dZ W^T.
    ``l2`` is the spec's lambda / m (section 5). ``out_dZ=dA`` overwrites dA with
    dZ instead of allocating.

    Returns
    -------
    (dX or None, dW, db)
    """
    act = activation_id(activation)
    alpha = check_alpha(alpha)
    l2 = check_scalar(l2, "l2", low=0.0)
    X, W, dtype = _dense_operands(X, W)
    check_in_dtype(alpha, "alpha", dtype)
    check_in_dtype(l2, "l2", dtype)
    A = as_float_array(A, "A", dtype, ndim=2)
    dA = as_float_array(dA, "dA", dtype, ndim=2)
    check_shape(A, "A", (X.shape[0], W.shape[1]))
    check_shape(dA, "dA", A.shape)
    nt = resolve_n_threads(n_threads)
    dZ = out_buffer(out_dZ, "out_dZ", A.shape, dtype)  # may be dA itself
    _check_no_overlap([("out_dZ", out_dZ)], [("X", X), ("W", W)])
    return _backward(X, W, A, dA, act, alpha, bool(need_dX), l2, out_dX, out_dW, out_db,
                     dZ, nt)


def linear_backward(X, W, dZ, need_dX=True, l2=0.0, *, out_dX=None, out_dW=None,
                    out_db=None, n_threads=None):
    """Gradients of Z = X @ W + b given dZ: (dX or None, dW, db), as in
    :func:`dense_backward` without the activation (dZ is not modified)."""
    l2 = check_scalar(l2, "l2", low=0.0)
    X, W, dtype = _dense_operands(X, W)
    check_in_dtype(l2, "l2", dtype)
    dZ = as_float_array(dZ, "dZ", dtype, ndim=2)
    check_shape(dZ, "dZ", (X.shape[0], W.shape[1]))
    if not dZ.flags.writeable:  # the kernel's dZ slot is writable even when unused
        dZ = dZ.copy()
    nt = resolve_n_threads(n_threads)
    # identity activation with dz == da: the kernel leaves dZ untouched
    return _backward(X, W, dZ, dZ, 0, 0.0, bool(need_dX), l2, out_dX, out_dW, out_db, dZ, nt)


def bias_grad(dZ, *, out=None, n_threads=None):
    """db = column sums of dZ (m, n), summed in double in a fixed order."""
    dtype = compute_dtype(dZ)
    dZ = as_float_array(dZ, "dZ", dtype, ndim=2)
    db = out_buffer(out, "out", (dZ.shape[1],), dtype)
    _kernels.col_sum(dZ, db, resolve_n_threads(n_threads))
    return db


# --------------------------------------------------------------------------
# Losses (spec section 4)
# --------------------------------------------------------------------------

def _labels(y, m, k):
    y = np.asarray(y)
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)):
            raise ValueError("y contains NaN or infinity")
        if not np.all(y == np.round(y)):
            raise ValueError("y holds class labels and must contain whole numbers")
    elif y.dtype.kind not in "iu":
        raise TypeError("y must hold integer class labels, got dtype %s" % y.dtype)
    if y.shape != (m,):
        raise ValueError("y must have shape (%d,) to match Z, got %s" % (m, y.shape))
    labels = np.ascontiguousarray(y, dtype=np.int64)
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0 or hi >= k:
        raise ValueError("class labels must lie in [0, %d) for an output of %d units; "
                         "found labels from %d to %d" % (k, k, lo, hi))
    return labels


def _targets(y, name, shape, dtype, low=None, high=None):
    Y = as_float_array(y, name, dtype, convert_floats=True)
    if Y.ndim == 1 and shape[1] == 1 and Y.shape[0] == shape[0]:
        Y = Y.reshape(shape)
    check_shape(Y, name, shape)
    _finite(Y, name)
    if low is not None and (Y.min() < low or Y.max() > high):
        raise ValueError("%s must lie in [%g, %g]" % (name, low, high))
    return Y


def softmax_cross_entropy(Z, y, *, out=None, n_threads=None):
    """Fused softmax + categorical cross-entropy.

    Parameters
    ----------
    Z : array of shape (m, k), the logits of the output layer
    y : integer labels of shape (m,), or targets of shape (m, k) (one-hot or
        probabilities)

    Returns
    -------
    (loss, dZ): the batch-mean loss and dZ = (P - Y) / m, shape (m, k)
    """
    dtype = compute_dtype(Z)
    Z = as_float_array(Z, "Z", dtype, ndim=2)
    m, k = Z.shape
    nt = resolve_n_threads(n_threads)
    dZ = out_buffer(out, "out", Z.shape, dtype)
    if np.ndim(y) == 1:
        loss = _kernels.softmax_xent(Z, _labels(y, m, k), None, dZ, nt)
    else:
        Y = _targets(y, "y", (m, k), dtype, low=0.0, high=1.0)
        loss = _kernels.softmax_xent(Z, None, Y, dZ, nt)
    return loss, dZ


def sigmoid_binary_cross_entropy(Z, y, *, out=None, n_threads=None):
    """Fused sigmoid + binary cross-entropy.

    Z : array of shape (m, n) of logits (n = 1 for one binary target)
    y : 0/1 (or probability) targets of Z's shape, or (m,) when n = 1

    Returns (loss, dZ) with dZ = (sigmoid(Z) - y) / m."""
    dtype = compute_dtype(Z)
    Z = as_float_array(Z, "Z", dtype, ndim=2)
    Y = _targets(y, "y", Z.shape, dtype, low=0.0, high=1.0)
    nt = resolve_n_threads(n_threads)
    dZ = out_buffer(out, "out", Z.shape, dtype)
    return _kernels.sigmoid_bce(Z, Y, dZ, nt), dZ


def mse(A, Y, *, out=None, n_threads=None):
    """Quadratic cost J = 1/(2m) sum (A - Y)^2; returns (J, dA = (A - Y) / m).
    Y has A's shape, or (m,) when A is (m, 1)."""
    dtype = compute_dtype(A)
    A = as_float_array(A, "A", dtype, ndim=2)
    Y = _targets(Y, "Y", A.shape, dtype)
    nt = resolve_n_threads(n_threads)
    dA = out_buffer(out, "out", A.shape, dtype)
    return _kernels.mse(A, Y, dA, nt), dA


# --------------------------------------------------------------------------
# Optimizers (spec section 8): in place over any number of dimensions
# --------------------------------------------------------------------------

def _flat_state(param, arrays):
    """Validate an optimizer's arrays; return the flat views the kernel updates,
    plus the (original, contiguous copy) pairs to write back afterwards."""
    inplace_array(param, "param")
    flats, writeback = [], []
    for name, arr, mutable in arrays:
        if mutable:
            inplace_array(arr, name, param.dtype, param.shape)
        else:
            arr = as_float_array(arr, name, param.dtype, allow_empty=True)
            check_shape(arr, name, param.shape)
        if mutable and not arr.flags.c_contiguous:
            copy = np.ascontiguousarray(arr)
            writeback.append((arr, copy))
            arr = copy
        flats.append(arr.reshape(-1))
    return flats, writeback


def _step_scalars(param, lr, eps=None, derived=()):
    """The scalars an optimizer kernel rounds to the parameters' dtype must
    stay finite there, and eps must stay positive (checked after param itself).
    derived: (name, value) of step sizes computed from several arguments."""
    dtype = inplace_array(param, "param").dtype
    check_in_dtype(lr, "lr", dtype)
    if eps is not None:
        check_in_dtype(eps, "eps", dtype, nonzero=True)
    for name, value in derived:
        check_in_dtype(value, name, dtype)


def _run_step(param, named, kernel, *args):
    """Run an optimizer kernel over param and its state arrays, in place."""
    flats, writeback = _flat_state(param, [("param", param, True)] + named)
    if param.size:
        kernel(*flats, *args)
    for original, copy in writeback:
        np.copyto(original, copy)


def sgd_step(param, grad, lr, *, n_threads=None):
    """W <- W - lr dW, in place."""
    lr = check_scalar(lr, "lr", low=0.0)
    _step_scalars(param, lr)
    _run_step(param, [("grad", grad, False)], _kernels.sgd_step, lr,
              resolve_n_threads(n_threads))


def momentum_step(param, grad, velocity, lr, beta=0.9, *, n_threads=None):
    """Exponentially weighted momentum, in place:
    V <- beta V + (1 - beta) dW;  W <- W - lr V."""
    lr = check_scalar(lr, "lr", low=0.0)
    beta = check_scalar(beta, "beta", low=0.0, high=1.0, high_inclusive=False)
    _step_scalars(param, lr)
    _run_step(param, [("grad", grad, False), ("velocity", velocity, True)],
              _kernels.momentum_step, lr, beta, resolve_n_threads(n_threads))


def classical_momentum_step(param, grad, velocity, lr, momentum=0.9, nesterov=False, *,
                            n_threads=None):
    """Classical (heavy-ball) momentum as in scikit-learn, in place:
    V <- mu V - lr dW;  W <- W + V, or with nesterov=True W <- W + (mu V - lr dW)."""
    lr = check_scalar(lr, "lr", low=0.0)
    momentum = check_scalar(momentum, "momentum", low=0.0, high=1.0)
    _step_scalars(param, lr)
    _run_step(param, [("grad", grad, False), ("velocity", velocity, True)],
              _kernels.classical_momentum_step, lr, momentum, bool(nesterov),
              resolve_n_threads(n_threads))


def rmsprop_step(param, grad, sq, lr, beta=0.9, eps=1e-8, *, n_threads=None):
    """RMSProp, in place: S <- beta S + (1 - beta) dW^2;  W <- W - lr dW / (sqrt(S) + eps)."""
    lr = check_scalar(lr, "lr", low=0.0)
    beta = check_scalar(beta, "beta", low=0.0, high=1.0, high_inclusive=False)
    eps = check_scalar(eps, "eps", low=0.0, low_inclusive=False)
    _step_scalars(param, lr, eps)
    _run_step(param, [("grad", grad, False), ("sq", sq, True)], _kernels.rmsprop_step,
              lr, beta, eps, resolve_n_threads(n_threads))


def adam_step(param, grad, m, v, t, lr, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0,
              *, n_threads=None):
    """Adam with bias correction, in place; weight_decay > 0 gives AdamW:
    W <- W - lr wd W;  V <- b1 V + (1 - b1) dW;  S <- b2 S + (1 - b2) dW^2;
    W <- W - lr V^ / (sqrt(S^) + eps) with V^ = V / (1 - b1^t), S^ = S / (1 - b2^t).
    t counts steps from 1."""
    t = check_int(t, "t", low=1)
    lr = check_scalar(lr, "lr", low=0.0)
    beta1 = check_scalar(beta1, "beta1", low=0.0, high=1.0, high_inclusive=False)
    beta2 = check_scalar(beta2, "beta2", low=0.0, high=1.0, high_inclusive=False)
    eps = check_scalar(eps, "eps", low=0.0, low_inclusive=False)
    weight_decay = check_scalar(weight_decay, "weight_decay", low=0.0)
    _step_scalars(param, lr, eps, [("lr * weight_decay", lr * weight_decay),
                                   ("lr / (1 - beta1^t)", lr / (1.0 - beta1 ** t))])
    _run_step(param, [("grad", grad, False), ("m", m, True), ("v", v, True)],
              _kernels.adam_step, t, lr, beta1, beta2, eps, weight_decay,
              resolve_n_threads(n_threads))


def adam_folded_step(param, grad, m, v, t, lr, beta1=0.9, beta2=0.999, eps=1e-8, *,
                     n_threads=None):
    """Adam with the bias correction folded into the step size (scikit-learn's
    MLP), in place: V <- b1 V + (1 - b1) dW;  S <- b2 S + (1 - b2) dW^2;
    W <- W - lr_t V / (sqrt(S) + eps) with lr_t = lr sqrt(1 - b2^t) / (1 - b1^t).
    It equals :func:`adam_step` except that eps is not bias-corrected."""
    t = check_int(t, "t", low=1)
    lr = check_scalar(lr, "lr", low=0.0)
    beta1 = check_scalar(beta1, "beta1", low=0.0, high=1.0, high_inclusive=False)
    beta2 = check_scalar(beta2, "beta2", low=0.0, high=1.0, high_inclusive=False)
    eps = check_scalar(eps, "eps", low=0.0, low_inclusive=False)
    _step_scalars(param, lr, eps, [("lr sqrt(1 - beta2^t) / (1 - beta1^t)",
                                    lr * np.sqrt(1.0 - beta2 ** t) / (1.0 - beta1 ** t))])
    _run_step(param, [("grad", grad, False), ("m", m, True), ("v", v, True)],
              _kernels.adam_folded_step, t, lr, beta1, beta2, eps,
              resolve_n_threads(n_threads))


# --------------------------------------------------------------------------
# Norms, clipping and L2 (spec sections 5 and 9)
# --------------------------------------------------------------------------

def _array_list(arrays, name):
    if isinstance(arrays, np.ndarray):
        arrays = [arrays]
    arrays = list(arrays)
    if not arrays:
        raise ValueError("%s is an empty list" % name)
    return arrays


def global_norm(arrays, *, n_threads=None):
    """The L2 norm of all arrays taken together (a float)."""
    nt = resolve_n_threads(n_threads)
    total = 0.0
    for i, a in enumerate(_array_list(arrays, "arrays")):
        a = as_float_array(a, "arrays[%d]" % i, compute_dtype(a), allow_empty=True)
        if a.size:
            total += _kernels.sumsq(a.reshape(-1), nt)
    return float(np.sqrt(total))


def _for_each_inplace(grads, kernel, *args):
    for i, g in enumerate(grads):  # validate all first: an error leaves every array as it was
        inplace_array(g, "grads[%d]" % i)
    for g in grads:
        if g.size == 0:
            continue
        if g.flags.c_contiguous:
            kernel(g.reshape(-1), *args)
        else:
            copy = np.ascontiguousarray(g)
            kernel(copy.reshape(-1), *args)
            np.copyto(g, copy)


def clip_grad_norm(grads, max_norm, *, n_threads=None):
    """Scale all gradients in place by max_norm / ||g|| when their global norm
    ||g|| exceeds max_norm. Returns ||g|| before clipping."""
    max_norm = check_scalar(max_norm, "max_norm", low=0.0, low_inclusive=False)
    grads = _array_list(grads, "grads")
    for i, g in enumerate(grads):
        inplace_array(g, "grads[%d]" % i)
    nt = resolve_n_threads(n_threads)
    total = global_norm(grads, n_threads=nt)
    if total > max_norm:
        _for_each_inplace(grads, _kernels.scale, max_norm / total, nt)
    return total


def clip_grad_value(grads, clip_value, *, n_threads=None):
    """Clip every gradient element to [-clip_value, clip_value], in place."""
    clip_value = check_scalar(clip_value, "clip_value", low=0.0)
    grads = _array_list(grads, "grads")
    _for_each_inplace(grads, _kernels.clip_value, clip_value, resolve_n_threads(n_threads))


def l2_penalty(weights, l2, m, *, n_threads=None):
    """lambda / (2m) * sum of squared weights (biases are not passed here)."""
    l2 = check_scalar(l2, "l2", low=0.0)
    m = check_int(m, "m", low=1)
    return l2 / (2.0 * m) * global_norm(weights, n_threads=n_threads) ** 2


# --------------------------------------------------------------------------
# Dropout (spec section 6)
# --------------------------------------------------------------------------

def _dropout_args(rate, seed, step, layer):
    rate = check_scalar(rate, "rate", low=0.0, high=1.0, high_inclusive=False)
    seed = check_int(seed, "seed", low=0)
    step = check_int(step, "step", low=0)
    layer = check_int(layer, "layer", low=0)
    return rate, _kernels.dropout_key(seed % 2**64, step % 2**64, layer % 2**64)


def dropout_mask(shape, rate, seed, step, layer, dtype=np.float64):
    """The inverted-dropout mask for (seed, step, layer): 1/(1 - rate) where an
    element is kept, 0 where dropped. The same arguments always give the same mask."""
    rate, key = _dropout_args(rate, seed, step, layer)
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError("dropout_mask dtype must be float32 or float64, got %s" % dtype)
    shape = tuple(int(s) for s in np.atleast_1d(shape))
    ones = np.ones(shape, dtype=dtype)
    if ones.size:
        flat = ones.reshape(1, -1)
        _kernels.dropout_apply(flat, flat, rate, key, 1)
    return ones


def dropout_forward(A, rate, seed, step, layer, *, out=None, n_threads=None):
    """Inverted dropout during training: A * mask (``out=A`` runs in place)."""
    rate, key = _dropout_args(rate, seed, step, layer)
    A = as_float_array(A, "A", compute_dtype(A), allow_empty=True)
    res = out_buffer(out, "out", A.shape, A.dtype)
    if A.size:
        _kernels.dropout_apply(A.reshape(1, -1), res.reshape(1, -1), rate, key,
                               resolve_n_threads(n_threads))
    return res


def dropout_backward(dA, rate, seed, step, layer, *, out=None, n_threads=None):
    """dA * mask, with the mask of the forward pass of the same (seed, step, layer)."""
    return dropout_forward(dA, rate, seed, step, layer, out=out, n_threads=n_threads)


# --------------------------------------------------------------------------
# Standardization (spec section 1) and diagnostics (spec section 10)
# --------------------------------------------------------------------------

def standardize_fit(X, *, n_threads=None):
    """Per-column mean and population std of X (m, n), in X's dtype (float64 for
    integer X). A constant column gets std 0 exactly."""
    X = as_float_array(X, "X", compute_dtype(X), ndim=2)
    _finite(X, "X")
    mean = np.empty(X.shape[1], dtype=X.dtype)
    std = np.empty(X.shape[1], dtype=X.dtype)
    _kernels.standardize_fit(X, mean, std, resolve_n_threads(n_threads))
    return mean, std


def standardize_transform(X, mean, std, *, out=None, n_threads=None):
    """(X - mean) / std per column, dividing by 1 where std == 0."""
    dtype = compute_dtype(mean, std, X)
    mean = as_float_array(mean, "mean", dtype, ndim=1)
    std = as_float_array(std, "std", dtype, ndim=1)
    X = as_float_array(X, "X", dtype, ndim=2)
    n = X.shape[1]
    for name, stat in (("mean", mean), ("std", std)):
        if stat.shape != (n,):
            raise ValueError("X has %d features but %s has %d entries (it must come from "
                             "standardize_fit on data with the same columns)"
                             % (n, name, stat.shape[0]))
    _finite(X, "X")
    if np.any(std < 0) or not np.all(np.isfinite(std)) or not np.all(np.isfinite(mean)):
        raise ValueError("mean and std must be finite and std >= 0")
    res = out_buffer(out, "out", X.shape, dtype)
    _kernels.standardize_transform(X, mean, std, res, resolve_n_threads(n_threads))
    return res


def layer_stats(A, *, n_threads=None):
    """(mean, variance, dead fraction) of activations A (m, n): mean and
    population variance over all elements, and the fraction of units (columns)
    with no positive value in the batch."""
    A = as_float_array(A, "A", compute_dtype(A), ndim=2)
    return _kernels.layer_stats(A, resolve_n_threads(n_threads))


# --------------------------------------------------------------------------
# Center loss (spec section 12)
# --------------------------------------------------------------------------

def _center_args(X, y, centers, name):
    dtype = compute_dtype(centers, X)
    C = as_float_array(centers, "centers", dtype, ndim=2)
    X = as_float_array(X, "X", dtype, ndim=2)
    if X.shape[1] != C.shape[1]:
        raise ValueError("X has %d features but centers have %d" % (X.shape[1], C.shape[1]))
    _finite(X, "X")
    return X, _labels(y, X.shape[0], C.shape[0]), C


def center_loss(X, y, centers, lam, *, out=None, n_threads=None):
    """Center loss L_c = lam / (2m) sum_i ||x_i - c_(y_i)||^2 and its gradient
    dX = (lam / m) (X - C[y]).

    Parameters
    ----------
    X : array (m, d), the features feeding the output layer
    y : integer class labels (m,)
    centers : array (k, d), one center per class
    lam : float >= 0, the weight lambda

    Returns
    -------
    (loss, dX)
    """
    lam = check_scalar(lam, "lam", low=0.0)
    X, labels, C = _center_args(X, y, centers, "center_loss")
    dX = out_buffer(out, "out", X.shape, X.dtype)
    dX[...] = 0
    loss = _kernels.center_loss(X, labels, C, lam, dX, resolve_n_threads(n_threads))
    return loss, dX


def center_update(X, y, centers, alpha, *, n_threads=None):
    """Moves each class center towards the features of its class, in place
    (Wen et al.): c_j <- c_j - alpha sum_(i: y_i = j) (c_j - x_i) / (1 + n_j)."""
    alpha = check_scalar(alpha, "alpha", low=0.0, high=1.0)
    inplace_array(centers, "centers")
    X, labels, C = _center_args(X, y, centers, "center_update")
    if C is not centers:
        raise ValueError("centers must be a C-contiguous array of X's dtype, updated in place")
    scratch = np.empty(C.shape[0] * (C.shape[1] + 1))
    _kernels.center_update(X, labels, C, alpha, scratch)
