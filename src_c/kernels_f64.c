/* kernels_f64.c: instantiates every kernel for REAL = double.
 * Each *.inc.c body is written once over REAL (see fnn_real.h). */
#define FNN_REAL_FLOAT 0
#include "fnn_real.h"

#include "activations.inc.c"
#include "gemm_blas.inc.c"
#include "gemm.inc.c"
#include "dense.inc.c"
#include "loss.inc.c"
#include "optim.inc.c"
#include "regularize.inc.c"
#include "standardize.inc.c"
#include "stats.inc.c"
#include "train.inc.c"
