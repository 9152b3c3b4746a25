# Design: a compiled network, the bridge between fastnn.model and the C
# training loop (src_c/train.inc.c). Python builds every array once per fit
# (parameter, gradient and optimizer-state arenas, activation and gradient
# buffers); Net only records their addresses in the C structs and keeps the
# arrays alive (typed memoryviews check each one's dtype and layout on the
# way). Each call then runs many batches with the GIL released.
# Included into _kernels.pyx, which owns the BLAS table.
from libc.stdlib cimport calloc, free, malloc


cdef void *_data(object arr, char kind) except? NULL:
    """The data of arr (None -> NULL) through a typed memoryview, so that a wrong
    dtype, layout or number of dimensions raises instead of being misread.
    kind: b"f" float32, b"d" float64, b"q" int64, b"B" uint8; 1-D or 2-D arrays,
    C-contiguous, not empty. The caller keeps arr alive while C holds the address."""
    cdef const float[::1] f1
    cdef const float[:, ::1] f2
    cdef const double[::1] d1
    cdef const double[:, ::1] d2
    cdef const int64_t[::1] q1
    cdef const unsigned char[::1] u1
    if arr is None:
        return NULL
    if arr.size == 0:
        raise ValueError("the network's buffers must not be empty")
    two_d = arr.ndim == 2
    if kind == b"f":
        if two_d:
            f2 = arr
            return <void *>&f2[0, 0]
        f1 = arr
        return <void *>&f1[0]
    if kind == b"d":
        if two_d:
            d2 = arr
            return <void *>&d2[0, 0]
        d1 = arr
        return <void *>&d1[0]
    if kind == b"q":
        q1 = arr
        return <void *>&q1[0]
    u1 = arr
    return <void *>&u1[0]


cdef class Net:
    """A network laid out for the C kernels: see fastnn/_backends.py."""
    cdef fnn_net net
    cdef fnn_optim opt
    cdef fnn_layer *layers
    cdef void *gemm_work
    cdef object keep
    cdef int single
    cdef char real  # the network's dtype, as a kind of _data

    def __cinit__(self):
        self.layers = NULL
        self.gemm_work = NULL

    def __dealloc__(self):
        free(self.layers)
        free(self.gemm_work)

    def __init__(self, bint single, list layers, int loss, params, grads, int64_t n_weights,
                 double l2, double clip_norm, double clip_value, uint64_t seed, int64_t m_max,
                 xbuf, ybuf, gbuf1, gbuf2, int opt_kind, double beta1, double beta2,
                 double eps, double weight_decay, s1, s2, int64_t t, double center_lambda=0.0,
                 double center_alpha=0.0, centers=None, center_scratch=None, swbuf=None,
                 bint skip_zero_weight=False):
        cdef int i
        cdef int64_t work_len = 0
        self.single = single
        self.real = b"f" if single else b"d"
        self.keep = [layers, params, grads, xbuf, ybuf, gbuf1, gbuf2, s1, s2, centers,
                     center_scratch, swbuf]
        self.layers = <fnn_layer *>calloc(len(layers), sizeof(fnn_layer))
        if self.layers == NULL:
            raise MemoryError("cannot allocate the network description")
        for i, spec in enumerate(layers):
            self.layers[i].n_in = spec["n_in"]
            self.layers[i].n_out = spec["n_out"]
            self.layers[i].act = spec["act"]
            self.layers[i].alpha = spec["alpha"]
            self.layers[i].dropout = spec["dropout"]
            self.layers[i].w = _data(spec["W"], self.real)
            self.layers[i].b = _data(spec["b"], self.real)
            self.layers[i].dw = _data(spec["dW"], self.real)
            self.layers[i].db = _data(spec["db"], self.real)
            self.layers[i].a = _data(spec["a"], self.real)
            self.layers[i].a_drop = _data(spec["a_drop"], self.real)
            self.layers[i].alive = <unsigned char *>_data(spec["alive"], b"B")
            self.layers[i].stats = <double *>_data(spec["stats"], b"d")
            # the GEMM packs both operands of forward, weight gradient and input gradient
            work_len = max(work_len,
                           fnn_gemm_work_len(m_max, spec["n_out"], spec["n_in"]),
                           fnn_gemm_work_len(spec["n_in"], spec["n_out"], m_max),
                           fnn_gemm_work_len(m_max, spec["n_in"], spec["n_out"]))
        self.gemm_work = malloc(work_len * (sizeof(float) if single else sizeof(double)))
        if self.gemm_work == NULL:
            raise MemoryError("cannot allocate the GEMM workspace (%d elements)" % work_len)
        self.net.n_layers = len(layers)
        self.net.layers = self.layers
        self.net.loss = loss
        self.net.n_params = params.shape[0]
        self.net.n_weights = n_weights
        self.net.params = _data(params, self.real)
        self.net.grads = _data(grads, self.real)
        self.net.l2 = l2
        self.net.clip_norm = clip_norm
        self.net.clip_value = clip_value
        self.net.seed = seed
        self.net.m_max = m_max
        self.net.xbuf = _data(xbuf, self.real)
        self.net.ybuf = _data(ybuf, b"q" if loss == FNN_LOSS_CROSS_ENTROPY else self.real)
        self.net.swbuf = _data(swbuf, self.real)
        self.net.skip_zero_weight = skip_zero_weight
        self.net.gbuf1 = _data(gbuf1, self.real)
        self.net.gbuf2 = _data(gbuf2, self.real)
        self.net.gemm_work = self.gemm_work
        self.net.center_lambda = center_lambda
        self.net.center_alpha = center_alpha
        self.net.centers = _data(centers, self.real)
        self.net.center_scratch = <double *>_data(center_scratch, b"d")
        self.opt.kind = opt_kind
        self.opt.beta1 = beta1
        self.opt.beta2 = beta2
        self.opt.eps = eps
        self.opt.weight_decay = weight_decay
        self.opt.s1 = _data(s1, self.real)
        self.opt.s2 = _data(s2, self.real)
        self.opt.t = t

    @property
    def t(self):
        """Optimizer steps taken."""
        return self.opt.t

    def set_t(self, int64_t t):
        self.opt.t = t

    def train_batches(self, X, y, const int64_t[::1] perm, int64_t batch_size,
                      int64_t first_batch, int64_t n_batches, const double[::1] lrs,
                      double[::1] batch_loss, int nt, sw=None):
        """Run n_batches steps; returns (status, batches done): FNN_OK,
        FNN_ENONFINITE or FNN_EZEROWEIGHT (other statuses raise). X (n_rows,
        n_in), y (labels, or targets of the output's width) and sw (n_rows,
        sample weights, or None) are C-contiguous in the network's dtype; perm
        holds the rows of X the epoch visits, in order (a subset of them, such
        as the training rows of a split, or all), batch b being
        perm[b * batch_size:(b + 1) * batch_size]; lrs and batch_loss hold one
        entry per batch."""
        cdef int st
        cdef int64_t done = 0, i, lo, hi
        cdef int64_t n_rows = X.shape[0], n_epoch = perm.shape[0]
        cdef void *xp = _data(X, self.real)
        cdef void *yp = _data(y, b"q" if self.net.loss == FNN_LOSS_CROSS_ENTROPY else self.real)
        cdef void *swp = _data(sw, self.real)
        cdef bint out_of_range = False
        if lrs.shape[0] < n_batches or batch_loss.shape[0] < n_batches:
            raise ValueError("train_batches: lrs or batch_loss is too short")
        if y.shape[0] != n_rows or (sw is not None and sw.shape[0] != n_rows):
            raise ValueError("train_batches: X has %d rows, y %d and sw %s"
                             % (n_rows, y.shape[0], "-" if sw is None else sw.shape[0]))
        if n_batches < 1:
            return FNN_OK, 0
        lo = first_batch * batch_size
        hi = min((first_batch + n_batches) * batch_size, n_epoch)
        if first_batch < 0 or lo >= n_epoch:
            raise ValueError("train_batches: batch %d starts past the epoch's %d rows"
                             % (first_batch, n_epoch))
        with nogil:  # every row these batches read lies in X
            for i in range(lo, hi):
                if perm[i] < 0 or perm[i] >= n_rows:
                    out_of_range = True
                    break
        if out_of_range:
            raise ValueError("train_batches: perm holds a row outside X's %d rows" % n_rows)
        with nogil:
            if self.single:
                st = fnn_train_batches_f32(&self.net, &self.opt, <float *>xp, yp, <float *>swp,
                                           &perm[0],
                                           n_epoch, batch_size, first_batch, n_batches, &lrs[0],
                                           &batch_loss[0], &done, nt, &_BLAS)
            else:
                st = fnn_train_batches_f64(&self.net, &self.opt, <double *>xp, yp, <double *>swp,
                                           &perm[0],
                                           n_epoch, batch_size, first_batch, n_batches, &lrs[0],
                                           &batch_loss[0], &done, nt, &_BLAS)
        if st != FNN_OK and st != FNN_ENONFINITE and st != FNN_EZEROWEIGHT:
            _check(st)
        return st, done

    def train_grad(self, X, y, const int64_t[::1] rows, const int64_t[::1] pos, int64_t start,
                   int64_t m, double denom, int nt, sw=None):
        """The gradient phase of one data-parallel step (fastnn/_distributed.py):
        this process's rows[start:start + m] of a batch (rows of X; m may be 0)
        through forward, loss and backward, the loss and gradient divided by
        denom, the whole batch's rows or weight sum; pos[start:start + m] are
        their positions in the batch (which key their dropout masks). Returns
        this part's data loss; the gradient arena holds its gradient (its
        first element NaN when the loss is not finite)."""
        cdef int st
        cdef double loss = 0.0
        cdef int64_t i, n_rows = X.shape[0]
        cdef void *xp = _data(X, self.real)
        cdef void *yp = _data(y, b"q" if self.net.loss == FNN_LOSS_CROSS_ENTROPY else self.real)
        cdef void *swp = _data(sw, self.real)
        cdef const int64_t *rp = NULL
        cdef const int64_t *pp = NULL
        cdef int64_t batch_size = self.net.m_max
        cdef bint out_of_range = False
        if y.shape[0] != n_rows or (sw is not None and sw.shape[0] != n_rows):
            raise ValueError("train_grad: X has %d rows, y %d and sw %s"
                             % (n_rows, y.shape[0], "-" if sw is None else sw.shape[0]))
        if (start < 0 or m < 0 or start + m > rows.shape[0] or pos.shape[0] != rows.shape[0]
                or m > self.net.m_max):
            raise ValueError("train_grad: rows[%d:%d] is outside the %d rows given, or more "
                             "than the network's %d" % (start, start + m, rows.shape[0],
                                                         self.net.m_max))
        if m > 0:
            rp = &rows[start]
            pp = &pos[start]
            with nogil:
                for i in range(m):
                    if rp[i] < 0 or rp[i] >= n_rows or pp[i] < 0 or pp[i] >= batch_size:
                        out_of_range = True
                        break
            if out_of_range:
                raise ValueError("train_grad: rows holds a row outside X's %d rows, or pos a "
                                 "position outside the batch's %d" % (n_rows, batch_size))
        with nogil:
            if self.single:
                st = fnn_train_grad_f32(&self.net, <float *>xp, yp, <float *>swp, rp, pp, m,
                                        denom, <uint64_t>self.opt.t, &loss, nt, &_BLAS)
            else:
                st = fnn_train_grad_f64(&self.net, <double *>xp, yp, <double *>swp, rp, pp, m,
                                        denom, <uint64_t>self.opt.t, &loss, nt, &_BLAS)
        _check(st)
        return loss

    def train_apply(self, double denom, double lr, int nt):
        """The apply phase of one data-parallel step, on the summed gradient
        arena: L2, finiteness check, clipping, optimizer step. Returns
        (status, the batch's L2 loss term): FNN_OK or FNN_ENONFINITE (no step)."""
        cdef int st
        cdef double l2_loss = 0.0
        with nogil:
            if self.single:
                st = fnn_train_apply_f32(&self.net, &self.opt, denom, lr, &l2_loss, nt)
            else:
                st = fnn_train_apply_f64(&self.net, &self.opt, denom, lr, &l2_loss, nt)
        if st != FNN_OK and st != FNN_ENONFINITE:
            _check(st)
        return st, l2_loss

    def train_shard_batches(self, X, y, const int64_t[::1] rows, const int64_t[::1] pos,
                            const int64_t[::1] starts, const int64_t[::1] counts,
                            const double[::1] denoms, int64_t first_batch, int64_t n_batches,
                            const double[::1] lrs, double[::1] data_loss, double[::1] l2_loss,
                            int nt, ProcessSum sum not None, sw=None):
        """Steps first_batch .. first_batch + n_batches - 1 of a data-parallel
        epoch (fastnn/_distributed.py), each its gradient phase, the sum of
        the gradient arena over the processes and its apply phase, in one
        call with the GIL released. rows and pos hold this process's rows of
        every batch (rows of X) and their positions in their batch; batch b's
        part is rows[starts[b]:starts[b] + counts[b]], denoms[b] the whole
        batch's rows or weight sum (0: no step). lrs, data_loss and l2_loss
        hold one entry per batch of this call. Returns (status, batches done):
        FNN_OK, FNN_ENONFINITE (the summed gradient of batch first_batch + done
        was not finite: no step) or FNN_ECOMM (an MPI call failed: sum.error);
        other statuses raise."""
        cdef int st
        cdef int64_t done = 0, b, i, n_rows = X.shape[0], m_max = self.net.m_max
        cdef void *xp = _data(X, self.real)
        cdef void *yp = _data(y, b"q" if self.net.loss == FNN_LOSS_CROSS_ENTROPY else self.real)
        cdef void *swp = _data(sw, self.real)
        cdef bint bad = False
        if y.shape[0] != n_rows or (sw is not None and sw.shape[0] != n_rows):
            raise ValueError("train_shard_batches: X has %d rows, y %d and sw %s"
                             % (n_rows, y.shape[0], "-" if sw is None else sw.shape[0]))
        if sum.item_bytes != (4 if self.single else 8):
            raise ValueError("train_shard_batches: the sum's datatype is not the network's")
        if n_batches < 1:
            return FNN_OK, 0
        if (first_batch < 0 or starts.shape[0] < first_batch + n_batches
                or counts.shape[0] < first_batch + n_batches
                or denoms.shape[0] < first_batch + n_batches or lrs.shape[0] < n_batches
                or data_loss.shape[0] < n_batches or l2_loss.shape[0] < n_batches
                or pos.shape[0] != rows.shape[0]):
            raise ValueError("train_shard_batches: the per-batch arrays do not cover batches "
                             "%d to %d, or rows and pos differ in length"
                             % (first_batch, first_batch + n_batches - 1))
        with nogil:  # every row these batches read lies in X, every part fits the network
            for b in range(first_batch, first_batch + n_batches):
                if (counts[b] < 0 or counts[b] > m_max or starts[b] < 0
                        or starts[b] + counts[b] > rows.shape[0]):
                    bad = True
                    break
                for i in range(starts[b], starts[b] + counts[b]):
                    if rows[i] < 0 or rows[i] >= n_rows or pos[i] < 0 or pos[i] >= m_max:
                        bad = True
                        break
                if bad:
                    break
        if bad:
            raise ValueError("train_shard_batches: batch %d's part lies outside rows, holds "
                             "more rows than the network's %d, or a row outside X's %d rows "
                             "or a position outside the batch" % (b, m_max, n_rows))
        with nogil:
            if self.single:
                st = fnn_train_shard_batches_f32(
                    &self.net, &self.opt, <float *>xp, yp, <float *>swp,
                    &rows[0] if rows.shape[0] > 0 else NULL,
                    &pos[0] if pos.shape[0] > 0 else NULL, &starts[0], &counts[0],
                    &denoms[0], first_batch, n_batches, &lrs[0], &data_loss[0], &l2_loss[0],
                    &done, &sum.s, nt, &_BLAS)
            else:
                st = fnn_train_shard_batches_f64(
                    &self.net, &self.opt, <double *>xp, yp, <double *>swp,
                    &rows[0] if rows.shape[0] > 0 else NULL,
                    &pos[0] if pos.shape[0] > 0 else NULL, &starts[0], &counts[0],
                    &denoms[0], first_batch, n_batches, &lrs[0], &data_loss[0], &l2_loss[0],
                    &done, &sum.s, nt, &_BLAS)
        if st != FNN_OK and st != FNN_ENONFINITE and st != FNN_ECOMM:
            _check(st)
        return st, done
