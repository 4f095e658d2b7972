#!/usr/bin/env bash
# Builds every cargo-fuzz target and runs each for FUZZ_SECONDS (default 30), starting from the
# committed corpus; fails on the first crash, leak or timeout. Needs nightly and cargo-fuzz.
# New corpus entries go to a temporary directory, so the committed corpus stays as it is.
set -euo pipefail

cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-30}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cargo +nightly fuzz build -O
for target in $(cargo +nightly fuzz list); do
    mkdir -p "$work/$target" "fuzz/corpus/$target"
    echo "fuzz-ci: $target for ${seconds}s"
    if ! cargo +nightly fuzz run -O "$target" "$work/$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$work/$target.log" 2>&1; then
        tail -n 60 "$work/$target.log"
        echo "fuzz-ci: $target FAILED; the input is under fuzz/artifacts/$target/ (see docs/fuzzing.md)"
        exit 1
    fi
    grep -E '^(Done|stat::number_of_executed_units)' "$work/$target.log" || true
done
echo "fuzz-ci: every target ran ${seconds}s without a crash"
