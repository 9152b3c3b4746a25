"""Train one network on several processes, each holding a shard of the rows.

    mpiexec -n 2 python examples/train_distributed.py

Needs the mpi and sklearn extras (pip install ".[mpi,sklearn]"). Every
process reads scikit-learn's digits and keeps its own contiguous shard of the
training and test rows; the Standardizer fitted with comm takes the mean
and standard deviation of every process's training rows together, and
fit(..., comm=comm) sums the gradients over the processes at every step, so
the processes train one model and end with the same weights. Process 0 prints the progress and the result, and saves the
model; every process then loads it (docs/distributed.md).
"""

import os
import tempfile

import numpy as np
from mpi4py import MPI
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import fastnn as fn


def shard(a, comm):
    """This process's contiguous part of a (the processes' parts, in rank
    order, are a)."""
    cuts = np.linspace(0, len(a), comm.size + 1).astype(int)
    return a[cuts[comm.rank]:cuts[comm.rank + 1]]


def main():
    comm = MPI.COMM_WORLD
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X.astype("float32"), y,
                                                        test_size=0.25, stratify=y,
                                                        random_state=0)
    X_local, y_local = shard(X_train, comm), shard(y_train, comm)
    # the statistics of all the processes' training rows, the same on every process
    scaler = fn.Standardizer().fit(X_local, comm=comm)
    X_local, X_test = scaler.transform(X_local), scaler.transform(X_test)
    model = fn.Sequential([fn.Dense(128, activation="relu"), fn.Dropout(0.1),
                           fn.Dense(10, activation="softmax")], input_dim=64, seed=0)
    history = model.fit(X_local, y_local,
                        batch_size=64,  # the global batch: rows of every process together
                        epochs=30, optimizer=fn.optim.Adam(lr=2e-3), l2=1e-4,
                        validation_data=(shard(X_test, comm), shard(y_test, comm)),
                        early_stopping=fn.EarlyStopping(patience=5), n_threads=1,
                        verbose=2, comm=comm)  # only process 0 prints

    # one file, written by process 0; every process may then load it
    path = comm.bcast(os.path.join(tempfile.mkdtemp(), "digits.npz") if comm.rank == 0
                      else None, root=0)
    if comm.rank == 0:
        model.save(path)
    comm.Barrier()
    loaded = fn.load(path)
    accuracy = float(np.mean(loaded.predict(X_test) == y_test))
    if comm.rank == 0:
        print("%d processes, %d epochs (%s): test accuracy %.4f"
              % (comm.size, len(history.epochs), history.stopped or "all epochs", accuracy))


if __name__ == "__main__":
    main()
