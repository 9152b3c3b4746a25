"""fastnn.search: dimensions, grid / random / LIPO search, results and adapters."""

import math

import numpy as np
import pytest

from fastnn.search import (Categorical, Integer, Real, SearchResult, Space, grid_points,
                           grid_search, lipo_search, model_objective, random_search, search,
                           sklearn_objective)
from fastnn.studies.search_strategies import (holder_table, shifted_quadratic, HOLDER_SPACE,
                                              QUADRATIC_OPTIMUM, QUADRATIC_SPACE)


def _sphere(params):
    return -(params["x"] - 0.3) ** 2 - (params["y"] + 0.2) ** 2


SPHERE = {"x": Real(-1.0, 1.0), "y": Real(-1.0, 1.0)}


# ------------------------------------------------------------------ dimensions


def test_real_log_sampling_is_log_uniform_and_in_bounds():
    d = Real(1e-4, 1.0, log=True)
    v = np.array(d.sample(np.random.default_rng(0), 4000))
    assert v.min() >= 1e-4 and v.max() <= 1.0
    # each decade gets about a quarter of the draws
    counts = np.histogram(np.log10(v), bins=[-4, -3, -2, -1, 0])[0] / len(v)
    assert np.all(np.abs(counts - 0.25) < 0.04)
    assert d.decode(d.encode(3e-3)) == pytest.approx(3e-3)


def test_integer_sampling_rounds_and_covers_the_range():
    d = Integer(2, 6)
    v = d.sample(np.random.default_rng(1), 500)
    assert all(isinstance(x, int) for x in v)
    assert set(v) == {2, 3, 4, 5, 6}
    assert d.decode(np.array([0.49])) == 4 and d.decode(np.array([1.2])) == 6
    lg = Integer(1, 1000, log=True).sample(np.random.default_rng(2), 2000)
    assert min(lg) >= 1 and max(lg) <= 1000 and np.median(lg) < 100  # log-uniform median ~32


def test_categorical_sampling_and_one_hot_encoding():
    d = Categorical(["relu", "tanh", 3])
    v = d.sample(np.random.default_rng(0), 300)
    assert set(v) == {"relu", "tanh", 3}
    a, b = d.encode("relu"), d.encode(3)
    assert np.linalg.norm(a - b) == pytest.approx(1.0)  # same scale as a numeric range
    assert d.decode(b) == 3


@pytest.mark.parametrize("make, match", [
    (lambda: Real(1.0, 1.0), "low must be below high"),
    (lambda: Real(2.0, 1.0), "low must be below high"),
    (lambda: Real(0.0, 1.0, log=True), "log=True needs low > 0"),
    (lambda: Real(0.0, math.inf), "finite"),
    (lambda: Integer(0.5, 3), "whole number"),
    (lambda: Categorical([]), "at least one choice"),
    (lambda: Categorical("abc"), "list of choices"),
    (lambda: Categorical(["a", "a"]), "twice"),
    (lambda: Real(-1e308, 1e308), "high - low must be a finite number"),
    (lambda: Integer(0, 2**64), "within int64"),
])
def test_bad_dimensions_raise_clear_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_space_errors():
    with pytest.raises(ValueError, match="empty"):
        Space({})
    with pytest.raises(TypeError, match="Real, Integer or Categorical"):
        Space({"lr": (1e-3, 1.0)})
    with pytest.raises(ValueError, match="unknown search strategy 'bayes'"):
        search(_sphere, SPHERE, "bayes", 5)
    with pytest.raises(ValueError, match="n_trials"):
        random_search(_sphere, SPHERE, 0)
    with pytest.raises(TypeError, match="must return a number"):
        random_search(lambda p: "bad", SPHERE, 2)


# ------------------------------------------------------------------ grid and random


def test_grid_covers_the_grid():
    space = {"lr": Real(1e-3, 1.0, log=True), "n": Integer(1, 3), "act": Categorical(["a", "b"])}
    res = grid_search(lambda p: p["n"], space, n_points_per_dim=3)
    lrs = sorted({t["params"]["lr"] for t in res.trials})
    assert lrs == pytest.approx([10 ** -2.5, 10 ** -1.5, 10 ** -0.5])  # log cell centres
    combos = {(t["params"]["lr"], t["params"]["n"], t["params"]["act"]) for t in res.trials}
    assert len(res.trials) == len(combos) == 3 * 3 * 2
    assert res.best_score == 3 and res.best_params["n"] == 3


def test_grid_budget_fits_and_errors():
    assert len(grid_points(SPHERE, budget=30)) == 30          # 6 x 5
    assert len(grid_points({**SPHERE, "z": Real(0, 1)}, budget=30)) == 27
    assert len(grid_points({"k": Integer(1, 4)}, budget=100)) == 4
    with pytest.raises(ValueError, match="exactly one"):
        grid_points(SPHERE)
    with pytest.raises(ValueError, match="more than the budget"):
        grid_points({"c": Categorical(list(range(10)))}, budget=5)


def test_random_search_is_reproducible_from_the_seed():
    a = random_search(_sphere, SPHERE, 12, seed=3)
    b = random_search(_sphere, SPHERE, 12, seed=3)
    c = random_search(_sphere, SPHERE, 12, seed=4)
    assert [t["params"] for t in a.trials] == [t["params"] for t in b.trials]
    assert [t["params"] for t in a.trials] != [t["params"] for t in c.trials]
    assert a.best_score == max(t["score"] for t in a.trials)


def test_a_seed_is_none_or_a_non_negative_integer():
    for strategy in (random_search, lipo_search):
        with pytest.raises(ValueError, match="seed must be None or an integer >= 0, got -1"):
            strategy(_sphere, SPHERE, 3, seed=-1)


def test_minimize_flag():
    with pytest.raises(TypeError, match="minimize must be True or False, got 'false'"):
        random_search(lambda p: p["x"] ** 2, SPHERE, 20, seed=0, minimize="false")
    res = random_search(lambda p: p["x"] ** 2, SPHERE, 20, seed=0, minimize=True)
    assert res.best_score == min(t["score"] for t in res.trials)
    assert res.best_so_far() == sorted(res.best_so_far(), reverse=True)


# ------------------------------------------------------------------ LIPO


def _decades_from_optimum(params):
    return math.sqrt(sum((math.log10(params[k]) - math.log10(v)) ** 2
                         for k, v in QUADRATIC_OPTIMUM.items()))


def test_lipo_finds_the_shifted_log_quadratic_and_beats_random():
    lipo = [lipo_search(shifted_quadratic, QUADRATIC_SPACE, 40, seed=s) for s in range(5)]
    rand = [random_search(shifted_quadratic, QUADRATIC_SPACE, 40, seed=s) for s in range(5)]
    # each range spans 5 decades; 0.3 decades is 6% of it
    assert all(_decades_from_optimum(r.best_params) < 0.3 for r in lipo)
    assert np.median([r.best_score for r in lipo]) > np.median([r.best_score for r in rand])


def test_lipo_on_holder_table():
    best = [lipo_search(holder_table, HOLDER_SPACE, 60, seed=s).best_score for s in range(6)]
    assert max(best) <= 19.2086
    assert sum(b > 17 for b in best) >= 4, best


def test_lipo_minimize_and_categorical():
    space = {"x": Real(-1.0, 1.0), "kind": Categorical(["a", "b", "c"])}

    def f(p):
        return (p["x"] - 0.5) ** 2 + {"a": 1.0, "b": 0.0, "c": 2.0}[p["kind"]]
    res = lipo_search(f, space, 30, seed=0, minimize=True)
    assert res.best_params["kind"] == "b" and res.best_score < 0.05
    assert all(t["params"]["kind"] in "abc" for t in res.trials)


def test_n_jobs_2_gives_all_trials_and_valid_results():
    for strategy in ("random", "lipo"):
        res = search(_sphere, SPHERE, strategy, 10, seed=0, n_jobs=2)
        assert len(res.trials) == 10 and [t["trial"] for t in res.trials] == list(range(10))
        assert all(-1 <= t["params"]["x"] <= 1 for t in res.trials)
        assert all(t["score"] == pytest.approx(_sphere(t["params"])) for t in res.trials)
        assert res.best_score == max(t["score"] for t in res.trials)
    assert len(grid_search(_sphere, SPHERE, n_points_per_dim=3, n_jobs=2).trials) == 9


# ------------------------------------------------------------------ results


def test_result_table_csv_and_plot(tmp_path):
    res = lipo_search(_sphere, SPHERE, 8, seed=0)
    rows = res.table()
    assert rows[0] == ["trial", "strategy", "step", "x", "y", "score", "best_so_far",
                       "seconds"]
    assert len(rows) == 9 and rows[-1][6] == res.best_score
    assert "best_so_far" in res.format_table()
    res.to_csv(tmp_path / "r.csv")
    assert (tmp_path / "r.csv").read_text().count("\n") == 9
    fig = res.plot(tmp_path / "r.png")
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ax = fig.axes[0]
    assert ax.get_title() and ax.get_xlabel() == "trial" and ax.get_ylabel()
    assert ax.get_legend() is not None


@pytest.mark.parametrize("seed", range(4))
def test_lipo_steers_away_from_where_trials_fail(seed):
    # half the range fails (a learning rate that diverges): its points count at the
    # worst finite score in the bound, which would otherwise stay highest over them
    # and draw nearly every trial (23 of 25 here)
    def score(p):
        return math.nan if p["lr"] > 1.0 else -(math.log10(p["lr"]) + 1.0) ** 2
    res = lipo_search(score, {"lr": Real(1e-4, 10.0, log=True)}, 25, seed=seed)
    assert sum(math.isnan(t["score"]) for t in res.trials) <= 5
    assert res.best_score > -0.01


def test_lipo_goes_on_when_the_scores_spread_beyond_squaring():
    # a spread of 1e160 cannot be squared in float64: the bound is left flat and
    # the search explores, keeping the trials it has
    res = lipo_search(lambda p: 1e160 if p["x"] > 0.5 else -p["x"] ** 2, SPHERE, 12, seed=0)
    assert len(res.trials) == 12 and res.best_score == 1e160


def test_non_finite_scores_rank_last():
    res = random_search(lambda p: math.nan if p["x"] > 0 else p["x"], SPHERE, 20, seed=0)
    assert math.isfinite(res.best_score) and res.best_params["x"] <= 0
    empty = SearchResult([], False, "random", Space(SPHERE))
    assert empty.best_params is None and math.isnan(empty.best_score)


# ------------------------------------------------------------------ adapters


def test_model_objective_on_digits():
    pytest.importorskip("sklearn")
    import fastnn as fn
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    X, y = X[:400].astype(np.float64), y[:400]

    def build(params):
        model = fn.Sequential([fn.Dense(16, activation="relu"),
                               fn.Dense(10, activation="softmax")], input_dim=64, seed=0)
        return model, {"optimizer": fn.optim.Adam(lr=params["lr"]), "l2": params["l2"]}
    objective = model_objective(build, X, y, validation_split=0.25, epochs=3, batch_size=32,
                                on_nonfinite="warn")
    space = {"lr": Real(1e-3, 0.1, log=True), "l2": Real(1e-4, 1.0, log=True)}
    res = lipo_search(objective, space, 6, seed=0)
    assert len(res.trials) == 6

    # each score is that of the model built from the trial's parameters, fitted
    # on the shuffled 300 rows (standardized with their statistics) and scored
    # on the other 100
    perm = np.random.default_rng(0).permutation(400)
    scaler = fn.Standardizer().fit(X[perm[100:]])
    X_tr, X_val = scaler.transform(X[perm[100:]]), scaler.transform(X[perm[:100]])
    for trial in res.trials:
        model, kwargs = build(trial["params"])
        model.fit(X_tr, y[perm[100:]], epochs=3, batch_size=32, **kwargs)
        assert trial["score"] == model.evaluate(X_val, y[perm[:100]])["accuracy"], trial
    # and the parameters matter: a step size 100 times smaller scores lower
    fast = objective({"lr": 0.1, "l2": 1e-4})
    assert objective({"lr": 1e-3, "l2": 1e-4}) < fast
    assert res.best_score > 0.5
    with pytest.raises(ValueError, match="metric"):
        model_objective(build, X, y, metric="f1")


def test_ctrl_c_in_a_trial_stops_the_search():
    # fit returns on Ctrl-C with the model of its last step: the search must not
    # score that half-trained model as a trial and go on
    import os
    import signal
    import fastnn as fn
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 4))
    y = X[:, 0] - X[:, 1]
    calls = []

    class CtrlC(fn.Callback):
        def on_epoch_end(self, epoch, logs):
            if epoch == 1:
                os.kill(os.getpid(), signal.SIGINT)

    def build(params):
        calls.append(params)
        model = fn.Sequential([fn.Dense(8, activation="tanh"), fn.Dense(1)], input_dim=4,
                              seed=0)
        return model, {"optimizer": fn.optim.Adam(lr=params["lr"]), "loss": "mse",
                       "callbacks": [CtrlC()]}
    objective = model_objective(build, X, y, epochs=20, batch_size=20)
    with pytest.warns(RuntimeWarning, match="training interrupted"):
        with pytest.raises(KeyboardInterrupt):
            lipo_search(objective, {"lr": Real(1e-3, 1e-1, log=True)}, 5, seed=0)
    assert len(calls) == 1


@pytest.mark.parametrize("labels", ["int", "str", "bool"])
def test_a_diverged_trial_scores_the_failure_score(labels):
    # a trial whose fit diverges scores 0.0 on accuracy whatever the labels are,
    # NaN on the other metrics, or failure_score when given
    import fastnn as fn
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 4))
    y_int = (X[:, 0] > 0).astype(int)
    y = {"int": y_int, "str": np.where(y_int, "yes", "no"), "bool": y_int.astype(bool)}[labels]

    def build(params):
        model = fn.Sequential([fn.Dense(8, activation="relu"), fn.Dense(2, activation="softmax")],
                              input_dim=4, seed=0)
        return model, {"optimizer": fn.optim.SGD(lr=params["lr"])}
    objective = model_objective(build, X, y, epochs=3, batch_size=16)
    assert objective({"lr": 0.1}) > 0.5
    assert objective({"lr": 1e6}) == 0.0
    assert math.isnan(model_objective(build, X, y, metric="neg_loss", epochs=3)({"lr": 1e6}))
    assert model_objective(build, X, y, failure_score=-1.0, epochs=3)({"lr": 1e6}) == -1.0

    def build_regressor(params):
        return fn.Sequential([fn.Dense(1)], input_dim=4, seed=0), {
            "optimizer": fn.optim.SGD(lr=params["lr"]), "loss": "mse"}
    diverged = model_objective(build_regressor, X, X[:, 0] * 1e3, epochs=3)({"lr": 1e6})
    assert math.isnan(diverged)


def test_sklearn_objective_with_logistic_regression():
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    X, y = load_iris(return_X_y=True)
    objective = sklearn_objective(LogisticRegression(max_iter=500), X, y, cv=3)
    res = random_search(objective, {"C": Real(1e-4, 1e2, log=True)}, 5, seed=0)
    assert all(0.0 <= t["score"] <= 1.0 for t in res.trials)
    assert res.best_score > 0.9
    small = objective({"C": 1e-4})
    assert small < res.best_score  # heavy regularization hurts, so the params reached the model
    with pytest.raises(TypeError):
        sklearn_objective(object(), X, y)


def test_search_study_includes_lipo(tmp_path):
    pytest.importorskip("matplotlib")
    pytest.importorskip("sklearn")
    from fastnn import studies
    r = studies.run("search", out=str(tmp_path), quick=True, seed=0)
    curve = r["lipo_median_curve"]
    assert len(curve) == r["budget"] and curve == sorted(curve)
    assert r["lipo_best_min"] >= 0.85 and len(r["lipo_test_accuracy"]) == 5
    assert "LIPO" in r["summary"]
