#!/bin/sh
# Runs the overload and fault drills of docs/robustness.md against a release build and prints
# PASS/FAIL (or SKIP) per drill; exits non-zero if any drill failed. Extra arguments go to
# tern-drill (e.g. --ci for the short variants, or "soak" to add the soak).
# The slowloris drill (issue 18) runs on its own; its long form, 5,000 trickling TCP connections
# from 100 loopback addresses against a 10 s deadline while the probe allocates:
#   ./target/release/tern-drill --tern ./target/release/tern slowloris
# So does the user-database lookup flood (issue 18); its long form, 20,000 random usernames a
# second for 60 s from 1,000 loopback sources (each signing with a made-up key after fetching a
# nonce) against a SQLite database of 200 real users, who must authenticate with a p99 under 100 ms:
#   ./target/release/tern-drill --tern ./target/release/tern lookup-flood
set -eu
cd "$(dirname "$0")/.."
cargo build --release -p tern --bin tern -p tern-drill
exec ./target/release/tern-drill --tern ./target/release/tern "$@" all
