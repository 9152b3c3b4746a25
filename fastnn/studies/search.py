"""Hyperparameter search (spec section 11): grid against random search over the
learning rate and the L2 lambda, on the same budget of trials.

Data: scikit-learn's digits, split into training, validation and test sets
(inputs standardized with the training set's statistics). A trial trains
Dense(64, relu) -> softmax with Adam at its learning rate and L2 lambda, then
scores validation accuracy. The search space is lr in [1e-4, 1] and lambda in
[1e-4, 10], both on a log scale:

- grid search (fastnn.search.grid_search) with k values per parameter (k * k
  trials) uses the centres of k equal cells of each log range, so a grid never
  wastes trials on the edges;
- random search (fastnn.search.random_search) draws both parameters
  log-uniformly, one seed per repetition;
- LIPO (fastnn.search.lipo_search) chooses each trial from the ones before,
  with the same budget and seeds.

All three are the library's own strategies, run on the same objective, so the
study measures what a user of fastnn.search gets.

The best configuration of each search is scored once on the test set. The
lesson: with the same budget, a k x k grid tries only k distinct values of each
parameter, random search one per trial, which pays when one parameter matters
more than the other over part of its range.
"""

import math

import numpy as np

import fastnn as fn
from fastnn.search import Real, grid_search, lipo_search, random_search
from fastnn.studies import _common as c

NAME = "search"
LR_RANGE = (1e-4, 1.0)
L2_RANGE = (1e-4, 10.0)
SPACE = {"lr": Real(*LR_RANGE, log=True), "l2": Real(*L2_RANGE, log=True)}


class Trials:
    """Trains and scores one configuration per call, keeping the test score of
    the best model seen so far."""

    def __init__(self, splits, epochs, seed):
        (self.X, self.y), (self.X_val, self.y_val), (self.X_test, self.y_test) = splits
        self.epochs, self.seed = epochs, seed

    def __call__(self, lr, l2):
        model = fn.Sequential([fn.Dense(64, activation="relu"),
                               fn.Dense(10, activation="softmax")], input_dim=64, seed=self.seed)
        with c.expected_warnings():
            h = model.fit(self.X, self.y, optimizer=fn.optim.Adam(lr=lr), batch_size=32,
                          epochs=self.epochs, l2=l2, on_nonfinite="warn")
        if h.stopped == "non_finite":
            return {"lr": lr, "l2": l2, "val_accuracy": 0.0, "val_loss": None, "model": None}
        scores = model.evaluate(self.X_val, self.y_val)
        return {"lr": lr, "l2": l2, "val_accuracy": scores["accuracy"],
                "val_loss": scores["loss"], "model": model}

    def grid(self, k):
        """grid_search with k values per parameter (lr outer, l2 inner). Returns
        the trials (without models), the best-so-far validation accuracy after
        each, and the best trial with its test accuracy (the test set is used
        this once)."""
        return self._search(grid_search, n_points_per_dim=k)

    def random(self, budget, seed):
        """random_search with `budget` trials; returns what grid returns."""
        return self._search(random_search, budget, seed=seed)

    def lipo(self, budget, seed):
        """lipo_search with `budget` trials; returns what grid returns."""
        return self._search(lipo_search, budget, seed=seed)

    def _search(self, strategy, *args, **kwargs):
        """Run a fastnn.search strategy maximizing validation accuracy; the
        trials keep their models here, which the search's own record does not."""
        done = []

        def objective(params):
            done.append(self(params["lr"], params["l2"]))
            return done[-1]["val_accuracy"]
        strategy(objective, SPACE, *args, **kwargs)
        return self._summarize(done)

    def _summarize(self, results):
        trials, best, best_model, curve = [], None, None, []
        for t in results:
            model = t.pop("model")
            if best is None or _better(t, best):
                best, best_model = t, model
            trials.append(t)
            curve.append(best["val_accuracy"])
        best = dict(best)
        best["test_accuracy"] = (best_model.evaluate(self.X_test, self.y_test)["accuracy"]
                                 if best_model is not None else None)
        return trials, curve, best


def _better(a, b):
    """Higher validation accuracy; on a tie, lower validation loss."""
    if a["val_accuracy"] != b["val_accuracy"]:
        return a["val_accuracy"] > b["val_accuracy"]
    return (a["val_loss"] if a["val_loss"] is not None else math.inf) < \
        (b["val_loss"] if b["val_loss"] is not None else math.inf)


def run(out="studies_out", quick=False, seed=0, n_threads=1):
    """Grid searches of 2x2 up to kxk and random searches of k*k trials over
    several seeds; returns the key numbers (also written to search.json) and a
    summary."""
    k_max, n_seeds, epochs, sizes = (3, 5, 4, [500, 300, None]) if quick else \
        (5, 20, 10, [1000, 400, None])
    budget = k_max * k_max
    study = c.Study(NAME, out, quick, seed, ["search", "seed", "trial", "lr", "l2",
                                             "val_accuracy", "val_loss", "best_so_far"])
    trials = Trials(c.digits(sizes, seed), epochs, seed)
    with c.fastnn_threads(n_threads):
        grids = {k: trials.grid(k) for k in range(2, k_max + 1)}
        random = {s: trials.random(budget, [seed, 31, s]) for s in range(n_seeds)}
        lipo = {s: trials.lipo(budget, [seed, 37, s]) for s in range(n_seeds)}
    named = [("grid %dx%d" % (k, k), None, g) for k, g in grids.items()]
    named += [("random", s, r) for s, r in random.items()]
    named += [("lipo", s, r) for s, r in lipo.items()]
    for name, s, (ts, curve, _) in named:
        study.add_rows({"search": name, "seed": s, "trial": i + 1, "lr": t["lr"],
                        "l2": t["l2"], "val_accuracy": t["val_accuracy"],
                        "val_loss": t["val_loss"], "best_so_far": b}
                       for i, (t, b) in enumerate(zip(ts, curve)))

    curves = np.array([random[s][1] for s in range(n_seeds)])
    random_best = curves[:, -1]
    grid_best = grids[k_max][2]
    random_test = [random[s][2]["test_accuracy"] for s in range(n_seeds)]
    study.numbers = {
        "budget": budget, "random_seeds": n_seeds, "epochs_per_trial": epochs,
        "split": {"train": sizes[0], "validation": sizes[1],
                  "test": len(trials.X_test)},
        "lr_range": LR_RANGE, "l2_range": L2_RANGE,
        "grid_best": {"%dx%d" % (k, k): {key: v for key, v in g[2].items()}
                      for k, g in grids.items()},
        "grid_distinct_lr": len({t["lr"] for t in grids[k_max][0]}),
        "random_distinct_lr": min(len({t["lr"] for t in random[s][0]}) for s in random),
        "random_best_val_accuracy": random_best.tolist(),
        "random_best_median": float(np.median(random_best)),
        "random_best_min": float(random_best.min()),
        "random_best_max": float(random_best.max()),
        "random_beats_or_ties_grid": int(np.sum(random_best >= grid_best["val_accuracy"])),
        "random_median_curve": np.median(curves, axis=0).tolist(),
        "random_trials_to_match_grid_median": _trials_to_reach(
            curves, grid_best["val_accuracy"]),
        "random_test_accuracy": random_test,
        "grid_curve": grids[k_max][1],
        "lipo_best_val_accuracy": [lipo[s][1][-1] for s in range(n_seeds)],
        "lipo_best_median": float(np.median([lipo[s][1][-1] for s in range(n_seeds)])),
        "lipo_best_min": float(min(lipo[s][1][-1] for s in range(n_seeds))),
        "lipo_best_max": float(max(lipo[s][1][-1] for s in range(n_seeds))),
        "lipo_median_curve": np.median([lipo[s][1] for s in range(n_seeds)], axis=0).tolist(),
        "lipo_test_accuracy": [lipo[s][2]["test_accuracy"] for s in range(n_seeds)],
        "worst_trial_val_accuracy": min(t["val_accuracy"] for g in grids.values()
                                        for t in g[0]),
        "grid_mean_accuracy_by_lr": _main_effect(grids[k_max][0], "lr"),
        "grid_mean_accuracy_by_l2": _main_effect(grids[k_max][0], "l2"),
    }
    fig = _plot(grids, random, k_max, budget, study.numbers, lipo)
    return study.finish(fig, _summary(study.numbers, k_max))


def _summary(n, k_max):
    """The study's paragraph, from its key numbers."""
    budget, n_seeds = n["budget"], n["random_seeds"]
    grid_best = n["grid_best"]["%dx%d" % (k_max, k_max)]
    random_test = n["random_test_accuracy"]
    return (
        "Digits, %d trials per search (lr in [1e-4, 1], L2 lambda in [1e-4, 10], log "
        "scales). The %dx%d grid tried %d learning rates and found validation accuracy %.4f "
        "(lr %.2g, lambda %.2g; test accuracy %.4f, measured once). Random search tried %d "
        "learning rates per run; over %d seeds its best was %.4f at the median (range "
        "%.4f-%.4f), at least the grid's in %d of %d runs, median test accuracy %.4f. "
        "The worst trial scored %.3f, so the search matters. In the grid, the mean "
        "accuracy per learning rate ranges over %.3f-%.3f and per lambda over %.3f-%.3f "
        "(lambda hurts only near the top of its range). With the same budget, random "
        "search tests %d distinct values of each parameter instead of %d. LIPO, with the "
        "same budget and seeds, reached a median best of %.4f (range %.4f-%.4f)."
        % (budget, k_max, k_max, k_max, grid_best["val_accuracy"], grid_best["lr"],
           grid_best["l2"], grid_best["test_accuracy"], budget, n_seeds,
           n["random_best_median"], n["random_best_min"], n["random_best_max"],
           n["random_beats_or_ties_grid"], n_seeds, float(np.median(random_test)),
           n["worst_trial_val_accuracy"],
           min(n["grid_mean_accuracy_by_lr"].values()),
           max(n["grid_mean_accuracy_by_lr"].values()),
           min(n["grid_mean_accuracy_by_l2"].values()),
           max(n["grid_mean_accuracy_by_l2"].values()), budget, k_max,
           n["lipo_best_median"], n["lipo_best_min"], n["lipo_best_max"]))


def _main_effect(trials, key):
    """Mean validation accuracy of the trials sharing each value of `key`."""
    values = sorted({t[key] for t in trials})
    return {"%.3g" % v: float(np.mean([t["val_accuracy"] for t in trials if t[key] == v]))
            for v in values}


def _trials_to_reach(curves, target):
    """Median over seeds of the trials random search needed to reach target
    (None when fewer than half the seeds reached it)."""
    counts = [int(np.argmax(cv >= target)) + 1 if np.any(cv >= target) else math.inf
              for cv in curves]
    median = float(np.median(counts))
    return None if math.isinf(median) else median


def _plot(grids, random, k_max, budget, numbers, lipo):
    from matplotlib.colors import LogNorm
    fig, (ax1, ax2, ax3) = c.new_figure(1, 3, 16, 4.9)
    fig.suptitle("Grid, random and LIPO search on digits: learning rate and L2 lambda, "
                 "%d trials, Adam, validation accuracy" % budget, fontsize="large")
    curves = np.array([random[s][1] for s in range(len(random))])
    x = np.arange(1, budget + 1)
    for cv in curves:
        ax1.plot(x, cv, color="tab:blue", alpha=0.15, lw=0.8)
    ax1.fill_between(x, np.percentile(curves, 10, axis=0), np.percentile(curves, 90, axis=0),
                     color="tab:blue", alpha=0.2, label="random: 10th-90th percentile")
    ax1.plot(x, np.median(curves, axis=0), color="tab:blue", lw=2,
             label="random: median of %d seeds" % len(random))
    ax1.plot(x, numbers["lipo_median_curve"], color="tab:green", lw=2,
             label="LIPO: median of %d seeds" % len(lipo))
    ax1.plot(np.arange(1, len(grids[k_max][1]) + 1), grids[k_max][1], "--", color="tab:red",
             label="grid %dx%d in nested order (lr outer)" % (k_max, k_max))
    gk = sorted(grids)
    ax1.plot([k * k for k in gk], [grids[k][2]["val_accuracy"] for k in gk], "s",
             color="tab:red", ms=8, label="complete k x k grids (k = %s)"
             % ", ".join(str(k) for k in gk))
    lo = max(0.5, float(np.percentile(curves, 10, axis=0)[min(2, budget - 1)]) - 0.05)
    ax1.set_ylim(lo, 1.0)
    c.label_axes(ax1, "Best validation accuracy so far", "trials (networks trained)",
                 "validation accuracy (fraction correct)")
    ax1.legend(fontsize="small", loc="lower right")

    grid_trials = grids[k_max][0]
    rand_trials = random[0][0]
    errors = [1 - t["val_accuracy"] for t in grid_trials + rand_trials]
    norm = LogNorm(max(min(errors), 1e-3), 1.0)
    for ts, marker in ((grid_trials, "s"), (rand_trials, "o")):
        sc = ax2.scatter([t["lr"] for t in ts], [t["l2"] for t in ts],
                         c=[max(1 - t["val_accuracy"], norm.vmin) for t in ts],
                         cmap="viridis_r", norm=norm, marker=marker, s=60, edgecolors="black",
                         linewidths=0.5)
    cbar = fig.colorbar(sc, ax=ax2)
    cbar.set_label("validation error, 1 - accuracy (log; yellow = best)")
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    ax2.set_xlim(*LR_RANGE)
    ax2.set_ylim(*L2_RANGE)
    c.label_axes(ax2, "Where the trials went (squares: grid %dx%d, circles: random, seed 0)"
                 % (k_max, k_max), "learning rate (log)", "L2 lambda (log)")
    ax2.title.set_fontsize("small")

    for ts, marker, color, label in ((grid_trials, "s", "tab:red", "grid %dx%d" % (k_max, k_max)),
                                     (rand_trials, "o", "tab:blue", "random (seed 0)")):
        ax3.scatter([t["lr"] for t in ts], [t["val_accuracy"] for t in ts], marker=marker,
                    color=color, alpha=0.7, label=label)
    ax3.set_xscale("log")
    ax3.set_xlim(*LR_RANGE)
    c.label_axes(ax3, "Validation accuracy against learning rate (all lambdas)",
                 "learning rate (log)", "validation accuracy (fraction correct)")
    ax3.legend(fontsize="small", loc="lower center")
    return fig
