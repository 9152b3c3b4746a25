/* fnn_omp.h: OpenMP shim. Kernels include this instead of <omp.h> so the same
 * source builds serially (with a loud build-time warning) where the compiler
 * has no OpenMP. */
#ifndef FNN_OMP_H
#define FNN_OMP_H

#ifdef _OPENMP
#include <omp.h>
#define FNN_HAVE_OPENMP 1
static inline int fnn_omp_max_threads(void) { return omp_get_max_threads(); }
static inline void fnn_omp_set_threads(int n) { omp_set_num_threads(n); }
static inline int fnn_omp_thread_num(void) { return omp_get_thread_num(); }
static inline int fnn_omp_num_threads(void) { return omp_get_num_threads(); }
#else
#define FNN_HAVE_OPENMP 0
static inline int fnn_omp_max_threads(void) { return 1; }
static inline void fnn_omp_set_threads(int n) { (void)n; }
static inline int fnn_omp_thread_num(void) { return 0; }
static inline int fnn_omp_num_threads(void) { return 1; }
#endif

/* A `parallel for` over LOOP (a for statement) with the given extra clauses
 * when t > 1, and the plain loop otherwise: a region entered with one thread
 * still makes the OpenMP runtime allocate a team, so serial work skips it. */
#define FNN_PRAGMA(x) _Pragma(#x)
#define FNN_PARALLEL_FOR(t, clauses, ...)                                         \
    do {                                                                         \
        if ((t) > 1) {                                                           \
            FNN_PRAGMA(omp parallel for num_threads(t) schedule(static) clauses) \
            __VA_ARGS__                                                          \
        } else {                                                                 \
            __VA_ARGS__                                                          \
        }                                                                        \
    } while (0)

/* Runs CALL with int64_t lo, hi bound to this thread's share of [0, n): an
 * explicit split, so the loop inside CALL is a plain `omp simd` loop that the
 * compiler vectorizes fully (a combined `parallel for simd` compiled 4x slower
 * here). t is the thread count to use (1: no parallel region at all). */
#define FNN_PARALLEL_RANGE(n, t, CALL)                                            \
    do {                                                                         \
        const int64_t n_ = (n);                                                  \
        const int t_ = (t);                                                      \
        if (t_ > 1) {                                                            \
            _Pragma("omp parallel num_threads(t_)")                              \
            {                                                                    \
                const int64_t T_ = fnn_omp_num_threads(), me_ = fnn_omp_thread_num(); \
                const int64_t lo = n_ * me_ / T_, hi = n_ * (me_ + 1) / T_;      \
                CALL;                                                            \
            }                                                                    \
        } else {                                                                 \
            const int64_t lo = 0, hi = n_;                                       \
            CALL;                                                                \
        }                                                                        \
    } while (0)

#endif /* FNN_OMP_H */
