/* optim.inc.c: optimizer updates (spec section 8), in place over flat
 * contiguous buffers: one pass per step for the whole model.
 *
 * Design: every scalar is computed once in double and rounded once to REAL;
 * the elementwise loops live in update_ranges.inc.c, compiled per
 * instruction set and reached through fnn_isa.h's table, and
 * FNN_PARALLEL_RANGE hands each thread its share. Elements are independent,
 * so the thread count cannot change a result. */

/* p <- p - lr g */
int FNN_SFX(fnn_sgd_step)(int64_t n, REAL *p, const REAL *g, double lr, int nt)
{
    FNN_PARALLEL_RANGE(n, fnn_use_threads(nt, n),
                       FNN_ISA_OPS->sgd(lo, hi, p, g, (REAL)lr));
    return FNN_OK;
}

/* Exponentially weighted momentum: v <- beta v + (1 - beta) g; p <- p - lr v */
int FNN_SFX(fnn_momentum_step)(int64_t n, REAL *p, const REAL *g, REAL *v, double lr,
                               double beta, int nt)
{
    FNN_PARALLEL_RANGE(n, fnn_use_threads(nt, n),
                       FNN_ISA_OPS->momentum(lo, hi, p, g, v, (REAL)lr, (REAL)beta,
                                               (REAL)(1.0 - beta)));
    return FNN_OK;
}

/* Classical momentum: v <- mu v - lr g; p <- p + v.
 * Nesterov (scikit-learn's form): v <- mu v - lr g; p <- p + (mu v - lr g). */
int FNN_SFX(fnn_classical_momentum_step)(int64_t n, REAL *p, const REAL *g, REAL *v,
                                         double lr, double momentum, int nesterov, int nt)
{
    FNN_PARALLEL_RANGE(n, fnn_use_threads(nt, n),
                       FNN_ISA_OPS->classical(lo, hi, p, g, v, (REAL)lr, (REAL)momentum,
                                                nesterov));
    return FNN_OK;
}

/* RMSProp: s <- beta s + (1 - beta) g^2; p <- p - lr g / (sqrt(s) + eps) */
int FNN_SFX(fnn_rmsprop_step)(int64_t n, REAL *p, const REAL *g, REAL *s, double lr,
                              double beta, double eps, int nt)
{
    FNN_PARALLEL_RANGE(n, fnn_use_threads(nt, n),
                       FNN_ISA_OPS->rmsprop(lo, hi, p, g, s, (REAL)lr, (REAL)beta,
                                              (REAL)(1.0 - beta), (REAL)eps));
    return FNN_OK;
}

/* The scalars both Adam forms share; step, c and decay are set by the caller. */
static FNN_SFX(fnn_adam_scalars) FNN_SFX(adam_common)(double beta1, double beta2, double eps)
{
    FNN_SFX(fnn_adam_scalars) k;
    k.b1 = (REAL)beta1;
    k.one_minus_b1 = (REAL)(1.0 - beta1);
    k.b2 = (REAL)beta2;
    k.one_minus_b2 = (REAL)(1.0 - beta2);
    k.eps = (REAL)eps;
    k.step = k.c = k.decay = (REAL)0;
    return k;
}

/* Adam with bias correction, t counting steps from 1, and optional decoupled
 * weight decay (AdamW), applied to the weights before the Adam step:
 *   p <- p - (lr wd) p
 *   m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2
 *   p <- p - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
 * computed as p - step (m / (sqrt(v) c + eps)) with step = lr / (1 - b1^t) and
 * c = 1 / sqrt(1 - b2^t) formed once in double: one division and one square
 * root per element instead of three and one (as PyTorch's Adam does). */
int FNN_SFX(fnn_adam_step)(int64_t n, REAL *p, const REAL *g, REAL *m1, REAL *v2,
                           int64_t t, double lr, double beta1, double beta2, double eps,
                           double weight_decay, int nt)
{
    FNN_SFX(fnn_adam_scalars) k = FNN_SFX(adam_common)(beta1, beta2, eps);
    if (t < 1) return FNN_EINVAL;
    k.step = (REAL)(lr / (1.0 - pow(beta1, (double)t)));
    k.c = (REAL)(1.0 / sqrt(1.0 - pow(beta2, (double)t)));
    k.decay = (REAL)(lr * weight_decay);
    FNN_PARALLEL_RANGE(n, fnn_use_threads(nt, n),
                       FNN_ISA_OPS->adam(lo, hi, p, g, m1, v2, &k, weight_decay != 0.0));
    return FNN_OK;
}

/* Adam with the bias correction folded into the step size, as scikit-learn's
 * MLP computes it (equal to the spec's form up to where eps enters):
 *   m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2
 *   p <- p + (-lr_t) (m / (sqrt(v) + eps)),  lr_t = lr sqrt(1 - b2^t) / (1 - b1^t) */
int FNN_SFX(fnn_adam_folded_step)(int64_t n, REAL *p, const REAL *g, REAL *m1, REAL *v2,
                                  int64_t t, double lr, double beta1, double beta2,
                                  double eps, int nt)
{
    FNN_SFX(fnn_adam_scalars) k = FNN_SFX(adam_common)(beta1, beta2, eps);
    if (t < 1) return FNN_EINVAL;
    /* the same update as adam_range with c = 1 (exact) and the step lr_t:
     * p - lr_t x equals p + (-lr_t) x to the bit */
    k.step = (REAL)(lr * sqrt(1.0 - pow(beta2, (double)t)) / (1.0 - pow(beta1, (double)t)));
    k.c = (REAL)1;
    FNN_PARALLEL_RANGE(n, fnn_use_threads(nt, n),
                       FNN_ISA_OPS->adam(lo, hi, p, g, m1, v2, &k, 0));
    return FNN_OK;
}
