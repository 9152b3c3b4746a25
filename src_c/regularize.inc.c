/* regularize.inc.c: norms and clipping (spec section 9), the finiteness
 * check, and inverted dropout (spec section 6).
 *
 * Design: the sum of squares is a chunked double reduction with a fixed chunk
 * layout (fnn_real.h), so the global norm, and therefore clipping, has the
 * same bits for any thread count. Dropout draws each element's keep decision
 * from the counter-based stream of common.c, keyed by (seed, step, layer) and
 * the element's flat index, so forward and backward regenerate one mask. */

/* out = sum x_i^2, in double.  x IN (n,) */
int FNN_SFX(fnn_sumsq)(int64_t n, const REAL *x, double *out, int nt)
{
    double partial[FNN_MAX_CHUNKS], total = 0.0;
    int64_t clen = fnn_chunk_len(n, FNN_MIN_CHUNK);
    int64_t nch = (n + clen - 1) / clen, ch;
    int t = fnn_use_threads(nt, n);
    FNN_PARALLEL_FOR(t, ,
        for (ch = 0; ch < nch; ch++) {
            /* eight interleaved accumulators break the add-latency chain; the
             * order is still fixed, so the result does not depend on threads */
            int64_t i, i0 = ch * clen, i1 = (ch + 1) * clen < n ? (ch + 1) * clen : n;
            double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            int k;
            for (i = i0; i + 8 <= i1; i += 8)
                for (k = 0; k < 8; k++) acc[k] += (double)x[i + k] * (double)x[i + k];
            for (; i < i1; i++) acc[0] += (double)x[i] * (double)x[i];
            partial[ch] = ((acc[0] + acc[1]) + (acc[2] + acc[3])) +
                          ((acc[4] + acc[5]) + (acc[6] + acc[7]));
        });
    for (ch = 0; ch < nch; ch++) total += partial[ch];
    *out = total;
    return FNN_OK;
}

/* x <- x * (REAL)s.  x INOUT (n,) */
int FNN_SFX(fnn_scale)(int64_t n, REAL *x, double s, int nt)
{
    FNN_PARALLEL_RANGE(n, fnn_use_threads(nt, n), FNN_ISA_OPS->scale(lo, hi, x, (REAL)s));
    return FNN_OK;
}

/* x <- min(max(x, -c), c).  x INOUT (n,); NaN stays NaN so it can be reported */
int FNN_SFX(fnn_clip_value)(int64_t n, REAL *x, double c, int nt)
{
    if (!(c >= 0)) return FNN_EINVAL;
    FNN_PARALLEL_RANGE(n, fnn_use_threads(nt, n), FNN_ISA_OPS->clip(lo, hi, x, (REAL)c));
    return FNN_OK;
}

/* fnn_dropout_apply over some rows of a larger batch: row i of x is row
 * pos[i] of the batch, and the batch's flat index of each element keys its
 * mask, so the rows get the masks they get when the whole batch is run at
 * once. x IN (m, n);  pos IN (m,);  out OUT (m, n), may alias x */
static int FNN_SFX(dropout_rows)(int64_t m, int64_t n, const REAL *x, REAL *out, double rate,
                                 uint64_t key, const int64_t *pos, int nt)
{
    const double q = 1.0 - rate;
    const REAL scale = (REAL)(1.0 / q);
    int t = fnn_use_threads(nt, m * n / 4);
    int64_t i;
    if (!(rate >= 0.0 && rate < 1.0)) return FNN_EINVAL;
    FNN_PARALLEL_FOR(t, ,
        for (i = 0; i < m; i++) {
            int64_t j;
            for (j = 0; j < n; j++) {
                const int64_t at = pos[i] * n + j, k = i * n + j;
                uint64_t bits = fnn_mix64(key + (uint64_t)(at + 1) * UINT64_C(0x9E3779B97F4A7C15));
                double u = (double)(bits >> 11) * 0x1.0p-53;
                out[k] = u < q ? x[k] * scale : (REAL)0;
            }
        });
    return FNN_OK;
}

/* Dropout of m rows: rows 0..m-1 of the batch (pos NULL), or rows pos[i]. */
static int FNN_SFX(dropout_at)(int64_t m, int64_t n, const REAL *x, REAL *out, double rate,
                               uint64_t key, const int64_t *pos, int nt)
{
    if (!pos) return FNN_SFX(fnn_dropout_apply)(m, n, x, out, rate, key, nt);
    return FNN_SFX(dropout_rows)(m, n, x, out, rate, key, pos, nt);
}

/* 1 when every element is finite, else 0.  x IN (n,) */
int FNN_SFX(fnn_all_finite)(int64_t n, const REAL *x, int nt)
{
    int bad = 0;
    int t = fnn_use_threads(nt, n);
    int64_t i;
    /* x - x is 0 for finite x and NaN for inf or NaN; no early exit keeps the
     * loop vectorizable and the common (all finite) case fast. */
    FNN_PARALLEL_FOR(t, reduction(|:bad),
        for (i = 0; i < n; i++) bad |= (x[i] - x[i]) != (x[i] - x[i]););
    return !bad;
}

/* Inverted dropout: out = x * mask, mask_i = 1/q with probability q = 1 - rate
 * and 0 otherwise, element i keyed by `key` (fnn_dropout_key) and its flat
 * index. The same call on dA gives the backward pass.
 * x IN (m, n);  out OUT (m, n), may alias x */
int FNN_SFX(fnn_dropout_apply)(int64_t m, int64_t n, const REAL *x, REAL *out,
                               double rate, uint64_t key, int nt)
{
    const double q = 1.0 - rate;
    const REAL scale = (REAL)(1.0 / q);
    const int64_t total = m * n;
    int t = fnn_use_threads(nt, total / 4);  /* the hash makes each element dearer */
    int64_t i;
    if (!(rate >= 0.0 && rate < 1.0)) return FNN_EINVAL;
    FNN_PARALLEL_FOR(t, ,
        for (i = 0; i < total; i++) {
            uint64_t bits = fnn_mix64(key + (uint64_t)(i + 1) * UINT64_C(0x9E3779B97F4A7C15));
            double u = (double)(bits >> 11) * 0x1.0p-53;
            out[i] = u < q ? x[i] * scale : (REAL)0;
        });
    return FNN_OK;
}
