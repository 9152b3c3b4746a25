"""The arguments of every kernel, validated once for both of its implementations.

:mod:`fastnn.ops` (the C kernels) and :mod:`fastnn.reference` (plain NumPy)
call the same function here before computing, so they accept the same inputs,
refuse the same inputs with the same exception, and compute on the same
converted arrays. Each function takes a kernel's arguments as the caller gave
them and returns them ready to use: arrays in the dtype of the computation and
in C order, option names checked, ``out=`` buffers checked (or None), the
thread count resolved. Buffers a call writes must not share memory with the
arrays it reads, except where a docstring of :mod:`fastnn.ops` names an
in-place form (such as ``out=Z`` or ``out_dZ=dA``).

The generic checks these are built from live in :mod:`fastnn._validation`.
"""

import numpy as np

from fastnn._threads import resolve_n_threads
from fastnn._validation import (as_float_array, check_blas_dims, check_finite, check_in_dtype,
                                check_int, check_no_overlap, check_scalar, check_shape,
                                compute_dtype, inplace_array, out_buffer_or_none)
from fastnn.activations import activation_id, check_alpha


def _activation(activation, alpha, dtype):
    act = activation_id(activation)
    alpha = check_alpha(alpha)
    check_in_dtype(alpha, "alpha", dtype)
    return act, alpha


def _bias(b, dtype, n_out):
    if b is None:
        return None
    b = as_float_array(b, "b", dtype, ndim=1)
    check_shape(b, "b", (n_out,))
    return b


# --------------------------------------------------------------------------
# Activations and dense layers
# --------------------------------------------------------------------------

def bias_activation(Z, b, activation, alpha, out, n_threads):
    """(Z, b or None, activation id, alpha, out or None, n_threads)."""
    dtype = compute_dtype(Z, b)
    act, alpha = _activation(activation, alpha, dtype)
    Z_in, b_in = Z, b
    Z = as_float_array(Z, "Z", dtype, ndim=2)
    b = _bias(b, dtype, Z.shape[1])
    nt = resolve_n_threads(n_threads)
    out = out_buffer_or_none(out, "out", Z.shape, dtype)
    check_no_overlap([("out", out)], [("Z", Z_in), ("b", b_in)], in_place=[("out", "Z")])
    return Z, b, act, alpha, out, nt


def activation_backward(A, dA, activation, alpha, out, n_threads):
    """(A, dA, activation id, alpha, out or None, n_threads)."""
    dtype = compute_dtype(A, dA)
    act, alpha = _activation(activation, alpha, dtype)
    A_in, dA_in = A, dA
    A = as_float_array(A, "A", dtype, ndim=2)
    dA = as_float_array(dA, "dA", dtype, ndim=2)
    check_shape(dA, "dA", A.shape)
    nt = resolve_n_threads(n_threads)
    out = out_buffer_or_none(out, "out", A.shape, dtype)
    check_no_overlap([("out", out)], [("A", A_in), ("dA", dA_in)], in_place=[("out", "dA")])
    return A, dA, act, alpha, out, nt


def _dense_operands(X, W):
    dtype = compute_dtype(W, X)
    W = as_float_array(W, "W", dtype, ndim=2)
    X = as_float_array(X, "X", dtype, ndim=2)
    if X.shape[1] != W.shape[0]:
        raise ValueError("X has %d features (columns) but W expects %d (W has shape %s)"
                         % (X.shape[1], W.shape[0], W.shape))
    check_blas_dims(*X.shape, *W.shape)
    return X, W, dtype


def dense_forward(X, W, b, activation, alpha, out, n_threads):
    """(X, W, b or None, activation id, alpha, out or None, n_threads)."""
    X_in, W_in, b_in = X, W, b
    X, W, dtype = _dense_operands(X, W)
    act, alpha = _activation(activation, alpha, dtype)
    check_finite(X, "X")
    b = _bias(b, dtype, W.shape[1])
    nt = resolve_n_threads(n_threads)
    out = out_buffer_or_none(out, "out", (X.shape[0], W.shape[1]), dtype)
    check_no_overlap([("out", out)], [("X", X_in), ("W", W_in), ("b", b_in)])
    return X, W, b, act, alpha, out, nt


def _gradient_outs(X, W, need_dX, out_dX, out_dW, out_db):
    dtype = W.dtype
    out_dW = out_buffer_or_none(out_dW, "out_dW", W.shape, dtype)
    out_db = out_buffer_or_none(out_db, "out_db", (W.shape[1],), dtype)
    out_dX = out_buffer_or_none(out_dX, "out_dX", X.shape, dtype) if need_dX else None
    return out_dX, out_dW, out_db


def dense_backward(X, W, A, dA, activation, need_dX, alpha, l2, out_dX, out_dW, out_db,
                   out_dZ, n_threads):
    """(X, W, A, dA, activation id, need_dX, alpha, l2, out_dX, out_dW, out_db,
    out_dZ, n_threads); the out_* are None where the caller gave none."""
    reads = [("X", X), ("W", W), ("A", A), ("dA", dA)]
    need_dX = bool(need_dX)
    l2 = check_scalar(l2, "l2", low=0.0)
    X, W, dtype = _dense_operands(X, W)
    act, alpha = _activation(activation, alpha, dtype)
    check_in_dtype(l2, "l2", dtype)
    A = as_float_array(A, "A", dtype, ndim=2)
    dA = as_float_array(dA, "dA", dtype, ndim=2)
    check_shape(A, "A", (X.shape[0], W.shape[1]))
    check_shape(dA, "dA", A.shape)
    nt = resolve_n_threads(n_threads)
    out_dZ = out_buffer_or_none(out_dZ, "out_dZ", A.shape, dtype)
    out_dX, out_dW, out_db = _gradient_outs(X, W, need_dX, out_dX, out_dW, out_db)
    check_no_overlap([("out_dZ", out_dZ), ("out_dX", out_dX), ("out_dW", out_dW),
                      ("out_db", out_db)], reads, in_place=[("out_dZ", "dA")])
    return X, W, A, dA, act, need_dX, alpha, l2, out_dX, out_dW, out_db, out_dZ, nt


def linear_backward(X, W, dZ, need_dX, l2, out_dX, out_dW, out_db, n_threads):
    """(X, W, dZ, need_dX, l2, out_dX, out_dW, out_db, n_threads)."""
    reads = [("X", X), ("W", W), ("dZ", dZ)]
    need_dX = bool(need_dX)
    l2 = check_scalar(l2, "l2", low=0.0)
    X, W, dtype = _dense_operands(X, W)
    check_in_dtype(l2, "l2", dtype)
    dZ = as_float_array(dZ, "dZ", dtype, ndim=2)
    check_shape(dZ, "dZ", (X.shape[0], W.shape[1]))
    nt = resolve_n_threads(n_threads)
    out_dX, out_dW, out_db = _gradient_outs(X, W, need_dX, out_dX, out_dW, out_db)
    check_no_overlap([("out_dX", out_dX), ("out_dW", out_dW), ("out_db", out_db)], reads)
    return X, W, dZ, need_dX, l2, out_dX, out_dW, out_db, nt


def bias_grad(dZ, out, n_threads):
    """(dZ, out or None, n_threads)."""
    dZ_in = dZ
    dZ = as_float_array(dZ, "dZ", compute_dtype(dZ), ndim=2)
    nt = resolve_n_threads(n_threads)
    out = out_buffer_or_none(out, "out", (dZ.shape[1],), dZ.dtype)
    check_no_overlap([("out", out)], [("dZ", dZ_in)])
    return dZ, out, nt


# --------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------

def labels(y, m, k, name="y"):
    """Class labels as int64 of shape (m,), each in [0, k); name: what y is
    called in messages."""
    y = np.asarray(y)
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)):
            raise ValueError("%s contains NaN or infinity" % name)
        if not np.all(y == np.round(y)):
            raise ValueError("%s holds class labels and must contain whole numbers" % name)
    elif y.dtype.kind not in "iu":
        raise TypeError("%s must hold integer class labels, got dtype %s" % (name, y.dtype))
    if y.shape != (m,):
        raise ValueError("%s must have shape (%d,) to match the %d rows, got %s"
                         % (name, m, m, y.shape))
    out = np.ascontiguousarray(y, dtype=np.int64)
    lo, hi = int(out.min()), int(out.max())
    if lo < 0 or hi >= k:
        raise ValueError("class labels must lie in [0, %d) for %d classes (output units); "
                         "%s has labels from %d to %d" % (k, k, name, lo, hi))
    return out


def _targets(y, name, shape, dtype, low=None, high=None):
    Y = as_float_array(y, name, dtype, convert_floats=True)
    if Y.ndim == 1 and shape[1] == 1 and Y.shape[0] == shape[0]:
        Y = Y.reshape(shape)
    check_shape(Y, name, shape)
    check_finite(Y, name)
    if low is not None and (Y.min() < low or Y.max() > high):
        raise ValueError("%s must lie in [%g, %g]" % (name, low, high))
    return Y


def sample_weights(sample_weight, m, dtype, name="sample_weight"):
    """None, or the (m,) weights of the rows as a C-contiguous array of dtype:
    finite, of any sign, not summing to zero (a weighted mean divides by the
    sum)."""
    if sample_weight is None:
        return None
    sw = as_float_array(sample_weight, name, dtype, ndim=1, convert_floats=True)
    check_shape(sw, name, (m,))
    check_finite(sw, name)
    if float(np.sum(sw, dtype=np.float64)) == 0.0:
        raise ZeroDivisionError("%s sums to zero, so the weighted mean loss is undefined"
                                % name)
    return sw


def _loss_input(Z, name, y, y_name, sample_weight, out, n_threads):
    Z_in = Z
    Z = as_float_array(Z, name, compute_dtype(Z), ndim=2)
    nt = resolve_n_threads(n_threads)
    sw = sample_weights(sample_weight, Z.shape[0], Z.dtype)
    out = out_buffer_or_none(out, "out", Z.shape, Z.dtype)
    check_no_overlap([("out", out)],
                     [(name, Z_in), (y_name, y), ("sample_weight", sample_weight)],
                     in_place=[("out", name)])
    return Z, sw, out, nt


def softmax_cross_entropy(Z, y, sample_weight, out, n_threads):
    """(Z, labels or None, targets or None, weights or None, out or None, n_threads)."""
    Z, sw, out, nt = _loss_input(Z, "Z", y, "y", sample_weight, out, n_threads)
    m, k = Z.shape
    if np.ndim(y) == 1:
        return Z, labels(y, m, k), None, sw, out, nt
    return Z, None, _targets(y, "y", (m, k), Z.dtype, low=0.0, high=1.0), sw, out, nt


def sigmoid_binary_cross_entropy(Z, y, sample_weight, out, n_threads):
    """(Z, targets of Z's shape, weights or None, out or None, n_threads)."""
    Z, sw, out, nt = _loss_input(Z, "Z", y, "y", sample_weight, out, n_threads)
    return Z, _targets(y, "y", Z.shape, Z.dtype, low=0.0, high=1.0), sw, out, nt


def mse(A, Y, sample_weight, out, n_threads):
    """(A, targets of A's shape, weights or None, out or None, n_threads)."""
    A, sw, out, nt = _loss_input(A, "A", Y, "Y", sample_weight, out, n_threads)
    return A, _targets(Y, "Y", A.shape, A.dtype), sw, out, nt


def poisson_loss(Z, Y, sample_weight, out, n_threads):
    """(Z, counts of Z's shape (>= 0), weights or None, out or None, n_threads)."""
    Z, sw, out, nt = _loss_input(Z, "Z", Y, "Y", sample_weight, out, n_threads)
    return Z, _targets(Y, "Y", Z.shape, Z.dtype, low=0.0, high=np.inf), sw, out, nt


# --------------------------------------------------------------------------
# Optimizers: param and its state arrays are updated in place
# --------------------------------------------------------------------------

def optimizer_arrays(param, grad, states):
    """(grad in param's dtype and shape, states): param and states (name, array)
    must be writeable floating ndarrays of param's dtype and shape, none sharing
    memory with another or with grad."""
    inplace_array(param, "param")
    for name, arr in states:
        inplace_array(arr, name, param.dtype, param.shape)
    grad_in = grad
    grad = as_float_array(grad, "grad", param.dtype, allow_empty=True)
    check_shape(grad, "grad", param.shape)
    check_no_overlap([("param", param)] + list(states), [("grad", grad_in)])
    return grad, [arr for _, arr in states]


def step_scalars(param, lr, eps=None, derived=()):
    """The scalars an optimizer kernel rounds to the parameters' dtype must stay
    finite there, and eps must stay positive. derived: (name, value) of step
    sizes computed from several arguments."""
    dtype = inplace_array(param, "param").dtype
    check_in_dtype(lr, "lr", dtype)
    if eps is not None:
        check_in_dtype(eps, "eps", dtype, nonzero=True)
    for name, value in derived:
        check_in_dtype(value, name, dtype)


def sgd_step(param, grad, lr, n_threads):
    """(grad, lr, n_threads)."""
    lr = check_scalar(lr, "lr", low=0.0)
    step_scalars(param, lr)
    grad, _ = optimizer_arrays(param, grad, [])
    return grad, lr, resolve_n_threads(n_threads)


def momentum_step(param, grad, velocity, lr, beta, n_threads):
    """(grad, lr, beta, n_threads)."""
    lr = check_scalar(lr, "lr", low=0.0)
    beta = check_scalar(beta, "beta", low=0.0, high=1.0, high_inclusive=False)
    step_scalars(param, lr)
    grad, _ = optimizer_arrays(param, grad, [("velocity", velocity)])
    return grad, lr, beta, resolve_n_threads(n_threads)


def classical_momentum_step(param, grad, velocity, lr, momentum, nesterov, n_threads):
    """(grad, lr, momentum, nesterov, n_threads)."""
    lr = check_scalar(lr, "lr", low=0.0)
    momentum = check_scalar(momentum, "momentum", low=0.0, high=1.0)
    step_scalars(param, lr)
    grad, _ = optimizer_arrays(param, grad, [("velocity", velocity)])
    return grad, lr, momentum, bool(nesterov), resolve_n_threads(n_threads)


def rmsprop_step(param, grad, sq, lr, beta, eps, n_threads):
    """(grad, lr, beta, eps, n_threads)."""
    lr = check_scalar(lr, "lr", low=0.0)
    beta = check_scalar(beta, "beta", low=0.0, high=1.0, high_inclusive=False)
    eps = check_scalar(eps, "eps", low=0.0, low_inclusive=False)
    step_scalars(param, lr, eps)
    grad, _ = optimizer_arrays(param, grad, [("sq", sq)])
    return grad, lr, beta, eps, resolve_n_threads(n_threads)


def _adam_scalars(t, lr, beta1, beta2, eps):
    # the kernels count steps in an int64_t
    return (check_int(t, "t", low=1, high=2**63 - 1), check_scalar(lr, "lr", low=0.0),
            check_scalar(beta1, "beta1", low=0.0, high=1.0, high_inclusive=False),
            check_scalar(beta2, "beta2", low=0.0, high=1.0, high_inclusive=False),
            check_scalar(eps, "eps", low=0.0, low_inclusive=False))


def adam_step(param, grad, m, v, t, lr, beta1, beta2, eps, weight_decay, n_threads):
    """(grad, t, lr, beta1, beta2, eps, weight_decay, n_threads)."""
    t, lr, beta1, beta2, eps = _adam_scalars(t, lr, beta1, beta2, eps)
    weight_decay = check_scalar(weight_decay, "weight_decay", low=0.0)
    step_scalars(param, lr, eps, [("lr * weight_decay", lr * weight_decay),
                                  ("lr / (1 - beta1^t)", lr / (1.0 - beta1 ** t))])
    grad, _ = optimizer_arrays(param, grad, [("m", m), ("v", v)])
    return grad, t, lr, beta1, beta2, eps, weight_decay, resolve_n_threads(n_threads)


def adam_folded_step(param, grad, m, v, t, lr, beta1, beta2, eps, n_threads):
    """(grad, t, lr, beta1, beta2, eps, n_threads)."""
    t, lr, beta1, beta2, eps = _adam_scalars(t, lr, beta1, beta2, eps)
    step_scalars(param, lr, eps, [("lr sqrt(1 - beta2^t) / (1 - beta1^t)",
                                   lr * np.sqrt(1.0 - beta2 ** t) / (1.0 - beta1 ** t))])
    grad, _ = optimizer_arrays(param, grad, [("m", m), ("v", v)])
    return grad, t, lr, beta1, beta2, eps, resolve_n_threads(n_threads)


# --------------------------------------------------------------------------
# Norms, clipping and L2
# --------------------------------------------------------------------------

def array_list(arrays, name):
    """A list of arrays; one ndarray counts as a list of one."""
    if isinstance(arrays, np.ndarray):
        arrays = [arrays]
    arrays = list(arrays)
    if not arrays:
        raise ValueError("%s is an empty list" % name)
    return arrays


def global_norm(arrays, n_threads):
    """(the arrays as float arrays, n_threads)."""
    arrays = [as_float_array(a, "arrays[%d]" % i, compute_dtype(a), allow_empty=True)
              for i, a in enumerate(array_list(arrays, "arrays"))]
    return arrays, resolve_n_threads(n_threads)


def _gradients_in_place(grads):
    grads = array_list(grads, "grads")
    for i, g in enumerate(grads):
        inplace_array(g, "grads[%d]" % i)
    check_no_overlap([("grads[%d]" % i, g) for i, g in enumerate(grads)], [])
    return grads


def clip_grad_norm(grads, max_norm, n_threads):
    """(grads, max_norm, n_threads)."""
    max_norm = check_scalar(max_norm, "max_norm", low=0.0, low_inclusive=False)
    return _gradients_in_place(grads), max_norm, resolve_n_threads(n_threads)


def clip_grad_value(grads, clip_value, n_threads):
    """(grads, clip_value, n_threads)."""
    clip_value = check_scalar(clip_value, "clip_value", low=0.0)
    return _gradients_in_place(grads), clip_value, resolve_n_threads(n_threads)


def l2_penalty(weights, l2, m, n_threads):
    """(weights, l2, m, n_threads)."""
    l2 = check_scalar(l2, "l2", low=0.0)
    m = check_int(m, "m", low=1)
    weights, nt = global_norm(weights, n_threads)
    return weights, l2, m, nt


# --------------------------------------------------------------------------
# Dropout
# --------------------------------------------------------------------------

def dropout_stream(rate, seed, step, layer):
    """(rate, seed, step, layer) of one dropout mask, seed/step/layer as
    non-negative integers reduced to 64 bits."""
    rate = check_scalar(rate, "rate", low=0.0, high=1.0, high_inclusive=False)
    seed = check_int(seed, "seed", low=0)
    step = check_int(step, "step", low=0)
    layer = check_int(layer, "layer", low=0)
    return rate, seed % 2**64, step % 2**64, layer % 2**64


def dropout_mask(shape, rate, seed, step, layer, dtype):
    """(shape tuple, (rate, seed, step, layer), dtype)."""
    stream = dropout_stream(rate, seed, step, layer)
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError("dropout_mask dtype must be float32 or float64, got %s" % dtype)
    shape = tuple(check_int(s, "shape", low=0) for s in np.atleast_1d(shape).tolist())
    return shape, stream, dtype


def dropout_forward(A, rate, seed, step, layer, out, n_threads, name="A"):
    """(A, (rate, seed, step, layer), out or None, n_threads); name: what A is
    called in messages (dA in the backward pass)."""
    stream = dropout_stream(rate, seed, step, layer)
    A_in = A
    A = as_float_array(A, name, compute_dtype(A), allow_empty=True)
    nt = resolve_n_threads(n_threads)
    out = out_buffer_or_none(out, "out", A.shape, A.dtype)
    check_no_overlap([("out", out)], [(name, A_in)], in_place=[("out", name)])
    return A, stream, out, nt


# --------------------------------------------------------------------------
# Standardization and diagnostics
# --------------------------------------------------------------------------

def standardize_fit(X, n_threads):
    """(X as a finite float array, n_threads)."""
    X = as_float_array(X, "X", compute_dtype(X), ndim=2)
    check_finite(X, "X")
    return X, resolve_n_threads(n_threads)


def standardize_transform(X, mean, std, out, n_threads):
    """(X, mean, std, out or None, n_threads)."""
    reads = [("X", X), ("mean", mean), ("std", std)]
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
    check_finite(X, "X")
    if np.any(std < 0) or not np.all(np.isfinite(std)) or not np.all(np.isfinite(mean)):
        raise ValueError("mean and std must be finite and std >= 0")
    nt = resolve_n_threads(n_threads)
    out = out_buffer_or_none(out, "out", X.shape, dtype)
    check_no_overlap([("out", out)], reads, in_place=[("out", "X")])
    return X, mean, std, out, nt


def layer_stats(A, n_threads):
    """(A, n_threads)."""
    return as_float_array(A, "A", compute_dtype(A), ndim=2), resolve_n_threads(n_threads)


# --------------------------------------------------------------------------
# Center loss
# --------------------------------------------------------------------------

def _center_operands(X, y, centers):
    dtype = compute_dtype(centers, X)
    C = as_float_array(centers, "centers", dtype, ndim=2)
    X = as_float_array(X, "X", dtype, ndim=2)
    if X.shape[1] != C.shape[1]:
        raise ValueError("X has %d features but centers have %d" % (X.shape[1], C.shape[1]))
    check_finite(X, "X")
    return X, labels(y, X.shape[0], C.shape[0]), C


def center_loss(X, y, centers, lam, out, n_threads):
    """(X, labels, centers, lam, out or None, n_threads)."""
    reads = [("X", X), ("y", y), ("centers", centers)]
    lam = check_scalar(lam, "lam", low=0.0)
    X, y, C = _center_operands(X, y, centers)
    nt = resolve_n_threads(n_threads)
    out = out_buffer_or_none(out, "out", X.shape, X.dtype)
    check_no_overlap([("out", out)], reads)
    return X, y, C, lam, out, nt


def center_update(X, y, centers, alpha, n_threads):
    """(X, labels, centers, alpha, n_threads); centers is updated in place, so it
    must already be a C-contiguous array of the computation's dtype."""
    reads = [("X", X), ("y", y)]
    alpha = check_scalar(alpha, "alpha", low=0.0, high=1.0)
    inplace_array(centers, "centers")
    X, y, C = _center_operands(X, y, centers)
    if C is not centers:
        raise ValueError("centers must be a C-contiguous array of X's dtype, updated in place")
    check_no_overlap([("centers", centers)], reads)
    return X, y, C, alpha, resolve_n_threads(n_threads)
