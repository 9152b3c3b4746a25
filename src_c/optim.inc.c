/* optim.inc.c: optimizer updates (spec section 8), in place over flat
 * contiguous buffers: one pass per step for the whole model.
 *
 * Design: every scalar is computed once in double, rounded once to REAL, and
 * each update is written in exactly the order of operations of
 * fastnn/reference.py, so both agree to the last bit on IEEE hardware (no
 * FMA contraction: setup.py passes -ffp-contract=off). Elements are
 * independent, so the thread count cannot change a result. */

/* Elements are independent: `simd` lets the compiler vectorize the loop
 * (sqrt and division included) without proving the arrays do not overlap. */
#define FNN_ELEMWISE_LOOP(n, nt)                                        \
    int t_ = fnn_use_threads((nt), (n));                                \
    int64_t i;                                                          \
    _Pragma("omp parallel for simd num_threads(t_) schedule(static) if(t_ > 1)") \
    for (i = 0; i < (n); i++)

/* p <- p - lr g */
int FNN_SFX(fnn_sgd_step)(int64_t n, REAL *p, const REAL *g, double lr, int nt)
{
    const REAL rlr = (REAL)lr;
    FNN_ELEMWISE_LOOP(n, nt) p[i] = p[i] - rlr * g[i];
    return FNN_OK;
}

/* Exponentially weighted momentum: v <- beta v + (1 - beta) g; p <- p - lr v */
int FNN_SFX(fnn_momentum_step)(int64_t n, REAL *p, const REAL *g, REAL *v, double lr,
                               double beta, int nt)
{
    const REAL rlr = (REAL)lr, rb = (REAL)beta, r1b = (REAL)(1.0 - beta);
    FNN_ELEMWISE_LOOP(n, nt) {
        REAL vi = rb * v[i] + r1b * g[i];
        v[i] = vi;
        p[i] = p[i] - rlr * vi;
    }
    return FNN_OK;
}

/* Classical momentum: v <- mu v - lr g; p <- p + v.
 * Nesterov (scikit-learn's form): v <- mu v - lr g; p <- p + (mu v - lr g). */
int FNN_SFX(fnn_classical_momentum_step)(int64_t n, REAL *p, const REAL *g, REAL *v,
                                         double lr, double momentum, int nesterov, int nt)
{
    const REAL rlr = (REAL)lr, rmu = (REAL)momentum;
    if (nesterov) {
        FNN_ELEMWISE_LOOP(n, nt) {
            REAL vi = rmu * v[i] - rlr * g[i];
            v[i] = vi;
            p[i] = p[i] + (rmu * vi - rlr * g[i]);
        }
    } else {
        FNN_ELEMWISE_LOOP(n, nt) {
            REAL vi = rmu * v[i] - rlr * g[i];
            v[i] = vi;
            p[i] = p[i] + vi;
        }
    }
    return FNN_OK;
}

/* RMSProp: s <- beta s + (1 - beta) g^2; p <- p - lr g / (sqrt(s) + eps) */
int FNN_SFX(fnn_rmsprop_step)(int64_t n, REAL *p, const REAL *g, REAL *s, double lr,
                              double beta, double eps, int nt)
{
    const REAL rlr = (REAL)lr, rb = (REAL)beta, r1b = (REAL)(1.0 - beta), re = (REAL)eps;
    FNN_ELEMWISE_LOOP(n, nt) {
        REAL si = rb * s[i] + r1b * (g[i] * g[i]);
        s[i] = si;
        p[i] = p[i] - (rlr * g[i]) / (R_SQRT(si) + re);
    }
    return FNN_OK;
}

/* Adam with the bias correction folded into the step size, as scikit-learn's
 * MLP computes it (equal to the spec's form up to where eps enters):
 *   m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2
 *   p <- p + (-lr_t m) / (sqrt(v) + eps),  lr_t = lr sqrt(1 - b2^t) / (1 - b1^t) */
int FNN_SFX(fnn_adam_folded_step)(int64_t n, REAL *p, const REAL *g, REAL *m1, REAL *v2,
                                  int64_t t, double lr, double beta1, double beta2,
                                  double eps, int nt)
{
    const REAL rb1 = (REAL)beta1, r1b1 = (REAL)(1.0 - beta1);
    const REAL rb2 = (REAL)beta2, r1b2 = (REAL)(1.0 - beta2), re = (REAL)eps;
    const REAL neg_lr_t = (REAL)(-(lr * sqrt(1.0 - pow(beta2, (double)t)) /
                                   (1.0 - pow(beta1, (double)t))));
    if (t < 1) return FNN_EINVAL;
    FNN_ELEMWISE_LOOP(n, nt) {
        REAL mi = rb1 * m1[i] + r1b1 * g[i];
        REAL vi = rb2 * v2[i] + r1b2 * (g[i] * g[i]);
        m1[i] = mi;
        v2[i] = vi;
        p[i] = p[i] + (neg_lr_t * mi) / (R_SQRT(vi) + re);
    }
    return FNN_OK;
}

/* Adam with bias correction, t counting steps from 1, and optional decoupled
 * weight decay (AdamW), applied to the weights before the Adam step:
 *   p <- p - (lr wd) p
 *   m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2
 *   p <- p - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
 * computed as p - (step m) / (sqrt(v) c + eps) with step = lr / (1 - b1^t) and
 * c = 1 / sqrt(1 - b2^t) formed once in double: one division and one square
 * root per element instead of three and one (as PyTorch's Adam does). */
int FNN_SFX(fnn_adam_step)(int64_t n, REAL *p, const REAL *g, REAL *m1, REAL *v2,
                           int64_t t, double lr, double beta1, double beta2, double eps,
                           double weight_decay, int nt)
{
    const REAL rlr = (REAL)lr, rb1 = (REAL)beta1, r1b1 = (REAL)(1.0 - beta1);
    const REAL rb2 = (REAL)beta2, r1b2 = (REAL)(1.0 - beta2), re = (REAL)eps;
    const REAL step = (REAL)(lr / (1.0 - pow(beta1, (double)t)));
    const REAL c = (REAL)(1.0 / sqrt(1.0 - pow(beta2, (double)t)));
    const REAL decay = (REAL)(lr * weight_decay);
    (void)rlr;
    if (t < 1) return FNN_EINVAL;
    if (weight_decay != 0.0) {
        FNN_ELEMWISE_LOOP(n, nt) {
            REAL pi = p[i] - decay * p[i];
            REAL mi = rb1 * m1[i] + r1b1 * g[i];
            REAL vi = rb2 * v2[i] + r1b2 * (g[i] * g[i]);
            m1[i] = mi;
            v2[i] = vi;
            p[i] = pi - (step * mi) / (R_SQRT(vi) * c + re);
        }
    } else {
        FNN_ELEMWISE_LOOP(n, nt) {
            REAL mi = rb1 * m1[i] + r1b1 * g[i];
            REAL vi = rb2 * v2[i] + r1b2 * (g[i] * g[i]);
            m1[i] = mi;
            v2[i] = vi;
            p[i] = p[i] - (step * mi) / (R_SQRT(vi) * c + re);
        }
    }
    return FNN_OK;
}
