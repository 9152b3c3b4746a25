"""Peers in worker processes, and the machine's GEMM peak: the measuring
machinery shared by bench/compare.py and bench/sweep.py.

Each peer trains in its own process, started with the "spawn" method, so one
library's idle thread pool (OpenBLAS and OpenMP threads busy-wait for a while
after their last task) never spins on the cores another library is using, and
no library's state leaks into another's timing. The parent only sends
requests and receives timings. A worker holds every thread pool of its
process (threadpoolctl) and its peer (n_threads / torch.set_num_threads) to
the same thread count.

Protocol (parent -> worker): a new worker imports its peer's library and
answers ("loaded", None), so the workers of one workload can import at the
same time (PyTorch takes seconds) before any of them measures anything. Then
"build" -> it builds its peer, runs one warm-up epoch and answers ("ready",
(n_samples, seconds of the warm-up)); "run" -> ("time", seconds of one
epoch); ("resize", n) -> a fresh peer on n samples, warmed up, ("ready", (n,
seconds)); "stop" ends it. A peer that cannot run answers ("skip", reason)
instead.
"""

import gc
import importlib
import multiprocessing as mp
import time
from dataclasses import replace

import numpy as np
from threadpoolctl import threadpool_limits

from workloads import LIBRARIES, PEERS, PeerUnavailable, timed


def gemm_peak(n_threads, dtype="float32", n=4096, repeats=5):
    """GFLOP/s of the best n^3 product through SciPy's BLAS (sgemm or dgemm),
    the library fastnn calls, on n_threads threads."""
    from scipy.linalg.blas import dgemm, sgemm
    gemm = sgemm if dtype == "float32" else dgemm
    rng = np.random.default_rng(0)
    a = np.asfortranarray(rng.standard_normal((n, n)).astype(dtype))
    b = np.asfortranarray(rng.standard_normal((n, n)).astype(dtype))
    with threadpool_limits(limits=n_threads, user_api="blas"):
        gemm(1.0, a, b)
        best = min(timed(lambda: gemm(1.0, a, b)) for _ in range(repeats))
    return 2.0 * n ** 3 / best / 1e9


def copy_bandwidth(n_threads, mib=256, repeats=5):
    """GB/s of memory traffic (bytes read plus bytes written) of the best copy
    of a mib MiB float64 array, split over n_threads threads: the ceiling of
    a kernel that streams its data once."""
    from concurrent.futures import ThreadPoolExecutor
    src = np.ones(mib * 2 ** 20 // 8)
    dst = np.empty_like(src)
    parts = np.array_split(np.arange(src.size), n_threads)
    bounds = [(p[0], p[-1] + 1) for p in parts if p.size]

    def copy():
        with ThreadPoolExecutor(len(bounds)) as pool:  # NumPy releases the GIL to copy
            list(pool.map(lambda b: np.copyto(dst[b[0]:b[1]], src[b[0]:b[1]]), bounds))
    copy()
    best = min(timed(copy) for _ in range(repeats))
    return 2.0 * src.nbytes / best / 1e9


def sgemm_peak(n_threads, n=4096, repeats=5):
    """GFLOP/s of an n^3 float32 product through scipy.linalg.blas.sgemm."""
    return gemm_peak(n_threads, "float32", n, repeats)


def _worker(conn, workload, peer_name, n_threads):
    """A peer in its own process: import, build and warm up on request, then
    serve timing requests."""
    try:
        try:
            for module in LIBRARIES[peer_name]:
                importlib.import_module(module)
        except ImportError:
            pass  # building the peer says what is missing
        conn.send(("loaded", None))
        if conn.recv() != "build":
            return
        with threadpool_limits(limits=n_threads):
            run, n = PEERS[peer_name](workload, n_threads)
            conn.send(("ready", (n, timed(run))))  # warm-up (and compilation, for JAX)
            while True:
                request = conn.recv()
                if request == "run":
                    conn.send(("time", timed(run)))
                elif isinstance(request, tuple) and request[0] == "resize":
                    run = None
                    gc.collect()  # free the old data before making the new
                    run, n = PEERS[peer_name](replace(workload, n_samples=request[1]),
                                              n_threads)
                    conn.send(("ready", (n, timed(run))))
                else:
                    break
    except PeerUnavailable as exc:
        conn.send(("skip", str(exc)))
    except Exception as exc:  # report, do not hang the table
        conn.send(("skip", "failed: %s: %s" % (type(exc).__name__, exc)))
    finally:
        conn.close()


class PeerProcess:
    """One peer training one workload in a spawned worker process.

    The constructor starts the worker, which imports its library; wait_loaded()
    waits for that, and build() makes the worker build its peer and warm up.
    After build() either ``n_samples`` and ``warmup_s`` are set or ``skipped``
    holds the reason the peer cannot run; a worker that fails later is stopped
    and gets ``skipped`` set too.
    """

    def __init__(self, workload, peer_name, n_threads):
        ctx = mp.get_context("spawn")
        self.peer = peer_name
        self.n_samples = None
        self.warmup_s = None
        self.skipped = None
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_worker, args=(child, workload, peer_name, n_threads),
                                 daemon=True)
        self._proc.start()
        child.close()  # so a worker that dies shows as EOF, not a hang
        self._loaded = False
        self._stopping = False

    @property
    def alive(self):
        return self.skipped is None

    def _receive(self):
        try:
            return self._conn.recv()
        except EOFError:
            self._proc.join()
            return ("skip", "the worker died (exit code %s)" % self._proc.exitcode)

    def _send(self, request):
        try:
            self._conn.send(request)
            return True
        except (BrokenPipeError, OSError):
            self._fail("the worker died")
            return False

    def _fail(self, reason):
        self.skipped = reason
        self.close()

    def wait_loaded(self):
        if not self._loaded and self.alive:
            kind, value = self._receive()
            self._loaded = True
            if kind != "loaded":
                self._fail(value)

    def _await_ready(self):
        kind, value = self._receive()
        if kind == "ready":
            self.n_samples, self.warmup_s = value
        else:
            self._fail(value)

    def build(self):
        """Build the peer and run its warm-up epoch; returns self.alive."""
        self.wait_loaded()
        if self.alive and self._send("build"):
            self._await_ready()
        return self.alive

    def epoch_seconds(self):
        """Seconds of one timed epoch, or None if the worker failed."""
        if not self._send("run"):
            return None
        kind, value = self._receive()
        if kind != "time":
            self._fail(value)
            return None
        return value

    def resize(self, n_samples):
        """Rebuild the peer on n_samples samples (fresh data and model) and warm it up."""
        if n_samples != self.n_samples and self._send(("resize", n_samples)):
            self._await_ready()

    def close(self, wait=True):
        """Stop the worker; wait=False only asks (finish with close())."""
        if self._proc.is_alive() and not self._conn.closed and not self._stopping:
            self._stopping = True
            try:
                self._conn.send("stop")
            except (BrokenPipeError, OSError):
                pass
        if wait:
            self._proc.join(timeout=30)
            if self._proc.is_alive():
                self._proc.terminate()
                self._proc.join()
            self._conn.close()


def spawn_peers(workload, peer_names, n_threads):
    """Start one worker per peer and wait until all have imported their
    libraries (in parallel); nothing is built yet. Returns {name: PeerProcess}."""
    procs = {name: PeerProcess(workload, name, n_threads) for name in peer_names}
    for proc in procs.values():
        proc.wait_loaded()
    return procs


def start_peers(workload, peer_names, n_threads):
    """Start the peers and build them one at a time (warm-ups do not overlap);
    returns ({name: PeerProcess} of the running ones, {name: reason} of the
    others)."""
    running, skipped = {}, {}
    for name, proc in spawn_peers(workload, peer_names, n_threads).items():
        if proc.build():
            running[name] = proc
        else:
            skipped[name] = proc.skipped
    return running, skipped


def alternate_epochs(running, repeats, skipped, settle_s=0.0):
    """Time `repeats` epochs of every running peer, taking turns so machine
    noise hits them alike; returns {name: [samples/s, ...]}. A peer that fails
    moves to `skipped`. settle_s: an idle pause before each epoch, so the
    previous worker's thread pools stop spinning first."""
    rates = {name: [] for name in running}
    for _ in range(repeats):
        for name, proc in list(running.items()):
            if not proc.alive:
                continue
            if settle_s:
                time.sleep(settle_s)
            seconds = proc.epoch_seconds()
            if seconds is None:
                skipped[name] = proc.skipped
                rates.pop(name)
            else:
                rates[name].append(proc.n_samples / seconds)
    return rates


def stop_peers(procs):
    """Stop every worker: ask them all, then wait (exiting PyTorch takes a while)."""
    for proc in procs.values():
        proc.close(wait=False)
    for proc in procs.values():
        proc.close()
