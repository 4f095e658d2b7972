#!/bin/sh
# Runs the overload and fault drills of docs/robustness.md against a release build and prints
# PASS/FAIL (or SKIP) per drill; exits non-zero if any drill failed. Extra arguments go to
# tern-drill (e.g. --ci for the short variants, or "soak" to add the soak).
set -eu
cd "$(dirname "$0")/.."
cargo build --release --bin tern --bin tern-drill
exec ./target/release/tern-drill --tern ./target/release/tern "$@" all
