"""Data-parallel training over MPI: time per epoch on 1 and R processes, the
share of the step spent summing the gradients, and the steps run in the C loop
(the sum called from C) against the steps driven from Python.

    mpiexec -n 1 python bench/distributed.py     # the one-process figures
    mpiexec -n 2 python bench/distributed.py     # two processes, 1 thread each

Process 0 prints one line per network: the global rows, the parameters P,
the fastest epoch of fit(..., comm=comm) (`--repeats` fits of `--epochs`),
the same with FASTNN_MPI_LOOP=python (every step returning to Python for the
sum through mpi4py) and the difference per step, the
seconds of the sum of the gradient arena (Reduce + Bcast of P elements, the
median of 200 calls, and the share of the epoch it takes over the epoch's
steps), on several processes also the epoch with FASTNN_MPI_SUM=allreduce,
and on one process the epoch of fit without comm (the C loop that runs every
batch without returning to Python). Each process trains its
shard: the global rows divided among the processes. Every process runs 1
OpenMP thread unless --threads says otherwise (`--threads default`: fit's
n_threads=None, each process's share of the cores of its machine).
"""

import argparse
import os
import time

import numpy as np
from mpi4py import MPI

import fastnn as fn

NETWORKS = {  # name: (inputs, hidden widths, classes)
    "small": (64, (64,), 10),
    "mnist": (784, (256,), 10),
    "wide": (784, (1024, 1024), 10),
}


def model(name, dtype):
    n_in, hidden, k = NETWORKS[name]
    layers = [fn.Dense(h, activation="relu") for h in hidden]
    return fn.Sequential(layers + [fn.Dense(k, activation="softmax")], input_dim=n_in,
                         dtype=dtype, seed=0)


def shard(comm, n_rows, n_in, k, dtype):
    """This process's rows of a synthetic data set of n_rows rows."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((n_rows, n_in)).astype(dtype)
    y = rng.integers(0, k, size=n_rows)
    cuts = np.linspace(0, n_rows, comm.size + 1).astype(int)
    lo, hi = cuts[comm.rank], cuts[comm.rank + 1]
    return X[lo:hi], y[lo:hi]


def _median_seconds(comm, operation, repeats):
    """Median seconds of operation(), every process starting together."""
    times = []
    for _ in range(repeats):
        comm.Barrier()
        t0 = time.perf_counter()
        operation()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def sum_seconds(comm, n, dtype, repeats=200):
    """Median seconds of one Reduce + Bcast of n elements (the gradient sum)."""
    buf = np.ones(n, dtype=dtype)

    def reduce_and_broadcast():
        if comm.rank == 0:
            comm.Reduce(MPI.IN_PLACE, buf, op=MPI.SUM, root=0)
        else:
            comm.Reduce(buf, None, op=MPI.SUM, root=0)
        comm.Bcast(buf, root=0)
    return _median_seconds(comm, reduce_and_broadcast, repeats)


def allreduce_seconds(comm, n, dtype, repeats=200):
    """Median seconds of one in-place Allreduce of n elements, for comparison."""
    buf = np.ones(n, dtype=dtype)
    return _median_seconds(comm, lambda: comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM),
                           repeats)


def epoch_seconds(name, X, y, comm, args):
    """The fastest epoch of a fresh model's fit (after its first, which warms up)."""
    history = model(name, args.dtype).fit(X, y, batch_size=args.batch_size,
                                          epochs=args.epochs, optimizer="adam",
                                          n_threads=args.threads, comm=comm)
    return float(np.min(history.history["time"][1:]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=16384)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=lambda v: None if v == "default" else int(v),
                        default=1, help="OpenMP threads per process, or 'default'")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--networks", default="small,mnist,wide")
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be at least 2: the first epoch of a fit warms up and "
                     "is not timed")
    comm = MPI.COMM_WORLD
    if comm.rank == 0:
        print("processes=%d threads=%s dtype=%s batch_size=%d MPI: %s"
              % (comm.size, "default" if args.threads is None else args.threads,
                 args.dtype, args.batch_size,
                 MPI.Get_library_version().splitlines()[0]))
    for name in args.networks.split(","):
        n_in, _, k = NETWORKS[name]
        X, y = shard(comm, args.rows, n_in, k, args.dtype)
        P = model(name, args.dtype).arena_.params.size
        steps = -(-args.rows // args.batch_size)
        # fits with and without comm alternate, so that a busy moment of the
        # machine does not land on one of them only; the fastest of each is kept
        t_comm = t_python = t_alone = t_allreduce = float("inf")
        for _ in range(args.repeats):
            t_comm = min(t_comm, epoch_seconds(name, X, y, comm, args))
            os.environ["FASTNN_MPI_LOOP"] = "python"
            t_python = min(t_python, epoch_seconds(name, X, y, comm, args))
            os.environ["FASTNN_MPI_LOOP"] = "c"
            if comm.size == 1:
                t_alone = min(t_alone, epoch_seconds(name, X, y, None, args))
            else:  # the same fit summing with one Allreduce
                os.environ["FASTNN_MPI_SUM"] = "allreduce"
                t_allreduce = min(t_allreduce, epoch_seconds(name, X, y, comm, args))
                os.environ["FASTNN_MPI_SUM"] = "reduce"
        t_sum = sum_seconds(comm, P, args.dtype)
        t_all = allreduce_seconds(comm, P, args.dtype)
        line = ("%-6s rows=%d P=%d steps=%d  epoch(comm)=%.4f s  step=%.1f us  "
                "sum=%.1f us (%.1f%% of the epoch)  allreduce=%.1f us"
                % (name, args.rows, P, steps, t_comm, 1e6 * t_comm / steps, 1e6 * t_sum,
                   100 * steps * t_sum / t_comm, 1e6 * t_all))
        line += "  epoch(comm, FASTNN_MPI_LOOP=python)=%.4f s  Python loop - C loop=%.1f us/step" \
            % (t_python, 1e6 * (t_python - t_comm) / steps)
        if comm.size > 1:
            line += "  epoch(comm, FASTNN_MPI_SUM=allreduce)=%.4f s" % t_allreduce
        if comm.size == 1:
            line += "  epoch(no comm)=%.4f s  comm - no comm=%.1f us/step" % (
                t_alone, 1e6 * (t_comm - t_alone) / steps)
        if comm.rank == 0:
            print(line, flush=True)


if __name__ == "__main__":
    main()
