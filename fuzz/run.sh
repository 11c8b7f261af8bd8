#!/bin/sh
# Fuzz one or all of hessian-harness's parsers with libFuzzer (see README.md here).
#   fuzz/run.sh [SECONDS [TARGET...]]     default: 60 s each, every target
# Builds fuzz/ with -sanitize=fuzzer,address (its own .build), then runs each target
# on a copy of its committed corpus; new inputs that add coverage are merged back
# into fuzz/corpus/TARGET, and any crash, leak or timeout is kept in
# fuzz/findings/TARGET and makes the script exit non-zero. Copy a fixed finding
# into fuzz/regressions/TARGET so the default tests replay it.
set -eu
cd "$(dirname "$0")"
SECONDS_EACH=${1:-60}
[ $# -gt 0 ] && shift
TARGETS=${*:-"model-spec operator-spec policy experiment npy csv gguf safetensors"}
swift build -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library >&2
BIN=$(swift build -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library --show-bin-path)/hh-fuzz
status=0
for t in $TARGETS; do
    mkdir -p "corpus/$t" "findings/$t" ".work/$t"
    echo "== $t: $SECONDS_EACH s" >&2
    if ! HH_FUZZ_TARGET=$t "$BIN" ".work/$t" "corpus/$t" -max_total_time="$SECONDS_EACH" -timeout=20 -rss_limit_mb=2048 \
        -max_len=8192 -artifact_prefix="findings/$t/" -print_final_stats=1 2> ".work/$t.log"; then
        status=1
        echo "finding in $t: see fuzz/findings/$t and fuzz/.work/$t.log" >&2
    fi
    grep -E "stat::number_of_executed_units|stat::new_units_added|cov:" ".work/$t.log" | tail -3 >&2 || true
    # Keep the corpus small: merge the new inputs into the committed one.
    HH_FUZZ_TARGET=$t "$BIN" -merge=1 "corpus/$t" ".work/$t" -max_len=8192 -timeout=20 2>/dev/null >/dev/null || true
done
exit $status
