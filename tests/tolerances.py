"""The one place where test tolerances live.

assert_close(actual, desired, kind, scale=None, k=1) checks
    |actual - desired| <= rtol * |desired| + atol
per element, with rtol from the table below and
    atol = ATOL_FACTOR * eps(dtype) * sqrt(k) * scale,
where `scale` is the magnitude of the terms the result was computed from
(for a GEMM, max of |A| @ |B|; for a fused loss gradient, 1/m) and k the
length of the reduction. The absolute part exists because a result that
cancels (p - y with p close to y, a sum of terms of both signs) carries an
error proportional to its terms, not to itself: that is IEEE arithmetic, not
slack. Nothing is loosened per test.
"""

import numpy as np

RTOL = {
    # elementwise kernels: a few ulp each side (fastnn's vector math, within
    # MAX_ULP below, against NumPy's exp/tanh, within about 1 ulp)
    "elementwise": {np.float32: 1e-6, np.float64: 1e-13},
    # anything with a GEMM or a long reduction
    "gemm": {np.float32: 1e-5, np.float64: 1e-12},
    # optimizer parity after several steps
    "optim": {np.float32: 1e-5, np.float64: 1e-12},
    # whole training runs of fastnn.sklearn against scikit-learn's NumPy MLP
    # (same initial weights, batches and optimizer): each step's rounding
    # (blocked GEMMs against one matmul, libm against NumPy's exp) is carried
    # into the next. Measured after 15 epochs: 1e-15 relative in the loss,
    # 4e-16 absolute in the weights.
    "training": {np.float32: 1e-4, np.float64: 1e-10},
}
ATOL_FACTOR = 8.0

# The vector math functions (src_c/vmath.inc.c), in ulp of the correctly
# rounded result. Measured maxima: float32 over every input
# (docs/performance/vmath-ulp-float32-avx2.txt) 2.4 for tanh and sigmoid, below
# 2 for the others; float64 over tests/test_vmath.py's dense sample 3 for tanh, 2 for
# expm1, sigmoid and softplus. The bound adds no more than the reference's own
# last bit (NumPy's float64 functions are within 1 ulp of float64, which is
# 2^-29 of a float32 ulp and up to 1 ulp of a float64 one).
MAX_ULP = {np.float32: 3.0, np.float64: 4.0}


def eps(dtype):
    return float(np.finfo(dtype).eps)


def tol(dtype, kind):
    """(rtol, eps) for a dtype and kernel kind."""
    dtype = np.dtype(dtype).type
    return RTOL[kind][dtype], eps(dtype)


def assert_close(actual, desired, kind, scale=None, k=1, err_msg="", dtype=None):
    """dtype: the precision the result was computed from (default: desired's);
    a float64 loss computed from float32 inputs is judged as float32."""
    actual = np.asarray(actual)
    desired = np.asarray(desired)
    assert actual.shape == desired.shape, (actual.shape, desired.shape)
    if dtype is None:
        dtype = desired.dtype if desired.dtype.kind == "f" else np.float64
    rtol, e = tol(dtype, kind)
    if scale is None:
        scale = float(np.max(np.abs(desired))) if desired.size else 0.0
    atol = ATOL_FACTOR * e * np.sqrt(k) * float(scale)
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=atol, err_msg=err_msg)


def gemm_scale(A, B):
    """max of |A| @ |B|: the magnitude a GEMM's rounding error is relative to."""
    return float(np.max(np.abs(np.asarray(A, dtype=np.float64)) @
                        np.abs(np.asarray(B, dtype=np.float64))))


# Finite differences (float64, 4th-order central, h = 1e-4): truncation error
# ~ h^4 |f^(5)| ~ 1e-16 and rounding error ~ eps |f| / h ~ 1e-12 for |f| ~ 1,
# so 1e-7 relative with a 1e-9 floor separates a correct gradient from a wrong
# one by many orders of magnitude.
FD_STEP = 1e-4
FD_RTOL = 1e-7
FD_ATOL = 1e-9
