"""Accuracy of fastnn's vector math functions, in ulp.

    python tools/vmath_ulp.py                  every float32 input (2^32 of them), each function
    python tools/vmath_ulp.py --functions tanh --isa generic

For each unary function of src_c/vmath.inc.c (exp, expm1, log1p, log, tanh,
sigmoid, softplus) it evaluates fastnn's float32 kernel on every float32 bit
pattern and prints the largest error in units in the last place of the
correctly rounded result, with the input where it occurs. The reference is
NumPy's float64 function on the same input (below 1 ulp of float64, so
within 2^-29 of the float32 value being judged). NaN must give NaN; an
infinity or a zero must match exactly.
"""

import argparse
import sys
import time

import numpy as np


def reference(name, x):
    """The float64 value of function `name` at x (any float array)."""
    with np.errstate(all="ignore"):  # signalling NaNs, overflow to inf, log(0)
        x = np.asarray(x, dtype=np.float64)
        if name == "sigmoid":
            e = np.exp(-np.abs(x))
            return np.where(x >= 0, 1.0, e) / (1.0 + e)
        if name == "softplus":
            return np.logaddexp(0.0, x)
        return getattr(np, name)(x)


def ulp_error(got, want, dtype):
    """|got - want| in ulp of want rounded to dtype (the spacing at that value;
    the smallest subnormal below the normal range). Matching NaNs, infinities
    and zeros count 0; a NaN or infinity where the other is not counts inf."""
    got = np.asarray(got)
    with np.errstate(over="ignore"):  # a value past the dtype's range rounds to inf
        rounded = want.astype(dtype)
    same = (got == rounded) | (np.isnan(got) & np.isnan(rounded))
    with np.errstate(over="ignore", invalid="ignore"):
        spacing = np.abs(np.spacing(rounded)).astype(np.float64)
    tiny = float(np.finfo(dtype).smallest_subnormal)
    spacing = np.where(spacing < tiny, tiny, spacing)
    with np.errstate(all="ignore"):
        err = np.abs(got.astype(np.float64) - want) / spacing
    err = np.where(np.isnan(err), np.inf, err)
    return np.where(same, 0.0, err)


def worst(name, x, isa=None, n_threads=None):
    """(max ulp error, input) of fastnn's `name` over the inputs x."""
    from fastnn import _kernels

    y = np.empty_like(x)
    _kernels.vm_apply(_kernels.VM_FUNCTIONS[name], x, y, n_threads or 1)
    want = reference(name, x)
    with np.errstate(over="ignore"):
        exact = y == want.astype(x.dtype)
    # most results are the correctly rounded value: measure the others only
    rest = np.flatnonzero(~exact)
    if rest.size == 0:
        return 0.0, x[0]
    err = ulp_error(y[rest], want[rest], x.dtype)
    i = int(np.argmax(err))
    return float(err[i]), x[rest[i]]


def main(argv=None):
    import fastnn
    from fastnn import _kernels

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--functions", default=",".join(_kernels.VM_FUNCTIONS),
                        help="comma-separated functions (default: all)")
    parser.add_argument("--isa", default=None, help="instruction set (default: FASTNN_ISA or best)")
    parser.add_argument("--chunk-bits", type=int, default=24, help="inputs per chunk: 2^bits")
    args = parser.parse_args(argv)
    if args.isa:
        fastnn.set_isa(args.isa)
    threads = fastnn.get_num_threads()
    print("fastnn %s, instruction set %s, every float32 input, %d threads"
          % (fastnn.__version__, fastnn.get_isa(), threads))
    step = 1 << args.chunk_bits
    for name in args.functions.split(","):
        t0 = time.perf_counter()
        max_err, at = 0.0, np.float32(0)
        for start in range(0, 1 << 32, step):
            x = np.arange(start, start + step, dtype=np.uint64).astype(np.uint32).view(np.float32)
            err, arg = worst(name, x, n_threads=threads)
            if err > max_err:
                max_err, at = err, arg
        print("%-9s max error %.3f ulp at x = %r (%.0f s)"
              % (name, max_err, float(at), time.perf_counter() - t0), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
