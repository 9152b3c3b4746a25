/* update_ranges.inc.c: the elementwise loops of the optimizer and scaling
 * kernels over [lo, hi); compiled once per instruction set
 * (isa_variant.inc.c) and handed each thread's share by FNN_PARALLEL_RANGE.
 *
 * Design: every update is written in exactly the order of operations of
 * fastnn/reference.py, so both agree to the last bit on IEEE hardware (no
 * FMA contraction: setup.py passes -ffp-contract=off), and every variant
 * computes the same bits. Updates divide the moment by its scale before
 * multiplying by the step: the ratio is bounded, so a huge gradient (whose
 * square overflows) moves the weights by a finite step, not inf/inf = NaN. */

static void FNN_SFX(sgd_range)(int64_t lo, int64_t hi, REAL *p, const REAL *g, REAL lr)
{
    int64_t i;
    #pragma omp simd
    for (i = lo; i < hi; i++) p[i] = p[i] - lr * g[i];
}

static void FNN_SFX(momentum_range)(int64_t lo, int64_t hi, REAL *p, const REAL *g, REAL *v,
                                    REAL lr, REAL b, REAL one_minus_b)
{
    int64_t i;
    #pragma omp simd
    for (i = lo; i < hi; i++) {
        REAL vi = b * v[i] + one_minus_b * g[i];
        v[i] = vi;
        p[i] = p[i] - lr * vi;
    }
}

static void FNN_SFX(classical_range)(int64_t lo, int64_t hi, REAL *p, const REAL *g, REAL *v,
                                     REAL lr, REAL mu, int nesterov)
{
    int64_t i;
    if (nesterov) {
        #pragma omp simd
        for (i = lo; i < hi; i++) {
            REAL vi = mu * v[i] - lr * g[i];
            v[i] = vi;
            p[i] = p[i] + (mu * vi - lr * g[i]);
        }
    } else {
        #pragma omp simd
        for (i = lo; i < hi; i++) {
            REAL vi = mu * v[i] - lr * g[i];
            v[i] = vi;
            p[i] = p[i] + vi;
        }
    }
}

static void FNN_SFX(rmsprop_range)(int64_t lo, int64_t hi, REAL *p, const REAL *g, REAL *s,
                                   REAL lr, REAL b, REAL one_minus_b, REAL eps)
{
    int64_t i;
    #pragma omp simd
    for (i = lo; i < hi; i++) {
        REAL si = b * s[i] + one_minus_b * (g[i] * g[i]);
        s[i] = si;
        p[i] = p[i] - lr * (g[i] / (R_SQRT(si) + eps));
    }
}

static void FNN_SFX(adam_range)(int64_t lo, int64_t hi, REAL *p, const REAL *g, REAL *m1,
                                REAL *v2, const FNN_SFX(fnn_adam_scalars) *ks, int decoupled)
{
    const FNN_SFX(fnn_adam_scalars) k = *ks;
    int64_t i;
    if (decoupled) {
        #pragma omp simd
        for (i = lo; i < hi; i++) {
            REAL pi = p[i] - k.decay * p[i];
            REAL mi = k.b1 * m1[i] + k.one_minus_b1 * g[i];
            REAL vi = k.b2 * v2[i] + k.one_minus_b2 * (g[i] * g[i]);
            m1[i] = mi;
            v2[i] = vi;
            p[i] = pi - k.step * (mi / (R_SQRT(vi) * k.c + k.eps));
        }
    } else {
        #pragma omp simd
        for (i = lo; i < hi; i++) {
            REAL mi = k.b1 * m1[i] + k.one_minus_b1 * g[i];
            REAL vi = k.b2 * v2[i] + k.one_minus_b2 * (g[i] * g[i]);
            m1[i] = mi;
            v2[i] = vi;
            p[i] = p[i] - k.step * (mi / (R_SQRT(vi) * k.c + k.eps));
        }
    }
}

static void FNN_SFX(scale_range)(int64_t lo, int64_t hi, REAL *x, REAL s)
{
    int64_t i;
    #pragma omp simd
    for (i = lo; i < hi; i++) x[i] = x[i] * s;
}

/* NaN stays NaN (both comparisons are false) so it can be reported */
static void FNN_SFX(clip_range)(int64_t lo, int64_t hi, REAL *x, REAL c)
{
    int64_t i;
    #pragma omp simd
    for (i = lo; i < hi; i++) {
        REAL v = x[i];
        x[i] = v > c ? c : (v < -c ? -c : v);
    }
}
