/* activations.inc.c: forward and derivative-from-output of every activation
 * (spec section 3), written once over REAL.
 *
 * Design: the backward pass needs only the stored output A, never Z, so the
 * training loop keeps one buffer per layer. sigmoid and softplus use their
 * sign-split forms so |z| up to 1e4 neither overflows nor returns NaN; softmax
 * subtracts the row max. */

static inline REAL FNN_SFX(sigmoid)(REAL z)
{
    if (z >= 0) {
        return (REAL)1 / ((REAL)1 + R_EXP(-z));
    } else {
        REAL e = R_EXP(z);
        return e / ((REAL)1 + e);
    }
}

/* tanh. In float, libm's tanhf costs ~10 ns while expf costs ~1.5 ns, so
 * |z| >= 0.4 uses tanh(a) = 1 - 2 / (exp(2a) + 1) (the result is >= 0.38, so
 * the subtraction loses at most a bit) and |z| < 0.4 the odd Taylor series to
 * z^11 (the next term is below 1e-7 of the result). Both stay within a few
 * ulp of the true value; exp overflowing to inf gives exactly 1. Double keeps
 * libm's tanh, whose accuracy the float64 tolerance is built on. */
static inline REAL FNN_SFX(tanh_act)(REAL z)
{
#if FNN_REAL_FLOAT
    float a = fabsf(z), r;
    if (a < 0.4f) {
        float a2 = a * a;
        r = a + a * a2 * (-1.0f / 3 + a2 * (2.0f / 15 + a2 * (-17.0f / 315 + a2 *
            (62.0f / 2835 + a2 * (-1382.0f / 155925)))));
    } else {
        r = 1.0f - 2.0f / (expf(2.0f * a) + 1.0f);
    }
    return copysignf(r, z);
#else
    return tanh(z);
#endif
}

/* softplus(z) = max(z, 0) + log1p(exp(-|z|)) */
static inline REAL FNN_SFX(softplus)(REAL z)
{
    REAL pos = z > 0 ? z : (REAL)0;
    return pos + R_LOG1P(R_EXP(-R_FABS(z)));
}

/* Elementwise activation of one row of n values, in place. */
static inline void FNN_SFX(act_row)(int64_t n, REAL *z, int act, REAL alpha)
{
    int64_t j;
    switch (act) {
    case FNN_ACT_SIGMOID:
        for (j = 0; j < n; j++) z[j] = FNN_SFX(sigmoid)(z[j]);
        break;
    case FNN_ACT_TANH:
        for (j = 0; j < n; j++) z[j] = FNN_SFX(tanh_act)(z[j]);
        break;
    case FNN_ACT_RELU:
        #pragma omp simd
        for (j = 0; j < n; j++) {
            REAL v = z[j];
            z[j] = v > 0 ? v : (REAL)0;
        }
        break;
    case FNN_ACT_LEAKY_RELU:
        #pragma omp simd
        for (j = 0; j < n; j++) {
            REAL v = z[j];
            z[j] = v > 0 ? v : alpha * v;
        }
        break;
    case FNN_ACT_SOFTPLUS:
        for (j = 0; j < n; j++) z[j] = FNN_SFX(softplus)(z[j]);
        break;
    case FNN_ACT_SOFTMAX: {
        /* max-subtracted; the normalizer is summed in double */
        REAL zmax = z[0];
        double s = 0.0;
        for (j = 1; j < n; j++) zmax = z[j] > zmax ? z[j] : zmax;
        for (j = 0; j < n; j++) {
            z[j] = R_EXP(z[j] - zmax);
            s += (double)z[j];
        }
        for (j = 0; j < n; j++) z[j] = (REAL)((double)z[j] / s);
        break;
    }
    default: /* identity */
        break;
    }
}

/* dZ = dA * g'(A) for one row; dz may alias da. */
static inline void FNN_SFX(act_bwd_row)(int64_t n, const REAL *a, const REAL *da,
                                        REAL *dz, int act, REAL alpha)
{
    int64_t j;
    switch (act) {
    case FNN_ACT_SIGMOID:
        #pragma omp simd
        for (j = 0; j < n; j++) dz[j] = da[j] * (a[j] * ((REAL)1 - a[j]));
        break;
    case FNN_ACT_TANH:
        #pragma omp simd
        for (j = 0; j < n; j++) dz[j] = da[j] * ((REAL)1 - a[j] * a[j]);
        break;
    case FNN_ACT_RELU:
        /* unconditional loads and a select: branch-free and vectorized (a
         * branch here mispredicts on half the units) */
        #pragma omp simd
        for (j = 0; j < n; j++) {
            REAL d = da[j];
            dz[j] = a[j] > 0 ? d : (REAL)0;
        }
        break;
    case FNN_ACT_LEAKY_RELU:
        #pragma omp simd
        for (j = 0; j < n; j++) {
            REAL d = da[j];
            dz[j] = a[j] > 0 ? d : d * alpha;
        }
        break;
    case FNN_ACT_SOFTPLUS:
        /* g'(z) = sigmoid(z) = 1 - exp(-a), written with expm1 for small a */
        for (j = 0; j < n; j++) dz[j] = da[j] * (-R_EXPM1(-a[j]));
        break;
    case FNN_ACT_SOFTMAX: {
        /* dz_j = a_j (da_j - sum_k da_k a_k); the dot is summed in double */
        double dot = 0.0;
        for (j = 0; j < n; j++) dot += (double)da[j] * (double)a[j];
        for (j = 0; j < n; j++) dz[j] = a[j] * (REAL)((double)da[j] - dot);
        break;
    }
    default:
        if (dz != da)
            for (j = 0; j < n; j++) dz[j] = da[j];
        break;
    }
}

/* Z <- g(Z + b), in place.
 * m, n  IN   rows and columns
 * z     INOUT (m, n)
 * b     IN   (n,) or NULL for no bias
 * act   IN   FNN_ACT_* id; alpha the leaky_relu slope */
int FNN_SFX(fnn_bias_act_fwd)(int64_t m, int64_t n, REAL *z, const REAL *b, int act,
                              double alpha, int nt)
{
    int64_t i;
    const REAL ra = (REAL)alpha;
    if (act < 0 || act >= FNN_ACT_COUNT) return FNN_EINVAL;
    nt = fnn_act_is_costly(act) ? fnn_use_threads_costly(nt, m * n) : fnn_use_threads(nt, m * n);
    FNN_PARALLEL_FOR(nt, ,
        for (i = 0; i < m; i++) {
            REAL *row = z + i * n;
            if (b) {
                int64_t j;
                for (j = 0; j < n; j++) row[j] += b[j];
            }
            FNN_SFX(act_row)(n, row, act, ra);
        });
    return FNN_OK;
}

/* dZ = dA * g'(A).
 * a     IN   (m, n) the activation output stored by the forward pass
 * da    IN   (m, n) gradient with respect to A
 * dz    OUT  (m, n) gradient with respect to Z; may be the same buffer as da */
int FNN_SFX(fnn_act_bwd)(int64_t m, int64_t n, const REAL *a, const REAL *da, int act,
                         double alpha, REAL *dz, int nt)
{
    int64_t i;
    const REAL ra = (REAL)alpha;
    if (act < 0 || act >= FNN_ACT_COUNT) return FNN_EINVAL;
    /* derivatives from A are cheap except softplus's expm1 */
    nt = act == FNN_ACT_SOFTPLUS ? fnn_use_threads_costly(nt, m * n) : fnn_use_threads(nt, m * n);
    FNN_PARALLEL_FOR(nt, ,
        for (i = 0; i < m; i++)
            FNN_SFX(act_bwd_row)(n, a + i * n, da + i * n, dz + i * n, act, ra););
    return FNN_OK;
}
