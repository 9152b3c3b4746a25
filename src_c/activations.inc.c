/* activations.inc.c: the activation kernels of fastnn.ops (spec section 3):
 * Z <- g(Z + b) and dZ = dA * g'(A) over a batch.
 *
 * Design: the per-row work lives in act_rows.inc.c and is reached through the
 * instruction-set table (fnn_isa.h), so the same rows serve these kernels,
 * the dense layer's fused epilogue and the training loop. The backward pass
 * needs only the stored output A, never Z, so the training loop keeps one
 * buffer per layer. */

/* Z <- g(Z + b), in place.
 * m, n  IN   rows and columns
 * z     INOUT (m, n)
 * b     IN   (n,) or NULL for no bias
 * act   IN   FNN_ACT_* id; alpha the leaky_relu slope */
int FNN_SFX(fnn_bias_act_fwd)(int64_t m, int64_t n, REAL *z, const REAL *b, int act,
                              double alpha, int nt)
{
    int64_t i;
    const REAL ra = (REAL)alpha;
    if (act < 0 || act >= FNN_ACT_COUNT) return FNN_EINVAL;
    nt = fnn_act_is_costly(act) ? fnn_use_threads_costly(nt, m * n) : fnn_use_threads(nt, m * n);
    FNN_PARALLEL_FOR(nt, ,
        for (i = 0; i < m; i++) {
            REAL *row = z + i * n;
            if (b) {
                int64_t j;
                for (j = 0; j < n; j++) row[j] += b[j];
            }
            FNN_ISA_OPS->act_fwd_row(n, row, act, ra);
        });
    return FNN_OK;
}

/* dZ = dA * g'(A).
 * a     IN   (m, n) the activation output stored by the forward pass
 * da    IN   (m, n) gradient with respect to A
 * dz    OUT  (m, n) gradient with respect to Z; may be the same buffer as da */
int FNN_SFX(fnn_act_bwd)(int64_t m, int64_t n, const REAL *a, const REAL *da, int act,
                         double alpha, REAL *dz, int nt)
{
    int64_t i;
    const REAL ra = (REAL)alpha;
    if (act < 0 || act >= FNN_ACT_COUNT) return FNN_EINVAL;
    /* derivatives from A are cheap except softplus's expm1 */
    nt = act == FNN_ACT_SOFTPLUS ? fnn_use_threads_costly(nt, m * n) : fnn_use_threads(nt, m * n);
    FNN_PARALLEL_FOR(nt, ,
        for (i = 0; i < m; i++)
            FNN_ISA_OPS->act_bwd_row(n, a + i * n, da + i * n, dz + i * n, act, ra););
    return FNN_OK;
}

/* y = f(x) elementwise for one of the FNN_VM_* functions of vmath.inc.c.
 * x IN (n,);  y OUT (n,), may be x */
int FNN_SFX(fnn_vm_apply)(int fn, int64_t n, const REAL *x, REAL *y, int nt)
{
    if (fn < 0 || fn >= FNN_VM_COUNT || n < 0) return FNN_EINVAL;
    FNN_PARALLEL_RANGE(n, fnn_use_threads_costly(nt, n),
                       FNN_ISA_OPS->vm_apply(fn, hi - lo, x + lo, (REAL)0, y + lo));
    return FNN_OK;
}
