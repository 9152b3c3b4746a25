/* fnn_real.h: the REAL type and its math, for kernels written once and
 * compiled twice (kernels_f32.c defines FNN_REAL_FLOAT 1, kernels_f64.c 0).
 * Float math calls the float functions (expf, ...) so nothing is silently
 * promoted to double; reductions accumulate in double either way. */
#ifndef FNN_REAL_H
#define FNN_REAL_H

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "fnn.h"
#include "fnn_isa.h"
#include "fnn_omp.h"
#include "fnn_random.h"

#if FNN_REAL_FLOAT
typedef float REAL;
#define FNN_SFX(name) name##_f32
#define FNN_ISA_OPS fnn_isa_f32  /* the instruction-set variant in use (fnn_isa.h) */
#define R_SQRT sqrtf
#define FNN_GEMM(blas) ((blas)->sgemm)
#else
typedef double REAL;
#define FNN_SFX(name) name##_f64
#define FNN_ISA_OPS fnn_isa_f64
#define R_SQRT sqrt
#define FNN_GEMM(blas) ((blas)->dgemm)
#endif

/* Below this many elements an elementwise kernel runs on one thread: opening
 * a parallel region costs more than it saves. Measured on 2 cores (float32
 * and float64, workers still spinning from the previous region): relu and
 * sgd gain 1.3-1.5x at 8k-16k elements, but a region whose workers have gone
 * to sleep costs 5-10x such a kernel, so cheap (memory-bound) kernels wait
 * for 32k. The vector tanh, sigmoid and softplus (1-3 ns an element) break
 * even at 4k-8k elements and gain 1.3-1.6x from 16k on; softmax and the
 * exp-based losses are dearer still. */
#define FNN_PAR_MIN_ELEMS 32768
#define FNN_PAR_MIN_COSTLY 8192

/* Deterministic reductions: data is cut into at most FNN_MAX_CHUNKS chunks
 * whose length depends only on the size, each summed in double, then the
 * partial sums are added in chunk order. Same bits for any thread count. */
#define FNN_MAX_CHUNKS 1024
#define FNN_MIN_CHUNK 4096

static inline int64_t fnn_chunk_len(int64_t n, int64_t min_chunk)
{
    int64_t c = min_chunk;
    if (n > c * FNN_MAX_CHUNKS) c = (n + FNN_MAX_CHUNKS - 1) / FNN_MAX_CHUNKS;
    return c;
}

static inline int fnn_use_threads(int nt, int64_t work)
{
    return (nt > 1 && work >= FNN_PAR_MIN_ELEMS) ? nt : 1;
}

/* The same for kernels that spend tens of cycles per element (exp, tanh). */
static inline int fnn_use_threads_costly(int nt, int64_t work)
{
    return (nt > 1 && work >= FNN_PAR_MIN_COSTLY) ? nt : 1;
}

static inline int fnn_act_is_costly(int act)
{
    return act == FNN_ACT_SIGMOID || act == FNN_ACT_TANH || act == FNN_ACT_SOFTPLUS ||
           act == FNN_ACT_SOFTMAX || act == FNN_ACT_EXP;
}

#endif /* FNN_REAL_H */
