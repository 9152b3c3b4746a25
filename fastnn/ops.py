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

from fastnn import _kernel_args as args
from fastnn import _kernels
from fastnn._threads import blas_threads
from fastnn.activations import DEFAULT_LEAKY_ALPHA

_LOSS = _kernels.LOSS_IDS

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


def _new_or(out, shape, dtype):
    """The validated caller's buffer, or a new array."""
    return np.empty(shape, dtype=dtype) if out is None else out


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
    Z, b, act, alpha, out, nt = args.bias_activation(Z, b, activation, alpha, out, n_threads)
    A = _new_or(out, Z.shape, Z.dtype)
    if A is not Z:
        np.copyto(A, Z)
    _kernels.bias_act_fwd(A, b, act, alpha, nt)
    return A


def activation_forward(Z, activation, alpha=DEFAULT_LEAKY_ALPHA, *, out=None, n_threads=None):
    """A = g(Z) for Z of shape (m, n). ``out=Z`` runs in place."""
    return bias_activation(Z, None, activation, alpha, out=out, n_threads=n_threads)


def activation_backward(A, dA, activation, alpha=DEFAULT_LEAKY_ALPHA, *, out=None,
                        n_threads=None):
    """dZ = dA * g'(A), from the stored output A; ``out=dA`` runs in place."""
    A, dA, act, alpha, out, nt = args.activation_backward(A, dA, activation, alpha, out,
                                                          n_threads)
    dZ = _new_or(out, A.shape, A.dtype)
    _kernels.act_bwd(A, dA, dZ, act, alpha, nt)
    return dZ


# --------------------------------------------------------------------------
# Dense layer: Z = X @ W + b, A = g(Z)
# --------------------------------------------------------------------------

def dense_forward(X, W, b, activation, alpha=DEFAULT_LEAKY_ALPHA, *, out=None, n_threads=None):
    """A = g(X @ W + b): one GEMM with the bias and activation fused into it.

    Parameters
    ----------
    X : array of shape (m, n_in), finite
    W : array of shape (n_in, n_out); its dtype is the dtype of the computation
    b : array of shape (n_out,) or None
    activation : str
    out : array of shape (m, n_out), optional, sharing no memory with X, W or b

    Returns
    -------
    A : array of shape (m, n_out)
    """
    X, W, b, act, alpha, out, nt = args.dense_forward(X, W, b, activation, alpha, out,
                                                      n_threads)
    A = _new_or(out, (X.shape[0], W.shape[1]), W.dtype)
    with blas_threads(1):  # the BLAS path runs one single-threaded call per block
        _kernels.dense_fwd(X, W, b, A, act, alpha, nt)
    return A


def _backward(X, W, A, dA, act, alpha, need_dX, l2, out_dX, out_dW, out_db, dZ, nt):
    dW = _new_or(out_dW, W.shape, W.dtype)
    db = _new_or(out_db, (W.shape[1],), W.dtype)
    dX = _new_or(out_dX, X.shape, W.dtype) if need_dX else None
    with blas_threads(1):
        _kernels.dense_bwd(X, W, A, dA, act, alpha, l2, dZ, dX, dW, db, nt)
    return dX, dW, db


def dense_backward(X, W, A, dA, activation, need_dX=True, alpha=DEFAULT_LEAKY_ALPHA, l2=0.0,
                   *, out_dX=None, out_dW=None, out_db=None, out_dZ=None, n_threads=None):
    """Backward pass of A = g(X @ W + b) given dA = dJ/dA.

    dZ = dA * g'(A); dW = X^T dZ + l2 W; db = sum of dZ over rows; dX = dZ W^T.
    ``l2`` is the spec's lambda / m (section 5). ``out_dZ=dA`` overwrites dA with
    dZ instead of allocating; no other output may share memory with an input
    or with another output.

    Returns
    -------
    (dX or None, dW, db)
    """
    (X, W, A, dA, act, need_dX, alpha, l2, out_dX, out_dW, out_db, out_dZ,
     nt) = args.dense_backward(X, W, A, dA, activation, need_dX, alpha, l2, out_dX, out_dW,
                               out_db, out_dZ, n_threads)
    dZ = _new_or(out_dZ, A.shape, A.dtype)
    return _backward(X, W, A, dA, act, alpha, need_dX, l2, out_dX, out_dW, out_db, dZ, nt)


def linear_backward(X, W, dZ, need_dX=True, l2=0.0, *, out_dX=None, out_dW=None,
                    out_db=None, n_threads=None):
    """Gradients of Z = X @ W + b given dZ: (dX or None, dW, db), as in
    :func:`dense_backward` without the activation (dZ is not modified)."""
    X, W, dZ, need_dX, l2, out_dX, out_dW, out_db, nt = args.linear_backward(
        X, W, dZ, need_dX, l2, out_dX, out_dW, out_db, n_threads)
    if not dZ.flags.writeable:  # the kernel's dZ slot is writable even when unused
        dZ = dZ.copy()
    # identity activation with dz == da: the kernel leaves dZ untouched
    return _backward(X, W, dZ, dZ, 0, 0.0, need_dX, l2, out_dX, out_dW, out_db, dZ, nt)


def bias_grad(dZ, *, out=None, n_threads=None):
    """db = column sums of dZ (m, n), summed in double in a fixed order."""
    dZ, out, nt = args.bias_grad(dZ, out, n_threads)
    db = _new_or(out, (dZ.shape[1],), dZ.dtype)
    _kernels.col_sum(dZ, db, nt)
    return db


# --------------------------------------------------------------------------
# Losses (spec section 4)
# --------------------------------------------------------------------------

def softmax_cross_entropy(Z, y, *, sample_weight=None, out=None, n_threads=None):
    """Fused softmax + categorical cross-entropy.

    Parameters
    ----------
    Z : array of shape (m, k), the logits of the output layer
    y : integer labels of shape (m,), or targets of shape (m, k) (one-hot or
        probabilities)
    sample_weight : None, or (m,) weights of the rows (any sign, not summing
        to zero): the loss becomes sum_i w_i l_i / sum_i w_i and row i of dZ
        is scaled by w_i m / sum_i w_i

    Returns
    -------
    (loss, dZ): the batch-mean loss and dZ = (P - Y) / m, shape (m, k);
    ``out=Z`` overwrites the logits with dZ.
    """
    Z, labels, Y, sw, out, nt = args.softmax_cross_entropy(Z, y, sample_weight, out, n_threads)
    dZ = _new_or(out, Z.shape, Z.dtype)
    return _kernels.softmax_xent(Z, labels, Y, sw, dZ, nt), dZ


def sigmoid_binary_cross_entropy(Z, y, *, sample_weight=None, out=None, n_threads=None):
    """Fused sigmoid + binary cross-entropy.

    Z : array of shape (m, n) of logits (n = 1 for one binary target)
    y : 0/1 (or probability) targets of Z's shape, or (m,) when n = 1
    sample_weight : None, or (m,) row weights, as for softmax_cross_entropy

    Returns (loss, dZ) with dZ = (sigmoid(Z) - y) / m; ``out=Z`` runs in place."""
    Z, Y, sw, out, nt = args.sigmoid_binary_cross_entropy(Z, y, sample_weight, out, n_threads)
    dZ = _new_or(out, Z.shape, Z.dtype)
    return _kernels.elementwise_loss(_LOSS["binary_cross_entropy"], Z, Y, sw, dZ, nt), dZ


def mse(A, Y, *, sample_weight=None, out=None, n_threads=None):
    """Quadratic cost J = 1/(2m) sum (A - Y)^2; returns (J, dA = (A - Y) / m).
    Y has A's shape, or (m,) when A is (m, 1). sample_weight: None, or (m,)
    row weights, as for softmax_cross_entropy. ``out=A`` runs in place."""
    A, Y, sw, out, nt = args.mse(A, Y, sample_weight, out, n_threads)
    dA = _new_or(out, A.shape, A.dtype)
    return _kernels.elementwise_loss(_LOSS["mse"], A, Y, sw, dA, nt), dA


def poisson_loss(Z, Y, *, sample_weight=None, out=None, n_threads=None):
    """Fused exp + half Poisson deviance: Poisson regression with the log link.

    Z : array of shape (m, n), the log of the predicted means (the output
        layer before its "exp" activation)
    Y : counts (any values >= 0) of Z's shape, or (m,) when n = 1
    sample_weight : None, or (m,) row weights, as for softmax_cross_entropy

    Returns (loss, dZ): loss = 1/m sum_ij [y log(y / mu) - y + mu] with
    mu = exp(z) (y log y is 0 at y = 0), and dZ = (exp(Z) - Y) / m; ``out=Z``
    runs in place."""
    Z, Y, sw, out, nt = args.poisson_loss(Z, Y, sample_weight, out, n_threads)
    dZ = _new_or(out, Z.shape, Z.dtype)
    return _kernels.elementwise_loss(_LOSS["poisson"], Z, Y, sw, dZ, nt), dZ


# --------------------------------------------------------------------------
# Optimizers (spec section 8): in place over any number of dimensions
# --------------------------------------------------------------------------

def _run_step(kernel, param, grad, states, *scalars):
    """Run an optimizer kernel over param and its state arrays, in place; a
    non-contiguous array is updated through a contiguous copy written back."""
    arrays = [param] + states
    work = [a if a.flags.c_contiguous else np.ascontiguousarray(a) for a in arrays]
    if param.size:
        flat = [w.reshape(-1) for w in work]
        kernel(flat[0], grad.reshape(-1), *flat[1:], *scalars)
    for a, w in zip(arrays, work):
        if w is not a:
            np.copyto(a, w)


def sgd_step(param, grad, lr, *, n_threads=None):
    """W <- W - lr dW, in place."""
    grad, lr, nt = args.sgd_step(param, grad, lr, n_threads)
    _run_step(_kernels.sgd_step, param, grad, [], lr, nt)


def momentum_step(param, grad, velocity, lr, beta=0.9, *, n_threads=None):
    """Exponentially weighted momentum, in place:
    V <- beta V + (1 - beta) dW;  W <- W - lr V."""
    grad, lr, beta, nt = args.momentum_step(param, grad, velocity, lr, beta, n_threads)
    _run_step(_kernels.momentum_step, param, grad, [velocity], lr, beta, nt)


def classical_momentum_step(param, grad, velocity, lr, momentum=0.9, nesterov=False, *,
                            n_threads=None):
    """Classical (heavy-ball) momentum as in scikit-learn, in place:
    V <- mu V - lr dW;  W <- W + V, or with nesterov=True W <- W + (mu V - lr dW)."""
    grad, lr, momentum, nesterov, nt = args.classical_momentum_step(
        param, grad, velocity, lr, momentum, nesterov, n_threads)
    _run_step(_kernels.classical_momentum_step, param, grad, [velocity], lr, momentum,
              nesterov, nt)


def rmsprop_step(param, grad, sq, lr, beta=0.9, eps=1e-8, *, n_threads=None):
    """RMSProp, in place: S <- beta S + (1 - beta) dW^2;  W <- W - lr dW / (sqrt(S) + eps)."""
    grad, lr, beta, eps, nt = args.rmsprop_step(param, grad, sq, lr, beta, eps, n_threads)
    _run_step(_kernels.rmsprop_step, param, grad, [sq], lr, beta, eps, nt)


def adam_step(param, grad, m, v, t, lr, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0,
              *, n_threads=None):
    """Adam with bias correction, in place; weight_decay > 0 gives AdamW:
    W <- W - lr wd W;  V <- b1 V + (1 - b1) dW;  S <- b2 S + (1 - b2) dW^2;
    W <- W - lr V^ / (sqrt(S^) + eps) with V^ = V / (1 - b1^t), S^ = S / (1 - b2^t).
    t counts steps from 1."""
    grad, t, lr, beta1, beta2, eps, weight_decay, nt = args.adam_step(
        param, grad, m, v, t, lr, beta1, beta2, eps, weight_decay, n_threads)
    _run_step(_kernels.adam_step, param, grad, [m, v], t, lr, beta1, beta2, eps,
              weight_decay, nt)


def adam_folded_step(param, grad, m, v, t, lr, beta1=0.9, beta2=0.999, eps=1e-8, *,
                     n_threads=None):
    """Adam with the bias correction folded into the step size (scikit-learn's
    MLP), in place: V <- b1 V + (1 - b1) dW;  S <- b2 S + (1 - b2) dW^2;
    W <- W - lr_t V / (sqrt(S) + eps) with lr_t = lr sqrt(1 - b2^t) / (1 - b1^t).
    It equals :func:`adam_step` except that eps is not bias-corrected."""
    grad, t, lr, beta1, beta2, eps, nt = args.adam_folded_step(
        param, grad, m, v, t, lr, beta1, beta2, eps, n_threads)
    _run_step(_kernels.adam_folded_step, param, grad, [m, v], t, lr, beta1, beta2, eps, nt)


# --------------------------------------------------------------------------
# Norms, clipping and L2 (spec sections 5 and 9)
# --------------------------------------------------------------------------

def _sum_of_squares(arrays, nt):
    # a strided or reversed view flattens to a view the kernel cannot take: copy it
    return sum(_kernels.sumsq(np.ascontiguousarray(a).reshape(-1), nt)
               for a in arrays if a.size)


def global_norm(arrays, *, n_threads=None):
    """The L2 norm of all arrays taken together (a float); one array counts as
    a list of one."""
    arrays, nt = args.global_norm(arrays, n_threads)
    return float(np.sqrt(_sum_of_squares(arrays, nt)))


def _for_each_inplace(grads, kernel, *scalars):
    for g in grads:
        if g.size == 0:
            continue
        if g.flags.c_contiguous:
            kernel(g.reshape(-1), *scalars)
        else:
            copy = np.ascontiguousarray(g)
            kernel(copy.reshape(-1), *scalars)
            np.copyto(g, copy)


def clip_grad_norm(grads, max_norm, *, n_threads=None):
    """Scale all gradients in place by max_norm / ||g|| when their global norm
    ||g|| exceeds max_norm (one array counts as a list of one; no two may share
    memory). Returns ||g|| before clipping."""
    grads, max_norm, nt = args.clip_grad_norm(grads, max_norm, n_threads)
    total = float(np.sqrt(_sum_of_squares(grads, nt)))  # grads are checked already
    if total > max_norm:
        _for_each_inplace(grads, _kernels.scale, max_norm / total, nt)
    return total


def clip_grad_value(grads, clip_value, *, n_threads=None):
    """Clip every gradient element to [-clip_value, clip_value], in place (one
    array counts as a list of one; no two may share memory)."""
    grads, clip_value, nt = args.clip_grad_value(grads, clip_value, n_threads)
    _for_each_inplace(grads, _kernels.clip_value, clip_value, nt)


def l2_penalty(weights, l2, m, *, n_threads=None):
    """lambda / (2m) * sum of squared weights (biases are not passed here)."""
    weights, l2, m, nt = args.l2_penalty(weights, l2, m, n_threads)
    return l2 / (2.0 * m) * _sum_of_squares(weights, nt)


# --------------------------------------------------------------------------
# Dropout (spec section 6)
# --------------------------------------------------------------------------

def dropout_mask(shape, rate, seed, step, layer, dtype=np.float64):
    """The inverted-dropout mask for (seed, step, layer): 1/(1 - rate) where an
    element is kept, 0 where dropped. The same arguments always give the same mask."""
    shape, (rate, seed, step, layer), dtype = args.dropout_mask(shape, rate, seed, step,
                                                                layer, dtype)
    ones = np.ones(shape, dtype=dtype)
    if ones.size:
        flat = ones.reshape(1, -1)
        _kernels.dropout_apply(flat, flat, rate, _kernels.dropout_key(seed, step, layer), 1)
    return ones


def _dropout(A, rate, seed, step, layer, out, n_threads, name):
    A, (rate, seed, step, layer), out, nt = args.dropout_forward(A, rate, seed, step, layer,
                                                                 out, n_threads, name)
    res = _new_or(out, A.shape, A.dtype)
    if A.size:
        _kernels.dropout_apply(A.reshape(1, -1), res.reshape(1, -1), rate,
                               _kernels.dropout_key(seed, step, layer), nt)
    return res


def dropout_forward(A, rate, seed, step, layer, *, out=None, n_threads=None):
    """Inverted dropout during training: A * mask (``out=A`` runs in place)."""
    return _dropout(A, rate, seed, step, layer, out, n_threads, "A")


def dropout_backward(dA, rate, seed, step, layer, *, out=None, n_threads=None):
    """dA * mask, with the mask of the forward pass of the same (seed, step, layer)
    (``out=dA`` runs in place)."""
    return _dropout(dA, rate, seed, step, layer, out, n_threads, "dA")


# --------------------------------------------------------------------------
# Standardization (spec section 1) and diagnostics (spec section 10)
# --------------------------------------------------------------------------

def standardize_fit(X, *, n_threads=None):
    """Per-column mean and population std of X (m, n), in X's dtype (float64 for
    integer X). A constant column gets std 0 exactly."""
    X, nt = args.standardize_fit(X, n_threads)
    mean = np.empty(X.shape[1], dtype=X.dtype)
    std = np.empty(X.shape[1], dtype=X.dtype)
    _kernels.standardize_fit(X, mean, std, nt)
    return mean, std


def standardize_transform(X, mean, std, *, out=None, n_threads=None):
    """(X - mean) / std per column, dividing by 1 where std == 0; ``out=X`` runs
    in place."""
    X, mean, std, out, nt = args.standardize_transform(X, mean, std, out, n_threads)
    res = _new_or(out, X.shape, X.dtype)
    _kernels.standardize_transform(X, mean, std, res, nt)
    return res


def layer_stats(A, *, n_threads=None):
    """(mean, variance, dead fraction) of activations A (m, n): mean and
    population variance over all elements, and the fraction of units (columns)
    with no positive value in the batch."""
    A, nt = args.layer_stats(A, n_threads)
    return _kernels.layer_stats(A, nt)


# --------------------------------------------------------------------------
# Center loss (spec section 12)
# --------------------------------------------------------------------------

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
    X, labels, C, lam, out, nt = args.center_loss(X, y, centers, lam, out, n_threads)
    dX = _new_or(out, X.shape, X.dtype)
    dX[...] = 0
    loss = _kernels.center_loss(X, labels, C, lam, dX, nt)
    return loss, dX


def center_update(X, y, centers, alpha, *, n_threads=None):
    """Moves each class center towards the features of its class, in place
    (Wen et al.): c_j <- c_j - alpha sum_(i: y_i = j) (c_j - x_i) / (1 + n_j)."""
    X, labels, C, alpha, _ = args.center_update(X, y, centers, alpha, n_threads)
    scratch = np.empty(C.shape[0] * (C.shape[1] + 1))
    _kernels.center_update(X, labels, C, alpha, scratch)
