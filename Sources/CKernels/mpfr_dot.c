/* The recursive dot product of MPFR numbers, s = fl(s + fl(a[i]·b[i])) left to right
 * from s = +0, every operation rounded to nearest-even at the common precision p —
 * the values of the loop `mpfr_mul(t, a[i], b[i]); mpfr_add(s, s, t)` bit for bit,
 * without MPFR's per-call generality.
 *
 * Why by hand: for p ≤ 512 (at most 8 limbs) the loop's time is MPFR's call, case
 * analysis and exponent-range bookkeeping, not the limb arithmetic; a fixed-width
 * product and sum with the limb count known to the compiler is about 3× faster.
 * No library offers a correctly rounded fixed-precision multiply-then-add on MPFR's
 * representation (GMP's mpn layer has the limb products, not the rounding).
 *
 * Representation (MPFR's): x = ±0.m × 2^e with the significand m in L = ⌈p/64⌉ limbs,
 * least significant limb first, the top bit set, the k = 64L − p low bits zero.
 *
 * Product: the exact 2L-limb product of the significands, normalized (top bit
 * clear: shift left by one, e − 1), rounded to p bits (round bit, sticky bit,
 * ties to even; a carry out of the top makes it 0.1 × 2^(e+1)).
 * Sum: the operands in L + 2 limbs, the smaller in magnitude shifted right by the
 * exponent difference d; bits shifted out below the 2 guard limbs are folded into a
 * sticky bit in bit 0. The round bit sits at bit ≥ 127, so the folded bits decide
 * only the sticky bit: for an addition the kept bits are exact; for a subtraction
 * with folded bits (d > 128) the kept bits are those of (big − small − 1) with a
 * nonzero remainder, and the cancellation is at most one bit. Exact cancellation
 * gives +0, as MPFR does to nearest.
 * Zeros follow IEEE/MPFR to nearest: s + ±0 = s; (+0) + (−0) = +0; (−0) + (−0) = −0.
 *
 * Outside the fast path — a NaN or infinity, an exponent beyond a quarter of MPFR's
 * current exponent range (so no intermediate result can overflow or underflow:
 * products stay within half the range, sums within that plus log2 n, and a nonzero
 * sum is a multiple of the smallest product's ulp), precisions that differ, or
 * p > 512 — the rest of the loop is MPFR's own, from the value reached. */
#include <mpfr.h>
#include <stdint.h>
#include "ckernels.h"

typedef unsigned __int128 hh_u128;
#define HH_MAXL 8
/* Every limb loop runs a compile-time number of times once L is a constant: unrolled,
   its arrays live in registers. */
#define HH_UNROLL _Pragma("GCC unroll 16")

/* Rounds the top p = 64L − k bits of the nl-limb number z (top bit set) into r;
   returns 1 when rounding carried out of the top (r is then 0.1000…). */
static inline __attribute__((always_inline))
int round_top(int L, int k, const uint64_t *z, int nl, uint64_t *r) {
    const uint64_t *top = z + (nl - L);
    int rbit, sticky = 0, below;
    if (k > 0) {
        rbit = (int)((top[0] >> (k - 1)) & 1);
        sticky = (top[0] & ((1ULL << (k - 1)) - 1)) != 0;
        below = nl - L;
    } else {
        rbit = (int)(z[nl - L - 1] >> 63);
        sticky = (z[nl - L - 1] << 1) != 0;
        below = nl - L - 1;
    }
    HH_UNROLL
    for (int i = 0; i < below; i++) sticky |= z[i] != 0;
    HH_UNROLL
    for (int i = 0; i < L; i++) r[i] = top[i];
    if (k > 0) r[0] &= ~((1ULL << k) - 1);
    uint64_t lsb = (r[0] >> k) & 1;
    /* the increment is added unconditionally (a carry chain, no branch on the
       rounding direction, which is random) */
    uint64_t c = (uint64_t)(rbit & (sticky | (int)lsb)) << k;
    HH_UNROLL
    for (int i = 0; i < L; i++) {
        hh_u128 t = (hh_u128)r[i] + c;
        r[i] = (uint64_t)t;
        c = (uint64_t)(t >> 64);
    }
    if (__builtin_expect(c != 0, 0)) {               /* all kept bits were ones */
        r[L - 1] = 1ULL << 63;
        return 1;
    }
    return 0;
}

/* r = RN_p(a × b) for significands a, b; returns the exponent correction (−1, 0). */
static inline __attribute__((always_inline))
long mul_round(int L, int k, const uint64_t *a, const uint64_t *b, uint64_t *r) {
    uint64_t z[2 * HH_MAXL];
    HH_UNROLL
    for (int i = 0; i < 2 * L; i++) z[i] = 0;
    HH_UNROLL
    for (int i = 0; i < L; i++) {
        uint64_t carry = 0;
        HH_UNROLL
        for (int j = 0; j < L; j++) {
            hh_u128 t = (hh_u128)a[i] * b[j] + z[i + j] + carry;
            z[i + j] = (uint64_t)t;
            carry = (uint64_t)(t >> 64);
        }
        z[i + L] = carry;
    }
    /* top bit clear (about 4 products in 10): shift left by one, without a branch */
    const uint64_t sh = ~z[2 * L - 1] >> 63;
    HH_UNROLL
    for (int i = 2 * L - 1; i > 0; i--) z[i] = (z[i] << sh) | ((z[i - 1] >> 63) & sh);
    z[0] <<= sh;
    return -(long)sh + round_top(L, k, z, 2 * L, r);
}

typedef struct { int neg, zero; long e; uint64_t m[HH_MAXL]; } hh_acc;

static inline __attribute__((always_inline))
int mag_less(int L, long ea, const uint64_t *a, long eb, const uint64_t *b) {
    if (ea != eb) return ea < eb;
    HH_UNROLL
    for (int i = L - 1; i >= 0; i--) if (a[i] != b[i]) return a[i] < b[i];
    return 0;
}

/* s = RN_p(s + (−1)^neg 0.m × 2^e), s and the addend regular. */
static inline __attribute__((always_inline))
void add_round(int L, int k, hh_acc *s, int neg, long e, const uint64_t *m) {
    const int W = L + 2;
    /* big: the operand of larger magnitude; selected limb by limb (no pointers to
       choose between, so both stay in registers) */
    const int swap = mag_less(L, s->e, s->m, e, m);
    const long eb = swap ? e : s->e, es = swap ? s->e : e;
    const int nb = swap ? neg : s->neg, ns = swap ? s->neg : neg;
    unsigned long d = (unsigned long)(eb - es);
    uint64_t x[HH_MAXL + 2], y[HH_MAXL + 2], sv[HH_MAXL + 2];   /* sv: (0, 0, small) */
    x[0] = x[1] = sv[0] = sv[1] = 0;
    HH_UNROLL
    for (int i = 0; i < L; i++) {
        x[i + 2] = swap ? m[i] : s->m[i];
        sv[i + 2] = swap ? s->m[i] : m[i];
    }
    int sticky = 0;
    if (d >= 64UL * (unsigned long)W) {
        HH_UNROLL
        for (int i = 0; i < W; i++) y[i] = 0;
        sticky = 1;
    } else {
        /* y = sv >> d, bits below limb 0 folded into `sticky` */
        int q = (int)(d / 64), r = (int)(d % 64);
        if (q == 0) {                                   /* the common case: within a limb */
            if (r) {
                HH_UNROLL
                for (int i = 0; i < W - 1; i++) y[i] = (sv[i] >> r) | (sv[i + 1] << (64 - r));
                y[W - 1] = sv[W - 1] >> r;
            } else {
                HH_UNROLL
                for (int i = 0; i < W; i++) y[i] = sv[i];
            }
        } else {
            for (int i = 0; i < q; i++) sticky |= sv[i] != 0;
            if (r) sticky |= (sv[q] << (64 - r)) != 0;
            for (int i = 0; i < W; i++) {
                int j = i + q;
                uint64_t lo = j < W ? sv[j] : 0, hi = j + 1 < W ? sv[j + 1] : 0;
                y[i] = r ? (lo >> r) | (hi << (64 - r)) : lo;
            }
        }
    }
    uint64_t z[HH_MAXL + 2];
    long ez = eb;
    if (nb == ns) {
        uint64_t c = 0;
        HH_UNROLL
        for (int i = 0; i < W; i++) {
            hh_u128 t = (hh_u128)x[i] + y[i] + c;
            z[i] = (uint64_t)t; c = (uint64_t)(t >> 64);
        }
        if (c) {
            sticky |= (int)(z[0] & 1);
            HH_UNROLL
            for (int i = 0; i < W - 1; i++) z[i] = (z[i] >> 1) | (z[i + 1] << 63);
            z[W - 1] = (z[W - 1] >> 1) | (1ULL << 63);
            ez += 1;
        }
        z[0] |= (uint64_t)sticky;
    } else {
        uint64_t bw = 0;
        HH_UNROLL
        for (int i = 0; i < W; i++) {
            uint64_t xi = x[i], yi = y[i];
            uint64_t t = xi - yi - bw;
            bw = (xi < yi) || (xi - yi < bw);
            z[i] = t;
        }
        if (sticky) {                                   /* minus the folded remainder: */
            HH_UNROLL
            for (int i = 0; i < W; i++) { uint64_t t = z[i]; z[i] = t - 1; if (t != 0) break; }
            z[0] |= 1;
        }
        int top = W - 1;
        while (top >= 0 && z[top] == 0) top--;
        if (top < 0) { s->zero = 1; s->neg = 0; return; }   /* exact cancellation: +0 */
        int lz = (W - 1 - top) * 64 + __builtin_clzll(z[top]);
        if (lz > 0 && lz < 64) {                       /* the common case: within a limb */
            HH_UNROLL
            for (int i = W - 1; i > 0; i--) z[i] = (z[i] << lz) | (z[i - 1] >> (64 - lz));
            z[0] <<= lz;
            ez -= lz;
        } else if (lz) {
            int q = lz / 64, r = lz % 64;
            for (int i = W - 1; i >= 0; i--) {
                int j = i - q;
                uint64_t hi = j >= 0 ? z[j] : 0, lo = j - 1 >= 0 ? z[j - 1] : 0;
                z[i] = r ? (hi << r) | (lo >> (64 - r)) : hi;
            }
            ez -= lz;
        }
    }
    s->neg = nb;
    s->zero = 0;
    s->e = ez + round_top(L, k, z, W, s->m);
}

/* q = RN(x × y) for MPFR operands at precision p (zero or regular); 0 when either is
   outside the fast path (other precision, NaN, ∞, |exponent| > lim). */
static inline __attribute__((always_inline))
int load_mul(int L, int k, int p, long lim, mpfr_srcptr x, mpfr_srcptr y, hh_acc *q) {
    if (mpfr_get_prec(x) != p || mpfr_get_prec(y) != p) return 0;
    q->neg = mpfr_signbit(x) != mpfr_signbit(y);
    if (mpfr_zero_p(x) || mpfr_zero_p(y)) {
        if (!mpfr_regular_p(x) && !mpfr_zero_p(x)) return 0;
        if (!mpfr_regular_p(y) && !mpfr_zero_p(y)) return 0;
        q->zero = 1;
        return 1;
    }
    if (!mpfr_regular_p(x) || !mpfr_regular_p(y)) return 0;
    long ex = mpfr_get_exp(x), ey = mpfr_get_exp(y);
    if (ex > lim || ex < -lim || ey > lim || ey < -lim) return 0;
    q->zero = 0;
    q->e = ex + ey + mul_round(L, k, (const uint64_t *)mpfr_custom_get_significand(x),
                               (const uint64_t *)mpfr_custom_get_significand(y), q->m);
    return 1;
}

/* s = RN(s + q), zeros as IEEE/MPFR to nearest: s + ±0 = s, ±0 + q = q,
   (+0) + (−0) = +0, (−0) + (−0) = −0. */
static inline __attribute__((always_inline))
void acc_add(int L, int k, hh_acc *s, const hh_acc *q) {
    if (q->zero) {
        if (s->zero) s->neg = s->neg && q->neg;
    } else if (s->zero) {
        s->zero = 0; s->neg = q->neg; s->e = q->e;
        HH_UNROLL
        for (int j = 0; j < L; j++) s->m[j] = q->m[j];
    } else {
        add_round(L, k, s, q->neg, q->e, q->m);
    }
}

static inline long fast_exponent_limit(void) {
    long lim = mpfr_get_emax();
    if (-mpfr_get_emin() < lim) lim = -mpfr_get_emin();
    return lim / 4;
}

/* k = 0 (whole limbs: 64, 128, …, 512 bits) is compiled on its own: no shifts by a
   run-time k in the rounding. */
#define HH_K(L, p) (64 * (L) == (p) ? 0 : 64 * (L) - (p))

static inline __attribute__((always_inline))
size_t dot_fast(int L, int p, size_t n, const void *const *a, const void *const *b, hh_acc *s) {
    const int k = HH_K(L, p);
    const long lim = fast_exponent_limit();
    hh_acc acc = *s, q;                                 /* local: kept in registers */
    size_t i = 0;
    for (; i < n; i++) {
        if (!load_mul(L, k, p, lim, (mpfr_srcptr)a[i], (mpfr_srcptr)b[i], &q)) break;
        acc_add(L, k, &acc, &q);
    }
    *s = acc;
    return i;
}

/* The dual-number recursive dot: s ← s + x·y with x·y = (xv·yv, xt·yv + xv·yt), every
   operation rounded (Dual's * and +). */
static inline __attribute__((always_inline))
size_t dual_dot_fast(int L, int p, size_t n, const void *const *xv, const void *const *xt,
                     const void *const *yv, const void *const *yt, hh_acc *sv, hh_acc *st) {
    const int k = HH_K(L, p);
    const long lim = fast_exponent_limit();
    hh_acc av = *sv, at = *st, q, q1, q2;
    size_t i = 0;
    for (; i < n; i++) {
        mpfr_srcptr a = (mpfr_srcptr)xv[i], a1 = (mpfr_srcptr)xt[i], b = (mpfr_srcptr)yv[i], b1 = (mpfr_srcptr)yt[i];
        if (!load_mul(L, k, p, lim, a, b, &q) || !load_mul(L, k, p, lim, a1, b, &q1)
            || !load_mul(L, k, p, lim, a, b1, &q2)) break;
        acc_add(L, k, &q1, &q2);                        /* the product's tangent */
        acc_add(L, k, &av, &q);
        acc_add(L, k, &at, &q1);
    }
    *sv = av; *st = at;
    return i;
}

static void acc_store(const hh_acc *a, long p, mpfr_ptr s) {
    if (a->zero) {
        mpfr_set_zero(s, a->neg ? -1 : 1);
    } else {
        mpfr_t t;
        mpfr_custom_init_set(t, a->neg ? -MPFR_REGULAR_KIND : MPFR_REGULAR_KIND, a->e, p, (mp_limb_t *)a->m);
        mpfr_set(s, t, MPFR_RNDN);                      /* same precision: a copy */
    }
}

/* One instance per limb count, and per whole-limb precision. */
#define HH_BY_LIMBS(p, L, CALL)                                                         \
    if (sizeof(mp_limb_t) == 8 && (L) <= HH_MAXL) {                                     \
        if ((p) == 64 * (L)) {                                                          \
            switch (L) {                                                                \
            case 1: CALL(1, 64); break;   case 2: CALL(2, 128); break;                  \
            case 3: CALL(3, 192); break;  case 4: CALL(4, 256); break;                  \
            case 5: CALL(5, 320); break;  case 6: CALL(6, 384); break;                  \
            case 7: CALL(7, 448); break;  default: CALL(8, 512); break;                 \
            }                                                                           \
        } else switch (L) {                                                             \
            case 1: CALL(1, (int)(p)); break;  case 2: CALL(2, (int)(p)); break;        \
            case 3: CALL(3, (int)(p)); break;  case 4: CALL(4, (int)(p)); break;        \
            case 5: CALL(5, (int)(p)); break;  case 6: CALL(6, (int)(p)); break;        \
            case 7: CALL(7, (int)(p)); break;  default: CALL(8, (int)(p)); break;       \
        }                                                                               \
    }

void hh_mpfr_dot(size_t n, const void *const *a, const void *const *b, void *result) {
    mpfr_ptr s = (mpfr_ptr)result;
    long p = mpfr_get_prec(s);
    int L = (int)((p + 63) / 64);
    hh_acc acc = { 0, 1, 0, { 0 } };
    size_t done = 0;
#define HH_DOT(L_, p_) done = dot_fast(L_, p_, n, a, b, &acc)
    HH_BY_LIMBS(p, L, HH_DOT)
#undef HH_DOT
    acc_store(&acc, p, s);
    if (done < n) {
        mpfr_t t;
        mpfr_init2(t, p);
        for (size_t i = done; i < n; i++) {
            mpfr_mul(t, (mpfr_srcptr)a[i], (mpfr_srcptr)b[i], MPFR_RNDN);
            mpfr_add(s, s, t, MPFR_RNDN);
        }
        mpfr_clear(t);
    }
}

void hh_mpfr_dual_dot(size_t n, const void *const *xv, const void *const *xt, const void *const *yv,
                      const void *const *yt, void *result_value, void *result_tangent) {
    mpfr_ptr sv = (mpfr_ptr)result_value, st = (mpfr_ptr)result_tangent;
    long p = mpfr_get_prec(sv);
    int L = (int)((p + 63) / 64);
    hh_acc av = { 0, 1, 0, { 0 } }, at = { 0, 1, 0, { 0 } };
    size_t done = 0;
    if (mpfr_get_prec(st) == p) {
#define HH_DUAL(L_, p_) done = dual_dot_fast(L_, p_, n, xv, xt, yv, yt, &av, &at)
        HH_BY_LIMBS(p, L, HH_DUAL)
#undef HH_DUAL
    }
    acc_store(&av, p, sv);
    acc_store(&at, mpfr_get_prec(st), st);
    if (done < n) {
        mpfr_t t1, t2;
        mpfr_init2(t1, p); mpfr_init2(t2, p);
        for (size_t i = done; i < n; i++) {
            mpfr_srcptr a = (mpfr_srcptr)xv[i], a1 = (mpfr_srcptr)xt[i], b = (mpfr_srcptr)yv[i], b1 = (mpfr_srcptr)yt[i];
            mpfr_mul(t1, a1, b, MPFR_RNDN);             /* tangent of the product: a'b + ab' */
            mpfr_mul(t2, a, b1, MPFR_RNDN);
            mpfr_add(t1, t1, t2, MPFR_RNDN);
            mpfr_mul(t2, a, b, MPFR_RNDN);
            mpfr_add(sv, sv, t2, MPFR_RNDN);
            mpfr_add(st, st, t1, MPFR_RNDN);
        }
        mpfr_clear(t1); mpfr_clear(t2);
    }
}
