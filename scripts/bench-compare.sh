#!/usr/bin/env bash
# Benchmark tern (io_uring and epoll engines) against coturn's turnserver on loopback with
# tern-load, and write the result tables into BENCHMARKS.md (between the bench-compare markers).
#
#   scripts/bench-compare.sh            # everything, about 15 minutes on 2 cores
#
# Every measurement starts a fresh server process with the same coturn flags; the three servers
# take turns within each repetition (the order rotates), so machine noise falls on all alike.
# Cases: ChannelData 160 B closed loop (c160), ChannelData 160 B at a fixed 20k packets/s
# (c160r), ChannelData 1200 B closed loop (c1200), Send indications 160 B closed loop (s160),
# setup of 2000 allocations (setup); then 100,000 concurrent allocations on tern (big).
#
# Env: REPS (3) DUR (8) ALLOCS (100) RATE (20000) SETUP_N (2000) BIG_N (100000, 0 = skip)
#      PORT (33478) CASES ("c160 c160r c1200 s160 setup") SERVERS ("uring epoll coturn")
#      OUT (target/bench-compare) NO_WRITE=1 (do not touch BENCHMARKS.md)
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${REPS:-3}
DUR=${DUR:-8}
ALLOCS=${ALLOCS:-100}
RATE=${RATE:-20000}
SETUP_N=${SETUP_N:-2000}
BIG_N=${BIG_N:-100000}
PORT=${PORT:-33478}
CASES=${CASES:-"c160 c160r c1200 s160 setup"}
SERVERS=${SERVERS:-"uring epoll coturn"}
OUT=${OUT:-target/bench-compare}
rm -rf "$OUT"
mkdir -p "$OUT"
# 100,000 clients and as many relay sockets need more descriptors than the default: raise the
# limit where allowed, else shrink the big run to what the hard limit permits (each side needs
# one descriptor per allocation).
ulimit -Hn 1048576 2>/dev/null || true
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
FD_LIMIT=$(ulimit -n)
# tern plans two descriptors per allocation (relay socket + a possible TCP peer connection).
if [ "$BIG_N" -gt $((FD_LIMIT / 2 - 1000)) ]; then
    echo "RLIMIT_NOFILE is $FD_LIMIT here: the big run makes $((FD_LIMIT / 2 - 1000)) allocations, not $BIG_N" >&2
    BIG_N=$((FD_LIMIT / 2 - 1000))
fi
export BENCH_FD_LIMIT=$FD_LIMIT

cargo build --release --bins -q
TERN=target/release/tern
LOAD=target/release/tern-load
command -v turnserver >/dev/null || { echo "coturn's turnserver is not installed" >&2; exit 1; }

FLAGS=(-n --listening-ip=127.0.0.1 --relay-ip=127.0.0.1 --listening-port="$PORT"
    --min-port=10000 --max-port=29999 --allow-loopback-peers --realm=test
    --no-cli --no-tls --no-dtls --log-file=stdout --lt-cred-mech --user=u:p)
SPID=""
trap '[ -n "$SPID" ] && kill "$SPID" 2>/dev/null; true' EXIT

start() { # server [extra flags...]
    local name=$1; shift
    if ss -Huln "sport = :$PORT" | grep -q .; then
        echo "udp port $PORT is busy; set PORT" >&2; exit 1
    fi
    case $name in
        uring) "$TERN" "${FLAGS[@]}" --io-engine=uring "$@" >"$OUT/$name.server.log" 2>&1 & ;;
        epoll) "$TERN" "${FLAGS[@]}" --io-engine=epoll "$@" >"$OUT/$name.server.log" 2>&1 & ;;
        coturn) turnserver "${FLAGS[@]}" --pidfile="$OUT/turn.pid" --db="$OUT/turndb" "$@" \
            >"$OUT/$name.server.log" 2>&1 & ;;
    esac
    SPID=$!
    for _ in $(seq 100); do
        ss -Huln "sport = :$PORT" | grep -q . && break
        sleep 0.1
    done
    sleep 0.5
    kill -0 "$SPID" 2>/dev/null || { echo "$name did not start; see $OUT/$name.server.log" >&2; exit 1; }
}

stop() {
    kill "$SPID"; wait "$SPID" 2>/dev/null || true; SPID=""
    # coturn holds a deallocated 5-tuple for about a second (turnload BASELINE.md, finding 5).
    sleep 2
}

measure() { # server case rep
    local args
    case $2 in
        c160) args=(--mode channel --size 160 --rate 0 --duration "$DUR" --allocations "$ALLOCS") ;;
        c160r) args=(--mode channel --size 160 --rate "$RATE" --duration "$DUR" --allocations "$ALLOCS") ;;
        c1200) args=(--mode channel --size 1200 --rate 0 --duration "$DUR" --allocations "$ALLOCS") ;;
        s160) args=(--mode send --size 160 --rate 0 --duration "$DUR" --allocations "$ALLOCS") ;;
        setup) args=(--duration 0 --allocations "$SETUP_N") ;;
    esac
    start "$1"
    echo "$1 $2 rep $3" >&2
    "$LOAD" --label "$1 $2" --server "127.0.0.1:$PORT" --user u --pass p --server-pid "$SPID" \
        "${args[@]}" >>"$OUT/results.jsonl" 2>>"$OUT/load.log" || true
    stop
}

read -r -a servers <<<"$SERVERS"
for rep in $(seq "$REPS"); do
    for c in $CASES; do
        n=${#servers[@]}
        for k in $(seq 0 $((n - 1))); do
            measure "${servers[$(((k + rep) % n))]}" "$c" "$rep"
        done
    done
done

# 100,000 concurrent allocations: 6 listening/relay IPs (each relays for the clients that reach
# it), clients spread over 127.0.1.x; ChannelData 160 B at 20k packets/s across all of them.
if [ "$BIG_N" -gt 0 ]; then
    ips=(127.0.0.1 127.0.0.2 127.0.0.3 127.0.0.4 127.0.0.5 127.0.0.6)
    big=(-n --listening-port="$PORT" --min-port=10000 --max-port=65000 --allow-loopback-peers
        --realm=test --no-cli --no-tls --no-dtls --log-file=stdout --lt-cred-mech --user=u:p
        --no-tcp --total-quota=0 --user-quota=0)
    servers_list=()
    for ip in "${ips[@]}"; do
        big+=(--listening-ip="$ip" --relay-ip="$ip")
        servers_list+=("$ip:$PORT")
    done
    for engine in uring epoll; do
        "$TERN" "${big[@]}" --io-engine="$engine" >"$OUT/big-$engine.server.log" 2>&1 &
        SPID=$!
        sleep 2
        echo "big $engine" >&2
        "$LOAD" --label "$engine big" --server "$(IFS=,; echo "${servers_list[*]}")" --user u --pass p \
            --server-pid "$SPID" --allocations "$BIG_N" --rate "$RATE" --duration "$DUR" \
            --setup-concurrency 256 >>"$OUT/results.jsonl" 2>>"$OUT/load.log" || true
        stop
    done
fi

python3 scripts/bench-report.py "$OUT/results.jsonl" "$REPS" "$DUR" "$ALLOCS" "$RATE" "$SETUP_N" "$BIG_N" \
    >"$OUT/tables.md"
cat "$OUT/tables.md"
if [ -z "${NO_WRITE:-}" ]; then
    python3 - "$OUT/tables.md" <<'PY'
import sys
tables = open(sys.argv[1]).read()
path = "BENCHMARKS.md"
text = open(path).read()
begin, end = "<!-- bench-compare:begin -->", "<!-- bench-compare:end -->"
head, rest = text.split(begin, 1)
_, tail = rest.split(end, 1)
open(path, "w").write(head + begin + "\n" + tables + end + tail)
PY
    echo "BENCHMARKS.md updated" >&2
fi
