#!/usr/bin/env bash
# Scalar-layer benchmarks, ours and the C MPFR reference loop, in one run on this machine.
# Usage: bench/scalars.sh   (prints CSV: kernel,type,ns_per_element)
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product hessian-harness >/dev/null
cc -O2 bench/mpfr_dot.c -lmpfr -lgmp -o .build/mpfr_dot
.build/release/hessian-harness bench scalars
.build/mpfr_dot 10000 7 | sed 's/^/\n/' | sed '/^$/d'
