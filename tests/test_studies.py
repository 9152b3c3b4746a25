"""fastnn.studies: every study in quick mode writes its files, and its numbers
support the lesson it illustrates."""

import json
import math
import os

import numpy as np
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("sklearn")

from fastnn import studies  # noqa: E402
from fastnn.studies.__main__ import main  # noqa: E402

NAMES = ["standardization", "initialization", "activations", "optimizers", "regularization",
         "clipping", "search"]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Each study run once, in quick mode, into its own directory."""
    cache = {}

    def get(name):
        if name not in cache:
            out = tmp_path_factory.mktemp(name)
            cache[name] = studies.run(name, out=str(out), quick=True, seed=0)
        return cache[name]

    return get


def test_registry_lists_every_study():
    assert list(studies.STUDIES) == NAMES
    for name in NAMES:
        assert callable(getattr(studies, name).run)
    with pytest.raises(ValueError, match="unknown study"):
        studies.run("dropout", quick=True)


@pytest.mark.parametrize("name", NAMES)
def test_study_writes_figure_numbers_and_curves(results, name):
    result = results(name)
    files = result["files"]
    with open(files["png"], "rb") as f:
        head = f.read(8)
    assert head == b"\x89PNG\r\n\x1a\n"
    assert 5_000 < os.path.getsize(files["png"]) < 200_000
    with open(files["json"]) as f:
        assert json.load(f) == result  # the returned dict is what was written
    with open(files["csv"]) as f:
        lines = f.read().splitlines()
    assert len(lines) > 10 and "," in lines[0]
    assert result["study"] == name and result["quick"] is True
    assert len(result["summary"]) > 200 and "\n" not in result["summary"]


def test_standardization_reaches_the_target_in_fewer_epochs(results):
    r = results("standardization")
    reach, final = r["epochs_to_target"], r["final_loss"]
    # standardized inputs reach the target loss at more learning rates, and
    # never later than raw inputs at the same learning rate
    assert sum(e is not None for e in reach["standardized"]) >= 2
    assert sum(e is not None for e in reach["standardized"]) > \
        sum(e is not None for e in reach["raw"])
    for std, raw in zip(reach["standardized"], reach["raw"]):
        if raw is not None:
            assert std is not None and std < raw
    assert r["best_epochs_to_target"]["standardized"] <= 10
    # and end lower at every learning rate
    assert all(s < w for s, w in zip(final["standardized"], final["raw"]))
    assert min(final["standardized"]) < 0.5 * min(final["raw"])


def test_initialization_shows_symmetry_vanishing_and_exploding(results):
    r = results("initialization")
    var, grad = r["act_var_start"], r["grad_norm_start"]
    # zeros: every hidden activation is 0, one distinct unit, the loss stays at ln 10
    for act in ("tanh", "relu"):
        assert all(v == 0 for v in var[act]["zeros"])
        assert r["distinct_units_layer1_end"][act]["zeros"] == 1
        assert r["loss_end"][act]["zeros"] == pytest.approx(math.log(10), abs=0.05)
        assert r["distinct_units_layer1_end"][act]["he"] == 64
    # relu: N(0, 1) explodes, xavier vanishes, he stays within a band
    assert var["relu"]["normal"][-1] / var["relu"]["normal"][0] > 1e6
    assert var["relu"]["xavier"][0] / var["relu"]["xavier"][-1] > 100
    assert r["act_var_max_over_min_start"]["relu"]["he"] < 10
    assert r["diverged"]["relu"]["normal"]
    # tanh: N(0, 1) saturates every layer and the gradient grows towards the input;
    # xavier and he keep the gradient norm the same at every depth
    assert min(var["tanh"]["normal"]) > 0.8
    assert r["grad_norm_first_over_last_start"]["tanh"]["normal"] > 100
    for init in ("xavier", "he"):
        g = grad["tanh"][init]
        assert max(g) / min(g) < 5
    # after training: he trains the relu network, xavier barely moves it
    assert r["loss_end"]["relu"]["he"] < 1.0 < r["loss_end"]["relu"]["xavier"]
    assert r["loss_end"]["tanh"]["xavier"] < r["loss_end"]["tanh"]["normal"]


def test_activations_speed_and_dead_units(results):
    r = results("activations")
    speed, dead = r["speed"], r["dead_units"]
    e = speed["epochs_to_target_mean"]
    # sigmoid in a 4-layer network barely learns with plain SGD; relu and tanh do
    assert e["sigmoid"] is None and e["relu"] is not None and e["tanh"] is not None
    assert speed["final_loss_mean"]["sigmoid"] > 10 * speed["final_loss_mean"]["relu"]
    # relu units die as the Adam learning rate grows, and dead relu units get no gradient
    relu_dead = dead["dead_fraction_mean"]["relu"]
    assert relu_dead[-1] > 0.1 and relu_dead[-1] > 2 * relu_dead[0]
    assert dead["stuck_fraction_mean"]["relu"][-1] > 0.1
    # leaky_relu keeps a gradient everywhere; sigmoid and softplus are never "dead"
    assert dead["stuck_fraction_mean"]["leaky_relu"] == [0.0] * len(dead["learning_rates"])
    for act in ("sigmoid", "softplus"):
        assert dead["dead_fraction_mean"][act] == [0.0] * len(dead["learning_rates"])


def test_optimizers_start_equal_and_need_different_learning_rates(results):
    r = results("optimizers")
    initial = set(r["initial_loss"].values())
    assert len(initial) == 1  # the same initial weights for every optimizer
    start = initial.pop()
    for name, final in r["final_loss_best"].items():
        assert final < start / 50, name
        assert r["microseconds_per_step_best"][name] > 0
    best = r["best_lr"]
    for plain in ("sgd", "momentum"):
        for adaptive in ("rmsprop", "adam", "adamw"):
            assert best[plain] >= 10 * best[adaptive]


def test_regularization_narrows_the_gap(results):
    r = results("regularization")
    train, val = r["final_train_loss"], r["final_val_loss"]
    # unregularized: the training loss goes to ~0 while validation loss climbs
    assert train["none"] < 0.01
    assert val["none"] > 1.3 * r["min_val_loss"]["none"]
    # the best L2 and the best dropout end with a lower validation loss
    assert val[r["best_l2"]] < 0.8 * val["none"]
    assert val[r["best_dropout"]] < 0.8 * val["none"]
    # L2 raises the training loss monotonically with lambda, and shrinks the gap
    l2_names = sorted((n for n, c in r["configs"].items() if c["l2"]),
                      key=lambda n: r["configs"][n]["l2"])
    losses = [train["none"]] + [train[n] for n in l2_names]
    assert losses == sorted(losses)
    assert r["final_gap"][l2_names[-1]] < r["final_gap"]["none"] / 3


def test_clipping_turns_a_nan_run_into_a_finite_one(results):
    r = results("clipping")
    stop = r["nonfinite_at_step"]
    assert stop["no clipping"] is not None and stop["no clipping"] <= 10
    assert r["max_grad_norm"]["no clipping"] > 1e3 * r["first_grad_norm"]["no clipping"]
    clipped = [name for name, s in r["settings"].items() if s["clip_norm"]]
    assert len(clipped) >= 2
    for name in clipped:
        assert stop[name] is None, name
        assert r["final_loss"][name] is not None and np.isfinite(r["final_loss"][name])
        assert r["steps_clipped"][name] >= 1
    tightest = min(clipped, key=lambda n: r["settings"][n]["clip_norm"])
    assert r["final_loss"][tightest] < 0.6 * r["initial_loss"][tightest]
    assert r["final_r2"][tightest] > 0.3


def test_search_grid_against_random(results):
    r = results("search")
    k = int(math.isqrt(r["budget"]))
    assert r["grid_distinct_lr"] == k and r["random_distinct_lr"] == r["budget"]
    curve = r["random_median_curve"]
    assert len(curve) == r["budget"] and curve == sorted(curve)  # best so far never drops
    grid = r["grid_best"]["%dx%d" % (k, k)]
    assert grid["val_accuracy"] >= 0.9
    assert r["random_best_min"] >= 0.85
    assert r["worst_trial_val_accuracy"] < 0.7  # a bad setting exists: the search matters
    assert abs(grid["test_accuracy"] - grid["val_accuracy"]) < 0.05
    assert 1e-3 <= grid["lr"] <= 1e-1


def test_command_line(tmp_path, capsys):
    assert main(["clipping", "--quick", "--out", str(tmp_path), "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "clipping" in out and "clip_norm" in out
    for ext in ("png", "json", "csv"):
        assert (tmp_path / ("clipping." + ext)).exists()
    with pytest.raises(SystemExit):
        main(["nonsense"])
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    help_text = capsys.readouterr().out
    assert "standardization" in help_text and "--quick" in help_text
    assert "search_strategies" in help_text


def test_search_strategies_command(tmp_path, capsys):
    assert main(["search_strategies", "--quick", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    with open(tmp_path / "search_strategies.json") as f:
        r = json.load(f)
    assert r["table"] in out and r["table"].startswith("| problem | strategy | median best |")
    assert (tmp_path / "search_strategies.png").exists()
    with open(tmp_path / "search_strategies.csv") as f:
        assert f.readline().strip() == "problem,strategy,seed,trial,best_so_far"
    n_seeds = len(r["seeds"])
    for problem, ceiling in (("holder", 19.2086), ("quadratic", 0.0), ("digits", 1.0)):
        best = r["best"][problem]
        assert sorted(best) == ["grid", "lipo", "random"]
        assert len(best["grid"]["best"]) == 1 and r["grid_points"][problem] <= r["n_trials"]
        for strategy in ("random", "lipo"):
            runs = best[strategy]["best"]
            assert len(runs) == n_seeds and best[strategy]["median"] == np.median(runs)
        assert all(b <= ceiling for s in best.values() for b in s["best"]), problem
    # not a lesson of the specification: "all" leaves it out
    assert "search_strategies" not in studies.STUDIES
