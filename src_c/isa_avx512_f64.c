/* isa_avx512_f64.c: the avx512 variant of the elementwise loops, double (isa_variant.inc.c). */
#define FNN_REAL_FLOAT 0
#include "fnn_isa.h"
#define FNN_ISA_VARIANT FNN_ISA_AVX512
#include "isa_variant.inc.c"
