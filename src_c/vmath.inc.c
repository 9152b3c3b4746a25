/* vmath.inc.c: exp, expm1, log1p, log, tanh, sigmoid and softplus of one
 * REAL, written branch-free so that a loop calling them under `omp simd`
 * compiles to vector code (libm's scalar calls cost 2-10 ns an element and
 * cannot be vectorized).
 *
 * Design: each function is range reduction + a polynomial, the way vector
 * math libraries work, using only +, -, *, /, comparisons, selects and
 * integer operations on the bits. There is no fused multiply-add (setup.py
 * passes -ffp-contract=off), so every instruction-set variant of isa_*.c
 * computes the same bits. Special inputs (NaN, +-inf, +-0, overflow,
 * underflow to subnormals and to 0) are computed on every lane and patched
 * with selects at the end. Accuracy, checked by tests/test_vmath.py and over
 * every float32 input by bench/vmath_ulp.py: within a few ulp of the
 * correctly rounded result.
 *
 *  exp(x):   n = round(x / ln 2), r = x - n ln2 (ln 2 in two parts, so n ln2_hi
 *            is exact), e^r = 1 + r + r^2 q(r) with q the Taylor series of
 *            (e^r - 1 - r) / r^2 to r^5 (float) or r^11 (double): its
 *            truncation error on |r| <= ln2 / 2 is below 0.1 ulp. 2^n is
 *            applied as 2^n1 * 2^n2 (n1 + n2 = n) so results down to the
 *            smallest subnormal and up to the largest finite value are
 *            reached with one rounding.
 *  expm1(x): the same reduction; expm1(x) = 2^n expm1(r) + (2^n - 1), exact
 *            in the second term while 2^n - 1 is representable.
 *  log1p(x): u = 1 + x, c = (x - (u - 1)) / u the rounding error of u;
 *            u = 2^k m with m in [sqrt(1/2), sqrt(2)), f = m - 1 exactly, and
 *            log(1 + f) = f - (f^2/2 - s (f^2/2 + R(s^2))), s = f / (2 + f),
 *            R the series of 2 atanh(s) - 2s in s^2 (2 z / 3 + 2 z^2 / 5 + ...).
 *  tanh(x):  t = expm1(2|x|), tanh = sign(x) t / (t + 2); |x| is capped where
 *            tanh rounds to 1, so t never overflows.
 *  sigmoid:  e = exp(-|x|), (x >= 0 ? 1 : e) / (1 + e).
 *  softplus: max(x, 0) + log1p(exp(-|x|)). */

#if FNN_REAL_FLOAT
typedef uint32_t FNN_SFX(ureal);
#define VM_MANT 23
#define VM_BIAS 127
#define VM_SHIFT 12582912.0f               /* 1.5 * 2^23: adding it rounds to an integer */
#define VM_TWO_MANT 8388608.0f             /* 2^23 */
#define VM_SQRT_HALF_BITS 0x3f3504f3u      /* sqrt(1/2) */
#define VM_MANT_MASK 0x007fffffu
#define VM_MIN_NORMAL 1.17549435e-38f
#define VM_SUBNORMAL_SCALE 16777216.0f     /* 2^24 */
#define VM_SUBNORMAL_LOG2 24.0f
#define VM_LN2_HI 0.693145751953125f       /* 16 significant bits: n * VM_LN2_HI is exact */
#define VM_LN2_LO 1.42860682030941723212e-6f
#define VM_LOG2E 1.44269504088896340736f
#define VM_EXP_HI 89.0f                    /* past ln(FLT_MAX): the result overflows to inf */
#define VM_EXP_LO (-104.0f)                /* below ln of half the smallest subnormal: 0 */
#define VM_EXPM1_LO (-30.0f)               /* expm1 rounds to -1 well before this */
#define VM_EXPM1_BIG_N 24.0f               /* 2^n - 1 is exact up to n = 24 */
#define VM_TANH_CAP 10.0f                  /* tanh rounds to 1 from 9.01 on */
#else
typedef uint64_t FNN_SFX(ureal);
#define VM_MANT 52
#define VM_BIAS 1023
#define VM_SHIFT 6755399441055744.0        /* 1.5 * 2^52 */
#define VM_TWO_MANT 4503599627370496.0     /* 2^52 */
#define VM_SQRT_HALF_BITS UINT64_C(0x3fe6a09e667f3bcd)
#define VM_MANT_MASK UINT64_C(0x000fffffffffffff)
#define VM_MIN_NORMAL 2.2250738585072014e-308
#define VM_SUBNORMAL_SCALE 18014398509481984.0  /* 2^54 */
#define VM_SUBNORMAL_LOG2 54.0
#define VM_LN2_HI 6.93147180369123816490e-01    /* 32 significant bits */
#define VM_LN2_LO 1.90821492927058770002e-10
#define VM_LOG2E 1.44269504088896340736
#define VM_EXP_HI 710.0
#define VM_EXP_LO (-746.0)
#define VM_EXPM1_LO (-40.0)
#define VM_EXPM1_BIG_N 53.0
#define VM_TANH_CAP 20.0                   /* tanh rounds to 1 from 19.07 on */
#endif
#define VM_ONE_BITS (((FNN_SFX(ureal))VM_BIAS) << VM_MANT)
#define VM_SIGN_BIT (((FNN_SFX(ureal))1) << (8 * sizeof(REAL) - 1))

static inline FNN_SFX(ureal) FNN_SFX(vm_bits)(REAL x)
{
    FNN_SFX(ureal) u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static inline REAL FNN_SFX(vm_real)(FNN_SFX(ureal) u)
{
    REAL x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* 2^n for an integer-valued n with a normal result (|n| < VM_BIAS). The bits
 * of n + VM_SHIFT hold n in their low bits; shifting them up to the exponent
 * field drops everything else. */
static inline REAL FNN_SFX(vm_pow2)(REAL n)
{
    return FNN_SFX(vm_real)((FNN_SFX(vm_bits)(n + VM_SHIFT) << VM_MANT) + VM_ONE_BITS);
}

/* (e^r - 1 - r) / r^2 for |r| <= ln2 / 2, Taylor coefficients 1 / (k + 2)! */
static inline REAL FNN_SFX(vm_expq)(REAL r)
{
#if FNN_REAL_FLOAT
    return 1.0f / 2 + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 + r * (1.0f / 720 +
           r * (1.0f / 5040)))));
#else
    return 1.0 / 2 + r * (1.0 / 6 + r * (1.0 / 24 + r * (1.0 / 120 + r * (1.0 / 720 +
           r * (1.0 / 5040 + r * (1.0 / 40320 + r * (1.0 / 362880 + r * (1.0 / 3628800 +
           r * (1.0 / 39916800 + r * (1.0 / 479001600 + r * (1.0 / 6227020800.0)))))))))));
#endif
}

/* x = n ln2 + r with n integer-valued and |r| <= ln2 / 2 (x already clamped). */
static inline REAL FNN_SFX(vm_reduce)(REAL x, REAL *n)
{
    REAL k = (x * VM_LOG2E + VM_SHIFT) - VM_SHIFT;
    *n = k;
    return (x - k * VM_LN2_HI) - k * VM_LN2_LO;
}

static inline REAL FNN_SFX(vm_exp)(REAL x)
{
    REAL n, r, p, n1, xc = x > VM_EXP_HI ? VM_EXP_HI : x;
    xc = xc < VM_EXP_LO ? VM_EXP_LO : xc;
    r = FNN_SFX(vm_reduce)(xc, &n);
    p = (REAL)1 + (r + (r * r) * FNN_SFX(vm_expq)(r));
    /* two exact scalings and one rounding reach subnormals and 2^(max exp) */
    n1 = (n * (REAL)0.5 + VM_SHIFT) - VM_SHIFT;
    p = (p * FNN_SFX(vm_pow2)(n1)) * FNN_SFX(vm_pow2)(n - n1);
    return x != x ? x : p;
}

/* x = n ln2 + r and em = expm1(r), the reduction both expm1 forms share. */
static inline REAL FNN_SFX(vm_expm1_reduced)(REAL x, REAL *n)
{
    REAL r = FNN_SFX(vm_reduce)(x, n);
    return r + (r * r) * FNN_SFX(vm_expq)(r);
}

/* expm1 for x in [VM_EXPM1_LO, 2 VM_TANH_CAP] or NaN, without the special
 * cases: s = 2^n stays finite, and past 2^n - 1 being exact (n > 24 in
 * float, 53 in double) the rounding of s - 1 is below an ulp of the result. */
static inline REAL FNN_SFX(vm_expm1_core)(REAL x)
{
    REAL n, em = FNN_SFX(vm_expm1_reduced)(x, &n), s = FNN_SFX(vm_pow2)(n);
    return s * em + (s - (REAL)1);
}

static inline REAL FNN_SFX(vm_expm1)(REAL x)
{
    REAL n, em, s, r, big, xc = x > VM_EXP_HI ? VM_EXP_HI : x;
    xc = xc < VM_EXPM1_LO ? VM_EXPM1_LO : xc;
    em = FNN_SFX(vm_expm1_reduced)(xc, &n);
    s = FNN_SFX(vm_pow2)(n);  /* inf for the largest n, where `big` is used */
    /* past 2^n - 1 being exact the -1 is below half an ulp: 2^n (em + 1),
     * scaled in two steps so that n = max exponent + 1 does not overflow */
    big = ((em + (REAL)1) * FNN_SFX(vm_pow2)(n - (REAL)1)) * (REAL)2;
    r = n > VM_EXPM1_BIG_N ? big : s * em + (s - (REAL)1);
    r = x == 0 ? x : r;  /* keeps the sign of zero */
    return x != x ? x : r;
}

/* k ln2 + log(1 + f) + c for f in [sqrt(1/2) - 1, sqrt(2) - 1), c a small
 * correction: the series form of the header comment, ln2 in two parts. */
static inline REAL FNN_SFX(vm_log_series)(REAL k, REAL f, REAL c)
{
    REAL hfsq = (REAL)0.5 * f * f, s = f / ((REAL)2 + f), z = s * s, R;
#if FNN_REAL_FLOAT
    R = z * (2.0f / 3 + z * (2.0f / 5 + z * (2.0f / 7 + z * (2.0f / 9 + z * (2.0f / 11)))));
#else
    R = z * (2.0 / 3 + z * (2.0 / 5 + z * (2.0 / 7 + z * (2.0 / 9 + z * (2.0 / 11 +
        z * (2.0 / 13 + z * (2.0 / 15 + z * (2.0 / 17 + z * (2.0 / 19 + z * (2.0 / 21))))))))));
#endif
    return k * VM_LN2_HI - ((hfsq - (s * (hfsq + R) + (k * VM_LN2_LO + c))) - f);
}

/* log(u) + c for a positive, finite, normal u, c a small correction. */
static inline REAL FNN_SFX(vm_log_core)(REAL u, REAL c, REAL k_adjust)
{
    const FNN_SFX(ureal) ui = FNN_SFX(vm_bits)(u) + (VM_ONE_BITS - VM_SQRT_HALF_BITS);
    /* the exponent field as a REAL: its bits OR'ed into 2^VM_MANT */
    REAL k = (FNN_SFX(vm_real)(FNN_SFX(vm_bits)(VM_TWO_MANT) | (ui >> VM_MANT)) - VM_TWO_MANT) -
             (REAL)VM_BIAS - k_adjust;
    REAL f = FNN_SFX(vm_real)((ui & VM_MANT_MASK) + VM_SQRT_HALF_BITS) - (REAL)1;
    return FNN_SFX(vm_log_series)(k, f, c);
}

static inline REAL FNN_SFX(vm_log1p)(REAL x)
{
    REAL u = (REAL)1 + x;
    REAL c = (x - (u - (REAL)1)) / u;  /* what rounding 1 + x lost, relative to u */
    REAL y = FNN_SFX(vm_log_core)(u, c, (REAL)0);
    y = x == 0 ? x : y;
    y = x < (REAL)-1 ? (REAL)NAN : y;
    y = x == (REAL)-1 ? -(REAL)INFINITY : y;
    y = x == (REAL)INFINITY ? x : y;
    return x != x ? x : y;
}

static inline REAL FNN_SFX(vm_log)(REAL x)
{
    /* subnormals are scaled into the normal range first */
    int tiny = x < VM_MIN_NORMAL;
    REAL u = tiny ? x * VM_SUBNORMAL_SCALE : x;
    REAL y = FNN_SFX(vm_log_core)(u, (REAL)0, tiny ? VM_SUBNORMAL_LOG2 : (REAL)0);
    y = x < 0 ? (REAL)NAN : y;
    y = x == 0 ? -(REAL)INFINITY : y;
    y = x == (REAL)INFINITY ? x : y;
    return x != x ? x : y;
}

static inline REAL FNN_SFX(vm_tanh)(REAL x)
{
    const FNN_SFX(ureal) sign = FNN_SFX(vm_bits)(x) & VM_SIGN_BIT;
    REAL a = FNN_SFX(vm_real)(FNN_SFX(vm_bits)(x) & ~VM_SIGN_BIT), t;
    a = a > VM_TANH_CAP ? VM_TANH_CAP : a;
    t = FNN_SFX(vm_expm1_core)((REAL)2 * a);
    return FNN_SFX(vm_real)(FNN_SFX(vm_bits)(t / (t + (REAL)2)) | sign);
}

static inline REAL FNN_SFX(vm_sigmoid)(REAL x)
{
    REAL e = FNN_SFX(vm_exp)(-FNN_SFX(vm_real)(FNN_SFX(vm_bits)(x) & ~VM_SIGN_BIT));
    return (x >= 0 ? (REAL)1 : e) / ((REAL)1 + e);
}

/* log1p(e) for e in [0, 1] (or NaN): u = 1 + e lies in [1, 2], so the
 * exponent split is a select (k = 0 or 1) and f = m - 1 and the rounding
 * error c = e - (u - 1) are exact without the general path's bit work. */
static inline REAL FNN_SFX(vm_log1p_unit)(REAL e)
{
    const REAL u = (REAL)1 + e, f0 = u - (REAL)1, c = (e - f0) / u;
    const int up = u >= (REAL)1.41421356237309504880;
    return FNN_SFX(vm_log_series)(up ? (REAL)1 : (REAL)0, up ? u * (REAL)0.5 - (REAL)1 : f0, c);
}

static inline REAL FNN_SFX(vm_softplus)(REAL x)
{
    REAL e = FNN_SFX(vm_exp)(-FNN_SFX(vm_real)(FNN_SFX(vm_bits)(x) & ~VM_SIGN_BIT));
    return (x > 0 ? x : (REAL)0) + FNN_SFX(vm_log1p_unit)(e);
}

/* softplus'(z) = sigmoid(z) = -expm1(-a) from the output a = softplus(z) > 0
 * (or NaN): the argument is capped below where expm1 is -1, so the core
 * form applies. */
static inline REAL FNN_SFX(vm_softplus_grad)(REAL a)
{
    REAL x = -a;
    x = x < VM_EXPM1_LO ? VM_EXPM1_LO : x;
    return -FNN_SFX(vm_expm1_core)(x);
}
