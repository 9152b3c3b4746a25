"""LIPO's parts (fastnn._lipo) and the search built on them: the fitted upper
bound, its constants, the trust-region step, and the rules of lipo_search."""

import math

import numpy as np
import pytest
import scipy.linalg
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
    # the interior-point solver leaves ~1e-4 in its variables z (noise = rel * z)
    # where the exact optimum has zeros
    np.testing.assert_allclose(U.noise / span ** 2, rel * res.x[d:], rtol=1e-4, atol=rel * 3e-4)


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


def test_the_noise_weight_is_read_from_the_module_at_each_fit(monkeypatch):
    """bench/lipo_compare.py measures other noise weights by setting
    _lipo.RELATIVE_NOISE: a fit without an explicit weight must use it."""
    X, F = _points(20, 2, seed=1, noise=0.05)
    default = _lipo.UpperBound(X, F)
    larger = 10 * _lipo.RELATIVE_NOISE
    monkeypatch.setattr(_lipo, "RELATIVE_NOISE", larger)
    patched = _lipo.UpperBound(X, F)
    explicit = _lipo.UpperBound(X, F, relative_noise=larger)
    np.testing.assert_array_equal(patched.m, explicit.m)
    np.testing.assert_array_equal(patched.noise, explicit.noise)
    # a weight 10 times larger makes noise cheaper: more of the gaps go to noise
    assert patched.noise.sum() > default.noise.sum()


def test_refitting_from_the_previous_active_set_gives_the_same_bound():
    X, F = _points(80, 3, seed=5)
    first = _lipo.UpperBound(X[:79], F[:79])
    warm = _lipo.UpperBound(X, F, active=first.active)
    cold = _lipo.UpperBound(X, F)
    np.testing.assert_allclose(warm.m, cold.m, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(warm.noise, cold.noise, rtol=1e-6, atol=1e-12)


def _quadratic(H, top):
    def f(x):
        s = x - top
        return 0.5 * np.einsum("ij,jk,ik->i", s, H, s)
    return f


H3 = np.array([[-2.0, 0.5, 0.0], [0.5, -1.0, 0.2], [0.0, 0.2, -3.0]])


def test_the_trust_region_reaches_a_quadratic_s_maximum_in_one_step():
    """On an exact quadratic the model is exact: with the maximum inside the
    region, one step lands on it; further away the region grows toward it."""
    rng = np.random.default_rng(2)
    top = np.array([0.55, 0.45, 0.6])
    f = _quadratic(H3, top)
    X = top + rng.uniform(-0.05, 0.05, (12, 3))
    x = _lipo.TrustRegion().propose(X, f(X), np.ones(3, bool))
    np.testing.assert_allclose(x, top, atol=1e-7)
    # far from the maximum: the steps gain, the region grows, and the maximum is reached
    X = np.array([0.1, 0.1, 0.1]) + rng.uniform(-0.02, 0.02, (12, 3))
    region, steps = _lipo.TrustRegion(), 0
    while steps < 8:
        F = f(X)
        x = region.propose(X, F, np.ones(3, bool))
        steps += 1
        region.update(f(x[None])[0] - F.max())
        X = np.vstack([X, x])
        if np.allclose(x, top, atol=1e-6):
            break
    assert np.allclose(X[-1], top, atol=1e-6), (steps, X[-1])
    assert steps <= 6


def test_the_model_interpolates_with_the_least_curved_hessian():
    """With fewer points than terms the model passes through every point, and
    its Hessian has the least Frobenius norm among such quadratics: adding any
    quadratic that vanishes at the points makes it larger."""
    rng = np.random.default_rng(4)
    S = rng.uniform(-0.2, 0.2, (6, 3))
    F = rng.standard_normal(6)
    c, g, H = _lipo.quadratic_model(S, F)
    # a solve of a 10 x 10 system with entries from 1e-6 to 1: rounding only
    np.testing.assert_allclose(c + S @ g + 0.5 * np.einsum("ij,jk,ik->i", S, H, S), F,
                               atol=1e-10)
    np.testing.assert_allclose(H, H.T, atol=1e-12)
    # quadratics (c', g', H') zero at every point: the null space of the interpolation map
    a, b = np.triu_indices(3)
    A = np.hstack([np.ones((6, 1)), S, 0.5 * S[:, a] * S[:, b] * np.where(a == b, 1.0, 2.0)])
    null = scipy.linalg.null_space(A)
    for v in null.T:
        D = np.zeros((3, 3))
        D[a, b] = v[4:]
        D = D + D.T - np.diag(np.diag(D))
        assert np.sum((H + 0.1 * D) ** 2) > np.sum(H ** 2)
    # with as many points as terms, an exact quadratic is recovered
    S = rng.uniform(-0.2, 0.2, (10, 3))
    c, g, H = _lipo.quadratic_model(S, 0.5 * np.einsum("ij,jk,ik->i", S, H3, S) + S @ [1, 2, 3])
    # quadratic terms of offsets <= 0.2 are <= 0.04: rounding grows by ~1/0.04^2
    np.testing.assert_allclose(H, H3, atol=1e-9)
    np.testing.assert_allclose(g, [1, 2, 3], atol=1e-9)


def test_far_points_do_not_shape_the_local_model():
    """Points beyond twice the radius with very bad scores, though among the
    nearest to the incumbent, leave the proposed step unchanged."""
    rng = np.random.default_rng(6)
    f = _quadratic(H3, np.array([0.42, 0.41, 0.4]))  # within the region
    X = np.array([0.4, 0.4, 0.4]) + rng.uniform(-0.03, 0.03, (10, 3))
    region = _lipo.TrustRegion()
    region.radius = 0.05
    near = region.propose(X, f(X), np.ones(3, bool))
    Xf = np.vstack([X, [[0.95, 0.05, 0.95], [0.05, 0.95, 0.05]]])
    Ff = np.append(f(X), [-1e4, -1e4])
    region = _lipo.TrustRegion()
    region.radius = 0.05
    far = region.propose(Xf, Ff, np.ones(3, bool))
    # the exact model's maximum, to L-BFGS-B's stopping tolerance
    np.testing.assert_allclose(near, [0.42, 0.41, 0.4], atol=1e-7)
    np.testing.assert_allclose(far, near, atol=1e-12)


def test_the_radius_halves_doubles_converges_and_restarts():
    rng = np.random.default_rng(8)
    top = np.array([0.5, 0.5])
    f = _quadratic(-np.eye(2), top)
    X = np.array([0.2, 0.2]) + rng.uniform(-0.02, 0.02, (8, 2))
    region = _lipo.TrustRegion()
    assert region.propose(X, f(X), np.ones(2, bool)) is not None
    r = region.radius
    assert region._at_edge  # the maximum lies beyond the region
    region.update(0.5 * region.predicted)  # gains enough, at the edge: doubles
    assert region.radius == 2 * r
    region.propose(X, f(X), np.ones(2, bool))
    region.update(0.2 * region.predicted)  # gains too little: halves
    assert region.radius == r
    region.propose(X, f(X), np.ones(2, bool))
    region.update(-1.0)  # loses: halves
    assert region.radius == r / 2
    while region.radius > _lipo.MIN_RADIUS:
        assert region.propose(X, f(X), np.ones(2, bool)) is not None
        region.update(-1.0)
    assert region.propose(X, f(X), np.ones(2, bool)) is None  # converged
    region.moved(0.5 * region.radius)  # a better point close by: still converged
    assert region.propose(X, f(X), np.ones(2, bool)) is None
    region.moved(0.3)  # a better point far away: a new neighbourhood
    assert region.propose(X, f(X), np.ones(2, bool)) is not None
    assert region.radius > _lipo.MIN_RADIUS


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


def test_lipo_starts_at_the_centre_of_the_space():
    space = {"lr": Real(1e-4, 1.0, log=True), "x": Real(-3.0, 5.0), "n": Integer(1, 9),
             "kind": Categorical(["a", "b"])}
    res = lipo_search(lambda p: p["x"], space, 3, seed=0)
    first = res.trials[0]
    assert first["step"] == "centre"
    assert first["params"]["lr"] == pytest.approx(1e-2, rel=1e-12)  # the middle in log space
    assert first["params"]["x"] == pytest.approx(1.0, rel=1e-12)
    assert first["params"]["n"] == 5 and first["params"]["kind"] == "a"


def test_local_steps_alternate_with_global_ones():
    """A local step follows every trial that is not one, as long as the model
    predicts a gain; never two in a row."""
    res = lipo_search(_rosen, ROSEN, 40, seed=2, minimize=True)
    steps = [t["step"] for t in res.trials]
    assert not any(a == b == "local" for a, b in zip(steps, steps[1:]))
    # from the fifth trial (d + 2 = 5 points for a model) on, about every other one is local
    assert steps[5:].count("local") >= 15, steps


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
