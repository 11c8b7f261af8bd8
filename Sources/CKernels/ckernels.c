/* Fused multiply-add loops for the generic kernels' Float and Double instances.
 *
 * The package is built for baseline x86-64 (no FMA instruction), so Swift compiles
 * `addingProduct` on Float/Double to a call of the C library's fma/fmaf per element
 * (correctly rounded, ~5 ns with the call). Swift cannot compile one function for a
 * CPU feature chosen at run time; C can: the loops below are compiled for AVX+FMA and
 * taken only when the CPU has them. fma is fma: every path gives the same bits. */
#include <math.h>
#include "ckernels.h"

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
