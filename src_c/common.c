/* common.c: dtype-independent helpers: the dropout random stream, the GEMM
 * workspace size and build facts.
 *
 * Design: dropout masks come from a counter-based generator. Each element's
 * random bits are a pure function of (seed, step, layer, element index), so a
 * mask is the same for any thread count and any chunking, and the backward
 * pass regenerates it instead of storing it. The mixer is SplitMix64's
 * finalizer (Steele, Lea, Flood 2014), which passes BigCrush when fed a
 * Weyl sequence, as it is here. fastnn/reference.py computes the same bits
 * with NumPy uint64 arithmetic. */
#include "fnn.h"
#include "fnn_isa.h"
#include "fnn_omp.h"
#include "fnn_random.h"

uint64_t fnn_dropout_key(uint64_t seed, uint64_t step, uint64_t layer)
{
    return fnn_mix64(fnn_mix64(fnn_mix64(seed) ^ step) ^ layer);
}

#ifndef FASTNN_BUILD_CONFIG
#define FASTNN_BUILD_CONFIG "unknown"
#endif

int64_t fnn_gemm_work_len(int64_t m, int64_t n, int64_t k)
{
    /* both operands padded to whole panels (a panel is at most
     * FNN_GEMM_MAX_PANEL wide, so padding adds fewer rows than that), plus
     * room to align to 64 bytes */
    const int64_t p = FNN_GEMM_MAX_PANEL;
    return (m + p - 1 + n + p - 1) * k + 64;
}

static int fnn_gemm_path = FNN_GEMM_AUTO;

int fnn_gemm_select_path(int path)
{
    if (path < FNN_GEMM_AUTO || path > FNN_GEMM_BLAS) return FNN_EINVAL;
    fnn_gemm_path = path;
    return FNN_OK;
}

int fnn_gemm_selected_path(void) { return fnn_gemm_path; }

int fnn_gemm_path_in_use(void)
{
    /* AUTO: the packed micro-kernels, except with the generic instruction
     * set, whose plain C kernel runs at about a third of the BLAS
     * (bench/gemm_shapes.py measures both paths over the training shapes) */
    if (fnn_gemm_path != FNN_GEMM_AUTO) return fnn_gemm_path;
    return fnn_isa_current() == FNN_ISA_GENERIC ? FNN_GEMM_BLAS : FNN_GEMM_PACKED;
}

const char *fnn_build_config(void) { return FASTNN_BUILD_CONFIG; }

int fnn_openmp_enabled(void) { return FNN_HAVE_OPENMP; }
