/* loss.inc.c: fused losses (spec section 4): the batch-mean loss and the
 * gradient of the pre-activation (or of the output for MSE) in one pass.
 *
 * Sample weights: every loss takes an optional (m,) weight per row, sw. The
 * loss is then sum_i w_i l_i / sum_i w_i and row i's gradient is scaled by
 * w_i / sum_i w_i (scikit-learn's weighted mean); sw = NULL is w_i = 1, with
 * the same bits as an unweighted formula. Weights may be zero or negative; a
 * weight sum of zero has no mean and returns FNN_EZEROWEIGHT.
 *
 * Design: per-row work is done in double from the REAL inputs and rounded
 * once on store, so float32 and float64 share one formula. Rows are cut into
 * chunks whose length depends only on m; each chunk's loss is summed in
 * double and the partial sums are added in chunk order, so the loss has the
 * same bits for any thread count. dz may be NULL to compute the loss alone. */

#define FNN_LOSS_ROW_CHUNK 256

/* What a row function needs; unused members are NULL. */
typedef struct {
    int64_t k;               /* columns */
    double inv_m;            /* 1 / (m or the weight sum) */
    const REAL *sw;          /* (m,) sample weights or NULL */
    const REAL *z;           /* logits or outputs, (m, k) */
    const int64_t *labels;   /* (m,) or NULL */
    const REAL *y;           /* (m, k) targets or NULL */
    REAL *dz;                /* (m, k) gradient out, or NULL */
} FNN_SFX(loss_args);

/* Returns the sum of the losses of rows [i0, i1); sets *bad on an
 * out-of-range label. */
typedef double (*FNN_SFX(chunk_loss_fn))(const FNN_SFX(loss_args) *g, int64_t i0, int64_t i1,
                                         int *bad);

static double FNN_SFX(mse_chunk)(const FNN_SFX(loss_args) *g, int64_t i0, int64_t i1, int *bad);

/* The mean's denominator: m without weights, else the weights' sum, added
 * in double in row order (so it does not depend on threads). */
static int FNN_SFX(weight_denominator)(int64_t m, const REAL *sw, double *denom)
{
    double s = 0.0;
    int64_t i;
    if (!sw) {
        *denom = (double)m;
        return FNN_OK;
    }
    for (i = 0; i < m; i++) s += (double)sw[i];
    if (s == 0.0) return FNN_EZEROWEIGHT;
    *denom = s;
    return FNN_OK;
}

/* Row i's weight: 1 without weights. */
static inline double FNN_SFX(row_weight)(const FNN_SFX(loss_args) *g, int64_t i)
{
    return g->sw ? (double)g->sw[i] : 1.0;
}

/* loss = (sum over chunks of chunk_fn) / denom, summed in a fixed chunk
 * order; sets g->inv_m = 1 / denom first. */
static int FNN_SFX(chunked_loss_over)(int64_t m, int nt, FNN_SFX(chunk_loss_fn) chunk_fn,
                                      FNN_SFX(loss_args) *g, double denom, double *loss)
{
    double partial[FNN_MAX_CHUNKS], total = 0.0;
    int64_t clen = fnn_chunk_len(m, FNN_LOSS_ROW_CHUNK);
    int64_t nch = (m + clen - 1) / clen, ch;
    /* softmax and sigmoid losses call exp per element; MSE is as cheap as it gets */
    int t = chunk_fn == FNN_SFX(mse_chunk) ? fnn_use_threads(nt, m * g->k)
                                           : fnn_use_threads_costly(nt, m * g->k);
    int bad = 0;
    g->inv_m = 1.0 / denom;
    FNN_PARALLEL_FOR(t, reduction(|:bad),
        for (ch = 0; ch < nch; ch++) {
            int64_t i1 = (ch + 1) * clen < m ? (ch + 1) * clen : m;
            partial[ch] = chunk_fn(g, ch * clen, i1, &bad);
        });
    if (bad) return FNN_ELABEL;
    for (ch = 0; ch < nch; ch++) total += partial[ch];
    *loss = total / denom;
    return FNN_OK;
}

/* loss = (sum over chunks of chunk_fn) / (m or the weight sum). */
static int FNN_SFX(chunked_loss)(int64_t m, int nt, FNN_SFX(chunk_loss_fn) chunk_fn,
                                 FNN_SFX(loss_args) *g, double *loss)
{
    double denom;
    int st = FNN_SFX(weight_denominator)(m, g->sw, &denom);
    if (st != FNN_OK) return st;
    return FNN_SFX(chunked_loss_over)(m, nt, chunk_fn, g, denom, loss);
}

/* One row of softmax cross-entropy: the vector exp writes exp(z - max) into
 * dz (or a stack block when only the loss is wanted); the normalizer and the
 * gradient are formed in double. The per-row log is libm's: one call a row. */
static double FNN_SFX(softmax_xent_row)(const FNN_SFX(loss_args) *g, int64_t i, int *bad)
{
    const int64_t k = g->k;
    const REAL *zi = g->z + i * k;
    const double w = FNN_SFX(row_weight)(g, i), scale = w * g->inv_m;
    REAL zmax = zi[0];
    double s = 0.0, lse, ysum = 0.0, yz = 0.0;
    int64_t j, c = -1;
    for (j = 1; j < k; j++) zmax = zi[j] > zmax ? zi[j] : zmax;
    /* the targets' terms first: dz may alias z and is written below */
    if (g->labels) {
        c = g->labels[i];
        if (c < 0 || c >= k) {
            *bad = 1;
            return 0.0;
        }
        ysum = 1.0;
        yz = (double)zi[c];
    } else {
        const REAL *yi = g->y + i * k;
        for (j = 0; j < k; j++) {
            ysum += (double)yi[j];
            /* a class with no target mass adds nothing, even at a logit of -inf */
            if (yi[j] != 0) yz += (double)yi[j] * (double)zi[j];
        }
    }
    if (g->dz) {
        REAL *dzi = g->dz + i * k;
        FNN_ISA_OPS->vm_apply(FNN_VM_EXP, k, zi, zmax, dzi);
        for (j = 0; j < k; j++) s += (double)dzi[j];
        for (j = 0; j < k; j++) {
            double p = (double)dzi[j] / s;
            double yj = g->labels ? (j == c ? 1.0 : 0.0) : (double)g->y[i * k + j];
            dzi[j] = (REAL)((p * ysum - yj) * scale);
        }
    } else {
        REAL e[64];
        int64_t j0;
        for (j0 = 0; j0 < k; j0 += 64) {
            const int64_t len = k - j0 < 64 ? k - j0 : 64;
            FNN_ISA_OPS->vm_apply(FNN_VM_EXP, len, zi + j0, zmax, e);
            for (j = 0; j < len; j++) s += (double)e[j];
        }
    }
    lse = (double)zmax + log(s);
    return w * (ysum * lse - yz);
}

static double FNN_SFX(softmax_xent_chunk)(const FNN_SFX(loss_args) *g, int64_t i0, int64_t i1,
                                          int *bad)
{
    double acc = 0.0;
    int64_t i;
    for (i = i0; i < i1; i++) acc += FNN_SFX(softmax_xent_row)(g, i, bad);
    return acc;
}

/* Softmax + categorical cross-entropy.
 * z       IN  (m, k) logits
 * labels  IN  (m,) class indices in [0, k), or NULL when y is given
 * y       IN  (m, k) one-hot or probability targets, or NULL when labels given
 * sw      IN  (m,) sample weights, or NULL
 * dz      OUT (m, k) (P * sum_j y_j - Y) / m, which is (P - Y) / m for one-hot
 *             rows (row i times w_i m / sum w with weights); may be NULL; may
 *             alias z
 * loss    OUT (weighted) mean over rows of sum_j y_ij (logsumexp(z_i) - z_ij) */
int FNN_SFX(fnn_softmax_xent)(int64_t m, int64_t k, const REAL *z, const int64_t *labels,
                              const REAL *y, const REAL *sw, REAL *dz, double *loss, int nt)
{
    FNN_SFX(loss_args) g = {k, 0.0, sw, z, labels, y, dz};
    if (m <= 0 || k <= 0 || (labels == NULL) == (y == NULL)) return FNN_EINVAL;
    return FNN_SFX(chunked_loss)(m, nt, FNN_SFX(softmax_xent_chunk), &g, loss);
}

/* Sigmoid binary cross-entropy over the flat elements of rows [i0, i1), in
 * double: exp(-|z|) and log1p of it through the float64 vector functions, in
 * blocks of 64 on the stack; terms summed in element order. */
static double FNN_SFX(sigmoid_bce_chunk)(const FNN_SFX(loss_args) *g, int64_t i0, int64_t i1,
                                         int *bad)
{
    double zneg[64], e[64], l[64], acc = 0.0;
    const int64_t lo = i0 * g->k, hi = i1 * g->k;
    int64_t j0, j;
    (void)bad;
    for (j0 = lo; j0 < hi; j0 += 64) {
        const int64_t len = hi - j0 < 64 ? hi - j0 : 64;
        for (j = 0; j < len; j++) zneg[j] = -fabs((double)g->z[j0 + j]);
        fnn_isa_f64->vm_apply(FNN_VM_EXP, len, zneg, 0.0, e);
        fnn_isa_f64->vm_apply(FNN_VM_LOG1P, len, e, 0.0, l);
        for (j = 0; j < len; j++) {
            /* read z before writing dz: dz may alias z */
            double zj = (double)g->z[j0 + j], yj = (double)g->y[j0 + j];
            double w = g->sw ? (double)g->sw[(j0 + j) / g->k] : 1.0;
            acc += w * ((zj > 0 ? zj : 0.0) - zj * yj + l[j]);
            if (g->dz) {
                double p = (zj >= 0 ? 1.0 : e[j]) / (1.0 + e[j]);
                g->dz[j0 + j] = (REAL)((p - yj) * (w * g->inv_m));
            }
        }
    }
    return acc;
}

/* Sigmoid + binary cross-entropy, elementwise over an (m, n) output (n = 1
 * for one binary target, more for multi-label), summed over outputs and
 * averaged over the m rows.
 * z   IN  (m, n) logits;  y IN (m, n) targets in [0, 1];  sw IN (m,) or NULL
 * dz  OUT (m, n) (sigmoid(z) - y) / m (row i times w_i m / sum w with
 *         weights), or NULL; may alias z
 * loss: max(z, 0) - z y + log1p(exp(-|z|)), the form that cannot overflow */
int FNN_SFX(fnn_sigmoid_bce)(int64_t m, int64_t n, const REAL *z, const REAL *y,
                             const REAL *sw, REAL *dz, double *loss, int nt)
{
    FNN_SFX(loss_args) g = {n, 0.0, sw, z, NULL, y, dz};
    if (m <= 0 || n <= 0) return FNN_EINVAL;
    return FNN_SFX(chunked_loss)(m, nt, FNN_SFX(sigmoid_bce_chunk), &g, loss);
}

static double FNN_SFX(mse_chunk)(const FNN_SFX(loss_args) *g, int64_t i0, int64_t i1, int *bad)
{
    double acc = 0.0;
    int64_t i, j;
    (void)bad;
    for (i = i0; i < i1; i++) {
        const double w = FNN_SFX(row_weight)(g, i), scale = w * g->inv_m;
        double row = 0.0;
        for (j = i * g->k; j < (i + 1) * g->k; j++) {
            double d = (double)g->z[j] - (double)g->y[j];
            row += d * d;
            if (g->dz) g->dz[j] = (REAL)(d * scale);
        }
        acc += w * row;
    }
    return acc;
}

/* Mean squared error (the quadratic cost), J = 1/(2m) sum (a - y)^2
 * (1/(2 sum w) sum_i w_i sum_j (a_ij - y_ij)^2 with weights).
 * a   IN  (m, n);  y IN (m, n);  sw IN (m,) or NULL
 * da  OUT (m, n) (a - y) / m (row i times w_i m / sum w with weights), or
 *         NULL; may alias a */
int FNN_SFX(fnn_mse)(int64_t m, int64_t n, const REAL *a, const REAL *y, const REAL *sw,
                     REAL *da, double *loss, int nt)
{
    FNN_SFX(loss_args) g = {n, 0.0, sw, a, NULL, y, da};
    int status;
    if (m <= 0 || n <= 0) return FNN_EINVAL;
    status = FNN_SFX(chunked_loss)(m, nt, FNN_SFX(mse_chunk), &g, loss);
    *loss *= 0.5;
    return status;
}

/* Half Poisson deviance with the log link over the flat elements of rows
 * [i0, i1): mu = exp(z) and log(y) through the float64 vector functions, in
 * blocks of 64 on the stack; terms summed in element order. */
static double FNN_SFX(poisson_chunk)(const FNN_SFX(loss_args) *g, int64_t i0, int64_t i1,
                                     int *bad)
{
    double zb[64], yb[64], mu[64], logy[64], acc = 0.0;
    const int64_t lo = i0 * g->k, hi = i1 * g->k;
    int64_t j0, j;
    (void)bad;
    for (j0 = lo; j0 < hi; j0 += 64) {
        const int64_t len = hi - j0 < 64 ? hi - j0 : 64;
        for (j = 0; j < len; j++) {
            zb[j] = (double)g->z[j0 + j];
            yb[j] = (double)g->y[j0 + j];
        }
        fnn_isa_f64->vm_apply(FNN_VM_EXP, len, zb, 0.0, mu);
        fnn_isa_f64->vm_apply(FNN_VM_LOG, len, yb, 0.0, logy);
        for (j = 0; j < len; j++) {
            const double w = g->sw ? (double)g->sw[(j0 + j) / g->k] : 1.0;
            /* y log(y / mu) - y + mu, with y log y = 0 at y = 0 */
            const double ylogy = yb[j] > 0 ? yb[j] * logy[j] : 0.0;
            acc += w * (ylogy - yb[j] * zb[j] - yb[j] + mu[j]);
            if (g->dz) g->dz[j0 + j] = (REAL)((mu[j] - yb[j]) * (w * g->inv_m));
        }
    }
    return acc;
}

/* Poisson regression's loss on the log of the mean: the half Poisson
 * deviance of y given mu = exp(z), summed over outputs and averaged over the
 * rows (weighted with sw), scikit-learn's loss='poisson'.
 * z   IN  (m, n) the output layer before its exp;  y IN (m, n) counts >= 0
 * sw  IN  (m,) sample weights or NULL
 * dz  OUT (m, n) (exp(z) - y) / m (row i times w_i m / sum w with weights),
 *         or NULL; may alias z
 * loss: y log(y / mu) - y + mu, with y log y taken as 0 at y = 0 */
int FNN_SFX(fnn_poisson)(int64_t m, int64_t n, const REAL *z, const REAL *y, const REAL *sw,
                         REAL *dz, double *loss, int nt)
{
    FNN_SFX(loss_args) g = {n, 0.0, sw, z, NULL, y, dz};
    if (m <= 0 || n <= 0) return FNN_EINVAL;
    return FNN_SFX(chunked_loss)(m, nt, FNN_SFX(poisson_chunk), &g, loss);
}

/* Center loss (spec section 12, Wen et al. 2016) on the features x that feed
 * the output layer: L_c = lambda / (2m) sum_i ||x_i - c_(y_i)||^2.
 * x       IN    (m, d) features;  labels IN (m,) classes in [0, k)
 * centers IN    (k, d)
 * dx      INOUT (m, d) when not NULL: dx_i += (lambda / m) (x_i - c_(y_i))
 * loss    OUT   L_c, summed in double in a fixed chunk order */
int FNN_SFX(fnn_center_loss)(int64_t m, int64_t d, int64_t k, const REAL *x,
                             const int64_t *labels, const REAL *centers, double lambda,
                             REAL *dx, double *loss, int nt)
{
    double partial[FNN_MAX_CHUNKS], total = 0.0;
    const int64_t clen = fnn_chunk_len(m, FNN_LOSS_ROW_CHUNK);
    const int64_t nch = (m + clen - 1) / clen;
    const REAL scale = (REAL)(lambda / (double)m);
    int64_t ch;
    int bad = 0, t = fnn_use_threads(nt, m * d);
    if (m <= 0 || d <= 0 || k <= 0) return FNN_EINVAL;
    FNN_PARALLEL_FOR(t, reduction(|:bad),
        for (ch = 0; ch < nch; ch++) {
            int64_t i, j, i1 = (ch + 1) * clen < m ? (ch + 1) * clen : m;
            double acc = 0.0;
            for (i = ch * clen; i < i1; i++) {
                const int64_t c = labels[i];
                const REAL *xi = x + i * d, *ci;
                if (c < 0 || c >= k) {
                    bad = 1;
                    continue;
                }
                ci = centers + c * d;
                for (j = 0; j < d; j++) {
                    REAL diff = xi[j] - ci[j];
                    acc += (double)diff * (double)diff;
                    if (dx) dx[i * d + j] += scale * diff;
                }
            }
            partial[ch] = acc;
        });
    if (bad) return FNN_ELABEL;
    for (ch = 0; ch < nch; ch++) total += partial[ch];
    *loss = 0.5 * lambda * total / (double)m;
    return FNN_OK;
}

/* Moves each class center towards the batch's features of that class:
 * c_j <- c_j - alpha sum_(i: y_i = j) (c_j - x_i) / (1 + n_j)  (Wen et al.).
 * scratch (k, d + 1) doubles: per-class sums and counts. Rows are visited in
 * order, so the update does not depend on threads. */
int FNN_SFX(fnn_center_update)(int64_t m, int64_t d, int64_t k, const REAL *x,
                               const int64_t *labels, REAL *centers, double alpha,
                               double *scratch)
{
    int64_t i, j, c;
    if (m <= 0 || d <= 0 || k <= 0) return FNN_EINVAL;
    for (i = 0; i < k * (d + 1); i++) scratch[i] = 0.0;
    for (i = 0; i < m; i++) {
        double *row;
        c = labels[i];
        if (c < 0 || c >= k) return FNN_ELABEL;
        row = scratch + c * (d + 1);
        for (j = 0; j < d; j++) row[j] += (double)centers[c * d + j] - (double)x[i * d + j];
        row[d] += 1.0;
    }
    for (c = 0; c < k; c++) {
        const double *row = scratch + c * (d + 1);
        if (row[d] == 0.0) continue;
        for (j = 0; j < d; j++)
            centers[c * d + j] = (REAL)((double)centers[c * d + j] - alpha * row[j] / (1.0 + row[d]));
    }
    return FNN_OK;
}

/* A fused loss of the training loop whose mean is taken over a given
 * denominator instead of this batch's rows or weights: the rows are part of
 * a larger batch (split among processes), so the loss and the gradient are
 * this part's sum divided by the whole batch's rows or weight sum, and the
 * parts add up to the whole batch's mean. Same row formulas and chunking as
 * the functions above. labels for cross_entropy, y otherwise. */
static int FNN_SFX(fused_loss_over)(int loss_kind, int64_t m, int64_t k, const REAL *z,
                                    const int64_t *labels, const REAL *y, const REAL *sw,
                                    REAL *dz, double denom, double *loss, int nt)
{
    FNN_SFX(loss_args) g = {k, 0.0, sw, z, NULL, y, dz};
    int st;
    if (m <= 0 || k <= 0 || !(denom != 0.0)) return FNN_EINVAL;
    switch (loss_kind) {
    case FNN_LOSS_CROSS_ENTROPY:
        g.labels = labels;
        g.y = NULL;
        return FNN_SFX(chunked_loss_over)(m, nt, FNN_SFX(softmax_xent_chunk), &g, denom, loss);
    case FNN_LOSS_BINARY_CROSS_ENTROPY:
        return FNN_SFX(chunked_loss_over)(m, nt, FNN_SFX(sigmoid_bce_chunk), &g, denom, loss);
    case FNN_LOSS_POISSON:
        return FNN_SFX(chunked_loss_over)(m, nt, FNN_SFX(poisson_chunk), &g, denom, loss);
    default:
        st = FNN_SFX(chunked_loss_over)(m, nt, FNN_SFX(mse_chunk), &g, denom, loss);
        *loss *= 0.5;
        return st;
    }
}
