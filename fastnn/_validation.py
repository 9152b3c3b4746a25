"""Boundary checks: every public entry point validates here, once, so kernels
never see a wrong shape, dtype, layout or option.

Rules: floating arrays stay in their dtype (float32 or float64); integer
arrays are converted to the dtype of the computation; bool, complex, object
and string arrays are refused with a message naming the dtype. Inputs of any
layout are accepted (copied to C order once); output buffers must already be
exactly right, since writing into a copy would lose the result.
"""

import mmap
import numbers

import numpy as np

from fastnn import _kernels

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
FLOAT_DTYPE_NAMES = {"float32": np.float32, "float64": np.float64}
_BLAS_INT_MAX = 2**31 - 1


def _dtype_error(name, dtype):
    return TypeError("%s has dtype %s; fastnn computes in float32 or float64 "
                     "(integer arrays are converted, bool, complex, object and "
                     "string arrays are not)" % (name, dtype))


def compute_dtype(*arrays):
    """The floating dtype a call computes in: that of the first floating array,
    float64 when every array is an integer array."""
    for a in arrays:
        if a is not None and np.asarray(a).dtype in FLOAT_DTYPES:
            return np.asarray(a).dtype
    return np.dtype(np.float64)


def as_float_array(x, name, dtype, ndim=None, allow_empty=False, convert_floats=False):
    """x as a C-contiguous array of `dtype` with `ndim` dimensions.

    Integer input is converted. Floating input of the other precision is
    refused unless convert_floats (targets are data and are converted; mixing
    float32 and float64 operands of one computation is almost always a mistake
    that costs a silent copy)."""
    arr = np.asarray(x)
    kind = arr.dtype.kind
    if kind == "f" and convert_floats and arr.dtype.itemsize > np.dtype(dtype).itemsize:
        arr = _narrowed(arr, name, dtype)
    elif kind in "iu" or (kind == "f" and convert_floats):
        arr = arr.astype(dtype, copy=False)
    elif kind == "f":
        if arr.dtype != dtype:
            if arr.dtype not in FLOAT_DTYPES:
                raise _dtype_error(name, arr.dtype)
            raise TypeError("%s has dtype %s but this call computes in %s; convert it "
                            "with .astype(np.%s)" % (name, arr.dtype, dtype, dtype))
    else:
        raise _dtype_error(name, arr.dtype)
    if ndim is not None and arr.ndim != ndim:
        hint = " (a single sample needs shape (1, n): use x.reshape(1, -1))" \
            if ndim == 2 and arr.ndim == 1 else ""
        raise ValueError("%s must be %d-dimensional, got shape %s%s"
                         % (name, ndim, arr.shape, hint))
    if not allow_empty and arr.size == 0:
        raise ValueError("%s is empty (shape %s)" % (name, arr.shape))
    return np.ascontiguousarray(arr)


def _narrowed(arr, name, dtype):
    """arr converted to a narrower float dtype; a finite value beyond its
    range, which would become infinite, raises ValueError saying so (rather
    than the later check's "contains NaN or infinity")."""
    with np.errstate(over="ignore"):
        out = arr.astype(dtype)
    infinite = np.isinf(out)
    if not infinite.any():
        return out
    overflowed = infinite & np.isfinite(arr)
    if overflowed.any():
        raise ValueError("%s has values beyond the range of %s (largest magnitude %.3g, the "
                         "largest %s is %.3g): scale it, or use a float64 model"
                         % (name, np.dtype(dtype).name, np.max(np.abs(arr[overflowed])),
                            np.dtype(dtype).name, np.finfo(dtype).max))
    return out


def is_memory_mapped(x):
    """Whether x is an array whose elements live in a memory-mapped file
    (np.memmap, np.load(..., mmap_mode=...), or a view of one)."""
    while isinstance(x, np.ndarray):
        if isinstance(x, np.memmap):
            return True
        x = x.base
    return isinstance(x, mmap.mmap)


def check_mapped_layout(x, name, dtype):
    """A memory-mapped x is used where it lies, never converted: converting it
    would copy the whole file into memory. Refuse one that is not already
    C-ordered in `dtype`, saying how to fix it."""
    if not is_memory_mapped(x):
        return
    if x.dtype != dtype:
        raise TypeError("%s is a memory-mapped %s array but the model computes in %s: "
                        "converting it would copy all of it into memory; build the model "
                        "with dtype=%r or write the file as %s"
                        % (name, x.dtype, dtype, x.dtype.name, dtype))
    if not x.flags.c_contiguous:
        raise ValueError("%s is a memory-mapped array that is not in C order (row-major): "
                         "reordering it would copy all of it into memory; write the file in "
                         "C order" % name)


def check_shape(arr, name, shape):
    if arr.shape != tuple(shape):
        raise ValueError("%s must have shape %s, got %s" % (name, tuple(shape), arr.shape))


def check_blas_dims(*dims, what="dimension"):
    """The BLAS takes 32-bit sizes: refuse anything larger, before it can wrap.
    what: the sizes' meaning, for the message."""
    for d in dims:
        if d > _BLAS_INT_MAX:
            raise ValueError("%s %d exceeds 2**31 - 1, the largest size the BLAS's 32-bit "
                             "interface takes" % (what, d))


def is_finite(arr, n_threads=1):
    """Whether every element of arr is finite (one pass of the kernel over a
    floating array, no temporary)."""
    flat = np.ascontiguousarray(arr).reshape(-1)
    if flat.dtype in FLOAT_DTYPES:
        return bool(_kernels.all_finite(flat, n_threads))
    return bool(np.all(np.isfinite(flat)))


def check_finite(arr, name):
    """Raise when arr holds NaN or infinity."""
    if not is_finite(arr):
        raise ValueError("%s contains NaN or infinity" % name)


def _same_view(a, b):
    """a and b are the very same elements in the same order (one array, two names)."""
    return (a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
            and a.shape == b.shape and a.strides == b.strides and a.dtype == b.dtype)


def _overlap(a, b):
    # the bounds decide most cases at once; the exact test settles interleaved
    # strides (two column views of one array share bounds but no element)
    return np.may_share_memory(a, b) and np.shares_memory(a, b)


def check_no_overlap(writes, reads, in_place=()):
    """Refuse buffers a kernel writes that share memory with an array it reads,
    or with each other: the result would silently be wrong.

    writes, reads: (name, array or None) pairs; only ndarrays can overlap.
    in_place: (write name, read name) pairs for which the kernel is written to
    run in place, so the two may be exactly the same array (never a shifted or
    reshaped view of it)."""
    writes = [(n, a) for n, a in writes if isinstance(a, np.ndarray)]
    reads = [(n, a) for n, a in reads if isinstance(a, np.ndarray)]
    for i, (name, w) in enumerate(writes):
        for other, r in reads:
            if not _overlap(w, r):
                continue
            if (name, other) in in_place:
                if _same_view(w, r):
                    continue
                raise ValueError("%s must not overlap %s unless it is %s itself (which runs "
                                 "in place); it shares memory with a shifted or reshaped view "
                                 "of it" % (name, other, other))
            raise ValueError("%s must not overlap %s (they share memory); pass a separate "
                             "buffer" % (name, other))
        for other, w2 in writes[i + 1:]:
            if _overlap(w, w2):
                raise ValueError("%s must not overlap %s: both are written, so they must "
                                 "be separate buffers" % (name, other))


def out_buffer_or_none(out, name, shape, dtype):
    """The caller's output buffer, checked to fit exactly (a kernel cannot write
    into a copy), or None when there is none."""
    if out is None:
        return None
    if not isinstance(out, np.ndarray):
        raise TypeError("%s must be a numpy.ndarray, got %s" % (name, type(out).__name__))
    if out.dtype != dtype:
        raise TypeError("%s must have dtype %s, got %s" % (name, dtype, out.dtype))
    check_shape(out, name, shape)
    if not out.flags.c_contiguous:
        raise ValueError("%s must be C-contiguous" % name)
    if not out.flags.writeable:
        raise ValueError("%s is read-only" % name)
    return out


def inplace_array(x, name, dtype=None, shape=None):
    """An array the kernel updates in place: must be a writeable ndarray of a
    floating dtype (and of `dtype`/`shape` when given). Non-contiguous arrays
    are allowed; the caller works on a contiguous copy and writes it back."""
    if not isinstance(x, np.ndarray):
        raise TypeError("%s must be a numpy.ndarray updated in place, got %s"
                        % (name, type(x).__name__))
    if x.dtype not in FLOAT_DTYPES:
        raise _dtype_error(name, x.dtype)
    if dtype is not None and x.dtype != dtype:
        raise TypeError("%s has dtype %s but the parameters are %s" % (name, x.dtype, dtype))
    if shape is not None and x.shape != shape:
        raise ValueError("%s must have the parameter's shape %s, got %s" % (name, shape, x.shape))
    if not x.flags.writeable:
        raise ValueError("%s is read-only but is updated in place" % name)
    return x


def check_scalar(value, name, low=None, high=None, low_inclusive=True, high_inclusive=True):
    """A finite real number within [low, high] (bounds optional, inclusivity per side)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError("%s must be a real number, got %r" % (name, value))
    v = float(value)
    if not np.isfinite(v):
        raise ValueError("%s must be finite, got %r" % (name, value))
    if low is not None and (v < low or (v == low and not low_inclusive)):
        raise ValueError("%s must be %s %s, got %r"
                         % (name, ">=" if low_inclusive else ">", low, value))
    if high is not None and (v > high or (v == high and not high_inclusive)):
        raise ValueError("%s must be %s %s, got %r"
                         % (name, "<=" if high_inclusive else "<", high, value))
    return v


def check_in_dtype(value, name, dtype, nonzero=False):
    """A real hyperparameter the kernel rounds to `dtype` once: it must stay
    finite there (1e300 is a finite double but infinite as a float32, and an
    infinite factor times a zero gives NaN), and with nonzero=True it must not
    round to zero (an eps of 0 divides 0 by 0)."""
    dtype = np.dtype(dtype)
    info = np.finfo(dtype)
    if abs(value) > float(info.max):
        raise ValueError("%s=%r is too large for %s: it would round to infinity (the largest "
                         "finite %s is %g)" % (name, value, dtype, dtype, info.max))
    if nonzero and value != 0 and dtype.type(value) == 0:
        raise ValueError("%s=%r rounds to 0 in %s (the smallest positive %s is %g)"
                         % (name, value, dtype, dtype, info.smallest_subnormal))
    return value


def check_int(value, name, low=None, high=None):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError("%s must be an integer, got %r" % (name, value))
    v = int(value)
    if low is not None and v < low:
        raise ValueError("%s must be >= %d, got %d" % (name, low, v))
    if high is not None and v > high:
        raise ValueError("%s must be <= %d, got %d" % (name, high, v))
    return v
