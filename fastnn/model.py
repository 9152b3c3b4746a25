"""Sequential: a stack of Dense layers with optional Dropout, trained by fastnn's C loop."""

import warnings

import numpy as np

from fastnn import io, trainer
from fastnn._frames import check_feature_names, frame_to_array
from fastnn._inference import forward_in_chunks
from fastnn._threads import resolve_n_threads
from fastnn._validation import (FLOAT_DTYPE_NAMES, FLOAT_DTYPES, as_float_array,
                                check_blas_dims, check_finite, check_int)
from fastnn.activations import ACTIVATION_IDS
from fastnn.initializers import initialize_weights
from fastnn.layers import (Dense, Dropout, check_slopes, check_stack, dense_shapes,
                           layer_from_config)
from fastnn.optim import optimizer_from_config
from fastnn.params import Arena


class Sequential:
    """A feed-forward network: Dense layers, each optionally followed by Dropout.

    Parameters
    ----------
    layers : list of fastnn.Dense and fastnn.Dropout
        The first is a Dense layer; a Dropout applies to the Dense layer before
        it and may not follow the output layer.
    input_dim : int or None
        Number of input features; None builds the model at the first fit.
    dtype : "float32" or "float64"
    seed : int or None
        Seeds weight initialization, shuffling and dropout. The same seed gives
        the same model and the same training run, bitwise, on any thread count.

    Attributes
    ----------
    weights : list of (W, b) arrays, views into the flat parameter arena
    history_ : fastnn.History of the last fit
    loss_, optimizer_, optimizer_state_, t_, epochs_trained_ : the training
        state a later fit continues from (the loss, the optimizer and its state
        arrays, optimizer steps and epochs taken)
    optimizer_first_epoch_ : epochs_trained_ when optimizer_ took its first
        step (an epoch-unit schedule counts the epochs since); None for a model
        saved before it was kept, until its next fit
    y_1d_ : whether the regression targets of the last fit were 1-D
    classes_ : the class labels of a classifier (sorted; predict returns them),
        or None before the first fit and for regression
    centers_ : the class centers of a center loss, or None
    feature_names_in_ : the column names of the data frame the model was first
        fitted on (all strings), or None; predict, evaluate and later fits
        check X's names against them as scikit-learn does

    Every attribute is set here and changed only by this class's methods; the
    trainer records its progress through them.
    """

    # what a model pickled before the attribute existed has: not known
    optimizer_first_epoch_ = None

    def __init__(self, layers, input_dim=None, dtype="float32", seed=None):
        layers = check_stack(layers)
        for layer in layers:
            if isinstance(layer, Dense) and layer._arena is not None:
                raise ValueError("%r already holds the weights of another model; give each "
                                 "model its own layers" % (layer,))
        if dtype not in FLOAT_DTYPE_NAMES and np.dtype(dtype) not in FLOAT_DTYPES:
            raise ValueError("dtype must be 'float32' or 'float64', got %r" % (dtype,))
        self.layers = layers
        self.dtype = np.dtype(dtype)
        # the seeds of numpy's generators and of the model file are 64-bit
        self.seed = None if seed is None else check_int(seed, "seed", low=0, high=2**64 - 1)
        self.seed_ = self.seed if self.seed is not None else \
            int(np.random.SeedSequence().generate_state(1, np.uint64)[0] >> 1)
        self.dense_layers_ = [layer for layer in layers if isinstance(layer, Dense)]
        check_slopes(self.dense_layers_, self.dtype)
        self.dropout_after_ = []
        for i, layer in enumerate(layers):
            if isinstance(layer, Dense):
                nxt = layers[i + 1] if i + 1 < len(layers) else None
                self.dropout_after_.append(nxt.rate if isinstance(nxt, Dropout) else 0.0)
        self.arena_ = None
        self.input_dim = None
        self.history_ = None
        self.loss_ = None
        self.optimizer_ = None
        self.optimizer_state_ = None
        self.t_ = 0
        self.epochs_trained_ = 0
        self.optimizer_first_epoch_ = 0
        self.y_1d_ = True
        self.classes_ = None
        self.centers_ = None
        self.feature_names_in_ = None
        self._partial_fit_options = None  # what the first partial_fit set
        if input_dim is not None:
            self.build(input_dim)

    # ------------------------------------------------------------------ build

    def build(self, input_dim, weights=None):
        """Create the parameter arena and initialize the weights from the seed.

        weights : list of (W, b) pairs, one per Dense layer, optional
            Start from these values (copied into the arena, converted to the
            model's dtype) instead of the initializers.
        """
        input_dim = check_int(input_dim, "input_dim", low=1)
        shapes = dense_shapes(self.layers, input_dim)
        if weights is not None:
            weights = [(np.asarray(W), np.asarray(b)) for W, b in weights]
            if len(weights) != len(shapes):
                raise ValueError("weights has %d (W, b) pairs but the model has %d Dense layers"
                                 % (len(weights), len(shapes)))
            for i, ((W, b), shape) in enumerate(zip(weights, shapes)):
                if W.shape != shape or b.shape != shape[1:]:
                    raise ValueError("weights of Dense layer %d have shapes %s and %s; the "
                                     "layer needs %s and %s"
                                     % (i, W.shape, b.shape, shape, shape[1:]))
                if not (np.all(np.isfinite(W)) and np.all(np.isfinite(b))):
                    raise ValueError("weights of Dense layer %d contain NaN or infinity" % i)
        arena = Arena(shapes, self.dtype)
        if weights is None:
            rng = np.random.default_rng([self.seed_, 0])
            for i, layer in enumerate(self.dense_layers_):
                arena.W[i][...] = initialize_weights(layer.init, *shapes[i], rng, self.dtype)
        else:
            for i, (W, b) in enumerate(weights):
                arena.W[i][...] = W
                arena.b[i][...] = b
        self.arena_ = arena
        self.input_dim = input_dim
        for i, layer in enumerate(self.dense_layers_):
            layer._bind(arena, i)
        return self

    @property
    def built(self):
        return self.arena_ is not None

    @property
    def weights(self):
        """[(W, b), ...] per Dense layer: views into the parameter arena."""
        self._check_built()
        return list(zip(self.arena_.W, self.arena_.b))

    @property
    def output_activation(self):
        return self.dense_layers_[-1].activation.name

    @property
    def n_outputs(self):
        return self.dense_layers_[-1].units

    def get_params_flat(self):
        """A copy of all parameters as one flat array (weights first, then biases)."""
        self._check_built()
        return self.arena_.params.copy()

    def set_params_flat(self, flat):
        self._check_built()
        flat = np.asarray(flat)
        if flat.shape != self.arena_.params.shape:
            raise ValueError("expected %d parameters, got shape %s"
                             % (self.arena_.n_params, flat.shape))
        self.arena_.params[...] = flat

    def _check_built(self):
        if self.arena_ is None:
            raise RuntimeError("the model is not built yet: give input_dim or call fit first")

    # ------------------------------------------------------------------ training

    def fit(self, X, y=None, *, loss=None, optimizer=None, batch_size=None, epochs=10, shuffle=True,
            l2=0.0, clip_norm=None, clip_value=None, validation_split=0.0,
            validation_data=None, validation_rows="random", sample_weight=None,
            class_weight=None, early_stopping=None, callbacks=None, verbose=0,
            diagnostics=False, n_threads=None, backend="fast", on_nonfinite="raise",
            drop_last=False, comm=None):
        """Train the model with mini-batches; a later fit continues from the
        weights (and, with the same optimizer, its state) this one ends with.

        Every option is checked before the model changes; a fit that fails or
        is interrupted leaves the weights of its last completed step.

        Parameters
        ----------
        X : array-like of shape (m, n_features), or a fastnn.data source
            Inputs; converted once to the model's dtype and C order. A
            memory-mapped array (np.memmap, np.load(..., mmap_mode="r")) in
            the model's dtype and C order is read where it lies, a batch's
            rows at a time. A source (fastnn.data.parquet) holds its targets
            and is read in chunks (validation_data only; no validation_split,
            sample_weight or class_weight).
        y : array-like of shape (m,) or (m, n_outputs), default=None
            Targets (None only with a source). For cross_entropy: class
            labels (the output units' indices 0..k-1, or k distinct integers,
            booleans or strings, kept sorted in ``classes_``) or one-hot rows.
            For binary_cross_entropy: 0/1 or probabilities, or two distinct
            labels, for one output; a 0/1 matrix for several (multi-label).
            Numbers otherwise (counts >= 0 for poisson).
        loss : str or fastnn.losses.CrossEntropy, default=None
            "cross_entropy" (softmax output), "binary_cross_entropy" (sigmoid
            output), "poisson" (exp output: Poisson regression with the log
            link) or "mse"; None picks it from the output activation.
        optimizer : fastnn.optim.Optimizer or str, default=None
            An optimizer or a name ("sgd", "momentum", "nesterov", "rmsprop",
            "adam", "adamw"); None continues the previous fit's optimizer and
            its state, or starts Adam. An optimizer configured like the
            previous one also continues its state.
        batch_size : int, default=None
            Rows per mini-batch. None is 32, clipped to the training rows with
            a warning on smaller data; an explicit size larger than the
            training rows raises ValueError.
        epochs : int, default=10
            Passes over the training rows.
        shuffle : bool, default=True
            Visit the rows in a new order each epoch (drawn from the seed).
        l2 : float, default=0.0
            The L2 penalty lambda: the loss gains lambda / (2m) times the sum of
            squared weights (m the batch's rows, or its weight sum with
            weights); biases are not penalized.
        clip_norm : float, default=None
            Clip each step's gradient to this global L2 norm.
        clip_value : float, default=None
            Clip each gradient element to [-clip_value, clip_value].
        validation_split : float, default=0.0
            Fraction of (X, y) held out for validation (unused when
            validation_data is given); see validation_rows.
        validation_data : tuple, default=None
            (X_val, y_val) or (X_val, y_val, sample_weight_val) to validate on
            after every epoch.
        validation_rows : {'random', 'last'}, default='random'
            Which rows validation_split holds out: "random" draws them from
            the model's seed, stratified by class for classification (the same
            seed holds out the same rows; ``History.validation_rows`` lists
            them); "last" takes the last rows, for time-ordered data.
        sample_weight : array-like of shape (m,), default=None
            Weight of each row, >= 0: each batch's loss is its weighted mean
            (the weighted sum divided by the batch's weight sum). A batch
            whose weights are all 0 takes no step. Held-out rows keep their
            weights for the validation metrics.
        class_weight : dict or 'balanced', default=None
            Weight of each class, {label: weight} (missing classes weigh 1),
            or "balanced": n / (classes present * rows of the class) over the
            training rows. Multiplies sample_weight; training rows only.
        early_stopping : fastnn.EarlyStopping, default=None
            Stop when a monitored quantity stops improving.
        callbacks : list, default=None
            Objects with on_epoch_end(epoch, logs), called after every epoch.
        verbose : {0, 1, 2}, default=0
            0 silent, 1 a progress bar per epoch, 2 one line per epoch.
        diagnostics : bool, default=False
            Record per-layer activation mean and variance, gradient norm and
            dead-unit fraction in ``History.diagnostics`` (backend='fast' only).
        n_threads : int, default=None
            OpenMP threads; None uses fastnn.get_num_threads(), with comm at
            most this process's share of its machine's cores
            (docs/distributed.md).
        backend : {'fast', 'reference'}, default='fast'
            The C training loop, or the NumPy reference loop (for checking).
        on_nonfinite : {'raise', 'warn'}, default='raise'
            When the loss or a gradient becomes NaN or infinite: raise
            fastnn.NonFiniteError, or warn and stop; either way the model keeps
            the weights of the last completed step.
        drop_last : bool, default=False
            Skip the last, smaller batch of each epoch.
        comm : mpi4py.MPI.Intracomm, default=None
            Train one model on the processes of comm (``mpiexec -n N``), X and
            y being this process's shard of the rows (docs/distributed.md):
            batch_size is the global batch, the gradients are summed over the
            processes every step, and every process ends with the same
            weights and History. validation_data is this process's shard of
            the validation rows. Needs the ``fastnn[mpi]`` extra.

        Returns
        -------
        History
            The per-epoch records of this fit (also ``self.history_``).
        """
        return trainer.fit(
            self, X, y, loss=loss, optimizer=optimizer, batch_size=batch_size, epochs=epochs,
            shuffle=shuffle, l2=l2, clip_norm=clip_norm, clip_value=clip_value,
            validation_split=validation_split, validation_data=validation_data,
            validation_rows=validation_rows, sample_weight=sample_weight,
            class_weight=class_weight, early_stopping=early_stopping, callbacks=callbacks,
            verbose=verbose, diagnostics=diagnostics, n_threads=n_threads, backend=backend,
            on_nonfinite=on_nonfinite, drop_last=drop_last, comm=comm)

    def partial_fit(self, X, y, *, classes=None, sample_weight=None, n_threads=None,
                    verbose=0, comm=None, **options):
        """One pass over one chunk of a stream of data: call it once per chunk.

        The first call builds the model if needed and takes the training
        options; later calls keep them, with the optimizer's state, so the
        chunks train one model as the epochs of a fit would. A fit that
        starts another optimizer (not one configured as the model's) ends the
        stream: the next call is a first call again.

        Parameters
        ----------
        X : array-like of shape (m, n_features)
            The chunk's inputs.
        y : array-like of shape (m,) or (m, n_outputs)
            The chunk's targets, as for fit.
        classes : array-like, default=None
            Every class label of the stream, for a classifier, at the first
            call (a chunk rarely shows them all); later calls may repeat it.
            None takes them from the first chunk's labels, as fit does.
        sample_weight : array-like of shape (m,), default=None
            Weight of each row of the chunk, >= 0.
        n_threads : int, default=None
            OpenMP threads; None uses fastnn.get_num_threads(), with comm at
            most this process's share of its machine's cores.
        verbose : {0, 1, 2}, default=0
            As for fit.
        comm : mpi4py.MPI.Intracomm, default=None
            Train one model on the processes of comm, X and y being this
            process's shard of the global chunk (the shards in rank order),
            as fit with comm trains on its shards (docs/distributed.md): one
            pass over the global chunk in the global batches of a fit with
            comm, every process calling partial_fit once per chunk. Every
            shard needs at least one row. Every process passes the same
            options and keeps them: one that differs, or a later call that
            changes one, raises on every process. Without classes, the
            classes are the union of the first chunk's shards' labels.
        **options
            The first call's training options, as for fit: loss, optimizer,
            batch_size, shuffle, l2, clip_norm, clip_value, class_weight (a
            dict), backend, on_nonfinite. A later call may repeat them
            unchanged; changing one raises ValueError. A chunk (with comm,
            the global chunk) smaller than batch_size is one batch. They are
            not saved with the model: after load, the first partial_fit
            takes them again.

        Returns
        -------
        History
            The pass's record (one epoch).
        """
        return trainer.partial_fit(self, X, y, classes=classes, sample_weight=sample_weight,
                                   n_threads=n_threads, verbose=verbose, comm=comm, **options)

    def _begin_fit(self, loss, y_1d, classes, optimizer, states, history, feature_names=None,
                   optimizer_first_epoch=0, new_optimizer=True):
        """Record what a fit starting now trains with; the trainer calls this once
        every argument is checked and the training buffers exist.
        optimizer_first_epoch: the epochs_trained_ at which the optimizer took
        (or takes, when new_optimizer) its first step."""
        self.loss_, self.y_1d_, self.classes_ = loss, bool(y_1d), classes
        self.feature_names_in_ = feature_names
        self.optimizer_, self.optimizer_state_ = optimizer, states
        self.history_ = history
        self.optimizer_first_epoch_ = int(optimizer_first_epoch)
        if new_optimizer:
            # a new optimizer ends a stream of partial_fit calls, which would
            # otherwise continue it under their first call's options
            self._partial_fit_options = None

    def _record_progress(self, t, epochs_trained):
        """Optimizer steps and epochs completed so far (what a later fit continues from)."""
        self.t_, self.epochs_trained_ = int(t), int(epochs_trained)

    def _class_centers(self, shape):
        """The center loss's class centers, new zeros when there are none of this
        shape and the model's dtype; they persist between fits."""
        c = self.centers_
        if c is None or c.shape != tuple(shape) or c.dtype != self.dtype:
            self.centers_ = np.zeros(shape, self.dtype)
        return self.centers_

    # ------------------------------------------------------------------ inference

    def _check_X(self, X):
        self._check_built()
        X, names = frame_to_array(X)
        if self.epochs_trained_ > 0:
            check_feature_names(self.feature_names_in_, names)
        X = as_float_array(X, "X", self.dtype, ndim=2, convert_floats=True)
        if X.shape[1] != self.input_dim:
            raise ValueError("X has %d features, but the model expects %d"
                             % (X.shape[1], self.input_dim))
        check_finite(X, "X")
        check_blas_dims(*X.shape)
        return X

    def _forward(self, X, n_threads=None):
        """Network outputs (after the output activation) for validated X."""
        return self._forward_layers(X, n_threads, linear_output=False)

    def _forward_layers(self, X, n_threads, linear_output):
        """Inference in chunks; X is already validated. linear_output leaves the
        output layer without its activation (logits)."""
        last = len(self.dense_layers_) - 1
        layers = [(self.arena_.W[i], self.arena_.b[i],
                   ACTIVATION_IDS["identity" if i == last and linear_output
                                  else layer.activation.name], layer.activation.alpha)
                  for i, layer in enumerate(self.dense_layers_)]
        return forward_in_chunks(X, layers, self.dtype, resolve_n_threads(n_threads))

    def predict_proba(self, X, *, n_threads=None):
        """Outputs of the network: class probabilities for a softmax or sigmoid
        output (in the order of ``classes_``), the means for an exp output.

        Parameters
        ----------
        X : array-like of shape (m, n_features)
            Inputs.
        n_threads : int, default=None
            OpenMP threads; None uses fastnn.get_num_threads().

        Returns
        -------
        ndarray of shape (m, n_outputs)
        """
        return self._forward(self._check_X(X), n_threads)

    def predict(self, X, *, n_threads=None):
        """Predictions: class labels for classification, the network's outputs
        for regression.

        Parameters
        ----------
        X : array-like of shape (m, n_features)
            Inputs.
        n_threads : int, default=None
            OpenMP threads; None uses fastnn.get_num_threads().

        Returns
        -------
        ndarray of shape (m,) or (m, n_outputs)
            For a softmax output the label of the most probable class; for a
            sigmoid output with one unit the label of class 1 where its
            probability is >= 0.5 (else class 0), with several units a 0/1
            matrix; for regression the outputs (1-D when the targets were).
        """
        out = self.predict_proba(X, n_threads=n_threads)
        task = self._task()
        if task == "multiclass":
            index = np.argmax(out, axis=1)
            return index if self.classes_ is None else self.classes_[index]
        if task == "binary":
            labels = (out >= 0.5).astype(np.int64)
            if labels.shape[1] > 1:  # multi-label: an indicator matrix
                return labels
            return labels[:, 0] if self.classes_ is None else self.classes_[labels[:, 0]]
        return out[:, 0] if out.shape[1] == 1 and self._y_was_1d() else out

    def _task(self):
        loss = self.loss_
        if loss == "cross_entropy" or (loss is None and self.output_activation == "softmax"):
            return "multiclass"
        if loss == "binary_cross_entropy" or (loss is None and self.output_activation == "sigmoid"):
            return "binary"
        return "regression"

    def _y_was_1d(self):
        return self.y_1d_

    def evaluate(self, X, y, *, sample_weight=None, n_threads=None):
        """The loss and a metric on (X, y).

        Parameters
        ----------
        X : array-like of shape (m, n_features)
            Inputs.
        y : array-like of shape (m,) or (m, n_outputs)
            Targets, as for fit; class labels must be among ``classes_`` (a
            subset of them is fine).
        sample_weight : array-like of shape (m,), default=None
            Weight of each row, >= 0: the loss and the metrics are weighted
            means.
        n_threads : int, default=None
            OpenMP threads; None uses fastnn.get_num_threads().

        Returns
        -------
        dict
            "loss" (the data term, without L2) and "accuracy" for
            classification, "loss", "mse" and "r2" for regression.
        """
        return trainer.evaluate(self, X, y, sample_weight=sample_weight, n_threads=n_threads)

    # ------------------------------------------------------------------ persistence

    def save(self, path, include_optimizer=True):
        """Save to a .npz file, atomically (the format: fastnn.io); include_optimizer
        keeps what a later fit needs to continue exactly (optimizer, its state,
        class centers)."""
        io.write_state(self.state_dict(include_optimizer), path)

    def state_dict(self, include_optimizer=True):
        """{"config": the architecture and training state as JSON-able values,
        "arrays": name -> array (W0, b0, ..., opt_state0, ..., centers)}: what
        save writes and from_state_dict rebuilds. Arrays are the model's own,
        not copies."""
        self._check_built()
        keep_optimizer = (include_optimizer and self.optimizer_ is not None
                          and self.optimizer_state_ is not None)
        config = self.get_config()
        config.update({"seed_": int(self.seed_), "loss": self.loss_,
                       "epochs_trained": int(self.epochs_trained_), "t": int(self.t_),
                       "optimizer_first_epoch": self.optimizer_first_epoch_,
                       "y_1d": bool(self.y_1d_),
                       "optimizer": self.optimizer_.get_config() if keep_optimizer else None})
        arrays = {}
        for i, (W, b) in enumerate(self.weights):
            arrays["W%d" % i], arrays["b%d" % i] = W, b
        if keep_optimizer:
            for i, state in enumerate(self.optimizer_state_):
                arrays["opt_state%d" % i] = state
        if include_optimizer and self.centers_ is not None:
            arrays["centers"] = self.centers_
        if self.classes_ is not None:
            arrays["classes"] = self.classes_
        if self.feature_names_in_ is not None:
            arrays["feature_names"] = self.feature_names_in_
        return {"config": config, "arrays": arrays}

    @classmethod
    def from_state_dict(cls, state):
        """The model a state_dict() describes (as fastnn.io.read_state returns
        it: every field present and checked, arrays of the right shapes)."""
        config = state["config"]
        model = cls([layer_from_config(c) for c in config["layers"]], dtype=config["dtype"],
                    seed=config["seed"])
        with warnings.catch_warnings():  # the initial weights are replaced by the state's
            warnings.filterwarnings("ignore", "zero initialization", UserWarning)
            model.build(config["input_dim"])
        return model.load_state_dict(state)

    def load_state_dict(self, state):
        """Take the weights and training state of a state_dict() of a model with
        the same architecture (built, same layer shapes and dtype); returns self."""
        self._check_built()
        config, arrays = state["config"], state["arrays"]
        layers = [layer_from_config(c).get_config() for c in config["layers"]]
        if layers != [layer.get_config() for layer in self.layers] or \
                config["input_dim"] != self.input_dim or config["dtype"] != self.dtype.name:
            raise ValueError("the state describes another architecture than this model's")
        for i, (W, b) in enumerate(self.weights):
            W[...], b[...] = arrays["W%d" % i], arrays["b%d" % i]
        self.seed_ = config["seed_"]
        self.loss_, self.y_1d_ = config["loss"], config["y_1d"]
        self.epochs_trained_, self.t_ = config["epochs_trained"], config["t"]
        # the loaded optimizer and state replace a partial_fit stream's: the next
        # partial_fit call is a first call, as on a model fastnn.load made
        self._partial_fit_options = None
        # absent from files written before it was kept: unknown until a fit
        self.optimizer_first_epoch_ = config.get("optimizer_first_epoch")
        centers = arrays.get("centers")
        self.centers_ = None if centers is None else np.array(centers, dtype=self.dtype)
        classes = arrays.get("classes")
        self.classes_ = None if classes is None else np.array(classes)
        names = arrays.get("feature_names")
        self.feature_names_in_ = None if names is None else np.array(names)
        self.optimizer_ = self.optimizer_state_ = None
        if config["optimizer"] is not None:
            self.optimizer_ = optimizer_from_config(config["optimizer"])
            self.optimizer_state_ = [np.array(arrays["opt_state%d" % i], dtype=self.dtype)
                                     for i in range(self.optimizer_.n_states)]
        return self

    def __reduce__(self):
        """Pickle a built model through its state dict, so that the copy's
        layers are views into the copy's own arena (as for save and load)."""
        if not self.built:
            return super().__reduce__()
        return (_unpickle, (self.state_dict(), self._partial_fit_options, self.history_))

    def get_config(self):
        return {"layers": [layer.get_config() for layer in self.layers],
                "input_dim": self.input_dim, "dtype": self.dtype.name, "seed": self.seed}

    def summary(self):
        """A text table of the layers and their parameter counts."""
        lines = ["%-4s %-10s %-12s %-10s %s" % ("#", "layer", "output", "params", "detail")]
        i_dense = 0
        for i, layer in enumerate(self.layers):
            if isinstance(layer, Dense):
                n_in = self.arena_.shapes[i_dense][0] if self.built else None
                params = (n_in + 1) * layer.units if n_in else "?"
                lines.append("%-4d %-10s %-12s %-10s %s, init=%s" % (
                    i, "Dense", "(m, %d)" % layer.units, params, layer.activation, layer.init))
                i_dense += 1
            else:
                lines.append("%-4d %-10s %-12s %-10s rate=%g" % (i, "Dropout", "", 0, layer.rate))
        if self.built:
            lines.append("total parameters: %d (%s)" % (self.arena_.n_params, self.dtype))
        return "\n".join(lines)

    def __repr__(self):
        return "Sequential(%r, input_dim=%r, dtype=%r, seed=%r)" % (
            self.layers, self.input_dim, self.dtype.name, self.seed)


def _unpickle(state, partial_fit_options, history):
    model = Sequential.from_state_dict(state)
    model._partial_fit_options, model.history_ = partial_fit_options, history
    return model


def load(path):
    """Read a model written by Sequential.save. Raises fastnn.ModelFileError for
    anything malformed, before building anything."""
    return Sequential.from_state_dict(io.read_state(path))
