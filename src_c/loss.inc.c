/* loss.inc.c: fused losses (spec section 4): the batch-mean loss and the
 * gradient of the pre-activation (or of the output for MSE) in one pass.
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
    double inv_m;            /* 1 / m */
    const REAL *z;           /* logits or outputs, (m, k) */
    const int64_t *labels;   /* (m,) or NULL */
    const REAL *y;           /* (m, k) targets or NULL */
    REAL *dz;                /* (m, k) gradient out, or NULL */
} FNN_SFX(loss_args);

/* Returns row i's loss; sets *bad on an out-of-range label. */
typedef double (*FNN_SFX(row_loss_fn))(const FNN_SFX(loss_args) *g, int64_t i, int *bad);

static double FNN_SFX(mse_row)(const FNN_SFX(loss_args) *g, int64_t i, int *bad);

/* loss = (sum over rows of row_fn) / m, summed in a fixed chunk order. */
static int FNN_SFX(chunked_row_loss)(int64_t m, int nt, FNN_SFX(row_loss_fn) row_fn,
                                     const FNN_SFX(loss_args) *g, double *loss)
{
    double partial[FNN_MAX_CHUNKS], total = 0.0;
    int64_t clen = fnn_chunk_len(m, FNN_LOSS_ROW_CHUNK);
    int64_t nch = (m + clen - 1) / clen, ch;
    /* softmax and sigmoid losses call exp per element; MSE is as cheap as it gets */
    int t = row_fn == FNN_SFX(mse_row) ? fnn_use_threads(nt, m * g->k)
                                       : fnn_use_threads_costly(nt, m * g->k);
    int bad = 0;
    FNN_PARALLEL_FOR(t, reduction(|:bad),
        for (ch = 0; ch < nch; ch++) {
            int64_t i, i1 = (ch + 1) * clen < m ? (ch + 1) * clen : m;
            double acc = 0.0;
            for (i = ch * clen; i < i1; i++) acc += row_fn(g, i, &bad);
            partial[ch] = acc;
        });
    if (bad) return FNN_ELABEL;
    for (ch = 0; ch < nch; ch++) total += partial[ch];
    *loss = total / (double)m;
    return FNN_OK;
}

static double FNN_SFX(softmax_xent_row)(const FNN_SFX(loss_args) *g, int64_t i, int *bad)
{
    const int64_t k = g->k;
    const REAL *zi = g->z + i * k;
    REAL zmax = zi[0];
    double s = 0.0, lse, ysum = 0.0, yz = 0.0;
    int64_t j, c = -1;
    for (j = 1; j < k; j++) zmax = zi[j] > zmax ? zi[j] : zmax;
    for (j = 0; j < k; j++) s += (double)R_EXP(zi[j] - zmax);
    lse = (double)zmax + log(s);
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
            yz += (double)yi[j] * (double)zi[j];
        }
    }
    if (g->dz) {
        /* read zi[j] before writing dzi[j]: dz may alias z */
        REAL *dzi = g->dz + i * k;
        for (j = 0; j < k; j++) {
            double p = (double)R_EXP(zi[j] - zmax) / s;
            double yj = g->labels ? (j == c ? 1.0 : 0.0) : (double)g->y[i * k + j];
            dzi[j] = (REAL)((p * ysum - yj) * g->inv_m);
        }
    }
    return ysum * lse - yz;
}

/* Softmax + categorical cross-entropy.
 * z       IN  (m, k) logits
 * labels  IN  (m,) class indices in [0, k), or NULL when y is given
 * y       IN  (m, k) one-hot or probability targets, or NULL when labels given
 * dz      OUT (m, k) (P * sum_j y_j - Y) / m, which is (P - Y) / m for one-hot
 *             rows; may be NULL; may alias z
 * loss    OUT mean over rows of sum_j y_ij (logsumexp(z_i) - z_ij) */
int FNN_SFX(fnn_softmax_xent)(int64_t m, int64_t k, const REAL *z, const int64_t *labels,
                              const REAL *y, REAL *dz, double *loss, int nt)
{
    FNN_SFX(loss_args) g = {k, 1.0 / (double)m, z, labels, y, dz};
    if (m <= 0 || k <= 0 || (labels == NULL) == (y == NULL)) return FNN_EINVAL;
    return FNN_SFX(chunked_row_loss)(m, nt, FNN_SFX(softmax_xent_row), &g, loss);
}

static double FNN_SFX(sigmoid_bce_row)(const FNN_SFX(loss_args) *g, int64_t i, int *bad)
{
    double row = 0.0;
    int64_t j, base = i * g->k;
    (void)bad;
    for (j = 0; j < g->k; j++) {
        double zj = (double)g->z[base + j], yj = (double)g->y[base + j];
        double e = exp(-fabs(zj));
        row += (zj > 0 ? zj : 0.0) - zj * yj + log1p(e);
        if (g->dz) {
            double p = zj >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
            g->dz[base + j] = (REAL)((p - yj) * g->inv_m);
        }
    }
    return row;
}

/* Sigmoid + binary cross-entropy, elementwise over an (m, n) output (n = 1
 * for one binary target, more for multi-label), summed over outputs and
 * averaged over the m rows.
 * z   IN  (m, n) logits;  y IN (m, n) targets in [0, 1]
 * dz  OUT (m, n) (sigmoid(z) - y) / m, or NULL; may alias z
 * loss: max(z, 0) - z y + log1p(exp(-|z|)), the form that cannot overflow */
int FNN_SFX(fnn_sigmoid_bce)(int64_t m, int64_t n, const REAL *z, const REAL *y, REAL *dz,
                             double *loss, int nt)
{
    FNN_SFX(loss_args) g = {n, 1.0 / (double)m, z, NULL, y, dz};
    if (m <= 0 || n <= 0) return FNN_EINVAL;
    return FNN_SFX(chunked_row_loss)(m, nt, FNN_SFX(sigmoid_bce_row), &g, loss);
}

static double FNN_SFX(mse_row)(const FNN_SFX(loss_args) *g, int64_t i, int *bad)
{
    double row = 0.0;
    int64_t j, base = i * g->k;
    (void)bad;
    for (j = 0; j < g->k; j++) {
        double d = (double)g->z[base + j] - (double)g->y[base + j];
        row += d * d;
        if (g->dz) g->dz[base + j] = (REAL)(d * g->inv_m);
    }
    return row;
}

/* Mean squared error (the quadratic cost), J = 1/(2m) sum (a - y)^2.
 * a   IN  (m, n);  y IN (m, n)
 * da  OUT (m, n) (a - y) / m, or NULL; may alias a */
int FNN_SFX(fnn_mse)(int64_t m, int64_t n, const REAL *a, const REAL *y, REAL *da,
                     double *loss, int nt)
{
    FNN_SFX(loss_args) g = {n, 1.0 / (double)m, a, NULL, y, da};
    int status;
    if (m <= 0 || n <= 0) return FNN_EINVAL;
    status = FNN_SFX(chunked_row_loss)(m, nt, FNN_SFX(mse_row), &g, loss);
    *loss *= 0.5;
    return status;
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
