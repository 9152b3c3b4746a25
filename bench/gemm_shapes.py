"""Every matrix product of the benchmark networks' training steps, on its own:
fastnn's packed micro-kernels against its BLAS path (one single-threaded
BLAS call per block), NumPy's matmul (the BLAS's own threads) and, when the
`blis` wheel is installed (the bench extra), BLIS's gemm (that wheel runs on
one thread; float32 only: its float64 gemm with a transposed second operand
corrupts the heap, in blis 1.3.4), as GFLOP/s and as a share of the
machine's sgemm/dgemm peak.

    python bench/gemm_shapes.py [--threads 2] [--dtype float32] [--seconds 0.5]

A training step of a layer n_in -> n_out on a batch of m rows runs three
products: forward Z = X W (M, N, K = m, n_out, n_in), the weight gradient
dW = X^T dZ (n_in, n_out, m) and the input gradient dX = dZ W^T (m, n_in,
n_out; not for the first layer). Each is timed as the best of repeated
bursts of --seconds, the three contenders interleaved so that a busy machine
slows them alike. The peak is the best 4096^3 product through SciPy's BLAS on
the same threads.
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import fastnn  # noqa: E402
from fastnn import _kernels  # noqa: E402
from fastnn._threads import blas_threads  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402
from workers import gemm_peak  # noqa: E402

# (name, layer widths, batch): compare.py's workloads and the sweep's base,
# deep, wide and batch configurations
NETWORKS = [
    ("W1", (784, 256, 128, 10), 128),
    ("W2", (32, 64, 64, 1), 32),
    ("W3", (1024, 2048, 2048, 10), 512),
    ("base", (64, 256, 256, 10), 64),
    ("depth=10", (100,) + (128,) * 10 + (5,), 64),
    ("width=1024", (64, 1024, 1024, 10), 64),
    ("batch=1024", (64, 256, 256, 10), 1024),
]


def products(networks):
    """Unique (M, N, K, trans_a, trans_b, what) over the networks' steps."""
    seen = {}
    for name, widths, m in networks:
        for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
            steps = [((m, n_out, n_in, 0, 0), "forward"), ((n_in, n_out, m, 1, 0), "dW")]
            if i > 0:
                steps.append(((m, n_in, n_out, 0, 1), "dX"))
            for key, what in steps:
                seen.setdefault(key, []).append("%s %s L%d" % (name, what, i + 1))
    # a product shared by many layers is named by its first three
    return {k: v[:3] + (["..."] if len(v) > 3 else []) for k, v in seen.items()}


def best_burst(fn, seconds):
    fn()
    reps = 1
    t0 = time.perf_counter()
    fn()
    one = time.perf_counter() - t0
    reps = max(1, int(0.05 / max(one, 1e-7)))
    best = float("inf")
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        best = min(best, (time.perf_counter() - t0) / reps)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--seconds", type=float, default=0.5,
                        help="per contender and product, in bursts of about 50 ms")
    args = parser.parse_args(argv)
    dtype = np.dtype(args.dtype)
    peak = gemm_peak(args.threads, args.dtype)
    print("fastnn %s, %s, %d threads, instruction set %s; OPENBLAS_CORETYPE=%s "
          "OPENBLAS_L2_SIZE=%s" % (fastnn.__version__, args.dtype, args.threads,
                                   fastnn.get_isa(), os.environ.get("OPENBLAS_CORETYPE"),
                                   os.environ.get("OPENBLAS_L2_SIZE")))
    try:
        from blis.py import gemm as blis_gemm
    except ImportError:
        blis_gemm = None
    if dtype != np.float32:
        blis_gemm = None  # see the module docstring
    rng = np.random.default_rng(0)
    previous = fastnn.get_gemm_path()
    shares, rows = [], []
    try:
        for (M, N, K, ta, tb), users in products(NETWORKS).items():
            A = rng.standard_normal((K, M) if ta else (M, K)).astype(dtype)
            B = rng.standard_normal((N, K) if tb else (K, N)).astype(dtype)
            C = np.empty((M, N), dtype)
            Aop, Bop = (A.T if ta else A), (B.T if tb else B)
            times = {"packed": float("inf"), "blas": float("inf")}
            if blis_gemm:
                times["blis"] = float("inf")

            def run_fastnn():
                _kernels.gemm(A, B, C, ta, tb, False, args.threads)

            def run_blis():
                blis_gemm(A, B, out=C, trans1=bool(ta), trans2=bool(tb), beta=0.0)

            def run_numpy(Aop=Aop, Bop=Bop, C=C):  # bound now: it runs after the loop
                np.matmul(Aop, Bop, out=C)
            for _ in range(3):  # interleaved rounds
                for path in ("packed", "blas"):
                    fastnn.set_gemm_path(path)
                    with blas_threads(1):
                        times[path] = min(times[path], best_burst(run_fastnn, args.seconds / 3))
                if blis_gemm:
                    times["blis"] = min(times["blis"], best_burst(run_blis, args.seconds / 3))
            rows.append([M, N, K, ta, tb, users, times, run_numpy])
        # NumPy last: the BLAS's own threads keep spinning for a while after a
        # threaded call and would slow whatever runs next on the same cores
        with threadpool_limits(args.threads, user_api="blas"):
            for row in rows:
                row[6]["numpy"] = best_burst(row[7], args.seconds)
    finally:
        fastnn.set_gemm_path(previous)
    # a peak measured while the machine was busy would flatter every share
    peak = max(peak, gemm_peak(args.threads, args.dtype))
    print("%s peak (4096^3, SciPy's BLAS, %d threads, best of two measurements): %.0f GFLOP/s"
          % ("sgemm" if args.dtype == "float32" else "dgemm", args.threads, peak))
    print()
    print("| M | N | K | op | used by | packed GFLOP/s | % of peak | BLAS blocks | "
          "NumPy matmul | BLIS, 1 thread | packed / BLAS blocks |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for M, N, K, ta, tb, users, times, _ in rows:
        gf = {k: 2.0 * M * N * K / t / 1e9 for k, t in times.items()}
        shares.append((M, gf["packed"] / peak))
        op = {(0, 0): "X W", (1, 0): "X^T dZ", (0, 1): "dZ W^T"}[(ta, tb)]
        print("| %d | %d | %d | %s | %s | %.1f | %.0f%% | %.1f | %.1f | %s | %.2fx |"
              % (M, N, K, op, ", ".join(users), gf["packed"], 100 * gf["packed"] / peak,
                 gf["blas"], gf["numpy"], "%.1f" % gf["blis"] if "blis" in gf else "n/a",
                 gf["packed"] / gf["blas"]))
    big = [s for m, s in shares if m >= 128]
    small = [s for m, s in shares if m < 128]
    print()
    if big:
        print("packed, M >= 128: median %.0f%% of peak, lowest %.0f%%"
              % (100 * np.median(big), 100 * min(big)))
    if small:
        print("packed, M < 128: median %.0f%% of peak, lowest %.0f%%"
              % (100 * np.median(small), 100 * min(small)))


if __name__ == "__main__":
    main()
