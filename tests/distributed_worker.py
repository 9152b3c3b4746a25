"""The program tests/test_distributed.py runs under mpiexec: every process
trains on its shard of one data set and writes what it ended with to OUT.

    mpiexec -n N python tests/distributed_worker.py MODE OUT [N_THREADS]

MODE is
- train: classification with dropout and string labels (process 1's shard
  lacks a class; the processes other than 0 make their model with seed=None),
  sample weights, uneven shards and an uneven last batch, l2, clip_norm,
  validation shards and early stopping; process 0 also trains one model on
  the whole data set in one process (single.npz)
- regression: mse on the same rows, without weights, drop_last and
  clip_value, with validation shards (the r2 and mse of the shards); a
  callback on the last process stops every process after epoch 3
- nonfinite: regression whose process 1's shard has a target that makes its
  loss overflow; every process stops at the same step (on_nonfinite="warn")
- kill: process 1 kills itself (SIGKILL) in its second epoch
- callback_error: a callback raises on process 1 in its second epoch
- options: float32, dropout, validation_split, and a second fit continuing
  the first
- mismatch: process 1's shard has one feature too many
- losses: binary_cross_entropy (multi-label, and two string labels) and
  poisson, weighted, with weighted validation shards; process 0 also trains
  each on all rows in one process
- sklearn: fastnn.sklearn's MLPClassifier (the train mode's data, sample
  weights, alpha, clip_norm) and a two-output MLPRegressor, each with comm and,
  on process 0, without; and an MLPRegressor with random_state=None
Each process writes rank<r>.npz (its parameters, optimizer state and step)
and rank<r>.json (its History, or the error it raised).
"""

import hashlib
import json
import os
import signal
import sys
import warnings

import numpy as np
from mpi4py import MPI

import fastnn as fn

N_ROWS, N_FEATURES, N_VAL = 61, 6, 23
LABELS = np.array(["ant", "bee", "cat"])


def data(rank_count):
    """The global data set, its validation rows, and the shard bounds of
    rank_count processes (uneven; process 1's shard has no "cat")."""
    rng = np.random.default_rng(7)
    X = rng.normal(size=(N_ROWS, N_FEATURES))
    codes = rng.integers(0, 3, size=N_ROWS)
    cuts = {1: [0, N_ROWS], 2: [0, 40, N_ROWS], 3: [0, 25, 33, N_ROWS]}[rank_count]
    if rank_count > 1:
        codes[cuts[1]:cuts[2]] = rng.integers(0, 2, size=cuts[2] - cuts[1])
    weights = rng.uniform(0.2, 2.0, size=N_ROWS)
    X_val = rng.normal(size=(N_VAL, N_FEATURES))
    y_val = LABELS[rng.integers(0, 3, size=N_VAL)]
    val_cuts = np.linspace(0, N_VAL, rank_count + 1).astype(int)
    return X, LABELS[codes], weights, cuts, X_val, y_val, val_cuts


def model(loss="cross_entropy", seed=11, dropout=0.0):
    out = fn.Dense(3, activation="softmax") if loss == "cross_entropy" else fn.Dense(1)
    hidden = [fn.Dense(16, activation="tanh")] + ([fn.Dropout(dropout)] if dropout else [])
    return fn.Sequential(hidden + [out], input_dim=N_FEATURES, dtype="float64", seed=seed)


class StopAt:
    """Stops training at the end of `epoch` on process `rank` only."""

    def __init__(self, rank, epoch, own_rank):
        self.stop = own_rank == rank
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs):
        return self.stop and epoch == self.epoch


class RaiseAt:
    """Raises RuntimeError at the end of epoch 1 on process 1 only."""

    def __init__(self, rank):
        self.rank = rank

    def on_epoch_end(self, epoch, logs):
        if self.rank == 1 and epoch == 1:
            raise RuntimeError("a callback failed")
        return False


class KillSelf:
    """Process 1 ends itself with SIGKILL at the end of epoch 1."""

    def __init__(self, rank):
        self.rank = rank

    def on_epoch_end(self, epoch, logs):
        if self.rank == 1 and epoch == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        return False


def save(out, name, net, history=None, error=None):
    if net.optimizer_state_ is not None:
        np.savez(os.path.join(out, name + ".npz"), params=net.arena_.params,
                 states=np.concatenate([s.ravel() for s in net.optimizer_state_]), t=net.t_)
    record = {"error": error}
    if history is not None:
        rows = history.validation_rows
        record.update(history=history.history, epochs=history.epochs,
                      stopped=history.stopped, detail=history.stop_detail,
                      validation_rows=None if rows is None else rows.tolist())
    with open(os.path.join(out, name + ".json"), "w") as f:
        json.dump(record, f)


def estimators(X, y, w, lo, hi, comm, nt):
    """Fit an MLPClassifier and a two-output MLPRegressor on rows lo:hi with
    comm (or on all rows when comm is None); their weights and loss curves."""
    from fastnn.sklearn import MLPClassifier, MLPRegressor
    options = dict(hidden_layer_sizes=(16,), solver="adam", alpha=0.05, batch_size=9,
                   max_iter=6, tol=0.0, random_state=0, clip_norm=0.3, dtype="float64",
                   n_threads=nt)
    targets = np.column_stack([X @ np.linspace(-1, 1, N_FEATURES), X[:, 0] ** 2])
    clf = MLPClassifier(**options).fit(X[lo:hi], y[lo:hi], sample_weight=w[lo:hi], comm=comm)
    reg = MLPRegressor(**options).fit(X[lo:hi], targets[lo:hi], comm=comm)
    params = np.concatenate([a.ravel() for e in (clf, reg)
                             for a in e.coefs_ + e.intercepts_])
    record = {"clf_loss": clf.loss_curve_, "reg_loss": reg.loss_curve_,
              "t": [clf.t_, reg.t_], "n_iter": [clf.n_iter_, reg.n_iter_],
              "classes": clf.classes_.tolist()}
    if comm is not None:  # random_state=None: process 0's draw serves every process
        unseeded = MLPRegressor(**dict(options, random_state=None)).fit(
            X[lo:hi], targets[lo:hi], comm=comm)
        record["unseeded"] = hashlib.sha256(b"".join(
            a.tobytes() for a in unseeded.coefs_ + unseeded.intercepts_)).hexdigest()
    return params, record


def other_losses(X, w, X_val, lo, hi, vlo, vhi, comm, nt):
    """binary_cross_entropy (multi-label, and two string labels) and poisson,
    with sample weights and weighted validation shards (or all rows when comm
    is None): (parameters, optimizer states, steps, History fields)."""
    rng = np.random.default_rng(3)
    w_val = rng.uniform(0.5, 1.5, N_VAL)
    cases = [("multilabel", fn.Dense(3, activation="sigmoid"), (X[:, :3] > 0) * 1.0,
              (X_val[:, :3] > 0) * 1.0),
             ("labels", fn.Dense(1, activation="sigmoid"), np.where(X[:, 1] > 0, "yes", "no"),
              np.where(X_val[:, 1] > 0, "yes", "no")),
             ("poisson", fn.Dense(1, activation="exp"), np.floor(np.exp(X[:, 0])),
              np.floor(np.exp(X_val[:, 0])))]
    params, states, t, record = [], [], 0, {"history": {}, "epochs": [], "stopped": None}
    for name, out, y, y_val in cases:
        net = fn.Sequential([fn.Dense(8, activation="tanh"), out], input_dim=N_FEATURES,
                            dtype="float64", seed=2)
        history = net.fit(X[lo:hi], y[lo:hi], sample_weight=w[lo:hi],
                          validation_data=(X_val[vlo:vhi], y_val[vlo:vhi], w_val[vlo:vhi]),
                          batch_size=6, epochs=3, l2=0.01, n_threads=nt, comm=comm)
        params.append(net.arena_.params)
        states += [s.ravel() for s in net.optimizer_state_]
        t += net.t_
        record["history"].update({name + " " + k: v for k, v in history.history.items()})
        record["epochs"] += history.epochs
    return np.concatenate(params), np.concatenate(states), t, record


def save_losses(out, name, result):
    params, states, t, record = result
    np.savez(os.path.join(out, name + ".npz"), params=params, states=states, t=t)
    with open(os.path.join(out, name + ".json"), "w") as f:
        json.dump(record, f)


def save_estimators(out, name, result):
    np.savez(os.path.join(out, name + ".npz"), params=result[0], states=np.zeros(0),
             t=result[1]["t"][0])
    with open(os.path.join(out, name + ".json"), "w") as f:
        json.dump(result[1], f)


def main():
    mode, out = sys.argv[1], sys.argv[2]
    nt = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    comm = MPI.COMM_WORLD
    rank = comm.rank
    with open(os.path.join(out, "pid%d" % rank), "w") as f:
        f.write(str(os.getpid()))
    X, y, w, cuts, X_val, y_val, val_cuts = data(comm.size)
    lo, hi = cuts[rank], cuts[rank + 1]
    vlo, vhi = val_cuts[rank], val_cuts[rank + 1]
    options = dict(batch_size=9, epochs=6, l2=0.05, clip_norm=0.3, optimizer="adam",
                   n_threads=nt)
    callbacks = []
    if mode == "train":
        options.update(sample_weight=w[lo:hi],
                       early_stopping=fn.EarlyStopping(patience=1, restore_best=False))
        validation = (X_val[vlo:vhi], y_val[vlo:vhi])
        full_options = dict(options, sample_weight=w, validation_data=(X_val, y_val))
    elif mode == "regression":
        options.update(drop_last=True, clip_value=0.2)
        y = X @ np.linspace(-1, 1, N_FEATURES) + 0.1
        y_val = X_val @ np.linspace(-1, 1, N_FEATURES) + 0.1
        validation = (X_val[vlo:vhi], y_val[vlo:vhi])
        callbacks = [StopAt(comm.size - 1, 3, rank)]  # the last process stops them all
        full_options = dict(options, validation_data=(X_val, y_val),
                            callbacks=[StopAt(0, 3, 0)])
    elif mode == "nonfinite":
        y = X @ np.linspace(-1, 1, N_FEATURES)
        y[cuts[1] + 3] = 1.4e154  # in process 1's shard: its squared error overflows
        options.update(on_nonfinite="warn", epochs=3)
        validation = None
        full_options = dict(options)
    elif mode == "kill":
        options.update(epochs=200)
        callbacks = [KillSelf(rank)]
        validation = None
    elif mode == "losses":
        save_losses(out, "rank%d" % rank, other_losses(X, w, X_val, lo, hi, vlo, vhi, comm, nt))
        if rank == 0:
            save_losses(out, "single", other_losses(X, w, X_val, 0, N_ROWS, 0, N_VAL, None, nt))
        return
    elif mode == "sklearn":
        warnings.simplefilter("ignore")  # max_iter reached: scikit-learn's ConvergenceWarning
        save_estimators(out, "rank%d" % rank, estimators(X, y, w, lo, hi, comm, nt))
        if rank == 0:
            save_estimators(out, "single", estimators(X, y, w, 0, N_ROWS, None, nt))
        return
    elif mode == "options":
        # float32, dropout, validation_split, then a second fit that continues the first
        net = fn.Sequential([fn.Dense(16, activation="relu"), fn.Dropout(0.3),
                             fn.Dense(3, activation="softmax")], input_dim=N_FEATURES,
                            dtype="float32", seed=5)
        first = net.fit(X[lo:hi], y[lo:hi], batch_size=9, epochs=2, validation_split=0.2,
                        comm=comm, n_threads=nt)
        save(out, "first%d" % rank, net, first)
        history = net.fit(X[lo:hi], y[lo:hi], batch_size=9, epochs=2, comm=comm, n_threads=nt)
        save(out, "rank%d" % rank, net, history)
        return
    elif mode == "callback_error":
        options.update(epochs=200)
        callbacks = [RaiseAt(rank)]
        validation = None
    elif mode == "mismatch":
        if rank == 1:
            X = np.hstack([X, X[:, :1]])
        validation = None
    else:
        raise SystemExit("unknown mode %r" % mode)

    loss = "mse" if mode in ("regression", "nonfinite") else "cross_entropy"
    # in train mode only process 0 has the seed: the others start from its weights
    dropout = 0.25 if mode == "train" else 0.0
    net = model(loss, seed=None if mode == "train" and rank > 0 else 11, dropout=dropout)
    try:
        history = net.fit(X[lo:hi], y[lo:hi], validation_data=validation, comm=comm,
                          callbacks=callbacks, **options)
    except (ValueError, RuntimeError) as exc:
        save(out, "rank%d" % rank, net, error="%s: %s" % (type(exc).__name__, exc))
        return
    save(out, "rank%d" % rank, net, history)
    if rank == 0 and mode in ("train", "regression", "nonfinite"):
        single = model(loss, dropout=dropout)
        save(out, "single", single, single.fit(X, y, **full_options))


if __name__ == "__main__":
    main()
