"""LIPO's parts (fastnn._lipo) and the search built on them: the fitted upper
bound, its constants, the trust-region step, and the rules of lipo_search."""

import math

import numpy as np
import pytest
import scipy.optimize

from fastnn import _lipo
from fastnn.search import Categorical, Integer, Real, Space, lipo_search


def _points(n, d, seed, noise=0.0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(size=(n, d))
    F = -((X - 0.3) ** 2) @ np.arange(1.0, d + 1) + noise * rng.standard_normal(n)
    return X, F


@pytest.mark.parametrize("n, d, noise", [(2, 1, 0.0), (7, 3, 0.0), (60, 4, 0.05),
                                         (150, 6, 0.0)])
def test_the_bound_lies_above_every_evaluated_point(n, d, noise):
    X, F = _points(n, d, seed=n, noise=noise)
    U = _lipo.UpperBound(X, F)
    assert np.all(U(X) >= F)
    assert np.all(U.m >= 0) and np.all(U.noise >= 0)
    # every pair's constraint: F_j <= F_i + sqrt(noise_i + sum_d m_d (X_jd - X_id)^2)
    sq = (X[None, :, :] - X[:, None, :]) ** 2
    gap = F[None, :] - (F[:, None] + np.sqrt(U.noise[:, None] + sq @ U.m))
    assert gap.max() <= 1e-12


def test_the_constants_are_the_least_that_bound_the_points():
    """The NNLS solution against a general solver of the same quadratic program."""
    X, F = _points(9, 2, seed=3, noise=0.02)
    U = _lipo.UpperBound(X, F)
    span = F.max() - F.min()
    y = (F - F.min()) / span
    rel = _lipo.RELATIVE_NOISE
    n, d = X.shape
    rows = [(i, j) for i in range(n) for j in range(n) if y[j] > y[i]]
    A = np.zeros((len(rows), d + n))
    for r, (i, j) in enumerate(rows):
        A[r, :d] = (X[j] - X[i]) ** 2
        A[r, d + i] = rel
    need = np.array([(y[j] - y[i]) ** 2 for i, j in rows])
    res = scipy.optimize.minimize(
        lambda z: (z @ z, 2 * z), np.ones(d + n), jac=True, method="trust-constr",
        constraints=[scipy.optimize.LinearConstraint(A, need, np.inf)],
        bounds=scipy.optimize.Bounds(0, np.inf), options={"gtol": 1e-12, "xtol": 1e-14,
                                                          "maxiter": 5000})
    assert res.constr_violation < 1e-9
    np.testing.assert_allclose(U.m / span ** 2, res.x[:d], rtol=1e-4, atol=1e-8)
    # the interior-point solver leaves ~1e-7 where the exact optimum has zeros
    np.testing.assert_allclose(U.noise / span ** 2, rel * res.x[d:], rtol=1e-4, atol=3e-7)


def test_each_dimension_gets_its_own_constant():
    """A function 100 times steeper along the first coordinate: the second
    gets a far smaller constant, so it does not inflate the bound along it,
    and the bound is tighter than the best single constant's."""
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(30, 2))
    F = 20.0 * X[:, 0] + 0.2 * X[:, 1]
    U = _lipo.UpperBound(X, F)
    assert U.lipschitz[1] < U.lipschitz[0] / 3
    # one constant: the largest slope between the points, as plain LIPO takes it
    dist = np.sqrt(((X[:, None] - X[None]) ** 2).sum(axis=2))
    k = np.max(np.abs(F[:, None] - F[None])[dist > 0] / dist[dist > 0])
    grid = rng.uniform(size=(2000, 2))
    scalar = np.min(F[None, :] + k * np.sqrt(((grid[:, None] - X[None]) ** 2).sum(axis=2)),
                    axis=1)
    assert np.mean(U(grid)) < np.mean(scalar)


def test_noise_terms_absorb_points_that_no_slope_explains():
    """Two nearly identical inputs with different scores (a noisy objective):
    the noise term explains them, the slopes stay those of the rest."""
    X, F = _points(20, 2, seed=1)
    clean = _lipo.UpperBound(X, F)
    Xn = np.vstack([X, X[:1] + 1e-9])
    Fn = np.append(F, F[0] + 0.5)
    noisy = _lipo.UpperBound(Xn, Fn)
    assert np.all(noisy(Xn) >= Fn)
    assert noisy.lipschitz.max() < 10 * clean.lipschitz.max()
    assert noisy.noise.max() > 0


def test_refitting_from_the_previous_active_set_gives_the_same_bound():
    X, F = _points(80, 3, seed=5)
    first = _lipo.UpperBound(X[:79], F[:79])
    warm = _lipo.UpperBound(X, F, active=first.active)
    cold = _lipo.UpperBound(X, F)
    np.testing.assert_allclose(warm.m, cold.m, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(warm.noise, cold.noise, rtol=1e-6, atol=1e-12)


def test_the_trust_region_reaches_a_quadratic_s_maximum_in_one_step():
    """On an exact quadratic the model is exact: with the maximum inside the
    region, one step lands on it; further away the region grows toward it."""
    rng = np.random.default_rng(2)
    H = np.array([[-2.0, 0.5, 0.0], [0.5, -1.0, 0.2], [0.0, 0.2, -3.0]])
    top = np.array([0.55, 0.45, 0.6])

    def f(x):
        s = x - top
        return 0.5 * np.einsum("ij,jk,ik->i", s, H, s)
    X = top + rng.uniform(-0.05, 0.05, (12, 3))
    region = _lipo.TrustRegion()
    center = X[np.argmax(f(X))]
    x = region.propose(X, f(X), center, np.ones(3, bool))
    np.testing.assert_allclose(x, top, atol=1e-7)
    # far from the maximum: the steps gain, the region grows, and the maximum is reached
    X = np.array([0.1, 0.1, 0.1]) + rng.uniform(-0.02, 0.02, (12, 3))
    region, steps = _lipo.TrustRegion(), 0
    while steps < 8:
        F = f(X)
        center = X[np.argmax(F)]
        x = region.propose(X, F, center, np.ones(3, bool))
        steps += 1
        gain = f(x[None])[0] - F.max()
        region.update(gain, x)
        X = np.vstack([X, x])
        if np.allclose(x, top, atol=1e-6):
            break
    assert np.allclose(X[-1], top, atol=1e-6), (steps, X[-1])
    assert steps <= 6


def _rosen(p):
    x = np.array([p["a"], p["b"], p["c"]])
    return float(np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2))


ROSEN = {"a": Real(-2.0, 2.0), "b": Real(-2.0, 2.0), "c": Real(-2.0, 2.0)}


def test_lipo_is_deterministic_with_a_seed():
    a = lipo_search(_rosen, ROSEN, 25, seed=4, minimize=True)
    b = lipo_search(_rosen, ROSEN, 25, seed=4, minimize=True)
    c = lipo_search(_rosen, ROSEN, 25, seed=5, minimize=True)
    assert [t["params"] for t in a.trials] == [t["params"] for t in b.trials]
    assert [t["params"] for t in a.trials] != [t["params"] for t in c.trials]


def test_lipo_converges_on_a_smooth_bowl():
    bowl = {"x": Real(-3.0, 5.0), "y": Real(-3.0, 5.0), "z": Real(-3.0, 5.0)}

    def f(p):
        return (p["x"] - 1.2) ** 2 + 2 * (p["y"] + 0.7) ** 2 + 0.5 * (p["z"] - 3.1) ** 2
    res = lipo_search(f, bowl, 60, seed=0, minimize=True)
    assert res.best_score < 1e-6
    assert {"explore", "bound", "local"} <= {t["step"] for t in res.trials}


def test_trial_records_follow_the_bound_rule():
    """A bound step's U is the bound of the points before it, at least the best
    score so far; the constants recorded are those of that bound."""
    res = lipo_search(_rosen, ROSEN, 30, seed=1, minimize=True)
    space = Space(ROSEN)
    X = np.array([space.encode(t["params"]) for t in res.trials])
    F = -np.array([t["score"] for t in res.trials])  # maximized internally
    assert len(res.lipschitz) == 30
    for i, t in enumerate(res.trials):
        if t["step"] != "bound":
            continue
        U = _lipo.UpperBound(X[:i], F[:i])
        assert -t["upper_bound"] > F[:i].max()
        np.testing.assert_allclose(-t["upper_bound"], U(X[i][None])[0], rtol=1e-6)
        np.testing.assert_allclose(t["lipschitz"], U.lipschitz, rtol=1e-6, atol=1e-9)
        assert t["best_before"] == -F[:i].max()


def test_integer_and_categorical_dimensions_give_valid_distinct_points():
    space = {"n": Integer(1, 6), "kind": Categorical(["a", "b", "c"]), "x": Real(0.0, 1.0)}

    def f(p):
        return -abs(p["n"] - 4) - {"a": 1.0, "b": 0.0, "c": 2.0}[p["kind"]] - (p["x"] - 0.3) ** 2
    res = lipo_search(f, space, 40, seed=0)
    assert res.best_params["n"] == 4 and res.best_params["kind"] == "b"
    assert abs(res.best_params["x"] - 0.3) < 0.05
    seen = [tuple(sorted(t["params"].items())) for t in res.trials]
    assert len(set(seen)) == len(seen)  # no point is evaluated twice


def test_non_finite_scores_rank_last_and_stay_out_of_the_bound():
    def f(p):
        return math.nan if p["x"] > 0.5 else -(p["x"] - 0.2) ** 2
    res = lipo_search(f, {"x": Real(0.0, 1.0)}, 30, seed=3)
    assert math.isfinite(res.best_score) and abs(res.best_params["x"] - 0.2) < 0.05
    failed = [t for t in res.trials if not math.isfinite(t["score"])]
    assert failed and all(res.best_score > -1 for t in failed)
    # the constants are fitted to the finite points only
    finite = [t for t in res.trials if math.isfinite(t["score"])]
    X = np.array([[t["params"]["x"]] for t in finite])
    F = np.array([t["score"] for t in finite])
    np.testing.assert_allclose(res.lipschitz[-1], _lipo.UpperBound(X, F).lipschitz, rtol=1e-6)
