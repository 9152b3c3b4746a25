/* fnn_random.h: SplitMix64's finalizer, inlined into the dropout loop.
 * See common.c for how dropout keys are formed. */
#ifndef FNN_RANDOM_H
#define FNN_RANDOM_H
#include <stdint.h>

static inline uint64_t fnn_mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= UINT64_C(0xBF58476D1CE4E5B9);
    x ^= x >> 27;
    x *= UINT64_C(0x94D049BB133111EB);
    x ^= x >> 31;
    return x;
}

#endif /* FNN_RANDOM_H */
