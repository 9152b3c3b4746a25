/* common.c: dtype-independent helpers: the dropout random stream and build facts.
 *
 * Design: dropout masks come from a counter-based generator. Each element's
 * random bits are a pure function of (seed, step, layer, element index), so a
 * mask is the same for any thread count and any chunking, and the backward
 * pass regenerates it instead of storing it. The mixer is SplitMix64's
 * finalizer (Steele, Lea, Flood 2014), which passes BigCrush when fed a
 * Weyl sequence, as it is here. fastnn/reference.py computes the same bits
 * with NumPy uint64 arithmetic. */
#include "fnn.h"
#include "fnn_omp.h"
#include "fnn_random.h"

uint64_t fnn_dropout_key(uint64_t seed, uint64_t step, uint64_t layer)
{
    return fnn_mix64(fnn_mix64(fnn_mix64(seed) ^ step) ^ layer);
}

#ifndef FASTNN_BUILD_CONFIG
#define FASTNN_BUILD_CONFIG "unknown"
#endif

const char *fnn_build_config(void) { return FASTNN_BUILD_CONFIG; }

int fnn_openmp_enabled(void) { return FNN_HAVE_OPENMP; }
