/* fnn.h: the whole C API of fastnn's kernels.
 *
 * Conventions (see docs/architecture.md):
 *  - every array is C-contiguous (row-major) and of the kernel's REAL type;
 *    shapes use the spec's notation: a batch has m rows, a dense layer maps
 *    n_in -> n_out, W is (n_in, n_out), b is (n_out,);
 *  - kernels never allocate except small per-call scratch, which is checked;
 *  - `nt` is the number of OpenMP threads the caller allows; kernels use one
 *    thread when the work is too small to pay for a parallel region;
 *  - reductions accumulate in double over fixed chunks summed in a fixed
 *    order, so results do not depend on the thread count;
 *  - every kernel returns FNN_OK or a negative status code.
 * Validation (shapes, dtypes, finiteness, option names) happens in Python, at
 * the boundary; kernels only re-check what could make them read or write out
 * of bounds (labels, activation ids).
 */
#ifndef FNN_H
#define FNN_H

#include <stddef.h>
#include <stdint.h>

#define FNN_OK 0
#define FNN_EINVAL (-1)   /* an argument is out of its domain */
#define FNN_ENOMEM (-2)   /* scratch allocation failed */
#define FNN_ELABEL (-3)   /* a class label is outside [0, k) */
#define FNN_ENONFINITE (-4) /* a loss or gradient became NaN or infinite */
#define FNN_EZEROWEIGHT (-5) /* the sample weights of a batch sum to zero */
#define FNN_ECOMM (-6)   /* an MPI call failed (its error code in fnn_allsum.error) */

/* The enumerations below reach Python through fastnn/_kernels.pyx, which
 * exports them by name (FNN_ACT_TANH as ACTIVATION_IDS["tanh"], and so on);
 * tests/test_kernel_enums.py checks that the two agree. */

/* Activation ids. */
#define FNN_ACT_IDENTITY 0
#define FNN_ACT_SIGMOID 1
#define FNN_ACT_TANH 2
#define FNN_ACT_RELU 3
#define FNN_ACT_LEAKY_RELU 4
#define FNN_ACT_SOFTPLUS 5
#define FNN_ACT_SOFTMAX 6
#define FNN_ACT_EXP 7 /* the inverse of the log link (Poisson regression's output) */
#define FNN_ACT_COUNT 8

/* Fortran BLAS GEMM, as exported by scipy.linalg.cython_blas. */
typedef void (*fnn_sgemm_fn)(char *transa, char *transb, int *m, int *n, int *k,
                             float *alpha, float *a, int *lda, float *b, int *ldb,
                             float *beta, float *c, int *ldc);
typedef void (*fnn_dgemm_fn)(char *transa, char *transb, int *m, int *n, int *k,
                             double *alpha, double *a, int *lda, double *b, int *ldb,
                             double *beta, double *c, int *ldc);

/* The BLAS used by the dense kernels: a table of function pointers so another
 * BLAS can be put in its place without touching a kernel. */
typedef struct fnn_blas {
    fnn_sgemm_fn sgemm;
    fnn_dgemm_fn dgemm;
} fnn_blas;

/* The sum of a buffer over the processes of an MPI communicator (allsum.c):
 * the MPI library's functions, found at run time, and the handles to call
 * them with. Reduce to process 0 then broadcast, or one allreduce; in place. */
typedef struct fnn_allsum {
    void *reduce_fn, *bcast_fn, *allreduce_fn; /* MPI_Reduce, MPI_Bcast, MPI_Allreduce */
    int64_t comm, datatype, op; /* the handles, as integers */
    void *in_place;             /* MPI_IN_PLACE */
    int handle_bytes;           /* 4 (int handles) or sizeof(void *) (pointer handles) */
    int item_bytes;             /* the datatype's size */
    int allreduce;              /* 1: MPI_Allreduce; 0: MPI_Reduce + MPI_Bcast */
    int rank, n_procs;
    int max_count;              /* elements per call (MPI counts are ints): 0 for INT_MAX */
    int error;                  /* OUT the code of the MPI call that failed */
} fnn_allsum;

int fnn_allsum_run(fnn_allsum *s, void *buf, int64_t count);

/* Losses and optimizers of the training loop (train.inc.c). */
#define FNN_LOSS_MSE 0                  /* any output activation */
#define FNN_LOSS_BINARY_CROSS_ENTROPY 1 /* sigmoid output, fused: the output layer computes logits */
#define FNN_LOSS_CROSS_ENTROPY 2        /* softmax output, fused; integer labels */
#define FNN_LOSS_POISSON 3              /* exp output, fused: half Poisson deviance */
#define FNN_LOSS_COUNT 4

#define FNN_OPT_SGD 0
#define FNN_OPT_MOMENTUM 1    /* exponentially weighted */
#define FNN_OPT_CLASSICAL_MOMENTUM 2 /* heavy ball */
#define FNN_OPT_NESTEROV 3
#define FNN_OPT_RMSPROP 4
#define FNN_OPT_ADAM 5        /* with weight_decay > 0: AdamW (weights only) */
#define FNN_OPT_ADAM_FOLDED 6 /* bias correction folded into the step size (scikit-learn) */
#define FNN_OPT_COUNT 7

/* One dense layer of a network, its optional dropout, and its buffers. Array
 * pointers are void so one struct serves both dtypes; each points to REAL
 * data of the network's dtype. */
typedef struct fnn_layer {
    int64_t n_in, n_out;
    int act;                 /* FNN_ACT_* of this layer */
    double alpha;            /* leaky_relu slope */
    double dropout;          /* rate of dropout on this layer's output, 0 for none */
    void *w, *b;             /* (n_in, n_out), (n_out,): views into the parameter arena */
    void *dw, *db;           /* the same views into the gradient arena */
    void *a;                 /* (m_max, n_out) activation output (before dropout) */
    void *a_drop;            /* (m_max, n_out) output after dropout, NULL without dropout */
    unsigned char *alive;    /* (n_out,) diagnostics: unit had a > 0 this epoch; or NULL */
    double *stats;           /* diagnostics sums over batches: mean, variance, grad norm; or NULL */
} fnn_layer;

/* A feed-forward network and its training configuration. */
typedef struct fnn_net {
    int n_layers;
    fnn_layer *layers;
    int loss;                /* FNN_LOSS_* */
    int64_t n_params;        /* parameter arena length: all weights, then all biases */
    int64_t n_weights;       /* length of the weights prefix (L2 and weight decay act on it) */
    void *params, *grads;    /* (n_params,) arenas */
    double l2;               /* the spec's lambda; the gradient term is lambda / m_batch
                                (lambda / the batch's weight sum with sample weights) */
    double clip_norm;        /* global-norm clipping threshold, 0 for none */
    double clip_value;       /* element clipping bound, 0 for none */
    uint64_t seed;           /* dropout stream seed */
    int64_t m_max;           /* rows the buffers hold */
    void *xbuf;              /* (m_max, n_in of layer 0) gathered batch */
    void *ybuf;              /* (m_max,) int64 labels for XENT, else (m_max, n_out) REAL */
    void *swbuf;             /* (m_max,) REAL gathered sample weights, NULL when unweighted */
    int skip_zero_weight;    /* a batch whose weights sum to 0: 1 skips it (no step, loss 0),
                                0 stops with FNN_EZEROWEIGHT */
    void *gbuf1, *gbuf2;     /* (m_max, widest layer) gradient scratch */
    void *gemm_work;         /* the GEMM's packing workspace, sized for every product */
    double center_lambda;    /* center loss weight (FNN_LOSS_CROSS_ENTROPY, >= 2 layers), 0 for none */
    double center_alpha;     /* center update rate */
    void *centers;           /* (n_out of the last layer, n_in of the last layer) REAL */
    double *center_scratch;  /* (classes, features + 1) doubles */
} fnn_net;

typedef struct fnn_optim {
    int kind;                /* FNN_OPT_* */
    double beta1;            /* momentum / EMA / rmsprop / adam beta1 */
    double beta2, eps, weight_decay;
    void *s1, *s2;           /* (n_params,) state arenas, NULL when unused */
    int64_t t;               /* steps taken; the next step is t + 1 */
} fnn_optim;

/* Counter-based random stream for dropout (common.c). */
uint64_t fnn_dropout_key(uint64_t seed, uint64_t step, uint64_t layer);

/* Elements of the packing workspace a GEMM of these sizes needs (any
 * dtype, any instruction set; gemm.inc.c). */
int64_t fnn_gemm_work_len(int64_t m, int64_t n, int64_t k);

/* The GEMM's path: chosen by the instruction set (AUTO), or forced to the
 * packed micro-kernels or to the BLAS (tests and benchmarks). Select before
 * kernels run, as with fnn_isa_select. */
#define FNN_GEMM_AUTO 0
#define FNN_GEMM_PACKED 1
#define FNN_GEMM_BLAS 2
int fnn_gemm_select_path(int path);
int fnn_gemm_selected_path(void);
/* The path products take now: PACKED or BLAS (AUTO resolved). */
int fnn_gemm_path_in_use(void);

/* Build facts for show_config(). */
const char *fnn_build_config(void);
int fnn_openmp_enabled(void);

/* One prototype set per dtype, written once. Argument order follows the spec:
 * sizes, inputs, then outputs; IN/OUT and shapes are documented at each
 * definition in the *.inc.c files. */
#define FNN_DECLARE_KERNELS(R, S)                                                      \
    int fnn_bias_act_fwd_##S(int64_t m, int64_t n, R *z, const R *b, int act,          \
                             double alpha, int nt);                                    \
    int fnn_act_bwd_##S(int64_t m, int64_t n, const R *a, const R *da, int act,        \
                        double alpha, R *dz, int nt);                                  \
    int fnn_vm_apply_##S(int fn, int64_t n, const R *x, R *y, int nt);                 \
    int fnn_dense_fwd_##S(int64_t m, int64_t n_in, int64_t n_out, const R *x,          \
                          const R *w, const R *b, int act, double alpha, R *a,         \
                          int nt, const fnn_blas *blas);                               \
    int fnn_dense_bwd_##S(int64_t m, int64_t n_in, int64_t n_out, const R *x,          \
                          const R *w, const R *a, const R *da, int act, double alpha,  \
                          double l2, R *dz, R *dx, R *dw, R *db, int nt,               \
                          const fnn_blas *blas);                                       \
    int fnn_gemm_##S(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K,         \
                     const R *A, int64_t lda, const R *B, int64_t ldb, int accumulate,  \
                     R *C, int64_t ldc, int nt, const fnn_blas *blas);                  \
    int fnn_col_sum_##S(int64_t m, int64_t n, const R *x, R *out, int nt);             \
    int fnn_softmax_xent_##S(int64_t m, int64_t k, const R *z, const int64_t *labels,  \
                             const R *y, const R *sw, R *dz, double *loss, int nt);    \
    int fnn_sigmoid_bce_##S(int64_t m, int64_t n, const R *z, const R *y, const R *sw, \
                            R *dz, double *loss, int nt);                              \
    int fnn_mse_##S(int64_t m, int64_t n, const R *a, const R *y, const R *sw, R *da,  \
                    double *loss, int nt);                                             \
    int fnn_poisson_##S(int64_t m, int64_t n, const R *z, const R *y, const R *sw,     \
                        R *dz, double *loss, int nt);                                  \
    int fnn_sgd_step_##S(int64_t n, R *p, const R *g, double lr, int nt);              \
    int fnn_momentum_step_##S(int64_t n, R *p, const R *g, R *v, double lr,            \
                              double beta, int nt);                                    \
    int fnn_classical_momentum_step_##S(int64_t n, R *p, const R *g, R *v, double lr,  \
                                        double momentum, int nesterov, int nt);        \
    int fnn_rmsprop_step_##S(int64_t n, R *p, const R *g, R *s, double lr,             \
                             double beta, double eps, int nt);                         \
    int fnn_adam_step_##S(int64_t n, R *p, const R *g, R *m1, R *v2, int64_t t,        \
                          double lr, double beta1, double beta2, double eps,           \
                          double weight_decay, int nt);                                \
    int fnn_adam_folded_step_##S(int64_t n, R *p, const R *g, R *m1, R *v2, int64_t t, \
                                 double lr, double beta1, double beta2, double eps,    \
                                 int nt);                                              \
    int fnn_sumsq_##S(int64_t n, const R *x, double *out, int nt);                     \
    int fnn_scale_##S(int64_t n, R *x, double s, int nt);                              \
    int fnn_clip_value_##S(int64_t n, R *x, double c, int nt);                         \
    int fnn_all_finite_##S(int64_t n, const R *x, int nt);                             \
    int fnn_dropout_apply_##S(int64_t m, int64_t n, const R *x, R *out, double rate,   \
                              uint64_t key, int nt);                                   \
    int fnn_standardize_fit_##S(int64_t m, int64_t n, const R *x, R *mean, R *std,     \
                                int nt);                                               \
    int fnn_standardize_transform_##S(int64_t m, int64_t n, const R *x,                \
                                      const R *mean, const R *std, R *out, int nt);    \
    int fnn_layer_stats_##S(int64_t m, int64_t n, const R *a, double *out3, int nt);     \
    int fnn_center_loss_##S(int64_t m, int64_t d, int64_t k, const R *x,                \
                            const int64_t *labels, const R *centers, double lambda,     \
                            R *dx, double *loss, int nt);                               \
    int fnn_center_update_##S(int64_t m, int64_t d, int64_t k, const R *x,              \
                              const int64_t *labels, R *centers, double alpha,          \
                              double *scratch);                                         \
    int fnn_train_batches_##S(fnn_net *net, fnn_optim *opt, const R *x, const void *y,  \
                              const R *sw, const int64_t *perm, int64_t n_rows,          \
                              int64_t batch_size,                                        \
                              int64_t first_batch, int64_t n_batches, const double *lrs, \
                              double *batch_loss, int64_t *done, int nt,                 \
                              const fnn_blas *blas);                                     \
    int fnn_train_grad_##S(fnn_net *net, const R *x, const void *y, const R *sw,         \
                           const int64_t *rows, const int64_t *pos, int64_t m,            \
                           double denom, uint64_t step, double *loss, int nt,             \
                           const fnn_blas *blas);                                         \
    int fnn_train_apply_##S(fnn_net *net, fnn_optim *opt, double denom, double lr,       \
                            double *l2_loss, int nt);                                     \
    int fnn_train_shard_batches_##S(fnn_net *net, fnn_optim *opt, const R *x,             \
                                    const void *y, const R *sw, const int64_t *rows,      \
                                    const int64_t *pos, const int64_t *starts,            \
                                    const int64_t *counts, const double *denoms,          \
                                    int64_t first_batch, int64_t n_batches,               \
                                    const double *lrs, double *data_loss,                 \
                                    double *l2_loss, int64_t *done, fnn_allsum *sum,      \
                                    int nt, const fnn_blas *blas);

FNN_DECLARE_KERNELS(float, f32)
FNN_DECLARE_KERNELS(double, f64)

#endif /* FNN_H */
