"""The two steps of LIPO search (:func:`fastnn.search.lipo_search`), on points
of the unit cube and scores to maximize, in the form dlib's find_max_global
gives them:

- the upper bound of Malherbe and Vayatis (2017) with one Lipschitz constant
  per dimension and a noise term per point,
  U(x) = min_i F_i + sqrt(noise_i + sum_d m_d (x_d - X_id)^2), fitted to the
  evaluated points by a small quadratic program (UpperBound) and maximized
  over random draws (maximize_bound);
- a trust-region step on a quadratic model through the points nearest the
  incumbent (TrustRegion), which converges fast on smooth bowls.

lipo_search alternates them: a local step whenever the previous trial was not
one and the model predicts a gain, a bound step otherwise.

Design: the quadratic program is a least-distance problem (minimize ||z||
subject to G z >= h), solved exactly through one non-negative least squares
problem (Lawson and Hanson, Solving Least Squares Problems, ch. 23) with
SciPy's NNLS. Its constraints are pairs of points; a fit starts from the
constraints that bound the previous fit and adds the violated ones until none
is left, so a few hundred points cost a few small NNLS solves.

The bound's maximum is taken over random draws only, as dlib does: refining
the best draws by L-BFGS-B (tried: the best 3, 30 iterations each) cost 80-90%
of a trial's time and did not lower the regrets of bench/lipo_compare.py
overall (lower on Ackley, higher on Levy and Hartmann 6-D).

The trust region's model is fitted to points near the incumbent only: among
the best points, the (d + 1)(d + 2) / 2 + 2 nearest, of which those farther
than twice the radius are dropped (keeping at least d + 2, the fewest a model
needs). Far points, whose scores can be thousands of times worse, otherwise
bend the model so that it predicts gains the objective does not have, and the
radius collapses before the model is useful. docs/search.md gives the
measurements behind each constant.
"""

import numpy as np
import scipy.optimize

# the weight of the noise terms against the Lipschitz constants: a pair of
# points is explained by noise when no slope explains it at a hundredth of the
# cost. Ten times dlib's default: with it bench/lipo_compare.py's regrets were
# lower on Hartmann 3-D, Ackley and Styblinski-Tang and no worse beyond the
# spread of seeds elsewhere (docs/search.md gives the figures)
RELATIVE_NOISE = 1e-2
# the chance that a trial draws from the prior instead (dlib's default): a
# safety net for a bound fitted to misleading points; 0 and 0.1 measured, no
# better across the functions
PURE_RANDOM_PROBABILITY = 0.02
# random draws over which the bound is maximized (dlib's default; 1000 and
# 20000 measured, no better across the functions, 20000 three to five times
# slower)
N_BOUND_SAMPLES = 5000
# the trust region's model: its points come from the MODEL_POOL * (number of
# terms) best points, the nearest (number of terms) + MODEL_EXTRA of them to
# the incumbent, of which those beyond MODEL_REACH radii are dropped
MODEL_POOL = 3
MODEL_EXTRA = 2
MODEL_REACH = 2.0
# the radius (in the unit cube) below which the incumbent counts as converged:
# local steps stop until a step elsewhere finds a better point
MIN_RADIUS = 1e-4


# --------------------------------------------------------------------------
# the upper bound
# --------------------------------------------------------------------------

def least_distance(G, h):
    """z of least norm with G z >= h (Lawson and Hanson's LDP through NNLS), or
    None when no z meets the constraints."""
    p = G.shape[1]
    E = np.vstack([G.T, h[None, :]])
    f = np.zeros(p + 1)
    f[p] = 1.0
    u, _ = scipy.optimize.nnls(E, f, maxiter=50 * E.shape[1])
    r = E @ u - f
    if abs(r[p]) < 1e-12:
        return None
    return -r[:p] / r[p]


class UpperBound:
    """U(x) = min_i F_i + sqrt(noise_i + sum_d m_d (x_d - X_id)^2) fitted to the
    points X (n, d) and their scores F (n,): the least m (per-dimension squared
    Lipschitz constants) and noise terms, in the sense of
    ||m||^2 + ||noise / relative_noise||^2 with the scores scaled to unit
    range, for which U(X_j) >= F_j at every point. m and noise are in the
    scores' own units (squared).

    relative_noise: None for the module's RELATIVE_NOISE, read at each fit
    (so bench/lipo_compare.py can measure other values through the module).
    active: constraint pairs (i, j) to start from (the previous fit's
    ``active``); the fit's own binding pairs are left in ``active``."""

    def __init__(self, X, F, relative_noise=None, active=None):
        if relative_noise is None:
            relative_noise = RELATIVE_NOISE
        self.X = np.asarray(X, float)
        self.F = np.asarray(F, float)
        n, d = self.X.shape
        self.m, self.noise, self.active = np.zeros(d), np.zeros(n), []
        span = float(self.F.max() - self.F.min()) if n else 0.0
        # m and noise are in squared score units: a spread beyond 1e150 would
        # overflow them, and the bound is left flat (the search then explores)
        if n < 2 or span == 0.0 or not span < 1e150:
            return
        y = (self.F - self.F.min()) / span
        lower, upper = np.nonzero(y[:, None] < y[None, :])  # every pair with y_upper > y_lower
        sq = (self.X[upper] - self.X[lower]) ** 2
        need = (y[upper] - y[lower]) ** 2
        index = {p: k for k, p in enumerate(zip(lower.tolist(), upper.tolist()))}
        chosen = {index[p] for p in (active or []) if p in index}
        if not chosen:  # each point starts with its nearest lower point
            dist = sq.sum(axis=1)
            for j in np.unique(upper):
                sel = np.flatnonzero(upper == j)
                chosen.add(int(sel[np.argmin(dist[sel])]))
        while True:
            rows = np.array(sorted(chosen))
            G = np.zeros((rows.size + d + n, d + n))
            G[:rows.size, :d] = sq[rows]
            G[np.arange(rows.size), d + lower[rows]] = relative_noise
            G[rows.size:, :] = np.eye(d + n)  # m >= 0, noise >= 0
            h = np.concatenate([need[rows], np.zeros(d + n)])
            z = least_distance(G, h)
            m, noise = np.maximum(z[:d], 0.0), relative_noise * np.maximum(z[d:], 0.0)
            have = noise[lower] + sq @ m
            violated = np.flatnonzero(need - have > 1e-10 * (1.0 + need))
            violated = violated[~np.isin(violated, rows)]
            if violated.size == 0:
                break
            worst = violated[np.argsort(have[violated] - need[violated])[:max(n, 32)]]
            chosen.update(worst.tolist())
        # the solver's round-off must not leave an evaluated point above the bound
        ratio = np.where(have > 0, need / np.maximum(have, 1e-300), np.inf)
        ratio[need == 0] = 0.0
        scale = max(float(ratio.max()), 1.0) * (1.0 + 1e-9)
        if not np.isfinite(scale):  # a pair no term covers: give it noise
            bad = np.flatnonzero(~np.isfinite(ratio))
            np.maximum.at(noise, lower[bad], need[bad])
            have = noise[lower] + sq @ m
            scale = max(float(np.max(need / np.maximum(have, 1e-300))), 1.0) * (1.0 + 1e-9)
        self.m, self.noise = m * scale * span ** 2, noise * scale * span ** 2
        binding = np.flatnonzero(have * scale <= need * (1.0 + 1e-6) + 1e-12)
        self.active = list(zip(lower[binding].tolist(), upper[binding].tolist()))

    @property
    def lipschitz(self):
        """The per-dimension Lipschitz constants sqrt(m)."""
        return np.sqrt(self.m)

    def __call__(self, x):
        """U at each row of x (k, d)."""
        x = np.atleast_2d(np.asarray(x, float))
        out = np.empty(x.shape[0])
        for lo in range(0, x.shape[0], 1024):  # (1024, n, d) at a time
            q = (((x[lo:lo + 1024, None, :] - self.X[None, :, :]) ** 2) * self.m).sum(axis=2)
            out[lo:lo + 1024] = np.min(self.F[None, :] + np.sqrt(self.noise[None, :] + q),
                                       axis=1)
        return out


def with_pending(bound, X, best):
    """A copy of bound that also counts the points X (proposed, not yet
    evaluated) at score `best`, with no noise: the next proposals of a
    parallel round steer away from them."""
    out = UpperBound.__new__(UpperBound)
    out.m, out.active = bound.m, bound.active
    out.X = np.vstack([bound.X, np.asarray(X, float)])
    out.F = np.concatenate([bound.F, np.full(len(X), best)])
    out.noise = np.concatenate([bound.noise, np.zeros(len(X))])
    return out


def maximize_bound(bound, candidates):
    """The candidate (a row of `candidates`) with the largest U. Returns
    (point, U(point), U at every candidate)."""
    U = bound(candidates)
    i = int(np.argmax(U))
    return candidates[i].copy(), float(U[i]), U


# --------------------------------------------------------------------------
# the trust-region step
# --------------------------------------------------------------------------

def quadratic_model(S, F):
    """A quadratic q(s) = c + g.s + 0.5 s' H s through the points at offsets
    S (k, d) with values F (k,): the least-squares fit when there are as many
    points as terms, (d + 1)(d + 2) / 2, or more; with fewer, the one that
    interpolates them with the least Frobenius norm of H (Powell's NEWUOA
    model). Returns (c, g, H)."""
    k, d = S.shape
    if k >= (d + 1) * (d + 2) // 2:
        a, b = np.triu_indices(d)
        A = np.hstack([np.ones((k, 1)), S, S[:, a] * S[:, b]])
        coef = np.linalg.lstsq(A, F, rcond=None)[0]
        H = np.zeros((d, d))
        H[a, b] = coef[d + 1:]
        # off-diagonal terms appear once in the sum, the diagonal twice
        return coef[0], coef[1:d + 1], H + H.T
    # H = S' diag(lam) S, with lam, c, g from Powell's (k + d + 1) linear system
    W = np.zeros((k + d + 1, k + d + 1))
    W[:k, :k] = 0.5 * (S @ S.T) ** 2
    W[:k, k] = W[k, :k] = 1.0
    W[:k, k + 1:] = S
    W[k + 1:, :k] = S.T
    z = np.linalg.lstsq(W, np.concatenate([F, np.zeros(d + 1)]), rcond=None)[0]
    return z[k], z[k + 1:], (S.T * z[:k]) @ S


class TrustRegion:
    """The local step, after dlib's: a quadratic model through points near the
    incumbent, maximized in the box of half-width ``radius`` around it (within
    [0, 1]). The radius starts at the spread of the model's points (0.95 of
    their largest offset), halves after a step that gains less than 1/4 of
    what the model predicted and doubles after one that gains more and was
    stopped by the box's edge. A point that gains becomes the incumbent and
    keeps the radius; a better point found elsewhere, farther than the radius,
    resets it to the spread of its own neighbourhood. Below MIN_RADIUS the
    incumbent counts as converged and the region proposes nothing until then.
    """

    def __init__(self):
        self.radius = None
        self.predicted = None
        self._at_edge = False

    def propose(self, X, F, free):
        """A point to evaluate: the incumbent (the row of X with the largest F)
        with its `free` coordinates moved; None when there are too few points
        for a model (d + 2, d free coordinates), the region has converged, or
        the model predicts no gain."""
        idx = np.flatnonzero(free)
        k = (idx.size + 1) * (idx.size + 2) // 2
        if idx.size == 0 or len(F) < idx.size + 2:
            return None
        best = int(np.argmax(F))
        center = X[best]
        pool = np.argsort(-F, kind="stable")[:MODEL_POOL * k]
        S = X[pool][:, idx] - center[idx]
        near = pool[np.argsort((S ** 2).sum(axis=1), kind="stable")[:k + MODEL_EXTRA]]
        S, Fn = X[near][:, idx] - center[idx], F[near] - F[best]
        if self.radius is None:
            self.radius = 0.95 * float(np.abs(S).max())
        if not self.radius > MIN_RADIUS:
            return None
        dist = np.abs(S).max(axis=1)
        keep = dist <= max(MODEL_REACH * self.radius, np.sort(dist)[idx.size + 1])
        _, g, H = quadratic_model(S[keep], Fn[keep])
        lo = np.maximum(center[idx] - self.radius, 0.0) - center[idx]
        hi = np.minimum(center[idx] + self.radius, 1.0) - center[idx]

        def negative(s):
            return -(g @ s + 0.5 * s @ H @ s), -(g + H @ s)
        starts = [np.zeros(idx.size)]
        try:  # the model's own maximum, when it has one, clipped into the box
            starts.append(np.clip(np.linalg.solve(H, -g), lo, hi))
        except np.linalg.LinAlgError:
            pass
        best_res = None
        for s0 in starts:
            res = scipy.optimize.minimize(negative, s0, jac=True, method="L-BFGS-B",
                                          bounds=list(zip(lo, hi)))
            if best_res is None or res.fun < best_res.fun:
                best_res = res
        if not -best_res.fun > 0:
            return None
        self.predicted = float(-best_res.fun)
        self._at_edge = bool(np.any(np.isclose(np.abs(best_res.x), self.radius)))
        x = center.copy()
        x[idx] += best_res.x
        return x

    def update(self, gain):
        """Adapt the radius to the gain of the proposed point over the incumbent."""
        ratio = gain / self.predicted
        if ratio < 0.25:
            self.radius /= 2.0
        elif self._at_edge:
            self.radius *= 2.0

    def moved(self, distance):
        """A step other than this region's found a better point at `distance`
        (largest coordinate change) from the old incumbent."""
        if self.radius is not None and distance > self.radius:
            self.radius = None
