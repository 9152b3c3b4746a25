/* fnn_isa.h: the instruction-set dispatch table.
 *
 * The elementwise loops (activation rows, the vector math functions, the
 * optimizer and scaling ranges) are compiled once per instruction set
 * (isa_<name>_<f32|f64>.c include isa_variant.inc.c) into a table of function
 * pointers. One table per dtype is in use at a time: the best one the CPU
 * runs, chosen when fastnn is imported, or the one FASTNN_ISA names
 * (fastnn/_isa.py). Every elementwise loop computes the same bits in every
 * variant (no FMA contraction), so the choice changes their speed only; the
 * GEMM micro-kernels of AVX2 and AVX-512 use FMA, so a matrix product's bits
 * depend on the variant (never on the thread count). Every variant the
 * machine runs can be tested on it. */
#ifndef FNN_ISA_H
#define FNN_ISA_H

#include <stdint.h>

#define FNN_ISA_GENERIC 0  /* the compiler's baseline (SSE2 on x86-64) */
#define FNN_ISA_AVX2 1     /* AVX2 + FMA (FMA unused: results stay identical) */
#define FNN_ISA_AVX512 2   /* AVX-512 F/DQ/BW/VL */
#define FNN_ISA_COUNT 3

/* Elementwise math functions of vm_apply (vmath.inc.c). */
#define FNN_VM_EXP 0
#define FNN_VM_EXPM1 1
#define FNN_VM_LOG1P 2
#define FNN_VM_LOG 3
#define FNN_VM_TANH 4
#define FNN_VM_SIGMOID 5
#define FNN_VM_SOFTPLUS 6
#define FNN_VM_COUNT 7

/* No variant's GEMM panel is wider than this (the workspace is sized by it). */
#define FNN_GEMM_MAX_PANEL 32

#define FNN_DECLARE_ISA_TABLE(R, S)                                                     \
    /* The scalars of one Adam step, rounded once to R. */                            \
    typedef struct {                                                                  \
        R b1, one_minus_b1, b2, one_minus_b2, eps;                                    \
        R step;  /* lr / (1 - b1^t), or lr_t for the folded form */                   \
        R c;     /* 1 / sqrt(1 - b2^t) */                                             \
        R decay; /* lr * weight_decay */                                              \
    } fnn_adam_scalars_##S;                                                           \
    typedef struct {                                                                  \
        void (*act_fwd_row)(int64_t n, R *z, int act, R alpha);                       \
        void (*act_bwd_row)(int64_t n, const R *a, const R *da, R *dz, int act,       \
                            R alpha);                                                 \
        void (*vm_apply)(int fn, int64_t n, const R *x, R shift, R *y);               \
        void (*sgd)(int64_t lo, int64_t hi, R *p, const R *g, R lr);                  \
        void (*momentum)(int64_t lo, int64_t hi, R *p, const R *g, R *v, R lr, R b,   \
                         R one_minus_b);                                              \
        void (*classical)(int64_t lo, int64_t hi, R *p, const R *g, R *v, R lr, R mu, \
                          int nesterov);                                              \
        void (*rmsprop)(int64_t lo, int64_t hi, R *p, const R *g, R *s, R lr, R b,    \
                        R one_minus_b, R eps);                                        \
        void (*adam)(int64_t lo, int64_t hi, R *p, const R *g, R *m1, R *v2,          \
                     const fnn_adam_scalars_##S *k, int decoupled);                   \
        void (*scale)(int64_t lo, int64_t hi, R *x, R s);                             \
        void (*clip)(int64_t lo, int64_t hi, R *x, R c);                              \
        /* the GEMM's packing and micro-kernel (gemm_tile.inc.c, gemm.inc.c) */       \
        void (*gemm_pack_a)(int trans, int64_t M, int64_t K, const R *A, int64_t lda, \
                            int64_t p0, int64_t p1, R *dst);                          \
        void (*gemm_pack_b)(int trans, int64_t N, int64_t K, const R *B, int64_t ldb, \
                            int64_t q0, int64_t q1, R *dst);                          \
        void (*gemm_pack_b_dz)(int64_t N, int64_t K, const R *a, const R *da, R *dz,  \
                               int64_t ld, int act, R alpha, int64_t q0, int64_t q1,  \
                               R *dst, R *db);                                        \
        void (*gemm_tile)(int64_t kc, const R *a, int64_t a_rs, int64_t a_ks,         \
                          const R *b, R *c, int64_t ldc, int64_t mr, int64_t nr,      \
                          int add, const R *bias);                                    \
        int gemm_mr, gemm_nr;    /* rows of an A panel, columns of a B panel */       \
    } fnn_isa_table_##S;                                                              \
    /* the variant in use */                                                          \
    extern const fnn_isa_table_##S *fnn_isa_##S;                                      \
    /* each compiled variant, NULL where not compiled for this platform */           \
    extern const fnn_isa_table_##S fnn_isa_generic_##S;                               \
    extern const fnn_isa_table_##S *const fnn_isa_avx2_##S;                           \
    extern const fnn_isa_table_##S *const fnn_isa_avx512_##S;

FNN_DECLARE_ISA_TABLE(float, f32)
FNN_DECLARE_ISA_TABLE(double, f64)

/* 1 when the variant is compiled in and this CPU (and OS) runs it. */
int fnn_isa_supported(int isa);
/* The fastest supported variant. */
int fnn_isa_best(void);
/* Puts a supported variant in use for both dtypes: FNN_OK, or FNN_EINVAL
 * (and nothing changes) for an unknown or unsupported one. Meant to be
 * called before kernels run (at import, or by tests between calls). */
int fnn_isa_select(int isa);
int fnn_isa_current(void);
const char *fnn_isa_name(int isa);

#endif /* FNN_ISA_H */
