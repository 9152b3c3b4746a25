"""Kernel benchmarks: fastnn.ops (C/OpenMP, "fast") against fastnn.reference
(NumPy, "reference"), float32 and float64, with the default thread count
(fastnn.get_num_threads(); OMP_NUM_THREADS changes it).

Measured: dense_forward (every activation at (256, 784) @ (784, 256), relu at
(1024, 1024) @ (1024, 1024)), dense_backward (relu, same shapes),
softmax_cross_entropy with integer labels, the five optimizer steps,
clip_grad_norm, dropout_forward, standardize_fit and layer_stats.

Both backends get the same arrays, drawn from a seeded numpy Generator outside
the timed region. Every function returns new arrays (no out= buffers), as the
reference does. Throughput goes into each benchmark's extra_info (shown with
--benchmark-json / --benchmark-save), computed from the median and the
minimum time:

* gflops: dense_forward counts 2*m*k*n (the GEMM only); dense_backward counts
  4*m*k*n (dW = X^T dZ and dX = dZ W^T); bias, activation and db are not counted.
* gbps: nominal bytes of one pass over the data, the same for both backends
  (the reference's temporaries are not counted). Optimizers: sgd reads p, g and
  writes p (3 arrays); momentum, classical momentum and rmsprop 5; adam 7.
  clip_grad_norm: read for the norm + read and write for the scaling (3).
  dropout_forward 2 (read A, write out); standardize_fit and layer_stats 1.

Optimizer steps are applied again and again to the same arrays (the values
drift but stay finite; the time does not depend on them). clip_grad_norm
restores its gradients from a pristine copy before every round (pedantic
setup, not timed), so every timed call computes the norm and scales.

Thread pools busy-wait for a while after their last task: OpenBLAS's
workers for about 2^28 cycles (~0.1 s), OpenMP's for its spin count. A pool
still spinning steals a core from the next benchmark's pool, so each benchmark
starts after an idle pause of SETTLE_S. Two-thread timings can still be
bimodal where the scheduler puts both threads on one core (seen on a 2-vCPU
VM): compare min with median before trusting a ratio.

Run from the repository root (about 1.5 minutes on 2 cores):

    python -m pytest bench/ --benchmark-only -p no:cacheprovider

Add --benchmark-columns=min,median,rounds to shorten the table, -k adam to
select benchmarks.
"""

import functools
import time

import numpy as np
import pytest

import fastnn
from fastnn import ops, reference

BACKENDS = {"fast": ops, "reference": reference}
DTYPES = {"float32": np.float32, "float64": np.float64}

TARGET_S = 0.3        # timed work per benchmark
MIN_ROUNDS = 3
MAX_ROUNDS = 200
MIN_ROUND_S = 2e-4    # tiny kernels loop inside a round so the timer does not dominate
SETTLE_S = 0.3        # idle pause before each benchmark (see the module docstring)

backend_param = pytest.mark.parametrize("backend", list(BACKENDS))
dtype_param = pytest.mark.parametrize("dtype", list(DTYPES))


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _normal(shape, dtype, seed, scale=1.0):
    """Read-only standard normal data (scaled), the same for every backend."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape, dtype=DTYPES[dtype])
    if scale != 1.0:
        a *= a.dtype.type(scale)
    a.setflags(write=False)
    return a


def normal(shape, dtype, seed, scale=1.0, writable=False):
    a = _normal(tuple(shape), dtype, seed, scale)
    return a.copy() if writable else a


def _once(fn, args=(), kwargs=None):
    t0 = time.perf_counter()
    fn(*args, **(kwargs or {}))
    return time.perf_counter() - t0


def measure(benchmark, fn, setup=None):
    """Time fn with benchmark.pedantic, rounds chosen from one timed call so
    each benchmark takes about TARGET_S. With setup (untimed, returns
    (args, kwargs)), every round gets fresh arguments and runs fn once."""
    time.sleep(SETTLE_S)
    if setup is None:
        fn()  # warm-up: first touch of outputs, BLAS thread-pool lookup
        once = max(_once(fn), 1e-9)
        iterations = int(min(1000, max(1, MIN_ROUND_S / once)))
        rounds = int(min(MAX_ROUNDS, max(MIN_ROUNDS, TARGET_S / (once * iterations))))
        benchmark.pedantic(fn, rounds=rounds, iterations=iterations, warmup_rounds=1)
    else:
        args, kwargs = setup()
        fn(*args, **kwargs)
        args, kwargs = setup()
        once = max(_once(fn, args, kwargs), 1e-9)
        rounds = int(min(MAX_ROUNDS, max(MIN_ROUNDS, TARGET_S / once)))
        benchmark.pedantic(fn, setup=setup, rounds=rounds, warmup_rounds=0)


def record(benchmark, backend, dtype, *, flops=None, nbytes=None, **info):
    """Store threads, sizes and throughput (from the median and min times)."""
    benchmark.extra_info.update(backend=backend, dtype=dtype,
                                n_threads=fastnn.get_num_threads(), **info)
    stats = getattr(benchmark, "stats", None)
    if stats is None:  # --benchmark-disable
        return
    med, best = stats.stats.median, stats.stats.min
    if flops is not None:
        benchmark.extra_info["flops"] = flops
        benchmark.extra_info["gflops"] = round(flops / med / 1e9, 3)
        benchmark.extra_info["gflops_best"] = round(flops / best / 1e9, 3)
    if nbytes is not None:
        benchmark.extra_info["bytes"] = nbytes
        benchmark.extra_info["gbps"] = round(nbytes / med / 1e9, 3)
        benchmark.extra_info["gbps_best"] = round(nbytes / best / 1e9, 3)


def itemsize(dtype):
    return np.dtype(DTYPES[dtype]).itemsize


# --------------------------------------------------------------------------
# dense layer
# --------------------------------------------------------------------------

DENSE_SMALL = (256, 784, 256)     # (m, k, n): X (m, k) @ W (k, n)
DENSE_LARGE = (1024, 1024, 1024)
DENSE_CASES = ([(DENSE_SMALL, act) for act in fastnn.ACTIVATIONS]
               + [(DENSE_LARGE, "relu")])


def _dense_inputs(shape, dtype):
    m, k, n = shape
    X = normal((m, k), dtype, seed=1)
    W = normal((k, n), dtype, seed=2, scale=1.0 / np.sqrt(k))
    b = normal((n,), dtype, seed=3, scale=0.1)
    return X, W, b


@backend_param
@dtype_param
@pytest.mark.parametrize("shape,activation", DENSE_CASES,
                         ids=["%dx%dx%d-%s" % (s + (a,)) for s, a in DENSE_CASES])
def test_dense_forward(benchmark, backend, dtype, shape, activation):
    m, k, n = shape
    mod = BACKENDS[backend]
    X, W, b = _dense_inputs(shape, dtype)
    benchmark.group = "dense_forward %s %dx%dx%d %s" % (activation, m, k, n, dtype)
    measure(benchmark, lambda: mod.dense_forward(X, W, b, activation))
    record(benchmark, backend, dtype, flops=2 * m * k * n, m=m, k=k, n=n,
           activation=activation)


@backend_param
@dtype_param
@pytest.mark.parametrize("shape", [DENSE_SMALL, DENSE_LARGE], ids=lambda s: "%dx%dx%d" % s)
def test_dense_backward(benchmark, backend, dtype, shape):
    m, k, n = shape
    mod = BACKENDS[backend]
    X, W, b = _dense_inputs(shape, dtype)
    A = reference.dense_forward(X, W, b, "relu")
    dA = normal((m, n), dtype, seed=4)
    benchmark.group = "dense_backward relu %dx%dx%d %s" % (m, k, n, dtype)
    measure(benchmark, lambda: mod.dense_backward(X, W, A, dA, "relu", need_dX=True))
    record(benchmark, backend, dtype, flops=4 * m * k * n, m=m, k=k, n=n, activation="relu")


# --------------------------------------------------------------------------
# loss
# --------------------------------------------------------------------------

@backend_param
@dtype_param
@pytest.mark.parametrize("shape", [(128, 10), (4096, 1000)], ids=lambda s: "%dx%d" % s)
def test_softmax_cross_entropy(benchmark, backend, dtype, shape):
    m, k = shape
    mod = BACKENDS[backend]
    Z = normal(shape, dtype, seed=5, scale=3.0)
    y = np.random.default_rng(6).integers(0, k, size=m)
    benchmark.group = "softmax_cross_entropy %dx%d %s" % (m, k, dtype)
    measure(benchmark, lambda: mod.softmax_cross_entropy(Z, y))
    record(benchmark, backend, dtype, nbytes=2 * m * k * itemsize(dtype), m=m, k=k)


# --------------------------------------------------------------------------
# optimizers
# --------------------------------------------------------------------------

# name -> (arrays read and written per element, number of state arrays, call)
OPTIMIZERS = {
    "sgd_step": (3, 0, lambda mod, p, g, s: mod.sgd_step(p, g, 1e-3)),
    "momentum_step": (5, 1, lambda mod, p, g, s: mod.momentum_step(p, g, s[0], 1e-3, 0.9)),
    "classical_momentum_step": (
        5, 1, lambda mod, p, g, s: mod.classical_momentum_step(p, g, s[0], 1e-3, 0.9)),
    "rmsprop_step": (5, 1, lambda mod, p, g, s: mod.rmsprop_step(p, g, s[0], 1e-3, 0.9, 1e-8)),
    "adam_step": (7, 2, lambda mod, p, g, s: mod.adam_step(p, g, s[0], s[1], 10, 1e-3)),
}
PARAM_SIZES = [10**6, 10**7]


@backend_param
@dtype_param
@pytest.mark.parametrize("n", PARAM_SIZES, ids=lambda n: "%.0e" % n)
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizer_step(benchmark, backend, dtype, n, name):
    passes, n_state, step = OPTIMIZERS[name]
    mod = BACKENDS[backend]
    p = normal((n,), dtype, seed=7, scale=0.05, writable=True)
    g = normal((n,), dtype, seed=8, scale=0.01)
    state = [np.zeros(n, dtype=DTYPES[dtype]) for _ in range(n_state)]
    benchmark.group = "%s %.0e %s" % (name, n, dtype)
    measure(benchmark, lambda: step(mod, p, g, state))
    assert np.isfinite(p[:1000]).all()
    record(benchmark, backend, dtype, nbytes=passes * n * itemsize(dtype), n=n)


# --------------------------------------------------------------------------
# gradient clipping
# --------------------------------------------------------------------------

def _grad_sizes(total):
    """A model-like split: three weight matrices, a remainder, three biases."""
    sizes = [total // 2, total // 4, total // 8, 512, 512, 512]
    return sizes + [total - sum(sizes)]


@backend_param
@dtype_param
@pytest.mark.parametrize("total", PARAM_SIZES, ids=lambda n: "%.0e" % n)
def test_clip_grad_norm(benchmark, backend, dtype, total):
    mod = BACKENDS[backend]
    pristine = [normal((s,), dtype, seed=20 + i) for i, s in enumerate(_grad_sizes(total))]
    grads = [g.copy() for g in pristine]
    max_norm = 0.5 * reference.global_norm(pristine)  # always clips

    def setup():
        for g, g0 in zip(grads, pristine):
            np.copyto(g, g0)
        return (grads, max_norm), {}

    benchmark.group = "clip_grad_norm %.0e %s" % (total, dtype)
    measure(benchmark, mod.clip_grad_norm, setup=setup)
    assert np.isclose(reference.global_norm(grads), max_norm, rtol=1e-3)
    record(benchmark, backend, dtype, nbytes=3 * total * itemsize(dtype), n=total,
           n_arrays=len(grads))


# --------------------------------------------------------------------------
# dropout, standardization, layer statistics at (4096, 1024)
# --------------------------------------------------------------------------

ACT_SHAPE = (4096, 1024)


@backend_param
@dtype_param
def test_dropout_forward(benchmark, backend, dtype):
    mod = BACKENDS[backend]
    A = normal(ACT_SHAPE, dtype, seed=30)
    benchmark.group = "dropout_forward %dx%d %s" % (ACT_SHAPE + (dtype,))
    measure(benchmark, lambda: mod.dropout_forward(A, 0.5, 1234, 7, 2))
    record(benchmark, backend, dtype, nbytes=2 * A.size * itemsize(dtype), m=ACT_SHAPE[0],
           n=ACT_SHAPE[1])


@backend_param
@dtype_param
def test_standardize_fit(benchmark, backend, dtype):
    mod = BACKENDS[backend]
    X = normal(ACT_SHAPE, dtype, seed=31, scale=2.0)
    benchmark.group = "standardize_fit %dx%d %s" % (ACT_SHAPE + (dtype,))
    measure(benchmark, lambda: mod.standardize_fit(X))
    record(benchmark, backend, dtype, nbytes=X.size * itemsize(dtype), m=ACT_SHAPE[0],
           n=ACT_SHAPE[1])


@backend_param
@dtype_param
def test_layer_stats(benchmark, backend, dtype):
    mod = BACKENDS[backend]
    A = reference.activation_forward(normal(ACT_SHAPE, dtype, seed=32), "relu")
    benchmark.group = "layer_stats %dx%d %s" % (ACT_SHAPE + (dtype,))
    measure(benchmark, lambda: mod.layer_stats(A))
    record(benchmark, backend, dtype, nbytes=A.size * itemsize(dtype), m=ACT_SHAPE[0],
           n=ACT_SHAPE[1])
