# Design: a compiled network, the bridge between fastnn.model and the C
# training loop (src_c/train.inc.c). Python builds every array once per fit
# (parameter, gradient and optimizer-state arenas, activation and gradient
# buffers); Net only records their addresses in the C structs and keeps the
# arrays alive. Each call then runs many batches with the GIL released.
# Included into _kernels.pyx, which owns the BLAS table.
from libc.stdlib cimport calloc, free, malloc


cdef inline void *_addr(object arr):
    """Address of a C-contiguous NumPy array's data (None -> NULL)."""
    if arr is None:
        return NULL
    return <void *><size_t>arr.__array_interface__["data"][0]


cdef class Net:
    """A network laid out for the C kernels: see fastnn/_backends.py."""
    cdef fnn_net net
    cdef fnn_optim opt
    cdef fnn_layer *layers
    cdef void *gemm_work
    cdef object keep
    cdef int single

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
                 double center_alpha=0.0, centers=None, center_scratch=None):
        cdef int i
        cdef int64_t work_len = 0
        self.single = single
        self.keep = [layers, params, grads, xbuf, ybuf, gbuf1, gbuf2, s1, s2, centers,
                     center_scratch]
        self.layers = <fnn_layer *>calloc(len(layers), sizeof(fnn_layer))
        if self.layers == NULL:
            raise MemoryError("cannot allocate the network description")
        for i, spec in enumerate(layers):
            self.layers[i].n_in = spec["n_in"]
            self.layers[i].n_out = spec["n_out"]
            self.layers[i].act = spec["act"]
            self.layers[i].alpha = spec["alpha"]
            self.layers[i].dropout = spec["dropout"]
            self.layers[i].w = _addr(spec["W"])
            self.layers[i].b = _addr(spec["b"])
            self.layers[i].dw = _addr(spec["dW"])
            self.layers[i].db = _addr(spec["db"])
            self.layers[i].a = _addr(spec["a"])
            self.layers[i].a_drop = _addr(spec["a_drop"])
            self.layers[i].alive = <unsigned char *>_addr(spec["alive"])
            self.layers[i].stats = <double *>_addr(spec["stats"])
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
        self.net.params = _addr(params)
        self.net.grads = _addr(grads)
        self.net.l2 = l2
        self.net.clip_norm = clip_norm
        self.net.clip_value = clip_value
        self.net.seed = seed
        self.net.m_max = m_max
        self.net.xbuf = _addr(xbuf)
        self.net.ybuf = _addr(ybuf)
        self.net.gbuf1 = _addr(gbuf1)
        self.net.gbuf2 = _addr(gbuf2)
        self.net.gemm_work = self.gemm_work
        self.net.center_lambda = center_lambda
        self.net.center_alpha = center_alpha
        self.net.centers = _addr(centers)
        self.net.center_scratch = <double *>_addr(center_scratch)
        self.opt.kind = opt_kind
        self.opt.beta1 = beta1
        self.opt.beta2 = beta2
        self.opt.eps = eps
        self.opt.weight_decay = weight_decay
        self.opt.s1 = _addr(s1)
        self.opt.s2 = _addr(s2)
        self.opt.t = t

    @property
    def t(self):
        """Optimizer steps taken."""
        return self.opt.t

    def set_t(self, int64_t t):
        self.opt.t = t

    def train_batches(self, X, y, perm, int64_t batch_size, int64_t first_batch,
                      int64_t n_batches, lrs, batch_loss, int nt):
        """Run n_batches steps; returns (status, batches done). Arrays are
        validated by the caller (C-contiguous, the network's dtype)."""
        cdef int st
        cdef int64_t done = 0
        cdef void *xp = _addr(X)
        cdef void *yp = _addr(y)
        cdef int64_t *pp = <int64_t *>_addr(perm)
        cdef double *lp = <double *>_addr(lrs)
        cdef double *bl = <double *>_addr(batch_loss)
        cdef int64_t n_rows = X.shape[0]
        with nogil:
            if self.single:
                st = fnn_train_batches_f32(&self.net, &self.opt, <float *>xp, yp, pp, n_rows,
                                           batch_size, first_batch, n_batches, lp, bl, &done,
                                           nt, &_BLAS)
            else:
                st = fnn_train_batches_f64(&self.net, &self.opt, <double *>xp, yp, pp, n_rows,
                                           batch_size, first_batch, n_batches, lp, bl, &done,
                                           nt, &_BLAS)
        if st != FNN_OK and st != FNN_ENONFINITE:
            _check(st)
        return st, done

    def forward(self, X, out, int nt):
        """Inference forward pass of X (m <= m_max rows) into out."""
        cdef int st
        cdef void *xp = _addr(X)
        cdef void *op = _addr(out)
        cdef int64_t m = X.shape[0]
        with nogil:
            if self.single:
                st = fnn_net_forward_f32(&self.net, <float *>xp, m, <float *>op, nt, &_BLAS)
            else:
                st = fnn_net_forward_f64(&self.net, <double *>xp, m, <double *>op, nt, &_BLAS)
        _check(st)
