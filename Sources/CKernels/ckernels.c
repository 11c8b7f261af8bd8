/* Fused multiply-add loops for the generic kernels' Float and Double instances.
 *
 * The package is built for baseline x86-64 (no FMA instruction), so Swift compiles
 * `addingProduct` on Float/Double to a call of the C library's fma/fmaf per element
 * (correctly rounded, ~5 ns with the call). Swift cannot compile one function for a
 * CPU feature chosen at run time; C can: the loops below are compiled for AVX+FMA and
 * taken only when the CPU has them. fma is fma: every path gives the same bits. */
#include <stdlib.h>
#include <math.h>
#include <string.h>
#include "ckernels.h"
#ifdef __GLIBC__
#include <malloc.h>
#endif

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>
#define HH_X86_FMA 1

__attribute__((target("avx,fma")))
static void daxpy_avx_fma(size_t n, double a, const double *x, double *y) {
    __m256d va = _mm256_set1_pd(a);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256d y0 = _mm256_fmadd_pd(va, _mm256_loadu_pd(x + i), _mm256_loadu_pd(y + i));
        __m256d y1 = _mm256_fmadd_pd(va, _mm256_loadu_pd(x + i + 4), _mm256_loadu_pd(y + i + 4));
        _mm256_storeu_pd(y + i, y0);
        _mm256_storeu_pd(y + i + 4, y1);
    }
    for (; i < n; i++) y[i] = fma(a, x[i], y[i]);
}

__attribute__((target("avx,fma")))
static void saxpy_avx_fma(size_t n, float a, const float *x, float *y) {
    __m256 va = _mm256_set1_ps(a);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 y0 = _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i));
        __m256 y1 = _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8));
        _mm256_storeu_ps(y + i, y0);
        _mm256_storeu_ps(y + i + 8, y1);
    }
    for (; i < n; i++) y[i] = fmaf(a, x[i], y[i]);
}

/* Several fp64 Krylov updates and dot products in one pass (hh_daxpy_fused_many,
   hh_ddot_fused_chains): written once for binary64 and for binary32 x widened exactly
   (LOADX4 loads four x values as doubles, LOADX1 one). */
#define HH_MANY_KERNELS(suffix, xtype, LOADX4, LOADX1) \
__attribute__((target("avx,fma"))) \
static void daxpy_many##suffix##_avx_fma(size_t n, size_t k, const double *a, const xtype *const *x, double *y) { \
    size_t i = 0; \
    for (; i + 8 <= n; i += 8) { \
        __m256d y0 = _mm256_loadu_pd(y + i), y1 = _mm256_loadu_pd(y + i + 4); \
        for (size_t m = 0; m < k; m++) { \
            __m256d am = _mm256_broadcast_sd(a + m); \
            y0 = _mm256_fmadd_pd(am, LOADX4(x[m] + i), y0); \
            y1 = _mm256_fmadd_pd(am, LOADX4(x[m] + i + 4), y1); \
        } \
        _mm256_storeu_pd(y + i, y0); \
        _mm256_storeu_pd(y + i + 4, y1); \
    } \
    for (; i < n; i++) for (size_t m = 0; m < k; m++) y[i] = fma(a[m], (double)x[m][i], y[i]); \
} \
/* Four chains advance together (the FMA's latency hidden by the other three), over \
   blocks of y that stay in the L1 cache while every group of four reads them. */ \
__attribute__((target("avx,fma"))) \
static void ddot_chains##suffix##_avx_fma(size_t n, size_t k, const xtype *const *x, const double *y, double *out) { \
    for (size_t m = 0; m < k; m++) out[m] = 0.0; \
    for (size_t i0 = 0; i0 < n; i0 += 1024) { \
        size_t i1 = n - i0 < 1024 ? n : i0 + 1024; \
        for (size_t m = 0; m < k; m += 4) { \
            /* A group short of four repeats its last vector; only its own sums are kept. */ \
            const xtype *x0 = x[m], *x1 = x[m + 1 < k ? m + 1 : k - 1], \
                        *x2 = x[m + 2 < k ? m + 2 : k - 1], *x3 = x[m + 3 < k ? m + 3 : k - 1]; \
            __m128d s0 = _mm_set_sd(out[m]), s1 = _mm_set_sd(m + 1 < k ? out[m + 1] : 0), \
                    s2 = _mm_set_sd(m + 2 < k ? out[m + 2] : 0), s3 = _mm_set_sd(m + 3 < k ? out[m + 3] : 0); \
            for (size_t i = i0; i < i1; i++) { \
                __m128d yi = _mm_load_sd(y + i); \
                s0 = _mm_fmadd_sd(LOADX1(x0 + i), yi, s0); \
                s1 = _mm_fmadd_sd(LOADX1(x1 + i), yi, s1); \
                s2 = _mm_fmadd_sd(LOADX1(x2 + i), yi, s2); \
                s3 = _mm_fmadd_sd(LOADX1(x3 + i), yi, s3); \
            } \
            out[m] = _mm_cvtsd_f64(s0); \
            if (m + 1 < k) out[m + 1] = _mm_cvtsd_f64(s1); \
            if (m + 2 < k) out[m + 2] = _mm_cvtsd_f64(s2); \
            if (m + 3 < k) out[m + 3] = _mm_cvtsd_f64(s3); \
        } \
    } \
}
#define HH_LOAD4_F64(p) _mm256_loadu_pd(p)
#define HH_LOAD1_F64(p) _mm_load_sd(p)
#define HH_LOAD4_F32(p) _mm256_cvtps_pd(_mm_loadu_ps(p))
#define HH_LOAD1_F32(p) _mm_set_sd((double)*(p))
HH_MANY_KERNELS(, double, HH_LOAD4_F64, HH_LOAD1_F64)
HH_MANY_KERNELS(_f32x, float, HH_LOAD4_F32, HH_LOAD1_F32)

static int has_avx_fma(void) {
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx") && __builtin_cpu_supports("fma");
    }
    return cached;
}
#endif

void hh_daxpy_fused(size_t n, double a, const double *x, double *y) {
#ifdef HH_X86_FMA
    if (has_avx_fma()) { daxpy_avx_fma(n, a, x, y); return; }
#endif
    for (size_t i = 0; i < n; i++) y[i] = fma(a, x[i], y[i]);
}

void hh_saxpy_fused(size_t n, float a, const float *x, float *y) {
#ifdef HH_X86_FMA
    if (has_avx_fma()) { saxpy_avx_fma(n, a, x, y); return; }
#endif
    for (size_t i = 0; i < n; i++) y[i] = fmaf(a, x[i], y[i]);
}

/* The public entry points of HH_MANY_KERNELS' loops, with the portable loops (the C
   library's fma per element) where the CPU has no FMA. */
#ifdef HH_X86_FMA
#define HH_MANY_FAST(call) if (has_avx_fma()) { call; return; }
#else
#define HH_MANY_FAST(call)
#endif
#define HH_MANY_ENTRIES(suffix, xtype) \
void hh_daxpy_fused_many##suffix(size_t n, size_t k, const double *a, const xtype *const *x, double *y) { \
    HH_MANY_FAST(daxpy_many##suffix##_avx_fma(n, k, a, x, y)) \
    for (size_t i = 0; i < n; i++) for (size_t m = 0; m < k; m++) y[i] = fma(a[m], (double)x[m][i], y[i]); \
} \
void hh_ddot_fused_chains##suffix(size_t n, size_t k, const xtype *const *x, const double *y, double *out) { \
    HH_MANY_FAST(ddot_chains##suffix##_avx_fma(n, k, x, y, out)) \
    for (size_t m = 0; m < k; m++) { \
        double s = 0.0; \
        for (size_t i = 0; i < n; i++) s = fma((double)x[m][i], y[i], s); \
        out[m] = s; \
    } \
}
HH_MANY_ENTRIES(, double)
HH_MANY_ENTRIES(_f32x, float)

int hh_cpu_x86_level(void) {
#ifdef HH_X86_FMA
    __builtin_cpu_init();
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    int skx = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd")
        && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq")
        && __builtin_cpu_supports("avx512vl");
    if (avx2 && skx) return __builtin_cpu_supports("avx512bf16") ? 3 : 2;
    return avx2 ? 1 : 0;
#else
    return 0;
#endif
}

/* hh_cpu_x86_level, asked once (every thread stores the same value). */
static int cpu_level(void) {
    static int cached = -1;
    int level = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (level < 0) { level = hh_cpu_x86_level(); __atomic_store_n(&cached, level, __ATOMIC_RELAXED); }
    return level;
}

/* A loop written once as an always-inline function is instantiated three times: for
   baseline x86-64 (name_base), AVX2 (name_avx2) and AVX-512 (name_avx512); HH_DISPATCH
   returns the call of the instance the CPU runs. */
#define HH_TARGET_AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,avx512cd,avx2,fma")))
#define HH_TARGET_AVX2 __attribute__((target("avx2,fma")))
#ifdef HH_X86_FMA
#define HH_DISPATCH(name, ...) do { int level_ = cpu_level(); \
    if (level_ >= 2) return name##_avx512(__VA_ARGS__); \
    if (level_ == 1) return name##_avx2(__VA_ARGS__); \
    return name##_base(__VA_ARGS__); } while (0)
#else
#define HH_DISPATCH(name, ...) return name##_base(__VA_ARGS__)
#endif

/* ---- binary32 tanh, Binary32Tanh.tanhOfDouble in vector lanes ----
 *
 * The Swift code (Sources/Scalars/Binary32Tanh.swift) states the method and its error
 * bound; this is the same sequence of IEEE operations, so every lane yields the Double
 * the Swift function yields, and the same decision. Contraction stays off: a fused
 * multiply-add would change those Doubles (not the decided results, which the error
 * bound covers, but the claim "the same evaluation"). Out-of-range lanes evaluate at
 * a = 1 and are replaced by their own results (x, ±1, quieted NaN). */
#pragma STDC FP_CONTRACT OFF

static inline __attribute__((always_inline))
uint64_t tanhf_block(size_t n, const float *restrict x, float *restrict y) {
    uint8_t undecided[64];
    int any = 0;
    for (size_t i = 0; i < n; i++) {
        float xi = x[i];
        float a = fabsf(xi);
        int mid = a >= 0x1p-12f && a < 10.0f;                       /* NaN: 0 */
        double yv = 2 * (double)(mid ? a : 1.0f);
        double k = (yv * 0x1.71547652b82fep0 + 0x1.8p52) - 0x1.8p52;
        double r = yv - k * 0x1.62e42fefa39efp-1;
        uint64_t sbits = (uint64_t)(1023 + (int64_t)k) << 52;
        double s; memcpy(&s, &sbits, 8);
        double q = 1.0 / 6227020800;
        q = q * r + 1.0 / 479001600; q = q * r + 1.0 / 39916800; q = q * r + 1.0 / 3628800;
        q = q * r + 1.0 / 362880; q = q * r + 1.0 / 40320; q = q * r + 1.0 / 5040;
        q = q * r + 1.0 / 720; q = q * r + 1.0 / 120; q = q * r + 1.0 / 24;
        q = q * r + 1.0 / 6; q = q * r + 0.5;
        double e = s * (r + r * r * q) + (s - 1);
        double t = e / (e + 2);
        uint64_t tbits; memcpy(&tbits, &t, 8);
        uint32_t dropped = (uint32_t)tbits & 0x1FFFFFFFu;            /* clearOfBinary32Midpoint(t, by: 2^14) */
        int clear = (uint32_t)(dropped - (0x10000000u - 0x4000u)) > 2u * 0x4000u;
        float other = a >= 10.0f ? copysignf(1.0f, xi) : (xi != xi ? xi + xi : xi);
        y[i] = mid ? (clear ? copysignf((float)t, xi) : xi) : other;
        uint8_t u = (uint8_t)(mid & !clear);
        undecided[i] = u;
        any |= u;
    }
    if (!any) return 0;
    uint64_t mask = 0;
    for (size_t i = 0; i < n; i++) mask |= (uint64_t)undecided[i] << i;
    return mask;
}

static uint64_t tanhf_block_base(size_t n, const float *restrict x, float *restrict y) { return tanhf_block(n, x, y); }
#ifdef HH_X86_FMA
HH_TARGET_AVX512 static uint64_t tanhf_block_avx512(size_t n, const float *restrict x, float *restrict y) { return tanhf_block(n, x, y); }
HH_TARGET_AVX2 static uint64_t tanhf_block_avx2(size_t n, const float *restrict x, float *restrict y) { return tanhf_block(n, x, y); }
#endif

uint64_t hh_tanhf_block(size_t n, const float *x, float *y) {
    HH_DISPATCH(tanhf_block, n > 64 ? 64 : n, x, y);
}

/* ---- the binary32 FD-HVP's O(n) stages (see ckernels.h and Curvature/Binary32FD.swift) ---- */

/* FormatArithmetic.binary32Decides(sum: r, product: p), the same compares. */
static inline __attribute__((always_inline)) int binary32_decides(double r, double p) {
    double m = fabs(r);
    int near = fabs(p) <= 0x1p12 * m;
    int normal = m >= 0x1p-126 && m < 0x1p127;
    uint64_t bits; memcpy(&bits, &r, 8);
    uint32_t dropped = (uint32_t)bits & 0x1FFFFFFFu;
    int clear = (uint32_t)(dropped - (0x10000000u - 0x1000u)) > 2u * 0x1000u;
    return near & normal & clear;
}

static inline __attribute__((always_inline))
int fd_points_f32(size_t n, const double *restrict t, const double *restrict v, double eps, int central,
                  float *restrict plus, float *restrict second) {
    int decided_plus = 0, decided_minus = 0;
    if (central) {
        for (size_t i = 0; i < n; i++) {
            double p = eps * v[i], r = t[i] + p, s = t[i] - p;
            decided_plus += binary32_decides(r, p);
            decided_minus += binary32_decides(s, p);
            plus[i] = (float)r;
            second[i] = (float)s;
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            double p = eps * v[i], r = t[i] + p;
            decided_plus += binary32_decides(r, p);
            plus[i] = (float)r;
            second[i] = (float)t[i];
        }
        decided_minus = (int)n;
    }
    return (decided_plus != (int)n ? 1 : 0) | (decided_minus != (int)n ? 2 : 0);
}

static inline __attribute__((always_inline))
void fd_account_f32(size_t n, const float *restrict plus, const double *restrict t, const double *restrict v,
                    size_t *moving, size_t *swamped) {
    size_t m = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        double p = (double)plus[i];
        size_t moves = v[i] != 0, same = p == t[i];
        m += moves; s += moves & same;
    }
    *moving += m; *swamped += s;
}

static inline __attribute__((always_inline))
void fd_quotient_f32(size_t n, const float *restrict a, const float *restrict b, float den, double *restrict hv) {
    const uint64_t qnan_bits = 0x7ff8000000000000ull;
    double qnan; memcpy(&qnan, &qnan_bits, 8);
    for (size_t i = 0; i < n; i++) {
        float q = (a[i] - b[i]) / den;
        hv[i] = q != q ? qnan : (double)q;
    }
}

static inline __attribute__((always_inline))
void fd_quotient_f64(size_t n, const float *restrict a, const float *restrict b, double den, double *restrict hv) {
    for (size_t i = 0; i < n; i++) hv[i] = ((double)a[i] - (double)b[i]) / den;
}

#define HH_FD_VARIANTS(suffix, attr) \
    attr static int fd_points_f32_##suffix(size_t n, const double *restrict t, const double *restrict v, double eps, \
        int central, float *restrict plus, float *restrict second) { return fd_points_f32(n, t, v, eps, central, plus, second); } \
    attr static void fd_account_f32_##suffix(size_t n, const float *restrict plus, const double *restrict t, \
        const double *restrict v, size_t *moving, size_t *swamped) { fd_account_f32(n, plus, t, v, moving, swamped); } \
    attr static void fd_quotient_f32_##suffix(size_t n, const float *restrict a, const float *restrict b, float den, \
        double *restrict hv) { fd_quotient_f32(n, a, b, den, hv); } \
    attr static void fd_quotient_f64_##suffix(size_t n, const float *restrict a, const float *restrict b, double den, \
        double *restrict hv) { fd_quotient_f64(n, a, b, den, hv); }

HH_FD_VARIANTS(base, )
#ifdef HH_X86_FMA
HH_FD_VARIANTS(avx512, HH_TARGET_AVX512)
HH_FD_VARIANTS(avx2, HH_TARGET_AVX2)
#endif

int hh_fd_points_f32(size_t n, const double *t, const double *v, double eps, int central, float *plus, float *second) {
    HH_DISPATCH(fd_points_f32, n, t, v, eps, central, plus, second);
}
void hh_fd_account_f32(size_t n, const float *plus, const double *t, const double *v, size_t *moving, size_t *swamped) {
    HH_DISPATCH(fd_account_f32, n, plus, t, v, moving, swamped);
}
void hh_fd_quotient_f32(size_t n, const float *a, const float *b, float den, double *hv) {
    HH_DISPATCH(fd_quotient_f32, n, a, b, den, hv);
}
void hh_fd_quotient_f64(size_t n, const float *a, const float *b, double den, double *hv) {
    HH_DISPATCH(fd_quotient_f64, n, a, b, den, hv);
}

/* ---- dual numbers: split into values and tangents, merge back (see ckernels.h) ---- */

#define HH_DUAL_LOOPS(T, suffix, INF)                                                                     \
    static inline __attribute__((always_inline))                                                          \
    int split_dual_##suffix(size_t n, const T *restrict d, T *restrict v, T *restrict t) {               \
        int nonzero = 0, nonfinite = 0;                                                                   \
        for (size_t i = 0; i < n; i++) {                                                                  \
            T a = d[2 * i], b = d[2 * i + 1];                                                             \
            v[i] = a; t[i] = b;                                                                           \
            nonzero |= b != 0;                                                                            \
            nonfinite |= !(a > -INF && a < INF);                                                          \
        }                                                                                                 \
        return (nonzero ? 0 : 1) | (nonfinite ? 0 : 2);                                                   \
    }                                                                                                     \
    static inline __attribute__((always_inline))                                                          \
    void merge_dual_##suffix(size_t n, const T *restrict v, const T *restrict t1, const T *restrict t2,  \
                             T *restrict d) {                                                             \
        if (t1 && t2) { for (size_t i = 0; i < n; i++) { d[2 * i] = v[i]; d[2 * i + 1] = t1[i] + t2[i]; } } \
        else if (t1) { for (size_t i = 0; i < n; i++) { d[2 * i] = v[i]; d[2 * i + 1] = t1[i] + (T)0; } }  \
        else if (t2) { for (size_t i = 0; i < n; i++) { d[2 * i] = v[i]; d[2 * i + 1] = t2[i] + (T)0; } }  \
        else { for (size_t i = 0; i < n; i++) { d[2 * i] = v[i]; d[2 * i + 1] = (T)0 + (T)0; } }           \
    }

HH_DUAL_LOOPS(float, f32, INFINITY)
HH_DUAL_LOOPS(double, f64, (double)INFINITY)

#define HH_DUAL_VARIANTS(suffix, attr)                                                                    \
    attr static int split_dual_f32_##suffix(size_t n, const float *restrict d, float *restrict v, float *restrict t) { \
        return split_dual_f32(n, d, v, t); }                                                              \
    attr static int split_dual_f64_##suffix(size_t n, const double *restrict d, double *restrict v, double *restrict t) { \
        return split_dual_f64(n, d, v, t); }                                                              \
    attr static void merge_dual_f32_##suffix(size_t n, const float *restrict v, const float *restrict t1, \
        const float *restrict t2, float *restrict d) { merge_dual_f32(n, v, t1, t2, d); }                 \
    attr static void merge_dual_f64_##suffix(size_t n, const double *restrict v, const double *restrict t1, \
        const double *restrict t2, double *restrict d) { merge_dual_f64(n, v, t1, t2, d); }

HH_DUAL_VARIANTS(base, )
#ifdef HH_X86_FMA
HH_DUAL_VARIANTS(avx512, HH_TARGET_AVX512)
HH_DUAL_VARIANTS(avx2, HH_TARGET_AVX2)
#endif

int hh_split_dual_f32(size_t n, const float *d, float *values, float *tangents) {
    HH_DISPATCH(split_dual_f32, n, d, values, tangents);
}
int hh_split_dual_f64(size_t n, const double *d, double *values, double *tangents) {
    HH_DISPATCH(split_dual_f64, n, d, values, tangents);
}
void hh_merge_dual_f32(size_t n, const float *v, const float *t1, const float *t2, float *d) {
    HH_DISPATCH(merge_dual_f32, n, v, t1, t2, d);
}
void hh_merge_dual_f64(size_t n, const double *v, const double *t1, const double *t2, double *d) {
    HH_DISPATCH(merge_dual_f64, n, v, t1, t2, d);
}

/* ---- Dual<Double> matrix product with the dot product's order (OrderedGemm.dualDouble) ----
 *
 * C = A B (m×k times k×n, row-major, values and tangents planar). Every output is the
 * recursive dual sum of its dot product, from +0, p ascending: the product
 * x·y = (xv·yv, xt·yv + xv·yt) and the sum s + x·y componentwise, each operation rounded
 * (contraction is off for this file), exactly as Swift's Dual operators evaluate it.
 * Lanes hold different outputs (4 rows × 8 columns per block, the 8 columns of B packed
 * once per panel), so vectorizing changes
 * no output's arithmetic; every instance (baseline, AVX2, AVX-512) gives the same bits. */
typedef double hh_v8d __attribute__((vector_size(64), aligned(8)));

static inline __attribute__((always_inline))
void dual_gemm_f64(size_t m, size_t k, size_t n, const double *restrict av, const double *restrict at,
                   const double *restrict bv, const double *restrict bt, double *restrict cv, double *restrict ct,
                   double *restrict pack) {
    /* Columns in panels of 8: the panel of B (values then tangents, k × 8 each) is packed
       contiguously once and read by every block of 4 rows. */
    size_t j = 0;
    for (; j + 8 <= n; j += 8) {
        for (size_t p = 0; p < k; p++)
            for (size_t c = 0; c < 8; c++) { pack[16 * p + c] = bv[p * n + j + c]; pack[16 * p + 8 + c] = bt[p * n + j + c]; }
        size_t i = 0;
        for (; i + 4 <= m; i += 4) {
            hh_v8d s0v = {0}, s0t = {0}, s1v = {0}, s1t = {0}, s2v = {0}, s2t = {0}, s3v = {0}, s3t = {0};
            const double *restrict a0v = av + i * k, *restrict a1v = a0v + k, *restrict a2v = a1v + k, *restrict a3v = a2v + k;
            const double *restrict a0t = at + i * k, *restrict a1t = a0t + k, *restrict a2t = a1t + k, *restrict a3t = a2t + k;
            for (size_t p = 0; p < k; p++) {
                hh_v8d yv = *(const hh_v8d *)(pack + 16 * p), yt = *(const hh_v8d *)(pack + 16 * p + 8);
                s0v = s0v + a0v[p] * yv; s0t = s0t + (a0t[p] * yv + a0v[p] * yt);
                s1v = s1v + a1v[p] * yv; s1t = s1t + (a1t[p] * yv + a1v[p] * yt);
                s2v = s2v + a2v[p] * yv; s2t = s2t + (a2t[p] * yv + a2v[p] * yt);
                s3v = s3v + a3v[p] * yv; s3t = s3t + (a3t[p] * yv + a3v[p] * yt);
            }
            *(hh_v8d *)(cv + i * n + j) = s0v; *(hh_v8d *)(ct + i * n + j) = s0t;
            *(hh_v8d *)(cv + (i + 1) * n + j) = s1v; *(hh_v8d *)(ct + (i + 1) * n + j) = s1t;
            *(hh_v8d *)(cv + (i + 2) * n + j) = s2v; *(hh_v8d *)(ct + (i + 2) * n + j) = s2t;
            *(hh_v8d *)(cv + (i + 3) * n + j) = s3v; *(hh_v8d *)(ct + (i + 3) * n + j) = s3t;
        }
        for (; i < m; i++) {
            hh_v8d sv = {0}, st = {0};
            for (size_t p = 0; p < k; p++) {
                hh_v8d yv = *(const hh_v8d *)(pack + 16 * p), yt = *(const hh_v8d *)(pack + 16 * p + 8);
                sv = sv + av[i * k + p] * yv; st = st + (at[i * k + p] * yv + av[i * k + p] * yt);
            }
            *(hh_v8d *)(cv + i * n + j) = sv; *(hh_v8d *)(ct + i * n + j) = st;
        }
    }
    for (size_t r = 0; r < m; r++) {
        for (size_t jj = j; jj < n; jj++) {
            double sv = 0, st = 0;
            for (size_t p = 0; p < k; p++) {
                double xv = av[r * k + p], xt = at[r * k + p], yv = bv[p * n + jj], yt = bt[p * n + jj];
                sv = sv + xv * yv;
                st = st + (xt * yv + xv * yt);
            }
            cv[r * n + jj] = sv; ct[r * n + jj] = st;
        }
    }
}

static void dual_gemm_f64_base(size_t m, size_t k, size_t n, const double *av, const double *at, const double *bv,
                               const double *bt, double *cv, double *ct, double *pack) { dual_gemm_f64(m, k, n, av, at, bv, bt, cv, ct, pack); }
#ifdef HH_X86_FMA
HH_TARGET_AVX2 static void dual_gemm_f64_avx2(size_t m, size_t k, size_t n, const double *av, const double *at, const double *bv,
                                              const double *bt, double *cv, double *ct, double *pack) { dual_gemm_f64(m, k, n, av, at, bv, bt, cv, ct, pack); }
HH_TARGET_AVX512 static void dual_gemm_f64_avx512(size_t m, size_t k, size_t n, const double *av, const double *at, const double *bv,
                                                  const double *bt, double *cv, double *ct, double *pack) { dual_gemm_f64(m, k, n, av, at, bv, bt, cv, ct, pack); }
#endif

int hh_dual_gemm_f64(int level, size_t m, size_t k, size_t n, const double *av, const double *at, const double *bv,
                     const double *bt, double *cv, double *ct) {
    int cpu = cpu_level();
    int use = level < 0 || level > cpu ? cpu : level;
    double *pack = malloc(sizeof(double) * 16 * (k > 0 ? k : 1));
    if (!pack) abort();
#ifdef HH_X86_FMA
    if (use >= 2) { dual_gemm_f64_avx512(m, k, n, av, at, bv, bt, cv, ct, pack); free(pack); return 2; }
    if (use == 1) { dual_gemm_f64_avx2(m, k, n, av, at, bv, bt, cv, ct, pack); free(pack); return 1; }
#endif
    dual_gemm_f64_base(m, k, n, av, at, bv, bt, cv, ct, pack);
    free(pack);
    return 0;
}

int hh_malloc_keep_freed(void) {
#ifdef __GLIBC__
    int a = mallopt(M_MMAP_MAX, 0);
    int b = mallopt(M_TRIM_THRESHOLD, -1);
    int c = mallopt(M_ARENA_MAX, 1);
    return a == 1 && b == 1 && c == 1;
#else
    return 0;
#endif
}

/* ---- SHA-256 compression (FIPS 180-4 §6.2.2), for the manifests' file digests ----
 *
 * hh_sha256_blocks runs the compression function over `blocks` 64-byte blocks into
 * `state` (the Swift side, Harness's SHA256, pads the message and forms the digest).
 * Two instances: plain C (every CPU), and the x86 SHA extensions (SHA-NI: sha256rnds2
 * runs two rounds, sha256msg1/msg2 the message schedule; AMD since Zen, Intel since Ice
 * Lake and Goldmont) chosen at run time from CPUID leaf 7 (EBX bit 29). The Swift loop
 * they replace hashed ~150 MB/s, 20 s of every `hvp` of a 1.3·10⁸-parameter model (its
 * 3 GB of .npy arrays); `bench sha256` on the AMD EPYC VM: SHA-NI 1430 MB/s (650 before
 * the group loop was unrolled, which keeps the schedule in registers), plain C 180–200
 * MB/s. Both are checked against the FIPS 180-4 vectors and coreutils
 * sha256sum in the tests (hh_sha256_blocks_portable names the plain one). */
static const uint32_t sha256_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static inline uint32_t sha256_rotr(uint32_t x, unsigned n) { return (x >> n) | (x << (32 - n)); }

void hh_sha256_blocks_portable(uint32_t state[8], const uint8_t *data, size_t blocks) {
    uint32_t w[64];
    for (; blocks > 0; blocks--, data += 64) {
        for (int t = 0; t < 16; t++)
            w[t] = (uint32_t)data[4 * t] << 24 | (uint32_t)data[4 * t + 1] << 16 | (uint32_t)data[4 * t + 2] << 8 | data[4 * t + 3];
        for (int t = 16; t < 64; t++) {
            uint32_t s0 = sha256_rotr(w[t - 15], 7) ^ sha256_rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
            uint32_t s1 = sha256_rotr(w[t - 2], 17) ^ sha256_rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);
            w[t] = w[t - 16] + s0 + w[t - 7] + s1;
        }
        uint32_t a = state[0], b = state[1], c = state[2], d = state[3], e = state[4], f = state[5], g = state[6], h = state[7];
        for (int t = 0; t < 64; t++) {
            uint32_t t1 = h + (sha256_rotr(e, 6) ^ sha256_rotr(e, 11) ^ sha256_rotr(e, 25)) + ((e & f) ^ (~e & g)) + sha256_k[t] + w[t];
            uint32_t t2 = (sha256_rotr(a, 2) ^ sha256_rotr(a, 13) ^ sha256_rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
            h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
        }
        state[0] += a; state[1] += b; state[2] += c; state[3] += d; state[4] += e; state[5] += f; state[6] += g; state[7] += h;
    }
}

#ifdef HH_X86_FMA
#include <cpuid.h>
int hh_sha256_has_shani(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    if (!(b & (1u << 29))) return 0;                               /* SHA */
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    return (c & (1u << 19)) && (c & (1u << 9)) ? 1 : 0;            /* SSE4.1, SSSE3 */
}

/* The state is kept as ABEF and CDGH (the layout sha256rnds2 takes); each of the 16
   groups runs four rounds (two sha256rnds2) and advances the message schedule, whose
   four registers hold w[4g..4g+15] as in Intel's reference sequence. */
__attribute__((target("sha,sse4.1,ssse3")))
static void sha256_blocks_shani(uint32_t state[8], const uint8_t *data, size_t blocks) {
    const __m128i mask = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);
    __m128i tmp = _mm_loadu_si128((const __m128i *)&state[0]);
    __m128i s1 = _mm_loadu_si128((const __m128i *)&state[4]);
    tmp = _mm_shuffle_epi32(tmp, 0xB1);                            /* CDAB */
    s1 = _mm_shuffle_epi32(s1, 0x1B);                              /* EFGH */
    __m128i s0 = _mm_alignr_epi8(tmp, s1, 8);                      /* ABEF */
    s1 = _mm_blend_epi16(s1, tmp, 0xF0);                           /* CDGH */
    for (; blocks > 0; blocks--, data += 64) {
        __m128i abef = s0, cdgh = s1, m[4];
#pragma clang loop unroll(full)
        for (int g = 0; g < 16; g++) {
            __m128i *cur = &m[g & 3], *prev = &m[(g + 3) & 3], *next = &m[(g + 1) & 3];
            if (g < 4) *cur = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 16 * g)), mask);
            __m128i msg = _mm_add_epi32(*cur, _mm_loadu_si128((const __m128i *)&sha256_k[4 * g]));
            s1 = _mm_sha256rnds2_epu32(s1, s0, msg);
            if (g >= 3 && g <= 14) {
                *next = _mm_add_epi32(*next, _mm_alignr_epi8(*cur, *prev, 4));
                *next = _mm_sha256msg2_epu32(*next, *cur);
            }
            s0 = _mm_sha256rnds2_epu32(s0, s1, _mm_shuffle_epi32(msg, 0x0E));
            if (g >= 1 && g <= 12) *prev = _mm_sha256msg1_epu32(*prev, *cur);
        }
        s0 = _mm_add_epi32(s0, abef);
        s1 = _mm_add_epi32(s1, cdgh);
    }
    tmp = _mm_shuffle_epi32(s0, 0x1B);                             /* FEBA */
    s1 = _mm_shuffle_epi32(s1, 0xB1);                              /* DCHG */
    s0 = _mm_blend_epi16(tmp, s1, 0xF0);                           /* DCBA */
    s1 = _mm_alignr_epi8(s1, tmp, 8);                              /* HGFE */
    _mm_storeu_si128((__m128i *)&state[0], s0);
    _mm_storeu_si128((__m128i *)&state[4], s1);
}
#else
int hh_sha256_has_shani(void) { return 0; }
#endif

void hh_sha256_blocks(uint32_t state[8], const uint8_t *data, size_t blocks) {
#ifdef HH_X86_FMA
    static int cached = -1;
    int use = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (use < 0) { use = hh_sha256_has_shani(); __atomic_store_n(&cached, use, __ATOMIC_RELAXED); }
    if (use) { sha256_blocks_shani(state, data, blocks); return; }
#endif
    hh_sha256_blocks_portable(state, data, blocks);
}
