"""fastnn.search.lipo_search against random search, dlib's find_min_global and
Optuna's TPE sampler on standard global-optimization test functions over box
bounds, and on hyperparameter problems of fastnn networks, at equal budgets:
the median regret (best value found minus the minimum; lower is better) over
several seeds.

    python bench/lipo_compare.py                      # every test function, budgets 40 and 100
    python bench/lipo_compare.py --seeds 3 --functions branin hartmann3 --budgets 40
    python bench/lipo_compare.py --functions digits_mlp digits_mlp_log  # network problems
    python bench/lipo_compare.py --methods 'fastnn lipo_search' --lipo-set RELATIVE_NOISE=0

The test functions' minima are known. The network problems' are not: their
regret is measured against the best value any method found on any run of the
same invocation (printed under the table), so compare them only within one
invocation that runs every method.

--lipo-set NAME=VALUE overrides one of lipo_search's internal constants in
fastnn._lipo for this run only (to measure them; they are not parameters of
lipo_search). With lipo_search among the methods, its own time per trial
(the run's time less the objective's) is printed under the table.

dlib (``pip install dlib``, built from source) and Optuna are optional: a
method whose library is missing is left out. dlib takes no seed and is not
deterministic, so it is simply repeated. Prints a markdown table and, with
--json, writes every regret.
"""

import argparse
import json
import math
import shlex
import sys
import time
import warnings

import numpy as np

from fastnn import _lipo
from fastnn.search import Integer, Real, lipo_search, random_search


# ------------------------------------------------------------------ test functions
# (name, dimension, bounds per coordinate, f(x) of a 1-D array, known minimum)

def branin(x):
    a, b, c = 1.0, 5.1 / (4 * math.pi ** 2), 5 / math.pi
    return ((x[1] - b * x[0] ** 2 + c * x[0] - 6) ** 2
            + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x[0]) + 10) * a


_H3_A = np.array([[3.0, 10, 30], [0.1, 10, 35], [3.0, 10, 30], [0.1, 10, 35]])
_H3_P = 1e-4 * np.array([[3689, 1170, 2673], [4699, 4387, 7470], [1091, 8732, 5547],
                         [381, 5743, 8828]])
_H6_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
                  [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]])
_H6_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886],
                         [2329, 4135, 8307, 3736, 1004, 9991],
                         [2348, 1451, 3522, 2883, 3047, 6650],
                         [4047, 8828, 8732, 5743, 1091, 381]])
_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def hartmann3(x):
    return -float(_ALPHA @ np.exp(-np.sum(_H3_A * (x - _H3_P) ** 2, axis=1)))


def hartmann6(x):
    return -float(_ALPHA @ np.exp(-np.sum(_H6_A * (x - _H6_P) ** 2, axis=1)))


def rosenbrock(x):
    return float(np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2))


_ACKLEY_SHIFT = np.array([1.3, -0.7, 2.1, -1.6])


def ackley_shifted(x):
    z = x - _ACKLEY_SHIFT
    d = len(z)
    return float(-20 * math.exp(-0.2 * math.sqrt(np.sum(z ** 2) / d))
                 - math.exp(np.sum(np.cos(2 * math.pi * z)) / d) + 20 + math.e)


def styblinski_tang(x):
    return float(0.5 * np.sum(x ** 4 - 16 * x ** 2 + 5 * x))


def levy(x):
    w = 1 + (x - 1) / 4
    return float(math.sin(math.pi * w[0]) ** 2
                 + np.sum((w[:-1] - 1) ** 2 * (1 + 10 * np.sin(math.pi * w[:-1] + 1) ** 2))
                 + (w[-1] - 1) ** 2 * (1 + math.sin(2 * math.pi * w[-1]) ** 2))


def six_hump_camel(x):
    return float((4 - 2.1 * x[0] ** 2 + x[0] ** 4 / 3) * x[0] ** 2 + x[0] * x[1]
                 + (-4 + 4 * x[1] ** 2) * x[1] ** 2)


FUNCTIONS = {
    "branin": (branin, [(-5.0, 10.0), (0.0, 15.0)], 0.397887357729738),
    "six_hump_camel": (six_hump_camel, [(-3.0, 3.0), (-2.0, 2.0)], -1.031628453489877),
    "hartmann3": (hartmann3, [(0.0, 1.0)] * 3, -3.862779787332660),
    "hartmann6": (hartmann6, [(0.0, 1.0)] * 6, -3.322368011391339),
    "rosenbrock4": (rosenbrock, [(-2.048, 2.048)] * 4, 0.0),
    "ackley4_shifted": (ackley_shifted, [(-5.0, 5.0)] * 4, 0.0),
    "styblinski_tang4": (styblinski_tang, [(-5.0, 5.0)] * 4, -39.16616570377142 * 4),
    "levy4": (levy, [(-10.0, 10.0)] * 4, 0.0),
}


# ------------------------------------------------------------------ network problems
# (name, factory returning (objective of a params dict, to minimize; space))

class DigitsLoss:
    """The validation cross-entropy of Dense(width, relu) -> Dense(10, softmax)
    trained for 3 epochs of Adam (batch 64, one thread) on 70% of
    scikit-learn's digits (1797 8x8 images), scored on the other 30%: over
    the learning rate [1e-4, 1] and the L2 lambda [1e-6, 1] (log scales) and
    the width [4, 128] (an integer, log scale). The split and the weights'
    initialisation are seeded, so the value is a deterministic function of the
    parameters; about 0.05 s per evaluation. A diverged training (non-finite
    loss) scores nan, which every method ranks last."""

    space = {"lr": Real(1e-4, 1.0, log=True), "l2": Real(1e-6, 1.0, log=True),
             "width": Integer(4, 128, log=True)}

    def __init__(self):
        import fastnn
        from sklearn.datasets import load_digits
        from fastnn.search import model_objective
        self.fastnn = fastnn
        X, y = load_digits(return_X_y=True)
        self.objective = model_objective(
            self._build, X.astype(np.float64), y, validation_split=0.3, metric="neg_loss",
            seed=0, epochs=3, batch_size=64, n_threads=1, on_nonfinite="warn")

    def _build(self, params):
        fn = self.fastnn
        model = fn.Sequential([fn.Dense(int(params["width"]), activation="relu"),
                               fn.Dense(10, activation="softmax")], input_dim=64, seed=0)
        return model, {"optimizer": fn.optim.Adam(lr=params["lr"]), "l2": params["l2"]}

    def __call__(self, params):
        return -self.objective(params)


class DigitsLogLoss(DigitsLoss):
    """DigitsLoss's log: the same minimum, with the diverging learning rates'
    losses (above 100 at worst, against 0.109 at the best) brought within a
    few units of it. Its regret, log(loss / best loss), is a relative one."""

    def __call__(self, params):
        return math.log(super().__call__(params))


NETWORK_PROBLEMS = {"digits_mlp": DigitsLoss, "digits_mlp_log": DigitsLogLoss}


# ------------------------------------------------------------------ problems and methods
# Every method gets a problem (objective of a params dict to minimize, space)
# and returns the values it evaluated, in order.

def _space(bounds):
    return {"x%d" % i: Real(lo, hi) for i, (lo, hi) in enumerate(bounds)}


def _as_array(params, n):
    return np.array([params["x%d" % i] for i in range(n)])


def _problem(name):
    """(objective, space, known minimum or None)."""
    if name in NETWORK_PROBLEMS:
        problem = NETWORK_PROBLEMS[name]()
        return problem, problem.space, None
    f, bounds, f_min = FUNCTIONS[name]
    n = len(bounds)
    return (lambda p: f(_as_array(p, n))), _space(bounds), f_min


def run_lipo(objective, space, budget, seed):
    res = lipo_search(objective, space, budget, seed=seed, minimize=True)
    return [t["score"] for t in res.trials]


def run_random(objective, space, budget, seed):
    res = random_search(objective, space, budget, seed=seed, minimize=True)
    return [t["score"] for t in res.trials]


def run_dlib(objective, space, budget, seed):
    import dlib
    names = list(space)
    lo = [space[k].low for k in names]
    hi = [space[k].high for k in names]
    is_int = [isinstance(space[k], Integer) for k in names]
    values = []

    def f(*x):
        values.append(objective({k: int(round(v)) if i else v
                                 for k, v, i in zip(names, x, is_int)}))
        return values[-1]
    dlib.find_min_global(f, lo, hi, is_int, budget)
    return values


def run_tpe(objective, space, budget, seed):
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    values = []

    def suggest(trial, name, dim):
        if isinstance(dim, Integer):
            return trial.suggest_int(name, dim.low, dim.high, log=dim.log)
        return trial.suggest_float(name, dim.low, dim.high, log=dim.log)

    def f(trial):
        values.append(objective({k: suggest(trial, k, d) for k, d in space.items()}))
        return values[-1]
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(f, n_trials=budget)
    return values


METHODS = {"fastnn lipo_search": run_lipo, "fastnn random_search": run_random,
           "dlib find_min_global": run_dlib, "Optuna TPE": run_tpe}
# methods whose first b evaluations do not depend on the budget (lipo_search
# with n_jobs=1 and TPE take no look ahead): one run at the largest budget
# gives the runs at every budget. random_search draws its points all at once
# and dlib is not deterministic, so they run once per budget.
PREFIX_METHODS = {"fastnn lipo_search", "Optuna TPE"}
# the constants --lipo-set may override
LIPO_CONSTANTS = {"RELATIVE_NOISE": float, "PURE_RANDOM_PROBABILITY": float,
                  "N_BOUND_SAMPLES": int}


def _available(name):
    module = {"dlib find_min_global": "dlib", "Optuna TPE": "optuna"}.get(name)
    if module is None:
        return True
    try:
        __import__(module)
        return True
    except ImportError:
        return False


def _lipo_set(text):
    name, sep, value = text.partition("=")
    if not sep or name not in LIPO_CONSTANTS:
        raise argparse.ArgumentTypeError("expected NAME=VALUE with NAME one of %s, got %r"
                                         % (", ".join(LIPO_CONSTANTS), text))
    return name, LIPO_CONSTANTS[name](value)


def _best_so_far(values):
    # non-finite values (a diverged network) rank last, as every method ranks them
    v = np.where(np.isfinite(values), np.asarray(values, float), np.inf)
    return np.minimum.accumulate(v)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--functions", nargs="*", default=list(FUNCTIONS),
                        help="test functions and network problems (%s)"
                        % ", ".join(list(FUNCTIONS) + list(NETWORK_PROBLEMS)))
    parser.add_argument("--budgets", nargs="*", type=int, default=[40, 100])
    parser.add_argument("--seeds", type=int, default=7)
    parser.add_argument("--methods", nargs="*", default=list(METHODS))
    parser.add_argument("--lipo-set", action="append", type=_lipo_set, default=[],
                        metavar="NAME=VALUE")
    parser.add_argument("--json", help="write every regret to this file")
    args = parser.parse_args(argv)
    unknown = [n for n in args.functions if n not in FUNCTIONS and n not in NETWORK_PROBLEMS]
    if unknown:
        parser.error("unknown function %s" % ", ".join(unknown))
    for name, value in args.lipo_set:
        setattr(_lipo, name, value)
    methods = [m for m in args.methods if _available(m)]
    missing = [m for m in args.methods if m not in methods]
    given = sys.argv[1:] if argv is None else argv
    budgets, top = sorted(args.budgets), max(args.budgets)
    print("# python bench/lipo_compare.py %s" % shlex.join(given))
    print("# %s; median regret over %d seeds%s" % (
        time.strftime("%Y-%m-%d %H:%M:%S"), args.seeds,
        "; not installed: %s" % ", ".join(missing) if missing else ""))
    if args.lipo_set:
        print("# lipo_search constants: %s" % ", ".join(
            "%s=%s" % (name, getattr(_lipo, name)) for name in LIPO_CONSTANTS))
    print()
    print("| function | budget | " + " | ".join(methods) + " |")
    print("|---|---|" + "---|" * len(methods))
    raw, own_time, references = {}, {}, {}
    for name in args.functions:
        objective, space, f_min = _problem(name)
        best = {}   # (method, budget) -> best value of each seed
        for method in methods:
            started = time.perf_counter()
            for budget in ([top] if method in PREFIX_METHODS else budgets):
                for seed in range(args.seeds):
                    spent = [0.0]

                    def timed(params):
                        t0 = time.perf_counter()
                        try:
                            return objective(params)
                        finally:
                            spent[0] += time.perf_counter() - t0
                    t0 = time.perf_counter()
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        trace = _best_so_far(METHODS[method](timed, space, budget, seed))
                    if method == "fastnn lipo_search":
                        own_time.setdefault(name, []).append(
                            (time.perf_counter() - t0 - spent[0]) / budget)
                    for b in budgets:
                        if b <= budget and (b == budget or method in PREFIX_METHODS):
                            best.setdefault((method, b), []).append(float(trace[b - 1]))
            raw.setdefault(name, {})[method] = {"seconds": time.perf_counter() - started,
                                                "regrets": {}}
        if f_min is None:  # no known minimum: the best value of any run
            f_min = references[name] = min(min(v) for v in best.values())
        for b in budgets:
            cells = []
            for method in methods:
                regrets = [max(v - f_min, 0.0) for v in best[(method, b)]]
                raw[name][method]["regrets"][str(b)] = regrets
                cells.append("%.2g" % float(np.median(regrets)))
            print("| %s (%d-D) | %d | %s |" % (name, len(space), b, " | ".join(cells)),
                  flush=True)
    print()
    for name, value in references.items():
        print("# %s: regret against %.6g, the best value of any method on any run above"
              % (name, value))
    if own_time:
        print("# lipo_search's own time per trial (the run's time less the objective's), "
              "median over seeds, %d trials: %s" % (top, ", ".join(
                  "%s %.1f ms" % (name, 1e3 * np.median(t)) for name, t in own_time.items())))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"regrets": raw, "references": references,
                       "lipo_seconds_per_trial": own_time}, fh, indent=1)


if __name__ == "__main__":
    main()
