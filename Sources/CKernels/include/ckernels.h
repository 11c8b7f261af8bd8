#ifndef HESSIAN_HARNESS_CKERNELS_H
#define HESSIAN_HARNESS_CKERNELS_H
#include <stddef.h>
#include <stdint.h>

/* y[i] = fma(a, x[i], y[i]) for i < n: one rounding per element, the same values as
   Swift's `y.addingProduct(a, x)`. With the CPU's FMA (checked at run time) in
   256-bit lanes, otherwise the C library's fma per element. */
void hh_daxpy_fused(size_t n, double a, const double *x, double *y);
void hh_saxpy_fused(size_t n, float a, const float *x, float *y);
/* k updates in one pass over y: y[i] = fma(a[m], x[m][i], y[i]) for m = 0..k-1 in that
   order at every i (each x[m] of n values): the bits of k calls of hh_daxpy_fused, y
   read and written once. The _f32x form widens binary32 x exactly. */
void hh_daxpy_fused_many(size_t n, size_t k, const double *a, const double *const *x, double *y);
void hh_daxpy_fused_many_f32x(size_t n, size_t k, const double *a, const float *const *x, double *y);
/* k recursive fused dot products with one y: out[m] = the chain s = fma(x[m][i], y[i], s),
   i = 0..n-1 in order from s = +0, one rounding per element: the bits of Swift's
   `s.addingProduct(x, y)` loop (NaN payloads aside: which of several NaN operands
   propagates is the instruction's choice). A chain is latency bound; with the CPU's FMA
   four chains advance together and y is read once from memory. The _f32x form widens
   binary32 x exactly. */
void hh_ddot_fused_chains(size_t n, size_t k, const double *const *x, const double *y, double *out);
void hh_ddot_fused_chains_f32x(size_t n, size_t k, const float *const *x, const double *y, double *out);

/* Binary32 tanh of x[i] into y[i] for i < n ≤ 64 (x and y must not overlap): the
   Double evaluation of Scalars' Binary32Tanh operation for operation (no contraction
   into fused multiply-adds), in vector registers when the CPU has AVX2 or AVX-512.
   Returns a mask with bit i set where that evaluation does not decide the binary32
   rounding (within 2^14 binary64 ulps of a midpoint, about 1 input in 2^14); there
   y[i] = x[i], and the caller computes the correctly rounded value itself. */
uint64_t hh_tanhf_block(size_t n, const float *x, float *y);

/* The binary32 FD-HVP's O(n) stages (Curvature's Binary32FD), in vector lanes when
   the CPU has AVX2 or AVX-512: the same IEEE operations as the Swift loops they
   replace, hence the same bits.

   hh_fd_points_f32, for one block of n elements: with p = eps*v[i] (binary64),
   plus[i] = (float)(t[i] + p) and second[i] = (float)(t[i] - p) (central != 0) or
   (float)t[i] (forward). Returns bit 0 set when some plus[i], bit 1 when some
   second[i], is not proved correctly rounded by FormatArithmetic.binary32Decides
   (the caller then recomputes that array's block with a correctly rounded fma).

   hh_fd_account_f32: adds to *moving the number of v[i] != 0 and to *swamped the
   number of those with (double)plus[i] == t[i].

   hh_fd_quotient_f32: hv[i] = (double)((a[i] - b[i]) / den) in binary32, a NaN
   written as the canonical quiet NaN 0x7ff8000000000000; hh_fd_quotient_f64:
   hv[i] = ((double)a[i] - (double)b[i]) / den in binary64. */
int hh_fd_points_f32(size_t n, const double *t, const double *v, double eps, int central, float *plus, float *second);
void hh_fd_account_f32(size_t n, const float *plus, const double *t, const double *v, size_t *moving, size_t *swamped);
void hh_fd_quotient_f32(size_t n, const float *a, const float *b, float den, double *hv);
void hh_fd_quotient_f64(size_t n, const float *a, const float *b, double den, double *hv);

/* Dual numbers stored as (value, tangent) pairs, for the BLAS path of dual matrix
   products. hh_split_dual_f32/f64: values[i] = d[2i], tangents[i] = d[2i+1]; returns
   bit 0 set when every tangent is zero (either sign) and bit 1 when every value is
   finite. hh_merge_dual_f32/f64: d[2i] = v[i] and d[2i+1] = t1[i] + t2[i], where a
   NULL t1 or t2 stands for +0 (so the tangent is t + 0, or +0 + +0). */
int hh_split_dual_f32(size_t n, const float *d, float *values, float *tangents);
int hh_split_dual_f64(size_t n, const double *d, double *values, double *tangents);
void hh_merge_dual_f32(size_t n, const float *v, const float *t1, const float *t2, float *d);
void hh_merge_dual_f64(size_t n, const double *v, const double *t1, const double *t2, double *d);

/* The recursive dot product of MPFR numbers at one precision p: result = fl(s + fl(a[i]·b[i]))
   for i = 0 … n−1 from s = +0, every operation rounded to nearest-even at the precision
   of `result` — the values of an mpfr_mul + mpfr_add loop, bit for bit. a, b: arrays of
   n mpfr_srcptr; result: an mpfr_ptr (void pointers keep mpfr.h out of this header).
   p ≤ 512 runs fixed-width limb code (mpfr_dot.c); anything outside it (NaN, ∞, huge
   exponents, other precisions) continues with MPFR's own calls. */
void hh_mpfr_dot(size_t n, const void *const *a, const void *const *b, void *result);
/* The same for dual numbers (value, tangent): s ← s + x·y with x·y = (xv·yv, xt·yv + xv·yt)
   from (+0, +0), every product and sum rounded — Dual's arithmetic over MPFR, bit for bit.
   Arrays of n mpfr_srcptr each; results: two mpfr_ptr at one precision. */
void hh_mpfr_dual_dot(size_t n, const void *const *xv, const void *const *xt, const void *const *yv,
                      const void *const *yt, void *result_value, void *result_tangent);

/* The richest x86-64 instruction-set level of this CPU, as OpenBLAS's kernels group
   them: 0 none of the below (or not x86-64), 1 AVX2 + FMA (its Haswell kernels),
   2 AVX-512 F/CD/BW/DQ/VL (SkylakeX), 3 that and AVX-512 BF16 (Cooperlake). From
   cpuid through the compiler's __builtin_cpu_supports, which also checks that the
   operating system saves the vector registers. */
int hh_cpu_x86_level(void);

/* Dual<Double> C = A B with every output the recursive dual sum of its dot product
   (OrderedGemm.dualDouble): m×k times k×n, row-major, values and tangents planar.
   level: -1 the CPU's best instance, else 0 baseline, 1 AVX2, 2 AVX-512 (capped at what
   the CPU runs; every instance gives the same bits). Returns the instance that ran. */
int hh_dual_gemm_f64(int level, size_t m, size_t k, size_t n, const double *av, const double *at, const double *bv,
                     const double *bt, double *cv, double *ct);

/* Makes glibc's malloc keep the memory a program frees for its next allocations:
   no allocation is served by an mmap of its own (M_MMAP_MAX = 0), the heap's free top
   is never returned to the system (M_TRIM_THRESHOLD = SIZE_MAX, passed as mallopt's int
   -1, which glibc converts to size_t), and every thread allocates from the main heap
   (M_ARENA_MAX = 1: a thread's own arena is made of 64 MiB heaps and serves a larger
   block with an mmap whatever M_MMAP_MAX says). Returns 1 when all three took effect,
   0 otherwise (0 as well on a C library other than glibc). */
int hh_malloc_keep_freed(void);

/* SHA-256 compression over `blocks` 64-byte blocks into `state` (FIPS 180-4 §6.2.2); the
   caller pads. hh_sha256_blocks uses the x86 SHA extensions when the CPU has them
   (hh_sha256_has_shani), else hh_sha256_blocks_portable. */
void hh_sha256_blocks(uint32_t state[8], const uint8_t *data, size_t blocks);
void hh_sha256_blocks_portable(uint32_t state[8], const uint8_t *data, size_t blocks);
int hh_sha256_has_shani(void);

#endif
