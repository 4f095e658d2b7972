#!/usr/bin/env bash
# tern (with and without the kernel fast path) against coturn in the lab's namespaces rather than
# on loopback: the clients and their echo peers on a client host, the server on a VM, a router
# between them, joined by veth pairs (documentation addresses, RFC 5737; nothing leaves the
# namespaces). The generator is tern-load (`--lab`; turnload only loads loopback). Each
# measurement starts a fresh server; the servers take turns in every repetition, the order
# rotating, so that machine noise falls on all alike. Needs root.
#
#   client 198.51.100.10 ── router 198.51.100.1 | 203.0.113.1 ── vm 203.0.113.10
#
#   scripts/bench-lab.sh
#
# Prints the median table and the ratios to coturn (scripts/machine-report.py), with the CPU per
# relayed packet of the generator and of the rest of the machine: the kernel's work for a packet
# runs where the packet is handled, and for the fast path that is the sender's softirq, largely
# charged to the generator (docs/fast-path.md, "Measuring it").
#
# Env: REPS (3) DUR (8) ALLOCS (100) RATE (20000) CASES ("c160 c160r")
#      SERVERS ("fast uring coturn") OUT (target/bench-lab)
#
# Servers: fast (the fast path, TC only), xdp (the fast path with its XDP program as well,
# `fast-path-xdp=on`: the default leaves veths to TC),
# uring, epoll, coturn. The VM's interface is a veth, whose driver transmits XDP frames only while
# the router's end has GRO on: the script turns it on for xdp and off for the others. With xdp in
# SERVERS the client host checksums in software (TX checksum offload off) for every server: XDP
# cannot complete a local namespace's partial checksum (docs/fast-path.md, "XDP").
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${REPS:-3}
DUR=${DUR:-8}
ALLOCS=${ALLOCS:-100}
RATE=${RATE:-20000}
CASES=${CASES:-"c160 c160r"}
SERVERS=${SERVERS:-"fast uring coturn"}
OUT=${OUT:-target/bench-lab}
rm -rf "$OUT"
mkdir -p "$OUT"
[ "$(id -u)" = 0 ] || { echo "bench-lab.sh needs root (network namespaces)" >&2; exit 1; }
command -v turnserver >/dev/null || { echo "coturn's turnserver is not installed" >&2; exit 1; }
cargo build --release --workspace --bins -q
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh
TERN=$PWD/target/release/tern
LOAD=$PWD/target/release/tern-load

NS=tern-bench-$$
CLIENT=198.51.100.10 VM=203.0.113.10 PORT=3478
SPID=""
cleanup() {
    [ -n "$SPID" ] && kill "$SPID" 2>/dev/null
    for h in client router vm; do ip netns del "$NS-$h" 2>/dev/null || true; done
}
trap cleanup EXIT
on() { local h=$1; shift; ip netns exec "$NS-$h" "$@"; }
for h in client router vm; do
    ip netns add "$NS-$h"
    on "$h" ip link set lo up
done
link() { # host ifname ip/len peer-host peer-ifname peer-ip/len
    ip link add "$2" netns "$NS-$1" type veth peer name "$5" netns "$NS-$4"
    on "$1" ip addr add "$3" dev "$2"
    on "$4" ip addr add "$6" dev "$5"
    on "$1" ip link set "$2" up
    on "$4" ip link set "$5" up
}
link client eth0 "$CLIENT/24" router to-client 198.51.100.1/24
link vm eth0 "$VM/24" router to-vm 203.0.113.1/24
on client ip route add default via 198.51.100.1
on vm ip route add default via 203.0.113.1
on router sysctl -qw net.ipv4.ip_forward=1
# The fast path needs forwarding on the interfaces it is attached to (docs/fast-path.md); the
# same for every server, so that only the server differs between measurements.
on vm sysctl -qw net.ipv4.conf.all.forwarding=1

FLAGS=(-n --listening-ip="$VM" --relay-ip="$VM" --listening-port="$PORT" --min-port=10000
    --max-port=29999 --realm=test --no-cli --no-tls --no-dtls --log-file=stdout --lt-cred-mech
    --user=u:p)
# tern's packet counters, read after each run: where the packets went (kernel or shards).
METRICS=(--prometheus --prometheus-address=127.0.0.1)

if [[ " $SERVERS " == *" xdp "* ]]; then
    on client ethtool -K eth0 tx off >/dev/null
fi

start() { # server
    # `ip netns exec` execs the server, so $! is the server's PID (a shell function would not).
    local vm=(ip netns exec "$NS-vm") gro=off
    [ "$1" = xdp ] && gro=on
    if command -v ethtool >/dev/null; then on router ethtool -K to-vm gro "$gro"; fi
    case $1 in
        fast) "${vm[@]}" "$TERN" "${FLAGS[@]}" "${METRICS[@]}" --fast-path=on \
            >"$OUT/$1.server.log" 2>&1 & ;;
        xdp) "${vm[@]}" "$TERN" "${FLAGS[@]}" "${METRICS[@]}" --fast-path=on --fast-path-xdp=on \
            >"$OUT/$1.server.log" 2>&1 & ;;
        uring) "${vm[@]}" "$TERN" "${FLAGS[@]}" "${METRICS[@]}" --io-engine=uring \
            >"$OUT/$1.server.log" 2>&1 & ;;
        epoll) "${vm[@]}" "$TERN" "${FLAGS[@]}" "${METRICS[@]}" --io-engine=epoll \
            >"$OUT/$1.server.log" 2>&1 & ;;
        coturn) "${vm[@]}" turnserver "${FLAGS[@]}" --pidfile="$OUT/turn.pid" --db="$OUT/turndb" \
            >"$OUT/$1.server.log" 2>&1 & ;;
    esac
    SPID=$!
    await_server "$1" "$PORT" 0.5 ip netns exec "$NS-vm"
}

measure() { # server case rep
    local args=(--mode channel --size 160 --duration "$DUR" --allocations "$ALLOCS")
    case $2 in
        c160) args+=(--rate 0) ;;
        c160r) args+=(--rate "$RATE") ;;
    esac
    start "$1"
    echo "$(date +%T) $1 $2 rep $3" >&2
    on client "$LOAD" --lab "$CLIENT" --label "$1 $2 $3" --server "$VM:$PORT" --user u --pass p \
        --server-pid "$SPID" "${args[@]}" >>"$OUT/results.jsonl" 2>>"$OUT/load.log" || true
    if [ "$1" != coturn ]; then
        on vm curl -fsS --max-time 2 http://127.0.0.1:9641/metrics 2>/dev/null |
            awk -v run="$1 $2 $3" '/^tern_(fast_path|fast_path_xdp|shard)_packets_total/ {print run ": " $0}' \
            >>"$OUT/counters.log" || true
    fi
    stop_server
}

read -r -a servers <<<"$SERVERS"
n=${#servers[@]}
for rep in $(seq "$REPS"); do
    for c in $CASES; do
        for k in $(seq 0 $((n - 1))); do
            measure "${servers[$(((k + rep) % n))]}" "$c" "$rep"
        done
    done
done
for s in fast xdp; do
    grep -h 'fast path' "$OUT/$s.server.log" 2>/dev/null | head -1 | sed 's/^.*INFO //' >&2 || true
done
echo "tern's packet counters after each run:" >&2
cat "$OUT/counters.log" >&2 || true
python3 scripts/machine-report.py "$OUT/results.jsonl" coturn
