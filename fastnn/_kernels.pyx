# Design: thin typed entry points into the C kernels of src_c/.
#
# Each function takes arrays already validated and allocated by fastnn.ops
# (C-contiguous, one floating dtype, matching shapes), releases the GIL around
# exactly one C call, and turns the returned status into an exception once the
# GIL is back. No validation and no allocation happen here: that is the
# boundary's job (fastnn/_kernel_args.py), and it keeps these calls cheap
# enough to be made per batch. Memoryviews only, no NumPy C-API, so the module
# does not depend on NumPy's ABI.
from cython cimport floating
from libc.stdint cimport int64_t, uint64_t
from scipy.linalg.cython_blas cimport sgemm, dgemm

cdef fnn_blas _BLAS
_BLAS.sgemm = <fnn_sgemm_fn>sgemm
_BLAS.dgemm = <fnn_dgemm_fn>dgemm

# The enumerations of src_c/fnn.h by name: Python's only source for these
# numbers (each key is the macro's suffix in lower case, FNN_ACT_TANH ->
# "tanh"; tests/test_kernel_enums.py holds them against the header).
ACTIVATION_IDS = {
    "identity": FNN_ACT_IDENTITY, "sigmoid": FNN_ACT_SIGMOID, "tanh": FNN_ACT_TANH,
    "relu": FNN_ACT_RELU, "leaky_relu": FNN_ACT_LEAKY_RELU, "softplus": FNN_ACT_SOFTPLUS,
    "softmax": FNN_ACT_SOFTMAX, "exp": FNN_ACT_EXP}
LOSS_IDS = {"mse": FNN_LOSS_MSE, "binary_cross_entropy": FNN_LOSS_BINARY_CROSS_ENTROPY,
            "cross_entropy": FNN_LOSS_CROSS_ENTROPY, "poisson": FNN_LOSS_POISSON}
OPTIMIZER_IDS = {
    "sgd": FNN_OPT_SGD, "momentum": FNN_OPT_MOMENTUM,
    "classical_momentum": FNN_OPT_CLASSICAL_MOMENTUM, "nesterov": FNN_OPT_NESTEROV,
    "rmsprop": FNN_OPT_RMSPROP, "adam": FNN_OPT_ADAM, "adam_folded": FNN_OPT_ADAM_FOLDED}
ENUM_COUNTS = {"ACT": FNN_ACT_COUNT, "LOSS": FNN_LOSS_COUNT, "OPT": FNN_OPT_COUNT}
STATUS_CODES = {"ok": FNN_OK, "einval": FNN_EINVAL, "enomem": FNN_ENOMEM,
                "elabel": FNN_ELABEL, "enonfinite": FNN_ENONFINITE,
                "ezeroweight": FNN_EZEROWEIGHT, "ecomm": FNN_ECOMM}

# The exception each failure status becomes once the GIL is back.
_STATUS_ERRORS = {
    FNN_EINVAL: (ValueError, "a kernel argument is outside its domain (size, option or rate)"),
    FNN_ENOMEM: (MemoryError, "a kernel could not allocate its scratch memory"),
    FNN_ELABEL: (ValueError, "a class label is outside [0, n_classes) for the output layer"),
    FNN_ENONFINITE: (FloatingPointError, "a loss or gradient became NaN or infinite"),
    FNN_EZEROWEIGHT: (ZeroDivisionError, "the sample weights sum to zero, so their weighted "
                      "mean loss is undefined"),
    FNN_ECOMM: (RuntimeError, "a call into the MPI library failed"),
}


def raise_for_status(int status):
    """Raise the exception that matches a non-zero kernel status."""
    cls, message = _STATUS_ERRORS.get(status, (RuntimeError,
                                               "kernel failed with status %d" % status))
    raise cls(message)


cdef inline int _check(int status) except -1:
    if status != FNN_OK:
        raise_for_status(status)
    return 0


def build_config():
    """The compiler flags and OpenMP status this module was built with."""
    return fnn_build_config().decode("utf-8")


def openmp_enabled():
    """True when the kernels were compiled with OpenMP."""
    return bool(fnn_openmp_enabled())


def isa_names():
    """Every instruction-set variant, by id (fnn_isa.h)."""
    return [fnn_isa_name(i).decode("ascii") for i in range(FNN_ISA_COUNT)]


def isa_supported(int isa):
    """True when the variant is compiled in and this CPU runs it."""
    return bool(fnn_isa_supported(isa))


def isa_best():
    return fnn_isa_best()


def isa_current():
    return fnn_isa_current()


def isa_select(int isa):
    """Puts a supported variant in use; the caller checks support first."""
    _check(fnn_isa_select(isa))


GEMM_PATHS = {"auto": FNN_GEMM_AUTO, "packed": FNN_GEMM_PACKED, "blas": FNN_GEMM_BLAS}


def gemm_select_path(int path):
    _check(fnn_gemm_select_path(path))


def gemm_selected_path():
    return fnn_gemm_selected_path()


def gemm_path_in_use():
    return fnn_gemm_path_in_use()


VM_FUNCTIONS = {"exp": FNN_VM_EXP, "expm1": FNN_VM_EXPM1, "log1p": FNN_VM_LOG1P,
                "log": FNN_VM_LOG, "tanh": FNN_VM_TANH, "sigmoid": FNN_VM_SIGMOID,
                "softplus": FNN_VM_SOFTPLUS}


def vm_apply(int fn, const floating[::1] x, floating[::1] y, int nt):
    """y = f(x) elementwise with the vector math functions (src_c/vmath.inc.c)."""
    cdef int st
    with nogil:
        if floating is float:
            st = fnn_vm_apply_f32(fn, x.shape[0], &x[0] if x.shape[0] else NULL,
                                  &y[0] if y.shape[0] else NULL, nt)
        else:
            st = fnn_vm_apply_f64(fn, x.shape[0], &x[0] if x.shape[0] else NULL,
                                  &y[0] if y.shape[0] else NULL, nt)
    _check(st)


def dropout_key(uint64_t seed, uint64_t step, uint64_t layer):
    """The 64-bit key of a dropout mask (see src_c/common.c)."""
    return fnn_dropout_key(seed, step, layer)


def bias_act_fwd(floating[:, ::1] z, const floating[::1] b, int act, double alpha, int nt):
    """Z <- g(Z + b) in place; b may be None."""
    cdef int st
    cdef const floating *bp = NULL
    if b is not None:
        bp = &b[0]
    with nogil:
        if floating is float:
            st = fnn_bias_act_fwd_f32(z.shape[0], z.shape[1], &z[0, 0], bp, act, alpha, nt)
        else:
            st = fnn_bias_act_fwd_f64(z.shape[0], z.shape[1], &z[0, 0], bp, act, alpha, nt)
    _check(st)


def act_bwd(const floating[:, ::1] a, const floating[:, ::1] da, floating[:, ::1] dz,
            int act, double alpha, int nt):
    """dZ = dA * g'(A); dz may be the same array as da."""
    cdef int st
    with nogil:
        if floating is float:
            st = fnn_act_bwd_f32(a.shape[0], a.shape[1], &a[0, 0], &da[0, 0], act, alpha,
                                 &dz[0, 0], nt)
        else:
            st = fnn_act_bwd_f64(a.shape[0], a.shape[1], &a[0, 0], &da[0, 0], act, alpha,
                                 &dz[0, 0], nt)
    _check(st)


def dense_fwd(const floating[:, ::1] x, const floating[:, ::1] w, const floating[::1] b,
              floating[:, ::1] a, int act, double alpha, int nt):
    """A = g(X @ W + b); b may be None."""
    cdef int st
    cdef const floating *bp = NULL
    if b is not None:
        bp = &b[0]
    with nogil:
        if floating is float:
            st = fnn_dense_fwd_f32(x.shape[0], x.shape[1], w.shape[1], &x[0, 0], &w[0, 0], bp,
                                   act, alpha, &a[0, 0], nt, &_BLAS)
        else:
            st = fnn_dense_fwd_f64(x.shape[0], x.shape[1], w.shape[1], &x[0, 0], &w[0, 0], bp,
                                   act, alpha, &a[0, 0], nt, &_BLAS)
    _check(st)


def dense_bwd(const floating[:, ::1] x, const floating[:, ::1] w, const floating[:, ::1] a,
              const floating[:, ::1] da, int act, double alpha, double l2,
              floating[:, ::1] dz, floating[:, ::1] dx, floating[:, ::1] dw,
              floating[::1] db, int nt):
    """Dense backward: dz (may be da), dx (None when not needed), dw, db are outputs."""
    cdef int st
    cdef floating *dxp = NULL
    cdef const floating *ap = NULL
    if dx is not None:
        dxp = &dx[0, 0]
    if a is not None:
        ap = &a[0, 0]
    with nogil:
        if floating is float:
            st = fnn_dense_bwd_f32(x.shape[0], x.shape[1], w.shape[1], &x[0, 0], &w[0, 0], ap,
                                   &da[0, 0], act, alpha, l2, &dz[0, 0], dxp, &dw[0, 0],
                                   &db[0], nt, &_BLAS)
        else:
            st = fnn_dense_bwd_f64(x.shape[0], x.shape[1], w.shape[1], &x[0, 0], &w[0, 0], ap,
                                   &da[0, 0], act, alpha, l2, &dz[0, 0], dxp, &dw[0, 0],
                                   &db[0], nt, &_BLAS)
    _check(st)


def gemm(const floating[:, :] a, const floating[:, :] b, floating[:, :] c,
         bint trans_a, bint trans_b, bint accumulate, int nt):
    """C = op(A) @ op(B) (+ C with accumulate), op transposing when asked.
    Each row must be contiguous; rows may be any distance apart (a block of
    a larger array)."""
    cdef int st
    cdef int64_t m = c.shape[0], n = c.shape[1]
    cdef Py_ssize_t item = sizeof(floating)
    if a.strides[1] != item or b.strides[1] != item or c.strides[1] != item or \
            a.strides[0] % item or b.strides[0] % item or c.strides[0] % item:
        raise ValueError("gemm: every row must be contiguous")
    cdef int64_t k = a.shape[0] if trans_a else a.shape[1]
    if (a.shape[1] if trans_a else a.shape[0]) != m or \
            (b.shape[1] if trans_b else b.shape[0]) != k or \
            (b.shape[0] if trans_b else b.shape[1]) != n:
        raise ValueError("gemm: shapes %s, %s and %s do not match" % (
            (a.shape[0], a.shape[1]), (b.shape[0], b.shape[1]), (c.shape[0], c.shape[1])))
    with nogil:
        if floating is float:
            st = fnn_gemm_f32(trans_a, trans_b, m, n, k, &a[0, 0], a.strides[0] // item,
                              &b[0, 0], b.strides[0] // item, accumulate, &c[0, 0],
                              c.strides[0] // item, nt, &_BLAS)
        else:
            st = fnn_gemm_f64(trans_a, trans_b, m, n, k, &a[0, 0], a.strides[0] // item,
                              &b[0, 0], b.strides[0] // item, accumulate, &c[0, 0],
                              c.strides[0] // item, nt, &_BLAS)
    _check(st)


def col_sum(const floating[:, ::1] x, floating[::1] out, int nt):
    """out = column sums of x, in a fixed order."""
    cdef int st
    with nogil:
        if floating is float:
            st = fnn_col_sum_f32(x.shape[0], x.shape[1], &x[0, 0], &out[0], nt)
        else:
            st = fnn_col_sum_f64(x.shape[0], x.shape[1], &x[0, 0], &out[0], nt)
    _check(st)


def softmax_xent(const floating[:, ::1] z, const int64_t[::1] labels,
                 const floating[:, ::1] y, const floating[::1] sw, floating[:, ::1] dz, int nt):
    """Fused softmax cross-entropy; exactly one of labels and y is given; sw
    (sample weights) and dz may be None."""
    cdef int st
    cdef double loss = 0.0
    cdef const int64_t *lp = NULL
    cdef const floating *yp = NULL
    cdef const floating *swp = NULL
    cdef floating *dzp = NULL
    if labels is not None:
        lp = &labels[0]
    if y is not None:
        yp = &y[0, 0]
    if sw is not None:
        swp = &sw[0]
    if dz is not None:
        dzp = &dz[0, 0]
    with nogil:
        if floating is float:
            st = fnn_softmax_xent_f32(z.shape[0], z.shape[1], &z[0, 0], lp, yp, swp, dzp, &loss,
                                      nt)
        else:
            st = fnn_softmax_xent_f64(z.shape[0], z.shape[1], &z[0, 0], lp, yp, swp, dzp, &loss,
                                      nt)
    _check(st)
    return loss


def elementwise_loss(int loss_id, const floating[:, ::1] z, const floating[:, ::1] y,
                     const floating[::1] sw, floating[:, ::1] dz, int nt):
    """One of the elementwise losses, by id (FNN_LOSS_BINARY_CROSS_ENTROPY,
    FNN_LOSS_MSE, FNN_LOSS_POISSON); sw (sample weights) and dz may be None."""
    cdef int st
    cdef double loss = 0.0
    cdef const floating *swp = NULL
    cdef floating *dzp = NULL
    cdef int64_t m = z.shape[0], n = z.shape[1]
    if sw is not None:
        swp = &sw[0]
    if dz is not None:
        dzp = &dz[0, 0]
    if loss_id not in (FNN_LOSS_BINARY_CROSS_ENTROPY, FNN_LOSS_MSE, FNN_LOSS_POISSON):
        raise ValueError("elementwise_loss: loss id %d is not elementwise" % loss_id)
    with nogil:
        if floating is float:
            if loss_id == FNN_LOSS_BINARY_CROSS_ENTROPY:
                st = fnn_sigmoid_bce_f32(m, n, &z[0, 0], &y[0, 0], swp, dzp, &loss, nt)
            elif loss_id == FNN_LOSS_POISSON:
                st = fnn_poisson_f32(m, n, &z[0, 0], &y[0, 0], swp, dzp, &loss, nt)
            else:
                st = fnn_mse_f32(m, n, &z[0, 0], &y[0, 0], swp, dzp, &loss, nt)
        else:
            if loss_id == FNN_LOSS_BINARY_CROSS_ENTROPY:
                st = fnn_sigmoid_bce_f64(m, n, &z[0, 0], &y[0, 0], swp, dzp, &loss, nt)
            elif loss_id == FNN_LOSS_POISSON:
                st = fnn_poisson_f64(m, n, &z[0, 0], &y[0, 0], swp, dzp, &loss, nt)
            else:
                st = fnn_mse_f64(m, n, &z[0, 0], &y[0, 0], swp, dzp, &loss, nt)
    _check(st)
    return loss


def sgd_step(floating[::1] p, const floating[::1] g, double lr, int nt):
    cdef int st
    with nogil:
        if floating is float:
            st = fnn_sgd_step_f32(p.shape[0], &p[0], &g[0], lr, nt)
        else:
            st = fnn_sgd_step_f64(p.shape[0], &p[0], &g[0], lr, nt)
    _check(st)


def momentum_step(floating[::1] p, const floating[::1] g, floating[::1] v, double lr,
                  double beta, int nt):
    cdef int st
    with nogil:
        if floating is float:
            st = fnn_momentum_step_f32(p.shape[0], &p[0], &g[0], &v[0], lr, beta, nt)
        else:
            st = fnn_momentum_step_f64(p.shape[0], &p[0], &g[0], &v[0], lr, beta, nt)
    _check(st)


def classical_momentum_step(floating[::1] p, const floating[::1] g, floating[::1] v,
                            double lr, double momentum, bint nesterov, int nt):
    cdef int st
    with nogil:
        if floating is float:
            st = fnn_classical_momentum_step_f32(p.shape[0], &p[0], &g[0], &v[0], lr,
                                                 momentum, nesterov, nt)
        else:
            st = fnn_classical_momentum_step_f64(p.shape[0], &p[0], &g[0], &v[0], lr,
                                                 momentum, nesterov, nt)
    _check(st)


def rmsprop_step(floating[::1] p, const floating[::1] g, floating[::1] s, double lr,
                 double beta, double eps, int nt):
    cdef int st
    with nogil:
        if floating is float:
            st = fnn_rmsprop_step_f32(p.shape[0], &p[0], &g[0], &s[0], lr, beta, eps, nt)
        else:
            st = fnn_rmsprop_step_f64(p.shape[0], &p[0], &g[0], &s[0], lr, beta, eps, nt)
    _check(st)


def adam_step(floating[::1] p, const floating[::1] g, floating[::1] m, floating[::1] v,
              int64_t t, double lr, double beta1, double beta2, double eps,
              double weight_decay, int nt):
    cdef int st
    with nogil:
        if floating is float:
            st = fnn_adam_step_f32(p.shape[0], &p[0], &g[0], &m[0], &v[0], t, lr, beta1,
                                   beta2, eps, weight_decay, nt)
        else:
            st = fnn_adam_step_f64(p.shape[0], &p[0], &g[0], &m[0], &v[0], t, lr, beta1,
                                   beta2, eps, weight_decay, nt)
    _check(st)


def adam_folded_step(floating[::1] p, const floating[::1] g, floating[::1] m, floating[::1] v,
                     int64_t t, double lr, double beta1, double beta2, double eps, int nt):
    cdef int st
    with nogil:
        if floating is float:
            st = fnn_adam_folded_step_f32(p.shape[0], &p[0], &g[0], &m[0], &v[0], t, lr, beta1,
                                          beta2, eps, nt)
        else:
            st = fnn_adam_folded_step_f64(p.shape[0], &p[0], &g[0], &m[0], &v[0], t, lr, beta1,
                                          beta2, eps, nt)
    _check(st)


def sumsq(const floating[::1] x, int nt):
    """Sum of squares in double, with a fixed summation order."""
    cdef int st
    cdef double out = 0.0
    with nogil:
        if floating is float:
            st = fnn_sumsq_f32(x.shape[0], &x[0], &out, nt)
        else:
            st = fnn_sumsq_f64(x.shape[0], &x[0], &out, nt)
    _check(st)
    return out


def scale(floating[::1] x, double s, int nt):
    cdef int st
    with nogil:
        if floating is float:
            st = fnn_scale_f32(x.shape[0], &x[0], s, nt)
        else:
            st = fnn_scale_f64(x.shape[0], &x[0], s, nt)
    _check(st)


def clip_value(floating[::1] x, double c, int nt):
    cdef int st
    with nogil:
        if floating is float:
            st = fnn_clip_value_f32(x.shape[0], &x[0], c, nt)
        else:
            st = fnn_clip_value_f64(x.shape[0], &x[0], c, nt)
    _check(st)


def all_finite(const floating[::1] x, int nt):
    cdef int r
    with nogil:
        if floating is float:
            r = fnn_all_finite_f32(x.shape[0], &x[0], nt)
        else:
            r = fnn_all_finite_f64(x.shape[0], &x[0], nt)
    return bool(r)


def dropout_apply(const floating[:, ::1] x, floating[:, ::1] out, double rate,
                  uint64_t key, int nt):
    """out = x * mask(key); out may be x."""
    cdef int st
    with nogil:
        if floating is float:
            st = fnn_dropout_apply_f32(x.shape[0], x.shape[1], &x[0, 0], &out[0, 0], rate,
                                       key, nt)
        else:
            st = fnn_dropout_apply_f64(x.shape[0], x.shape[1], &x[0, 0], &out[0, 0], rate,
                                       key, nt)
    _check(st)


def standardize_fit(const floating[:, ::1] x, floating[::1] mean, floating[::1] std, int nt):
    cdef int st
    with nogil:
        if floating is float:
            st = fnn_standardize_fit_f32(x.shape[0], x.shape[1], &x[0, 0], &mean[0], &std[0], nt)
        else:
            st = fnn_standardize_fit_f64(x.shape[0], x.shape[1], &x[0, 0], &mean[0], &std[0], nt)
    _check(st)


def standardize_transform(const floating[:, ::1] x, const floating[::1] mean,
                          const floating[::1] std, floating[:, ::1] out, int nt):
    cdef int st
    with nogil:
        if floating is float:
            st = fnn_standardize_transform_f32(x.shape[0], x.shape[1], &x[0, 0], &mean[0],
                                               &std[0], &out[0, 0], nt)
        else:
            st = fnn_standardize_transform_f64(x.shape[0], x.shape[1], &x[0, 0], &mean[0],
                                               &std[0], &out[0, 0], nt)
    _check(st)


def layer_stats(const floating[:, ::1] a, int nt):
    """(mean, variance, dead fraction) of a layer's activations."""
    cdef int st
    cdef double out3[3]
    with nogil:
        if floating is float:
            st = fnn_layer_stats_f32(a.shape[0], a.shape[1], &a[0, 0], out3, nt)
        else:
            st = fnn_layer_stats_f64(a.shape[0], a.shape[1], &a[0, 0], out3, nt)
    _check(st)
    return out3[0], out3[1], out3[2]


def center_loss(const floating[:, ::1] x, const int64_t[::1] labels,
                const floating[:, ::1] centers, double lam, floating[:, ::1] dx, int nt):
    """Center loss value; adds its gradient to dx unless dx is None."""
    cdef int st
    cdef double loss = 0.0
    cdef floating *dxp = NULL
    if dx is not None:
        dxp = &dx[0, 0]
    with nogil:
        if floating is float:
            st = fnn_center_loss_f32(x.shape[0], x.shape[1], centers.shape[0], &x[0, 0],
                                     &labels[0], &centers[0, 0], lam, dxp, &loss, nt)
        else:
            st = fnn_center_loss_f64(x.shape[0], x.shape[1], centers.shape[0], &x[0, 0],
                                     &labels[0], &centers[0, 0], lam, dxp, &loss, nt)
    _check(st)
    return loss


def center_update(const floating[:, ::1] x, const int64_t[::1] labels,
                  floating[:, ::1] centers, double alpha, double[::1] scratch):
    """Moves the class centers towards the batch's features, in place."""
    cdef int st
    with nogil:
        if floating is float:
            st = fnn_center_update_f32(x.shape[0], x.shape[1], centers.shape[0], &x[0, 0],
                                       &labels[0], &centers[0, 0], alpha, &scratch[0])
        else:
            st = fnn_center_update_f64(x.shape[0], x.shape[1], centers.shape[0], &x[0, 0],
                                       &labels[0], &centers[0, 0], alpha, &scratch[0])
    _check(st)


include "_net.pxi"
include "_allsum.pxi"
