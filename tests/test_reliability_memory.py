"""Memory over long runs: no growth of resident memory over 20,000+ training
steps after warm-up, no growth of Python allocations from epoch to epoch
beyond the History's own records, and no heap allocation per batch inside
the C training loop.

Resident memory is read from /proc/self/statm. The per-batch check counts
calls to malloc and friends with a small interposed library, built here with
the C compiler that builds fastnn, in a subprocess.
"""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import tracemalloc

import numpy as np
import pytest

import fastnn as fn

SOURCE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(fn.__file__)))
SANITIZED = "-fsanitize" in fn._kernels.build_config()


def _resident_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _tiny_model(seed=0, dtype="float32"):
    return fn.Sequential([fn.Dense(8, activation="relu"), fn.Dropout(0.1),
                          fn.Dense(3, activation="softmax")], input_dim=4, seed=seed,
                         dtype=dtype)


def _tiny_data(m=800):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((m, 4)).astype(np.float32)
    return X, rng.integers(0, 3, m)


class _Sample(fn.Callback):
    def __init__(self, measure):
        self.measure, self.values = measure, []

    def on_epoch_end(self, epoch, logs):
        self.values.append(self.measure())


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc/self/statm")
@pytest.mark.skipif(SANITIZED, reason="AddressSanitizer's quarantine holds freed memory")
def test_long_training_run_resident_memory_does_not_grow():
    X, y = _tiny_data()
    model = _tiny_model()
    warm = _Sample(_resident_bytes)
    model.fit(X, y, epochs=30, batch_size=8, callbacks=[warm])  # 3,000 steps of warm-up
    steady = _Sample(_resident_bytes)
    history = model.fit(X, y, epochs=220, batch_size=8, l2=1e-4, clip_norm=1.0,
                        callbacks=[steady])
    assert model.t_ == 250 * 100 and len(history.epochs) == 220
    growth = max(steady.values) - warm.values[-1]
    # the History's own records take about 40 kB here; 24 bytes lost per
    # step would be 530 kB
    assert growth < 512 * 1024, "resident memory grew by %d kB over 22,000 steps" % (
        growth // 1024)


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc/self/statm")
@pytest.mark.skipif(SANITIZED, reason="AddressSanitizer's quarantine holds freed memory")
def test_repeated_fit_predict_save_load_resident_memory_does_not_grow(tmp_path):
    X, y = _tiny_data(64)

    def cycle(i):
        model = _tiny_model(seed=i)
        model.fit(X, y, epochs=1, batch_size=8)
        model.predict(X)
        model.evaluate(X, y)
        if i % 5 == 0:  # a save costs an fsync
            model.save(tmp_path / "m.npz")
            fn.load(tmp_path / "m.npz").predict_proba(X)

    for i in range(60):  # warm-up
        cycle(i)
    before = _resident_bytes()
    for i in range(300):
        cycle(i)
    growth = _resident_bytes() - before
    assert growth < 512 * 1024, "resident memory grew by %d kB over 300 fits" % (
        growth // 1024)


@pytest.mark.parametrize("batch_size", [8, 2], ids=["100-batches-per-epoch",
                                                    "400-batches-per-epoch"])
def test_steady_state_training_python_allocations_do_not_grow_per_epoch(batch_size):
    X, y = _tiny_data()
    model = _tiny_model()
    model.fit(X, y, epochs=3, batch_size=batch_size)
    tracemalloc.start()
    try:
        traced = _Sample(lambda: tracemalloc.get_traced_memory()[0])
        model.fit(X, y, epochs=200, batch_size=batch_size, callbacks=[traced])
    finally:
        tracemalloc.stop()
    # numpy keeps bounded caches of small blocks, and a block cached while
    # traced stays counted: they fill over the first ~100 epochs, so only the
    # last 80 are measured
    values = np.array(traced.values[120:], dtype=np.int64)
    per_epoch = (values[-1] - values[0]) / (len(values) - 1)
    # what stays per epoch is the History's records: four floats and an epoch
    # number, and list growth (~90 bytes here); nothing grows with the batches
    assert per_epoch < 400, "Python allocations grew by %.0f bytes per epoch" % per_epoch
    assert np.median(np.diff(values)) < 200


ALLOC_COUNTER = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>

/* Counts calls to the allocation functions (malloc, calloc, realloc and the
 * aligned ones); frees are passed through. While dlsym runs, calloc is served
 * from a static buffer. */
static long n_allocs;
static char boot[1 << 14];
static size_t boot_used;
static int resolving;
static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void (*real_free)(void *);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_aligned_alloc)(size_t, size_t);
static void *(*real_memalign)(size_t, size_t);

static void resolve(void)
{
    resolving = 1;
    real_malloc = dlsym(RTLD_NEXT, "malloc");
    real_calloc = dlsym(RTLD_NEXT, "calloc");
    real_realloc = dlsym(RTLD_NEXT, "realloc");
    real_free = dlsym(RTLD_NEXT, "free");
    real_posix_memalign = dlsym(RTLD_NEXT, "posix_memalign");
    real_aligned_alloc = dlsym(RTLD_NEXT, "aligned_alloc");
    real_memalign = dlsym(RTLD_NEXT, "memalign");
    resolving = 0;
}

static void *boot_alloc(size_t n)
{
    void *p = boot + boot_used;
    boot_used += (n + 15) & ~(size_t)15;
    return boot_used <= sizeof boot ? p : NULL;
}

#define COUNT() __atomic_add_fetch(&n_allocs, 1, __ATOMIC_SEQ_CST)
long fnn_test_allocations(void) { return __atomic_load_n(&n_allocs, __ATOMIC_SEQ_CST); }

void *malloc(size_t n)
{
    if (!real_malloc) { if (resolving) return boot_alloc(n); resolve(); }
    COUNT();
    return real_malloc(n);
}
void *calloc(size_t n, size_t s)
{
    if (!real_calloc) { if (resolving) return boot_alloc(n * s); resolve(); }
    COUNT();
    return real_calloc(n, s);
}
void *realloc(void *p, size_t n)
{
    if (!real_realloc) resolve();
    COUNT();
    return real_realloc(p, n);
}
void free(void *p)
{
    if (!p || ((char *)p >= boot && (char *)p < boot + sizeof boot)) return;
    if (!real_free) resolve();
    real_free(p);
}
int posix_memalign(void **out, size_t a, size_t n)
{
    if (!real_posix_memalign) resolve();
    COUNT();
    return real_posix_memalign(out, a, n);
}
void *aligned_alloc(size_t a, size_t n)
{
    if (!real_aligned_alloc) resolve();
    COUNT();
    return real_aligned_alloc(a, n);
}
void *memalign(size_t a, size_t n)
{
    if (!real_memalign) resolve();
    COUNT();
    return real_memalign(a, n);
}
"""

COUNT_TRAINING_ALLOCATIONS = r"""
import ctypes, json, sys
import numpy as np
import fastnn as fn
from fastnn._backends import TrainingSetup, make_network
from fastnn._threads import blas_threads
from fastnn.optim import get_optimizer

count = ctypes.CDLL(None).fnn_test_allocations
count.restype = ctypes.c_long
rng = np.random.default_rng(0)
X = rng.standard_normal((4000, 16))
y = rng.integers(0, 3, 4000)
results = {}
for dtype, nt, opt in (("float32", 1, "adam"), ("float64", 2, "momentum")):
    model = fn.Sequential([fn.Dense(32, activation="relu"), fn.Dropout(0.2),
                           fn.Dense(3, activation="softmax")], input_dim=16, seed=0,
                          dtype=dtype)
    model.build(16)
    optimizer = get_optimizer(opt)
    states = [model.arena_.new_state() for _ in range(optimizer.n_states)]
    setup = TrainingSetup(model, "cross_entropy", optimizer, states, 8, 1e-4, 1.0, 0.5, True)
    net = make_network(setup, "fast", 0)
    Xd = np.ascontiguousarray(X, dtype=dtype)
    perm = np.arange(4000, dtype=np.int64)
    lrs, losses = np.full(500, 1e-3), np.zeros(500)
    counts = {}
    with blas_threads(1):
        net.train_batches(Xd, y, perm, 8, 0, 20, lrs[:20], losses[:20], nt)  # warm-up
        for n in (1, 401, 1, 401):
            before = count()
            net.train_batches(Xd, y, perm, 8, 0, n, lrs[:n], losses[:n], nt)
            counts.setdefault(n, []).append(count() - before)
    # the call itself (its Python wrapper) may allocate; the batches may not
    results["%s-%dthreads" % (dtype, nt)] = (min(counts[401]) - max(counts[1])) / 400
print(json.dumps(results))
"""


def _compiler():
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    cc = cc.split()[0]
    return shutil.which(cc)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="LD_PRELOAD interposition")
@pytest.mark.skipif(SANITIZED, reason="the sanitizer runtime interposes malloc itself")
def test_c_training_loop_makes_no_heap_allocation_per_batch(tmp_path):
    cc = _compiler()
    if cc is None:
        pytest.skip("no C compiler")
    src = tmp_path / "alloc_counter.c"
    src.write_text(ALLOC_COUNTER)
    lib = tmp_path / "alloc_counter.so"
    subprocess.run([cc, "-shared", "-fPIC", "-O1", "-o", str(lib), str(src), "-ldl"],
                   check=True, capture_output=True)
    env = dict(os.environ, LD_PRELOAD=str(lib),
               PYTHONPATH=SOURCE_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(COUNT_TRAINING_ALLOCATIONS)],
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    per_batch = json.loads(out.stdout.strip().splitlines()[-1])
    assert per_batch == {k: 0 for k in per_batch}, per_batch
