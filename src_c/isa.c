/* isa.c: which instruction-set variant of the elementwise loops is in use
 * (fnn_isa.h). The generic variant is in use until fnn_isa_select is called,
 * so the kernels work before fastnn/_isa.py has chosen. */
#include "fnn.h"
#include "fnn_isa.h"

const fnn_isa_table_f32 *fnn_isa_f32 = &fnn_isa_generic_f32;
const fnn_isa_table_f64 *fnn_isa_f64 = &fnn_isa_generic_f64;
static int fnn_isa_in_use = FNN_ISA_GENERIC;

/* The CPU and the operating system (saved vector state) run the variant. */
static int fnn_cpu_runs(int isa)
{
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    if (isa == FNN_ISA_AVX2)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (isa == FNN_ISA_AVX512)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
#endif
    return isa == FNN_ISA_GENERIC;
}

int fnn_isa_supported(int isa)
{
    switch (isa) {
    case FNN_ISA_GENERIC:
        return 1;
    case FNN_ISA_AVX2:
        return fnn_isa_avx2_f32 != NULL && fnn_isa_avx2_f64 != NULL && fnn_cpu_runs(isa);
    case FNN_ISA_AVX512:
        return fnn_isa_avx512_f32 != NULL && fnn_isa_avx512_f64 != NULL && fnn_cpu_runs(isa);
    default:
        return 0;
    }
}

int fnn_isa_best(void)
{
    int isa;
    for (isa = FNN_ISA_COUNT - 1; isa > FNN_ISA_GENERIC; isa--)
        if (fnn_isa_supported(isa)) return isa;
    return FNN_ISA_GENERIC;
}

int fnn_isa_select(int isa)
{
    if (!fnn_isa_supported(isa)) return FNN_EINVAL;
    switch (isa) {
    case FNN_ISA_AVX2:
        fnn_isa_f32 = fnn_isa_avx2_f32;
        fnn_isa_f64 = fnn_isa_avx2_f64;
        break;
    case FNN_ISA_AVX512:
        fnn_isa_f32 = fnn_isa_avx512_f32;
        fnn_isa_f64 = fnn_isa_avx512_f64;
        break;
    default:
        fnn_isa_f32 = &fnn_isa_generic_f32;
        fnn_isa_f64 = &fnn_isa_generic_f64;
        break;
    }
    fnn_isa_in_use = isa;
    return FNN_OK;
}

int fnn_isa_current(void) { return fnn_isa_in_use; }

const char *fnn_isa_name(int isa)
{
    static const char *const names[FNN_ISA_COUNT] = {"generic", "avx2", "avx512"};
    return isa >= 0 && isa < FNN_ISA_COUNT ? names[isa] : "";
}
