"""fastnn and its peers side by side, in one run: samples per second per workload.

    python bench/compare.py [--workload W1|W2|W3|P1|all] [--threads N] [--repeats 3]
                            [--peers fastnn,pytorch,...]

Each peer trains the same network on the same float32 data for one epoch
(P1: predicts the data in batches of 4096) after one warm-up epoch. Every peer
lives in its own worker process (so one library's idle thread pool cannot
spin on the cores another is using), and the workers run their epochs in
turn, `repeats` times, so machine noise hits them alike. The table
gives samples/s as median [min-max], fastnn's ratio to each peer, GFLOP/s, and
the share of the machine's sgemm peak, measured here with a 4096^3 float32
product through SciPy's BLAS (the one fastnn uses) on the same threads.
Peers that are not installed are listed with the reason.
"""

import argparse
import os
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from workloads import PEERS, WORKLOADS, PeerUnavailable, timed  # noqa: E402


def sgemm_peak(n_threads, n=4096, repeats=5):
    """GFLOP/s of an n^3 float32 product through scipy.linalg.blas.sgemm."""
    from scipy.linalg.blas import sgemm
    rng = np.random.default_rng(0)
    a = np.asfortranarray(rng.standard_normal((n, n), dtype=np.float32))
    b = np.asfortranarray(rng.standard_normal((n, n), dtype=np.float32))
    with threadpool_limits(limits=n_threads, user_api="blas"):
        sgemm(1.0, a, b)
        best = min(timed(lambda: sgemm(1.0, a, b)) for _ in range(repeats))
    return 2.0 * n ** 3 / best / 1e9


def _worker(conn, workload_key, peer_name, n_threads):
    """A peer in its own process: build it, warm up, then time one epoch per request."""
    try:
        with threadpool_limits(limits=n_threads):
            run, n = PEERS[peer_name](WORKLOADS[workload_key], n_threads)
            run()  # warm-up epoch (and compilation, for JAX)
            conn.send(("ready", n))
            while conn.recv() == "run":
                conn.send(("time", timed(run)))
    except PeerUnavailable as exc:
        conn.send(("skip", str(exc)))
    except Exception as exc:  # report, do not hang the table
        conn.send(("skip", "failed: %s: %s" % (type(exc).__name__, exc)))
    finally:
        conn.close()


def compare(workload_key, peer_names, n_threads, repeats, peak):
    import multiprocessing as mp
    ctx = mp.get_context("spawn")
    workload = WORKLOADS[workload_key]
    workers, skipped = {}, {}
    for name in peer_names:  # one at a time: warm-ups do not overlap
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_worker, args=(child, workload_key, name, n_threads))
        proc.start()
        kind, value = parent.recv()
        if kind == "ready":
            workers[name] = (parent, proc, value, [])
        else:
            skipped[name] = value
            proc.join()
    try:
        for _ in range(repeats):
            for name, (conn, _, n, rates) in workers.items():
                conn.send("run")
                rates.append(n / conn.recv()[1])
    finally:
        for conn, proc, _, _ in workers.values():
            conn.send("stop")
            proc.join()
    rows = []
    base = np.median(workers["fastnn"][3]) if "fastnn" in workers else None
    for name, (_, _, _, rates) in workers.items():
        med = float(np.median(rates))
        gflops = med * workload.flops_per_sample / 1e9
        rows.append((name, med, min(rates), max(rates),
                     base / med if base else float("nan"), gflops, 100 * gflops / peak))
    return workload, rows, skipped


def print_table(workload, rows, skipped, n_threads):
    print("\n%s: %s, batch %d, %d threads" % (
        workload.name, " -> ".join(map(str, workload.layers)),
        workload.predict_batch or workload.batch_size, n_threads))
    print("| peer | samples/s median [min-max] | fastnn / peer | GFLOP/s | % of sgemm peak |")
    print("|---|---|---|---|---|")
    for name, med, lo, hi, ratio, gflops, share in rows:
        print("| %s | %s [%s-%s] | %.2fx | %.1f | %.0f%% |" % (
            name, _k(med), _k(lo), _k(hi), ratio, gflops, share))
    for name, why in skipped.items():
        print("| %s | skipped: %s | | | |" % (name, why))


def _k(v):
    return "%.1fk" % (v / 1e3) if v < 1e6 else "%.2fM" % (v / 1e6)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="all", choices=list(WORKLOADS) + ["all"])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--peers", default=",".join(PEERS))
    args = parser.parse_args(argv)
    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    unknown = [p for p in peers if p not in PEERS]
    if unknown:
        parser.error("unknown peers %s; known: %s" % (unknown, ", ".join(PEERS)))
    import fastnn
    print("fastnn %s, %d threads, %s" % (fastnn.__version__, args.threads,
                                         time.strftime("%Y-%m-%d %H:%M")))
    peak = sgemm_peak(args.threads)
    keys = list(WORKLOADS) if args.workload == "all" else [args.workload]
    results = [compare(key, peers, args.threads, args.repeats, peak) for key in keys]
    # a peak measured while the machine was busy would flatter every share: take
    # the better of a measurement before and one after the workloads
    final_peak = max(peak, sgemm_peak(args.threads))
    print("sgemm peak (4096^3 float32, SciPy's BLAS, %d threads): %.0f GFLOP/s"
          % (args.threads, final_peak))
    for workload, rows, skipped in results:
        rows = [row[:6] + (row[6] * peak / final_peak,) for row in rows]
        print_table(workload, rows, skipped, args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
