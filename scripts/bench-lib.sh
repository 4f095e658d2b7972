# shellcheck shell=bash
# What the benchmark scripts share (sourced by turnload-compare.sh and bench-lab.sh): waiting for
# the server they started in the background (PID in $SPID, log in $OUT/NAME.server.log) and
# stopping it.

# await_server NAME PORT SETTLE [PREFIX...]: waits for a UDP listener on PORT (seen through the
# command PREFIX, e.g. `ip netns exec NS`), then SETTLE seconds more; exits if the server died.
await_server() {
    local name=$1 port=$2 settle=$3
    shift 3
    for _ in $(seq 100); do
        "$@" ss -Huln "sport = :$port" | grep -q . && break
        sleep 0.1
    done
    sleep "$settle"
    kill -0 "$SPID" 2>/dev/null || { echo "$name did not start; see $OUT/$name.server.log" >&2; exit 1; }
}

# stop_server: stops $SPID and waits out coturn's hold on a deallocated 5-tuple (about a
# second, turnload's README) before the next server takes the port.
stop_server() {
    kill "$SPID"
    wait "$SPID" 2>/dev/null || true
    SPID=""
    sleep 2
}
