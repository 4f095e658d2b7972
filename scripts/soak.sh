#!/bin/sh
# The 10-minute soak of docs/robustness.md: 10,000 allocations (or as many as tern's descriptor
# ceiling allows) refreshing and relaying one packet a second each; prints RSS over time and
# PASS/FAIL. Extra arguments go to tern-drill (e.g. --allocations 2000 --duration 120).
set -eu
cd "$(dirname "$0")/.."
cargo build --release -p tern --bin tern -p tern-drill
exec ./target/release/tern-drill --tern ./target/release/tern "$@" soak
