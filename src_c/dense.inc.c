/* dense.inc.c: a dense layer's forward and backward pass (spec notation:
 * Z = X @ W + b, A = g(Z)).
 *
 * Design: the three products run on the packed GEMM (gemm.inc.c), which adds
 * the bias and applies the activation to each output tile as it completes,
 * with results independent of the thread count. Backward, dZ = dA g'(A) and
 * db are computed while dZ is packed for the weight gradient (the BLAS path
 * and softmax run them as separate passes); db is summed column by column in
 * row order either way. The public entry points allocate
 * the GEMM's packing buffers per call; the training loop passes its own. */

/* A = g(X @ W + b).
 * x  IN  (m, n_in);  w IN (n_in, n_out);  b IN (n_out,) or NULL
 * a  OUT (m, n_out); must not overlap x, w or b
 * The BLAS must be single-threaded during the call (the threads are ours). */
static int FNN_SFX(dense_fwd)(int64_t m, int64_t n_in, int64_t n_out, const REAL *x,
                              const REAL *w, const REAL *b, int act, double alpha, REAL *a,
                              int nt, REAL *work, const fnn_blas *blas)
{
    int status;
    if (act < 0 || act >= FNN_ACT_COUNT) return FNN_EINVAL;
    if (m <= 0 || n_in <= 0 || n_out <= 0) return FNN_EINVAL;
    status = FNN_SFX(gemm)(0, 0, m, n_out, n_in, x, n_in, w, n_out, 0, a, n_out, b, act,
                           (REAL)alpha, nt, work, blas, NULL);
    if (status != FNN_OK) return status;
    /* softmax needs whole rows, which a macro tile does not have */
    if (act == FNN_ACT_SOFTMAX)
        return FNN_SFX(fnn_bias_act_fwd)(m, n_out, a, NULL, act, alpha, nt);
    return FNN_OK;
}

int FNN_SFX(fnn_dense_fwd)(int64_t m, int64_t n_in, int64_t n_out, const REAL *x,
                           const REAL *w, const REAL *b, int act, double alpha,
                           REAL *a, int nt, const fnn_blas *blas)
{
    return FNN_SFX(dense_fwd)(m, n_in, n_out, x, w, b, act, alpha, a, nt, NULL, blas);
}

/* Column sums in double, each column summed over rows in order.
 * x IN (m, n);  out OUT (n,) */
int FNN_SFX(fnn_col_sum)(int64_t m, int64_t n, const REAL *x, REAL *out, int nt)
{
    /* Columns are split between threads in blocks of 64; within a block the
     * rows are walked in order, so each sum has one fixed order. */
    const int64_t cb = 64;
    int64_t nblocks = (n + cb - 1) / cb, blk;
    nt = fnn_use_threads(nt, m * n);
    if (nt > nblocks) nt = (int)nblocks;
    FNN_PARALLEL_FOR(nt, ,
        for (blk = 0; blk < nblocks; blk++) {
            double acc[64];
            int64_t j0 = blk * cb, j1 = j0 + cb < n ? j0 + cb : n, i, j;
            for (j = j0; j < j1; j++) acc[j - j0] = 0.0;
            for (i = 0; i < m; i++) {
                const REAL *row = x + i * n;
                for (j = j0; j < j1; j++) acc[j - j0] += (double)row[j];
            }
            for (j = j0; j < j1; j++) out[j] = (REAL)acc[j - j0];
        });
    return FNN_OK;
}

/* Backward pass of a dense layer whose output A received the gradient dA.
 * x   IN  (m, n_in)   the layer input
 * w   IN  (n_in, n_out)
 * a   IN  (m, n_out)  the stored activation output (unused for identity)
 * da  IN  (m, n_out)  dJ/dA
 * l2  IN  coefficient of the L2 term: dW += l2 * W (spec section 5: lambda / m)
 * dz  OUT (m, n_out)  dJ/dZ; may be the same buffer as da (then da is overwritten)
 * dx  OUT (m, n_in)   dJ/dX, or NULL when not needed (first layer)
 * dw  OUT (n_in, n_out);  db OUT (n_out,) */
static int FNN_SFX(dense_bwd)(int64_t m, int64_t n_in, int64_t n_out, const REAL *x,
                              const REAL *w, const REAL *a, const REAL *da, int act,
                              double alpha, double l2, REAL *dz, REAL *dx, REAL *dw, REAL *db,
                              int nt, REAL *work, const fnn_blas *blas)
{
    int status, accumulate = 0;
    /* On the packed path dZ = dA g'(A) and its column sums (db) are computed
     * while dZ is packed for the weight gradient: one pass instead of three.
     * Softmax's derivative needs whole rows, which a panel does not have. */
    const int fused = act != FNN_ACT_SOFTMAX && !FNN_SFX(gemm_uses_blas)(blas);
    FNN_SFX(gemm_dz) prologue;
    if (act < 0 || act >= FNN_ACT_COUNT) return FNN_EINVAL;
    if (m <= 0 || n_in <= 0 || n_out <= 0) return FNN_EINVAL;
    prologue.a = a; prologue.da = da; prologue.dz = dz; prologue.db = db;
    prologue.act = act; prologue.alpha = (REAL)alpha;

    if (!fused) {
        status = FNN_SFX(fnn_act_bwd)(m, n_out, a, da, act, alpha, dz, nt);
        if (status != FNN_OK) return status;
    }

    /* dW = X^T dZ (+ l2 W, written first so the GEMM adds onto it) */
    if (l2 != 0.0) {
        int64_t i, total = n_in * n_out;
        const REAL rl2 = (REAL)l2;
        int t = fnn_use_threads(nt, total);
        FNN_PARALLEL_FOR(t, ,
            for (i = 0; i < total; i++) dw[i] = rl2 * w[i];);
        accumulate = 1;
    }
    status = FNN_SFX(gemm)(1, 0, n_in, n_out, m, x, n_in, dz, n_out, accumulate, dw, n_out,
                           NULL, FNN_ACT_IDENTITY, (REAL)0, nt, work, blas,
                           fused ? &prologue : NULL);
    if (status != FNN_OK) return status;

    if (!fused) {
        status = FNN_SFX(fnn_col_sum)(m, n_out, dz, db, nt);
        if (status != FNN_OK) return status;
    }

    /* dX = dZ W^T */
    if (dx)
        return FNN_SFX(gemm)(0, 1, m, n_in, n_out, dz, n_out, w, n_out, 0, dx, n_in, NULL,
                             FNN_ACT_IDENTITY, (REAL)0, nt, work, blas, NULL);
    return FNN_OK;
}

int FNN_SFX(fnn_dense_bwd)(int64_t m, int64_t n_in, int64_t n_out, const REAL *x,
                           const REAL *w, const REAL *a, const REAL *da, int act,
                           double alpha, double l2, REAL *dz, REAL *dx, REAL *dw,
                           REAL *db, int nt, const fnn_blas *blas)
{
    return FNN_SFX(dense_bwd)(m, n_in, n_out, x, w, a, da, act, alpha, l2, dz, dx, dw, db, nt,
                              NULL, blas);
}
