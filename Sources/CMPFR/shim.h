#ifndef HESSIAN_HARNESS_CMPFR_SHIM_H
#define HESSIAN_HARNESS_CMPFR_SHIM_H
#include <stdio.h>
#include <gmp.h>
#include <mpfr.h>

/* Macro-only facts of mpfr.h, exposed as functions/constants Swift can see. */
static inline const char *hh_gmp_version(void) { return gmp_version; }
static inline long hh_mpfr_prec_min(void) { return (long)MPFR_PREC_MIN; }
static inline long hh_mpfr_prec_max(void) { return (long)MPFR_PREC_MAX; }
static inline size_t hh_mpfr_limb_bytes(void) { return sizeof(mp_limb_t); }
static inline int hh_mpfr_zero_kind(void) { return MPFR_ZERO_KIND; }
#endif
