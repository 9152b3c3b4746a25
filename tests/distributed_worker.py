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
- schedule: the train mode's data, weights zero on two of each epoch's
  global batches (shuffle=False), and SGD with a step-decay schedule;
  process 0 also trains on all rows in one process
- weightless: the train mode's data without dropout, process 1's shard
  weighing nothing; process 0 also trains on all rows in one process. Then
  fits whose training rows, and validation rows, weigh nothing on every
  process
- kill: process 1 kills itself (SIGKILL) in its second epoch
- callback_error: a callback raises on process 1 in on_train_begin, in
  its second epoch's on_epoch_end, then in on_train_end; then a callback
  given to process 0 alone changes the weights when training ends
- options: float32, dropout, validation_split (the processes other than 0
  making their model with seed=None), and a second fit continuing the first
- mismatch: process 1's shard has one feature too many
- option_mismatch: process 2 passes another l2 to fit, and makes its
  MLPClassifier with another alpha (the processes' threads differ, and
  process 0 names the optimizer that the others pass as an object); then
  an integer random_state on one process only (None or a RandomState on
  the others)
- losses: binary_cross_entropy (multi-label, and two string labels) and
  poisson, weighted, with weighted validation shards; process 0 also trains
  each on all rows in one process
- sklearn: fastnn.sklearn's MLPClassifier (the train mode's data, sample
  weights, alpha, clip_norm) and a two-output MLPRegressor, each with comm and,
  on process 0, without; an MLPRegressor with random_state=None; and an
  MLPRegressor whose weights overflow
- early_stopping: an MLPClassifier (sample weights) and a two-output
  MLPRegressor with early_stopping, each stopping before max_iter; process 0
  also fits each in one process holding out the rows the processes hold out
- warm_start: a warm-started MLPClassifier fitted twice with comm, and a
  warm-started MLPRegressor fitted by process 0 alone on its shard, then on
  every shard with comm; process 0 also fits both twice in one process
- preprocessing: fastnn.preprocessing.Standardizer fitted with comm (a
  column constant everywhere, one constant within each shard), a Pipeline of
  a Standardizer and an MLPClassifier fitted with comm (process 0 also fits
  both on all rows), and a shard with a NaN
- balanced: the train mode's data with class_weight="balanced" and sample
  weights (process 1's shard lacks a class); process 0 also trains on all rows
- partial_fit: a stream of three chunks (the first lacking a class, the last
  smaller than batch_size), each split unevenly over the processes, given to
  Sequential.partial_fit with comm (told the classes; and a second stream
  taking the union of its first chunk's labels), MLPClassifier and a
  two-output MLPRegressor (given the first chunk by process 0 alone, without
  comm); process 0 also gives the concatenated chunks to the same calls in
  one process. Then calls that fail on every process: an
  option changed on process 1, an empty chunk on the last process, a first
  call whose options differ on the last process, a classifier's first call
  without classes on process 1, and early_stopping
- threads: the thread counts fits with comm take: an MLPClassifier's
  n_threads_ by default and when given, and Sequential.fit with n_threads=0
  on the last process only
- names: shards that disagree in ways a count does not show: process 1
  gives its DataFrame's columns in another order (to Sequential.fit and to
  MLPClassifier.fit), and integer labels where process 0 has strings
- continued: every process first trains its model alone on all rows (each
  with its own seed and batch size, so each ends at another step), then the processes
  continue with comm: process 0's model is continued everywhere; process 0
  also continues a copy of its model in one process on all rows
- loaded: process 0 loads a model it trained alone and saved, the others
  make a fresh one (seed=None), and the processes continue process 0's
  with comm; process 0 also continues the loaded model on all rows
- layers: process 1 makes a model with a wider hidden layer
- settings: process 1 alone sets FASTNN_MPI_SUM=allreduce, then
  FASTNN_MPI_LOOP to a value that is not one, then passes an EarlyStopping
  that does not restore the best weights
- progress: a fit of two epochs with verbose=1 (process 0's progress bar)
MODE@dup and MODE@split run MODE on a communicator made from COMM_WORLD by
Dup or Split (whose MPICH handles are negative ints).
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
    """Raises RuntimeError on process 1 only, in `hook`: on_train_begin,
    on_epoch_end (at the end of epoch 1) or on_train_end."""

    def __init__(self, rank, hook):
        self.rank, self.hook = rank, hook

    def _fail(self, hook):
        if self.rank == 1 and hook == self.hook:
            raise RuntimeError("a callback failed in " + hook)

    def on_train_begin(self, logs):
        self._fail("on_train_begin")

    def on_epoch_end(self, epoch, logs):
        if epoch == 1:
            self._fail("on_epoch_end")
        return False

    def on_train_end(self, logs):
        self._fail("on_train_end")


class MoveWeightsAtEnd(fn.Callback):
    """Changes the weights at the end of training: given to process 0 only."""

    def set_model(self, model):
        self.model = model

    def on_train_end(self, logs):
        self.model.arena_.params[0] += 1.0


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
                 states=np.concatenate([np.zeros(0)] + [s.ravel() for s in net.optimizer_state_]),
                 t=net.t_)
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
    try:  # a learning rate that makes the weights overflow: the fit raises, everywhere
        MLPRegressor(**dict(options, solver="sgd", learning_rate_init=1e3, clip_norm=None)).fit(
            X[lo:hi], 1e3 * targets[lo:hi], comm=comm)
        record["diverged"] = None
    except ValueError as exc:
        record["diverged"] = str(exc)
    if comm is not None:  # random_state=None: process 0's draw serves every process
        unseeded = MLPRegressor(**dict(options, random_state=None)).fit(
            X[lo:hi], targets[lo:hi], comm=comm)
        record["unseeded"] = hashlib.sha256(b"".join(
            a.tobytes() for a in unseeded.coefs_ + unseeded.intercepts_)).hexdigest()
    return params, record


def estimator_record(*fitted):
    """The weights (flat) and the fitted attributes of estimators."""
    params = np.concatenate([a.ravel() for e in fitted for a in e.coefs_ + e.intercepts_])
    record = {"loss": [e.loss_curve_ for e in fitted], "t": [e.t_ for e in fitted],
              "n_iter": [e.n_iter_ for e in fitted],
              "no_improvement": [e._no_improvement_count for e in fitted],
              "validation": [e.validation_scores_ for e in fitted],
              "best_validation": [e.best_validation_score_ for e in fitted]}
    return params, record


def shard_split(cls, cuts):
    """cls whose early-stopping split is that of a fit on the shards given by
    cuts (docs/distributed.md): every shard split alone from the same random
    state, the state then continuing from shard 0's split; so that one
    process holds out the rows the processes hold out."""
    class ShardSplit(cls):
        def _split_validation(self, X, y, sample_weight, group=None):
            start, parts, after = self._random_state.get_state(), [], None
            for lo, hi in zip(cuts[:-1], cuts[1:]):
                self._random_state.set_state(start)
                parts.append(super()._split_validation(
                    X[lo:hi], y[lo:hi], None if sample_weight is None else sample_weight[lo:hi]))
                after = self._random_state.get_state() if after is None else after
            self._random_state.set_state(after)
            return tuple(None if p[0] is None else np.concatenate(p) for p in zip(*parts))
    return ShardSplit


def early_stopping_estimators(X, y, w, cuts, rank, comm, nt):
    """An MLPClassifier (sample weights, one shard lacking a class) and a
    two-output MLPRegressor with early_stopping, on this process's shard with
    comm, or (comm None) on all rows in one process holding out what the
    processes hold out."""
    from fastnn.sklearn import MLPClassifier, MLPRegressor
    options = dict(hidden_layer_sizes=(16,), solver="adam", batch_size=9, max_iter=40,
                   random_state=0, learning_rate_init=0.01, early_stopping=True,
                   validation_fraction=0.25, n_iter_no_change=3, dtype="float64",
                   n_threads=nt)
    lo, hi = (cuts[rank], cuts[rank + 1]) if comm is not None else (0, N_ROWS)
    classifier = MLPClassifier if comm is not None else shard_split(MLPClassifier, cuts)
    regressor = MLPRegressor if comm is not None else shard_split(MLPRegressor, cuts)
    targets = np.column_stack([X @ np.linspace(-1, 1, N_FEATURES), X[:, 0] ** 2])
    clf = classifier(**options).fit(X[lo:hi], y[lo:hi], sample_weight=w[lo:hi], comm=comm)
    # tol: the R^2 stops improving by 0.03 at iteration 13 of 40
    reg = regressor(**dict(options, tol=0.03)).fit(X[lo:hi], targets[lo:hi], comm=comm)
    return estimator_record(clf, reg)


def warm_started_estimators(X, y, w, cuts, rank, comm, nt):
    """A warm-started MLPClassifier fitted twice (sample weights, one shard
    lacking a class), and a warm-started MLPRegressor fitted first on shard 0
    alone (by process 0, without comm), then on every shard: with comm, or
    (comm None) in one process on shard 0, then on all rows."""
    from fastnn.sklearn import MLPClassifier, MLPRegressor
    options = dict(hidden_layer_sizes=(16,), solver="adam", batch_size=9, max_iter=3,
                   tol=0.0, random_state=0, warm_start=True, dtype="float64", n_threads=nt)
    lo, hi = (cuts[rank], cuts[rank + 1]) if comm is not None else (0, N_ROWS)
    targets = np.column_stack([X @ np.linspace(-1, 1, N_FEATURES), X[:, 0] ** 2])
    clf = MLPClassifier(**options)
    for _ in range(2):
        clf.fit(X[lo:hi], y[lo:hi], sample_weight=w[lo:hi], comm=comm)
    reg = MLPRegressor(**dict(options, solver="sgd", learning_rate_init=0.01))
    if rank == 0:
        reg.fit(X[:cuts[1]], targets[:cuts[1]])
    reg.fit(X[lo:hi], targets[lo:hi], comm=comm)
    return estimator_record(clf, reg)


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


def preprocessing(X, y, cuts, rank, comm, nt):
    """A Standardizer fitted with comm in both dtypes (columns added: one
    constant everywhere, one constant within each shard at a different
    value, one near 1e7), and a Pipeline of a Standardizer and an MLPClassifier, both
    fitted with comm; on all rows in one process when comm is None. Then a
    shard with a NaN (comm only): every process records its error."""
    from sklearn.pipeline import make_pipeline
    from fastnn.preprocessing import Standardizer
    from fastnn.sklearn import MLPClassifier
    lo, hi = (cuts[rank], cuts[rank + 1]) if comm is not None else (0, N_ROWS)
    shard_of_row = np.searchsorted(cuts, np.arange(N_ROWS), side="right") - 1
    # and one near 1e7 whose shards' means differ by less than float32's rounding
    # of a mean near 1e7 could keep
    wide = np.column_stack([X, np.full(N_ROWS, 0.3), 1.5 * shard_of_row,
                            1e7 + np.arange(N_ROWS) % 2 + 3 * shard_of_row])[lo:hi]
    stats = []
    for dtype in ("float32", "float64"):
        scaler = Standardizer(n_threads=nt).fit(wide.astype(dtype), comm=comm)
        stats += [scaler.mean_.astype(np.float64), scaler.std_.astype(np.float64)]
    pipe = make_pipeline(Standardizer(n_threads=nt), MLPClassifier(
        hidden_layer_sizes=(8,), max_iter=4, batch_size=9, random_state=0, n_threads=nt))
    fit_params = {} if comm is None else {"standardizer__comm": comm,
                                          "mlpclassifier__comm": comm}
    pipe.fit(X[lo:hi], y[lo:hi], **fit_params)
    mlp = pipe.named_steps["mlpclassifier"]
    params = np.concatenate(stats + [a.ravel() for a in mlp.coefs_ + mlp.intercepts_])
    record = {"t": [mlp.t_], "loss": mlp.loss_curve_,
              "predictions": pipe.predict(X).tolist()}
    if comm is not None:
        bad = X[lo:hi].copy()
        if rank == 1:
            bad[0, 0] = np.nan
        try:
            Standardizer().fit(bad, comm=comm)
            record["nan error"] = None
        except ValueError as exc:  # process 1's own error, or one that names process 1
            record["nan error"] = "NaN" in str(exc) and (rank == 1 or "process 1" in str(exc))
    return params, record


STREAM = [0, 24, 54, 61]  # the global chunks of the partial_fit mode: 24, 30 and 7 rows
STREAM_SPLITS = {1: [0.0, 1.0], 2: [0.0, 0.6, 1.0], 3: [0.0, 0.4, 0.55, 1.0]}


def stream_shards(rank, size):
    """(lo, hi) of this process's shard of each global chunk of STREAM: the
    chunk split unevenly, the shards in rank order (every process has a row
    of each)."""
    bounds = []
    for a, b in zip(STREAM[:-1], STREAM[1:]):
        cuts = a + (np.array(STREAM_SPLITS[size]) * (b - a)).astype(int)
        bounds.append((int(cuts[rank]), int(cuts[rank + 1])))
    return bounds


def partial_fits(X, y, w, rank, comm, nt):
    """The stream of STREAM's chunks given to partial_fit with comm (each
    process its shard of each chunk), or, comm None, each whole chunk in one
    process: two Sequential streams and the two estimators. Returns (arrays,
    record)."""
    from fastnn.sklearn import MLPClassifier, MLPRegressor
    size = 1 if comm is None else comm.size
    shards = stream_shards(0 if comm is None else rank, size)
    y = y.copy()
    y[:STREAM[1]][y[:STREAM[1]] == "cat"] = "bee"  # the first chunk lacks a class
    # told the classes, with a class weight dict, sample weights and dropout
    told = model(seed=None if comm is not None and rank > 0 else 11, dropout=0.25)
    # the union of the first chunk's labels (a "cat" in its first 9 rows only, so
    # only process 0's shard has one), unweighted
    union = fn.Sequential([fn.Dense(8, activation="relu"), fn.Dense(3, activation="softmax")],
                          input_dim=N_FEATURES, dtype="float64", seed=4)
    y_union = LABELS[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)]
    y_union[9:STREAM[1]][y_union[9:STREAM[1]] == "cat"] = "ant"
    assert "cat" in y_union[:9]
    options = dict(batch_size=9, l2=0.05, clip_norm=0.3, optimizer="adam",
                   class_weight={"ant": 1.0, "bee": 2.0, "cat": 0.5})
    estimator_options = dict(hidden_layer_sizes=(16,), solver="adam", alpha=0.05,
                             batch_size=9, random_state=0, clip_norm=0.3, dtype="float64",
                             n_threads=nt)
    targets = np.column_stack([X @ np.linspace(-1, 1, N_FEATURES), X[:, 0] ** 2])
    clf, reg = MLPClassifier(**estimator_options), MLPRegressor(**estimator_options)
    record = {"loss": [], "union loss": []}
    for i, (lo, hi) in enumerate(shards):
        extra = dict(options, classes=LABELS) if i == 0 else {}
        history = told.partial_fit(X[lo:hi], y[lo:hi], sample_weight=w[lo:hi], comm=comm,
                                   n_threads=nt, **extra)
        record["loss"] += history.history["loss"]
        history = union.partial_fit(X[lo:hi], y_union[lo:hi], batch_size=16, optimizer="sgd",
                                    comm=comm, n_threads=nt)
        record["union loss"] += history.history["loss"]
        clf.partial_fit(X[lo:hi], y[lo:hi], sample_weight=w[lo:hi],
                        classes=LABELS if i == 0 else None, comm=comm)
        if i > 0:
            reg.partial_fit(X[lo:hi], targets[lo:hi], comm=comm)
        elif rank == 0:  # process 0 alone: the others continue its estimator
            reg.partial_fit(X[:STREAM[1]], targets[:STREAM[1]])
    record.update(epochs=told.history_.epochs, t=[told.t_, union.t_, clf.t_, reg.t_],
                  classes=[told.classes_.tolist(), union.classes_.tolist(),
                           clf.classes_.tolist()],
                  clf_loss=clf.loss_curve_, reg_loss=reg.loss_curve_,
                  n_iter=[clf.n_iter_, reg.n_iter_])
    errors = {}
    if comm is not None:
        def failure(name, call):
            try:
                call()
                errors[name] = None
            except (ValueError, TypeError) as exc:
                errors[name] = "%s: %s" % (type(exc).__name__, exc)
        lo, hi = shards[0]
        last = comm.size - 1
        failure("changed", lambda: told.partial_fit(
            X[lo:hi], y[lo:hi], sample_weight=w[lo:hi], comm=comm, n_threads=nt,
            l2=0.5 if rank == 1 else 0.05))
        failure("empty", lambda: told.partial_fit(
            X[lo:lo if rank == last else hi], y[lo:lo if rank == last else hi], comm=comm,
            n_threads=nt))
        fresh = model(seed=3)
        failure("differ", lambda: fresh.partial_fit(
            X[lo:hi], y[lo:hi], classes=LABELS, comm=comm, n_threads=nt,
            **dict(options, batch_size=8 if rank == last else 9)))
        record["fresh untouched"] = fresh._partial_fit_options is None and fresh.t_ == 0
        failure("no classes", lambda: MLPClassifier(**estimator_options).partial_fit(
            X[lo:hi], y[lo:hi], classes=None if rank == 1 else LABELS, comm=comm))
        failure("early_stopping", lambda: MLPRegressor(
            **dict(estimator_options, early_stopping=True)).partial_fit(
            X[lo:hi], targets[lo:hi], comm=comm))
    arrays = {"params": np.concatenate([told.arena_.params, union.arena_.params] +
                                       [a.ravel() for e in (clf, reg)
                                        for a in e.coefs_ + e.intercepts_]),
              "states": np.concatenate([s.ravel() for net in (told, union)
                                        for s in net.optimizer_state_] +
                                       [s.ravel() for e in (clf, reg)
                                        for s in e._optimizer_state["states"]]),
              "t": np.array(record["t"])}
    return arrays, record, errors


def save_partial_fits(out, name, result):
    arrays, record, errors = result
    np.savez(os.path.join(out, name + ".npz"), **arrays)
    with open(os.path.join(out, name + ".json"), "w") as f:
        json.dump(dict(record, errors=errors), f)


def error_of(fit, *also):
    """None when fit() succeeds, else the text of the ValueError (or of an
    exception of the classes `also`) it raised."""
    try:
        fit()
        return None
    except (ValueError,) + also as exc:
        return "%s: %s" % (type(exc).__name__, exc) if also else str(exc)


def write_record(out, rank, record):
    with open(os.path.join(out, "rank%d.json" % rank), "w") as f:
        json.dump(record, f)


def save_weightless(out, X, y, lo, hi, X_val, y_val, rank, comm, options):
    """The errors of fits whose training rows, or validation rows, weigh
    nothing on every process (errors<r>.json)."""
    record = {"train": error_of(lambda: model().fit(
        X[lo:hi], y[lo:hi], comm=comm, **dict(options, sample_weight=np.zeros(hi - lo)))),
              "validation": error_of(lambda: model().fit(
        X[lo:hi], y[lo:hi], comm=comm, validation_data=(X_val, y_val, np.zeros(len(y_val))),
        **options))}
    with open(os.path.join(out, "errors%d.json" % rank), "w") as f:
        json.dump(record, f)


def save_option_mismatch(out, X, y, lo, hi, rank, comm, nt, options):
    from fastnn.sklearn import MLPClassifier
    record = {}
    options = dict(options, epochs=2, optimizer="adam" if rank == 0 else fn.optim.Adam(),
                   l2=0.1 if rank == 2 else options["l2"])
    record["fit"] = error_of(lambda: model().fit(X[lo:hi], y[lo:hi], comm=comm, **options))
    record["estimator"] = error_of(lambda: MLPClassifier(
        hidden_layer_sizes=(4,), max_iter=2, batch_size=9, n_threads=rank + 1,
        alpha=0.1 if rank == 2 else 0.01, random_state=0).fit(X[lo:hi], y[lo:hi], comm=comm))
    for name, seed in (("seeded on 0", 0 if rank == 0 else None),
                       ("seeded on 2", 0 if rank == 2 else np.random.RandomState(rank))):
        record[name] = error_of(lambda: MLPClassifier(
            hidden_layer_sizes=(4,), max_iter=2, batch_size=9, random_state=seed).fit(
            X[lo:hi], y[lo:hi], comm=comm))
    write_record(out, rank, record)


def save_threads(out, X, y, lo, hi, rank, comm, options):
    from fastnn.sklearn import MLPClassifier
    record = {"cores": len(os.sched_getaffinity(0)), "limit": fn.get_num_threads()}
    for name, given in (("default", None), ("given", 2)):
        est = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, batch_size=9, random_state=0,
                            n_threads=given).fit(X[lo:hi], y[lo:hi], comm=comm)
        record[name] = est.n_threads_
    record["bad"] = error_of(lambda: model().fit(
        X[lo:hi], y[lo:hi], comm=comm,
        **dict(options, epochs=1, n_threads=0 if rank == comm.size - 1 else None)))
    write_record(out, rank, record)


def save_disagreements(out, X, y, lo, hi, rank, comm, options):
    import pandas as pd
    from fastnn.sklearn import MLPClassifier
    columns = ["f%d" % j for j in range(N_FEATURES)]
    frame = pd.DataFrame(X[lo:hi], columns=columns)
    if rank == 1:
        frame = frame[columns[::-1]]  # the same columns, in another order
    # y holds strings: process 1 gives their codes instead
    labels = y[lo:hi] if rank == 0 else np.unique(y, return_inverse=True)[1][lo:hi]
    fits = {
        "sequential names": lambda: model().fit(frame, y[lo:hi], comm=comm,
                                                **dict(options, epochs=1)),
        "estimator names": lambda: MLPClassifier(hidden_layer_sizes=(4,), max_iter=1,
                                                 random_state=0).fit(frame, y[lo:hi], comm=comm),
        "estimator labels": lambda: MLPClassifier(hidden_layer_sizes=(4,), max_iter=1,
                                                  random_state=0).fit(X[lo:hi], labels,
                                                                      comm=comm),
    }
    write_record(out, rank, {name: error_of(fit) for name, fit in fits.items()})


def save_continued(out, mode, X, y, lo, hi, rank, comm, options):
    import pickle
    options = dict(options, epochs=2)
    net = model(seed=11 + rank)
    net.fit(X, y, **dict(options, batch_size=5 + 3 * rank))
    if mode == "loaded":
        path = os.path.join(out, "alone.npz")
        if rank == 0:
            net.save(path)
            net = fn.load(path)
        else:
            net = model(seed=None)
    start = pickle.loads(pickle.dumps(net)) if rank == 0 else None
    save(out, "rank%d" % rank, net, net.fit(X[lo:hi], y[lo:hi], comm=comm, **options))
    if rank == 0:
        save(out, "single", start, start.fit(X, y, **options))


def save_layers(out, X, y, lo, hi, rank, comm, options):
    net = model()
    if rank == 1:
        net = fn.Sequential([fn.Dense(17, activation="tanh"), fn.Dense(3, activation="softmax")],
                            input_dim=N_FEATURES, dtype="float64", seed=11)
    before = net.arena_.params.copy()
    error = error_of(lambda: net.fit(X[lo:hi], y[lo:hi], comm=comm, **options))
    write_record(out, rank, {"error": error, "unchanged": bool(
        np.array_equal(net.arena_.params, before)) and net.epochs_trained_ == 0})


def save_settings(out, X, y, lo, hi, rank, comm, options):
    record = {}
    changes = {"sum": ("FASTNN_MPI_SUM", "allreduce", fn.EarlyStopping()),
               "loop": ("FASTNN_MPI_LOOP", "fast", fn.EarlyStopping()),
               "early_stopping": (None, None, fn.EarlyStopping(restore_best=rank != 1))}
    for name, (variable, value, early_stopping) in changes.items():
        if rank == 1 and variable is not None:
            os.environ[variable] = value
        record[name] = error_of(lambda: model().fit(X[lo:hi], y[lo:hi], comm=comm,
                                                    early_stopping=early_stopping,
                                                    **dict(options, epochs=2)))
        if variable is not None:
            os.environ.pop(variable, None)
    write_record(out, rank, record)


def save_estimators(out, name, result):
    np.savez(os.path.join(out, name + ".npz"), params=result[0], states=np.zeros(0),
             t=result[1]["t"][0])
    with open(os.path.join(out, name + ".json"), "w") as f:
        json.dump(result[1], f)


def main():
    mode, out = sys.argv[1], sys.argv[2]
    nt = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    comm = MPI.COMM_WORLD
    mode, _, derived = mode.partition("@")
    if derived:  # a communicator of the same processes made from COMM_WORLD
        comm = comm.Dup() if derived == "dup" else comm.Split(0, comm.rank)
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
    elif mode == "schedule":
        # global batches 1 and 4 of each epoch weigh nothing: they take no step, and
        # the schedule, a function of the optimizer step, skips them too
        zeroed = w.copy()
        zeroed[9:18] = zeroed[36:45] = 0.0
        options.update(sample_weight=zeroed[lo:hi], shuffle=False,
                       optimizer=fn.optim.SGD(lr=fn.schedules.StepDecay(0.2, 2, 0.8)))
        validation = None
        full_options = dict(options, sample_weight=zeroed)
    elif mode == "weightless":
        zeroed = w.copy()
        zeroed[cuts[1]:cuts[2]] = 0.0
        options.update(sample_weight=zeroed[lo:hi])
        validation = (X_val[vlo:vhi], y_val[vlo:vhi])
        full_options = dict(options, sample_weight=zeroed, validation_data=(X_val, y_val))
        save_weightless(out, X, y, lo, hi, X_val[vlo:vhi], y_val[vlo:vhi], rank, comm, options)
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
    elif mode == "preprocessing":
        warnings.simplefilter("ignore")  # max_iter reached: scikit-learn's ConvergenceWarning
        save_estimators(out, "rank%d" % rank, preprocessing(X, y, cuts, rank, comm, nt))
        if rank == 0:
            save_estimators(out, "single", preprocessing(X, y, cuts, rank, None, nt))
        return
    elif mode in ("early_stopping", "warm_start"):
        warnings.simplefilter("ignore")  # max_iter reached: scikit-learn's ConvergenceWarning
        fit = early_stopping_estimators if mode == "early_stopping" else warm_started_estimators
        save_estimators(out, "rank%d" % rank, fit(X, y, w, cuts, rank, comm, nt))
        if rank == 0:
            save_estimators(out, "single", fit(X, y, w, cuts, rank, None, nt))
        return
    elif mode == "partial_fit":
        warnings.simplefilter("ignore")  # the last chunk clips the estimators' batch_size
        save_partial_fits(out, "rank%d" % rank, partial_fits(X, y, w, rank, comm, nt))
        if rank == 0:
            save_partial_fits(out, "single", partial_fits(X, y, w, rank, None, nt))
        return
    elif mode == "balanced":
        options.update(sample_weight=w[lo:hi], class_weight="balanced")
        validation = None
        full_options = dict(options, sample_weight=w)
    elif mode == "options":
        # float32, dropout, validation_split, then a second fit that continues the first;
        # the processes other than 0 make their model with seed=None, and the same fit
        # of models all made with seed=5 is saved as seeded<r>
        def options_model(seed):
            return fn.Sequential([fn.Dense(16, activation="relu"), fn.Dropout(0.3),
                                  fn.Dense(3, activation="softmax")], input_dim=N_FEATURES,
                                 dtype="float32", seed=seed)
        seeded = options_model(5)
        save(out, "seeded%d" % rank, seeded, seeded.fit(
            X[lo:hi], y[lo:hi], batch_size=9, epochs=2, validation_split=0.2, comm=comm,
            n_threads=nt))
        net = options_model(5 if rank == 0 else None)
        first = net.fit(X[lo:hi], y[lo:hi], batch_size=9, epochs=2, validation_split=0.2,
                        comm=comm, n_threads=nt)
        save(out, "first%d" % rank, net, first)
        history = net.fit(X[lo:hi], y[lo:hi], batch_size=9, epochs=2, comm=comm, n_threads=nt)
        save(out, "rank%d" % rank, net, history)
        return
    elif mode == "callback_error":
        options.update(epochs=3)
        record = {hook: error_of(lambda: model().fit(
            X[lo:hi], y[lo:hi], comm=comm, callbacks=[RaiseAt(rank, hook)], **options),
            RuntimeError) for hook in ("on_train_begin", "on_epoch_end", "on_train_end")}
        record["weights_moved"] = error_of(lambda: model().fit(
            X[lo:hi], y[lo:hi], comm=comm, callbacks=[MoveWeightsAtEnd()] if rank == 0 else [],
            **options), RuntimeError)
        write_record(out, rank, record)
        return
    elif mode == "mismatch":
        if rank == 1:
            X = np.hstack([X, X[:, :1]])
        validation = None
    elif mode == "names":
        warnings.simplefilter("ignore")  # max_iter reached: scikit-learn's ConvergenceWarning
        save_disagreements(out, X, y, lo, hi, rank, comm, options)
        return
    elif mode in ("continued", "loaded"):
        save_continued(out, mode, X, y, lo, hi, rank, comm, options)
        return
    elif mode == "layers":
        save_layers(out, X, y, lo, hi, rank, comm, options)
        return
    elif mode == "settings":
        save_settings(out, X, y, lo, hi, rank, comm, options)
        return
    elif mode == "progress":
        options.update(epochs=2, verbose=1)
        validation = None
    elif mode == "threads":
        warnings.simplefilter("ignore")  # max_iter reached: scikit-learn's ConvergenceWarning
        save_threads(out, X, y, lo, hi, rank, comm, options)
        return
    elif mode == "option_mismatch":
        # "adam" and Adam() are the same optimizer; process 2's l2 differs, and its
        # estimator's alpha
        save_option_mismatch(out, X, y, lo, hi, rank, comm, nt, options)
        return
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
    if rank == 0 and mode in ("train", "regression", "nonfinite", "balanced", "schedule",
                              "weightless"):
        single = model(loss, dropout=dropout)
        save(out, "single", single, single.fit(X, y, **full_options))


if __name__ == "__main__":
    main()
