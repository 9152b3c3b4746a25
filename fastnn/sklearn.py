"""scikit-learn's MLPClassifier and MLPRegressor, trained by fastnn's C loop.

    from fastnn.sklearn import MLPClassifier, MLPRegressor
    # instead of: from sklearn.neural_network import MLPClassifier, MLPRegressor

The constructor parameters (names, defaults, meaning), the fitted attributes
and the methods are those of scikit-learn's classes (1.9), and so are the
numerics: Glorot-uniform initialization of weights and biases, the L2 term
0.5 * alpha * ||W||^2 / batch size (or / the batch's sample-weight sum) on the
weights only, the losses (squared error, Poisson with the log link, log-loss),
their sample weighting and how they are reported, Adam with the bias correction folded into the step size,
momentum and Nesterov's momentum in scikit-learn's form, the 'invscaling' and
'adaptive' schedules, batch_size='auto', stopping on the training loss or on
the validation score. The estimators pass scikit-learn's estimator checks and
work in Pipeline, GridSearchCV and RandomizedSearchCV.

Design: scikit-learn's estimator runs every mini-batch step in NumPy, one
array operation at a time, from Python. Here the epoch loop stays in Python,
where scikit-learn keeps its per-epoch logic (shuffling, learning-rate
schedule, stopping, early stopping), and the mini-batches run in C with the
GIL released: rows gathered by the epoch's permutation, the fused forward
pass, loss, backward pass and one optimizer pass over the flat parameter
arena (fastnn._backends.FastNetwork, the engine of fastnn.Sequential.fit).
Every random draw is scikit-learn's, from the same RandomState in the same
order (initial weights and biases, the early-stopping split, each epoch's
shuffle), so a float64 fit follows scikit-learn's trajectory up to
floating-point rounding. solver='lbfgs' minimizes the same objective with
SciPy's L-BFGS-B, as scikit-learn does, with each loss and gradient computed
by one full-batch pass of the C loop.

Sample weights (``fit(X, y, sample_weight)``, ``partial_fit``) are
scikit-learn's: zero and negative weights are accepted, each batch's loss is
its weighted mean, the L2 term is divided by the batch's weight sum, the
early-stopping split carries the weights and the validation score is
weighted. A batch whose weights sum to zero (possible only with zero or
negative weights) has no weighted mean: the fit raises ZeroDivisionError, as
scikit-learn's does, and keeps the weights of the step before that batch.

Where the estimators differ from scikit-learn's:

- ``MLPRegressor(loss='poisson')`` refuses negative targets with a
  ValueError; scikit-learn fits them with a NaN loss.
- ``dtype`` overrides the precision; by default (None) it follows
  scikit-learn's rule: float32 input trains in float32, anything else in
  float64, L-BFGS ends with float64 weights (fastnn trains it in float64,
  where scikit-learn's steps on float32 input run in float32: the two agree
  to float32 rounding), and a continued stochastic fit (warm_start,
  partial_fit) keeps the weights' precision; float64 input is predicted in
  float64.
- The log-losses are computed exactly from the output layer's logits;
  scikit-learn clips each probability to [eps, 1 - eps] of the dtype before
  its log. The steps are the same; the reported loss (loss_curve_, and so
  stopping on tol) differs when a probability falls below eps: rarely in
  float64 (that takes a logit gap above 36), for confidently wrong samples
  in float32 (a probability below 1.2e-7).
- Sparse input is accepted; fit makes a dense copy of X (the C loop gathers
  dense rows), predict converts 4096 rows at a time.
- ``partial_fit`` is available for the stochastic solvers only, in both
  classes (scikit-learn's MLPRegressor also offers it for 'lbfgs').
- A fit whose loss, gradient or weights become NaN or infinite behaves as
  scikit-learn's: with ``early_stopping=True`` it records NaN losses and
  validation scores up to ``max_iter`` and ends with the best weights; without
  it, it raises scikit-learn's ValueError. The C loop stops at the first
  non-finite batch, so the estimator's weights are then those of the last
  finite step (or of the iteration's start when an update overflowed them),
  where scikit-learn's would be NaN.

Threads: fastnn's kernels use ``n_threads`` OpenMP threads, by default the
OpenMP limit read at each call (``OMP_NUM_THREADS``, ``fastnn.set_num_threads``,
``threadpoolctl.threadpool_limits``, joblib's per-worker limits); SciPy's BLAS
is held to one thread inside fastnn's calls. ``n_threads_`` records what the
last fit used.
"""

import warnings
from numbers import Integral, Real

import numpy as np
import scipy.optimize
import scipy.sparse

try:
    from sklearn.base import (BaseEstimator, ClassifierMixin, RegressorMixin, _fit_context,
                              is_classifier)
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import accuracy_score, r2_score
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import LabelBinarizer
    from sklearn.utils import check_random_state, column_or_1d
    from sklearn.utils._param_validation import Interval, Options, StrOptions
    from sklearn.utils.metaestimators import available_if
    from sklearn.utils.multiclass import (_check_partial_fit_first_call, type_of_target,
                                          unique_labels)
    from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("fastnn.sklearn needs scikit-learn >= 1.6: pip install 'fastnn[sklearn]'"
                      " (%s)" % exc) from exc

from fastnn import _distributed, _kernels
from fastnn._backends import TrainingSetup, make_network, zero_weight_error
from fastnn._epochs import EpochOutcome, batch_rows, batch_weight_sums, run_epoch
from fastnn._inference import forward_in_chunks
from fastnn._threads import blas_threads, resolve_n_threads
from fastnn._validation import FLOAT_DTYPE_NAMES
from fastnn.activations import ACTIVATION_IDS, DEFAULT_LEAKY_ALPHA
from fastnn.layers import Dense, Dropout
from fastnn.model import Sequential
from fastnn.optim import SGD, AdamFolded, ClassicalMomentum

__all__ = ["MLPClassifier", "MLPRegressor"]

_STOCHASTIC_SOLVERS = ("sgd", "adam")
# scikit-learn's activation names -> fastnn's; leaky_relu and softplus are fastnn extras
_HIDDEN_ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh",
                       "relu": "relu", "leaky_relu": "leaky_relu", "softplus": "softplus"}
# out_activation_ -> (fastnn output activation, fastnn loss)
_OUTPUTS = {"softmax": ("softmax", "cross_entropy"),
            "logistic": ("sigmoid", "binary_cross_entropy"),
            "identity": ("identity", "mse"),
            "exp": ("exp", "poisson")}

_NON_FINITE = ("Solver produced non-finite parameter weights. The input data may contain "
               "large values and need to be preprocessed.")


def _epochs_outcome(outcome):
    """A data-parallel epoch's outcome as fastnn._epochs reports one."""
    return EpochOutcome(outcome.failed_batch, outcome.params_finite, 1)


def _writeable(a, dtype):
    """a itself when it is a C-contiguous, writeable array of dtype (a buffer
    the C loop may update in place), else a copy that is."""
    a = np.asarray(a)
    if a.dtype == dtype and a.flags.c_contiguous and a.flags.writeable:
        return a
    return np.array(a, dtype=dtype, order="C")


def _dense(X, dtype):
    """A C-contiguous dense array of dtype (sparse input is densified)."""
    if scipy.sparse.issparse(X):
        X = X.toarray()
    return np.ascontiguousarray(X, dtype=dtype)


def _label_kind(numeric):
    """How a process's class labels are told in an error: numbers, strings,
    or none (a 2-d target)."""
    return {True: "numbers", False: "strings", None: "no class labels (a 2-d target)"}[numeric]


class _SolverState:
    """A view of a stochastic fit's optimizer state, named as scikit-learn's
    optimizers name it: t, the steps taken, and learning_rate. For 'sgd' the
    learning rate is the one the next iteration takes, and writing it sets
    that rate. For 'adam' it is the step size of the last step,
    learning_rate_init * sqrt(1 - beta_2**t) / (1 - beta_1**t), and a value
    written is shown until the next step, which sets its own, as scikit-learn's
    AdamOptimizer does."""

    def __init__(self, state):
        self._state = state

    @property
    def t(self):
        # scikit-learn's AdamOptimizer counts its steps; its SGDOptimizer has no t
        if self._state["settings"]["solver"] != "adam":
            raise AttributeError("'SGDOptimizer' object has no attribute 't'")
        return self._state["t"]

    @property
    def learning_rate(self):
        state = self._state
        if state["settings"]["solver"] != "adam":
            return state["learning_rate"]
        written = state.get("written_rate")
        if written is not None and written[0] == state["t"]:
            return written[1]
        t, (beta_1, beta_2) = state["t"], state["settings"]["betas"]
        if t == 0:
            return state["learning_rate"]
        return state["learning_rate"] * np.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)

    @learning_rate.setter
    def learning_rate(self, value):
        if self._state["settings"]["solver"] == "adam":
            self._state["written_rate"] = (self._state["t"], float(value))
        else:
            self._state["learning_rate"] = float(value)


class _BaseMLP(BaseEstimator):
    """Shared machinery of MLPClassifier and MLPRegressor (not public)."""

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(_HIDDEN_ACTIVATIONS))],
        "solver": [StrOptions({"lbfgs", "sgd", "adam"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), Options(Real, {np.inf})],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        # fastnn's own
        "dtype": [StrOptions(set(FLOAT_DTYPE_NAMES)), Options(type, {np.float32, np.float64}),
                  None],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "clip_norm": [Interval(Real, 0, None, closed="neither"), None],
        "n_threads": [Interval(Integral, 1, None, closed="left"),
                      Interval(Integral, None, -1, closed="right"), None],
    }

    # ------------------------------------------------------------------ set-up

    def _dtype_request(self):
        """The dtype argument for validate_data: fixed, or scikit-learn's rule."""
        if self.dtype is None:
            return (np.float64, np.float32)
        return np.dtype(FLOAT_DTYPE_NAMES.get(self.dtype, self.dtype)).type

    def _training_dtype(self, X, first_pass):
        """The precision a fit trains in, X validated: dtype when given; else
        float64 for L-BFGS (scikit-learn's ends with SciPy's float64
        parameters), the weights' when the fit continues them (scikit-learn
        updates them in place), and X's otherwise."""
        if self.dtype is not None:
            return np.dtype(X.dtype)
        if self.solver == "lbfgs":  # also when it continues float32 weights
            return np.dtype(np.float64)
        if not first_pass:
            return np.dtype(self.coefs_[0].dtype)
        return np.dtype(X.dtype)

    def _hidden_sizes(self):
        sizes = self.hidden_layer_sizes
        if not hasattr(sizes, "__iter__"):
            sizes = [sizes]
        sizes = list(sizes)
        # scikit-learn raises TypeError for a size that is not an integer; a float
        # would otherwise be truncated silently
        if not all(isinstance(s, Integral) and not isinstance(s, (bool, np.bool_))
                   for s in sizes):
            raise TypeError("hidden_layer_sizes must hold integers, got %r"
                            % (self.hidden_layer_sizes,))
        if np.any(np.array(sizes) <= 0):
            raise ValueError("hidden_layer_sizes must be > 0, got %s." % sizes)
        return [int(s) for s in sizes]

    def _initialize(self, y, layer_units, dtype, drawn_in=None):
        """Fitted attributes of a first fit, and scikit-learn's initial weights
        (rounded to drawn_in, then held in dtype)."""
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = y.shape[1]
        self.n_layers_ = len(layer_units)
        if not is_classifier(self):
            self.out_activation_ = "exp" if self.loss == "poisson" else "identity"
        elif self._label_binarizer.y_type_ == "multiclass":
            self.out_activation_ = "softmax"
        else:  # binary and multilabel
            self.out_activation_ = "logistic"
        self.coefs_ = []
        self.intercepts_ = []
        for i in range(self.n_layers_ - 1):
            coef, intercept = (a.astype(dtype, copy=False) for a in self._init_coef(
                layer_units[i], layer_units[i + 1], drawn_in or dtype))
            self.coefs_.append(coef)
            self.intercepts_.append(intercept)
        self._best_coefs = [c.copy() for c in self.coefs_]
        self._best_intercepts = [b.copy() for b in self.intercepts_]
        self.__dict__.pop("_optimizer_state", None)
        if self.solver in _STOCHASTIC_SOLVERS:
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.best_validation_score_ = None

    def _init_coef(self, fan_in, fan_out, dtype):
        """Glorot uniform for weights and biases, as scikit-learn draws them:
        bound sqrt(factor / (fan_in + fan_out)), factor 2 for 'logistic', 6 otherwise."""
        factor = 2.0 if self.activation == "logistic" else 6.0
        bound = np.sqrt(factor / (fan_in + fan_out))
        coef = self._random_state.uniform(-bound, bound, (fan_in, fan_out))
        intercept = self._random_state.uniform(-bound, bound, fan_out)
        return coef.astype(dtype, copy=False), intercept.astype(dtype, copy=False)

    def _check_architecture(self, layer_units):
        want = [(a, b) for a, b in zip(layer_units, layer_units[1:])]
        have = [np.shape(c) for c in self.coefs_]
        if want != have:
            raise ValueError(
                "the fitted network has weight shapes %s, but hidden_layer_sizes and the data "
                "now give %s; warm_start and partial_fit continue the same network (set "
                "warm_start=False to start a new one)" % (have, want))

    def _network(self, layer_units, dtype, seed):
        """A fastnn.Sequential holding a copy of coefs_ and intercepts_."""
        hidden = _HIDDEN_ACTIVATIONS[self.activation]
        layers = []
        for units in layer_units[1:-1]:
            layers.append(Dense(units, activation=hidden, init="glorot_uniform"))
            if self.dropout > 0:
                layers.append(Dropout(self.dropout))
        layers.append(Dense(layer_units[-1], activation=_OUTPUTS[self.out_activation_][0],
                            init="glorot_uniform"))
        model = Sequential(layers, dtype=dtype, seed=seed)
        model.build(layer_units[0], weights=zip(self.coefs_, self.intercepts_))
        return model

    def _targets(self, y, dtype):
        """y (2-D) as the C loop takes it: int64 labels for a softmax output,
        a C-contiguous float array otherwise."""
        if self.out_activation_ == "softmax":
            return np.ascontiguousarray(np.argmax(y, axis=1), dtype=np.int64)
        return np.ascontiguousarray(y, dtype=dtype)

    def _loss_divisor(self):
        """scikit-learn reports squared_loss as the mean over samples AND outputs
        (its gradient is that of the mean over samples): fastnn's mse loss is
        divided by n_outputs_ for the reported loss. The other losses are summed
        over outputs in both."""
        return self.n_outputs_ if self.out_activation_ == "identity" else 1

    # ------------------------------------------------------------------ fit

    def _fit(self, X, y, sample_weight=None, incremental=False, comm=None):
        if comm is not None:
            return self._fit_shards(X, y, sample_weight, comm, incremental)
        if self.solver == "lbfgs" and self.dropout > 0:
            raise ValueError("dropout needs a stochastic solver ('sgd' or 'adam'); L-BFGS "
                             "minimizes a deterministic objective")
        if self.solver == "lbfgs" and self.clip_norm is not None:
            raise ValueError("clip_norm needs a stochastic solver ('sgd' or 'adam'); L-BFGS "
                             "takes whole-gradient steps with its own line search")
        hidden = self._hidden_sizes()
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        # scikit-learn draws the initial weights in X's precision, also for L-BFGS
        drawn_in = np.dtype(X.dtype)
        dtype = self._training_dtype(X, first_pass)
        X = _dense(X, dtype)
        if sample_weight is not None:
            # in the training dtype: the C loop reads the weights with the rows
            sample_weight = np.ascontiguousarray(_check_sample_weight(sample_weight, X),
                                                 dtype=dtype)
        if y.ndim == 1:
            y = y.reshape((-1, 1))
        self.n_outputs_ = y.shape[1]
        layer_units = [X.shape[1]] + hidden + [self.n_outputs_]
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            self._initialize(y, layer_units, dtype, drawn_in)
        else:
            self._check_architecture(layer_units)
        nt = resolve_n_threads(self.n_threads)
        self.n_threads_ = nt
        with blas_threads(1):  # fastnn's OpenMP threads make every BLAS call
            if self.solver in _STOCHASTIC_SOLVERS:
                self._fit_stochastic(X, y, sample_weight, layer_units, incremental, dtype, nt)
            else:
                self._fit_lbfgs(X, y, sample_weight, layer_units, dtype, nt)
        self._check_finite_weights()
        return self

    def _check_finite_weights(self):
        """scikit-learn's ValueError when a fit ends with non-finite weights."""
        for w in self.coefs_ + self.intercepts_:
            if not np.all(np.isfinite(w)):
                raise ValueError(_NON_FINITE)

    def _fit_shards(self, X, y, sample_weight, comm, incremental=False, partial_classes=None):
        """fit(X, y, comm=comm): this process's shard of the rows, one model
        trained by the processes of comm (fastnn._distributed,
        docs/distributed.md). The global data set is the shards in rank
        order; with an integer random_state the fit is the one-process fit of
        it, up to float rounding. A warm start continues process 0's fitted
        estimator, whose fitted attributes every process takes.

        incremental: partial_fit(X, y, comm=comm), one iteration over the
        global chunk, continuing process 0's estimator and its optimizer
        state; partial_classes is the classifier's classes argument."""
        group = _distributed.Group(comm)

        def check_local():
            if self.solver not in _STOCHASTIC_SOLVERS:
                raise ValueError("fit with comm needs a stochastic solver ('sgd' or 'adam')")
            if incremental and self.early_stopping:
                raise ValueError("partial_fit does not support early_stopping=True")
            return (unique_labels(y) if is_classifier(self) and np.ndim(y) == 1 else None)

        labels = group.agree(check_local)
        # parameters that differ would take different steps, or a different number of them;
        # the threads and the output may differ, and a random_state that is not an integer
        # is replaced by process 0's draw below (so any two of those are the same)
        params = {k: v for k, v in self.get_params(deep=False).items()
                  if k not in ("n_threads", "verbose")}
        if not isinstance(params["random_state"], Integral):
            params["random_state"] = "None or a RandomState (process 0 draws)"
        group.check_same_options(params, "parameters", "every process makes the estimator "
                                 "with the same parameters")
        # labels of one kind merge into the classes; numbers and strings would not
        group.check_same(None if labels is None else np.asarray(labels).dtype.kind in "biuf",
                         "kinds of class labels", "every shard's labels are numbers, or every "
                         "shard's are strings", show=_label_kind)
        labels = [a for a in group.allgather(labels) if a is not None]
        classes = np.unique(np.concatenate(labels)) if labels else None
        # an integer random_state draws the same weights and orders on every process, as
        # in one process; otherwise (None, a RandomState) process 0 draws a seed for all
        fixed = isinstance(self.random_state, Integral)
        seed = group.comm.bcast(
            None if fixed or group.rank != 0
            else int(check_random_state(self.random_state).randint(2**31 - 1)), root=0)
        # process 0 decides whether the fit continues, and every process continues
        # its estimator (which may have been fitted on process 0 alone), as every
        # process starts from process 0's initial weights
        fitted = group.comm.bcast(
            self._fitted_attributes(incremental) if group.rank == 0 else None, root=0)
        if fitted is not None and group.rank != 0:
            self.__dict__.update(fitted)
        if incremental:  # the classifier's first call takes the stream's classes
            group.agree(lambda: self._begin_partial_fit(y, partial_classes))

        def prepare():
            Xc, yc = self._validate_input(X, y, incremental, reset=fitted is None,
                                          classes=classes)
            Xc = _dense(Xc, self._training_dtype(Xc, fitted is None))
            sw = sample_weight
            if sw is not None:
                sw = np.ascontiguousarray(_check_sample_weight(sw, Xc), dtype=Xc.dtype)
            return Xc, (yc.reshape((-1, 1)) if yc.ndim == 1 else yc), sw

        X, y, sample_weight = group.agree(prepare)
        signature = (X.shape[1], y.shape[1], str(X.dtype), sample_weight is not None,
                     None if not is_classifier(self) else self.classes_.tolist())
        signatures = group.allgather(signature)
        if any(other != signatures[0] for other in signatures):
            raise ValueError("the processes' shards disagree on (features, outputs, dtype, "
                             "weighted, classes): %r" % (signatures,))
        # the same columns in another order would train on mixed-up features
        names = getattr(self, "feature_names_in_", None)
        group.check_same(None if names is None else names.tolist(), "feature names",
                         "every process gives its columns in the same order")
        dtype = np.dtype(X.dtype)
        hidden = self._hidden_sizes()
        self.n_outputs_ = y.shape[1]
        layer_units = [X.shape[1]] + hidden + [self.n_outputs_]
        self._random_state = (check_random_state(self.random_state) if fixed
                              else np.random.RandomState(seed))
        if fitted is None:
            self._initialize(y, layer_units, dtype)
        else:
            group.agree(lambda: self._check_architecture(layer_units))
        nt = group.n_threads(self.n_threads)
        self.n_threads_ = nt
        with blas_threads(1):
            self._fit_stochastic(X, y, sample_weight, layer_units, incremental, dtype, nt,
                                 group=group)
        self._check_finite_weights()  # the same weights, so the same answer, everywhere
        return self

    def _fitted_attributes(self, incremental=False):
        """What a warm start or a partial_fit (incremental) continues: the
        fitted attributes (weights, classes, loss curve, counters), or None
        when this fit starts anew. The optimizer state restarts at every fit
        and continues from one partial_fit to the next; the random state is
        drawn again."""
        if not (self.warm_start or incremental) or not hasattr(self, "coefs_"):
            return None
        params = self.get_params(deep=False)
        dropped = ("_random_state", "n_threads_") + (() if incremental else ("_optimizer_state",))
        return {k: v for k, v in vars(self).items() if k not in params and k not in dropped}

    def _begin_partial_fit(self, y, classes):
        """What a partial_fit sets up before its data are checked: nothing
        here (the classifier takes its classes)."""

    def _solver_settings(self):
        """The parameters scikit-learn's optimizer takes when it is made; a later
        partial_fit continues with them, whatever set_params changed since."""
        return {"solver": self.solver, "learning_rate_init": float(self.learning_rate_init),
                "schedule": self.learning_rate, "power_t": float(self.power_t),
                "momentum": float(self.momentum), "nesterov": bool(self.nesterovs_momentum),
                "betas": (float(self.beta_1), float(self.beta_2)),
                "epsilon": float(self.epsilon)}

    @property
    def _optimizer(self):
        """The stochastic solver's state as scikit-learn exposes it: an object
        with ``t`` and ``learning_rate`` (see _SolverState). Absent before a
        stochastic fit, as in scikit-learn."""
        state = self._solver_state()
        if state is None:
            raise AttributeError("'%s' object has no attribute '_optimizer'"
                                 % type(self).__name__)
        return _SolverState(state)

    def _solver_state(self):
        """The stochastic solver's state, or None before a stochastic fit. One
        pickled before its settings were kept takes the parameters' (with the
        solver it recorded)."""
        state = self.__dict__.get("_optimizer_state")
        if state is not None and "settings" not in state:
            state["settings"] = dict(self._solver_settings(),
                                     solver=state.pop("solver", self.solver))
        return state

    def _optimizer_for(self, n_params, dtype, incremental):
        """The optimizer state (moments or velocities, step count, current
        learning rate): continued by partial_fit, new for every fit, as
        scikit-learn keeps its _optimizer."""
        state = self._solver_state()
        fresh = (not incremental or state is None
                 or any(s.size != n_params for s in state["states"]))
        if fresh:
            settings = self._solver_settings()
            state = {"settings": settings, "t": 0,
                     "learning_rate": settings["learning_rate_init"]}
        opt = _optimizer_of(state["settings"])
        state["states"] = ([np.zeros(n_params, dtype) for _ in range(opt.n_states)] if fresh
                           else [_writeable(s, dtype) for s in state["states"]])
        self._optimizer_state = state
        return opt, state

    def _fit_stochastic(self, X, y, sample_weight, layer_units, incremental, dtype, nt,
                        group=None):
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        X_train, y_train, sw_train, X_val, y_val, sw_val = self._split_validation(
            X, y, sample_weight, group)
        n_samples = X_train.shape[0]
        if group is not None:  # the global rows: every process's shard
            n_samples = group.set_shard(n_samples)
        batch_size = self._stochastic_batch_size(n_samples)
        rows = batch_rows(n_samples, batch_size)
        # dropout masks are keyed by a seed; draw it only when needed, so the
        # RandomState stream stays scikit-learn's without dropout
        seed = int(self._random_state.randint(np.iinfo(np.int32).max)) if self.dropout > 0 else 0
        model = self._network(layer_units, dtype, seed)
        arena = model.arena_
        opt, state = self._optimizer_for(arena.n_params, dtype, incremental)
        loss_name = _OUTPUTS[self.out_activation_][1]
        setup = TrainingSetup(model, loss_name, opt, state["states"], batch_size,
                              float(self.alpha), float(self.clip_norm or 0.0), 0.0, False,
                              weighted=sw_train is not None)
        net = make_network(setup, "fast", state["t"])
        state["report"] = group is None or group.rank == 0  # progress from process 0 only
        if group is not None:  # every process starts from process 0's weights
            group.broadcast(arena.params)
        # from here on coefs_ and intercepts_ are views into the arena the C loop updates
        self.coefs_, self.intercepts_ = list(arena.W), list(arena.b)
        Y_train = self._targets(y_train, dtype)
        # with k > 1 and an L2 term the reported loss needs each batch's ||W||^2
        l2_sq = np.zeros(len(rows)) if (self._loss_divisor() > 1 and self.alpha > 0) else None
        losses, lrs = np.zeros(len(rows)), np.zeros(len(rows))
        sample_idx = np.arange(n_samples, dtype=np.int64)
        run = 1  # batches per call into C (see fastnn._epochs)

        def record_l2(b):  # the penalty of batch b needs the weights it starts from
            l2_sq[b] = _kernels.sumsq(arena.params[:arena.n_weights], nt)
        try:
            self.n_iter_ = 0
            for _ in range(self.max_iter):
                if self.shuffle:  # sklearn.utils.shuffle(sample_idx, random_state=...)
                    order = np.arange(n_samples)
                    self._random_state.shuffle(order)
                    sample_idx = np.ascontiguousarray(sample_idx[order])
                lrs.fill(state["learning_rate"])
                start_params = arena.params.copy()
                if group is not None:
                    outcome, sums = self._shard_epoch(group, net, arena, X_train, Y_train,
                                                      sw_train, sample_idx, batch_size, rows,
                                                      lrs, losses, l2_sq, nt)
                else:
                    outcome = run_epoch(net, arena.params, X_train, Y_train, sample_idx,
                                        batch_size, lrs, losses, nt, run,
                                        record_l2 if l2_sq is not None else None,
                                        sample_weight=sw_train)
                    sums = (None if sw_train is None
                            else batch_weight_sums(sw_train, sample_idx, batch_size,
                                                   len(rows)))
                run = outcome.run
                state["t"] = net.t
                diverged = outcome.failed_batch is not None or not outcome.params_finite
                if diverged and not self.early_stopping:
                    self._diverged(arena, start_params, outcome)
                if diverged:  # scikit-learn goes on with NaN weights; early stopping restores
                    self._record_diverged_iterations(
                        self._diverged_epoch_loss(losses, rows, outcome), n_samples, state,
                        group)
                    break
                epoch_loss = self._epoch_loss(losses, rows, l2_sq, sums)
                if self._end_iteration(epoch_loss, n_samples, state, X_val, y_val, sw_val,
                                       incremental, group=group):
                    break
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.")
        finally:
            state["t"] = net.t
        if group is not None:
            group.check_identical([arena.params] + list(state["states"]) +
                                  [np.array([net.t])])
        if self.early_stopping:  # restore the best weights
            for W, b, best_W, best_b in zip(arena.W, arena.b, self._best_coefs,
                                            self._best_intercepts):
                W[...] = best_W
                b[...] = best_b

    def _shard_epoch(self, group, net, arena, X, Y, sw, sample_idx, batch_size, rows, lrs,
                     losses, l2_sq, nt):
        """One epoch of a fit with comm: sample_idx orders the global rows;
        each process runs its rows of every batch, the gradients summed over
        the processes. Returns (outcome, each batch's global weight sum or
        None); a batch whose weights sum to zero raises ZeroDivisionError on
        every process, as in a one-process fit."""
        plan = group.plan(sample_idx, batch_size, len(rows))
        sums = None if sw is None else group.batch_weight_sums(sw, plan.rows, plan)
        denoms = rows if sums is None else sums
        zero = np.flatnonzero(denoms == 0)
        n = len(rows) if zero.size == 0 else int(zero[0])
        l2 = np.zeros(len(rows))
        outcome = _distributed.run_epoch(group, net, arena, X, Y, plan.rows, plan, denoms[:n],
                                         lrs[:n], losses[:n], nt, sample_weight=sw,
                                         l2_losses=l2[:n])
        group.check_epoch([arena.params])
        if n < len(rows) and outcome.failed_batch is None:
            raise zero_weight_error(n)
        if l2_sq is not None:  # ||W||^2 before each step, from its L2 term
            l2_sq[:] = l2 * 2.0 * denoms / self.alpha
        return _epochs_outcome(outcome), sums

    def _split_validation(self, X, y, sample_weight, group=None):
        """(X_train, y_train, sw_train, X_val, y_val, sw_val): scikit-learn's
        held-out split for early stopping (stratified for single-output
        classification; the sample weights split with their rows), or all rows
        for training and no validation.

        With comm (group), every process splits its own shard as one process
        would split it alone, from the same random state (the one every
        process holds), then every process continues from process 0's random
        state; the validation set is the union of the held-out rows."""
        if not self.early_stopping:
            return X, y, sample_weight, None, None, None
        # don't stratify in multilabel classification
        should_stratify = is_classifier(self) and self.n_outputs_ == 1
        stratify = y if should_stratify else None
        arrays = (X, y) if sample_weight is None else (X, y, sample_weight)

        def split():
            return train_test_split(*arrays, random_state=self._random_state,
                                    test_size=self.validation_fraction, stratify=stratify)
        if group is None:
            parts = split()
            n_val = parts[1].shape[0]
        else:
            parts = group.agree(split)  # a shard too small to split fails on every process
            # the shards' sizes draw different amounts: process 0's stream goes on
            self._random_state.set_state(group.comm.bcast(
                self._random_state.get_state() if group.rank == 0 else None, root=0))
            n_val = int(group.sum_(np.array([float(parts[1].shape[0])]))[0])
        X_train, X_val, y_train, y_val = parts[:4]
        sw_train, sw_val = (None, None) if sample_weight is None else parts[4:]
        if n_val < 2:
            raise ValueError("The validation set is too small. Increase "
                             "'validation_fraction' or the size of your dataset.")
        if is_classifier(self):
            y_val = self._label_binarizer.inverse_transform(y_val)
        if sw_train is not None:
            sw_train = np.ascontiguousarray(sw_train)
        return np.ascontiguousarray(X_train), y_train, sw_train, X_val, y_val, sw_val

    def _stochastic_batch_size(self, n_samples):
        """scikit-learn's batch size: 'auto' is min(200, n), others are clipped to [1, n]."""
        if self.batch_size == "auto":
            return min(200, n_samples)
        if self.batch_size > n_samples:
            warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is "
                          "going to be clipped")
        return int(np.clip(self.batch_size, 1, n_samples))

    def _epoch_loss(self, losses, rows, l2_sq, weight_sums=None):
        """The iteration's summed loss as scikit-learn accumulates it: batch
        losses weighted by their rows, the data term divided by the loss
        divisor, the L2 term (from each batch's ||W||^2 when needed) not.
        weight_sums: each batch's sample-weight sum (the L2 term's divisor),
        None when it is the batch's rows."""
        k = self._loss_divisor()
        if l2_sq is None:
            return float(losses @ rows) / k
        # rows * (alpha / (2 * the batch's divisor)) ||W||^2
        penalty = 0.5 * self.alpha * l2_sq
        if weight_sums is not None:
            penalty = penalty * rows / weight_sums
        return (float(losses @ rows) - penalty.sum()) / k + penalty.sum()

    @staticmethod
    def _diverged_epoch_loss(losses, rows, outcome):
        """The summed loss scikit-learn records for the iteration that went
        non-finite: the batches before, the failing batch's own loss, and NaN
        when batches followed it (they ran on non-finite weights there)."""
        b = outcome.failed_batch
        if b is None:  # the weights overflowed without a non-finite loss
            return float("nan")
        total = float(losses[:b + 1] @ rows[:b + 1])
        return total if b == len(rows) - 1 else float("nan")

    def _record_diverged_iterations(self, accumulated, n_samples, state, group=None):
        """With early stopping, a diverged fit goes on as scikit-learn's does:
        every remaining iteration records a NaN loss and a NaN validation score
        (a NaN never counts as no improvement, so only max_iter ends it), and
        the best weights are restored at the end. The weights would stay NaN,
        so no batch needs to run."""
        while True:
            stop = self._end_iteration(accumulated, n_samples, state, None, None, None, False,
                                       diverged=True, group=group)
            accumulated = float("nan")
            if stop or self.n_iter_ >= self.max_iter:
                return

    def _end_iteration(self, accumulated, n_samples, state, X_val, y_val, sw_val, incremental,
                       diverged=False, group=None):
        """Record an iteration as scikit-learn does (loss curve, validation
        score, learning-rate update, convergence check); True stops training.
        diverged: the weights are non-finite, so is the validation score.
        group: with comm, the validation rows are this process's shard of them."""
        self.n_iter_ += 1
        self.loss_ = accumulated / n_samples
        self.t_ += n_samples
        self.loss_curve_.append(self.loss_)
        if self.verbose and state.get("report", True):
            print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))
        self._update_no_improvement_count(self.early_stopping, X_val, y_val, sw_val, diverged,
                                          group)
        # the learning rate that changes at the end of an iteration
        settings = state["settings"]
        if settings["solver"] == "sgd" and settings["schedule"] == "invscaling":
            state["learning_rate"] = (settings["learning_rate_init"]
                                      / (self.t_ + 1) ** settings["power_t"])
        if self._no_improvement_count > self.n_iter_no_change:
            msg = ("%s did not improve more than tol=%f for %d consecutive epochs."
                   % ("Validation score" if self.early_stopping else "Training loss",
                      self.tol, self.n_iter_no_change))
            if self._trigger_stopping(msg, state):
                return True
            self._no_improvement_count = 0
        if incremental:
            return True
        if self.n_iter_ == self.max_iter:
            warnings.warn("Stochastic Optimizer: Maximum iterations (%d) reached and "
                          "the optimization hasn't converged yet." % self.max_iter,
                          ConvergenceWarning)
        return False

    def _diverged(self, arena, start_params, outcome):
        """Raise scikit-learn's ValueError for non-finite weights, keeping
        finite ones: those of the last finite step, or, when an update
        overflowed the weights, those of the start of the iteration (the
        optimizer state then no longer matches them and is dropped)."""
        failed = outcome.failed_batch
        where = "" if failed is None else ", batch %d," % failed
        if outcome.params_finite:
            kept = "the weights of the last finite step"
        else:
            arena.params[...] = start_params
            self.__dict__.pop("_optimizer_state", None)
            kept = "the weights from the start of that iteration"
        raise ValueError(_NON_FINITE + " In iteration %d%s the loss, a gradient or the "
                         "weights became NaN or infinite; the estimator keeps %s. "
                         "Standardize the inputs or lower learning_rate_init."
                         % (self.n_iter_ + 1, where, kept))

    def _trigger_stopping(self, msg, state):
        """scikit-learn's optimizers: 'adaptive' SGD divides the learning rate
        by 5 (until it is <= 1e-6), everything else stops."""
        settings = state["settings"]
        if settings["solver"] != "sgd" or settings["schedule"] != "adaptive":
            if self.verbose and state.get("report", True):
                print(msg + " Stopping.")
            return True
        if state["learning_rate"] <= 1e-6:
            if self.verbose and state.get("report", True):
                print(msg + " Learning rate too small. Stopping.")
            return True
        state["learning_rate"] /= 5.0
        if self.verbose and state.get("report", True):
            print(msg + " Setting learning rate to %f" % state["learning_rate"])
        return False

    def _update_no_improvement_count(self, early_stopping, X_val, y_val, sw_val=None,
                                     diverged=False, group=None):
        if early_stopping:
            # the validation score (can be NaN) decides; with comm, over every shard, so
            # every process decides alike
            if diverged:
                val_score = float("nan")
            elif group is None:
                val_score = self._score(X_val, y_val, sw_val)
            else:
                val_score = self._score_shards(group, X_val, y_val, sw_val)
            self.validation_scores_.append(val_score)
            if self.verbose and (group is None or group.rank == 0):
                print("Validation score: %f" % self.validation_scores_[-1])
            last_valid_score = self.validation_scores_[-1]
            if last_valid_score < (self.best_validation_score_ + self.tol):
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if last_valid_score > self.best_validation_score_:
                self.best_validation_score_ = last_valid_score
                self._best_coefs = [c.copy() for c in self.coefs_]
                self._best_intercepts = [b.copy() for b in self.intercepts_]
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    def _fit_lbfgs(self, X, y, sample_weight, layer_units, dtype, nt):
        """scikit-learn's L-BFGS-B set-up on the objective of _FullBatchObjective."""
        objective = _FullBatchObjective(self, X, y, sample_weight, dtype, nt)
        arena = objective.arena
        iprint = 1 if (self.verbose is True or self.verbose >= 1) else -1
        options = {"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol}
        if tuple(int(p) for p in scipy.__version__.split(".")[:2]) < (1, 15):
            options["iprint"] = iprint
        result = scipy.optimize.minimize(objective, arena.params.astype(np.float64),
                                         method="L-BFGS-B", jac=True, options=options)
        self.n_iter_ = _lbfgs_iterations(result, self.max_iter)
        self.loss_ = float(result.fun)
        arena.params[...] = result.x
        self.coefs_, self.intercepts_ = list(arena.W), list(arena.b)

    def _loss_grad_lbfgs(self, packed_coef_inter, X, y, sample_weight, activations, deltas,
                         coef_grads, intercept_grads):
        """The objective L-BFGS minimizes, and its gradient, at the packed
        parameters (every coefficient, then every intercept, as scikit-learn
        packs them): (loss, gradient as a flat float64 array).

        As in scikit-learn, the estimator's coefs_ and intercepts_ are set to
        the packed parameters, and coef_grads and intercept_grads (lists with
        an entry per layer) receive the gradient's parts. y is the encoded
        target (the label-binarized matrix for a classifier), sample_weight an
        array or None. activations and deltas are scikit-learn's scratch lists;
        fastnn's kernels keep their own buffers and do not write them.
        """
        X = _dense(X, np.dtype(self.coefs_[0].dtype))
        y = np.asarray(y)
        if y.ndim == 1:
            y = y.reshape((-1, 1))
        if sample_weight is not None:
            sample_weight = np.ascontiguousarray(sample_weight, dtype=X.dtype)
        with blas_threads(1):
            objective = _FullBatchObjective(self, X, y, sample_weight, X.dtype,
                                            resolve_n_threads(self.n_threads))
            loss, grad = objective(packed_coef_inter)
        arena = objective.arena
        self.coefs_ = [W.copy() for W in arena.W]
        self.intercepts_ = [b.copy() for b in arena.b]
        coef_grads[:] = [dW.copy() for dW in arena.dW]
        intercept_grads[:] = [db.copy() for db in arena.db]
        return loss, grad

    # ------------------------------------------------------------------ predict

    def _forward(self, X):
        """Outputs of the network for validated X, dense or sparse, in chunks: in
        the weights' precision; with dtype=None in float64 for float64 X (NumPy's
        product of float64 X and float32 weights, as scikit-learn computes it)."""
        dtype = np.dtype(self.coefs_[0].dtype)
        if dtype not in (np.float32, np.float64) or (self.dtype is None
                                                      and X.dtype == np.float64):
            dtype = np.dtype(np.float64)
        hidden = ACTIVATION_IDS[_HIDDEN_ACTIVATIONS[self.activation]]
        last = len(self.coefs_) - 1
        layers = [(np.ascontiguousarray(W, dtype=dtype), np.ascontiguousarray(b, dtype=dtype),
                   ACTIVATION_IDS[_OUTPUTS[self.out_activation_][0]] if i == last else hidden,
                   DEFAULT_LEAKY_ALPHA)
                  for i, (W, b) in enumerate(zip(self.coefs_, self.intercepts_))]
        return forward_in_chunks(X, layers, dtype, resolve_n_threads(self.n_threads),
                                 rows=lambda lo, hi: _dense(X[lo:hi], dtype))

    def _forward_pass_fast(self, X, check_input=True):
        if check_input:
            X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False,
                              dtype=(np.float64, np.float32))
        return self._forward(X)

    def _score_with_function(self, X, y, sample_weight, score_function):
        """Score without input validation (which would drop feature names)."""
        y_pred = self._predict(X, check_input=False)
        if np.issubdtype(y_pred.dtype, np.floating) and not np.isfinite(y_pred).all():
            return np.nan
        return score_function(y, y_pred, sample_weight=sample_weight)

    def _check_solver(self):
        if self.solver not in _STOCHASTIC_SOLVERS:
            raise AttributeError("partial_fit is only available for stochastic optimizers. "
                                 "%s is not stochastic." % self.solver)
        return True

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


class _FullBatchObjective:
    """scikit-learn's L-BFGS objective of an estimator on (X, y): called with
    packed float64 parameters, it returns (loss, gradient), each pair one
    full-batch pass of the C loop with a zero learning rate (the pass leaves
    the parameters unchanged and the gradient in the arena). The loss is the
    sample-weighted mean when weights are given, and the L2 term
    0.5 * alpha * ||W||^2 is divided by the rows, or by the weights' sum."""

    def __init__(self, est, X, y, sample_weight, dtype, nt):
        m = X.shape[0]
        layer_units = [X.shape[1]] + [c.shape[1] for c in est.coefs_]
        model = est._network(layer_units, dtype, seed=0)
        self.arena = model.arena_
        setup = TrainingSetup(model, _OUTPUTS[est.out_activation_][1], SGD(lr=0.0), [], m,
                              float(est.alpha), 0.0, 0.0, False,
                              weighted=sample_weight is not None)
        self._net = make_network(setup, "fast", 0)
        self._X, self._Y, self._sw = X, est._targets(y, dtype), sample_weight
        self._perm = np.arange(m, dtype=np.int64)
        self._lrs, self._out = np.zeros(1), np.zeros(1)
        self._k, self._alpha, self._nt = est._loss_divisor(), float(est.alpha), nt
        self._l2_divisor = (m if sample_weight is None
                            else float(np.sum(sample_weight, dtype=np.float64)))

    def __call__(self, packed):
        arena = self.arena
        arena.params[...] = packed
        bad, _ = self._net.train_batches(self._X, self._Y, self._perm, self._X.shape[0], 0, 1,
                                         self._lrs, self._out, self._nt, self._sw)
        if bad:  # as NumPy would give them: L-BFGS-B then stops abnormally
            return np.nan, np.full(packed.shape, np.nan)
        loss = float(self._out[0])
        if self._k > 1:  # the data term is reported as a mean over outputs too
            penalty = (0.5 * self._alpha * _kernels.sumsq(arena.params[:arena.n_weights],
                                                          self._nt) / self._l2_divisor)
            loss = (loss - penalty) / self._k + penalty
        return loss, arena.grads.astype(np.float64)


def _optimizer_of(settings):
    """The fastnn optimizer of a stochastic solver's settings (_solver_settings)."""
    if settings["solver"] == "adam":
        beta_1, beta_2 = settings["betas"]
        return AdamFolded(lr=settings["learning_rate_init"], beta1=beta_1, beta2=beta_2,
                          eps=settings["epsilon"])
    return ClassicalMomentum(lr=settings["learning_rate_init"], momentum=settings["momentum"],
                             nesterov=settings["nesterov"])


def _lbfgs_iterations(result, max_iter):
    """n_iter_ of an L-BFGS-B result, with scikit-learn's ConvergenceWarning."""
    n_iter = min(result.nit, max_iter)
    if result.status != 0:
        msg = ("lbfgs failed to converge after %d iteration(s) (status=%d):\n%s\n"
               % (n_iter, result.status, result.message))
        if n_iter == max_iter:
            msg += ("\nIncrease the number of iterations to improve the convergence "
                    "(max_iter=%d)." % max_iter)
        warnings.warn(msg, ConvergenceWarning, stacklevel=3)
    return n_iter


_PARAMS_DOC = """
    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
        The ith element is the number of neurons in the ith hidden layer.

    activation : {'identity', 'logistic', 'tanh', 'relu'}, default='relu'
        Activation of the hidden layers. fastnn also offers 'leaky_relu'
        (slope 0.01) and 'softplus'.

    solver : {'lbfgs', 'sgd', 'adam'}, default='adam'
        'adam' is scikit-learn's Adam (bias correction folded into the step
        size); 'sgd' is stochastic gradient descent with scikit-learn's
        momentum and Nesterov's momentum; 'lbfgs' runs SciPy's L-BFGS-B on
        the full-batch loss, computed by fastnn.

    alpha : float, default=0.0001
        Strength of the L2 penalty 0.5 * alpha * ||W||^2, divided by the
        batch size; intercepts are not penalized.

    batch_size : int, default='auto'
        Mini-batch size; 'auto' is min(200, n_samples). A larger value is
        clipped to n_samples with a warning.

    learning_rate : {'constant', 'invscaling', 'adaptive'}, default='constant'
        Schedule for solver='sgd': 'invscaling' uses
        learning_rate_init / (t + 1) ** power_t, t the number of samples seen,
        updated at the end of each epoch; 'adaptive' divides the rate by 5
        each time n_iter_no_change epochs fail to improve by tol.

    learning_rate_init : float, default=0.001
        Initial learning rate ('sgd', 'adam').

    power_t : float, default=0.5
        Exponent of 'invscaling'.

    max_iter : int, default=200
        Maximum number of epochs ('sgd', 'adam') or of L-BFGS iterations.

    shuffle : bool, default=True
        Shuffle the samples in each epoch.

    random_state : int, RandomState instance or None, default=None
        Draws the initial weights and biases, the early-stopping split and
        the shuffling, in scikit-learn's order (and the dropout seed, when
        dropout > 0).

    tol : float, default=1e-4
        Training stops when the loss (or the validation score with
        early_stopping) fails to improve by tol for n_iter_no_change
        consecutive epochs; for 'lbfgs' it is the gradient tolerance.

    verbose : bool, default=False
        Print the loss of each epoch.

    warm_start : bool, default=False
        Continue from the previous fit's weights.

    momentum : float, default=0.9
        Momentum of solver='sgd'.

    nesterovs_momentum : bool, default=True
        Use Nesterov's momentum (solver='sgd').

    early_stopping : bool, default=False
        Hold out validation_fraction of the training data and stop when its
        score (accuracy or R^2) fails to improve; the best weights are kept.

    validation_fraction : float, default=0.1
        Fraction held out for early stopping.

    beta_1 : float, default=0.9
    beta_2 : float, default=0.999
    epsilon : float, default=1e-8
        Adam's hyperparameters.

    n_iter_no_change : int, default=10
        Epochs without improvement before stopping (or, with 'adaptive', before
        the learning rate is divided by 5).

    max_fun : int, default=15000
        Maximum number of loss evaluations of solver='lbfgs'.

    dtype : {'float64', 'float32'} or None, default=None
        Precision of the training and of the fitted weights (fastnn). None
        follows scikit-learn: float32 input trains in float32 and anything
        else in float64; L-BFGS ends with float64 weights (fastnn trains it in
        float64); a continued stochastic fit (warm_start, partial_fit) keeps
        the weights' precision; float64 X is predicted in float64.

    dropout : float, default=0.0
        Inverted dropout rate after each hidden layer during training
        (fastnn; 'sgd' and 'adam' only).

    clip_norm : float or None, default=None
        Clip each step's gradient to this global L2 norm (fastnn; 'sgd' and
        'adam' only).

    n_threads : int or None, default=None
        OpenMP threads of fastnn's kernels; None reads the current limit at
        each call (OMP_NUM_THREADS, fastnn.set_num_threads, threadpoolctl,
        joblib's per-worker limits); -1 means every core. With fit's comm,
        None takes at most this process's share of its machine's cores
        (docs/distributed.md).
"""

_ATTRIBUTES_DOC = """
    loss_ : float
        The loss of the last epoch, with the L2 term (scikit-learn's form).

    best_loss_ : float or None
        The minimum training loss (None with early_stopping).

    loss_curve_ : list of float
        The loss of each epoch.

    validation_scores_ : list of float or None
        The validation score of each epoch with early_stopping, else None.

    best_validation_score_ : float or None
        The best validation score with early_stopping, else None.

    t_ : int
        Number of training samples seen.

    coefs_ : list of ndarray of shape (n_in, n_out)
        Weight matrix of each layer.

    intercepts_ : list of ndarray of shape (n_out,)
        Bias vector of each layer.

    n_features_in_ : int
        Number of features seen during fit.

    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features seen during fit, when they are all strings.

    n_iter_ : int
        Number of epochs (or L-BFGS iterations) run by the last fit.

    n_layers_ : int
        Number of layers, input and output included.

    n_outputs_ : int
        Number of outputs.

    out_activation_ : str
        Output activation: 'softmax', 'logistic', 'identity' or 'exp'.

    n_threads_ : int
        OpenMP threads the last fit ran on (fastnn).
"""


class MLPClassifier(ClassifierMixin, _BaseMLP):
    __doc__ = ("""Multi-layer perceptron classifier: scikit-learn's MLPClassifier,
    trained by fastnn's C loop.

    Optimizes the log-loss (softmax and categorical cross-entropy for
    multiclass targets, sigmoid and binary cross-entropy for binary and
    multilabel targets) with L-BFGS, SGD or Adam.

    Parameters
    ----------""" + _PARAMS_DOC + """
    Attributes
    ----------
    classes_ : ndarray or list of ndarray
        Class labels (for multilabel targets, the label indices).
""" + _ATTRIBUTES_DOC + """
    See Also
    --------
    sklearn.neural_network.MLPClassifier : the estimator this one follows.
    MLPRegressor : the regressor.

    Examples
    --------
    >>> from fastnn.sklearn import MLPClassifier
    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MLPClassifier(max_iter=500, random_state=0).fit(X, y)
    >>> clf.predict(X[:3])
    array([0, 0, 0])
    """)

    # the loss it minimizes, an attribute (not a parameter) as in scikit-learn
    loss = "log_loss"

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 dtype=None, dropout=0.0, clip_norm=None, n_threads=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dtype = dtype
        self.dropout = dropout
        self.clip_norm = clip_norm
        self.n_threads = n_threads

    def _validate_input(self, X, y, incremental, reset, classes=None):
        """classes: the labels of every process's shard (a fit with comm), or None."""
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             dtype=self._dtype_request(), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        # incremental warm_start classes_ defined -> action (scikit-learn's table):
        #   0 0 0 / 0 1 0 define classes_; 0 0 1 redefine classes_;
        #   0 1 1 / 1 1 1 check compatibility with warm_start; 1 0 1 check against the last fit
        if (not hasattr(self, "classes_")) or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y if classes is None or y.ndim != 1 else classes)
            self.classes_ = self._label_binarizer.classes_
        else:
            # with comm, the labels of every shard (a shard may lack a class)
            classes = unique_labels(y) if classes is None or y.ndim != 1 else classes
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError("warm_start can only be used where `y` has the same "
                                     "classes as in the previous call to fit. Previously got "
                                     f"{self.classes_}, `y` has {classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError("`y` has classes not in `self.classes_`. "
                                 f"`self.classes_` has {self.classes_}. 'y' has {classes}.")
        # bool keeps float32 data from being upcast
        y = self._label_binarizer.transform(y).astype(bool)
        return X, y

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None, comm=None):
        """Fit the model to data matrix X and targets y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Class labels, or a label indicator matrix for multilabel targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sample (any sign, as in scikit-learn): each batch's
            loss is its weighted mean, the L2 term is divided by the batch's
            weight sum, and the early-stopping validation score is weighted.
            A batch whose weights sum to zero raises ZeroDivisionError.
        comm : mpi4py.MPI.Intracomm, default=None
            Train one model on the processes of comm (``mpiexec -n N``), X
            and y being this process's shard of the rows
            (docs/distributed.md): batch_size is the global batch, the
            gradients are summed over the processes every step, and every
            process ends with the same weights and fitted attributes.
            Stochastic solvers only. Unless random_state is an integer,
            process 0 draws the seed every process uses. early_stopping holds
            out validation_fraction of each process's shard (each shard split
            as a one-process fit of it alone would split it) and scores the
            union of the held-out rows. warm_start continues process 0's
            fitted estimator on every process.

        Returns
        -------
        self : MLPClassifier
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False, comm=comm)

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None, classes=None, comm=None):
        """Update the model with one epoch over the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sample (any sign, as in scikit-learn): each batch's
            loss is its weighted mean and the L2 term is divided by the batch's
            weight sum.
            A batch whose weights sum to zero raises ZeroDivisionError.
        classes : array of shape (n_classes,), default=None
            Every class that will appear; required at the first call, may be
            omitted later. y need not contain all of them.
        comm : mpi4py.MPI.Intracomm, default=None
            Update the model of the processes of comm, X and y being this
            process's shard of the chunk (docs/distributed.md): one
            iteration over the union of the shards, as fit with comm runs
            one, continuing process 0's estimator and optimizer state on
            every process. Every process calls partial_fit once per chunk,
            each with its shard (at least one row), and the same classes.

        Returns
        -------
        self : MLPClassifier
        """
        if comm is not None:
            return self._fit_shards(X, y, sample_weight, comm, incremental=True,
                                    partial_classes=classes)
        self._begin_partial_fit(y, classes)
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def _begin_partial_fit(self, y, classes):
        """scikit-learn's first call: classes are required and set classes_
        (a multilabel y sets them itself); a later call's must match."""
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)

    def predict(self, X):
        """Predict class labels (a label indicator matrix for multilabel fits).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_classes)
        """
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X, check_input=True):
        y_pred = self._forward_pass_fast(X, check_input=check_input)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        return self._label_binarizer.inverse_transform(y_pred)

    def _score(self, X, y, sample_weight=None):
        return self._score_with_function(X, y, sample_weight, accuracy_score)

    def _score_shards(self, group, X, y, sample_weight=None):
        """accuracy_score over the union of the processes' validation shards:
        the weight of the exact predictions (every label of a multilabel row)
        and the weight of the rows, each summed over the processes."""
        correct = np.asarray(self._predict(X, check_input=False) == y)
        if correct.ndim == 2:
            correct = correct.all(axis=1)
        w = (np.ones(correct.shape[0]) if sample_weight is None
             else np.asarray(sample_weight, dtype=np.float64))
        hits, weight = group.sum_(np.array([w @ correct, w.sum()]))
        if weight == 0:
            raise ZeroDivisionError("the validation rows' weights sum to zero")
        return float(hits / weight)

    def predict_proba(self, X):
        """Probability of each class, in the order of classes_.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y_prob : ndarray of shape (n_samples, n_classes)
        """
        check_is_fitted(self)
        y_pred = self._forward_pass_fast(X)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        if y_pred.ndim == 1:
            return np.vstack([1 - y_pred, y_pred]).T
        return y_pred

    def predict_log_proba(self, X):
        """Logarithm of the probability of each class: log(predict_proba(X)).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        log_y_prob : ndarray of shape (n_samples, n_classes)
        """
        y_prob = self.predict_proba(X)
        with np.errstate(divide="ignore"):  # a probability of 0 gives -inf, as in scikit-learn
            return np.log(y_prob, out=y_prob)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    __doc__ = ("""Multi-layer perceptron regressor: scikit-learn's MLPRegressor,
    trained by fastnn's C loop.

    Optimizes the squared error (identity output) or the Poisson deviance
    (exp output) with L-BFGS, SGD or Adam; several outputs are fitted
    together.

    Parameters
    ----------
    loss : {'squared_error', 'poisson'}, default='squared_error'
        'squared_error' is half the mean squared error; 'poisson' is half the
        Poisson deviance with the log link: the output layer is exponentiated,
        so predict returns the mean, and the targets must be >= 0.
""" + _PARAMS_DOC + """
    Attributes
    ----------""" + _ATTRIBUTES_DOC + """
    See Also
    --------
    sklearn.neural_network.MLPRegressor : the estimator this one follows.
    MLPClassifier : the classifier.

    Examples
    --------
    >>> from fastnn.sklearn import MLPRegressor
    >>> from sklearn.datasets import make_regression
    >>> X, y = make_regression(n_samples=200, n_features=20, random_state=1)
    >>> reg = MLPRegressor(max_iter=2000, tol=0.1, random_state=1).fit(X, y)
    >>> reg.predict(X[:2]).shape
    (2,)
    """)

    _parameter_constraints: dict = {
        **_BaseMLP._parameter_constraints,
        "loss": [StrOptions({"squared_error", "poisson"})],
    }

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *,
                 solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 dtype=None, dropout=0.0, clip_norm=None, n_threads=None):
        self.loss = loss
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dtype = dtype
        self.dropout = dropout
        self.clip_norm = clip_norm
        self.n_threads = n_threads

    def _validate_input(self, X, y, incremental, reset, classes=None):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             y_numeric=True, dtype=self._dtype_request(), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if self.loss == "poisson" and np.min(y) < 0:
            raise ValueError("loss='poisson' needs targets >= 0 (counts or rates); the "
                             "smallest target is %g" % np.min(y))
        return X, y

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None, comm=None):
        """Fit the model to data matrix X and targets y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sample (any sign, as in scikit-learn): each batch's
            loss is its weighted mean, the L2 term is divided by the batch's
            weight sum, and the early-stopping validation score is weighted.
            A batch whose weights sum to zero raises ZeroDivisionError.
        comm : mpi4py.MPI.Intracomm, default=None
            Train one model on the processes of comm (``mpiexec -n N``), X
            and y being this process's shard of the rows
            (docs/distributed.md): batch_size is the global batch, the
            gradients are summed over the processes every step, and every
            process ends with the same weights and fitted attributes.
            Stochastic solvers only. Unless random_state is an integer,
            process 0 draws the seed every process uses. early_stopping holds
            out validation_fraction of each process's shard (each shard split
            as a one-process fit of it alone would split it) and scores the
            union of the held-out rows. warm_start continues process 0's
            fitted estimator on every process.

        Returns
        -------
        self : MLPRegressor
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False, comm=comm)

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None, comm=None):
        """Update the model with one epoch over the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sample (any sign, as in scikit-learn): each batch's
            loss is its weighted mean and the L2 term is divided by the batch's
            weight sum.
            A batch whose weights sum to zero raises ZeroDivisionError.
        comm : mpi4py.MPI.Intracomm, default=None
            Update the model of the processes of comm, X and y being this
            process's shard of the chunk (docs/distributed.md): one
            iteration over the union of the shards, as fit with comm runs
            one, continuing process 0's estimator and optimizer state on
            every process. Every process calls partial_fit once per chunk,
            each with its shard (at least one row).

        Returns
        -------
        self : MLPRegressor
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=True, comm=comm)

    def predict(self, X):
        """Predict the targets.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        """
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X, check_input=True):
        y_pred = self._forward_pass_fast(X, check_input=check_input)
        if y_pred.shape[1] == 1:
            return y_pred.ravel()
        return y_pred

    def _score(self, X, y, sample_weight=None):
        return self._score_with_function(X, y, sample_weight, r2_score)

    def _score_shards(self, group, X, y, sample_weight=None):
        """r2_score over the union of the processes' validation shards: each
        output's residual and total sums of squares over every shard (the
        total about the global weighted mean, Group.squared_sums), its score
        as r2_score gives it (1 or 0 for a constant output), their mean. NaN
        when a prediction on any process is not finite."""
        Y = np.asarray(y, dtype=np.float64).reshape(X.shape[0], -1)
        pred = np.asarray(self._predict(X, check_input=False), dtype=np.float64)
        pred = pred.reshape(Y.shape)
        w = (np.ones((Y.shape[0], 1)) if sample_weight is None
             else np.asarray(sample_weight, dtype=np.float64).reshape(-1, 1))
        with np.errstate(invalid="ignore", over="ignore"):
            (n_bad,), _, resid, total = group.squared_sums(
                w, Y, pred, [np.count_nonzero(~np.isfinite(pred))])
        if n_bad > 0:
            return float("nan")
        scores = np.where(resid == 0, 1.0, 0.0)
        nonzero = total != 0
        scores[nonzero] = 1 - resid[nonzero] / total[nonzero]
        return float(np.mean(scores))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
