/* gemm.inc.c: the matrix products of the dense layers, row-major
 * C (M x N) = op(A) op(B) (+ C, or + bias), then an activation.
 *
 * Design (the shapes of training: M a batch of 16-1024 rows, K and N of
 * 16-4096): op(B) (the weights, in the forward pass) is packed once per call
 * into panels in the micro-kernel's layout (gemm_tile.inc.c), and op(A) too
 * when it is wide enough to pay for it; all threads share the packed panels
 * read-only. The output is cut into macro tiles that threads take in turn.
 * Inside a tile, K is walked in blocks of FNN_GEMM_KC (one B panel block
 * stays in L1 while the tile's A block streams from L2), and once a tile is
 * complete its rows get the activation while they are in cache. For the
 * weight gradient, B = dZ can be computed from dA and A as it is packed (the
 * backward prologue, gemm_pack_b_dz). Every element is
 * one multiply-add chain over k in order, block after block, so the bits do
 * not depend on the tiling or the thread count (the tiling may follow the
 * thread count, for balance). Packing buffers come from the caller (the
 * training loop keeps one in its arena) or, for a standalone call, one
 * allocation. The BLAS path is gemm_blas.inc.c. */

#if FNN_REAL_FLOAT
#define FNN_GEMM_KC 256 /* a 256 x 16 float B panel block is 16 KiB of L1 */
#else
#define FNN_GEMM_KC 192 /* 192 x 8 doubles: 12 KiB, the A panel 9 KiB */
#endif
/* A macro tile is at most 32 A panels by 16 B panels: with AVX2 floats, its
 * A block for one K block is 192 x 256 floats (192 KiB, half of a 512 KiB
 * L2), so each B panel block, once in L1, serves 32 micro-kernel calls. */
#define FNN_GEMM_TILE_M_PANELS 32
#define FNN_GEMM_TILE_N_PANELS 16
#define FNN_GEMM_PACK_A_MIN_COLS 512 /* see pack_a below */
#define FNN_GEMM_MIN_PAR_FLOPS (1 << 20) /* below 1 MFLOP one thread is faster */

/* The weight gradient's B operand computed while it is packed: dZ = dA *
 * g'(A), written to dz, its column sums to db (gemm_pack_b_dz). */
typedef struct {
    const REAL *a, *da;
    REAL *dz, *db;
    int act;
    REAL alpha;
} FNN_SFX(gemm_dz);

typedef struct {
    const FNN_SFX(gemm_dz) *dz; /* or NULL: B is read from B */
    int trans_a, trans_b;
    int64_t M, N, K, lda, ldb, ldc;
    const REAL *A, *B;
    REAL *C;
    const REAL *bias;
    int accumulate, act;
    int pack_a;              /* 0: the micro-kernel reads op(A) where it is */
    REAL alpha;
    REAL *pa, *pb;           /* packed op(A), packed op(B) */
    int64_t mp, np;          /* panels of op(A) rows, of op(B) columns */
    int64_t tm, tn;          /* macro tiles along M, along N */
} FNN_SFX(gemm_job);

/* Packs B's panels [q0, q1), computing them first when the job says so. */
static void FNN_SFX(gemm_pack_b_range)(const FNN_SFX(gemm_job) *g, int64_t q0, int64_t q1)
{
    const FNN_SFX(fnn_isa_table) *ops = FNN_ISA_OPS;
    if (g->dz)
        ops->gemm_pack_b_dz(g->N, g->K, g->dz->a, g->dz->da, g->dz->dz, g->ldb, g->dz->act,
                            g->dz->alpha, q0, q1, g->pb, g->dz->db);
    else
        ops->gemm_pack_b(g->trans_b, g->N, g->K, g->B, g->ldb, q0, q1, g->pb);
}

/* Computes macro tile `t` (row-major over the tm x tn grid). */
static void FNN_SFX(gemm_macro_tile)(const FNN_SFX(gemm_job) *g, int64_t t)
{
    const FNN_SFX(fnn_isa_table) *ops = FNN_ISA_OPS;
    const int64_t MR = ops->gemm_mr, NR = ops->gemm_nr;
    const int64_t ti = t / g->tn, tj = t % g->tn;
    const int64_t p0 = ti * g->mp / g->tm, p1 = (ti + 1) * g->mp / g->tm;
    const int64_t q0 = tj * g->np / g->tn, q1 = (tj + 1) * g->np / g->tn;
    int64_t pc, p, q;
    for (pc = 0; pc < g->K; pc += FNN_GEMM_KC) {
        const int64_t kc = g->K - pc < FNN_GEMM_KC ? g->K - pc : FNN_GEMM_KC;
        const int add = g->accumulate || pc > 0;
        for (q = q0; q < q1; q++) {
            const int64_t j = q * NR, nr = g->N - j < NR ? g->N - j : NR;
            const REAL *bp = g->pb + (q * g->K + pc) * NR;
            for (p = p0; p < p1; p++) {
                const int64_t i = p * MR, mr = g->M - i < MR ? g->M - i : MR;
                REAL *c = g->C + i * g->ldc + j;
                const REAL *bias = (!add && g->bias) ? g->bias + j : NULL;
                if (g->pack_a)
                    ops->gemm_tile(kc, g->pa + (p * g->K + pc) * MR, 1, MR, bp, c, g->ldc, mr,
                                   nr, add, bias);
                else if (g->trans_a)
                    ops->gemm_tile(kc, g->A + pc * g->lda + i, 1, g->lda, bp, c, g->ldc, mr, nr,
                                   add, bias);
                else
                    ops->gemm_tile(kc, g->A + i * g->lda + pc, g->lda, 1, bp, c, g->ldc, mr, nr,
                                   add, bias);
            }
        }
    }
    if (g->act != FNN_ACT_IDENTITY && g->act != FNN_ACT_SOFTMAX) {
        const int64_t i0 = p0 * MR, i1 = p1 * MR < g->M ? p1 * MR : g->M;
        const int64_t j0 = q0 * NR, j1 = q1 * NR < g->N ? q1 * NR : g->N;
        int64_t r;
        for (r = i0; r < i1; r++) ops->act_fwd_row(j1 - j0, g->C + r * g->ldc + j0, g->act, g->alpha);
    }
}

/* The path of a product (fnn_gemm_path_in_use): it depends on the
 * instruction set alone, never on the thread count. */
static int FNN_SFX(gemm_uses_blas)(const fnn_blas *blas)
{
    return blas && fnn_gemm_path_in_use() == FNN_GEMM_BLAS;
}

/* Row-major C (M x N) = op(A) op(B) + (accumulate ? C : bias), then act on
 * every element (identity and softmax: none). op(A) = A (M x K) or, with
 * trans_a, A^T for A stored K x M; op(B) = B (K x N) or, with trans_b, B^T
 * for B stored N x K. bias is (N,) or NULL, and unused with accumulate.
 * work: fnn_gemm_work_len(M, N, K) elements, or NULL to allocate one.
 * blas: the BLAS for the shapes it computes faster, or NULL for none.
 * dz: NULL, or (packed path, B not transposed) op(B) is dZ computed from it
 * while packing; B must then be dz->dz. */
static int FNN_SFX(gemm)(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K,
                         const REAL *A, int64_t lda, const REAL *B, int64_t ldb,
                         int accumulate, REAL *C, int64_t ldc, const REAL *bias, int act,
                         REAL alpha, int nt, REAL *work, const fnn_blas *blas,
                         const FNN_SFX(gemm_dz) *dz)
{
    const FNN_SFX(fnn_isa_table) *ops = FNN_ISA_OPS;
    FNN_SFX(gemm_job) g;
    REAL *owned = NULL;
    int64_t n_tiles, t;
    int threads;
    if (FNN_SFX(gemm_uses_blas)(blas)) {
        /* the BLAS takes 32-bit sizes: refuse rather than let them wrap (the
         * Python layer checks first, with a message naming the size) */
        if (M > INT_MAX || N > INT_MAX || K > INT_MAX || lda > INT_MAX || ldb > INT_MAX ||
            ldc > INT_MAX)
            return FNN_EINVAL;
        FNN_SFX(gemm_blocked)(blas, trans_a, trans_b, M, N, K, A, lda, B, ldb,
                              (accumulate || bias) ? (REAL)1 : (REAL)0, C, ldc,
                              accumulate ? NULL : bias, act, alpha, nt);
        return FNN_OK;
    }
    g.dz = dz;
    g.trans_a = trans_a; g.trans_b = trans_b;
    g.M = M; g.N = N; g.K = K; g.lda = lda; g.ldb = ldb; g.ldc = ldc;
    g.A = A; g.B = B; g.C = C; g.bias = bias;
    g.accumulate = accumulate; g.act = act; g.alpha = alpha;
    g.mp = (g.M + ops->gemm_mr - 1) / ops->gemm_mr;
    g.np = (g.N + ops->gemm_nr - 1) / ops->gemm_nr;
    /* Packing A pays when each A panel serves many B panels, that is when
     * op(B) is wide; below that the micro-kernel reads op(A) in place (six
     * row streams, or one strided stream when transposed) and skips a copy
     * of the batch. Measured with bench/gemm_shapes.py on AVX2: 1.3x faster
     * for W1's first layer (256 columns), 1.3x slower for a 2048-wide weight
     * gradient; the threshold in columns, not panels, suits float64 too. */
    g.pack_a = N >= FNN_GEMM_PACK_A_MIN_COLS;
    /* 64-byte aligned panels: a B panel row is one or two cache lines */
    if (!work) {
        /* only what this product packs (within fnn_gemm_work_len) */
        size_t len = (size_t)((g.pack_a ? g.mp * ops->gemm_mr : 0) + g.np * ops->gemm_nr) *
                     (size_t)K + 64;
        owned = (REAL *)malloc(len * sizeof(REAL));
        if (!owned) return FNN_ENOMEM;
        work = owned;
    }
    g.pa = (REAL *)(((uintptr_t)work + 63) & ~(uintptr_t)63);
    g.pb = g.pack_a ? g.pa + g.mp * ops->gemm_mr * K : g.pa;

    threads = (nt > 1 && 2.0 * (double)M * (double)N * (double)K >= FNN_GEMM_MIN_PAR_FLOPS) ? nt : 1;
    g.tm = (g.mp + FNN_GEMM_TILE_M_PANELS - 1) / FNN_GEMM_TILE_M_PANELS;
    g.tn = (g.np + FNN_GEMM_TILE_N_PANELS - 1) / FNN_GEMM_TILE_N_PANELS;
    /* enough tiles for every thread to take two: cut the side whose tiles
     * have more panels (the bits do not depend on the tiling) */
    while (g.tm * g.tn < 2 * threads && (g.tm < g.mp || g.tn < g.np)) {
        if ((g.mp / g.tm >= g.np / g.tn && g.tm < g.mp) || g.tn >= g.np) g.tm++;
        else g.tn++;
    }
    n_tiles = g.tm * g.tn;

    if (threads > 1) {
        #pragma omp parallel num_threads(threads)
        {
            int64_t i;
            /* each operand split evenly (an A panel and a B panel differ in size) */
            #pragma omp for schedule(static) nowait
            for (i = 0; i < (g.pack_a ? g.mp : 0); i++)
                ops->gemm_pack_a(g.trans_a, g.M, K, g.A, g.lda, i, i + 1, g.pa);
            #pragma omp for schedule(static)
            for (i = 0; i < threads; i++)
                FNN_SFX(gemm_pack_b_range)(&g, g.np * i / threads, g.np * (i + 1) / threads);
            #pragma omp for schedule(dynamic, 1)
            for (i = 0; i < n_tiles; i++) FNN_SFX(gemm_macro_tile)(&g, i);
        }
    } else {
        if (g.pack_a) ops->gemm_pack_a(g.trans_a, g.M, K, g.A, g.lda, 0, g.mp, g.pa);
        FNN_SFX(gemm_pack_b_range)(&g, 0, g.np);
        for (t = 0; t < n_tiles; t++) FNN_SFX(gemm_macro_tile)(&g, t);
    }
    free(owned);
    return FNN_OK;
}

/* The GEMM on its own (tests and benchmarks): C (M x N) = op(A) op(B)
 * (+ C with accumulate). Sizes must be positive. */
int FNN_SFX(fnn_gemm)(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K,
                      const REAL *A, int64_t lda, const REAL *B, int64_t ldb, int accumulate,
                      REAL *C, int64_t ldc, int nt, const fnn_blas *blas)
{
    if (M <= 0 || N <= 0 || K <= 0) return FNN_EINVAL;
    return FNN_SFX(gemm)(trans_a, trans_b, M, N, K, A, lda, B, ldb, accumulate, C, ldc, NULL,
                         FNN_ACT_IDENTITY, (REAL)0, nt, NULL, blas, NULL);
}
