"""Sequential.fit: the training loop around the C kernels, and evaluate.

Design: Python validates everything once, before the model is touched, then
hands whole runs of batches to the C loop (src_c/train.inc.c) with the GIL
released. Python runs between runs only: progress bar, callbacks, history.
The epochs run through fastnn._epochs, the loop the scikit-learn estimators
share: a call into C lasts about RUN_SECONDS so the progress bar moves and
Ctrl-C is answered quickly; the parameters change only inside the C call, so
an interruption always finds them at a completed step.
"""

import time
import warnings

import numpy as np

from fastnn import ops
from fastnn import reference as ref
from fastnn import _distributed
from fastnn._backends import TrainingSetup, make_network
from fastnn._epochs import batch_rows, batch_weight_sums, run_epoch, run_stream_epoch
from fastnn._fit_data import (CLASSIFICATION_LOSSES, check_sample_weight,
                              check_weighted_rows, class_of_rows, class_weights, default_loss,
                              prepare_data, prepare_source, prepare_targets, weighted_rows)
from fastnn._threads import blas_threads, resolve_n_threads
from fastnn._validation import check_int, check_scalar
from fastnn.callbacks import EarlyStopping
from fastnn.data import ParquetSource
from fastnn.history import History
from fastnn.optim import get_optimizer
from fastnn.schedules import rates as schedule_rates

_SHUFFLE_STREAM = 1  # seeds the epoch permutations apart from initialization (0)


class NonFiniteError(FloatingPointError):
    """Training produced a NaN or infinite loss or gradient. The model keeps the
    weights of the last completed step; `history` holds the epochs so far."""

    def __init__(self, message, epoch=None, batch=None, where=None, history=None):
        super().__init__(message)
        self.epoch, self.batch, self.where, self.history = epoch, batch, where, history


def _check_options(batch_size, epochs, l2, clip_norm, clip_value, validation_split, verbose,
                   backend, on_nonfinite, callbacks, early_stopping, shuffle, drop_last):
    for name, flag in (("shuffle", shuffle), ("drop_last", drop_last)):
        if not isinstance(flag, (bool, np.bool_)):
            raise TypeError("%s must be True or False, got %r" % (name, flag))
    batch_size = None if batch_size is None else check_int(batch_size, "batch_size", low=1)
    epochs = check_int(epochs, "epochs", low=1)
    l2 = check_scalar(l2, "l2", low=0.0)
    clip_norm = 0.0 if clip_norm is None else check_scalar(clip_norm, "clip_norm", low=0.0,
                                                            low_inclusive=False)
    clip_value = 0.0 if clip_value is None else check_scalar(clip_value, "clip_value", low=0.0,
                                                             low_inclusive=False)
    validation_split = check_scalar(validation_split, "validation_split", low=0.0, high=1.0,
                                    high_inclusive=False)
    if verbose not in (0, 1, 2, False, True):
        raise ValueError("verbose must be 0, 1 or 2, got %r" % (verbose,))
    if backend not in ("fast", "reference"):
        raise ValueError("backend must be 'fast' or 'reference', got %r" % (backend,))
    if on_nonfinite not in ("raise", "warn"):
        raise ValueError("on_nonfinite must be 'raise' or 'warn', got %r" % (on_nonfinite,))
    callbacks = list(callbacks or [])
    for cb in callbacks:
        if not callable(getattr(cb, "on_epoch_end", None)):
            raise TypeError("callback %r has no on_epoch_end(epoch, logs) method" % (cb,))
    if early_stopping is not None and not isinstance(early_stopping, EarlyStopping):
        raise TypeError("early_stopping must be a fastnn.EarlyStopping, got %r"
                        % (early_stopping,))
    return batch_size, epochs, l2, clip_norm, clip_value, validation_split, int(verbose), callbacks


DEFAULT_BATCH_SIZE = 32


def fit(model, X, y, *, loss=None, optimizer=None, batch_size=None, epochs=10, shuffle=True,
        l2=0.0, clip_norm=None, clip_value=None, validation_split=0.0, validation_data=None,
        validation_rows="random", sample_weight=None, class_weight=None, early_stopping=None,
        callbacks=None, verbose=0, diagnostics=False, n_threads=None, backend="fast",
        on_nonfinite="raise", drop_last=False, comm=None, _classes=None,
        _clip_batch_size=False):
    """Sequential.fit: every option is checked here, before the model changes.
    Sequential.fit's docstring documents each of them (tests/test_model.py
    holds the two signatures and the docstring together). partial_fit passes
    _classes (the labels it is told of) and _clip_batch_size (a chunk smaller
    than the batch size is one batch)."""
    if comm is not None:
        return _fit_shards(model, X, y, comm, loss=loss, optimizer=optimizer,
                           batch_size=batch_size, epochs=epochs, shuffle=shuffle, l2=l2,
                           clip_norm=clip_norm, clip_value=clip_value,
                           validation_split=validation_split, validation_data=validation_data,
                           validation_rows=validation_rows, sample_weight=sample_weight,
                           class_weight=class_weight, early_stopping=early_stopping,
                           callbacks=callbacks, verbose=verbose, diagnostics=diagnostics,
                           n_threads=n_threads, backend=backend, on_nonfinite=on_nonfinite,
                           drop_last=drop_last, classes=_classes,
                           clip_batch_size=_clip_batch_size)
    (batch_size, epochs, l2, clip_norm, clip_value, validation_split, verbose,
     callbacks) = _check_options(batch_size, epochs, l2, clip_norm, clip_value,
                                 validation_split, verbose, backend, on_nonfinite, callbacks,
                                 early_stopping, shuffle, drop_last)
    if diagnostics and backend == "reference":
        raise ValueError("diagnostics are recorded by the C loop: fit with backend='fast' "
                         "(the reference loop does not compute them)")
    nt = resolve_n_threads(n_threads)
    if isinstance(X, ParquetSource):
        data = prepare_source(model, X, y, loss, validation_split, validation_data,
                              sample_weight, class_weight)
    else:
        if y is None:
            raise TypeError("fit needs targets y (only a fastnn.data source holds its own)")
        data = prepare_data(model, X, y, loss, validation_split, validation_data,
                            validation_rows, sample_weight, class_weight, _classes)
    check_weighted_rows(data, *weighted_rows(data))
    _check_monitors(callbacks, early_stopping, data.loss, data.X_val is not None)
    if _clip_batch_size and batch_size is not None:
        batch_size = min(batch_size, data.n_train)
    batch_size = _batch_size(batch_size, data.n_train)
    optimizer, resume = _resolve_optimizer(model, optimizer)
    rows = batch_rows(data.n_train, batch_size, drop_last)
    t0 = model.t_ if resume else 0
    # the learning rates of the steps ahead (up to a million), checked before anything
    # changes; later epochs are checked as they come
    first_epoch = _optimizer_first_epoch(model, resume, len(rows))
    _learning_rates(optimizer, t0, min(epochs * len(rows), _LR_CHECK_STEPS), len(rows),
                    model.epochs_trained_ - first_epoch)

    # everything is valid: from here on the model may change
    run = _FitRun(model, data, optimizer, resume, t0, rows, batch_size, shuffle, l2,
                  clip_norm, clip_value, diagnostics, backend, on_nonfinite, verbose, nt,
                  callbacks + ([early_stopping] if early_stopping is not None else []),
                  first_epoch=first_epoch)
    return run.train(epochs)


_LR_CHECK_STEPS = 1 << 20

# what every epoch logs, and the metrics evaluate() returns for each loss (logged with
# "val_" before them when there is validation data): the callbacks' monitors are checked
# against them before training (tests/test_callbacks.py holds them to the logs)
EPOCH_LOGS = ("loss", "time", "samples_per_sec", "lr")
METRICS = {"cross_entropy": ("loss", "accuracy"), "binary_cross_entropy": ("loss", "accuracy"),
           "poisson": ("loss", "mse", "r2"), "mse": ("loss", "mse", "r2")}


def _check_monitors(callbacks, early_stopping, loss, validation):
    """Raise ValueError before training when a callback monitors a quantity
    this fit does not log."""
    logged = set(EPOCH_LOGS) | ({"val_" + m for m in METRICS[loss]} if validation else set())
    for cb in callbacks + ([early_stopping] if early_stopping is not None else []):
        if hasattr(cb, "check_logged"):
            cb.check_logged(logged)


def _fit_shards(model, X, y, comm, *, loss, optimizer, batch_size, epochs, shuffle, l2,
                clip_norm, clip_value, validation_split, validation_data, validation_rows,
                sample_weight, class_weight, early_stopping, callbacks, verbose, diagnostics,
                n_threads, backend, on_nonfinite, drop_last, classes=None,
                clip_batch_size=False):
    """fit(..., comm=comm): this process's shard (X, y) of a data set that the
    processes of comm train one model on (fastnn._distributed). Every check
    runs on every process and a failure on one raises on all, before the
    model changes. partial_fit passes classes (the stream's labels, or None
    for the union of the shards' labels) and clip_batch_size (a global chunk
    smaller than the batch size is one batch)."""
    group = _distributed.Group(comm)

    def check_local():
        options = _check_options(batch_size, epochs, l2, clip_norm, clip_value,
                                 validation_split, verbose, backend, on_nonfinite, callbacks,
                                 early_stopping, shuffle, drop_last)
        if isinstance(X, ParquetSource) or y is None:
            raise ValueError("fit with comm takes each process's rows as arrays (X, y); a "
                             "fastnn.data source is not supported")
        if backend != "fast":
            raise ValueError("fit with comm runs the C loop only (backend='fast')")
        if diagnostics:
            raise ValueError("diagnostics are not available with comm (they need the whole "
                             "batch on one process)")
        # "adam" and Adam() are the same optimizer when the processes compare them
        named = get_optimizer(optimizer) if isinstance(optimizer, str) else optimizer
        return options, _local_labels(model, y, loss), named

    options, labels, named_optimizer = group.agree(check_local)
    (batch_size_, epochs_, l2_, clip_norm_, clip_value_, validation_split_, verbose_,
     callbacks_) = options
    # options that differ would take different steps, or a different number of them
    group.check_same_options(
        {"loss": loss, "optimizer": named_optimizer, "batch_size": batch_size_,
         "epochs": epochs_, "shuffle": shuffle, "l2": l2_, "clip_norm": clip_norm_,
         "clip_value": clip_value_, "validation_split": validation_split_,
         "class_weight": class_weight, "on_nonfinite": on_nonfinite, "drop_last": drop_last,
         "early_stopping": early_stopping},
        "fit options", "every process passes the same training options")
    if group.rank != 0:
        verbose_ = 0  # progress is reported by process 0
    # every process gathers the labels, given classes or not: the shards' classes are
    # compared below, so a process told other classes fails on every process
    shared = _shared_classes(model, group.allgather(labels), loss)
    # a model continued on process 0 keeps its classes on every process, also where
    # the process's own model is new and its shard lacks a class
    kept = group.comm.bcast(model.classes_ if group.rank == 0 else None, root=0)
    if classes is None:
        classes = kept if kept is not None and _labels_per_row(model, y, loss) else shared
    nt = group.n_threads(n_threads)

    # the balanced weights need every shard's class counts: an empty dict has the
    # shard checked as a class-weighted one, and the weights are set below
    balanced = isinstance(class_weight, str) and class_weight == "balanced"

    # process 0's seed draws every process's held-out rows, permutations and dropout
    # masks (a model made with seed=None has a different one on each process)
    seed = group.comm.bcast(int(model.seed_), root=0)

    def prepare():
        data = prepare_data(model, X, y, loss, validation_split_, validation_data,
                            validation_rows, sample_weight, {} if balanced else class_weight,
                            classes, seed=seed)
        if data.center_lambda > 0:
            raise ValueError("the center loss is not available with comm")
        _check_monitors(callbacks_, early_stopping, data.loss, data.X_val is not None)
        return data

    data = group.agree(prepare)
    signature = (data.n_features, data.loss, None if data.classes is None
                 else data.classes.tolist(), data.sw is not None, data.X_val is not None,
                 data.Y.shape[1:], str(data.X.dtype))
    signatures = group.allgather(signature)
    for rank, other in enumerate(signatures):
        if other != signatures[0]:
            raise ValueError(
                "the processes' shards disagree: process 0 has (features, loss, classes, "
                "weighted, validation, target shape, dtype) = %r, process %d has %r; every "
                "shard needs the same columns, targets, weighting and validation_data"
                % (signatures[0], rank, other))
    # a shard may weigh nothing where the others do not
    check_weighted_rows(data, *group.sum_(np.array(weighted_rows(data), dtype=np.float64)))
    # processes that made different models would exchange arenas of different sizes
    group.check_same([layer.get_config() for layer in model.layers], "layers",
                     "every process makes the same model")
    # the same columns in another order would train on mixed-up features
    group.check_same(None if data.feature_names is None else [str(n) for n in data.feature_names],
                     "feature names", "every process gives its columns in the same order")
    if balanced:
        _balance_shards(group, data, model.dtype)
    if data.val_rows is not None:
        # History lists the held-out rows among the global rows, the same everywhere
        shards = group.allgather((data.X.shape[0], data.val_rows))
        data.val_rows = np.concatenate(
            [rows + sum(n for n, _ in shards[:r]) for r, (_, rows) in enumerate(shards)])
    n_total = group.set_shard(data.n_train)
    if clip_batch_size and batch_size_ is not None:
        batch_size_ = min(batch_size_, n_total)
    batch_size_ = _batch_size(batch_size_, n_total)
    optimizer, resume = _resolve_optimizer(model, optimizer)
    group.check_same(_distributed.option_text(optimizer), "optimizers",
                     "a fit given no optimizer continues the model's previous one: give every "
                     "process the same model, or pass the optimizer", show=str)
    # process 0's model decides whether the fit continues its optimizer state, and from
    # which step and epoch: a model trained or loaded on some processes only continues
    # as process 0's does, whose weights and state every process takes (_FitRun)
    resume, t0, epochs_trained, first_epoch = group.comm.bcast(
        (resume, model.t_ if resume else 0, model.epochs_trained_,
         model.optimizer_first_epoch_) if group.rank == 0 else None, root=0)
    model.epochs_trained_, model.optimizer_first_epoch_ = epochs_trained, first_epoch
    rows = batch_rows(n_total, batch_size_, drop_last)
    first_epoch = _optimizer_first_epoch(model, resume, len(rows))
    _learning_rates(optimizer, t0, min(epochs_ * len(rows), _LR_CHECK_STEPS), len(rows),
                    model.epochs_trained_ - first_epoch)
    model.seed_ = seed
    run = _FitRun(model, data, optimizer, resume, t0, rows, batch_size_, shuffle, l2_,
                  clip_norm_, clip_value_, False, backend, on_nonfinite, verbose_, nt,
                  callbacks_ + ([early_stopping] if early_stopping is not None else []),
                  group=group, first_epoch=first_epoch)
    return run.train(epochs_)


def _balance_shards(group, data, dtype):
    """class_weight="balanced" over the processes' shards: the class counts of
    the training rows summed over the processes, weighed as class_weights
    weighs one process's rows (n / (classes present * rows of the class)),
    and multiplied into the shard's weights as prepare_data does."""
    rows_class = class_of_rows(data.Y, data.loss)
    n_classes = len(data.classes)
    training = rows_class if data.train_rows is None else rows_class[data.train_rows]
    counts = group.sum_(np.bincount(training, minlength=n_classes).astype(np.float64))
    # the global training rows' classes in class order: class_weights reads their counts
    weights = class_weights("balanced", data.classes,
                            np.repeat(np.arange(n_classes), counts.astype(np.int64)))
    data.sw = np.ascontiguousarray((data.sw * weights[rows_class]).astype(dtype))


def _labels_per_row(model, y, loss):
    """Whether y holds one class label per row for this fit's loss."""
    name = loss if isinstance(loss, str) else default_loss(model)
    return name in CLASSIFICATION_LOSSES and np.ndim(y) == 1


def _local_labels(model, y, loss):
    """The distinct class labels of this shard's y when the fit sets the
    model's classes from labels of one per row, else None."""
    if model.classes_ is not None or not _labels_per_row(model, y, loss):
        return None
    return np.unique(np.asarray(y))


def _shared_classes(model, labels, loss):
    """The classes of a fit on shards: the union of the shards' labels when it
    has as many labels as the output stands for (a shard may lack a class),
    else None (each shard's labels are then the output units' indices, or the
    shard fails as a single-process fit would)."""
    labels = [a for a in labels if a is not None]
    if not labels:
        return None
    try:
        union = np.unique(np.concatenate(labels))
    except (TypeError, ValueError):  # labels of different kinds: each shard's check says so
        return None
    name = loss if isinstance(loss, str) else default_loss(model)
    n_classes = 2 if name == "binary_cross_entropy" else model.n_outputs
    return union if len(union) == n_classes else None


# the options a stream's first partial_fit sets and its later calls keep
PARTIAL_FIT_OPTIONS = {"loss": None, "optimizer": None, "batch_size": None, "shuffle": True,
                       "l2": 0.0, "clip_norm": None, "clip_value": None, "class_weight": None,
                       "backend": "fast", "on_nonfinite": "raise"}


def partial_fit(model, X, y, *, classes=None, sample_weight=None, n_threads=None, verbose=0,
                comm=None, **options):
    """Sequential.partial_fit: one pass over one chunk. The first call takes
    the training options (PARTIAL_FIT_OPTIONS) and keeps them on the model;
    a later call may repeat them unchanged but not change them. With comm,
    the chunk is this process's shard of the global chunk: the options are
    checked on every process (a failure on one raises on all) and must be
    the same everywhere, so that every process keeps the same ones."""
    if comm is None:
        settings = _partial_fit_settings(model, options)
    else:
        group = _distributed.Group(comm)
        settings, kept = group.agree(
            lambda: (_partial_fit_settings(model, options), _kept_options(model, options)))
        group.check_same_options(kept, "partial_fit options", "every process passes the "
                                 "options of its stream's first call")
    kept = model._partial_fit_options
    history = fit(model, X, y, epochs=1, sample_weight=sample_weight, n_threads=n_threads,
                  verbose=verbose, comm=comm, _classes=classes, _clip_batch_size=True,
                  **settings)
    if kept is None:
        model._partial_fit_options = dict(settings, optimizer=model.optimizer_)
    return history


def _partial_fit_settings(model, options):
    """The options partial_fit passes to fit: the first call's, checked, or
    those kept from it (a later call may repeat them, not change them)."""
    unknown = sorted(set(options) - set(PARTIAL_FIT_OPTIONS))
    if unknown:
        raise TypeError("partial_fit got unknown options %s; its training options are %s"
                        % (", ".join(unknown), ", ".join(PARTIAL_FIT_OPTIONS)))
    kept = model._partial_fit_options
    if kept is None:
        settings = dict(PARTIAL_FIT_OPTIONS, **options)
        if isinstance(settings["class_weight"], str):
            raise ValueError("class_weight='balanced' needs every row at once; give partial_fit "
                             "a dict {label: weight}")
        return settings
    changed = [k for k, v in options.items() if not _same_option(v, kept[k])]
    if changed:
        raise ValueError("partial_fit keeps the training options of its first call; %s "
                         "differ (first call: %s)" % (", ".join(changed), ", ".join(
                             "%s=%r" % (k, kept[k]) for k in changed)))
    return dict(kept, optimizer=None)  # None continues the optimizer and its state


def _kept_options(model, options):
    """The options the model keeps after this partial_fit (the first call's,
    or those already kept), and whether this call begins the stream: what
    the processes compare."""
    kept = model._partial_fit_options
    begins = kept is None
    if begins:
        kept = dict(PARTIAL_FIT_OPTIONS, **options)
        if kept["optimizer"] is not None:  # "adam" and Adam() keep the same optimizer
            kept["optimizer"] = get_optimizer(kept["optimizer"])
    return dict(kept, stream="begins" if begins else "continued")


def _same_option(a, b):
    if hasattr(a, "get_config") and hasattr(b, "get_config"):
        return type(a) is type(b) and a.get_config() == b.get_config()
    if isinstance(a, str) and hasattr(b, "get_config"):
        return get_optimizer(a).get_config() == b.get_config()
    return a == b


def _batch_size(batch_size, n_train):
    """The batch size of a fit: the default is clipped to the training rows
    with a warning (a first try on a small data set should not fail); an
    explicit size larger than the data is an error."""
    if batch_size is None:
        if n_train < DEFAULT_BATCH_SIZE:
            warnings.warn("the default batch_size=%d is larger than the %d training samples; "
                          "using batch_size=%d (one batch per epoch)"
                          % (DEFAULT_BATCH_SIZE, n_train, n_train), UserWarning, stacklevel=4)
            return n_train
        return DEFAULT_BATCH_SIZE
    if batch_size > n_train:
        raise ValueError("batch_size=%d is larger than the %d training samples"
                         % (batch_size, n_train))
    return batch_size


def _resolve_optimizer(model, optimizer):
    """(the optimizer, whether it continues the model's previous optimizer
    state): None continues the previous optimizer (or starts Adam); an
    optimizer configured as the previous one continues its state too."""
    previous = model.optimizer_
    if optimizer is None:
        optimizer = previous if previous is not None else get_optimizer("adam")
    else:
        optimizer = get_optimizer(optimizer)
    resume = (previous is not None and model.optimizer_state_ is not None
              and optimizer.get_config() == previous.get_config())
    return optimizer, resume


class _FitRun:
    """One fit from its first epoch to its last: the engine, the history, the
    callbacks, and the two steps of every epoch (run it, end it)."""

    def __init__(self, model, data, optimizer, resume, t0, rows, batch_size, shuffle, l2,
                 clip_norm, clip_value, diagnostics, backend, on_nonfinite, verbose, nt,
                 callbacks, group=None, first_epoch=0):
        if not model.built:
            model.build(data.n_features)
        arena = model.arena_
        # with comm, a process told to continue process 0's state may have none of its own
        states = (model.optimizer_state_ if resume and model.optimizer_state_ is not None
                  else [arena.new_state() for _ in range(optimizer.n_states)])
        if group is not None:  # every process starts from process 0's weights and state
            group.broadcast(arena.params)
            for state in states:
                group.broadcast(state)
        # a batch whose sample weights are all 0 takes no step (its loss counts 0)
        self.setup = TrainingSetup(model, data.loss, optimizer, states, batch_size, l2,
                                   clip_norm, clip_value, diagnostics, data.center_lambda,
                                   data.center_alpha, weighted=data.sw is not None,
                                   skip_zero_weight=True)
        self.net = make_network(self.setup, backend, t0)
        self.history = History(validation_rows=data.val_rows)
        model._begin_fit(data.loss, data.y_1d, data.classes, optimizer, states, self.history,
                         data.feature_names, first_epoch, new_optimizer=not resume)
        self.model, self.data, self.optimizer, self.states = model, data, optimizer, states
        self.rows, self.batch_size, self.shuffle = rows, batch_size, shuffle
        self.diagnostics, self.on_nonfinite = diagnostics, on_nonfinite
        self.verbose, self.nt = verbose, nt
        self.callbacks = callbacks
        self.run_length = 1
        self.bar = None
        self.group = group

    def train(self, epochs):
        """Run up to `epochs` epochs; returns the History."""
        model, history = self.model, self.history

        def begin():
            for cb in self.callbacks:
                if hasattr(cb, "set_model"):
                    cb.set_model(model)
                if hasattr(cb, "on_train_begin"):
                    cb.on_train_begin({})

        def end():  # logs: how training stopped (None when it ran every epoch)
            for cb in self.callbacks:
                if hasattr(cb, "on_train_end"):
                    cb.on_train_end({"stopped": history.stopped})

        self._each_process(begin)
        first_epoch = model.epochs_trained_
        # with comm, every process stops at the same step: the weights are checked to
        # be the same everywhere when training ends or diverges
        same_step = False
        try:
            with blas_threads(1):  # our OpenMP threads make every BLAS call
                for _ in range(epochs):
                    logs = self.run_epoch()
                    if logs is None or self.end_epoch(logs):
                        break
            same_step = True
        except NonFiniteError:
            same_step = True
            raise
        except KeyboardInterrupt:
            _drop_partial_epoch(history, model, first_epoch)
            history.stopped = "interrupted"
            history.stop_detail = "interrupted in epoch %d" % model.epochs_trained_
            warnings.warn("training interrupted: the model holds the weights of the last "
                          "completed step (optimizer step %d)" % self.net.t, RuntimeWarning,
                          stacklevel=3)
        finally:
            model._record_progress(self.net.t, model.epochs_trained_)
            if self.bar is not None:
                self.bar.close()
            self._each_process(end)
            if self.group is not None and same_step:
                self.group.check_identical(
                    [model.arena_.params] + list(self.states) + [np.array([self.net.t])],
                    hint="; a callback that sets the weights, as EarlyStopping(restore_best="
                         "True) does, goes to every process")
        return history

    def _each_process(self, fn):
        """fn(), which runs the callbacks; with comm, an exception on one
        process raises on every process (the others would wait for it in the
        next collective call)."""
        return fn() if self.group is None else self.group.agree(fn)

    def run_epoch(self):
        """The batches of the next epoch; the epoch's logs, or None when training
        went non-finite (handled as on_nonfinite says)."""
        model, net, data = self.model, self.net, self.data
        arena, rows, n_batches = model.arena_, self.rows, len(self.rows)
        epoch = model.epochs_trained_
        rng = (np.random.default_rng([model.seed_, _SHUFFLE_STREAM, epoch]) if self.shuffle
               else None)
        lrs = _learning_rates(self.optimizer, net.t, n_batches, n_batches,
                              epoch - model.optimizer_first_epoch_)
        losses = np.zeros(n_batches, dtype=np.float64)
        self.setup.reset_diagnostics()
        snapshot = (arena.params.copy(), [s.copy() for s in self.states], net.t)
        if self.verbose == 1:
            self.bar = _progress_bar(epoch, data.n_train if self.group is None
                                     else self.group.n_total)
        started = time.perf_counter()
        if self.group is not None:
            return self._run_shard_epoch(epoch, rng, lrs, losses, snapshot, started)
        if data.source is None:
            perm = data.epoch_rows(rng.permutation(data.n_train) if rng is not None
                                   else np.arange(data.n_train))  # rows of X, never copied
            # each batch's loss weighs by its rows, or by its weight sum with sample weights
            weights = (rows if data.sw is None
                       else batch_weight_sums(data.sw, perm, self.batch_size, n_batches))
            lrs = _rates_of_batches(lrs, weights)
            outcome = run_epoch(net, arena.params, data.X, data.Y, perm, self.batch_size, lrs,
                                losses, self.nt, self.run_length,
                                after_run=self._progress(losses, weights),
                                sample_weight=data.sw)
            failed = (data.X, data.Y, perm, outcome.failed_batch)
        else:
            weights = rows
            buffers = data.source.buffers(rng, self.batch_size, model.dtype,
                                          self._source_targets)
            outcome, failed = run_stream_epoch(net, arena.params, buffers, self.batch_size,
                                               lrs, losses, self.nt, self.run_length,
                                               after_run=self._progress(losses, weights))
        # the diagnostics are means over the batches that stepped (one of weight 0 does not)
        self.batches_stepped = int(np.count_nonzero(weights))
        self.run_length = outcome.run
        if not outcome.params_finite:  # an update overflowed: back to the epoch's start
            _restore(arena, self.states, net, snapshot)
            _finish_non_finite(self.history, self.on_nonfinite, epoch, outcome.failed_batch,
                               "the weights", _OVERFLOW_ADVICE % epoch)
            return None
        if outcome.failed_batch is not None:
            X, Y, perm, local = failed
            rows_of_batch = perm[local * self.batch_size:(local + 1) * self.batch_size]
            _stop_non_finite(model, self.setup, net, self.history, X, Y, rows_of_batch, epoch,
                             outcome.failed_batch, self.on_nonfinite)
            return None
        seconds = time.perf_counter() - started
        used = rows.sum()
        logs = {"loss": float(losses @ weights / weights.sum()), "time": seconds,
                "samples_per_sec": used / seconds if seconds > 0 else float("inf"),
                "lr": _last_rate(lrs, weights)}
        if data.X_val is not None:
            scores = evaluate(model, data.X_val, data.Y_val, sample_weight=data.sw_val,
                              n_threads=self.nt, _prepared=True)
            logs.update({"val_" + k: v for k, v in scores.items()})
        return logs

    def _run_shard_epoch(self, epoch, rng, lrs, losses, snapshot, started):
        """run_epoch with comm: the epoch's global permutation drawn from the
        seed, this process's rows of each batch, the gradients summed over the
        processes (fastnn._distributed); the logs are the same everywhere."""
        model, net, data, group = self.model, self.net, self.data, self.group
        arena, rows, n_batches = model.arena_, self.rows, len(self.rows)
        perm = (rng.permutation(group.n_total) if rng is not None
                else np.arange(group.n_total))
        plan = group.plan(perm, self.batch_size, n_batches)
        x_rows = data.epoch_rows(plan.rows)  # this shard's rows of X, batch after batch
        # each batch's mean is over its global rows, or its global weight sum
        denoms = (rows if data.sw is None
                  else group.batch_weight_sums(data.sw, x_rows, plan))
        lrs = _rates_of_batches(lrs, denoms)
        after = None
        if self.bar is not None:
            bar, reported = self.bar, [0]

            def after(done):  # the global rows of the batches done since the last call
                bar.update(int(rows[reported[0]:done].sum()))
                reported[0] = done
        outcome = _distributed.run_epoch(group, net, arena, data.X, data.Y, x_rows, plan, denoms,
                                         lrs, losses, self.nt, sample_weight=data.sw,
                                         after_batch=after)
        group.check_epoch([arena.params] + list(self.states))
        if not outcome.params_finite:
            _restore(arena, self.states, net, snapshot)
            _finish_non_finite(self.history, self.on_nonfinite, epoch, outcome.failed_batch,
                               "the weights", _OVERFLOW_ADVICE % epoch)
            return None
        if outcome.failed_batch is not None:
            model._record_progress(net.t, model.epochs_trained_)
            _finish_non_finite(
                self.history, self.on_nonfinite, epoch, outcome.failed_batch,
                "the gradient summed over the %d processes (a loss or gradient of the batch's "
                "rows on one of them)" % group.size,
                "every process keeps the weights of the last completed step (optimizer step "
                "%d); try a lower learning rate or clip_norm" % net.t)
            return None
        # process 0's time is everyone's, so that every process records the same logs
        seconds = float(group.sum_(np.array([time.perf_counter() - started
                                             if group.rank == 0 else 0.0]))[0])
        used = rows.sum()
        logs = {"loss": float(losses @ denoms / denoms.sum()), "time": seconds,
                "samples_per_sec": used / seconds if seconds > 0 else float("inf"),
                "lr": _last_rate(lrs, denoms)}
        if data.X_val is not None:
            scores = _evaluate_shards(model, group, data.X_val, data.Y_val, data.sw_val,
                                      self.nt)
            logs.update({"val_" + k: v for k, v in scores.items()})
        return logs

    def _source_targets(self, y, where):
        """A chunk's target values as the C loop takes them (class labels
        encoded through the classes of the fit)."""
        data = self.data
        return prepare_targets(self.model, y, data.loss, y.shape[0], data.classes,
                               "the targets (%s)" % where)[0]

    def _progress(self, losses, weights):
        """The progress bar's update after each call into the engine, or None."""
        if self.bar is None:
            return None
        rows, bar = self.rows, self.bar

        def update(first, n):
            bar.update(int(rows[first - n:first].sum()))
            done = weights[:first].sum()
            if done > 0:
                bar.set_postfix(loss="%.4g" % (losses[:first] @ weights[:first] / done),
                                refresh=False)
        return update

    def end_epoch(self, logs):
        """Record the epoch, report it, ask the callbacks; True stops training."""
        model, history = self.model, self.history
        epoch = model.epochs_trained_
        history.record(epoch, logs)
        if self.diagnostics:
            history.record_diagnostics(_diagnostics(self.setup, self.batches_stepped))
        model._record_progress(self.net.t, epoch + 1)
        if self.bar is not None:
            self.bar.set_postfix({k: "%.4g" % v for k, v in logs.items()
                                  if k in ("loss", "val_loss", "val_accuracy", "val_r2")})
            self.bar.close()
            self.bar = None
        elif self.verbose == 2:
            print("epoch %d: " % epoch + ", ".join("%s=%.4g" % kv for kv in logs.items()))

        def ask_callbacks():
            stop = False
            for cb in self.callbacks:
                if cb.on_epoch_end(epoch, dict(logs)):
                    stop = True
                    history.stopped = ("early_stopping" if isinstance(cb, EarlyStopping)
                                       else "callback")
            return stop

        stop = self._each_process(ask_callbacks)
        if self.group is None:
            return stop
        # a callback that stops one process stops all (early stopping sees the same
        # logs everywhere and decides alike)
        votes = np.zeros(2)
        votes[0 if history.stopped == "early_stopping" else 1] = stop
        votes = self.group.sum_(votes)
        if votes.sum() > 0:
            history.stopped = "early_stopping" if votes[0] > 0 else "callback"
        return bool(votes.sum() > 0)


def _optimizer_first_epoch(model, resume, steps_per_epoch):
    """The epochs_trained_ at which the fit's optimizer took its first step:
    now for a new one; for one continued, the model's record of it, or, for
    a model saved or pickled before it kept one, the epoch its steps make at
    this fit's steps per epoch. An epoch-unit schedule counts the epochs
    since, not steps divided by the steps of an epoch, which vary between
    fits and partial_fit calls."""
    if not resume:
        return model.epochs_trained_
    first = model.optimizer_first_epoch_  # None for a model pickled or saved before it
    if first is None:
        first = max(model.epochs_trained_ - model.t_ // max(int(steps_per_epoch), 1), 0)
    return first


def _learning_rates(optimizer, first_step, n_steps, steps_per_epoch, first_epoch):
    """The schedule's rates for n_steps steps from first_step, checked; the
    epoch of the first is first_epoch (of the optimizer), and steps_per_epoch
    follow it in each epoch after."""
    lrs = np.ascontiguousarray(schedule_rates(
        optimizer.lr, np.arange(first_step, first_step + n_steps), steps_per_epoch,
        first_epoch + np.arange(n_steps) // max(int(steps_per_epoch), 1)), dtype=np.float64)
    bad = ~np.isfinite(lrs) | (lrs < 0)
    if np.any(bad):
        i = int(np.argmax(bad))
        raise ValueError("the learning-rate schedule gives a negative or non-finite rate "
                         "(%r at optimizer step %d)" % (float(lrs[i]), first_step + i))
    return lrs


def _rates_of_batches(lrs, weights):
    """Each batch's learning rate, lrs holding the rates of the epoch's next
    steps: a batch whose weights sum to 0 takes no step, so the batches after
    it take the rates of the steps they do take (the schedule is a function of
    the optimizer step, not of the batch)."""
    stepping = np.asarray(weights) != 0
    return np.ascontiguousarray(lrs[np.cumsum(stepping) - stepping])


def _last_rate(lrs, weights):
    """The rate of the epoch's last step (a batch of zero weight takes none)."""
    stepped = np.flatnonzero(np.asarray(weights) != 0)
    return float(lrs[stepped[-1]] if stepped.size else lrs[-1])


_OVERFLOW_ADVICE = ("an optimizer step overflowed the weights; the model keeps the weights "
                    "from the start of epoch %d; try a lower learning rate or clip_norm")


def _restore(arena, states, net, snapshot):
    """Put back the parameters, optimizer state and step count of a snapshot."""
    arena.params[...] = snapshot[0]
    for s, saved in zip(states, snapshot[1]):
        s[...] = saved
    net.set_t(snapshot[2])


def _drop_partial_epoch(history, model, first_epoch):
    """After an interruption, keep only the epochs recorded in full, and count
    exactly those as trained (the interruption may fall inside the record)."""
    n = min([len(history.epochs)] + [len(v) for v in history.history.values()] +
            [len(v) for layer in history.diagnostics for v in layer.values()])
    del history.epochs[n:]
    for values in history.history.values():
        del values[n:]
    for layer in history.diagnostics:
        for values in layer.values():
            del values[n:]
    model._record_progress(model.t_, first_epoch + n)


def _progress_bar(epoch, n_train):
    from tqdm.auto import tqdm
    return tqdm(total=n_train, desc="epoch %d" % epoch, unit="sample", unit_scale=True,
                leave=True, dynamic_ncols=True)


def _diagnostics(setup, n_batches):
    out = []
    for layer in setup.layers:
        stats = layer["stats"] / max(n_batches, 1)
        out.append({"act_mean": float(stats[0]), "act_var": float(stats[1]),
                    "grad_norm": float(stats[2]),
                    "dead_fraction": float(1.0 - layer["alive"].mean())})
    return out


def _locate_non_finite(model, setup, X, Y, rows, step):
    """Where a failed batch (the given rows of X) first went non-finite: a
    layer's activations, the loss, or (from the output back) a layer's
    gradients."""
    with np.errstate(all="ignore"):
        outs = ref.network_forward(setup.layers, X[rows], training=True,
                                   fused_loss=setup.loss != "mse", seed=model.seed_ % 2**64,
                                   step=step)
    for i, (A, _) in enumerate(outs):
        if not np.all(np.isfinite(A)):
            return "the activations of layer %d (%r)" % (i + 1, model.dense_layers_[i])
    for i in range(len(setup.layers) - 1, -1, -1):
        layer = setup.layers[i]
        if not (np.all(np.isfinite(layer["dW"])) and np.all(np.isfinite(layer["db"]))):
            return "the gradients of layer %d (%r)" % (i + 1, model.dense_layers_[i])
    return "the loss"


def _stop_non_finite(model, setup, net, history, X, Y, rows, epoch, batch, on_nonfinite):
    model._record_progress(net.t, model.epochs_trained_)
    where = _locate_non_finite(model, setup, X, Y, rows, net.t)
    _finish_non_finite(history, on_nonfinite, epoch, batch, where,
                       "the model keeps the weights of the last completed step (optimizer "
                       "step %d); try a lower learning rate or clip_norm" % net.t)


def _finish_non_finite(history, on_nonfinite, epoch, batch, where, advice):
    message = "training diverged in epoch %d%s: NaN or infinity first appeared in %s; %s" % (
        epoch, "" if batch is None else ", batch %d" % batch, where, advice)
    history.stopped = "non_finite"
    history.stop_detail = message
    if on_nonfinite == "raise":
        raise NonFiniteError(message, epoch, batch, where, history)
    warnings.warn(message, RuntimeWarning, stacklevel=3)


def _logits(model, X, nt, loss):
    """Outputs of the network with the output layer kept linear when the loss
    is fused with it (so the loss is computed from logits, stably)."""
    fused = loss in ("cross_entropy", "binary_cross_entropy", "poisson")
    return model._forward_layers(X, nt, linear_output=fused)


def evaluate(model, X, y, *, sample_weight=None, n_threads=None, _prepared=False):
    """Sequential.evaluate: {"loss", "accuracy"} for classification, {"loss",
    "mse", "r2"} for regression, weighted by sample_weight when given. The loss
    is the data term, without L2."""
    nt = resolve_n_threads(n_threads)
    loss = model.loss_ or default_loss(model)
    if not _prepared:
        X = model._check_X(X)
        classes = model.classes_ if loss in CLASSIFICATION_LOSSES else None
        y, _ = prepare_targets(model, y, loss, X.shape[0], classes)
        sample_weight = check_sample_weight(sample_weight, X.shape[0], model.dtype)
        if sample_weight is not None and not np.any(sample_weight > 0):
            raise ValueError("every sample has weight 0: there is nothing to evaluate")
    sw = sample_weight
    out = _logits(model, X, nt, loss)
    # row weights for the metrics, broadcast over the outputs
    w = np.ones((X.shape[0], 1)) if sw is None else sw.astype(np.float64).reshape(-1, 1)
    if loss == "cross_entropy":
        value, _ = ops.softmax_cross_entropy(out, y, sample_weight=sw, n_threads=nt)
        correct = np.argmax(out, axis=1) == y
        return {"loss": value, "accuracy": float(np.average(correct, weights=w[:, 0]))}
    if loss == "binary_cross_entropy":
        value, _ = ops.sigmoid_binary_cross_entropy(out, y, sample_weight=sw, n_threads=nt)
        correct = (out >= 0) == (y >= 0.5)
        return {"loss": value,
                "accuracy": float(np.average(correct, weights=np.broadcast_to(w, y.shape)))}
    if loss == "poisson":
        value, _ = ops.poisson_loss(out, y, sample_weight=sw, n_threads=nt)
        with np.errstate(over="ignore"):
            pred = np.exp(out.astype(np.float64))  # the predicted means
    else:
        value, _ = ops.mse(out, y, sample_weight=sw, n_threads=nt)
        pred = out.astype(np.float64)
    resid = np.sum(w * (pred - y) ** 2)
    centered = y - np.sum(w * y, axis=0) / w.sum()
    total = np.sum(w * centered ** 2)
    return {"loss": value, "mse": float(resid / (w.sum() * y.shape[1])),
            "r2": float(1 - resid / total) if total > 0 else float("nan")}


def _evaluate_shards(model, group, X, Y, sw, nt):
    """evaluate's metrics over the processes' validation shards (prepared
    arrays): each process's numerators and denominators, summed (R^2 in two
    sums, Group.squared_sums). A shard with no weight adds nothing."""
    loss = model.loss_ or default_loss(model)
    w = np.ones((X.shape[0], 1)) if sw is None else sw.astype(np.float64).reshape(-1, 1)
    wsum = float(w.sum())
    rows = X.shape[0] > 0 and wsum != 0
    if not rows:
        w = w[:0]
    out = _logits(model, X, nt, loss) if rows else None
    if loss in CLASSIFICATION_LOSSES:
        sums = np.zeros(3)  # weight, loss, correct predictions
        if rows:
            if loss == "cross_entropy":
                value, _ = ops.softmax_cross_entropy(out, Y, sample_weight=sw, n_threads=nt)
                sums[2] = float(np.sum(w[:, 0] * (np.argmax(out, axis=1) == Y)))
            else:
                value, _ = ops.sigmoid_binary_cross_entropy(out, Y, sample_weight=sw,
                                                            n_threads=nt)
                sums[2] = float(np.sum(w * ((out >= 0) == (Y >= 0.5))))
            sums[0], sums[1] = wsum, value * wsum
        sums = group.sum_(sums)
        if sums[0] == 0:
            raise ValueError("the validation shards have no weight: there is nothing to "
                             "evaluate")
        per_row = 1 if loss == "cross_entropy" else Y.shape[1]
        return {"loss": sums[1] / sums[0], "accuracy": sums[2] / (sums[0] * per_row)}
    k = Y.shape[1]
    value, pred = 0.0, np.zeros((0, k))
    if rows:
        if loss == "poisson":
            value, _ = ops.poisson_loss(out, Y, sample_weight=sw, n_threads=nt)
            with np.errstate(over="ignore"):
                pred = np.exp(out.astype(np.float64))
        else:
            value, _ = ops.mse(out, Y, sample_weight=sw, n_threads=nt)
            pred = out.astype(np.float64)
    (loss_sum,), weight, resid, centered = group.squared_sums(
        w, Y if rows else Y[:0], pred, [value * wsum])
    resid, total = resid.sum(), centered.sum()
    return {"loss": loss_sum / weight, "mse": resid / (weight * k),
            "r2": 1 - resid / total if total > 0 else float("nan")}
