# Sourced by the scripts: one shared build directory outside the clone, so a fresh
# clone on the same machine reuses the RocksDB build (minutes on 2 cores).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cairn/target}"
mkdir -p "$CARGO_TARGET_DIR"
