"""Training throughput over a surface of network shapes: fastnn against PyTorch
(plain and fused Adam) and a plain NumPy loop, one factor varied at a time.

    python bench/sweep.py [--quick] [--out DIR] [--threads 2] [--peers LIST]
                          [--only NAMES] [--env-openblas as-is|unset]

The base network is 64 -> 256 -> 256 -> 10, relu hidden layers, softmax
cross-entropy, Adam (lr 1e-3), batch 64, float32. From it one factor varies
at a time: hidden activation, depth (plus 100 -> 10 x 128 -> 5 with relu and
tanh), width, batch, dtype, optimizer (SGD, heavy-ball and Nesterov momentum,
RMSProp, Adam), task (regression: identity output and MSE); and a width x
batch grid with relu for a heat map. Identical configs are measured once and
keep every name they were given (`aliases`).

How a config is measured: every peer runs in its own spawned process
(bench/workers.py, as bench/compare.py does). The processes import their
libraries side by side, then run one at a time. Each first trains on a few
thousand samples (a warm-up epoch, and two more if that was short) to learn
its time per sample. The config's sample count is then chosen so that one
fastnn epoch takes about --target seconds, and each other peer uses that
many samples, or fewer if its epoch would exceed --max-epoch seconds (its
sample count is recorded). After a warm-up epoch at that size the peers take
turns for --repeats timed epochs, with a short idle pause (--settle) before
each so the previous worker's thread pools stop spinning; the table gives the
median. The data is synthetic, from a seeded random teacher network
(bench/workloads.py).

Every peer gets the same thread count: fastnn's n_threads, PyTorch's
set_num_threads, and threadpoolctl for every BLAS and OpenMP pool in the
worker. GFLOP/s count the work performed (Workload.flops_per_sample), and the
share of peak is against the best GEMM through SciPy's BLAS (4096^3 sgemm;
2048^3 dgemm for float64 rows; half those sizes with --quick), measured in a
worker process before and after the sweep. --env-openblas unset removes
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE from the workers' environment
(OpenBLAS reads them when it loads, so they cannot be changed inside a
running process); the values the workers saw are recorded. Results go to DIR
as JSON (with the environment) and CSV; the file names carry the OpenBLAS
setting. bench/sweep_plot.py draws and compares them.

The default sweep takes about 15 minutes on 2 cores; --quick (3 configs,
short epochs) well under a minute.
"""

import argparse
import csv
import json
import math
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from workers import alternate_epochs, copy_bandwidth, gemm_peak, spawn_peers, stop_peers  # noqa: E402
from workloads import LABELS, PEERS, Workload  # noqa: E402

OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
DEFAULT_PEERS = ("fastnn", "pytorch", "pytorch-fused", "numpy")
# lr per optimizer; the time per step does not depend on it, only stability does
LR = {"adam": 1e-3, "rmsprop": 1e-3, "sgd": 1e-2, "classical_momentum": 1e-2,
      "nesterov": 1e-2}
BASE = dict(n_in=64, hidden=(256, 256), n_out=10, activation="relu",
            task="classification", optimizer="adam", batch=64, dtype="float32")

ACTIVATIONS = ("relu", "leaky_relu", "tanh", "sigmoid", "softplus")
DEPTHS = (2, 3, 5, 10)
WIDTHS = (16, 64, 256, 1024, 2048)
BATCHES = (16, 64, 256, 1024)
DTYPES = ("float32", "float64")
OPTIMIZERS = ("sgd", "classical_momentum", "nesterov", "rmsprop", "adam")
GRID_WIDTHS = (16, 64, 256, 1024)
GRID_BATCHES = (16, 64, 256, 1024)
QUICK = ("base", "opt=sgd", "task=regression-1out-tanh")

PROBE_FLOPS = 1.5e9       # work of a probe epoch
PROBE_BATCHES = (4, 64)   # bounds on a probe epoch's batches
PROBE_REPEAT_S = 0.2      # probe epochs shorter than this are repeated
MIN_BATCHES = 4           # fewest batches in a measured epoch
MAX_SAMPLES = 1_000_000


def make_workload(**changes):
    """The base network with `changes` (keys of BASE) applied."""
    c = dict(BASE, **changes)
    regression = c["task"] == "regression"
    layers = (c["n_in"],) + tuple(c["hidden"]) + (c["n_out"],)
    return Workload(name="", n_samples=0, layers=layers,
                    loss="mse" if regression else "cross_entropy", optimizer=c["optimizer"],
                    lr=LR[c["optimizer"]], batch_size=c["batch"], activation=c["activation"],
                    dtype=c["dtype"])


def _named_grid():
    """(factor, name, workload) for every point of every axis, duplicates included."""
    yield "base", "base", make_workload()
    for act in ACTIVATIONS:
        yield "activation", "act=%s" % act, make_workload(activation=act)
    for depth in DEPTHS:
        yield "depth", "depth=%d" % depth, make_workload(hidden=(256,) * depth)
    for act in ("relu", "tanh"):
        yield "depth", "100-128x10-5 %s" % act, make_workload(n_in=100, hidden=(128,) * 10,
                                                              n_out=5, activation=act)
    for width in WIDTHS:
        yield "width", "width=%d" % width, make_workload(hidden=(width, width))
    for batch in BATCHES:
        yield "batch", "batch=%d" % batch, make_workload(batch=batch)
    for dtype in DTYPES:
        yield "dtype", "dtype=%s" % dtype, make_workload(dtype=dtype)
    for opt in OPTIMIZERS:
        yield "optimizer", "opt=%s" % opt, make_workload(optimizer=opt)
    for act in ("relu", "tanh"):
        yield "task", "task=classification-%s" % act, make_workload(activation=act)
        yield "task", "task=regression-1out-%s" % act, make_workload(
            task="regression", n_out=1, activation=act)
    yield "task", "task=regression-5out-relu", make_workload(task="regression", n_out=5)
    for width in GRID_WIDTHS:
        for batch in GRID_BATCHES:
            yield ("width_x_batch", "w%d-b%d" % (width, batch),
                   make_workload(hidden=(width, width), batch=batch))


def configs():
    """The deduplicated grid: dicts with name (the first name given), aliases,
    factors and workload, in grid order."""
    merged = {}
    for factor, name, workload in _named_grid():
        entry = merged.setdefault(workload, {"name": name, "aliases": [], "factors": [],
                                             "workload": workload})
        if name != entry["name"]:
            entry["aliases"].append(name)
        if factor not in entry["factors"]:
            entry["factors"].append(factor)
    return list(merged.values())


def select(entries, only):
    """Entries any of whose names contains one of the comma-separated parts of `only`."""
    parts = [p.strip() for p in only.split(",") if p.strip()]
    return [e for e in entries
            if any(p in n for p in parts for n in [e["name"]] + e["aliases"])]


# ---------------------------------------------------------------- sizing

def whole_batches(n, batch):
    """n rounded up to whole batches, within [MIN_BATCHES batches, MAX_SAMPLES]."""
    n_batches = max(MIN_BATCHES, math.ceil(n / batch))
    return min(n_batches * batch, max(MAX_SAMPLES // batch, MIN_BATCHES) * batch)


def probe_samples(workload):
    """Samples of a probe epoch: about PROBE_FLOPS of work, 4 to 64 batches."""
    lo, hi = PROBE_BATCHES
    n_batches = PROBE_FLOPS / workload.flops_per_sample / workload.batch_size
    return int(min(hi, max(lo, round(n_batches)))) * workload.batch_size


# ---------------------------------------------------------------- measuring

def size_peer(proc, batch, per_sample, target_s, cap):
    """Resize a probed peer to target_s / per_sample samples (at most `cap`),
    then correct the size once or twice from the warm-up epoch at that size:
    a short probe can misjudge the time per sample (fixed costs per epoch, a
    busy moment of the machine)."""
    for _ in range(3):
        n = min(cap, whole_batches(target_s / per_sample, batch))
        proc.resize(n)
        if not proc.alive or 0.5 * target_s <= proc.warmup_s <= 1.25 * target_s:
            return
        if n == cap and proc.warmup_s < target_s:  # as large as allowed
            return
        per_sample = proc.warmup_s / proc.n_samples


def measure(entry, peers, n_threads, repeats, target_s, max_epoch_s, settle_s):
    """Run one config; returns {peer: result dict}."""
    workload = entry["workload"]
    batch = workload.batch_size
    probe = replace(workload, name=entry["name"], n_samples=probe_samples(workload))
    running, skipped, n_config = {}, {}, None
    procs = spawn_peers(probe, peers, n_threads)
    try:
        for name, proc in procs.items():  # one at a time: probes and warm-ups do not overlap
            # the first (warm-up) epoch overestimates the time per sample; a
            # short one is followed by two more, a long one is good enough
            times = [proc.warmup_s] if proc.build() else []
            while proc.alive and len(times) < 3 and times[0] < PROBE_REPEAT_S:
                times.append(proc.epoch_seconds())
            if proc.alive:
                per_sample = min(times) / proc.n_samples
                if n_config is None:  # the first peer (fastnn when measured) sets the size
                    size_peer(proc, batch, per_sample, target_s,
                              whole_batches(MAX_SAMPLES, batch))
                    n_config = proc.n_samples
                else:  # the same size, or fewer samples if an epoch would be too long
                    size_peer(proc, batch, per_sample, max_epoch_s, n_config)
            if proc.alive:
                running[name] = proc
            else:
                skipped[name] = proc.skipped
        rates = alternate_epochs(running, repeats, skipped, settle_s)
    finally:
        stop_peers(procs)
    results = {}
    for name in peers:
        if name in rates:
            r = rates[name]
            n = running[name].n_samples
            med = float(np.median(r))
            results[name] = {"samples_per_s": med, "min": min(r), "max": max(r), "rates": r,
                             "n_samples": n, "epoch_s": n / med}
        else:
            results[name] = {"skipped": skipped.get(name, "not measured")}
    return results


def _machine_info(n_threads, peak_size):
    """In a worker process with the workers' environment: the OpenBLAS
    variables it sees, its BLAS libraries, versions and the GEMM peaks."""
    from importlib.metadata import PackageNotFoundError, version

    import scipy.linalg.cython_blas  # noqa: F401  (load SciPy's BLAS so it is listed)
    from threadpoolctl import threadpool_info

    def ver(pkg):
        try:
            return version(pkg)
        except PackageNotFoundError:
            return None

    return {
        "openblas_env": {v: os.environ.get(v) for v in OPENBLAS_VARS},
        "versions": {p: ver(p) for p in ("fastnn", "numpy", "scipy", "torch", "threadpoolctl")},
        "blas": [{k: lib.get(k) for k in ("internal_api", "version", "architecture",
                                          "threading_layer", "filepath")}
                 for lib in threadpool_info() if lib.get("user_api") == "blas"],
        # dgemm at half the size: an eighth of the time, within a few % of its peak
        "peak_gflops": {"float32": gemm_peak(n_threads, "float32", n=peak_size),
                        "float64": gemm_peak(n_threads, "float64", n=peak_size // 2)},
        # the roofline's memory ceiling (bench/sweep_plot.py)
        "copy_gbs": copy_bandwidth(n_threads),
    }


def machine_info(n_threads, peak_size):
    import multiprocessing as mp
    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
        return pool.submit(_machine_info, n_threads, peak_size).result()


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# ---------------------------------------------------------------- rows and output

def make_row(entry, results, peak):
    """One config's record: its fields, each peer's result with GFLOP/s and %
    of peak, and fastnn's ratios."""
    w = entry["workload"]
    hidden = list(w.layers[1:-1])
    row = {"name": entry["name"], "aliases": entry["aliases"], "factors": entry["factors"],
           "layers": list(w.layers), "depth": len(hidden),
           "width": hidden[0] if len(set(hidden)) == 1 else None,
           "activation": w.activation, "loss": w.loss, "optimizer": w.optimizer, "lr": w.lr,
           "batch": w.batch_size, "dtype": w.dtype, "flops_per_sample": w.flops_per_sample,
           "peers": results}
    for res in results.values():
        if "samples_per_s" in res:
            res["gflops"] = res["samples_per_s"] * w.flops_per_sample / 1e9
            res["pct_peak"] = 100 * res["gflops"] / peak[w.dtype]
    base = results.get("fastnn", {}).get("samples_per_s")
    row["ratios"] = {name: (base / res["samples_per_s"]
                            if base and res.get("samples_per_s") else None)
                     for name, res in results.items() if name != "fastnn"}
    return row


def _fmt_rate(res):
    if res is None:
        return ""
    if "samples_per_s" not in res:
        return "n/a" if "Adam only" in res["skipped"] else "skipped"
    v = res["samples_per_s"]
    return "%.1fk" % (v / 1e3) if v < 1e6 else "%.2fM" % (v / 1e6)


def _fmt(v, pattern):
    return pattern % v if v is not None else ""


def markdown_table(rows, peers):
    """The summary table: samples/s per peer, fastnn's ratios and shares of peak."""
    ratio_peers = [p for p in ("pytorch", "pytorch-fused", "numpy") if p in peers]
    head = (["config"] + ["%s samples/s" % LABELS[p] for p in peers]
            + ["fastnn / %s" % LABELS[p] for p in ratio_peers]
            + ["fastnn % of peak", "PyTorch % of peak"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        res = row["peers"]
        cells = ([row["name"]] + [_fmt_rate(res.get(p)) for p in peers]
                 + [_fmt(row["ratios"].get(p), "%.2fx") for p in ratio_peers]
                 + [_fmt(res.get(p, {}).get("pct_peak"), "%.0f%%")
                    for p in ("fastnn", "pytorch")])
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


CSV_FIELDS = ("name", "aliases", "factors", "layers", "depth", "width", "activation", "loss",
              "optimizer", "lr", "batch", "dtype", "flops_per_sample")
CSV_PEER_FIELDS = ("samples_per_s", "min", "max", "n_samples", "epoch_s", "gflops", "pct_peak",
                   "skipped")


def write_csv(path, rows, peers):
    header = list(CSV_FIELDS) + ["%s_%s" % (p, f) for p in peers for f in CSV_PEER_FIELDS]
    header += ["fastnn_over_%s" % p for p in peers if p != "fastnn"]
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(header)
        for row in rows:
            cells = [";".join(map(str, row[k])) if isinstance(row[k], list) else row[k]
                     for k in CSV_FIELDS]
            cells += [row["peers"].get(p, {}).get(k) for p in peers for k in CSV_PEER_FIELDS]
            cells += [row["ratios"].get(p) for p in peers if p != "fastnn"]
            out.writerow(cells)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a few configs, short epochs: a smoke run")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                      "results"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--peers", default=",".join(DEFAULT_PEERS),
                        help="comma list of: %s" % ", ".join(PEERS))
    parser.add_argument("--only", default="",
                        help="comma list; keep configs whose name contains one of them")
    parser.add_argument("--env-openblas", choices=("as-is", "unset"), default="as-is")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--target", type=float, default=None,
                        help="seconds of one fastnn epoch (default 0.35; --quick 0.05)")
    parser.add_argument("--max-epoch", type=float, default=None,
                        help="most seconds of any peer's epoch (default 1.5; --quick 0.25)")
    parser.add_argument("--settle", type=float, default=0.1,
                        help="idle seconds before each timed epoch")
    args = parser.parse_args(argv)
    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    unknown = [p for p in peers if p not in PEERS]
    if unknown:
        parser.error("unknown peers %s; known: %s" % (unknown, ", ".join(PEERS)))
    if "fastnn" in peers:  # it sets each config's sample count
        peers.remove("fastnn")
        peers.insert(0, "fastnn")
    target_s = args.target or (0.05 if args.quick else 0.35)
    max_epoch_s = args.max_epoch or (0.25 if args.quick else 1.5)
    entries = configs()
    if args.quick:
        entries = [e for e in entries if e["name"] in QUICK]
    if args.only:
        entries = select(entries, args.only)
    if not entries:
        parser.error("no config matches --only %r" % args.only)

    if args.env_openblas == "unset":
        # inherited by every worker spawned from here on
        for var in OPENBLAS_VARS:
            os.environ.pop(var, None)
    started = time.time()
    peak_size = 2048 if args.quick else 4096
    info = machine_info(args.threads, peak_size)
    print("%d configs, peers %s, %d threads, OpenBLAS env %s (workers see %s)" % (
        len(entries), ", ".join(peers), args.threads, args.env_openblas,
        info["openblas_env"]), file=sys.stderr)
    results = []
    for i, entry in enumerate(entries):
        t0 = time.time()
        results.append((entry, measure(entry, peers, args.threads, args.repeats, target_s,
                                       max_epoch_s, args.settle)))
        fast = results[-1][1].get("fastnn", {})
        print("[%d/%d] %s: %.1f s%s" % (i + 1, len(entries), entry["name"], time.time() - t0,
                                        ", fastnn %s" % _fmt_rate(fast) if fast else ""),
              file=sys.stderr)
    # a peak measured while the machine was busy would flatter every share: take
    # the better of a measurement before and one after the configs
    after_info = machine_info(args.threads, peak_size)
    after = after_info["peak_gflops"]
    peak = {dt: max(info["peak_gflops"][dt], after[dt]) for dt in after}
    copy_gbs = max(info["copy_gbs"], after_info["copy_gbs"])
    rows = [make_row(entry, res, peak) for entry, res in results]
    wall = time.time() - started

    print("\nsgemm peak %.0f GFLOP/s (best %d^3), dgemm %.0f (best %d^3), SciPy's BLAS, %d "
          "threads; %% of peak uses dgemm's for float64 rows. Wall time %.0f s." % (
              peak["float32"], peak_size, peak["float64"], peak_size // 2, args.threads, wall))
    print(markdown_table(rows, peers))

    env = {"date": time.strftime("%Y-%m-%d %H:%M:%S"),
           "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
           "python": platform.python_version(), "cpu": cpu_model(),
           "cpu_count": os.cpu_count(), "threads": args.threads,
           "env_openblas": args.env_openblas, "workers_openblas_env": info["openblas_env"],
           "versions": info["versions"], "blas": info["blas"], "peak_gflops": peak,
           "peak_sizes": {"float32": peak_size, "float64": peak_size // 2},
           "copy_gbs": copy_gbs, "quick": args.quick, "repeats": args.repeats, "target_s": target_s,
           "max_epoch_s": max_epoch_s, "settle_s": args.settle, "peers": peers, "wall_s": wall}
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, "sweep%s-openblas-%s-%s" % (
        "-quick" if args.quick else "", args.env_openblas, time.strftime("%Y%m%d-%H%M%S")))
    with open(stem + ".json", "w") as f:
        json.dump({"env": env, "configs": rows}, f, indent=1)
    write_csv(stem + ".csv", rows, peers)
    print("\nwrote %s.json and .csv" % stem)
    return 0


if __name__ == "__main__":
    sys.exit(main())
