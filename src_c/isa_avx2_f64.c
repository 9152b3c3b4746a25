/* isa_avx2_f64.c: the avx2 variant of the elementwise loops, double (isa_variant.inc.c). */
#define FNN_REAL_FLOAT 0
#include "fnn_isa.h"
#define FNN_ISA_VARIANT FNN_ISA_AVX2
#include "isa_variant.inc.c"
