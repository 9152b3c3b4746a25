/* stats.inc.c: per-layer training diagnostics (spec section 10): the mean and
 * variance of a layer's activations and the fraction of dead units.
 *
 * Design: one fixed-order pass per column block (as in standardize.inc.c):
 * sums in double, and a unit counts as dead when no row of the batch has a
 * positive activation (a ReLU unit that passes no gradient). */

/* out3[0] = mean of all elements, out3[1] = their population variance,
 * out3[2] = fraction of columns with no positive element.
 * a IN (m, n) */
int FNN_SFX(fnn_layer_stats)(int64_t m, int64_t n, const REAL *a, double *out3, int nt)
{
    double sum = 0.0, ssd = 0.0, mean;
    int64_t dead = 0;
    double partial_sum[FNN_MAX_CHUNKS], partial_ssd[FNN_MAX_CHUNKS];
    int64_t total = m * n;
    int64_t clen = fnn_chunk_len(total, FNN_MIN_CHUNK), nch = (total + clen - 1) / clen, ch, j;
    int t = fnn_use_threads(nt, total);
    if (m <= 0 || n <= 0) return FNN_EINVAL;

    FNN_PARALLEL_FOR(t, ,

        for (ch = 0; ch < nch; ch++) {
            int64_t i, i1 = (ch + 1) * clen < total ? (ch + 1) * clen : total;
            double acc = 0.0;
            for (i = ch * clen; i < i1; i++) acc += (double)a[i];
            partial_sum[ch] = acc;
        });
    for (ch = 0; ch < nch; ch++) sum += partial_sum[ch];
    mean = sum / (double)total;

    FNN_PARALLEL_FOR(t, ,

        for (ch = 0; ch < nch; ch++) {
            int64_t i, i1 = (ch + 1) * clen < total ? (ch + 1) * clen : total;
            double acc = 0.0;
            for (i = ch * clen; i < i1; i++) {
                double d = (double)a[i] - mean;
                acc += d * d;
            }
            partial_ssd[ch] = acc;
        });
    for (ch = 0; ch < nch; ch++) ssd += partial_ssd[ch];

    FNN_PARALLEL_FOR(t, reduction(+:dead),

        for (j = 0; j < n; j++) {
            int64_t i;
            int alive = 0;
            for (i = 0; i < m && !alive; i++) alive = a[i * n + j] > 0;
            dead += !alive;
        });
    out3[0] = mean;
    out3[1] = ssd / (double)total;
    out3[2] = (double)dead / (double)n;
    return FNN_OK;
}
