#!/usr/bin/env bash
# Layering rules from the sources' `use` edges (crates point one way, raft knows no
# feature, no import circles, features do not import each other, pure rules files):
# see scripts/check_layers.py. `--self-test` shows each rule refuses an illegal edge.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec python3 scripts/check_layers.py "$@"
