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
from fastnn._backends import TrainingSetup, make_network
from fastnn._epochs import batch_rows, run_epoch
from fastnn._kernel_args import labels as class_labels
from fastnn._threads import blas_threads, resolve_n_threads
from fastnn._validation import as_float_array, check_finite, check_int, check_scalar
from fastnn.callbacks import EarlyStopping
from fastnn.history import History
from fastnn.losses import CrossEntropy, check_loss
from fastnn.optim import get_optimizer

_SHUFFLE_STREAM = 1  # seeds the epoch permutations apart from initialization (0)


class NonFiniteError(FloatingPointError):
    """Training produced a NaN or infinite loss or gradient. The model keeps the
    weights of the last completed step; `history` holds the epochs so far."""

    def __init__(self, message, epoch=None, batch=None, where=None, history=None):
        super().__init__(message)
        self.epoch, self.batch, self.where, self.history = epoch, batch, where, history


def default_loss(model):
    return {"softmax": "cross_entropy", "sigmoid": "binary_cross_entropy",
            "exp": "poisson"}.get(model.output_activation, "mse")


def prepare_targets(model, y, loss, m, name="y"):
    """Targets as the C loop takes them: int64 labels for cross_entropy, a
    (m, n_outputs) float array otherwise."""
    k = model.n_outputs
    y_arr = np.asarray(y)
    if y_arr.dtype.kind not in "biuf":
        raise TypeError("%s has dtype %s; targets must be numeric" % (name, y_arr.dtype))
    if y_arr.shape[:1] != (m,):
        raise ValueError("X has %d samples but %s has %d" % (m, name, y_arr.shape[0] if
                                                           y_arr.ndim else 0))
    if y_arr.dtype.kind == "f" and not np.all(np.isfinite(y_arr)):
        raise ValueError("%s contains NaN or infinity" % name)
    if loss == "cross_entropy":
        if y_arr.ndim == 2:
            if y_arr.shape[1] != k or not (np.all((y_arr == 0) | (y_arr == 1))
                                            and np.all(y_arr.sum(axis=1) == 1)):
                raise ValueError("2-D %s for cross_entropy must be one-hot with %d columns"
                                 % (name, k))
            y_arr = np.argmax(y_arr, axis=1)
        if y_arr.ndim != 1:
            raise ValueError("%s for cross_entropy must be class labels of shape (m,) or "
                             "one-hot (m, %d), got shape %s" % (name, k, y_arr.shape))
        if y_arr.dtype.kind == "b":
            raise TypeError("%s holds booleans; class labels must be integers" % name)
        return class_labels(y_arr, m, k, name)
    if y_arr.dtype.kind == "b":
        y_arr = y_arr.astype(model.dtype)
    Y = as_float_array(y_arr, name, model.dtype, convert_floats=True)
    if Y.ndim == 1 and k == 1:
        Y = Y.reshape(m, 1)
    if Y.shape != (m, k):
        raise ValueError("%s must have shape (%d,) or (%d, %d) for an output layer of %d "
                         "units, got %s" % (name, m, m, k, k, Y.shape))
    if loss == "binary_cross_entropy" and (Y.min() < 0 or Y.max() > 1):
        raise ValueError("%s for binary_cross_entropy must lie in [0, 1]" % name)
    if loss == "poisson" and Y.min() < 0:
        raise ValueError("%s for poisson must be counts or rates >= 0; its smallest value is "
                         "%g" % (name, Y.min()))
    return Y


def _check_options(batch_size, epochs, l2, clip_norm, clip_value, validation_split, verbose,
                   backend, on_nonfinite, callbacks, early_stopping):
    batch_size = check_int(batch_size, "batch_size", low=1)
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


def fit(model, X, y, loss=None, optimizer=None, batch_size=32, epochs=10, shuffle=True,
        l2=0.0, clip_norm=None, clip_value=None, validation_split=0.0, validation_data=None,
        early_stopping=None, callbacks=None, verbose=0, diagnostics=False, n_threads=None,
        backend="fast", on_nonfinite="raise", drop_last=False):
    """Train `model` on (X, y) with mini-batches; returns a fastnn.History.

    Parameters
    ----------
    X : array (m, n_features); converted once to the model's dtype and C order
    y : class labels (m,) or one-hot (m, k) for cross_entropy; targets (m,) or
        (m, k) otherwise
    loss : "cross_entropy" (softmax output), "binary_cross_entropy" (sigmoid
        output), "poisson" (exp output: Poisson regression with the log link,
        y counts or rates >= 0) or "mse"; None picks by the output activation
    optimizer : fastnn.optim.Optimizer or a name ("sgd", "momentum", "nesterov",
        "rmsprop", "adam", "adamw"); None continues the model's previous
        optimizer and its state, or starts Adam. Passing an optimizer with the
        same configuration as the previous fit's also continues its state.
    batch_size, epochs, shuffle : the mini-batch walk (spec section 7); the last,
        smaller batch is used unless drop_last
    l2 : the spec's lambda: J += lambda / (2m) sum ||W||^2 (section 5)
    clip_norm, clip_value : gradient clipping by global norm / by value (section 9)
    validation_split : the last fraction of (X, y), held out (unused when
        validation_data=(X_val, y_val) is given)
    early_stopping : fastnn.EarlyStopping; callbacks : objects with on_epoch_end
    verbose : 0 silent, 1 a progress bar per epoch, 2 one line per epoch
    diagnostics : record per-layer activation mean/variance, gradient norm and
        dead-unit fraction in History.diagnostics (section 10)
    n_threads : None uses fastnn.get_num_threads()
    backend : "fast" (the C loop) or "reference" (the NumPy loop, for checking)
    on_nonfinite : "raise" a NonFiniteError, or "warn" and stop, when the loss or
        a gradient becomes NaN or infinite; either way the model keeps the
        weights of the last completed step
    """
    (batch_size, epochs, l2, clip_norm, clip_value, validation_split, verbose,
     callbacks) = _check_options(batch_size, epochs, l2, clip_norm, clip_value,
                                 validation_split, verbose, backend, on_nonfinite, callbacks,
                                 early_stopping)
    nt = resolve_n_threads(n_threads)
    data = _prepare_data(model, X, y, loss, validation_split, validation_data)
    if batch_size > data.n_train:
        raise ValueError("batch_size=%d is larger than the %d training samples"
                         % (batch_size, data.n_train))
    optimizer, resume = _resolve_optimizer(model, optimizer)
    rows = batch_rows(data.n_train, batch_size, drop_last)
    t0 = model.t_ if resume else 0
    # the learning rates of the steps ahead (up to a million), checked before anything
    # changes; later epochs are checked as they come
    _learning_rates(optimizer, t0, min(epochs * len(rows), _LR_CHECK_STEPS), len(rows))

    # everything is valid: from here on the model may change
    run = _FitRun(model, data, optimizer, resume, t0, rows, batch_size, shuffle, l2,
                  clip_norm, clip_value, diagnostics, backend, on_nonfinite, verbose, nt,
                  callbacks + ([early_stopping] if early_stopping is not None else []))
    return run.train(epochs)


_LR_CHECK_STEPS = 1 << 20


class _TrainingData:
    """The validated arrays of one fit: training rows, validation rows (or
    None), the loss name and the center loss's parameters."""

    def __init__(self, X_train, Y_train, X_val, Y_val, loss, y_1d, center_lambda,
                 center_alpha):
        self.X_train, self.Y_train, self.X_val, self.Y_val = X_train, Y_train, X_val, Y_val
        self.loss, self.y_1d = loss, y_1d
        self.center_lambda, self.center_alpha = center_lambda, center_alpha
        self.n_train = X_train.shape[0]


def _prepare_data(model, X, y, loss, validation_split, validation_data):
    """Check and convert the data once: X in the model's dtype and C order,
    the targets as the engine takes them, the validation rows held out."""
    X = as_float_array(X, "X", model.dtype, ndim=2, convert_floats=True)
    check_finite(X, "X")
    if model.built and X.shape[1] != model.input_dim:
        raise ValueError("X has %d features, but the model was built for %d"
                         % (X.shape[1], model.input_dim))
    loss = default_loss(model) if loss is None else loss
    center_lambda = center_alpha = 0.0
    if isinstance(loss, CrossEntropy):
        center_lambda, center_alpha = loss.center_loss, loss.center_alpha
        if center_lambda > 0 and len(model.dense_layers_) < 2:
            raise ValueError("the center loss acts on the features feeding the output layer: "
                             "the model needs at least two Dense layers")
        loss = loss.name
    check_loss(loss, model.output_activation)
    m = X.shape[0]
    Y = prepare_targets(model, y, loss, m)
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise ValueError("validation_data must be a pair (X_val, y_val)")
        X_val = as_float_array(validation_data[0], "X_val", model.dtype, ndim=2,
                               convert_floats=True)
        check_finite(X_val, "X_val")
        if X_val.shape[1] != X.shape[1]:
            raise ValueError("X_val has %d features but X has %d" % (X_val.shape[1], X.shape[1]))
        Y_val = prepare_targets(model, validation_data[1], loss, X_val.shape[0], "y_val")
        parts = (X, Y, X_val, Y_val)
    elif validation_split > 0:
        n_train = int(m * (1.0 - validation_split))
        if n_train < 1 or n_train >= m:
            raise ValueError("validation_split=%g of %d samples leaves %d for training and %d "
                             "for validation; both need at least one"
                             % (validation_split, m, n_train, m - n_train))
        parts = (X[:n_train], Y[:n_train], X[n_train:], Y[n_train:])
    else:
        parts = (X, Y, None, None)
    return _TrainingData(*parts, loss, np.ndim(y) == 1, center_lambda, center_alpha)


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
                 callbacks):
        if not model.built:
            model.build(data.X_train.shape[1])
        arena = model.arena_
        states = (model.optimizer_state_ if resume
                  else [arena.new_state() for _ in range(optimizer.n_states)])
        self.setup = TrainingSetup(model, data.loss, optimizer, states, batch_size, l2,
                                   clip_norm, clip_value, diagnostics, data.center_lambda,
                                   data.center_alpha)
        self.net = make_network(self.setup, backend, t0)
        self.history = History()
        model._begin_fit(data.loss, data.y_1d, optimizer, states, self.history)
        self.model, self.data, self.optimizer, self.states = model, data, optimizer, states
        self.rows, self.batch_size, self.shuffle = rows, batch_size, shuffle
        self.diagnostics, self.on_nonfinite = diagnostics, on_nonfinite
        self.verbose, self.nt = verbose, nt
        self.callbacks = callbacks
        self.run_length = 1
        self.bar = None

    def train(self, epochs):
        """Run up to `epochs` epochs; returns the History."""
        model, history = self.model, self.history
        for cb in self.callbacks:
            if hasattr(cb, "set_model"):
                cb.set_model(model)
            if hasattr(cb, "on_train_begin"):
                cb.on_train_begin({})
        first_epoch = model.epochs_trained_
        try:
            with blas_threads(1):  # our OpenMP threads make every BLAS call
                for _ in range(epochs):
                    logs = self.run_epoch()
                    if logs is None or self.end_epoch(logs):
                        break
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
            for cb in self.callbacks:
                if hasattr(cb, "on_train_end"):
                    cb.on_train_end({})
        return history

    def run_epoch(self):
        """The batches of the next epoch; the epoch's logs, or None when training
        went non-finite (handled as on_nonfinite says)."""
        model, net, data = self.model, self.net, self.data
        arena, rows, n_batches = model.arena_, self.rows, len(self.rows)
        epoch = model.epochs_trained_
        perm = (np.random.default_rng([model.seed_, _SHUFFLE_STREAM, epoch])
                .permutation(data.n_train) if self.shuffle else np.arange(data.n_train))
        perm = np.ascontiguousarray(perm, dtype=np.int64)
        lrs = _learning_rates(self.optimizer, net.t, n_batches, n_batches)
        losses = np.zeros(n_batches, dtype=np.float64)
        self.setup.reset_diagnostics()
        snapshot = (arena.params.copy(), [s.copy() for s in self.states], net.t)
        if self.verbose == 1:
            self.bar = _progress_bar(epoch, data.n_train)
        started = time.perf_counter()
        outcome = run_epoch(net, arena.params, data.X_train, data.Y_train, perm,
                            self.batch_size, lrs, losses, self.nt, self.run_length,
                            after_run=self._progress(losses))
        self.run_length = outcome.run
        if not outcome.params_finite:  # an update overflowed: back to the epoch's start
            _restore(arena, self.states, net, snapshot)
            _finish_non_finite(self.history, self.on_nonfinite, epoch, outcome.failed_batch,
                               "the weights", _OVERFLOW_ADVICE % epoch)
            return None
        if outcome.failed_batch is not None:
            _stop_non_finite(model, self.setup, net, self.history, data.X_train, data.Y_train,
                             perm, self.batch_size, epoch, outcome.failed_batch,
                             self.on_nonfinite)
            return None
        seconds = time.perf_counter() - started
        used = rows.sum()
        logs = {"loss": float(losses @ rows / used), "time": seconds,
                "samples_per_sec": used / seconds if seconds > 0 else float("inf"),
                "lr": float(lrs[-1])}
        if data.X_val is not None:
            scores = evaluate(model, data.X_val, data.Y_val, n_threads=self.nt, _prepared=True)
            logs.update({"val_" + k: v for k, v in scores.items()})
        return logs

    def _progress(self, losses):
        """The progress bar's update after each call into the engine, or None."""
        if self.bar is None:
            return None
        rows, bar = self.rows, self.bar

        def update(first, n):
            bar.update(int(rows[first - n:first].sum()))
            bar.set_postfix(loss="%.4g" % (losses[:first] @ rows[:first] / rows[:first].sum()),
                            refresh=False)
        return update

    def end_epoch(self, logs):
        """Record the epoch, report it, ask the callbacks; True stops training."""
        model, history = self.model, self.history
        epoch = model.epochs_trained_
        history.record(epoch, logs)
        if self.diagnostics:
            history.record_diagnostics(_diagnostics(self.setup, len(self.rows)))
        model._record_progress(self.net.t, epoch + 1)
        if self.bar is not None:
            self.bar.set_postfix({k: "%.4g" % v for k, v in logs.items()
                                  if k in ("loss", "val_loss", "val_accuracy", "val_r2")})
            self.bar.close()
            self.bar = None
        elif self.verbose == 2:
            print("epoch %d: " % epoch + ", ".join("%s=%.4g" % kv for kv in logs.items()))
        stop = False
        for cb in self.callbacks:
            if cb.on_epoch_end(epoch, dict(logs)):
                stop = True
                history.stopped = ("early_stopping" if isinstance(cb, EarlyStopping)
                                   else "callback")
        return stop


def _learning_rates(optimizer, first_step, n_steps, steps_per_epoch):
    """The schedule's rates for n_steps steps from first_step, checked."""
    lrs = np.ascontiguousarray(optimizer.lr(np.arange(first_step, first_step + n_steps),
                                            steps_per_epoch), dtype=np.float64)
    bad = ~np.isfinite(lrs) | (lrs < 0)
    if np.any(bad):
        i = int(np.argmax(bad))
        raise ValueError("the learning-rate schedule gives a negative or non-finite rate "
                         "(%r at optimizer step %d)" % (float(lrs[i]), first_step + i))
    return lrs


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


def _locate_non_finite(model, setup, X, Y, perm, batch_size, batch, step):
    """Where a failed batch first went non-finite: a layer's activations, the
    loss, or (from the output back) a layer's gradients."""
    rows = perm[batch * batch_size:(batch + 1) * batch_size]
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


def _stop_non_finite(model, setup, net, history, X, Y, perm, batch_size, epoch, batch,
                     on_nonfinite):
    model._record_progress(net.t, model.epochs_trained_)
    where = _locate_non_finite(model, setup, X, Y, perm, batch_size, batch, net.t)
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


def evaluate(model, X, y, n_threads=None, _prepared=False):
    """{"loss", "accuracy"} for classification, {"loss", "mse", "r2"} for
    regression. The loss is the data term, without L2."""
    nt = resolve_n_threads(n_threads)
    loss = model.loss_ or default_loss(model)
    if not _prepared:
        X = model._check_X(X)
        y = prepare_targets(model, y, loss, X.shape[0])
    out = _logits(model, X, nt, loss)
    if loss == "cross_entropy":
        value, _ = ops.softmax_cross_entropy(out, y, n_threads=nt)
        return {"loss": value, "accuracy": float(np.mean(np.argmax(out, axis=1) == y))}
    if loss == "binary_cross_entropy":
        value, _ = ops.sigmoid_binary_cross_entropy(out, y, n_threads=nt)
        return {"loss": value, "accuracy": float(np.mean((out >= 0) == (y >= 0.5)))}
    if loss == "poisson":
        value, _ = ops.poisson_loss(out, y, n_threads=nt)
        with np.errstate(over="ignore"):
            pred = np.exp(out.astype(np.float64))  # the predicted means
    else:
        value, _ = ops.mse(out, y, n_threads=nt)
        pred = out.astype(np.float64)
    resid = np.sum((pred - y) ** 2)
    total = np.sum((y - y.mean(axis=0, dtype=np.float64)) ** 2)
    return {"loss": value, "mse": float(resid / y.size),
            "r2": float(1 - resid / total) if total > 0 else float("nan")}
