#!/usr/bin/env bash
# Long fuzzing runs: every target (or the ones named as arguments) for FUZZ_HOURS hours each
# (FUZZ_SECONDS overrides, in seconds). FUZZ_PARALLEL=1 runs the targets at the same time
# instead of one after another; FUZZ_JOBS=N gives each target N libFuzzer jobs (-jobs/-workers).
# New corpus entries stay in fuzz/work/<target> (not committed); crashes land in
# fuzz/artifacts/<target>/. Prints executions and crashes per target at the end.
set -uo pipefail

cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-$(( ${FUZZ_HOURS:-1} * 3600 ))}"
jobs="${FUZZ_JOBS:-1}"
logs="fuzz/work/logs-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$logs"

cargo +nightly fuzz build -O || exit 1
if [ "$#" -gt 0 ]; then targets=("$@"); else mapfile -t targets < <(cargo +nightly fuzz list); fi

# Failures: crash-, leak-, timeout- and oom- inputs. libFuzzer also keeps slow-unit- inputs (over
# 10 s, which a niced run sharing the machine can hit); those are counted apart.
artifacts() { find "fuzz/artifacts/$1" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) 2>/dev/null | wc -l; }
slow() { find "fuzz/artifacts/$1" -type f -name 'slow-unit-*' 2>/dev/null | wc -l; }

run() {
    local target="$1" dir="$logs/$1"
    mkdir -p "$dir" "fuzz/work/$target" "fuzz/corpus/$target"
    artifacts "$target" >"$dir/artifacts-before"
    slow "$target" >"$dir/slow-before"
    local root="$PWD" parallel=()
    if [ "$jobs" -gt 1 ]; then parallel=(-jobs="$jobs" -workers="$jobs"); fi
    # -jobs writes one fuzz-N.log per job into the current directory.
    (cd "$dir" && cargo +nightly fuzz run --fuzz-dir "$root/fuzz" -O "$target" \
        "$root/fuzz/work/$target" "$root/fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2048 -print_final_stats=1 \
        "${parallel[@]}" >"run.log" 2>&1)
    echo $? >"$dir/status"
}

for target in "${targets[@]}"; do
    if [ "${FUZZ_PARALLEL:-0}" = 1 ]; then run "$target" & else run "$target"; fi
done
wait

failed=0
printf '%-16s %14s %8s %10s %s\n' target executions crashes slow-units status
for target in "${targets[@]}"; do
    dir="$logs/$target"
    execs=$(cat "$dir"/*.log 2>/dev/null | sed -n 's/^stat::number_of_executed_units: *//p' | awk '{s+=$1} END {print s+0}')
    crashes=$(( $(artifacts "$target") - $(cat "$dir/artifacts-before") ))
    slow_units=$(( $(slow "$target") - $(cat "$dir/slow-before") ))
    status=$(cat "$dir/status")
    printf '%-16s %14s %8s %10s %s\n' "$target" "$execs" "$crashes" "$slow_units" "$status"
    if [ "$status" != 0 ] || [ "$crashes" != 0 ]; then failed=1; fi
done
echo "logs: $logs"
exit "$failed"
