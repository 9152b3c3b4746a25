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
GFLOP/s count the work performed (Workload.flops_per_sample: forward, weight
gradients, and input gradients of every layer but the first). "NumPy" is a
plain float32 NumPy loop (bench/numpy_loop.py); fastnn's own NumPy reference,
which accumulates in float64 on purpose, is a separate row. Peers that are not
installed are listed with the reason.
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from workers import alternate_epochs, sgemm_peak, start_peers, stop_peers  # noqa: E402
from workloads import LABELS, PEERS, WORKLOADS  # noqa: E402


def compare(workload_key, peer_names, n_threads, repeats, peak):
    workload = WORKLOADS[workload_key]
    running, skipped = start_peers(workload, peer_names, n_threads)
    try:
        rates = alternate_epochs(running, repeats, skipped)
    finally:
        stop_peers(running)
    rows = []
    base = np.median(rates["fastnn"]) if "fastnn" in rates else None
    for name, r in rates.items():
        med = float(np.median(r))
        gflops = med * workload.flops_per_sample / 1e9
        rows.append((LABELS[name], med, min(r), max(r),
                     base / med if base else float("nan"), gflops, 100 * gflops / peak))
    skipped = {LABELS[name]: why for name, why in skipped.items()}
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
