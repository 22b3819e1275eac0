#!/usr/bin/env bash
# The whole test suite, as CI runs it: format, lints, unit tests, openraft's storage
# suite, and integration tests against real node processes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh
source scripts/env.sh

cargo fmt --all --check
cargo build -p cairn-node --bin cairn
cargo clippy --workspace --all-targets -- -D warnings
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# Unit tests, storage suite, config tests: parallel.
cargo test --workspace --exclude cairn-tests 2>&1 | tee -a "$log"
# Integration tests start 3-node clusters of real processes: one cluster at a time,
# so elections are not starved of CPU on a 2-core machine.
cargo test -p cairn-tests -- --test-threads=1 2>&1 | tee -a "$log"
# One closing line for the whole suite.
awk '/^test result:/ { p += $4; f += $6 } END { printf "%d passed, %d failed\n", p, f }' "$log"
