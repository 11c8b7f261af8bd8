#ifndef HESSIAN_HARNESS_CKERNELS_H
#define HESSIAN_HARNESS_CKERNELS_H
#include <stddef.h>
#include <stdint.h>

/* y[i] = fma(a, x[i], y[i]) for i < n: one rounding per element, the same values as
   Swift's `y.addingProduct(a, x)`. With the CPU's FMA (checked at run time) in
   256-bit lanes, otherwise the C library's fma per element. */
void hh_daxpy_fused(size_t n, double a, const double *x, double *y);
void hh_saxpy_fused(size_t n, float a, const float *x, float *y);

/* Binary32 tanh of x[i] into y[i] for i < n ≤ 64 (x and y must not overlap): the
   Double evaluation of Scalars' Binary32Tanh operation for operation (no contraction
   into fused multiply-adds), in vector registers when the CPU has AVX2 or AVX-512.
   Returns a mask with bit i set where that evaluation does not decide the binary32
   rounding (within 2^14 binary64 ulps of a midpoint, about 1 input in 2^14); there
   y[i] = x[i], and the caller computes the correctly rounded value itself. */
uint64_t hh_tanhf_block(size_t n, const float *x, float *y);

/* The richest x86-64 instruction-set level of this CPU, as OpenBLAS's kernels group
   them: 0 none of the below (or not x86-64), 1 AVX2 + FMA (its Haswell kernels),
   2 AVX-512 F/CD/BW/DQ/VL (SkylakeX), 3 that and AVX-512 BF16 (Cooperlake). From
   cpuid through the compiler's __builtin_cpu_supports, which also checks that the
   operating system saves the vector registers. */
int hh_cpu_x86_level(void);

#endif
