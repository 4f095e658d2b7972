#!/usr/bin/env bash
# Benchmark tern (io_uring and epoll engines) against coturn's turnserver on loopback with
# tern-load, and write the result tables into BENCHMARKS.md (between the bench-compare markers).
#
#   scripts/bench-compare.sh            # everything, about 24 minutes on 2 cores
#   SMOKE=1 scripts/bench-compare.sh    # the stream cases once, 2 s each: does it all work?
#
# Every measurement starts a fresh server process with the same coturn flags; the three servers
# take turns within each repetition (the order rotates), so machine noise falls on all alike.
# Cases (tern-load): ChannelData 160 B closed loop (c160), ChannelData 160 B at a fixed 20k
# packets/s (c160r), ChannelData 1200 B closed loop (c1200), Send indications 160 B closed loop
# (s160), setup of 2000 allocations (setup); clients over streams, each allocation on its own
# connection with ChannelData padded to 4 bytes (RFC 8656 §12.5) and UDP echo peers: TCP closed
# loop and at the fixed rate (t160, t160r), TLS likewise (tls160, tls160r; a self-signed
# certificate made here, tern-load does not verify it). With the independent generator turnload
# (../shared/tools/turnload): c160's traffic through the three servers and through
# `turnload forward`, the naive kernel-path UDP forwarder, as raw UDP (tl160). Then 100,000
# concurrent allocations on tern (big), in several processes when RLIMIT_NOFILE is too low for one.
#
# Env: REPS (3) DUR (8) ALLOCS (100) RATE (20000) SETUP_N (2000) BIG_N (100000, 0 = skip)
#      PORT (33478; TLS on PORT+1, the forward case also uses PORT+2..PORT+5, the big run
#      PORT+3 over TCP)
#      CASES ("c160 c160r c1200 s160 t160 t160r tls160 tls160r setup tl160")
#      SERVERS ("uring epoll coturn"; also "base": the tern binary BASE on io_uring, for
#      before-and-after runs, e.g. BASE=/tmp/tern-base with a build of an earlier commit)
#      BIG_ENGINES ("uring epoll") BIG_MIN_PORT/BIG_MAX_PORT (10000/65000: relay ports)
#      TURNLOAD_SRC (/work/shared/tools/turnload) OUT (target/bench-compare)
#      NO_WRITE=1 (do not touch BENCHMARKS.md)
#      SMOKE=1: defaults CASES to the stream cases, REPS=1, DUR=2, BIG_N=0, NO_WRITE=1
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${SMOKE:-}" ]; then
    CASES=${CASES:-"t160 t160r tls160 tls160r"}
    REPS=${REPS:-1}
    DUR=${DUR:-2}
    BIG_N=${BIG_N:-0}
    NO_WRITE=1
fi
REPS=${REPS:-3}
DUR=${DUR:-8}
ALLOCS=${ALLOCS:-100}
RATE=${RATE:-20000}
SETUP_N=${SETUP_N:-2000}
BIG_N=${BIG_N:-100000}
PORT=${PORT:-33478}
CASES=${CASES:-"c160 c160r c1200 s160 t160 t160r tls160 tls160r setup tl160"}
SERVERS=${SERVERS:-"uring epoll coturn"}
BIG_ENGINES=${BIG_ENGINES:-"uring epoll"}
BIG_MIN_PORT=${BIG_MIN_PORT:-10000}
BIG_MAX_PORT=${BIG_MAX_PORT:-65000}
TURNLOAD_SRC=${TURNLOAD_SRC:-/work/shared/tools/turnload}
OUT=${OUT:-target/bench-compare}
rm -rf "$OUT"
mkdir -p "$OUT"
# 100,000 clients and as many relay sockets need more descriptors than the default: raise the
# limit where allowed; the big run splits itself over several processes where it cannot.
ulimit -Hn 1048576 2>/dev/null || true
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
FD_LIMIT=$(ulimit -n)

cargo build --release --workspace --bins -q
TERN=target/release/tern
LOAD=target/release/tern-load
command -v turnserver >/dev/null || { echo "coturn's turnserver is not installed" >&2; exit 1; }
TURNLOAD=""
if [[ " $CASES " == *" tl160 "* ]]; then
    # The shared tree may be read-only: build into our own target directory.
    cargo build --release -q --locked --manifest-path "$TURNLOAD_SRC/Cargo.toml" --target-dir target/turnload
    TURNLOAD=target/turnload/release/turnload
fi
PEER_PORT=$((PORT + 2))
TLS_PORT=$((PORT + 1))

# TLS only in the TLS cases (the same flags otherwise), with a certificate made for this run.
FLAGS=(-n --listening-ip=127.0.0.1 --relay-ip=127.0.0.1 --listening-port="$PORT"
    --min-port=10000 --max-port=29999 --allow-loopback-peers --realm=test
    --no-cli --no-dtls --log-file=stdout --lt-cred-mech --user=u:p)
NO_TLS=(--no-tls)
WITH_TLS=(--cert="$OUT/cert.pem" --pkey="$OUT/key.pem" --tls-listening-port="$TLS_PORT")
if [[ " $CASES " == *" tls"* ]]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
        -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1,DNS:localhost \
        -keyout "$OUT/key.pem" -out "$OUT/cert.pem" 2>/dev/null
fi
SPID="" SPIDS="" LPIDS=""
# shellcheck disable=SC2086 # the PID lists split on purpose
trap 'kill $SPID $SPIDS $LPIDS 2>/dev/null || true' EXIT

listening() { # tcp|udp port
    if [ "$1" = tcp ]; then ss -Hltn "sport = :$2"; else ss -Huln "sport = :$2"; fi | grep -q .
}

start() { # server [extra flags...]
    local name=$1; shift
    local tls=""
    [[ " $* " == *" --cert="* ]] && tls=1
    if listening udp "$PORT" || { [ -n "$tls" ] && listening tcp "$TLS_PORT"; }; then
        echo "port $PORT (udp) or $TLS_PORT (tcp) is busy; set PORT" >&2; exit 1
    fi
    case $name in
        uring) "$TERN" "${FLAGS[@]}" --io-engine=uring "$@" >"$OUT/$name.server.log" 2>&1 & ;;
        epoll) "$TERN" "${FLAGS[@]}" --io-engine=epoll "$@" >"$OUT/$name.server.log" 2>&1 & ;;
        base) "${BASE:?SERVERS has base: set BASE to a tern binary}" "${FLAGS[@]}" --io-engine=uring "$@" \
            >"$OUT/$name.server.log" 2>&1 & ;;
        coturn) turnserver "${FLAGS[@]}" --pidfile="$OUT/turn.pid" --db="$OUT/turndb" "$@" \
            >"$OUT/$name.server.log" 2>&1 & ;;
        forward) "$TURNLOAD" forward --listen "127.0.0.1:$PORT" --peer "127.0.0.1:$PEER_PORT" \
            --peer-count 4 >"$OUT/$name.server.log" 2>&1 & ;;
    esac
    SPID=$!
    for _ in $(seq 100); do
        listening udp "$PORT" && { [ -z "$tls" ] || listening tcp "$TLS_PORT"; } && break
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
    local args gen=$LOAD addr=127.0.0.1:$PORT tls=("${NO_TLS[@]}")
    case $2 in
        c160) args=(--mode channel --size 160 --rate 0 --duration "$DUR" --allocations "$ALLOCS") ;;
        c160r) args=(--mode channel --size 160 --rate "$RATE" --duration "$DUR" --allocations "$ALLOCS") ;;
        c1200) args=(--mode channel --size 1200 --rate 0 --duration "$DUR" --allocations "$ALLOCS") ;;
        s160) args=(--mode send --size 160 --rate 0 --duration "$DUR" --allocations "$ALLOCS") ;;
        t160) args=(--transport tcp --size 160 --rate 0 --duration "$DUR" --allocations "$ALLOCS") ;;
        t160r) args=(--transport tcp --size 160 --rate "$RATE" --duration "$DUR" --allocations "$ALLOCS") ;;
        tls160 | tls160r)
            tls=("${WITH_TLS[@]}")
            addr=127.0.0.1:$TLS_PORT
            args=(--transport tls --size 160 --duration "$DUR" --allocations "$ALLOCS")
            if [ "$2" = tls160 ]; then args+=(--rate 0); else args+=(--rate "$RATE"); fi
            ;;
        setup) args=(--duration 0 --allocations "$SETUP_N") ;;
        tl160)
            gen="$TURNLOAD run"
            args=(--size 160 --rate 0 --duration "$DUR" --allocations "$ALLOCS")
            if [ "$1" = forward ]; then
                args+=(--mode raw --peer-port "$PEER_PORT")
            else
                args+=(--mode channel)
            fi
            ;;
    esac
    if [ "$1" = forward ]; then tls=(); fi
    start "$1" "${tls[@]}"
    echo "$1 $2 rep $3" >&2
    # shellcheck disable=SC2086 # $gen is a program and its subcommand
    $gen --label "$1 $2" --server "$addr" --user u --pass p --server-pid "$SPID" \
        "${args[@]}" >>"$OUT/results.jsonl" 2>>"$OUT/load.log" || true
    stop
}

read -r -a servers <<<"$SERVERS"
for rep in $(seq "$REPS"); do
    for c in $CASES; do
        list=("${servers[@]}")
        # The forwarder only relays raw UDP, which only turnload sends.
        [ "$c" = tl160 ] && list+=(forward)
        n=${#list[@]}
        for k in $(seq 0 $((n - 1))); do
            measure "${list[$(((k + rep) % n))]}" "$c" "$rep"
        done
    done
done

# BIG_N concurrent allocations, ChannelData 160 B at RATE packets/s across all of them, over
# several listening/relay IPs on 127.0.0.0/8 (each IP relays for the clients that reach it).
# One tern and one tern-load process when RLIMIT_NOFILE allows it; otherwise NPROC pairs of
# them at once (each tern on its own IPs, each tern-load loading one tern), which meet at a
# barrier after setup so that one data phase runs while all BIG_N allocations are held.
ip_at() { echo "127.0.$((2 + $1 / 250)).$((1 + $1 % 250))"; }
metric_sum() { # name url... : the sum of a Prometheus gauge over several servers
    local name=$1 sum=0 v url
    shift
    for url in "$@"; do
        v=$(curl -fsS --max-time 2 "$url" 2>/dev/null | awk -v n="$name" '$1 ~ "^"n"[{ ]" || $1 == n {s += $2} END {print s + 0}')
        sum=$((sum + ${v%.*}))
    done
    echo "$sum"
}
big_run() { # engine
    local engine=$1 k j args servers pids=() loaders=() urls=() held ready n
    local barrier=$OUT/big-$engine.barrier
    rm -rf "$barrier"; mkdir -p "$barrier"
    for k in $(seq 0 $((NPROC - 1))); do
        args=(-n --listening-port="$PORT" --min-port="$BIG_MIN_PORT" --max-port="$BIG_MAX_PORT"
            --allow-loopback-peers --realm=test --no-cli --no-tls --no-dtls --log-file=stdout
            --lt-cred-mech --user=u:p --no-tcp --total-quota=0 --user-quota=0
            --io-engine="$engine" --prometheus --prometheus-port=$((PORT + 3))
            --prometheus-address="$(ip_at $((k * IPS_PER_PROC)))")
        servers=()
        for j in $(seq $((k * IPS_PER_PROC)) $(((k + 1) * IPS_PER_PROC - 1))); do
            args+=(--listening-ip="$(ip_at "$j")" --relay-ip="$(ip_at "$j")")
            servers+=("$(ip_at "$j"):$PORT")
        done
        "$TERN" "${args[@]}" >"$OUT/big-$engine.$k.server.log" 2>&1 &
        pids+=($!)
        urls+=("http://$(ip_at $((k * IPS_PER_PROC))):$((PORT + 3))/metrics")
        SERVER_LIST[k]=$(IFS=,; echo "${servers[*]}")
    done
    SPIDS="${pids[*]}"
    sleep 2
    echo "big $engine: $NPROC tern process(es), $BIG_N allocations" >&2
    for k in $(seq 0 $((NPROC - 1))); do
        # Process k takes allocations k, k + NPROC, ... of BIG_N.
        n=$(((BIG_N - k + NPROC - 1) / NPROC))
        "$LOAD" --label "$engine bigpart $k" --server "${SERVER_LIST[k]}" --user u --pass p \
            --server-pid "${pids[k]}" --allocations "$n" --rate $((RATE / NPROC)) --duration "$DUR" \
            --setup-concurrency $((256 / NPROC + 16)) --client-ips "$CLIENT_IPS" --barrier "$barrier" \
            >>"$OUT/results.jsonl" 2>>"$OUT/load.log" &
        loaders+=($!)
    done
    LPIDS="${loaders[*]}"
    # Go when every generator has set up (or one has given up).
    while true; do
        ready=$(find "$barrier" -name 'ready.*' | wc -l)
        [ "$ready" -ge "$NPROC" ] && break
        for p in "${loaders[@]}"; do kill -0 "$p" 2>/dev/null || break 2; done
        sleep 0.2
    done
    held=$(metric_sum turn_total_allocations "${urls[@]}")
    touch "$barrier/go"
    sleep "$(awk -v d="$DUR" 'BEGIN {print d / 2}')"
    local mid
    mid=$(metric_sum turn_total_allocations "${urls[@]}")
    for p in "${loaders[@]}"; do wait "$p" || true; done
    LPIDS=""
    echo "{\"label\":\"$engine bigmeta\",\"processes\":$NPROC,\"ips_per_process\":$IPS_PER_PROC,\"held_at_go\":$held,\"held_mid_data\":$mid,\"fd_limit\":$FD_LIMIT,\"per_process_cap\":$PER_PROC_CAP,\"relay_ports\":\"$BIG_MIN_PORT-$BIG_MAX_PORT\",\"client_ips\":$CLIENT_IPS,\"ephemeral_ports\":$EPHEMERAL}" \
        >>"$OUT/results.jsonl"
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    SPIDS=""
    sleep 2
}

if [ "$BIG_N" -gt 0 ]; then
    # tern plans two descriptors per allocation (relay socket + a possible TCP peer connection),
    # the generator one per client: one process each when the limit allows it.
    PER_PROC_CAP=$((FD_LIMIT / 2 - 1000))
    NPROC=$(((BIG_N + PER_PROC_CAP - 1) / PER_PROC_CAP))
    if [ "$NPROC" -gt 1 ]; then
        echo "RLIMIT_NOFILE is $FD_LIMIT (hard): one tern holds at most $PER_PROC_CAP allocations, so $NPROC tern and $NPROC tern-load processes share the $BIG_N" >&2
    fi
    # Ports: each relay IP holds at most 80% of the relay port range, each client IP at most
    # half the kernel's ephemeral range (other programs use it too).
    read -r lo hi </proc/sys/net/ipv4/ip_local_port_range
    EPHEMERAL=$((hi - lo + 1))
    RELAY_RANGE=$((BIG_MAX_PORT - BIG_MIN_PORT + 1))
    per_proc=$(((BIG_N + NPROC - 1) / NPROC))
    IPS_PER_PROC=$(((per_proc * 5 / 4 + RELAY_RANGE - 1) / RELAY_RANGE))
    [ "$NPROC" -eq 1 ] && [ "$IPS_PER_PROC" -lt 6 ] && IPS_PER_PROC=6
    CLIENT_IPS=$(((BIG_N * 2 + EPHEMERAL - 1) / EPHEMERAL))
    [ "$CLIENT_IPS" -gt 254 ] && { echo "BIG_N $BIG_N needs more than 254 client IPs" >&2; exit 1; }
    echo "big: $NPROC process(es) x $IPS_PER_PROC relay IP(s) ($RELAY_RANGE relay ports each, $((per_proc / IPS_PER_PROC + 1)) used), $CLIENT_IPS client IPs ($EPHEMERAL ephemeral ports each, $((BIG_N / CLIENT_IPS + 1)) used)" >&2
    declare -a SERVER_LIST
    for engine in $BIG_ENGINES; do
        big_run "$engine"
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
