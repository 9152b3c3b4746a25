"""The two steps of LIPO search (:func:`fastnn.search.lipo_search`), on points
of the unit cube and scores to maximize:

- the upper bound of Malherbe and Vayatis (2017) in dlib's form: one
  Lipschitz constant per dimension and a noise term per point,
  U(x) = min_i F_i + sqrt(noise_i + sum_d m_d (x_d - X_id)^2), fitted to the
  evaluated points by a small quadratic program (UpperBound), and maximized by
  random sampling refined with L-BFGS-B (maximize_bound);
- a trust-region step on a quadratic model fitted to the points nearest the
  incumbent (TrustRegion), which converges fast on smooth bowls.

Design: the quadratic program is a least-distance problem (minimize ||z||
subject to G z >= h), solved exactly through one non-negative least squares
problem (Lawson and Hanson, Solving Least Squares Problems, ch. 23) with
SciPy's NNLS. Its constraints are pairs of points; a fit starts from the
constraints that bound the previous fit and adds the violated ones until none
is left, so a few hundred points cost a few small NNLS solves.
"""

import numpy as np
import scipy.optimize

# dlib's default weight of the noise terms against the Lipschitz constants: a
# pair of points is explained by noise only when no slope explains it at a
# thousandth of the cost (docs/search.md)
RELATIVE_NOISE = 1e-3
# the chance that a trial draws from the prior instead (dlib's default): a
# safety net for a bound fitted to misleading points
PURE_RANDOM_PROBABILITY = 0.02
# random points at which the bound is evaluated before the best few are refined
N_BOUND_SAMPLES = 5000
N_REFINED = 3
REFINE_ITERATIONS = 30
# the trust region: initial and largest radius in the unit cube, and the
# radius below which the incumbent counts as converged
INITIAL_RADIUS = 0.1
# points beyond the model's terms in its least-squares fit, chosen nearest the
# incumbent among MODEL_POOL times as many best points
MODEL_EXTRA_POINTS = 2
MODEL_POOL = 3
MAX_RADIUS = 0.5
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

    active: constraint pairs (i, j) to start from (the previous fit's
    ``active``); the fit's own binding pairs are left in ``active``."""

    def __init__(self, X, F, relative_noise=RELATIVE_NOISE, active=None):
        self.X = np.asarray(X, float)
        self.F = np.asarray(F, float)
        n, d = self.X.shape
        self.m, self.noise, self.active = np.zeros(d), np.zeros(n), []
        span = float(self.F.max() - self.F.min()) if n else 0.0
        if n < 2 or span == 0.0:
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

    def gradient(self, x):
        """(U(x), dU/dx) at one point x (d,): the gradient of the active term."""
        q = (((x[None, :] - self.X) ** 2) * self.m).sum(axis=1)
        terms = self.F + np.sqrt(self.noise + q)
        i = int(np.argmin(terms))
        root = terms[i] - self.F[i]
        grad = self.m * (x - self.X[i]) / max(root, 1e-300)
        return float(terms[i]), grad


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


def maximize_bound(bound, candidates, refine_mask):
    """The candidate (a row of `candidates`) with the largest U, after refining
    the N_REFINED best with L-BFGS-B over the coordinates in refine_mask (the
    others stay as they are), within [0, 1]. Returns (point, U(point), U at
    every candidate)."""
    U = bound(candidates)
    order = np.argsort(-U)[:N_REFINED]
    best_x, best_u = candidates[order[0]].copy(), float(U[order[0]])
    free = np.flatnonzero(refine_mask)
    if free.size == 0 or not np.any(bound.m[free] > 0):
        return best_x, best_u, U
    for k in order:
        x0 = candidates[k].copy()

        def negative(v, x0=x0):
            x = x0.copy()
            x[free] = v
            u, g = bound.gradient(x)
            return -u, -g[free]
        res = scipy.optimize.minimize(negative, x0[free], jac=True, method="L-BFGS-B",
                                      bounds=[(0.0, 1.0)] * free.size,
                                      options={"maxiter": REFINE_ITERATIONS})
        if -res.fun > best_u:
            best_x = x0.copy()
            best_x[free] = res.x
            best_u = float(-res.fun)
    return best_x, best_u, U


# --------------------------------------------------------------------------
# the trust-region step
# --------------------------------------------------------------------------

def _features(S, full):
    """Columns of the quadratic model at offsets S (k, d): 1, s, and s_a s_b
    for a <= b (full) or s_a^2 (diagonal)."""
    k, d = S.shape
    cols = [np.ones((k, 1)), S]
    if full:
        a, b = np.triu_indices(d)
        cols.append(S[:, a] * S[:, b])
    else:
        cols.append(S * S)
    return np.hstack(cols)


def quadratic_model(X, F, center):
    """A quadratic q(s) = c + g.s + 0.5 s' H s (s = x - center) fitted by least
    squares to points near the center among the best ones (highest F): a full H
    when there are enough points for it, else a diagonal one. Returns
    (c, g, H, points used)."""
    n, d = X.shape
    n_full = (d + 1) * (d + 2) // 2
    full = n >= n_full + MODEL_EXTRA_POINTS
    n_terms = n_full if full else 2 * d + 1
    if n < n_terms:
        return None
    # the best points, of which those nearest the center (a function with two
    # good basins must not blend them into one model)
    best = np.argsort(-F, kind="stable")[:MODEL_POOL * (n_terms + MODEL_EXTRA_POINTS)]
    near = np.argsort(((X[best] - center) ** 2).sum(axis=1), kind="stable")
    use = best[near[:n_terms + MODEL_EXTRA_POINTS]]
    S = X[use] - center
    A = _features(S, full)
    coef, *_ = np.linalg.lstsq(A, F[use], rcond=None)
    c, g = coef[0], coef[1:d + 1]
    H = np.zeros((d, d))
    if full:
        a, b = np.triu_indices(d)
        H[a, b] = coef[d + 1:]
        H = H + H.T  # off-diagonal terms appear once in the sum, the diagonal twice
    else:
        H[np.diag_indices(d)] = 2.0 * coef[d + 1:]
    return c, g, H, use


class TrustRegion:
    """The local step: around the incumbent, maximize the quadratic model over
    the box of half-width ``radius`` (within [0, 1]); the radius doubles (up
    to MAX_RADIUS) when a step gains at least a quarter of what the model
    predicted and reaches the box's edge, and shrinks fourfold when it gains
    less. Below MIN_RADIUS the incumbent counts as converged: the next
    d + 1 local turns are left to the bound (d free coordinates), then the
    region restarts at INITIAL_RADIUS with the points gathered meanwhile (a
    model fitted to far points can stall a step short of the optimum); each
    further convergence at the same incumbent doubles that rest, so a local
    optimum does not hold half the budget."""

    def __init__(self):
        self.radius = INITIAL_RADIUS
        self.center = None
        self.predicted = None
        self._at_edge = False
        self._rest = 0
        self._stalls = 0

    @property
    def converged(self):
        return self.radius < MIN_RADIUS

    def propose(self, X, F, center, free):
        """A point to evaluate (the center with its `free` coordinates moved),
        or None when the model cannot be fitted, proposes no move, or the
        region is resting after converging."""
        if self.center is None or not np.array_equal(center, self.center):
            # a new incumbent found elsewhere: a region grown so far is kept
            self.center, self.radius = center.copy(), max(self.radius, INITIAL_RADIUS)
            self._rest = self._stalls = 0
        if self.converged:
            if self._rest == 0:  # converged again without a better point: rest longer
                self._stalls += 1
                self._rest = (int(np.count_nonzero(free)) + 1) * 2 ** (self._stalls - 1) + 1
            self._rest -= 1
            if self._rest > 0:
                return None
            self.radius = INITIAL_RADIUS
        idx = np.flatnonzero(free)
        model = quadratic_model(X[:, idx], F, center[idx])
        if model is None:
            return None
        c, g, H, _ = model
        lo = np.maximum(center[idx] - self.radius, 0.0) - center[idx]
        hi = np.minimum(center[idx] + self.radius, 1.0) - center[idx]

        def negative(s):
            return -(g @ s + 0.5 * s @ H @ s), -(g + H @ s)
        starts = [np.zeros(idx.size)]
        try:  # the model's own maximum, when it has one, clipped into the box
            starts.append(np.clip(np.linalg.solve(H, -g), lo, hi))
        except np.linalg.LinAlgError:
            pass
        best = None
        for s0 in starts:
            res = scipy.optimize.minimize(negative, s0, jac=True, method="L-BFGS-B",
                                          bounds=list(zip(lo, hi)))
            if best is None or res.fun < best.fun:
                best = res
        if best is None or not np.any(best.x != 0):
            self.radius /= 4.0
            return None
        self.predicted = float(-best.fun)
        self._at_edge = bool(np.any(np.isclose(np.abs(best.x), self.radius)))
        x = center.copy()
        x[idx] += best.x
        return x

    def update(self, gain, coords):
        """Adapt the radius to the gain of the proposed point over the incumbent;
        a point that gains becomes the center (coords: as evaluated)."""
        if self.predicted is None:
            return
        ratio = gain / self.predicted if self.predicted > 0 else -1.0
        if ratio >= 0.25 and self._at_edge:
            self.radius = min(2.0 * self.radius, MAX_RADIUS)
        elif ratio < 0.25:
            self.radius /= 4.0
        if gain > 0:
            self.center = np.array(coords, float)
        self.predicted = None
