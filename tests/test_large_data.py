"""Training on data larger than the memory a process may use: a 2 GiB
memory-mapped array and a 2 GiB Parquet file, each trained on for a whole
epoch by a child process whose private memory is limited to 512 MiB.

RLIMIT_DATA bounds a process's private writable memory (heap and anonymous
mappings) but not the pages of a mapped file, which the kernel can always
drop and read again; RLIMIT_AS would forbid the mapping itself and RLIMIT_RSS
is not enforced. The child also samples RssAnon in /proc/self/status (its
resident private memory; file-backed pages do not count) every few
milliseconds and reports the peak.

Memory allocators reserve address space they never touch, which RLIMIT_DATA
counts: glibc a 64 MiB arena per thread that allocates, mimalloc (pyarrow's
pool) a 1 GiB arena. The child asks both to reserve less (MALLOC_ARENA_MAX,
MIMALLOC_ARENA_RESERVE); what it actually uses is the RssAnon peak.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastnn as fn

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

LIMIT = 512 * 2**20
N_FEATURES = 128
ROWS = 2**31 // (N_FEATURES * 4) + 4096  # just over 2 GiB of float32 features
CHUNK = 16384  # rows written at a time; the Parquet file's row groups
WEIGHTS = np.random.default_rng(1).standard_normal(N_FEATURES)


def _rows(seed, lo, hi):
    """Rows lo:hi of the data set: standard normal features, a linear label."""
    X = np.random.default_rng([seed, lo]).standard_normal((hi - lo, N_FEATURES),
                                                          dtype=np.float32)
    return X, (X @ WEIGHTS > 0).astype(np.int64)


def _model():
    return fn.Sequential([fn.Dense(4, activation="relu"), fn.Dense(2, activation="softmax")],
                         dtype="float32", seed=0)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The data set written chunk by chunk as an .npy file (features) with its
    labels, and as a Parquet file; a test set of other rows; deleted after."""
    d = tmp_path_factory.mktemp("large")
    X = np.lib.format.open_memmap(d / "X.npy", mode="w+", dtype=np.float32,
                                  shape=(ROWS, N_FEATURES))
    y = np.empty(ROWS, np.int64)
    names = ["x%d" % j for j in range(N_FEATURES)]
    schema = pa.schema([(n, pa.float32()) for n in names] + [("label", pa.int64())])
    with pq.ParquetWriter(d / "data.parquet", schema, compression="none",
                          use_dictionary=False, write_statistics=False) as writer:
        for lo in range(0, ROWS, CHUNK):
            hi = min(ROWS, lo + CHUNK)
            Xc, yc = _rows(7, lo, hi)
            X[lo:hi], y[lo:hi] = Xc, yc
            columns = np.asfortranarray(Xc)
            writer.write_table(pa.Table.from_arrays(
                [pa.array(columns[:, j]) for j in range(N_FEATURES)] + [pa.array(yc)],
                schema=schema), row_group_size=CHUNK)
    X.flush()
    del X
    np.save(d / "y.npy", y)
    X_test, y_test = _rows(8, 0, 20000)
    np.save(d / "X_test.npy", X_test)
    np.save(d / "y_test.npy", y_test)
    yield d
    for name in ("X.npy", "y.npy", "data.parquet", "X_test.npy", "y_test.npy"):
        os.remove(d / name)


CHILD = textwrap.dedent("""
    import json, resource, sys, threading, time
    resource.setrlimit(resource.RLIMIT_DATA, (%(limit)d, %(limit)d))
    peak = [0]

    def rss_anon():
        for line in open("/proc/self/status"):
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024

    def watch():
        while True:
            peak[0] = max(peak[0], rss_anon())
            time.sleep(0.002)

    threading.Thread(target=watch, daemon=True).start()
    import numpy as np
    import fastnn as fn
    from fastnn import data
    kind, d = sys.argv[1], sys.argv[2]
    model = fn.Sequential([fn.Dense(4, activation="relu"),
                           fn.Dense(2, activation="softmax")], dtype="float32", seed=0)
    if kind == "memmap":
        X = np.load(d + "/X.npy", mmap_mode="r")
        model.fit(X, np.load(d + "/y.npy"), epochs=1, batch_size=512, validation_split=0.01)
    else:
        model.fit(data.parquet(d + "/data.parquet", target="label"), epochs=1,
                  batch_size=512)
    accuracy = model.evaluate(np.load(d + "/X_test.npy"), np.load(d + "/y_test.npy"))
    time.sleep(0.01)
    print(json.dumps({"peak": peak[0], "accuracy": accuracy["accuracy"],
                      "steps": model.t_}))
""") % {"limit": LIMIT}


def _train_in_child(kind, d):
    env = dict(os.environ, MALLOC_ARENA_MAX="2", MIMALLOC_ARENA_RESERVE="64MiB")
    out = subprocess.run([sys.executable, "-c", CHILD, kind, str(d)], env=env,
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def in_memory_accuracy(files):
    """The test accuracy of the same model trained in memory, one epoch, on
    the first 200000 rows."""
    X = np.load(files / "X.npy", mmap_mode="r")[:200000].copy()
    y = np.load(files / "y.npy")[:200000]
    model = _model()
    model.fit(X, y, epochs=1, batch_size=512)
    return model.evaluate(np.load(files / "X_test.npy"),
                          np.load(files / "y_test.npy"))["accuracy"]


@pytest.mark.parametrize("kind", ["memmap", "parquet"])
def test_an_epoch_over_2_gib_stays_within_512_mib_of_private_memory(kind, files,
                                                                    in_memory_accuracy):
    size = os.path.getsize(files / ("X.npy" if kind == "memmap" else "data.parquet"))
    assert size >= 2**31
    result = _train_in_child(kind, files)
    assert 0 < result["peak"] < LIMIT, result
    n_train = int(ROWS * (1.0 - 0.01)) if kind == "memmap" else ROWS  # less the held-out
    assert result["steps"] == -(-n_train // 512)  # every training row, once
    assert result["accuracy"] >= in_memory_accuracy - 0.005, (result, in_memory_accuracy)
