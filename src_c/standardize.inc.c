/* standardize.inc.c: per-feature standardization (spec section 1).
 *
 * Design: two passes in double (mean, then the mean of squared deviations),
 * which is numerically sound without Welford's per-element division. Columns
 * are split between threads in blocks and each block walks the rows in order,
 * so results do not depend on the thread count. A column whose values are all
 * equal gets mean = that value and std = 0 exactly (then divided by 1), not a
 * tiny rounding residue that would blow the column up. */

#define FNN_STD_COLS 64

/* mean, std: population (ddof = 0) statistics of each column.
 * x IN (m, n);  mean OUT (n,);  std OUT (n,) */
int FNN_SFX(fnn_standardize_fit)(int64_t m, int64_t n, const REAL *x, REAL *mean,
                                 REAL *std, int nt)
{
    int64_t nblocks = (n + FNN_STD_COLS - 1) / FNN_STD_COLS, blk;
    int t = fnn_use_threads(nt, m * n);
    if (m <= 0 || n <= 0) return FNN_EINVAL;
    if (t > nblocks) t = (int)nblocks;
    FNN_PARALLEL_FOR(t, ,
        for (blk = 0; blk < nblocks; blk++) {
            double sum[FNN_STD_COLS], ssd[FNN_STD_COLS];
            REAL lo[FNN_STD_COLS], hi[FNN_STD_COLS];
            int64_t j0 = blk * FNN_STD_COLS, j1 = j0 + FNN_STD_COLS < n ? j0 + FNN_STD_COLS : n;
            int64_t i, j;
            for (j = j0; j < j1; j++) {
                sum[j - j0] = 0.0;
                ssd[j - j0] = 0.0;
                lo[j - j0] = hi[j - j0] = x[j];
            }
            for (i = 0; i < m; i++) {
                const REAL *row = x + i * n;
                for (j = j0; j < j1; j++) {
                    REAL v = row[j];
                    sum[j - j0] += (double)v;
                    lo[j - j0] = v < lo[j - j0] ? v : lo[j - j0];
                    hi[j - j0] = v > hi[j - j0] ? v : hi[j - j0];
                }
            }
            for (j = j0; j < j1; j++) sum[j - j0] /= (double)m;  /* now the mean */
            for (i = 0; i < m; i++) {
                const REAL *row = x + i * n;
                for (j = j0; j < j1; j++) {
                    double d = (double)row[j] - sum[j - j0];
                    ssd[j - j0] += d * d;
                }
            }
            for (j = j0; j < j1; j++) {
                if (lo[j - j0] == hi[j - j0]) {
                    mean[j] = lo[j - j0];
                    std[j] = (REAL)0;
                } else {
                    mean[j] = (REAL)sum[j - j0];
                    std[j] = (REAL)sqrt(ssd[j - j0] / (double)m);
                }
            }
        });
    return FNN_OK;
}

/* out = (x - mean) / std, dividing by 1 where std == 0.
 * x IN (m, n);  mean, std IN (n,);  out OUT (m, n), may alias x */
int FNN_SFX(fnn_standardize_transform)(int64_t m, int64_t n, const REAL *x,
                                       const REAL *mean, const REAL *std, REAL *out, int nt)
{
    int64_t i;
    int t = fnn_use_threads(nt, m * n);
    FNN_PARALLEL_FOR(t, ,
        for (i = 0; i < m; i++) {
            int64_t j;
            for (j = 0; j < n; j++) {
                REAL sd = std[j] == 0 ? (REAL)1 : std[j];
                out[i * n + j] = (x[i * n + j] - mean[j]) / sd;
            }
        });
    return FNN_OK;
}
