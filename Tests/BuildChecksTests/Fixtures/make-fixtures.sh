#!/usr/bin/env bash
# Makes the object files BuildChecksTests reads: two translation units that define one
# weak hidden constant with different contents (the shape of the Swift 6.3 outlined-array
# collision of issue 18), and a third that agrees with the first. Run from this folder
# with the Swift toolchain's clang; the outputs are committed.
set -euo pipefail
cd "$(dirname "$0")"
flags="-c -O1 -fno-asynchronous-unwind-tables -fno-ident"
clang $flags defined-forward.c -o defined-forward.o
clang $flags defined-richardson.c -o defined-richardson.o
cp defined-forward.c defined-forward-again.c
clang $flags defined-forward-again.c -o defined-forward-again.o
rm defined-forward-again.c
