/* isa_avx2_f32.c: the avx2 variant of the elementwise loops, float (isa_variant.inc.c). */
#define FNN_REAL_FLOAT 1
#include "fnn_isa.h"
#define FNN_ISA_VARIANT FNN_ISA_AVX2
#include "isa_variant.inc.c"
