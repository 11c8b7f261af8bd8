#ifndef HESSIAN_HARNESS_CKERNELS_H
#define HESSIAN_HARNESS_CKERNELS_H
#include <stddef.h>

/* y[i] = fma(a, x[i], y[i]) for i < n: one rounding per element, the same values as
   Swift's `y.addingProduct(a, x)`. With the CPU's FMA (checked at run time) in
   256-bit lanes, otherwise the C library's fma per element. */
void hh_daxpy_fused(size_t n, double a, const double *x, double *y);
void hh_saxpy_fused(size_t n, float a, const float *x, float *y);

#endif
