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
