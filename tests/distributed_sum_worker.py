"""The program test_distributed.py runs under mpiexec to check the sum the C
training loop calls between the phases of a step (fastnn._distributed,
src_c/allsum.c): every process writes what it found to OUT/rank<r>.json.

    mpiexec -n N python tests/distributed_sum_worker.py OUT
"""

import hashlib
import json
import os
import sys

import numpy as np
from mpi4py import MPI

import fastnn as fn
from fastnn import _distributed, _kernels

WORKING_SUM = _distributed.process_sum


def digest(a):
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def sums(comm, record):
    """The C sum of rank-dependent buffers against mpi4py's Reduce + Bcast and
    Allreduce on the same buffers, in both dtypes."""
    group = _distributed.Group(comm)
    for dtype in ("float32", "float64"):
        c_sum = group.c_sum(dtype)
        record["found " + dtype] = c_sum is not None
        values = np.random.default_rng(comm.rank).standard_normal(1001).astype(dtype)
        reference = group.sum_(values.copy())  # through mpi4py
        mine = values.copy()
        record["status " + dtype] = c_sum.sum(mine)
        record["same bits " + dtype] = mine.tobytes() == reference.tobytes()
        record["digest " + dtype] = digest(mine)
        # the exact sum of every process's values, and the rounding of n - 1 additions
        terms = [np.random.default_rng(r).standard_normal(1001).astype(dtype).astype(np.float64)
                 for r in range(comm.size)]
        bound = comm.size * np.finfo(dtype).eps * np.sum(np.abs(terms), axis=0)
        record["close " + dtype] = bool(np.all(np.abs(mine - np.sum(terms, axis=0)) <= bound))
        allreduced = _distributed.process_sum(comm, dtype, True)
        both = values.copy()
        allreduced.sum(both)
        expected = values.copy()
        comm.Allreduce(MPI.IN_PLACE, expected, op=MPI.SUM)
        record["allreduce same bits " + dtype] = both.tobytes() == expected.tobytes()


def broken_sum(comm, dtype, allreduce):
    """A ProcessSum whose communicator is MPI_COMM_NULL: its MPI calls fail."""
    good = WORKING_SUM(comm, dtype, allreduce)
    addresses = _distributed.mpi_function_addresses(MPI)
    datatype = MPI.FLOAT if np.dtype(dtype) == np.float32 else MPI.DOUBLE
    assert good is not None
    return _kernels.ProcessSum(*addresses, MPI.COMM_NULL.handle, datatype.handle,
                               MPI.SUM.handle, int(MPI.IN_PLACE), MPI._sizeof(MPI.Comm),
                               np.dtype(dtype).itemsize, allreduce, comm.rank, comm.size)


def failures(comm, record):
    """A failing MPI call: the status and code, then a fit whose sum fails on
    every process."""
    buf = np.ones(7)
    s = broken_sum(comm, "float64", False)
    record["broken status"] = s.sum(buf)
    record["broken error"] = s.error
    _distributed.process_sum = broken_sum  # every fit below sums through it
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((40, 4)), rng.integers(0, 2, 40)
    net = fn.Sequential([fn.Dense(3, activation="relu"), fn.Dense(2, activation="softmax")],
                        input_dim=4, seed=2)
    try:
        net.fit(X, y, epochs=2, batch_size=8, comm=comm)
        record["fit error"] = None
    except RuntimeError as exc:
        record["fit error"] = str(exc)


def main():
    out = sys.argv[1]
    comm = MPI.COMM_WORLD
    record = {}
    sums(comm, record)
    failures(comm, record)
    with open(os.path.join(out, "rank%d.json" % comm.rank), "w") as f:
        json.dump(record, f)


if __name__ == "__main__":
    main()
