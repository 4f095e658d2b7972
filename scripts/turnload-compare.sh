#!/usr/bin/env bash
# Several TURN servers side by side in one run with the independent generator turnload
# (../shared/tools/turnload), on the same traffic over loopback: the same method as turnload's
# own compare.sh (a fresh server process per measurement, coturn's flags for all, 100
# allocations), for any number of servers, whose order rotates in every repetition so that
# machine noise falls on all alike.
#
#   scripts/turnload-compare.sh NAME=COMMAND... [REF]
#
#   scripts/turnload-compare.sh "uring=target/release/tern --io-engine=uring" \
#       "base=/tmp/tern-a551091 --io-engine=uring" "epoll=target/release/tern --io-engine=epoll" \
#       coturn=turnserver
#
# Prints, per case and server, the medians of the figures, and per server the median of the
# per-repetition ratios to the last server (the reference: the runs being compared ran back to
# back). Idle RSS is the server's VmRSS before setup, 1.5 s after it started listening.
#
# Env: REPS (3) DUR (8) ALLOCS (100) RATE (20000) CASES ("c160r c160") PORT (33478)
#      TURNLOAD_SRC (/work/shared/tools/turnload) OUT (target/turnload-compare)
# Cases: c160 (ChannelData 160 B, closed loop), c160r (the same at RATE packets/s in total),
# c1200 (ChannelData 1200 B, closed loop), s160 (Send indications 160 B, closed loop).
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${REPS:-3}
DUR=${DUR:-8}
ALLOCS=${ALLOCS:-100}
RATE=${RATE:-20000}
CASES=${CASES:-"c160r c160"}
PORT=${PORT:-33478}
TURNLOAD_SRC=${TURNLOAD_SRC:-/work/shared/tools/turnload}
OUT=${OUT:-target/turnload-compare}
[ $# -ge 2 ] || { sed -n '2,22p' "$0" >&2; exit 2; }
rm -rf "$OUT"
mkdir -p "$OUT"
# The shared tree may be read-only: build into our own target directory.
cargo build --release -q --locked --manifest-path "$TURNLOAD_SRC/Cargo.toml" --target-dir target/turnload
TURNLOAD=target/turnload/release/turnload
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh

FLAGS=(-n --listening-ip=127.0.0.1 --relay-ip=127.0.0.1 --listening-port="$PORT"
    --min-port=10000 --max-port=29999 --allow-loopback-peers --realm=test
    --no-cli --no-tls --no-dtls --log-file=stdout --lt-cred-mech --user=u:p)
SPID=""
trap '[ -n "$SPID" ] && kill "$SPID" 2>/dev/null; true' EXIT

names=() commands=()
for spec in "$@"; do
    names+=("${spec%%=*}")
    commands+=("${spec#*=}")
done

start() { # index
    local name=${names[$1]} cmd extra=()
    read -r -a cmd <<<"${commands[$1]}"
    if ss -Huln "sport = :$PORT" | grep -q .; then
        echo "udp port $PORT is busy; set PORT" >&2; exit 1
    fi
    [ "$(basename "${cmd[0]}")" = turnserver ] && extra=(--pidfile="$OUT/turn.pid" --db="$OUT/turndb")
    "${cmd[@]}" "${FLAGS[@]}" "${extra[@]}" >"$OUT/$name.server.log" 2>&1 &
    SPID=$!
    await_server "$name" "$PORT" 1.5
}

measure() { # index case rep
    local args
    case $2 in
        c160) args=(--mode channel --size 160 --rate 0) ;;
        c160r) args=(--mode channel --size 160 --rate "$RATE") ;;
        c1200) args=(--mode channel --size 1200 --rate 0) ;;
        s160) args=(--mode send --size 160 --rate 0) ;;
        *) echo "unknown case $2" >&2; exit 2 ;;
    esac
    start "$1"
    echo "$(date -u +%H:%M:%S) ${names[$1]} $2 rep $3" >&2
    "$TURNLOAD" run --label "${names[$1]} $2 $3" --server "127.0.0.1:$PORT" --user u --pass p \
        --server-pid "$SPID" --allocations "$ALLOCS" --duration "$DUR" "${args[@]}" \
        >>"$OUT/results.jsonl" 2>>"$OUT/load.log" || true
    stop_server
}

n=${#names[@]}
for rep in $(seq "$REPS"); do
    for c in $CASES; do
        for k in $(seq 0 $((n - 1))); do
            measure $(((k + rep) % n)) "$c" "$rep"
        done
    done
done

python3 - "$OUT/results.jsonl" "${names[@]}" <<'EOF'
import json, statistics, sys
path, names = sys.argv[1], sys.argv[2:]
ref = names[-1]
runs = {}
for line in open(path):
    if line.startswith("{"):
        d = json.loads(line)
        name, case, rep = d["label"].split()
        runs[(name, case, rep)] = d
cases = sorted({c for _, c, _ in runs}, key=lambda c: (c != "c160r", c))
keys = [("pkts_per_server_cpu_s", "pkts/server CPU-s", True),
        ("pkts_per_nongen_cpu_s", "pkts/CPU-s less generator", True),
        ("relayed_pps", "relayed pps", True), ("loss_pct", "loss %", False),
        ("rtt_us_p50", "RTT p50 us", False), ("rtt_us_p99", "RTT p99 us", False),
        ("server_rss_before_bytes", "idle RSS MiB", False),
        ("server_rss_after_data_bytes", "RSS after data MiB", False)]
def fmt(v):
    return "-" if v is None else (f"{v:,.0f}" if abs(v) >= 100 else f"{v:.2f}")
def values(name, case, k):
    scale = 1 / 1048576 if k.endswith("_bytes") else 1
    return {rep: d[k] * scale for (n, c, rep), d in runs.items() if n == name and c == case and d.get(k) is not None}
for case in cases:
    print(f"\n### {case}\n")
    print("| server | " + " | ".join(label for _, label, _ in keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    for name in names:
        cells = []
        for k, _, _ in keys:
            v = list(values(name, case, k).values())
            cells.append(fmt(statistics.median(v)) if v else "-")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"\nratios to {ref}, median of the per-repetition ratios (range):\n")
    print("| server | " + " | ".join(label for _, label, _ in keys[:6]) + " |")
    print("|---" * 7 + "|")
    for name in names[:-1]:
        cells = []
        for k, _, _ in keys[:6]:
            a, b = values(name, case, k), values(ref, case, k)
            r = [a[rep] / b[rep] for rep in a if rep in b and b[rep]]
            cells.append(f"{statistics.median(r):.2f}x ({min(r):.2f}-{max(r):.2f})" if r else "-")
        print(f"| {name} | " + " | ".join(cells) + " |")
EOF
