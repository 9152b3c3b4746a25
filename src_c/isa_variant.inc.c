/* isa_variant.inc.c: one instruction-set variant of the elementwise loops
 * and its dispatch table (fnn_isa.h). Included by isa_<name>_<dtype>.c with
 * FNN_REAL_FLOAT and FNN_ISA_VARIANT defined.
 *
 * Design: the target is set for the whole translation unit after the system
 * headers, so the compiler vectorizes every `omp simd` loop below with that
 * instruction set; the elementwise loops use no intrinsics, so each variant
 * is the same C code (only the GEMM micro-kernel, gemm_tile.inc.c, has
 * intrinsics of its own). A variant that cannot be built for this platform
 * (AVX on a non-x86 CPU, or a compiler without target pragmas) leaves its
 * table pointer NULL. */
#include "fnn_real.h"

#define FNN_ISA_CAT3(a, b, c) a##b##c
#define FNN_ISA_SYM(tag, sfx) FNN_ISA_CAT3(fnn_isa_, tag, sfx)
#if FNN_REAL_FLOAT
#define FNN_ISA_DTYPE _f32
#else
#define FNN_ISA_DTYPE _f64
#endif

#if FNN_ISA_VARIANT == FNN_ISA_GENERIC
#define FNN_ISA_BUILD 1
#define FNN_ISA_TAG generic
#elif (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define FNN_ISA_BUILD 1
#include <immintrin.h> /* the GEMM micro-kernel's intrinsics */
/* literal pragmas: GCC does not expand a macro inside `#pragma GCC target` */
#if FNN_ISA_VARIANT == FNN_ISA_AVX2
#define FNN_ISA_TAG avx2
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC target("avx2,fma")
#endif
#else
#define FNN_ISA_TAG avx512
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma"))), apply_to = function)
#else
#pragma GCC target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")
#endif
#endif
#else
#define FNN_ISA_BUILD 0
#if FNN_ISA_VARIANT == FNN_ISA_AVX2
#define FNN_ISA_TAG avx2
#else
#define FNN_ISA_TAG avx512
#endif
#endif

#if FNN_ISA_BUILD
#include "vmath.inc.c"
#include "act_rows.inc.c"
#include "update_ranges.inc.c"
#include "gemm_tile.inc.c"

#define FNN_ISA_ENTRIES                                                                  \
    FNN_SFX(act_fwd_row), FNN_SFX(act_bwd_row), FNN_SFX(vm_apply),                       \
    FNN_SFX(sgd_range), FNN_SFX(momentum_range), FNN_SFX(classical_range),              \
    FNN_SFX(rmsprop_range), FNN_SFX(adam_range), FNN_SFX(scale_range), FNN_SFX(clip_range), \
    FNN_SFX(gemm_pack_a), FNN_SFX(gemm_pack_b), FNN_SFX(gemm_pack_b_dz), FNN_SFX(gemm_tile), \
    GK_MR, GK_NR
#if defined(__clang__) && FNN_ISA_VARIANT != FNN_ISA_GENERIC
#pragma clang attribute pop
#endif
#endif

#if FNN_ISA_VARIANT == FNN_ISA_GENERIC
const FNN_SFX(fnn_isa_table) FNN_ISA_SYM(generic, FNN_ISA_DTYPE) = {FNN_ISA_ENTRIES};
#elif FNN_ISA_BUILD
static const FNN_SFX(fnn_isa_table) FNN_SFX(table) = {FNN_ISA_ENTRIES};
const FNN_SFX(fnn_isa_table) *const FNN_ISA_SYM(FNN_ISA_TAG, FNN_ISA_DTYPE) = &FNN_SFX(table);
#else
const FNN_SFX(fnn_isa_table) *const FNN_ISA_SYM(FNN_ISA_TAG, FNN_ISA_DTYPE) = NULL;
#endif
