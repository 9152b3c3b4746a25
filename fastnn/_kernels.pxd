# Declarations of fastnn's C kernels (src_c/fnn.h), one line per symbol.
# Every function is noexcept nogil and returns FNN_OK (0) or a negative status.
from libc.stdint cimport int64_t, uint64_t

cdef extern from "fnn.h" nogil:
    enum:
        FNN_OK
        FNN_EINVAL
        FNN_ENOMEM
        FNN_ELABEL
        FNN_ENONFINITE
        FNN_EZEROWEIGHT
        FNN_ECOMM
        FNN_ACT_IDENTITY
        FNN_ACT_SIGMOID
        FNN_ACT_TANH
        FNN_ACT_RELU
        FNN_ACT_LEAKY_RELU
        FNN_ACT_SOFTPLUS
        FNN_ACT_SOFTMAX
        FNN_ACT_EXP
        FNN_ACT_COUNT
        FNN_LOSS_MSE
        FNN_LOSS_BINARY_CROSS_ENTROPY
        FNN_LOSS_CROSS_ENTROPY
        FNN_LOSS_POISSON
        FNN_LOSS_COUNT
        FNN_OPT_SGD
        FNN_OPT_MOMENTUM
        FNN_OPT_CLASSICAL_MOMENTUM
        FNN_OPT_NESTEROV
        FNN_OPT_RMSPROP
        FNN_OPT_ADAM
        FNN_OPT_ADAM_FOLDED
        FNN_OPT_COUNT

    ctypedef void (*fnn_sgemm_fn)(char *transa, char *transb, int *m, int *n, int *k,
                                  float *alpha, float *a, int *lda, float *b, int *ldb,
                                  float *beta, float *c, int *ldc) noexcept
    ctypedef void (*fnn_dgemm_fn)(char *transa, char *transb, int *m, int *n, int *k,
                                  double *alpha, double *a, int *lda, double *b, int *ldb,
                                  double *beta, double *c, int *ldc) noexcept
    ctypedef struct fnn_blas:
        fnn_sgemm_fn sgemm
        fnn_dgemm_fn dgemm

    ctypedef struct fnn_allsum:
        void *reduce_fn
        void *bcast_fn
        void *allreduce_fn
        int64_t comm
        int64_t datatype
        int64_t op
        void *in_place
        int handle_bytes
        int item_bytes
        int allreduce
        int rank
        int n_procs
        int max_count
        int error

    ctypedef struct fnn_layer:
        int64_t n_in
        int64_t n_out
        int act
        double alpha
        double dropout
        void *w
        void *b
        void *dw
        void *db
        void *a
        void *a_drop
        unsigned char *alive
        double *stats

    ctypedef struct fnn_net:
        int n_layers
        fnn_layer *layers
        int loss
        int64_t n_params
        int64_t n_weights
        void *params
        void *grads
        double l2
        double clip_norm
        double clip_value
        uint64_t seed
        int64_t m_max
        void *xbuf
        void *ybuf
        void *swbuf
        int skip_zero_weight
        void *gbuf1
        void *gbuf2
        void *gemm_work
        double center_lambda
        double center_alpha
        void *centers
        double *center_scratch

    ctypedef struct fnn_optim:
        int kind
        double beta1
        double beta2
        double eps
        double weight_decay
        void *s1
        void *s2
        int64_t t

    uint64_t fnn_dropout_key(uint64_t seed, uint64_t step, uint64_t layer) noexcept
    const char *fnn_build_config() noexcept
    int fnn_openmp_enabled() noexcept


cdef extern from "fnn_isa.h" nogil:
    int FNN_ISA_GENERIC, FNN_ISA_AVX2, FNN_ISA_AVX512, FNN_ISA_COUNT
    int FNN_VM_EXP, FNN_VM_EXPM1, FNN_VM_LOG1P, FNN_VM_LOG, FNN_VM_TANH, FNN_VM_SIGMOID
    int FNN_VM_SOFTPLUS, FNN_VM_COUNT
    int fnn_isa_supported(int isa) noexcept
    int fnn_isa_best() noexcept
    int fnn_isa_select(int isa) noexcept
    int fnn_isa_current() noexcept
    const char *fnn_isa_name(int isa) noexcept


cdef extern from "fnn.h" nogil:

    int fnn_bias_act_fwd_f32(int64_t m, int64_t n, float *z, const float *b, int act, double alpha, int nt) noexcept
    int fnn_act_bwd_f32(int64_t m, int64_t n, const float *a, const float *da, int act, double alpha, float *dz, int nt) noexcept
    int fnn_vm_apply_f32(int fn, int64_t n, const float *x, float *y, int nt) noexcept
    int fnn_dense_fwd_f32(int64_t m, int64_t n_in, int64_t n_out, const float *x, const float *w, const float *b, int act, double alpha, float *a, int nt, const fnn_blas *blas) noexcept
    int fnn_dense_bwd_f32(int64_t m, int64_t n_in, int64_t n_out, const float *x, const float *w, const float *a, const float *da, int act, double alpha, double l2, float *dz, float *dx, float *dw, float *db, int nt, const fnn_blas *blas) noexcept
    int fnn_col_sum_f32(int64_t m, int64_t n, const float *x, float *out, int nt) noexcept
    int fnn_softmax_xent_f32(int64_t m, int64_t k, const float *z, const int64_t *labels, const float *y, const float *sw, float *dz, double *loss, int nt) noexcept
    int fnn_sigmoid_bce_f32(int64_t m, int64_t n, const float *z, const float *y, const float *sw, float *dz, double *loss, int nt) noexcept
    int fnn_mse_f32(int64_t m, int64_t n, const float *a, const float *y, const float *sw, float *da, double *loss, int nt) noexcept
    int fnn_poisson_f32(int64_t m, int64_t n, const float *z, const float *y, const float *sw, float *dz, double *loss, int nt) noexcept
    int fnn_sgd_step_f32(int64_t n, float *p, const float *g, double lr, int nt) noexcept
    int fnn_momentum_step_f32(int64_t n, float *p, const float *g, float *v, double lr, double beta, int nt) noexcept
    int fnn_classical_momentum_step_f32(int64_t n, float *p, const float *g, float *v, double lr, double momentum, int nesterov, int nt) noexcept
    int fnn_rmsprop_step_f32(int64_t n, float *p, const float *g, float *s, double lr, double beta, double eps, int nt) noexcept
    int fnn_adam_step_f32(int64_t n, float *p, const float *g, float *m1, float *v2, int64_t t, double lr, double beta1, double beta2, double eps, double weight_decay, int nt) noexcept
    int fnn_adam_folded_step_f32(int64_t n, float *p, const float *g, float *m1, float *v2, int64_t t, double lr, double beta1, double beta2, double eps, int nt) noexcept
    int fnn_sumsq_f32(int64_t n, const float *x, double *out, int nt) noexcept
    int fnn_scale_f32(int64_t n, float *x, double s, int nt) noexcept
    int fnn_clip_value_f32(int64_t n, float *x, double c, int nt) noexcept
    int fnn_all_finite_f32(int64_t n, const float *x, int nt) noexcept
    int fnn_dropout_apply_f32(int64_t m, int64_t n, const float *x, float *out, double rate, uint64_t key, int nt) noexcept
    int fnn_standardize_fit_f32(int64_t m, int64_t n, const float *x, float *mean, float *std, int nt) noexcept
    int fnn_standardize_transform_f32(int64_t m, int64_t n, const float *x, const float *mean, const float *std, float *out, int nt) noexcept
    int fnn_layer_stats_f32(int64_t m, int64_t n, const float *a, double *out3, int nt) noexcept
    int fnn_bias_act_fwd_f64(int64_t m, int64_t n, double *z, const double *b, int act, double alpha, int nt) noexcept
    int fnn_act_bwd_f64(int64_t m, int64_t n, const double *a, const double *da, int act, double alpha, double *dz, int nt) noexcept
    int fnn_vm_apply_f64(int fn, int64_t n, const double *x, double *y, int nt) noexcept
    int fnn_dense_fwd_f64(int64_t m, int64_t n_in, int64_t n_out, const double *x, const double *w, const double *b, int act, double alpha, double *a, int nt, const fnn_blas *blas) noexcept
    int fnn_dense_bwd_f64(int64_t m, int64_t n_in, int64_t n_out, const double *x, const double *w, const double *a, const double *da, int act, double alpha, double l2, double *dz, double *dx, double *dw, double *db, int nt, const fnn_blas *blas) noexcept
    int fnn_col_sum_f64(int64_t m, int64_t n, const double *x, double *out, int nt) noexcept
    int fnn_softmax_xent_f64(int64_t m, int64_t k, const double *z, const int64_t *labels, const double *y, const double *sw, double *dz, double *loss, int nt) noexcept
    int fnn_sigmoid_bce_f64(int64_t m, int64_t n, const double *z, const double *y, const double *sw, double *dz, double *loss, int nt) noexcept
    int fnn_mse_f64(int64_t m, int64_t n, const double *a, const double *y, const double *sw, double *da, double *loss, int nt) noexcept
    int fnn_poisson_f64(int64_t m, int64_t n, const double *z, const double *y, const double *sw, double *dz, double *loss, int nt) noexcept
    int fnn_sgd_step_f64(int64_t n, double *p, const double *g, double lr, int nt) noexcept
    int fnn_momentum_step_f64(int64_t n, double *p, const double *g, double *v, double lr, double beta, int nt) noexcept
    int fnn_classical_momentum_step_f64(int64_t n, double *p, const double *g, double *v, double lr, double momentum, int nesterov, int nt) noexcept
    int fnn_rmsprop_step_f64(int64_t n, double *p, const double *g, double *s, double lr, double beta, double eps, int nt) noexcept
    int fnn_adam_step_f64(int64_t n, double *p, const double *g, double *m1, double *v2, int64_t t, double lr, double beta1, double beta2, double eps, double weight_decay, int nt) noexcept
    int fnn_adam_folded_step_f64(int64_t n, double *p, const double *g, double *m1, double *v2, int64_t t, double lr, double beta1, double beta2, double eps, int nt) noexcept
    int fnn_sumsq_f64(int64_t n, const double *x, double *out, int nt) noexcept
    int fnn_scale_f64(int64_t n, double *x, double s, int nt) noexcept
    int fnn_clip_value_f64(int64_t n, double *x, double c, int nt) noexcept
    int fnn_all_finite_f64(int64_t n, const double *x, int nt) noexcept
    int fnn_dropout_apply_f64(int64_t m, int64_t n, const double *x, double *out, double rate, uint64_t key, int nt) noexcept
    int fnn_standardize_fit_f64(int64_t m, int64_t n, const double *x, double *mean, double *std, int nt) noexcept
    int fnn_standardize_transform_f64(int64_t m, int64_t n, const double *x, const double *mean, const double *std, double *out, int nt) noexcept
    int fnn_layer_stats_f64(int64_t m, int64_t n, const double *a, double *out3, int nt) noexcept
    int64_t fnn_gemm_work_len(int64_t m, int64_t n, int64_t k) noexcept
    int FNN_GEMM_AUTO
    int FNN_GEMM_PACKED
    int FNN_GEMM_BLAS
    int fnn_gemm_select_path(int path) noexcept
    int fnn_gemm_selected_path() noexcept
    int fnn_gemm_path_in_use() noexcept
    int fnn_gemm_f32(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B, int64_t ldb, int accumulate, float *C, int64_t ldc, int nt, const fnn_blas *blas) noexcept
    int fnn_gemm_f64(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, const double *A, int64_t lda, const double *B, int64_t ldb, int accumulate, double *C, int64_t ldc, int nt, const fnn_blas *blas) noexcept
    int fnn_train_batches_f32(fnn_net *net, fnn_optim *opt, const float *x, const void *y, const float *sw, const int64_t *perm, int64_t n_rows, int64_t batch_size, int64_t first_batch, int64_t n_batches, const double *lrs, double *batch_loss, int64_t *done, int nt, const fnn_blas *blas) noexcept
    int fnn_train_batches_f64(fnn_net *net, fnn_optim *opt, const double *x, const void *y, const double *sw, const int64_t *perm, int64_t n_rows, int64_t batch_size, int64_t first_batch, int64_t n_batches, const double *lrs, double *batch_loss, int64_t *done, int nt, const fnn_blas *blas) noexcept
    int fnn_train_grad_f32(fnn_net *net, const float *x, const void *y, const float *sw, const int64_t *rows, const int64_t *pos, int64_t m, double denom, uint64_t step, double *loss, int nt, const fnn_blas *blas) noexcept
    int fnn_train_grad_f64(fnn_net *net, const double *x, const void *y, const double *sw, const int64_t *rows, const int64_t *pos, int64_t m, double denom, uint64_t step, double *loss, int nt, const fnn_blas *blas) noexcept
    int fnn_train_apply_f32(fnn_net *net, fnn_optim *opt, double denom, double lr, double *l2_loss, int nt) noexcept
    int fnn_train_apply_f64(fnn_net *net, fnn_optim *opt, double denom, double lr, double *l2_loss, int nt) noexcept
    int fnn_train_shard_batches_f32(fnn_net *net, fnn_optim *opt, const float *x, const void *y, const float *sw, const int64_t *rows, const int64_t *pos, const int64_t *starts, const int64_t *counts, const double *denoms, int64_t first_batch, int64_t n_batches, const double *lrs, double *data_loss, double *l2_loss, int64_t *done, fnn_allsum *sum, int nt, const fnn_blas *blas) noexcept
    int fnn_train_shard_batches_f64(fnn_net *net, fnn_optim *opt, const double *x, const void *y, const double *sw, const int64_t *rows, const int64_t *pos, const int64_t *starts, const int64_t *counts, const double *denoms, int64_t first_batch, int64_t n_batches, const double *lrs, double *data_loss, double *l2_loss, int64_t *done, fnn_allsum *sum, int nt, const fnn_blas *blas) noexcept
    int fnn_allsum_run(fnn_allsum *s, void *buf, int64_t count) noexcept
    int fnn_center_loss_f32(int64_t m, int64_t d, int64_t k, const float *x, const int64_t *labels, const float *centers, double lam, float *dx, double *loss, int nt) noexcept
    int fnn_center_update_f32(int64_t m, int64_t d, int64_t k, const float *x, const int64_t *labels, float *centers, double alpha, double *scratch) noexcept
    int fnn_center_loss_f64(int64_t m, int64_t d, int64_t k, const double *x, const int64_t *labels, const double *centers, double lam, double *dx, double *loss, int nt) noexcept
    int fnn_center_update_f64(int64_t m, int64_t d, int64_t k, const double *x, const int64_t *labels, double *centers, double alpha, double *scratch) noexcept
