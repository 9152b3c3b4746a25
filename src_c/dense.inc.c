/* dense.inc.c: a dense layer's forward and backward pass (spec notation:
 * Z = X @ W + b, A = g(Z)).
 *
 * Design: the bias is written into the output first and the GEMM runs with
 * beta = 1, so the bias add costs no extra pass, and the activation is
 * applied to each block of the output by the thread that just computed it,
 * while it is in cache. Threads are OpenMP's: each block is one
 * single-threaded BLAS call (the Python layer holds the BLAS to one thread
 * for the call), so the two thread pools never compete for the cores, and the
 * fixed block grid makes results independent of the thread count. Our own
 * reduction (db) is column-wise in fixed row order, likewise. */

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

/* A GEMM cut into a fixed grid of blocks, one single-threaded BLAS call per
 * block, blocks shared among OpenMP threads. The grid depends only on the
 * sizes, never on the thread count, and each block is one deterministic BLAS
 * call, so the result has the same bits for any number of threads (a threaded
 * BLAS call does not promise that). The split runs along the longer of M and
 * N, so the operand that every block must repack is the smaller one. */
typedef struct {
    int64_t nblocks;     /* 1 to FNN_GEMM_MAX_BLOCKS */
    int split_rows;      /* 1: blocks are row ranges of C; 0: column ranges */
    int64_t len;         /* rows or columns per block (the last may be shorter) */
} FNN_SFX(gemm_grid);

#define FNN_GEMM_MAX_BLOCKS 8
#define FNN_GEMM_MIN_BLOCK_FLOPS (1 << 22)  /* 4 MFLOP: below this a block is mostly overhead */
#define FNN_GEMM_MIN_BLOCK_LEN 64

static FNN_SFX(gemm_grid) FNN_SFX(make_grid)(int64_t M, int64_t N, int64_t K)
{
    FNN_SFX(gemm_grid) g;
    double flops = 2.0 * (double)M * (double)N * (double)K;
    int64_t dim;
    g.split_rows = M >= N;
    dim = g.split_rows ? M : N;
    g.nblocks = 1;
    while (g.nblocks < FNN_GEMM_MAX_BLOCKS &&
           flops / (double)(2 * g.nblocks) >= FNN_GEMM_MIN_BLOCK_FLOPS &&
           dim / (2 * g.nblocks) >= FNN_GEMM_MIN_BLOCK_LEN)
        g.nblocks *= 2;
    g.len = (dim + g.nblocks - 1) / g.nblocks;
    return g;
}

/* Row-major C (M x N) = op(A) op(B) + beta C over the grid. When bias is not
 * NULL, C is first filled with the bias row (beta must be 1); when act is not
 * identity or softmax, it is applied to each block right after its GEMM, while
 * the block is still in cache. */
static void FNN_SFX(gemm_blocked)(const fnn_blas *blas, int trans_a, int trans_b,
                                  int64_t M, int64_t N, int64_t K,
                                  const REAL *A, int64_t lda, const REAL *B, int64_t ldb,
                                  REAL beta, REAL *C, int64_t ldc, const REAL *bias,
                                  int act, REAL alpha, int nt)
{
    FNN_SFX(gemm_grid) g = FNN_SFX(make_grid)(M, N, K);
    int t = nt < g.nblocks ? nt : (int)g.nblocks;
    int64_t blk;
    FNN_PARALLEL_FOR(t, ,
        for (blk = 0; blk < g.nblocks; blk++) {
            int64_t r0 = 0, r1 = M, c0 = 0, c1 = N, i, j;
            const REAL *a0 = A, *b0 = B;
            int64_t dim = g.split_rows ? M : N;
            int64_t lo = blk * g.len, hi = lo + g.len < dim ? lo + g.len : dim;
            if (lo >= hi) continue;
            if (g.split_rows) {
                r0 = lo; r1 = hi;
                /* rows of op(A): rows of A, or columns of A when transposed */
                a0 = trans_a ? A + r0 : A + r0 * lda;
            } else {
                c0 = lo; c1 = hi;
                b0 = trans_b ? B + c0 * ldb : B + c0;
            }
            if (bias)
                for (i = r0; i < r1; i++)
                    for (j = c0; j < c1; j++) C[i * ldc + j] = bias[j];
            FNN_SFX(gemm_rm)(blas, trans_a, trans_b, r1 - r0, c1 - c0, K, (REAL)1, a0, lda,
                             b0, ldb, beta, C + r0 * ldc + c0, ldc);
            if (act != FNN_ACT_IDENTITY && act != FNN_ACT_SOFTMAX)
                for (i = r0; i < r1; i++) FNN_ISA_OPS->act_fwd_row(c1 - c0, C + i * ldc + c0, act, alpha);
        });
}

/* A = g(X @ W + b).
 * x  IN  (m, n_in);  w IN (n_in, n_out);  b IN (n_out,) or NULL
 * a  OUT (m, n_out); must not overlap x, w or b
 * The BLAS must be single-threaded during the call (the threads are ours). */
int FNN_SFX(fnn_dense_fwd)(int64_t m, int64_t n_in, int64_t n_out, const REAL *x,
                           const REAL *w, const REAL *b, int act, double alpha,
                           REAL *a, int nt, const fnn_blas *blas)
{
    if (act < 0 || act >= FNN_ACT_COUNT) return FNN_EINVAL;
    if (m <= 0 || n_in <= 0 || n_out <= 0) return FNN_EINVAL;
    FNN_SFX(gemm_blocked)(blas, 0, 0, m, n_out, n_in, x, n_in, w, n_out, b ? (REAL)1 : (REAL)0,
                          a, n_out, b, act, (REAL)alpha, nt);
    /* softmax needs whole rows, which a column block does not have */
    if (act == FNN_ACT_SOFTMAX)
        return FNN_SFX(fnn_bias_act_fwd)(m, n_out, a, NULL, act, alpha, nt);
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
        FNN_PARALLEL_FOR(t, ,
            for (i = 0; i < total; i++) dw[i] = rl2 * w[i];);
        beta = 1;
    }
    FNN_SFX(gemm_blocked)(blas, 1, 0, n_in, n_out, m, x, n_in, dz, n_out, beta, dw, n_out,
                          NULL, FNN_ACT_IDENTITY, (REAL)0, nt);

    status = FNN_SFX(fnn_col_sum)(m, n_out, dz, db, nt);
    if (status != FNN_OK) return status;

    /* dX = dZ W^T */
    if (dx)
        FNN_SFX(gemm_blocked)(blas, 0, 1, m, n_in, n_out, dz, n_out, w, n_out, (REAL)0, dx,
                              n_in, NULL, FNN_ACT_IDENTITY, (REAL)0, nt);
    return FNN_OK;
}
