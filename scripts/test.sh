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
# Unit tests, storage suite, config tests: parallel.
cargo test --workspace --exclude cairn-tests
# Integration tests start 3-node clusters of real processes: one cluster at a time,
# so elections are not starved of CPU on a 2-core machine.
cargo test -p cairn-tests -- --test-threads=1
