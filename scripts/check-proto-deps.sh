#!/usr/bin/env bash
# The protocol core cannot do I/O because it cannot reach anything that does: every crate in
# `cargo tree -p tern-proto` (normal and build dependencies, this host's target) must be one of
# the hashing and encoding crates below. A new dependency fails CI until it is added here, with
# a reason, in the same change (docs/architecture.md, "Crates").
set -euo pipefail
cd "$(dirname "$0")/.."

allowed=(
    tern-proto
    # MESSAGE-INTEGRITY(-SHA256), long-term keys, nonces, REST credentials, FINGERPRINT, base64
    hmac md-5 sha1 sha2 digest crypto-common block-buffer generic-array typenum cpufeatures
    cfg-if subtle crc32fast base64
    # generic-array's build dependency
    version_check
)

tree=$(cargo tree -p tern-proto -e normal,build --prefix none --format '{p}' |
    awk '{print $1}' | sort -u)
bad=()
for crate in $tree; do
    ok=
    for a in "${allowed[@]}"; do
        [[ $crate == "$a" ]] && ok=1 && break
    done
    [[ -n $ok ]] || bad+=("$crate")
done
if ((${#bad[@]})); then
    echo "tern-proto depends on crates outside its allowlist: ${bad[*]}" >&2
    echo "(the protocol core must not reach config, metrics, engines, databases or a runtime)" >&2
    exit 1
fi
echo "tern-proto: $(wc -w <<<"$tree") crates, all on the allowlist"
