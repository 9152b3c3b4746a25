"""Grid, random and LIPO search compared: the table in docs/search.md.

    python -m fastnn.studies search_strategies

Each problem is searched with the same budget of trials by
fastnn.search.grid_search (once: it has no seed), random_search and
lipo_search (once per seed), and the best score of each run is recorded:

- holder: the Holder table function on [-10, 10]^2, negated to a maximum of
  19.2085, with many local maxima;
- quadratic: minus the squared distance, in decades, to (a, b) = (3e-3, 0.2)
  over two log-scaled ranges; maximum 0;
- digits: validation accuracy of Dense(width, relu) -> softmax trained with
  Adam on part of scikit-learn's digits, over learning rate, L2 lambda and
  width.

Unlike the studies in fastnn.studies.STUDIES, this one measures the library's
search strategies rather than a lesson of the specification, so
``python -m fastnn.studies all`` leaves it out.
"""

import math
import warnings

import numpy as np

import fastnn as fn
from fastnn.search import Integer, Real, grid_search, lipo_search, model_objective, \
    random_search
from fastnn.studies import _common as c

NAME = "search_strategies"
PROBLEMS = ("holder", "quadratic", "digits")
HOLDER_MAXIMUM = 19.2085


def holder_table(params):
    """Minus the Holder table function on [-10, 10]^2; the maximum is 19.2085 at
    (+-8.05502, +-9.66459)."""
    x, y = params["x"], params["y"]
    return abs(math.sin(x) * math.cos(y) * math.exp(abs(1 - math.hypot(x, y) / math.pi)))


HOLDER_SPACE = {"x": Real(-10.0, 10.0), "y": Real(-10.0, 10.0)}
QUADRATIC_OPTIMUM = {"a": 3e-3, "b": 0.2}
QUADRATIC_SPACE = {"a": Real(1e-5, 1.0, log=True), "b": Real(1e-3, 100.0, log=True)}


def shifted_quadratic(params):
    """Minus the squared distance, in decades, to (a, b) = (3e-3, 0.2): maximum 0."""
    return -sum((math.log10(params[k]) - math.log10(v)) ** 2
                for k, v in QUADRATIC_OPTIMUM.items())


def _digits_problem(n_samples=700, epochs=5, seed=0):
    X, y = c.sklearn_datasets().load_digits(return_X_y=True)
    idx = np.random.default_rng(seed).permutation(len(X))[:n_samples]
    space = {"lr": Real(1e-4, 1.0, log=True), "l2": Real(1e-4, 10.0, log=True),
             "width": Integer(4, 128, log=True)}
    objective = model_objective(
        _DigitsBuilder(seed), X[idx].astype(np.float64), y[idx], validation_split=0.3,
        seed=seed, epochs=epochs, batch_size=32, on_nonfinite="warn")
    return objective, space


class _DigitsBuilder:
    # a class rather than a closure so the objective stays picklable (n_jobs > 1)
    def __init__(self, seed=0):
        self.seed = seed

    def __call__(self, params):
        model = fn.Sequential([fn.Dense(params["width"], activation="relu"),
                               fn.Dense(10, activation="softmax")], input_dim=64, seed=self.seed)
        return model, {"optimizer": fn.optim.Adam(lr=params["lr"]), "l2": params["l2"]}


def _problem(name, digits_samples, digits_epochs, seed):
    if name == "holder":
        return holder_table, HOLDER_SPACE
    if name == "quadratic":
        return shifted_quadratic, QUADRATIC_SPACE
    if name == "digits":
        return _digits_problem(digits_samples, digits_epochs, seed)
    raise ValueError("unknown problem %r; valid problems are: %s"
                     % (name, ", ".join(PROBLEMS)))


def compare_strategies(problems=PROBLEMS, n_trials=30, seeds=(0, 1, 2, 3, 4),
                       digits_samples=700, digits_epochs=5, data_seed=0):
    """Best score after `n_trials` for grid, random and LIPO on each problem.

    Grid search is deterministic, so it runs once; random and LIPO run once
    per seed. Problems: "holder" (:func:`holder_table`, maximum 19.2085),
    "quadratic" (:func:`shifted_quadratic`, maximum 0), "digits" (validation
    accuracy of a Dense(width, relu) -> softmax network on `digits_samples`
    of scikit-learn's digits, 30% held out, `digits_epochs` epochs of Adam,
    over learning rate, L2 lambda and width; `data_seed` picks the samples,
    the split and the initial weights).

    Returns
    -------
    list of dict
        One per (problem, strategy): "best" (the best score of each run),
        its "median", "min" and "max", and "curves" (each run's best score
        after every trial).
    """
    rows = []
    for name in problems:
        objective, space = _problem(name, digits_samples, digits_epochs, data_seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # diverging trials warn; they score 0
            grid = grid_search(objective, space, budget=n_trials)
            runs = {"grid (%d points)" % len(grid.trials): [grid]}
            runs["random"] = [random_search(objective, space, n_trials, seed=s) for s in seeds]
            runs["lipo"] = [lipo_search(objective, space, n_trials, seed=s) for s in seeds]
        for strategy, results in runs.items():
            best = [r.best_score for r in results]
            rows.append({"problem": name, "strategy": strategy, "best": best,
                         "median": float(np.median(best)), "min": float(np.min(best)),
                         "max": float(np.max(best)),
                         "curves": [r.best_so_far() for r in results]})
    return rows


def format_comparison(rows):
    """The rows of :func:`compare_strategies` as a Markdown table."""
    lines = ["| problem | strategy | median best | min | max | per seed |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append("| %s | %s | %.4g | %.4g | %.4g | %s |" % (
            r["problem"], r["strategy"], r["median"], r["min"], r["max"],
            ", ".join("%.4g" % v for v in r["best"])))
    return "\n".join(lines)


def run(out="studies_out", quick=False, seed=0, n_threads=1):
    """The comparison with 30 trials and 5 seeds (quick: 12 trials, 3 seeds,
    a smaller digits problem); writes search_strategies.png, .json and .csv
    and returns the key numbers, the summary and the Markdown table."""
    n_trials, n_seeds, samples, epochs = (12, 3, 300, 2) if quick else (30, 5, 700, 5)
    seeds = tuple(seed + s for s in range(n_seeds))
    study = c.Study(NAME, out, quick, seed, ["problem", "strategy", "seed", "trial",
                                             "best_so_far"])
    with c.fastnn_threads(n_threads):
        rows = compare_strategies(PROBLEMS, n_trials, seeds, samples, epochs, data_seed=seed)
    for r in rows:
        run_seeds = seeds if len(r["curves"]) == len(seeds) else [None]
        for s, curve in zip(run_seeds, r["curves"]):
            study.add_rows({"problem": r["problem"], "strategy": r["strategy"], "seed": s,
                            "trial": i + 1, "best_so_far": b} for i, b in enumerate(curve))
    study.numbers = {
        "n_trials": n_trials, "seeds": list(seeds),
        "digits": {"samples": samples, "validation": int(round(0.3 * samples)),
                   "epochs": epochs},
        "best": {p: {_strategy_key(r["strategy"]): {k: r[k] for k in ("best", "median",
                                                                     "min", "max")}
                     for r in rows if r["problem"] == p} for p in PROBLEMS},
        "grid_points": {r["problem"]: len(r["curves"][0]) for r in rows
                        if r["strategy"].startswith("grid")},
        "table": format_comparison(rows),
    }
    return study.finish(_plot(rows, n_trials, len(seeds)), _summary(study.numbers))


def _strategy_key(strategy):
    return "grid" if strategy.startswith("grid") else strategy


def _summary(n):
    parts = []
    for problem, ceiling in (("holder", "maximum 19.2085"), ("quadratic", "maximum 0"),
                             ("digits", "validation accuracy")):
        b = n["best"][problem]
        parts.append("%s (%s): grid %.4g (%d points), random %.4g (%.4g to %.4g), "
                     "LIPO %.4g (%.4g to %.4g)" % (
                         problem, ceiling, b["grid"]["median"], n["grid_points"][problem],
                         b["random"]["median"], b["random"]["min"], b["random"]["max"],
                         b["lipo"]["median"], b["lipo"]["min"], b["lipo"]["max"]))
    return ("Best score after %d trials of fastnn.search's grid, random and LIPO search; "
            "random and LIPO give the median over seeds %s and the range. %s. Grid search "
            "has no seed and runs once; it evaluates the largest grid within the budget."
            % (n["n_trials"], ", ".join(str(s) for s in n["seeds"]), "; ".join(parts)))


def _plot(rows, n_trials, n_seeds):
    fig, axes = c.new_figure(1, len(PROBLEMS), 15, 4.5)
    fig.suptitle("Grid, random and LIPO search, %d trials: distance below the maximum "
                 "(median of %d seeds for random and LIPO)" % (n_trials, n_seeds),
                 fontsize="large")
    ceilings = {"holder": HOLDER_MAXIMUM, "quadratic": 0.0, "digits": 1.0}
    ylabels = {"holder": "19.2085 - best so far (log)",
               "quadratic": "squared distance to the optimum, decades^2 (log)",
               "digits": "validation error of the best, 1 - accuracy (log)"}
    titles = {"holder": "holder: the Holder table, maximum 19.2085",
              "quadratic": "quadratic: log-scale quadratic, maximum 0",
              "digits": "digits: a network's validation accuracy, maximum 1"}
    colors = {"grid": "tab:red", "random": "tab:blue", "lipo": "tab:green"}
    for ax, problem in zip(axes, PROBLEMS):
        for r in (r for r in rows if r["problem"] == problem):
            key = _strategy_key(r["strategy"])
            # the gap to the known maximum spans decades; 1e-6 keeps an exact hit on the axis
            gaps = np.maximum(ceilings[problem] - np.array(r["curves"], float), 1e-6)
            x = np.arange(1, gaps.shape[1] + 1)
            for g in gaps if len(gaps) > 1 else ():
                ax.plot(x, g, color=colors[key], alpha=0.2, lw=0.8)
            ax.plot(x, np.median(gaps, axis=0), color=colors[key], lw=2,
                    ls="--" if key == "grid" else "-",
                    label=r["strategy"] + (" in nested order" if key == "grid" else ""))
        ax.set_yscale("log")
        c.label_axes(ax, titles[problem], "trials", ylabels[problem])
        c.integer_ticks(ax)
        ax.legend(fontsize="small", loc="best")
    return fig
