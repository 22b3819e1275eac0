#!/usr/bin/env bash
# Chaos test: a fresh cluster of its own (in a temporary directory, not .cluster/),
# a KV workload of concurrent clients, one fault at a time from a seed, then a
# linearizability check of the recorded history. Exits 0 only with no violation.
# The cluster speaks TLS on every port and mutual TLS between its nodes, with a
# dev CA of its own (`cairn certs init`, as every test cluster); the clients
# verify the nodes against it.
#   scripts/chaos.sh [--duration 2m] [--seed N] [--nodes 3|5]
#                    [--faults kill,pause,partition,restart-all] [--clients 16]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/setup.sh
source scripts/env.sh
cargo build --workspace --bins
CAIRN_BIN="$CARGO_TARGET_DIR/debug/cairn" exec "$CARGO_TARGET_DIR/debug/chaos" "$@"
