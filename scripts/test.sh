#!/usr/bin/env bash
# The whole test suite, as CI runs it: format, lints, unit tests, openraft's storage
# suite, and integration tests against real node processes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh
source scripts/env.sh

cargo fmt --all --check
# Always whole-workspace commands: selecting one package (`-p`) can resolve the
# C++ build dependencies' features differently and rebuild RocksDB (~13 min).
cargo build --workspace --bins
cargo clippy --workspace --all-targets -- -D warnings
# Layering rules (use edges), and proof that each rule refuses an illegal edge.
scripts/check-layers.sh
scripts/check-layers.sh --self-test
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# Unit, property, storage-suite and integration tests. Integration tests start
# clusters of real processes: one test at a time, so elections are not starved of
# CPU on a 2-core machine.
cargo test --workspace -- --test-threads=1 2>&1 | tee -a "$log"
# One closing line for the whole suite.
awk '/^test result:/ { p += $4; f += $6 } END { printf "%d passed, %d failed\n", p, f }' "$log"
