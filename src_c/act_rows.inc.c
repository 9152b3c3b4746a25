/* act_rows.inc.c: one row of an activation, forward and backward, and the
 * elementwise math functions over an array; compiled once per instruction
 * set (isa_variant.inc.c) and reached through fnn_isa.h's table.
 *
 * Design: every loop is `omp simd` over the branch-free functions of
 * vmath.inc.c, so tanh, sigmoid and softplus run at vector speed like relu.
 * sigmoid and softplus use sign-split forms (no overflow for any finite z);
 * softmax subtracts the row max and sums its normalizer in double, in order. */

/* Elementwise activation of one row of n values, in place. */
static void FNN_SFX(act_fwd_row)(int64_t n, REAL *z, int act, REAL alpha)
{
    int64_t j;
    switch (act) {
    case FNN_ACT_SIGMOID:
        #pragma omp simd
        for (j = 0; j < n; j++) z[j] = FNN_SFX(vm_sigmoid)(z[j]);
        break;
    case FNN_ACT_TANH:
        #pragma omp simd
        for (j = 0; j < n; j++) z[j] = FNN_SFX(vm_tanh)(z[j]);
        break;
    case FNN_ACT_RELU:
        #pragma omp simd
        for (j = 0; j < n; j++) {
            REAL v = z[j];
            z[j] = v > 0 ? v : (REAL)0;
        }
        break;
    case FNN_ACT_LEAKY_RELU:
        #pragma omp simd
        for (j = 0; j < n; j++) {
            REAL v = z[j];
            z[j] = v > 0 ? v : alpha * v;
        }
        break;
    case FNN_ACT_SOFTPLUS:
        #pragma omp simd
        for (j = 0; j < n; j++) z[j] = FNN_SFX(vm_softplus)(z[j]);
        break;
    case FNN_ACT_EXP:
        #pragma omp simd
        for (j = 0; j < n; j++) z[j] = FNN_SFX(vm_exp)(z[j]);
        break;
    case FNN_ACT_SOFTMAX: {
        REAL zmax = z[0];
        double s = 0.0;
        for (j = 1; j < n; j++) zmax = z[j] > zmax ? z[j] : zmax;
        #pragma omp simd
        for (j = 0; j < n; j++) z[j] = FNN_SFX(vm_exp)(z[j] - zmax);
        for (j = 0; j < n; j++) s += (double)z[j];
        for (j = 0; j < n; j++) z[j] = (REAL)((double)z[j] / s);
        break;
    }
    default: /* identity */
        break;
    }
}

/* dZ = dA * g'(A) for one row; dz may alias da. */
static void FNN_SFX(act_bwd_row)(int64_t n, const REAL *a, const REAL *da, REAL *dz, int act,
                                 REAL alpha)
{
    int64_t j;
    switch (act) {
    case FNN_ACT_SIGMOID:
        #pragma omp simd
        for (j = 0; j < n; j++) dz[j] = da[j] * (a[j] * ((REAL)1 - a[j]));
        break;
    case FNN_ACT_TANH:
        #pragma omp simd
        for (j = 0; j < n; j++) dz[j] = da[j] * ((REAL)1 - a[j] * a[j]);
        break;
    case FNN_ACT_RELU:
        /* unconditional loads and a select: a branch here mispredicts on half the units */
        #pragma omp simd
        for (j = 0; j < n; j++) {
            REAL d = da[j];
            dz[j] = a[j] > 0 ? d : (REAL)0;
        }
        break;
    case FNN_ACT_LEAKY_RELU:
        #pragma omp simd
        for (j = 0; j < n; j++) {
            REAL d = da[j];
            dz[j] = a[j] > 0 ? d : d * alpha;
        }
        break;
    case FNN_ACT_SOFTPLUS:
        /* g'(z) = sigmoid(z) = 1 - exp(-a), written with expm1 for small a */
        #pragma omp simd
        for (j = 0; j < n; j++) dz[j] = da[j] * FNN_SFX(vm_softplus_grad)(a[j]);
        break;
    case FNN_ACT_EXP:
        /* g'(z) = exp(z) = a */
        #pragma omp simd
        for (j = 0; j < n; j++) dz[j] = da[j] * a[j];
        break;
    case FNN_ACT_SOFTMAX: {
        /* dz_j = a_j (da_j - sum_k da_k a_k); the dot is summed in double */
        double dot = 0.0;
        for (j = 0; j < n; j++) dot += (double)da[j] * (double)a[j];
        for (j = 0; j < n; j++) dz[j] = a[j] * (REAL)((double)da[j] - dot);
        break;
    }
    default:
        if (dz != da)
            for (j = 0; j < n; j++) dz[j] = da[j];
        break;
    }
}

/* y = f(x - shift) elementwise for one of the FNN_VM_* functions; y may be x. */
#define FNN_VM_LOOP(f)                                                       \
    do {                                                                     \
        _Pragma("omp simd")                                                  \
        for (j = 0; j < n; j++) y[j] = FNN_SFX(f)(x[j] - shift);             \
    } while (0)
static void FNN_SFX(vm_apply)(int fn, int64_t n, const REAL *x, REAL shift, REAL *y)
{
    int64_t j;
    switch (fn) {
    case FNN_VM_EXP: FNN_VM_LOOP(vm_exp); break;
    case FNN_VM_EXPM1: FNN_VM_LOOP(vm_expm1); break;
    case FNN_VM_LOG1P: FNN_VM_LOOP(vm_log1p); break;
    case FNN_VM_LOG: FNN_VM_LOOP(vm_log); break;
    case FNN_VM_TANH: FNN_VM_LOOP(vm_tanh); break;
    case FNN_VM_SIGMOID: FNN_VM_LOOP(vm_sigmoid); break;
    case FNN_VM_SOFTPLUS: FNN_VM_LOOP(vm_softplus); break;
    default: break;
    }
}
#undef FNN_VM_LOOP
