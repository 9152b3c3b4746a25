"""fastnn.search.lipo_search against random search, dlib's find_min_global and
Optuna's TPE sampler on standard global-optimization test functions over box
bounds, at equal budgets: the median regret (best value found minus the
known minimum; lower is better) over several seeds.

    python bench/lipo_compare.py                      # every function, budgets 40 and 100
    python bench/lipo_compare.py --seeds 3 --functions branin hartmann3 --budgets 40

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

from fastnn.search import Real, lipo_search, random_search


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


# ------------------------------------------------------------------ methods

def _space(bounds):
    return {"x%d" % i: Real(lo, hi) for i, (lo, hi) in enumerate(bounds)}


def _as_array(params, n):
    return np.array([params["x%d" % i] for i in range(n)])


def run_fastnn(search, f, bounds, budget, seed):
    n = len(bounds)
    res = search(lambda p: f(_as_array(p, n)), _space(bounds), budget, seed=seed, minimize=True)
    return res.best_score


def run_lipo(f, bounds, budget, seed):
    return run_fastnn(lipo_search, f, bounds, budget, seed)


def run_random(f, bounds, budget, seed):
    return run_fastnn(random_search, f, bounds, budget, seed)


def run_dlib(f, bounds, budget, seed):
    import dlib
    lo, hi = [b[0] for b in bounds], [b[1] for b in bounds]
    _, value = dlib.find_min_global(lambda *x: f(np.array(x)), lo, hi, budget)
    return value


def run_tpe(f, bounds, budget, seed):
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial):
        return f(np.array([trial.suggest_float("x%d" % i, lo, hi)
                           for i, (lo, hi) in enumerate(bounds)]))
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=budget)
    return study.best_value


METHODS = {"fastnn lipo_search": run_lipo, "fastnn random_search": run_random,
           "dlib find_min_global": run_dlib, "Optuna TPE": run_tpe}


def _available(name):
    module = {"dlib find_min_global": "dlib", "Optuna TPE": "optuna"}.get(name)
    if module is None:
        return True
    try:
        __import__(module)
        return True
    except ImportError:
        return False


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--functions", nargs="*", default=list(FUNCTIONS))
    parser.add_argument("--budgets", nargs="*", type=int, default=[40, 100])
    parser.add_argument("--seeds", type=int, default=7)
    parser.add_argument("--methods", nargs="*", default=list(METHODS))
    parser.add_argument("--json", help="write every regret to this file")
    args = parser.parse_args(argv)
    methods = [m for m in args.methods if _available(m)]
    missing = [m for m in args.methods if m not in methods]
    given = sys.argv[1:] if argv is None else argv
    print("# python bench/lipo_compare.py %s" % shlex.join(given))
    print("# %s; median regret over %d seeds%s" % (
        time.strftime("%Y-%m-%d %H:%M:%S"), args.seeds,
        "; not installed: %s" % ", ".join(missing) if missing else ""))
    print()
    print("| function | budget | " + " | ".join(methods) + " |")
    print("|---|---|" + "---|" * len(methods))
    raw = {}
    for name in args.functions:
        f, bounds, f_min = FUNCTIONS[name]
        for budget in args.budgets:
            cells = []
            for method in methods:
                started = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    regrets = [max(METHODS[method](f, bounds, budget, seed) - f_min, 0.0)
                               for seed in range(args.seeds)]
                raw.setdefault(name, {}).setdefault(str(budget), {})[method] = {
                    "regrets": regrets, "seconds": time.perf_counter() - started}
                cells.append("%.2g" % float(np.median(regrets)))
            print("| %s (%d-D) | %d | %s |" % (name, len(bounds), budget, " | ".join(cells)),
                  flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(raw, fh, indent=1)


if __name__ == "__main__":
    main()
