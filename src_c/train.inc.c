/* train.inc.c: the training loop of a feed-forward network, batch after batch
 * without returning to Python (spec sections 4 to 9).
 *
 * Design: one call runs n_batches consecutive mini-batches of an epoch: gather
 * the rows of the batch by the shuffled permutation into a preallocated
 * buffer, forward through every layer (dropout applied to the layer outputs
 * that have it), the fused loss, backward, global-norm and value clipping,
 * and one optimizer pass over the flat parameter arena. Nothing is allocated:
 * every buffer lives in fnn_net. A loss or gradient that is not finite stops
 * the call before the optimizer step, so the parameters are those of the
 * last completed step; `done` says how many batches completed. Dropout masks
 * are keyed by (seed, optimizer step, position), so a run resumed from saved
 * state draws the same masks as an uninterrupted one. Dense layer l's output
 * dropout has position l + 1. */

static int FNN_SFX(train_act)(const fnn_net *net, int l)
{
    /* a fused loss takes the logits (log of the mean for Poisson): the output
     * layer runs its GEMM only */
    if (l == net->n_layers - 1 && net->loss != FNN_LOSS_MSE) return FNN_ACT_IDENTITY;
    return net->layers[l].act;
}

/* Training forward pass over m rows of x: dropout applied, the output layer
 * left linear for a fused loss. Returns the last layer's output. */
static const REAL *FNN_SFX(net_fwd)(fnn_net *net, const REAL *x, int64_t m, uint64_t step,
                                    const int64_t *pos, int nt, const fnn_blas *blas)
{
    const REAL *in = x;
    int l;
    for (l = 0; l < net->n_layers; l++) {
        fnn_layer *L = &net->layers[l];
        FNN_SFX(dense_fwd)(m, L->n_in, L->n_out, in, (const REAL *)L->w, (const REAL *)L->b,
                           FNN_SFX(train_act)(net, l), L->alpha, (REAL *)L->a, nt,
                           (REAL *)net->gemm_work, blas);
        in = (const REAL *)L->a;
        if (L->dropout > 0) {
            FNN_SFX(dropout_at)(m, L->n_out, in, (REAL *)L->a_drop, L->dropout,
                                fnn_dropout_key(net->seed, step, (uint64_t)l + 1), pos, nt);
            in = (const REAL *)L->a_drop;
        }
    }
    return in;
}

/* The features the output layer reads: the previous layer's output, after
 * its dropout (the center loss is taken on them). */
static const REAL *FNN_SFX(features)(const fnn_net *net)
{
    const fnn_layer *prev = &net->layers[net->n_layers - 2];
    return (const REAL *)(prev->a_drop ? prev->a_drop : prev->a);
}

static void FNN_SFX(gather)(const fnn_net *net, const REAL *x, const void *y, const REAL *sw,
                            const int64_t *rows, int64_t m, int nt)
{
    const int64_t n0 = net->layers[0].n_in, k = net->layers[net->n_layers - 1].n_out;
    REAL *xb = (REAL *)net->xbuf;
    int64_t i;
    int t = fnn_use_threads(nt, m * n0);
    FNN_PARALLEL_FOR(t, ,
        for (i = 0; i < m; i++) {
            const REAL *src = x + rows[i] * n0;
            REAL *dst = xb + i * n0;
            int64_t j;
            for (j = 0; j < n0; j++) dst[j] = src[j];
        });
    if (net->loss == FNN_LOSS_CROSS_ENTROPY) {
        const int64_t *ys = (const int64_t *)y;
        int64_t *yd = (int64_t *)net->ybuf;
        for (i = 0; i < m; i++) yd[i] = ys[rows[i]];
    } else {
        const REAL *ys = (const REAL *)y;
        REAL *yd = (REAL *)net->ybuf;
        for (i = 0; i < m; i++) {
            int64_t j;
            for (j = 0; j < k; j++) yd[i * k + j] = ys[rows[i] * k + j];
        }
    }
    if (sw) {
        REAL *wd = (REAL *)net->swbuf;
        for (i = 0; i < m; i++) wd[i] = sw[rows[i]];
    }
}

static int FNN_SFX(optim_step)(fnn_net *net, fnn_optim *opt, double lr, int nt)
{
    REAL *p = (REAL *)net->params, *g = (REAL *)net->grads;
    REAL *s1 = (REAL *)opt->s1, *s2 = (REAL *)opt->s2;
    const int64_t n = net->n_params, nw = net->n_weights;
    const int64_t t = opt->t + 1;
    switch (opt->kind) {
    case FNN_OPT_SGD:
        return FNN_SFX(fnn_sgd_step)(n, p, g, lr, nt);
    case FNN_OPT_MOMENTUM:
        return FNN_SFX(fnn_momentum_step)(n, p, g, s1, lr, opt->beta1, nt);
    case FNN_OPT_CLASSICAL_MOMENTUM:
    case FNN_OPT_NESTEROV:
        return FNN_SFX(fnn_classical_momentum_step)(n, p, g, s1, lr, opt->beta1,
                                                    opt->kind == FNN_OPT_NESTEROV, nt);
    case FNN_OPT_RMSPROP:
        return FNN_SFX(fnn_rmsprop_step)(n, p, g, s1, lr, opt->beta1, opt->eps, nt);
    case FNN_OPT_ADAM: {
        /* decoupled weight decay acts on the weights only */
        int st = FNN_SFX(fnn_adam_step)(nw, p, g, s1, s2, t, lr, opt->beta1, opt->beta2,
                                        opt->eps, opt->weight_decay, nt);
        if (st != FNN_OK || n == nw) return st;
        return FNN_SFX(fnn_adam_step)(n - nw, p + nw, g + nw, s1 + nw, s2 + nw, t, lr,
                                      opt->beta1, opt->beta2, opt->eps, 0.0, nt);
    }
    case FNN_OPT_ADAM_FOLDED:
        return FNN_SFX(fnn_adam_folded_step)(n, p, g, s1, s2, t, lr, opt->beta1, opt->beta2,
                                             opt->eps, nt);
    default:
        return FNN_EINVAL;
    }
}

/* Diagnostics of one batch (spec section 10): activation mean and variance,
 * gradient norm per layer, and which units were active. */
static void FNN_SFX(diagnose)(fnn_net *net, int64_t m, int nt)
{
    int l;
    for (l = 0; l < net->n_layers; l++) {
        fnn_layer *L = &net->layers[l];
        const REAL *a = (const REAL *)L->a;
        double s3[3], gw = 0.0, gb = 0.0;
        int64_t i, j;
        if (!L->stats) continue;
        FNN_SFX(fnn_layer_stats)(m, L->n_out, a, s3, nt);
        FNN_SFX(fnn_sumsq)(L->n_in * L->n_out, (const REAL *)L->dw, &gw, nt);
        FNN_SFX(fnn_sumsq)(L->n_out, (const REAL *)L->db, &gb, nt);
        L->stats[0] += s3[0];
        L->stats[1] += s3[1];
        L->stats[2] += sqrt(gw + gb);
        if (L->alive)
            for (i = 0; i < m; i++)
                for (j = 0; j < L->n_out; j++) L->alive[j] |= a[i * L->n_out + j] > 0;
    }
}

/* Runs batches first_batch .. first_batch + n_batches - 1 of an epoch.
 * x          IN  (n_rows, n_in) training inputs
 * y          IN  (n_rows,) int64 labels for FNN_LOSS_CROSS_ENTROPY, else (n_rows, n_out) REAL
 * sw         IN  (n_rows,) sample weights, or NULL; needs net->swbuf. Each batch's
 *                loss is its weighted mean, and the L2 term is divided by the
 *                batch's weight sum instead of its rows (scikit-learn's form)
 * perm       IN  (n_rows,) the epoch's row order; batch b is perm[b*B, (b+1)*B)
 * lrs        IN  (n_batches,) learning rate of each batch's step
 * batch_loss OUT (n_batches,) loss of each batch (with the L2 term), before its step
 * done       OUT batches completed (== n_batches unless a status is returned)
 * Returns FNN_ENONFINITE when a loss or gradient is not finite (no step taken
 * for that batch; the gradient arena holds its gradients for diagnosis), and
 * FNN_EZEROWEIGHT, before any work on it, for a batch whose weights sum to 0
 * (unless net->skip_zero_weight: such a batch is then skipped, loss 0). */
int FNN_SFX(fnn_train_batches)(fnn_net *net, fnn_optim *opt, const REAL *x, const void *y,
                               const REAL *sw, const int64_t *perm, int64_t n_rows,
                               int64_t batch_size,
                               int64_t first_batch, int64_t n_batches, const double *lrs,
                               double *batch_loss, int64_t *done, int nt,
                               const fnn_blas *blas)
{
    const int L = net->n_layers;
    const fnn_layer *last = &net->layers[L - 1];
    int64_t bi;
    *done = 0;
    if (L < 1 || batch_size < 1 || batch_size > net->m_max) return FNN_EINVAL;
    if (net->center_lambda > 0 && (L < 2 || net->loss != FNN_LOSS_CROSS_ENTROPY ||
                                   !net->centers || !net->center_scratch || sw))
        return FNN_EINVAL;
    if (sw && !net->swbuf) return FNN_EINVAL;
    for (bi = 0; bi < n_batches; bi++) {
        const int64_t r0 = (first_batch + bi) * batch_size;
        const int64_t m = r0 + batch_size <= n_rows ? batch_size : n_rows - r0;
        const uint64_t step = (uint64_t)opt->t;
        const REAL *out;
        REAL *g = (REAL *)net->gbuf1, *other = (REAL *)net->gbuf2, *tmp;
        const REAL *wb = sw ? (const REAL *)net->swbuf : NULL;
        const REAL *yb = (const REAL *)net->ybuf;
        double loss = 0.0, gsq = 0.0, denom;
        int st, l;
        if (m <= 0) return FNN_EINVAL;

        FNN_SFX(gather)(net, x, y, sw, perm + r0, m, nt);
        /* the mean's denominator: rows, or the batch's weight sum */
        st = FNN_SFX(weight_denominator)(m, wb, &denom);
        if (st == FNN_EZEROWEIGHT && net->skip_zero_weight) {
            batch_loss[bi] = 0.0; /* no mean, no step; the optimizer's t stays */
            *done = bi + 1;
            continue;
        }
        if (st != FNN_OK) return st;
        out = FNN_SFX(net_fwd)(net, (const REAL *)net->xbuf, m, step, NULL, nt, blas);

        /* loss and the gradient it feeds the output layer */
        switch (net->loss) {
        case FNN_LOSS_CROSS_ENTROPY:
            st = FNN_SFX(fnn_softmax_xent)(m, last->n_out, out, (const int64_t *)net->ybuf,
                                           NULL, wb, g, &loss, nt);
            break;
        case FNN_LOSS_BINARY_CROSS_ENTROPY:
            st = FNN_SFX(fnn_sigmoid_bce)(m, last->n_out, out, yb, wb, g, &loss, nt);
            break;
        case FNN_LOSS_POISSON:
            st = FNN_SFX(fnn_poisson)(m, last->n_out, out, yb, wb, g, &loss, nt);
            break;
        default:
            st = FNN_SFX(fnn_mse)(m, last->n_out, out, yb, wb, g, &loss, nt);
        }
        if (st != FNN_OK) return st;
        if (net->center_lambda > 0) {
            double lc = 0.0;
            st = FNN_SFX(fnn_center_loss)(m, last->n_in, last->n_out,
                                          FNN_SFX(features)(net), (const int64_t *)net->ybuf,
                                          (const REAL *)net->centers, net->center_lambda,
                                          NULL, &lc, nt);
            if (st != FNN_OK) return st;
            loss += lc;
        }
        if (net->l2 > 0) {
            double wsq = 0.0;
            FNN_SFX(fnn_sumsq)(net->n_weights, (const REAL *)net->params, &wsq, nt);
            loss += net->l2 / (2.0 * denom) * wsq;
        }
        batch_loss[bi] = loss;
        if (!isfinite(loss)) return FNN_ENONFINITE;

        /* backward: g holds dJ/d(output of layer l, after its dropout) */
        for (l = L - 1; l >= 0; l--) {
            fnn_layer *Ly = &net->layers[l];
            const REAL *in = l == 0 ? (const REAL *)net->xbuf
                : (const REAL *)(net->layers[l - 1].a_drop ? net->layers[l - 1].a_drop
                                                           : net->layers[l - 1].a);
            if (l == L - 2 && net->center_lambda > 0) {
                /* the center loss's gradient joins at the features it is taken on */
                double unused;
                st = FNN_SFX(fnn_center_loss)(m, Ly->n_out, last->n_out, FNN_SFX(features)(net),
                                              (const int64_t *)net->ybuf,
                                              (const REAL *)net->centers, net->center_lambda,
                                              g, &unused, nt);
                if (st != FNN_OK) return st;
            }
            if (Ly->dropout > 0)
                FNN_SFX(fnn_dropout_apply)(m, Ly->n_out, g, g, Ly->dropout,
                                           fnn_dropout_key(net->seed, step, (uint64_t)l + 1),
                                           nt);
            st = FNN_SFX(dense_bwd)(m, Ly->n_in, Ly->n_out, in, (const REAL *)Ly->w,
                                    (const REAL *)Ly->a, g, FNN_SFX(train_act)(net, l),
                                    Ly->alpha, net->l2 / denom, g, l > 0 ? other : NULL,
                                    (REAL *)Ly->dw, (REAL *)Ly->db, nt,
                                    (REAL *)net->gemm_work, blas);
            if (st != FNN_OK) return st;
            tmp = g; g = other; other = tmp;
        }

        /* one norm serves the finiteness check and clipping */
        FNN_SFX(fnn_sumsq)(net->n_params, (const REAL *)net->grads, &gsq, nt);
        if (!isfinite(gsq)) return FNN_ENONFINITE;
        if (net->center_lambda > 0) {
            st = FNN_SFX(fnn_center_update)(m, last->n_in, last->n_out, FNN_SFX(features)(net),
                                            (const int64_t *)net->ybuf, (REAL *)net->centers,
                                            net->center_alpha, net->center_scratch);
            if (st != FNN_OK) return st;
        }
        if (net->layers[0].stats) FNN_SFX(diagnose)(net, m, nt);
        if (net->clip_norm > 0 && sqrt(gsq) > net->clip_norm)
            FNN_SFX(fnn_scale)(net->n_params, (REAL *)net->grads, net->clip_norm / sqrt(gsq), nt);
        if (net->clip_value > 0)
            FNN_SFX(fnn_clip_value)(net->n_params, (REAL *)net->grads, net->clip_value, nt);

        st = FNN_SFX(optim_step)(net, opt, lrs[bi], nt);
        if (st != FNN_OK) return st;
        opt->t += 1;
        *done = bi + 1;
    }
    return FNN_OK;
}

/* Data-parallel training splits a step in two, with the sum of the gradient
 * arena over the processes between them (fastnn/_distributed.py). Each
 * process holds a shard of the rows; a global batch's rows fall partly in
 * each shard. The gradient phase runs this process's part of the batch and
 * leaves in the gradient arena its part of the batch-mean gradient (its rows'
 * sum over the whole batch's rows or weight sum, no L2): the parts add up to
 * the whole batch's gradient. The apply phase then runs on the summed arena,
 * identical on every process, what fnn_train_batches does after the backward
 * pass: L2, the finiteness check, clipping, the optimizer step. So every
 * process takes the same step. The center loss and diagnostics are not part
 * of this path (they need the whole batch). */

/* The gradient phase of one step over this process's m rows of a batch.
 * x, y, sw IN  as fnn_train_batches
 * rows     IN  (m,) rows of x in the batch, in batch order; m may be 0 (the
 *              gradient is then 0)
 * pos      IN  (m,) each row's position in the whole batch, which keys its
 *              dropout masks as in a one-process run, or NULL (0..m-1)
 * denom    IN  the whole batch's rows, or its weight sum with sw (not 0)
 * loss     OUT this part's data loss: its sum over denom (no L2 term)
 * The gradient arena holds the part's gradient. A loss that is not finite
 * sets the arena's first element to NaN, so that the summed gradient is not
 * finite on every process and all of them stop at this step. */
int FNN_SFX(fnn_train_grad)(fnn_net *net, const REAL *x, const void *y, const REAL *sw,
                            const int64_t *rows, const int64_t *pos, int64_t m, double denom,
                            uint64_t step, double *loss, int nt, const fnn_blas *blas)
{
    const int L = net->n_layers;
    const fnn_layer *last = &net->layers[L - 1];
    REAL *g = (REAL *)net->gbuf1, *other = (REAL *)net->gbuf2, *tmp;
    const REAL *out;
    int st, l;
    *loss = 0.0;
    if (L < 1 || m < 0 || m > net->m_max || !(denom != 0.0) || net->center_lambda > 0 ||
        (sw && !net->swbuf))
        return FNN_EINVAL;
    if (m == 0) {
        int64_t i;
        REAL *grads = (REAL *)net->grads;
        for (i = 0; i < net->n_params; i++) grads[i] = 0;
        return FNN_OK;
    }
    FNN_SFX(gather)(net, x, y, sw, rows, m, nt);
    out = FNN_SFX(net_fwd)(net, (const REAL *)net->xbuf, m, step, pos, nt, blas);
    st = FNN_SFX(fused_loss_over)(net->loss, m, last->n_out, out, (const int64_t *)net->ybuf,
                                  (const REAL *)net->ybuf, sw ? (const REAL *)net->swbuf : NULL,
                                  g, denom, loss, nt);
    if (st != FNN_OK) return st;
    for (l = L - 1; l >= 0; l--) {
        fnn_layer *Ly = &net->layers[l];
        const REAL *in = l == 0 ? (const REAL *)net->xbuf
            : (const REAL *)(net->layers[l - 1].a_drop ? net->layers[l - 1].a_drop
                                                       : net->layers[l - 1].a);
        if (Ly->dropout > 0)
            FNN_SFX(dropout_at)(m, Ly->n_out, g, g, Ly->dropout,
                                fnn_dropout_key(net->seed, step, (uint64_t)l + 1), pos, nt);
        st = FNN_SFX(dense_bwd)(m, Ly->n_in, Ly->n_out, in, (const REAL *)Ly->w,
                                (const REAL *)Ly->a, g, FNN_SFX(train_act)(net, l), Ly->alpha,
                                0.0, g, l > 0 ? other : NULL, (REAL *)Ly->dw, (REAL *)Ly->db, nt,
                                (REAL *)net->gemm_work, blas);
        if (st != FNN_OK) return st;
        tmp = g; g = other; other = tmp;
    }
    if (!isfinite(*loss)) ((REAL *)net->grads)[0] = (REAL)NAN;
    return FNN_OK;
}

/* The apply phase of one step, on the summed gradient arena.
 * denom   IN  the whole batch's rows or weight sum (as fnn_train_grad's)
 * lr      IN  the step's learning rate
 * l2_loss OUT the L2 term of the batch's loss, lambda / (2 denom) ||W||^2,
 *             from the weights before the step
 * Returns FNN_ENONFINITE, without a step, when the summed gradient is not
 * finite. */
int FNN_SFX(fnn_train_apply)(fnn_net *net, fnn_optim *opt, double denom, double lr,
                             double *l2_loss, int nt)
{
    double gsq = 0.0;
    int st;
    *l2_loss = 0.0;
    if (!(denom != 0.0)) return FNN_EINVAL;
    if (net->l2 > 0) {
        /* dW += (lambda / denom) W, the term fnn_train_batches adds in the backward pass */
        const REAL rl2 = (REAL)(net->l2 / denom);
        const REAL *w = (const REAL *)net->params;
        REAL *dw = (REAL *)net->grads;
        const int64_t n = net->n_weights;
        double wsq = 0.0;
        int64_t i;
        int t = fnn_use_threads(nt, n);
        FNN_SFX(fnn_sumsq)(n, w, &wsq, nt);
        *l2_loss = net->l2 / (2.0 * denom) * wsq;
        FNN_PARALLEL_FOR(t, ,
            for (i = 0; i < n; i++) dw[i] += rl2 * w[i];);
    }
    FNN_SFX(fnn_sumsq)(net->n_params, (const REAL *)net->grads, &gsq, nt);
    if (!isfinite(gsq)) return FNN_ENONFINITE;
    if (net->clip_norm > 0 && sqrt(gsq) > net->clip_norm)
        FNN_SFX(fnn_scale)(net->n_params, (REAL *)net->grads, net->clip_norm / sqrt(gsq), nt);
    if (net->clip_value > 0)
        FNN_SFX(fnn_clip_value)(net->n_params, (REAL *)net->grads, net->clip_value, nt);
    st = FNN_SFX(optim_step)(net, opt, lr, nt);
    if (st != FNN_OK) return st;
    opt->t += 1;
    return FNN_OK;
}

/* Steps first_batch .. first_batch + n_batches - 1 of a data-parallel epoch,
 * each the gradient phase, the sum of the gradient arena over the processes
 * (sum, allsum.c) and the apply phase, without returning to the caller
 * between steps.
 * rows, pos     IN  this process's rows of every batch (rows of x), batch
 *                   after batch, and their positions in their batch
 * starts, counts IN (per batch) where the batch's part starts in rows, and
 *                   its length (0 when the batch has no row here)
 * denoms        IN  (per batch) the whole batch's rows or weight sum; a batch
 *                   whose weights sum to 0 takes no step on any process
 * lrs           IN  (n_batches,) each step's learning rate
 * data_loss, l2_loss OUT (n_batches,) this part's data loss, and the batch's
 *                   L2 term (the same on every process)
 * starts, counts and denoms are indexed by the batch's number in the epoch,
 * lrs and the losses by its number in this call, as in fnn_train_batches.
 * done          OUT the batches completed
 * Returns FNN_ENONFINITE (without a step) at the first batch whose summed
 * gradient is not finite, FNN_ECOMM when an MPI call failed. */
int FNN_SFX(fnn_train_shard_batches)(fnn_net *net, fnn_optim *opt, const REAL *x,
                                     const void *y, const REAL *sw, const int64_t *rows,
                                     const int64_t *pos, const int64_t *starts,
                                     const int64_t *counts, const double *denoms,
                                     int64_t first_batch, int64_t n_batches,
                                     const double *lrs, double *data_loss, double *l2_loss,
                                     int64_t *done, fnn_allsum *sum, int nt,
                                     const fnn_blas *blas)
{
    int64_t b;
    int st;
    *done = 0;
    for (b = first_batch; b < first_batch + n_batches; b++) {
        const int64_t k = b - first_batch;
        data_loss[k] = l2_loss[k] = 0.0;
        if (denoms[b] == 0.0) { /* no rows or no weight: no step anywhere */
            *done = k + 1;
            continue;
        }
        st = FNN_SFX(fnn_train_grad)(net, x, y, sw, rows + starts[b], pos + starts[b],
                                     counts[b], denoms[b], (uint64_t)opt->t, &data_loss[k],
                                     nt, blas);
        if (st != FNN_OK) return st;
        st = fnn_allsum_run(sum, net->grads, net->n_params);
        if (st != FNN_OK) return st;
        st = FNN_SFX(fnn_train_apply)(net, opt, denoms[b], lrs[k], &l2_loss[k], nt);
        if (st != FNN_OK) return st;
        *done = k + 1;
    }
    return FNN_OK;
}
