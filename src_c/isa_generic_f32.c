/* isa_generic_f32.c: the generic variant of the elementwise loops, float (isa_variant.inc.c). */
#define FNN_REAL_FLOAT 1
#include "fnn_isa.h"
#define FNN_ISA_VARIANT FNN_ISA_GENERIC
#include "isa_variant.inc.c"
