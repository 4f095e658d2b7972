#!/usr/bin/env bash
# The relay and interop tests (tern's own client, coturn's uclient, Chromium, aiortc, both
# engines) again with the kernel fast path on (TERN_TEST_FAST_PATH=on, docs/fast-path.md).
# The fast path needs forwarding on the interfaces it is attached to, lo included, so the
# tests run inside a network namespace of their own where forwarding is on, rather than
# changing the host's lo; a veth pair with a host address stands for the machine's network
# interface (Chromium gathers no candidates on a host that has only lo). Needs root.
#
#   scripts/fast-path-suite.sh [more cargo test arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "fast-path-suite.sh needs root (a network namespace)" >&2; exit 1; }
NS=tern-fast-suite-$$
trap 'ip netns del "$NS" 2>/dev/null || true' EXIT
ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" link add tern-nic type veth peer name tern-nic-peer
# One host address (/32: it makes no other address routable in the tests' namespace).
ip -n "$NS" addr add 10.254.0.1/32 dev tern-nic
ip -n "$NS" link set tern-nic up
ip -n "$NS" link set tern-nic-peer up
ip netns exec "$NS" sysctl -qw net.ipv4.conf.all.forwarding=1
ip netns exec "$NS" env TERN_TEST_FAST_PATH=on cargo test --test it "$@" -- \
    server_relay server_tcp server_engines server_limits server_browser server_aiortc server_redirect
