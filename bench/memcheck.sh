#!/usr/bin/env bash
# Memory checks of the MPFR-backed code (run before resolving MPFR work):
#  1. AddressSanitizer + LeakSanitizer over the MPFR-heavy test suites (the limb dot loop included) and the tests of the
#     CKernels loops that take raw pointers (tanh, FD stages, dual split/merge, BLAS buffers, the split-array dual HVP);
#  2. valgrind memcheck over the CLI paths that exercise MPFloat and MPFR, and the fp32 MLP's HVPs
#     (valgrind 3.19 itself crashes inside libdispatch under the Swift test runner; bench/valgrind.supp
#     silences two reports from the Swift runtime and Foundation).
# Exit status 0 when no memory error and no definite leak in our code.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --build-tests --sanitize=address --scratch-path .build-asan >/dev/null
# Foundation's Process.run leaks a 32-byte weak-reference side table per call (CLI tests):
# suppress that one frame, nothing else.
printf 'leak:Foundation7ProcessC3run\n' > .build-asan/lsan.supp
ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$PWD/.build-asan/lsan.supp \
  .build-asan/debug/hessian-harnessPackageTests.xctest --testing-library swift-testing \
  --filter "signedSpecials|errorsBeyondMPFRsDefaultRange|MPFloatTests|MPFloatDotTests|MPFloatRecursiveKernels|DualDerivatives|CastCommandTests|StochasticRounding|GoldenVectors|ArithmeticAgainstMPFR|Binary32TanhTests|binary32FmaShortcut|TransposedGemmTests|arrayFormsMatchElementwise|fusedBinary32FDMatchesStages|splitDualHVPMatchesTheDualRunBitForBit"
swift build --product hessian-harness >/dev/null
# valgrind 3.19 cannot read the DWARF of Swift 6.3 debug binaries ("Possibly corrupted
# debuginfo file"): check a copy without debug sections (symbol names kept).
strip --strip-debug -o .build/hessian-harness-memcheck .build/debug/hessian-harness
# HH_BLAS_CORE=detected: no re-execution to choose OpenBLAS's kernels, which would leave
# valgrind (it does not follow exec by default).
export HH_BLAS_CORE=detected
# The hvp runs also cover the fp32 MLP's gradient and split-array dual HVP, whose output
# arrays start uninitialized (every element is written): a read before the write is an error here.
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
policy=param=fp32,compute=fp32,accumulate=blas,grad=fp32,hvp=fp32
for args in "cast --format mpfr4096 --rounding stochastic --seed 3 0.1 -1e-300 0x1.8p-3" \
            "cast --format mpfr64 --rounding stochastic --seed 3 -- 1e-99999999999 1e99999999999 -nan 2e-9999999999999999999999999 0.1" \
            "cast --format e4m3 --rounding up -- 1e-99999999999 -470 -inf -nan 1e9999999999999999999999" \
            "bench scalars --n 64 --reps 1 --trials 1" \
            "hvp --model mlp:widths=6-8-3,samples=16 --policy $policy --scheme exact --seed 1 --out $out/exact" \
            "hvp --model mlp:widths=6-8-3,samples=16 --policy $policy --scheme central --eps 1e-3 --seed 1 --out $out/central"; do
  valgrind -q --suppressions=bench/valgrind.supp --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=9 \
    .build/hessian-harness-memcheck $args >/dev/null
done
echo "memcheck: no memory errors, no definite leaks"
