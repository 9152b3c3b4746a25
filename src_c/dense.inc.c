/* dense.inc.c: a dense layer's forward and backward pass (spec notation:
 * Z = X @ W + b, A = g(Z)).
 *
 * Design: the bias is written into the output first and the GEMM runs with
 * beta = 1, so the bias add costs no extra pass; the activation then runs over
 * row blocks sized to stay in cache right after the GEMM wrote them. Each GEMM
 * is one BLAS call over the whole block, threaded by the BLAS itself (the
 * Python layer sets the BLAS thread count to fastnn's for the call), so the
 * two thread pools never run at once and the result does not depend on how
 * rows are split between threads. Reductions of our own (db) are column-wise
 * in fixed row order, hence bitwise identical for any thread count. */

/* Row-major C = alpha op(A) op(B) + beta C through a column-major BLAS:
 * computing C^T = op(B)^T op(A)^T swaps the operands and keeps the data
 * where it is. M, N, K are the row-major sizes: op(A) is M x K, op(B) K x N. */
static void FNN_SFX(gemm_rm)(const fnn_blas *blas, int trans_a, int trans_b,
                             int64_t M, int64_t N, int64_t K, REAL alpha,
                             const REAL *A, int64_t lda, const REAL *B, int64_t ldb,
                             REAL beta, REAL *C, int64_t ldc)
{
    char ta = trans_a ? 'T' : 'N', tb = trans_b ? 'T' : 'N';
    int m = (int)N, n = (int)M, k = (int)K;
    int ia = (int)lda, ib = (int)ldb, ic = (int)ldc;
    FNN_GEMM(blas)(&tb, &ta, &m, &n, &k, &alpha, (REAL *)B, &ib, (REAL *)A, &ia,
                   &beta, C, &ic);
}

/* Rows per block of the forward pass: about 256 KiB of output, so the
 * activation reads what the GEMM just wrote from L2. Depends only on the
 * layer width, never on the thread count. */
static int64_t FNN_SFX(fwd_block_rows)(int64_t m, int64_t n_out)
{
    int64_t rows = (int64_t)(262144 / sizeof(REAL)) / (n_out > 0 ? n_out : 1);
    if (rows < 64) rows = 64;
    return rows < m ? rows : m;
}

/* A = g(X @ W + b).
 * x  IN  (m, n_in);  w IN (n_in, n_out);  b IN (n_out,) or NULL
 * a  OUT (m, n_out); must not overlap x, w or b */
int FNN_SFX(fnn_dense_fwd)(int64_t m, int64_t n_in, int64_t n_out, const REAL *x,
                           const REAL *w, const REAL *b, int act, double alpha,
                           REAL *a, int nt, const fnn_blas *blas)
{
    int64_t r0, block;
    if (act < 0 || act >= FNN_ACT_COUNT) return FNN_EINVAL;
    if (m <= 0 || n_in <= 0 || n_out <= 0) return FNN_EINVAL;
    block = FNN_SFX(fwd_block_rows)(m, n_out);
    for (r0 = 0; r0 < m; r0 += block) {
        int64_t rows = (m - r0) < block ? (m - r0) : block;
        REAL *ablk = a + r0 * n_out;
        int64_t i, j;
        REAL beta = 0;
        if (b) {
            for (i = 0; i < rows; i++)
                for (j = 0; j < n_out; j++) ablk[i * n_out + j] = b[j];
            beta = 1;
        }
        FNN_SFX(gemm_rm)(blas, 0, 0, rows, n_out, n_in, (REAL)1, x + r0 * n_in, n_in,
                         w, n_out, beta, ablk, n_out);
        if (act != FNN_ACT_IDENTITY)
            FNN_SFX(fnn_bias_act_fwd)(rows, n_out, ablk, NULL, act, alpha, nt);
    }
    return FNN_OK;
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
    #pragma omp parallel for num_threads(nt) schedule(static) if(nt > 1)
    for (blk = 0; blk < nblocks; blk++) {
        double acc[64];
        int64_t j0 = blk * cb, j1 = j0 + cb < n ? j0 + cb : n, i, j;
        for (j = j0; j < j1; j++) acc[j - j0] = 0.0;
        for (i = 0; i < m; i++) {
            const REAL *row = x + i * n;
            for (j = j0; j < j1; j++) acc[j - j0] += (double)row[j];
        }
        for (j = j0; j < j1; j++) out[j] = (REAL)acc[j - j0];
    }
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
int FNN_SFX(fnn_dense_bwd)(int64_t m, int64_t n_in, int64_t n_out, const REAL *x,
                           const REAL *w, const REAL *a, const REAL *da, int act,
                           double alpha, double l2, REAL *dz, REAL *dx, REAL *dw,
                           REAL *db, int nt, const fnn_blas *blas)
{
    int status;
    REAL beta = 0;
    if (act < 0 || act >= FNN_ACT_COUNT) return FNN_EINVAL;
    if (m <= 0 || n_in <= 0 || n_out <= 0) return FNN_EINVAL;

    status = FNN_SFX(fnn_act_bwd)(m, n_out, a, da, act, alpha, dz, nt);
    if (status != FNN_OK) return status;

    /* dW = X^T dZ (+ l2 W, written first so the GEMM adds onto it) */
    if (l2 != 0.0) {
        int64_t i, total = n_in * n_out;
        const REAL rl2 = (REAL)l2;
        int t = fnn_use_threads(nt, total);
        #pragma omp parallel for num_threads(t) schedule(static) if(t > 1)
        for (i = 0; i < total; i++) dw[i] = rl2 * w[i];
        beta = 1;
    }
    FNN_SFX(gemm_rm)(blas, 1, 0, n_in, n_out, m, (REAL)1, x, n_in, dz, n_out, beta,
                     dw, n_out);

    status = FNN_SFX(fnn_col_sum)(m, n_out, dz, db, nt);
    if (status != FNN_OK) return status;

    /* dX = dZ W^T */
    if (dx)
        FNN_SFX(gemm_rm)(blas, 0, 1, m, n_in, n_out, (REAL)1, dz, n_out, w, n_out,
                         (REAL)0, dx, n_in);
    return FNN_OK;
}
