/* The reference loop of the MPFloat<256> dot-product benchmark: mpfr_mul + mpfr_add on
 * preallocated values at 256 bits, as a C programmer would write it.
 * Build: cc -O2 bench/mpfr_dot.c -lmpfr -lgmp -o /tmp/mpfr_dot ; run: /tmp/mpfr_dot [n] [trials] */
#include <mpfr.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 10000, trials = argc > 2 ? atoi(argv[2]) : 7;
    mpfr_t *a = malloc(n * sizeof(mpfr_t)), *b = malloc(n * sizeof(mpfr_t)), s, t;
    unsigned long long st = 2;
    for (int i = 0; i < n; i++) {
        mpfr_init2(a[i], 256); mpfr_init2(b[i], 256);
        st = st * 6364136223846793005ULL + 1442695040888963407ULL;
        mpfr_set_d(a[i], (double)(st >> 11) * 0x1p-53, MPFR_RNDN); mpfr_div_ui(a[i], a[i], 3, MPFR_RNDN);
        st = st * 6364136223846793005ULL + 1442695040888963407ULL;
        mpfr_set_d(b[i], (double)(st >> 11) * 0x1p-53, MPFR_RNDN); mpfr_div_ui(b[i], b[i], 7, MPFR_RNDN);
    }
    mpfr_init2(s, 256); mpfr_init2(t, 256);
    double *ts = malloc(trials * sizeof(double)), sink = 0;
    for (int r = -1; r < trials; r++) {
        double t0 = now();
        mpfr_set_zero(s, 1);
        for (int i = 0; i < n; i++) { mpfr_mul(t, a[i], b[i], MPFR_RNDN); mpfr_add(s, s, t, MPFR_RNDN); }
        double dt = now() - t0;
        sink += mpfr_get_d(s, MPFR_RNDN);
        if (r >= 0) ts[r] = dt;
    }
    qsort(ts, trials, sizeof(double), cmp);
    printf("dot,C mpfr_mul+mpfr_add loop,%.3f\n", ts[trials / 2] / n * 1e9);
    if (sink != sink) puts("");
    for (int i = 0; i < n; i++) { mpfr_clear(a[i]); mpfr_clear(b[i]); }
    mpfr_clear(s); mpfr_clear(t); free(a); free(b); free(ts);
    return 0;
}
