/* gemm_tile.inc.c: the register-blocked micro-kernel of the GEMM (gemm.inc.c)
 * and the packing of its operands, compiled once per instruction set
 * (included by isa_variant.inc.c).
 *
 * Layout: op(A) (M x K) is packed into panels of GK_MR rows, each panel K x
 * GK_MR (k-major, GK_MR values per k); op(B) (K x N) into panels of GK_NR
 * columns, each K x GK_NR. Panels past the matrix edge are zero-padded, so
 * the micro-kernel always runs at full size and the padding adds zeros.
 *
 * The micro-kernel forms each element of its GK_MR x GK_NR tile as one
 * chain of multiply-adds over k in increasing order, then adds the value
 * already in C (or the bias): the bits depend on K's blocking and on the
 * instruction set (FMA or not), never on which thread runs the tile or on
 * how M and N are cut. AVX2 and AVX-512 use FMA intrinsics (the rest of the
 * build keeps fp-contract off); the generic variant is plain C. */

#if FNN_ISA_VARIANT == FNN_ISA_GENERIC
/* plain C the compiler vectorizes with the baseline instruction set */
#define GK_MR 4
#if FNN_REAL_FLOAT
#define GK_NR 8
#else
#define GK_NR 4
#endif
#else
#if FNN_ISA_VARIANT == FNN_ISA_AVX2
#if FNN_REAL_FLOAT
typedef __m256 gk_vec;
#define GK_VL 8
#define GK_LOAD _mm256_loadu_ps
#define GK_STORE _mm256_storeu_ps
#define GK_SET1 _mm256_set1_ps
#define GK_FMA _mm256_fmadd_ps
#define GK_ADD _mm256_add_ps
#define GK_ZERO _mm256_setzero_ps
#else
typedef __m256d gk_vec;
#define GK_VL 4
#define GK_LOAD _mm256_loadu_pd
#define GK_STORE _mm256_storeu_pd
#define GK_SET1 _mm256_set1_pd
#define GK_FMA _mm256_fmadd_pd
#define GK_ADD _mm256_add_pd
#define GK_ZERO _mm256_setzero_pd
#endif
#else /* AVX-512 */
#if FNN_REAL_FLOAT
typedef __m512 gk_vec;
#define GK_VL 16
#define GK_LOAD _mm512_loadu_ps
#define GK_STORE _mm512_storeu_ps
#define GK_SET1 _mm512_set1_ps
#define GK_FMA _mm512_fmadd_ps
#define GK_ADD _mm512_add_ps
#define GK_ZERO _mm512_setzero_ps
#else
typedef __m512d gk_vec;
#define GK_VL 8
#define GK_LOAD _mm512_loadu_pd
#define GK_STORE _mm512_storeu_pd
#define GK_SET1 _mm512_set1_pd
#define GK_FMA _mm512_fmadd_pd
#define GK_ADD _mm512_add_pd
#define GK_ZERO _mm512_setzero_pd
#endif
#endif
/* two vectors wide, six rows high: 12 accumulators, two B vectors and one
 * broadcast fit AVX2's 16 registers; AVX-512 keeps the same shape, wider */
#define GK_MR 6
#define GK_NR (2 * GK_VL)
#endif

#if GK_MR > FNN_GEMM_MAX_PANEL || GK_NR > FNN_GEMM_MAX_PANEL
#error "a GEMM panel is wider than FNN_GEMM_MAX_PANEL (the workspace size assumes it)"
#endif

/* Packs panels [p0, p1) of op(A), where op(A) = A (M x K, row stride lda) or,
 * with trans, A^T for A stored K x M. */
static void FNN_SFX(gemm_pack_a)(int trans, int64_t M, int64_t K, const REAL *A, int64_t lda,
                                 int64_t p0, int64_t p1, REAL *dst)
{
    int64_t p, k, r;
    for (p = p0; p < p1; p++) {
        const int64_t i0 = p * GK_MR, rows = M - i0 < GK_MR ? M - i0 : GK_MR;
        REAL *d = dst + p * K * GK_MR;
        if (trans) {
            /* the GK_MR values of one k are contiguous in A */
            for (k = 0; k < K; k++) {
                const REAL *s = A + k * lda + i0;
                for (r = 0; r < rows; r++) d[k * GK_MR + r] = s[r];
                for (; r < GK_MR; r++) d[k * GK_MR + r] = 0;
            }
        } else if (rows == GK_MR) {
            /* six rows read side by side, the panel written in order */
            const REAL *s[GK_MR];
            for (r = 0; r < GK_MR; r++) s[r] = A + (i0 + r) * lda;
            for (k = 0; k < K; k++)
                for (r = 0; r < GK_MR; r++) d[k * GK_MR + r] = s[r][k];
        } else {
            for (k = 0; k < K; k++) {
                for (r = 0; r < rows; r++) d[k * GK_MR + r] = A[(i0 + r) * lda + k];
                for (; r < GK_MR; r++) d[k * GK_MR + r] = 0;
            }
        }
    }
}

/* Packs panels [q0, q1) of op(B), where op(B) = B (K x N, row stride ldb) or,
 * with trans, B^T for B stored N x K. */
static void FNN_SFX(gemm_pack_b)(int trans, int64_t N, int64_t K, const REAL *B, int64_t ldb,
                                 int64_t q0, int64_t q1, REAL *dst)
{
    int64_t q, k, c, kb;
    if (!trans) {
        /* a few rows of B at a time across every panel: B is read row by row
         * (a column walk would touch a new page at every row) */
        const int64_t rows = 8;
        for (kb = 0; kb < K; kb += rows) {
            const int64_t k1 = kb + rows < K ? kb + rows : K;
            for (q = q0; q < q1; q++) {
                const int64_t j0 = q * GK_NR, cols = N - j0 < GK_NR ? N - j0 : GK_NR;
                REAL *d = dst + q * K * GK_NR;
                for (k = kb; k < k1; k++) {
                    const REAL *s = B + k * ldb + j0;
                    for (c = 0; c < cols; c++) d[k * GK_NR + c] = s[c];
                    for (; c < GK_NR; c++) d[k * GK_NR + c] = 0;
                }
            }
        }
        return;
    }
    for (q = q0; q < q1; q++) {
        const int64_t j0 = q * GK_NR, cols = N - j0 < GK_NR ? N - j0 : GK_NR;
        REAL *d = dst + q * K * GK_NR;
        /* a transpose in blocks of 16 k: the 16 panel rows being written stay
         * in L1 while each column of the block is read in order */
        for (kb = 0; kb < K; kb += 16) {
            const int64_t k1 = kb + 16 < K ? kb + 16 : K;
            for (c = 0; c < cols; c++) {
                const REAL *s = B + (j0 + c) * ldb;
                for (k = kb; k < k1; k++) d[k * GK_NR + c] = s[k];
            }
            for (; c < GK_NR; c++)
                for (k = kb; k < k1; k++) d[k * GK_NR + c] = 0;
        }
    }
}

/* The weight gradient's prologue: packs panels [q0, q1) of dZ = dA * g'(A)
 * (K x N, row stride ld; any activation but softmax, whose derivative needs
 * whole rows), computing dZ as it goes. Each panel row is computed once,
 * written to dz (which may be da: the product dZ W^T reads it next) and to
 * the panel, and summed down the columns into db, in double and in row
 * order as fnn_col_sum does, so the bits are those of the three passes it
 * replaces. a may be NULL for identity. */
static void FNN_SFX(gemm_pack_b_dz)(int64_t N, int64_t K, const REAL *a, const REAL *da,
                                    REAL *dz, int64_t ld, int act, REAL alpha, int64_t q0,
                                    int64_t q1, REAL *dst, REAL *db)
{
    int64_t q, k, c;
    for (q = q0; q < q1; q++) {
        const int64_t j0 = q * GK_NR, cols = N - j0 < GK_NR ? N - j0 : GK_NR;
        REAL *d = dst + q * K * GK_NR;
        double acc[GK_NR];
        for (c = 0; c < GK_NR; c++) acc[c] = 0.0;
        for (k = 0; k < K; k++) {
            REAL *z = dz + k * ld + j0;
            FNN_SFX(act_bwd_row)(cols, a ? a + k * ld + j0 : NULL, da + k * ld + j0, z, act,
                                 alpha);
            for (c = 0; c < cols; c++) {
                d[k * GK_NR + c] = z[c];
                acc[c] += (double)z[c];
            }
            for (; c < GK_NR; c++) d[k * GK_NR + c] = 0;
        }
        for (c = 0; c < cols; c++) db[j0 + c] = (REAL)acc[c];
    }
}

/* Writes the mr x nr corner of a full tile held in t (row stride GK_NR):
 * C = t + C when add, else C = t + bias (bias may be NULL). */
static void FNN_SFX(gemm_store_part)(const REAL *t, REAL *c, int64_t ldc, int64_t mr,
                                     int64_t nr, int add, const REAL *bias)
{
    int64_t i, j;
    for (i = 0; i < mr; i++)
        for (j = 0; j < nr; j++) {
            REAL v = t[i * GK_NR + j];
            if (add) v = v + c[i * ldc + j];
            else if (bias) v = v + bias[j];
            c[i * ldc + j] = v;
        }
}

/* One tile: C[0:mr, 0:nr] (=|+=) sum over kc of a-panel times b-panel.
 * a: the panel's element (r, k) is a[r * a_rs + k * a_ks]: packed (a_rs = 1,
 * a_ks = GK_MR) or read in place from op(A) (rows r >= mr are never read);
 * b: kc x GK_NR packed;  mr <= GK_MR, nr <= GK_NR.
 * add = 0: C = sum (+ bias[j] when bias is not NULL);  add = 1: C = sum + C. */
static void FNN_SFX(gemm_tile)(int64_t kc, const REAL *a, int64_t a_rs, int64_t a_ks,
                               const REAL *b, REAL *c, int64_t ldc, int64_t mr, int64_t nr,
                               int add, const REAL *bias)
{
    int64_t k, off[GK_MR];
    {
        /* rows past mr repeat row 0: valid memory, results dropped on store */
        int r;
        for (r = 0; r < GK_MR; r++) off[r] = r < mr ? r * a_rs : 0;
    }
#if FNN_ISA_VARIANT == FNN_ISA_GENERIC
    REAL acc[GK_MR][GK_NR];
    int i, j;
    for (i = 0; i < GK_MR; i++)
        for (j = 0; j < GK_NR; j++) acc[i][j] = 0;
    for (k = 0; k < kc; k++) {
        for (i = 0; i < GK_MR; i++) {
            const REAL ai = a[off[i]];
            for (j = 0; j < GK_NR; j++) acc[i][j] += ai * b[j];
        }
        a += a_ks;
        b += GK_NR;
    }
    FNN_SFX(gemm_store_part)(&acc[0][0], c, ldc, mr, nr, add, bias);
#else
    gk_vec c00 = GK_ZERO(), c01 = GK_ZERO(), c10 = GK_ZERO(), c11 = GK_ZERO();
    gk_vec c20 = GK_ZERO(), c21 = GK_ZERO(), c30 = GK_ZERO(), c31 = GK_ZERO();
    gk_vec c40 = GK_ZERO(), c41 = GK_ZERO(), c50 = GK_ZERO(), c51 = GK_ZERO();
    if (add) {
        /* C is read after the k loop: start fetching it now */
        int64_t r;
        for (r = 0; r < mr; r++) {
            __builtin_prefetch(c + r * ldc, 1);
            __builtin_prefetch(c + r * ldc + GK_NR - 1, 1);
        }
    }
    {
        const int64_t o1 = off[1], o2 = off[2], o3 = off[3], o4 = off[4], o5 = off[5];
        for (k = 0; k < kc; k++) {
            const gk_vec b0 = GK_LOAD(b), b1 = GK_LOAD(b + GK_VL);
            gk_vec av;
            av = GK_SET1(a[0]); c00 = GK_FMA(av, b0, c00); c01 = GK_FMA(av, b1, c01);
            av = GK_SET1(a[o1]); c10 = GK_FMA(av, b0, c10); c11 = GK_FMA(av, b1, c11);
            av = GK_SET1(a[o2]); c20 = GK_FMA(av, b0, c20); c21 = GK_FMA(av, b1, c21);
            av = GK_SET1(a[o3]); c30 = GK_FMA(av, b0, c30); c31 = GK_FMA(av, b1, c31);
            av = GK_SET1(a[o4]); c40 = GK_FMA(av, b0, c40); c41 = GK_FMA(av, b1, c41);
            av = GK_SET1(a[o5]); c50 = GK_FMA(av, b0, c50); c51 = GK_FMA(av, b1, c51);
            a += a_ks;
            b += GK_NR;
        }
    }
    if (mr == GK_MR && nr == GK_NR) {
        if (add || bias) {
            const REAL *src = add ? c : bias;
            const int64_t ld = add ? ldc : 0; /* the bias row serves every row */
#define GK_ADD_ROW(i, x0, x1) \
    x0 = GK_ADD(x0, GK_LOAD(src + (i) * ld)); x1 = GK_ADD(x1, GK_LOAD(src + (i) * ld + GK_VL));
            GK_ADD_ROW(0, c00, c01) GK_ADD_ROW(1, c10, c11) GK_ADD_ROW(2, c20, c21)
            GK_ADD_ROW(3, c30, c31) GK_ADD_ROW(4, c40, c41) GK_ADD_ROW(5, c50, c51)
#undef GK_ADD_ROW
        }
#define GK_STORE_ROW(i, x0, x1) \
    GK_STORE(c + (i) * ldc, x0); GK_STORE(c + (i) * ldc + GK_VL, x1);
        GK_STORE_ROW(0, c00, c01) GK_STORE_ROW(1, c10, c11) GK_STORE_ROW(2, c20, c21)
        GK_STORE_ROW(3, c30, c31) GK_STORE_ROW(4, c40, c41) GK_STORE_ROW(5, c50, c51)
#undef GK_STORE_ROW
    } else {
        REAL t[GK_MR * GK_NR];
#define GK_STORE_ROW(i, x0, x1) \
    GK_STORE(t + (i) * GK_NR, x0); GK_STORE(t + (i) * GK_NR + GK_VL, x1);
        GK_STORE_ROW(0, c00, c01) GK_STORE_ROW(1, c10, c11) GK_STORE_ROW(2, c20, c21)
        GK_STORE_ROW(3, c30, c31) GK_STORE_ROW(4, c40, c41) GK_STORE_ROW(5, c50, c51)
#undef GK_STORE_ROW
        FNN_SFX(gemm_store_part)(t, c, ldc, mr, nr, add, bias);
    }
#endif
}
