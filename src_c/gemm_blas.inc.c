/* gemm_blas.inc.c: the matrix products through the BLAS (the other path of
 * gemm.inc.c, for the instruction sets whose own micro-kernel the BLAS
 * beats).
 *
 * Design: the output is cut into a fixed grid of blocks, one single-threaded
 * BLAS call per block (the Python layer holds the BLAS to one thread for the
 * call), blocks shared among OpenMP threads, so the two thread pools never
 * compete for the cores, and the grid depends only on the sizes, so the bits
 * do not depend on the thread count (a threaded BLAS call does not promise
 * that). The bias is written into the output first and the BLAS adds onto
 * it; the activation is applied to each block by the thread that computed
 * it, while it is in cache. */

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

