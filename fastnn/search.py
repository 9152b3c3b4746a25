"""Hyperparameter search (spec section 11): grid search, random search and LIPO.

    from fastnn.search import Real, Integer, Categorical, lipo_search

    space = {"lr": Real(1e-4, 1.0, log=True), "l2": Real(1e-4, 10.0, log=True),
             "width": Integer(8, 256, log=True), "activation": Categorical(["relu", "tanh"])}
    result = lipo_search(objective, space, n_trials=40, seed=0)
    result.best_params, result.best_score
    result.plot("search.png")

The objective is called as ``fn(params)`` with ``params`` a dict name -> value
and returns a number; every strategy maximizes it unless ``minimize=True``.
:func:`model_objective` and :func:`sklearn_objective` turn a fastnn model
factory or a scikit-learn estimator into such a function.

Coordinates. Each search works in a unit cube: a Real or Integer dimension is
one coordinate in [0, 1] (linear in the value, or in its logarithm with
``log=True``), a Categorical dimension with c choices is c one-hot coordinates
scaled by 1/sqrt(2), so two different categories lie at distance 1, the same
as the two ends of a numeric range. Distances, Lipschitz slopes and LIPO's
upper bound are all measured in these coordinates.
"""

import csv
import itertools
import math
import numbers
import time

import numpy as np

from fastnn import _lipo
from fastnn.preprocessing import Standardizer
from fastnn.trainer import METRICS, NonFiniteError

__all__ = ["Real", "Integer", "Categorical", "Space", "SearchResult", "search", "grid_search",
           "random_search", "lipo_search", "model_objective", "sklearn_objective", "STRATEGIES"]

_SQRT_HALF = math.sqrt(0.5)


# ------------------------------------------------------------------ dimensions


class Dimension:
    """Base class of a search dimension: maps values to unit-cube coordinates and back."""

    width = 1

    def sample_coords(self, rng, n):
        """Coordinates (n, width) of n values drawn from the dimension's prior."""
        raise NotImplementedError

    def encode(self, value):
        """Coordinates (width,) of one value."""
        raise NotImplementedError

    def decode(self, coords):
        """The value nearest to coordinates (width,), which may lie off the lattice."""
        raise NotImplementedError

    def grid(self, n):
        """At most n values spread over the dimension (all values for a Categorical)."""
        raise NotImplementedError

    def n_values(self):
        """The number of distinct values, or math.inf."""
        return math.inf

    def sample(self, rng, n=None):
        """n values drawn from the prior (one value when n is None)."""
        c = self.sample_coords(rng, 1 if n is None else n)
        values = [self.decode(row) for row in c]
        return values[0] if n is None else values


def _check_bounds(cls, low, high, log, integer):
    for name, v in (("low", low), ("high", high)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
            raise ValueError("%s: %s must be a finite number, got %r" % (cls, name, v))
        if integer and v != int(v):
            raise ValueError("%s: %s must be a whole number, got %r" % (cls, name, v))
    if not low < high:
        raise ValueError("%s: low must be below high, got low=%r, high=%r" % (cls, low, high))
    if log and low <= 0:
        raise ValueError("%s: log=True needs low > 0, got low=%r" % (cls, low))
    # values are drawn as low + u * (high - low): the range must be a float
    if not math.isfinite(float(high) - float(low)):
        raise ValueError("%s: high - low must be a finite number, got low=%r, high=%r"
                         % (cls, low, high))
    if integer and not -2**63 <= low < high < 2**63:
        raise ValueError("%s: low and high must lie within int64, got low=%r, high=%r"
                         % (cls, low, high))


class Real(Dimension):
    """A real parameter in [low, high], uniform in the value or, with log=True,
    in its logarithm (low must then be positive)."""

    def __init__(self, low, high, log=False):
        _check_bounds("Real", low, high, log, integer=False)
        self.low, self.high, self.log = float(low), float(high), bool(log)
        self._a, self._b = (math.log(self.low), math.log(self.high)) if self.log else \
            (self.low, self.high)

    def _to_unit(self, v):
        x = math.log(v) if self.log else v
        return (x - self._a) / (self._b - self._a)

    def _from_unit(self, u):
        x = self._a + (self._b - self._a) * min(max(float(u), 0.0), 1.0)
        v = math.exp(x) if self.log else x
        return min(max(v, self.low), self.high)  # exp/log round trip may overshoot by an ulp

    def sample_coords(self, rng, n):
        return rng.uniform(0.0, 1.0, (n, 1))

    def encode(self, value):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
                not self.low <= value <= self.high:
            raise ValueError("%r is not a value of %r" % (value, self))
        return np.array([self._to_unit(value)])

    def decode(self, coords):
        return self._from_unit(coords[0])

    def grid(self, n):
        # centres of n equal cells: a grid never spends trials on the edges
        return [self._from_unit((i + 0.5) / n) for i in range(n)]

    def __repr__(self):
        return "Real(%r, %r%s)" % (self.low, self.high, ", log=True" if self.log else "")


class Integer(Real):
    """A whole-number parameter in [low, high] (both included), uniform over the
    integers or, with log=True, log-uniform (then rounded)."""

    def __init__(self, low, high, log=False):
        _check_bounds("Integer", low, high, log, integer=True)
        super().__init__(int(low), int(high), log)
        self.low, self.high = int(low), int(high)

    def _from_unit(self, u):
        return int(min(max(round(super()._from_unit(u)), self.low), self.high))

    def sample_coords(self, rng, n):
        if self.log:
            v = np.floor(np.exp(rng.uniform(math.log(self.low), math.log(self.high + 1), n)))
        else:
            v = rng.integers(self.low, self.high + 1, n)
        v = np.clip(v, self.low, self.high).astype(np.float64)
        x = np.log(v) if self.log else v
        return ((x - self._a) / (self._b - self._a)).reshape(n, 1)

    def encode(self, value):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise ValueError("%r is not a value of %r" % (value, self))
        return super().encode(value)

    def grid(self, n):
        if n >= self.n_values():
            return list(range(self.low, self.high + 1))
        return sorted(set(super().grid(n)))

    def n_values(self):
        return self.high - self.low + 1

    def __repr__(self):
        return "Integer(%r, %r%s)" % (self.low, self.high, ", log=True" if self.log else "")


class Categorical(Dimension):
    """One of a list of choices (any values that compare with ==)."""

    def __init__(self, choices):
        if isinstance(choices, (str, bytes)) or not hasattr(choices, "__iter__"):
            raise ValueError("Categorical needs a list of choices, got %r" % (choices,))
        choices = list(choices)
        if not choices:
            raise ValueError("Categorical needs at least one choice")
        for i, a in enumerate(choices):
            if any(a == b for b in choices[:i]):
                raise ValueError("Categorical: choice %r appears twice" % (a,))
        self.choices = choices
        self.width = len(choices)

    def _index(self, value):
        for i, c in enumerate(self.choices):
            if c == value:
                return i
        raise ValueError("%r is not a value of %r" % (value, self))

    def sample_coords(self, rng, n):
        out = np.zeros((n, self.width))
        out[np.arange(n), rng.integers(0, self.width, n)] = _SQRT_HALF
        return out

    def encode(self, value):
        out = np.zeros(self.width)
        out[self._index(value)] = _SQRT_HALF
        return out

    def decode(self, coords):
        return self.choices[int(np.argmax(coords))]

    def grid(self, n):
        return list(self.choices)

    def n_values(self):
        return self.width

    def __repr__(self):
        return "Categorical(%r)" % (self.choices,)


class Space:
    """An ordered dict name -> Dimension with the unit-cube encoding of whole points."""

    def __init__(self, dims):
        if isinstance(dims, Space):
            dims = dims.dims
        if not isinstance(dims, dict):
            raise TypeError("a search space is a dict name -> Real/Integer/Categorical, "
                            "got %r" % (type(dims).__name__,))
        if not dims:
            raise ValueError("the search space is empty: give at least one dimension")
        for name, d in dims.items():
            if not isinstance(name, str):
                raise TypeError("dimension names must be strings, got %r" % (name,))
            if not isinstance(d, Dimension):
                raise TypeError("dimension %r is %r; use Real, Integer or Categorical"
                                % (name, d))
        self.dims = dict(dims)
        self.names = list(self.dims)
        self._slices, start = [], 0
        for d in self.dims.values():
            self._slices.append(slice(start, start + d.width))
            start += d.width
        self.width = start
        # numeric coordinates are clipped to [0, 1]; one-hot blocks are snapped by decode
        self.numeric = np.zeros(self.width, bool)
        for d, s in zip(self.dims.values(), self._slices):
            self.numeric[s] = not isinstance(d, Categorical)

    def sample_coords(self, rng, n):
        return np.hstack([d.sample_coords(rng, n) for d in self.dims.values()])

    def encode(self, params):
        missing = [k for k in self.names if k not in params]
        extra = [k for k in params if k not in self.dims]
        if missing or extra:
            raise ValueError("point %r does not match the space (missing %s, unknown %s)"
                             % (params, missing, extra))
        return np.concatenate([d.encode(params[k]) for k, d in self.dims.items()])

    def decode(self, coords):
        return {k: d.decode(coords[s]) for (k, d), s in zip(self.dims.items(), self._slices)}

    def snap(self, coords):
        """Coordinates of the point nearest to `coords` (integers rounded, one-hot snapped)."""
        return self.encode(self.decode(coords))

    def __repr__(self):
        return "Space(%r)" % (self.dims,)


# ------------------------------------------------------------------ results


class SearchResult:
    """The trials of one search.

    Attributes
    ----------
    trials : list of dict
        One per evaluation, in order: ``trial`` (0-based), ``params``,
        ``score`` (as returned by the objective), ``seconds`` (the objective's
        wall time), ``strategy`` and ``step`` (how the point was chosen; LIPO
        also records ``lipschitz``, ``upper_bound`` and ``best_before``).
    best_params, best_score : the best finite trial (None and nan if none)
    minimize : whether lower scores are better
    strategy : "grid", "random" or "lipo"
    """

    def __init__(self, trials, minimize, strategy, space):
        self.trials, self.minimize, self.strategy, self.space = trials, minimize, strategy, space
        best = None
        for t in trials:
            if math.isfinite(t["score"]) and (best is None or self._better(t["score"],
                                                                           best["score"])):
                best = t
        self.best_trial = best
        self.best_params = None if best is None else dict(best["params"])
        self.best_score = math.nan if best is None else best["score"]

    def _better(self, a, b):
        return a < b if self.minimize else a > b

    def best_so_far(self):
        """The best finite score after each trial (nan until the first finite one)."""
        out, best = [], math.nan
        for t in self.trials:
            s = t["score"]
            if math.isfinite(s) and (math.isnan(best) or self._better(s, best)):
                best = s
            out.append(best)
        return out

    def table(self):
        """A list of rows, the first being the header: trial, strategy, step,
        one column per parameter, score, best_so_far, seconds."""
        names = self.space.names
        rows = [["trial", "strategy", "step"] + names + ["score", "best_so_far", "seconds"]]
        for t, b in zip(self.trials, self.best_so_far()):
            rows.append([t["trial"], t["strategy"], t["step"]] + [t["params"][k] for k in names]
                        + [t["score"], b, t["seconds"]])
        return rows

    def format_table(self):
        """The table as aligned plain text."""
        def fmt(v):
            return "%.6g" % v if isinstance(v, float) else str(v)
        rows = [[fmt(v) for v in row] for row in self.table()]
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        return "\n".join("  ".join(v.rjust(w) for v, w in zip(r, widths)) for r in rows)

    def to_csv(self, path):
        """Write the table to a CSV file."""
        with open(path, "w", newline="") as f:
            csv.writer(f).writerows(self.table())

    def plot(self, path=None, ax=None, label=None):
        """Best score so far against trial number (trials as points).

        Returns the matplotlib Figure (built without pyplot, so safe on any
        backend); saves it to `path` when given.
        """
        try:
            from matplotlib.figure import Figure
        except ImportError as e:
            raise ImportError("SearchResult.plot needs matplotlib: "
                              "python -m pip install matplotlib") from e
        if ax is None:
            fig = Figure(figsize=(7, 4.5), layout="constrained")
            ax = fig.add_subplot()
        else:
            fig = ax.figure
        x = np.arange(1, len(self.trials) + 1)
        scores = np.array([t["score"] for t in self.trials], float)
        ok = np.isfinite(scores)
        ax.plot(x[ok], scores[ok], "o", ms=4, alpha=0.4, label="trial score")
        ax.step(x, self.best_so_far(), where="post", lw=2,
                label=label or "best so far (%s)" % self.strategy)
        ax.set_title("%s search: best score after each trial (%s)"
                     % (self.strategy, "lower is better" if self.minimize else
                        "higher is better"))
        ax.set_xlabel("trial")
        ax.set_ylabel("objective score")
        ax.grid(alpha=0.3)
        ax.legend(loc="best")
        if path is not None:
            fig.savefig(path, dpi=100)
        return fig

    def __repr__(self):
        return "SearchResult(strategy=%r, n_trials=%d, best_score=%r, best_params=%r)" % (
            self.strategy, len(self.trials), self.best_score, self.best_params)


# ------------------------------------------------------------------ evaluation


def _timed_call(fn, params):
    t0 = time.perf_counter()
    score = fn(dict(params))
    seconds = time.perf_counter() - t0
    if isinstance(score, (bool, np.bool_)) or not isinstance(score, (numbers.Real, np.number)):
        raise TypeError("the objective must return a number, got %r for %r" % (score, params))
    return float(score), seconds


def _evaluate(fn, batch, n_jobs, backend):
    """Scores and times of the points in `batch`, in order."""
    if n_jobs == 1 or len(batch) == 1:
        return [_timed_call(fn, p) for p in batch]
    from joblib import Parallel, delayed
    return Parallel(n_jobs=n_jobs, backend=backend)(delayed(_timed_call)(fn, p) for p in batch)


def _check_common(fn, space, n_jobs, minimize):
    if not callable(fn):
        raise TypeError("fn must be callable as fn(params) -> score, got %r" % (fn,))
    space = Space(space)
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral) or n_jobs == 0 \
            or n_jobs < -1:
        raise ValueError("n_jobs must be a positive integer or -1 (all cores), got %r"
                         % (n_jobs,))
    if n_jobs == -1:
        import os
        n_jobs = os.cpu_count() or 1
    if not isinstance(minimize, (bool, np.bool_)):  # "false" would be true
        raise TypeError("minimize must be True or False, got %r" % (minimize,))
    return space, int(n_jobs), bool(minimize)


def _check_seed(seed):
    """seed for numpy's default_rng (None, an integer >= 0 or a sequence of
    them), a negative integer named as the seed's fault."""
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and seed < 0:
        raise ValueError("seed must be None or an integer >= 0, got %r" % (seed,))
    return seed


def _check_count(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError("%s must be a positive integer, got %r" % (name, value))
    return int(value)


def _run_fixed(fn, space, points, strategy, minimize, n_jobs, backend):
    trials = []
    chunk = max(1, n_jobs) * 4
    for start in range(0, len(points), chunk):
        batch = points[start:start + chunk]
        for p, (score, sec) in zip(batch, _evaluate(fn, batch, n_jobs, backend)):
            trials.append({"trial": len(trials), "params": p, "score": score, "seconds": sec,
                           "strategy": strategy, "step": strategy})
    return SearchResult(trials, minimize, strategy, space)


# ------------------------------------------------------------------ strategies


def grid_points(space, n_points_per_dim=None, budget=None):
    """The points of the grid :func:`grid_search` evaluates, in its order."""
    space = Space(space)
    dims = space.dims
    if (n_points_per_dim is None) == (budget is None):
        raise ValueError("give exactly one of n_points_per_dim and budget")
    if n_points_per_dim is not None:
        if isinstance(n_points_per_dim, dict):
            unknown = set(n_points_per_dim) - set(dims)
            if unknown:
                raise ValueError("n_points_per_dim names unknown dimensions %s" % sorted(unknown))
            counts = {k: _check_count(n_points_per_dim.get(k, 1), "n_points_per_dim[%r]" % k)
                      for k in dims}
        else:
            n = _check_count(n_points_per_dim, "n_points_per_dim")
            counts = {k: n for k in dims}
    else:
        budget = _check_count(budget, "budget")
        counts = _counts_for_budget(dims, budget)
    values = [dims[k].grid(counts[k]) for k in dims]
    return [dict(zip(dims, combo)) for combo in itertools.product(*values)]


def _counts_for_budget(dims, budget):
    """Points per dimension: every category, then the same count k on each
    numeric dimension with the product within budget, then one more point on
    dimensions in order while the product still fits."""
    fixed = math.prod(d.n_values() for d in dims.values() if isinstance(d, Categorical))
    if fixed > budget:
        raise ValueError("a grid over the categorical dimensions alone needs %d points, "
                         "more than the budget of %d" % (fixed, budget))
    numeric = [k for k, d in dims.items() if not isinstance(d, Categorical)]
    counts = {k: dims[k].n_values() for k in dims if k not in numeric}
    if not numeric:
        return counts
    k = max(1, int(math.floor((budget / fixed) ** (1.0 / len(numeric)) + 1e-9)))
    for name in numeric:
        counts[name] = min(k, dims[name].n_values())

    def size():
        return math.prod(len(dims[n].grid(counts[n])) for n in dims)
    grown = True
    while grown:
        grown = False
        for name in numeric:
            if counts[name] >= dims[name].n_values():
                continue
            counts[name] += 1
            if size() <= budget:
                grown = True
            else:
                counts[name] -= 1
    return counts


def grid_search(fn, space, n_points_per_dim=None, budget=None, minimize=False, n_jobs=1,
                backend=None):
    """Evaluate every point of a grid.

    Parameters
    ----------
    fn : callable
        ``fn(params) -> float`` with ``params`` a dict name -> value.
    space : dict name -> Real, Integer or Categorical
    n_points_per_dim : int or dict name -> int, optional
        Points per numeric dimension: the centres of that many equal cells of
        its (log) range, so the grid never spends trials on the edges; an
        Integer rounds them (duplicates dropped, or every integer when there
        are at most that many). A Categorical always takes every choice.
    budget : int, optional
        Instead of n_points_per_dim: the largest grid of at most `budget`
        points (the same count on each numeric dimension, then one more on
        the first dimensions while it fits). The grid may use fewer trials.
    minimize : bool
        Lower scores are better.
    n_jobs : int
        Parallel evaluations through joblib (-1: all cores).
    backend : str, optional
        joblib backend ("loky" by default; "threading" for objectives that
        release the GIL, such as fastnn training).

    Returns
    -------
    SearchResult
    """
    space, n_jobs, minimize = _check_common(fn, space, n_jobs, minimize)
    points = grid_points(space, n_points_per_dim, budget)
    return _run_fixed(fn, space, points, "grid", minimize, n_jobs, backend)


def random_search(fn, space, n_trials, seed=None, minimize=False, n_jobs=1, backend=None):
    """Evaluate `n_trials` points drawn independently from the space's prior
    (uniform, log-uniform for ``log=True``, uniform over integers and
    categories). The same seed draws the same points. Other parameters as in
    :func:`grid_search`."""
    space, n_jobs, minimize = _check_common(fn, space, n_jobs, minimize)
    n_trials = _check_count(n_trials, "n_trials")
    rng = np.random.default_rng(_check_seed(seed))
    points = [space.decode(c) for c in space.sample_coords(rng, n_trials)]
    return _run_fixed(fn, space, points, "random", minimize, n_jobs, backend)


def lipo_search(fn, space, n_trials, seed=None, minimize=False, n_jobs=1, backend=None):
    """LIPO (Malherbe and Vayatis, 2017) with per-dimension Lipschitz constants
    and noise terms, alternating with a quadratic trust-region step, as dlib's
    find_max_global does. No parameter needs tuning; the few internal
    constants are in fastnn._lipo, with their reasons in docs/search.md.

    Points live in the unit cube of the module docstring (log dimensions in
    log space, categories one-hot). With X_i, F_i the points evaluated so far
    with finite scores (F negated when minimizing, so the rule always
    maximizes) and F* their best, trial t (0-based) is:

    1. ``step="centre"``: the first trial, the centre of the cube (of each
       numeric range, in log space for log dimensions; a Categorical's first
       choice), as dlib starts: ranges are often centred on a good guess.
    2. ``step="explore"``: a point drawn from the space's prior, while there
       are fewer than two finite scores and with probability 0.02 afterwards
       (so a badly fitted bound cannot trap the search).
    3. ``step="local"``, whenever the previous trial was not a local step and
       the model predicts a gain: the maximum of a quadratic through points
       near the incumbent (full, fitted by least squares, once there are
       points enough; else the interpolant with the least curved Hessian),
       within a trust region around it over the numeric coordinates (the
       incumbent's categories kept), integers rounded. The region halves
       after steps that gain less than a quarter of the prediction, doubles
       after steps that gain more at its edge, restarts at the spread of the
       nearby points when another step finds a better point farther away,
       and once it is tiny the incumbent counts as converged: local steps
       give way to bound steps until a better point turns up.
    4. ``step="bound"``: the point that maximizes the upper bound
       U(x) = min_i F_i + sqrt(noise_i + sum_d m_d (x_d - X_id)^2), with m the
       per-dimension squared Lipschitz constants and noise_i the points'
       noise terms, both the least that keep every evaluated point under the
       bound (a quadratic program refitted after every trial), among 5000
       draws from the prior, snapped to valid values. A point whose bound
       cannot beat F* is not worth a trial: the step then explores
       (``"fallback"``). Integer and categorical dimensions enter U through
       their coordinates; a proposal equal to an evaluated point is replaced
       by the next best candidate.

    With ``n_jobs > 1`` each round proposes ``n_jobs`` points: at most one local
    step, the rest bound steps, each treating the earlier proposals of its
    round as evaluated at F* (so the bound steers away from them), then
    evaluates the round in parallel. Non-finite scores rank last: the bound
    counts their points at the worst finite score (so it falls where trials
    fail: a region where training diverges would otherwise keep the bound
    high and draw every trial), and the model leaves them out.

    Each trial records ``lipschitz`` (the per-dimension constants sqrt(m), a
    list, when it was proposed), ``upper_bound`` (its U, for bound steps) and
    ``best_before`` (F* as the objective reports it, before the trial);
    ``result.lipschitz`` holds the constants after each trial.

    Parameters
    ----------
    fn, space, minimize, n_jobs, backend : as in :func:`grid_search`
    n_trials : int
    seed : int or None
        The same seed makes the same proposals (for the same scores).

    Returns
    -------
    SearchResult
    """
    space, n_jobs, minimize = _check_common(fn, space, n_jobs, minimize)
    n_trials = _check_count(n_trials, "n_trials")
    sign = -1.0 if minimize else 1.0
    rng = np.random.default_rng(_check_seed(seed))
    numeric = space.numeric

    X, F = [], []            # finite evaluations: coordinates, sign * score
    X_all, F_all = [], []    # every evaluation (sign * score, nan when not finite)
    seen = set()             # every evaluated or pending point, as its coordinates
    trials, ks = [], []
    bound, region = None, _lipo.TrustRegion()
    last_step = None

    def key(c):
        return tuple(np.round(np.asarray(c, float), 12))

    def explore():
        for _ in range(100):  # a point not evaluated yet, when the space has one
            c = space.sample_coords(rng, 1)[0]
            if key(c) not in seen:
                break
        return space.decode(c), c

    def bound_step(U, best):
        cand = space.sample_coords(rng, _lipo.N_BOUND_SAMPLES)
        x, _, values = _lipo.maximize_bound(U, cand)
        c = space.snap(x)
        if key(c) in seen:  # taken (integers, categories): the best candidate not taken
            for i in np.argsort(-values):
                c = space.snap(cand[i])
                if key(c) not in seen:
                    break
            else:
                return None
        u = float(U(c[None, :])[0])
        return (space.decode(c), c, u) if u > best else None

    while len(trials) < n_trials:
        n_round = min(n_jobs, n_trials - len(trials))
        proposals, pend_X = [], []
        best_i = int(np.argmax(F)) if F else None
        best = F[best_i] if F else -math.inf
        lipschitz = [] if bound is None else bound.lipschitz.tolist()
        for j in range(n_round):
            t = len(trials) + j
            info = {"lipschitz": lipschitz, "upper_bound": None,
                    "best_before": sign * best if F else math.nan}
            step, p, c = None, None, None
            if t == 0:  # the centre of the space: ranges are often centred on a good guess
                c = space.snap(np.full(space.width, 0.5))
                p, step = space.decode(c), "centre"
            elif len(F) < 2 or rng.random() < _lipo.PURE_RANDOM_PROBABILITY:
                step = "explore"
            elif j == 0 and last_step != "local":
                x = region.propose(np.asarray(X), np.asarray(F), numeric)
                if x is not None:
                    c = space.snap(x)
                    if key(c) not in seen:
                        p, step = space.decode(c), "local"
            if step is None:
                U = bound if not pend_X else _lipo.with_pending(bound, pend_X, best)
                found = bound_step(U, best)
                if found is not None:
                    p, c, u = found
                    step, info["upper_bound"] = "bound", sign * u
                else:
                    step = "fallback"
            if p is None:
                p, c = explore()
            seen.add(key(c))
            pend_X.append(np.asarray(c, float))
            proposals.append((p, np.asarray(c, float), step, info))
        results = _evaluate(fn, [p for p, _, _, _ in proposals], n_jobs, backend)
        for (p, c, step, info), (score, sec) in zip(proposals, results):
            trial = {"trial": len(trials), "params": p, "score": score, "seconds": sec,
                     "strategy": "lipo", "step": step}
            trial.update(info)
            trials.append(trial)
            s = sign * score
            if step == "local":
                region.update(s - best if math.isfinite(s) else -math.inf)
            elif math.isfinite(s) and s > best and best_i is not None:
                region.moved(float(np.max(np.abs(c - X[best_i]))))
            last_step = step
            X_all.append(c)
            F_all.append(s if math.isfinite(s) else math.nan)
            if math.isfinite(s):
                X.append(c)
                F.append(s)
        if len(F) >= 2:
            # a point whose score is not finite counts at the worst finite score, so
            # the bound falls where trials fail instead of rising toward them
            worst = np.where(np.isnan(F_all), min(F), F_all)
            bound = _lipo.UpperBound(np.asarray(X_all), worst,
                                     active=None if bound is None else bound.active)
        ks.extend([[] if bound is None else bound.lipschitz.tolist()] * n_round)
    result = SearchResult(trials, minimize, "lipo", space)
    result.lipschitz = ks
    return result


STRATEGIES = {"grid": grid_search, "random": random_search, "lipo": lipo_search}


def search(fn, space, strategy="lipo", n_trials=None, **kwargs):
    """Run one strategy by name: "grid" (n_trials is the budget), "random" or "lipo"."""
    if strategy not in STRATEGIES:
        raise ValueError("unknown search strategy %r; choose one of %s"
                         % (strategy, ", ".join(sorted(STRATEGIES))))
    if strategy == "grid":
        if n_trials is not None:
            kwargs["budget"] = n_trials
        return grid_search(fn, space, **kwargs)
    if n_trials is None:
        raise ValueError("%s search needs n_trials" % strategy)
    return STRATEGIES[strategy](fn, space, n_trials, **kwargs)


# ------------------------------------------------------------------ adapters


class _ModelObjective:
    # a class rather than a closure so joblib's worker processes can receive it
    def __init__(self, build_fn, X, y, validation_split, validation_data, metric, standardize,
                 seed, failure_score, fit_kwargs):
        self.build_fn, self.metric, self.fit_kwargs = build_fn, metric, fit_kwargs
        self.failure_score = failure_score
        X = np.asarray(X)
        y = np.asarray(y)
        if validation_data is not None:
            X_val, y_val = (np.asarray(a) for a in validation_data)
        else:
            if not 0.0 < validation_split < 1.0:
                raise ValueError("validation_split must lie in (0, 1), got %r"
                                 % (validation_split,))
            perm = np.random.default_rng(_check_seed(seed)).permutation(len(X))
            n_val = max(1, int(round(validation_split * len(X))))
            if n_val >= len(X):
                raise ValueError("validation_split leaves no training data")
            X_val, y_val = X[perm[:n_val]], y[perm[:n_val]]
            X, y = X[perm[n_val:]], y[perm[n_val:]]
        if standardize:
            scaler = Standardizer().fit(X)
            X, X_val = scaler.transform(X), scaler.transform(X_val)
        self.X, self.y, self.X_val, self.y_val = X, y, X_val, y_val

    def __call__(self, params):
        built = self.build_fn(dict(params))
        model, kwargs = built if isinstance(built, tuple) else (built, {})
        kwargs = {**self.fit_kwargs, **(kwargs or {})}
        try:
            history = model.fit(self.X, self.y, **kwargs)
        except NonFiniteError:
            return self._failure(model)
        stopped = getattr(history, "stopped", None)
        if stopped == "interrupted":  # fit returned on Ctrl-C: the search stops too
            raise KeyboardInterrupt
        if stopped == "non_finite":
            return self._failure(model)
        scores = model.evaluate(self.X_val, self.y_val)
        metric = self.metric
        if metric is None:
            metric = "accuracy" if "accuracy" in scores else "r2"
        if metric == "neg_loss":
            value = -scores["loss"]
        elif metric in scores:
            value = scores[metric]
        else:
            raise ValueError("metric %r is not available for this model; it reports %s"
                             % (metric, ", ".join(sorted(scores))))
        return float(value) if math.isfinite(value) else self._failure(model)

    def _failure(self, model):
        """The score of a trial whose model diverged: failure_score, or 0.0
        when the metric is accuracy (the metric a classifier's None stands
        for, whatever its labels), else NaN."""
        if self.failure_score is not None:
            return float(self.failure_score)
        metric = self.metric
        if metric is None:
            metric = "accuracy" if "accuracy" in METRICS[model.loss_] else "r2"
        return 0.0 if metric == "accuracy" else math.nan


def model_objective(build_fn, X, y, validation_split=0.2, validation_data=None, metric=None,
                    standardize=True, seed=0, failure_score=None, **fit_kwargs):
    """An objective params -> validation score for a fastnn model factory.

    Parameters
    ----------
    build_fn : callable
        ``build_fn(params)`` returns a fresh, untrained ``fastnn.Sequential``,
        or a tuple ``(model, fit_kwargs)`` whose keyword arguments for
        ``model.fit`` (optimizer, l2, epochs, ...) override the common ones.
    X, y : the data; a seeded shuffle holds out `validation_split` of it
        (unless `validation_data=(X_val, y_val)` is given).
    metric : "accuracy", "r2", "mse" or "neg_loss" (minus the validation
        loss); None picks accuracy for classification, r2 for regression.
        Maximize it, except "mse" (pass ``minimize=True``).
    standardize : scale the inputs with a fastnn.Standardizer fitted on the
        training part only.
    seed : seeds the validation shuffle.
    failure_score : the score of a trial whose training diverges (non-finite
        loss); None means 0.0 for accuracy and nan otherwise (nan ranks last).
    **fit_kwargs : common keyword arguments for ``model.fit``.

    Returns
    -------
    callable
        Picklable, so it also runs with ``n_jobs > 1``.
    """
    if not callable(build_fn):
        raise TypeError("build_fn must be callable as build_fn(params) -> model or "
                        "(model, fit_kwargs)")
    if metric not in (None, "accuracy", "r2", "mse", "neg_loss"):
        raise ValueError("metric must be None, 'accuracy', 'r2', 'mse' or 'neg_loss', got %r"
                         % (metric,))
    return _ModelObjective(build_fn, X, y, validation_split, validation_data, metric,
                           standardize, seed, failure_score, fit_kwargs)


class _SklearnObjective:
    def __init__(self, estimator, X, y, cv, scoring, n_jobs):
        self.estimator, self.X, self.y = estimator, X, y
        self.cv, self.scoring, self.n_jobs = cv, scoring, n_jobs

    def __call__(self, params):
        from sklearn.base import clone
        from sklearn.model_selection import cross_val_score
        est = clone(self.estimator).set_params(**params)
        return float(np.mean(cross_val_score(est, self.X, self.y, cv=self.cv,
                                             scoring=self.scoring, n_jobs=self.n_jobs)))


def sklearn_objective(estimator, X, y, cv=3, scoring=None, n_jobs=None):
    """An objective params -> mean cross-validated score of a scikit-learn
    estimator: the estimator is cloned, ``set_params(**params)`` applied, and
    ``cross_val_score(..., cv=cv, scoring=scoring)`` averaged (higher is better
    for every scikit-learn scorer). Parameter names are the estimator's,
    ``"step__param"`` for pipelines."""
    try:
        from sklearn.base import clone
    except ImportError as e:
        raise ImportError("sklearn_objective needs scikit-learn: "
                          "python -m pip install scikit-learn") from e
    clone(estimator)  # fail now, not at the first trial, on a non-estimator
    return _SklearnObjective(estimator, X, y, cv, scoring, n_jobs)
