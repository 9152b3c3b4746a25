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
#else
#define FNN_HAVE_OPENMP 0
static inline int fnn_omp_max_threads(void) { return 1; }
static inline void fnn_omp_set_threads(int n) { (void)n; }
static inline int fnn_omp_thread_num(void) { return 0; }
#endif

#endif /* FNN_OMP_H */
