#!/usr/bin/env bash
# What sealing costs: the same `cairn bench` KV put run against two builds, one
# after the other, each on a fresh 3-node cluster in a temporary directory:
#   sealed      the normal build
#   no-sealing  a benchmark-only build (feature `insecure-no-sealing`) that stores
#               key names and values in the clear; it is never installed anywhere.
# Both run with TLS on every port, as deployed (scripts/lib/bench-cluster.sh).
# The two alternate for --rounds rounds (default 3) so drift on a shared machine
# hits both alike; the summary gives each variant's median.
# Usage: scripts/bench-sealing.sh [--concurrency 64] [--duration 10] [--rounds 3]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/setup.sh
source scripts/env.sh
source scripts/lib/bench-cluster.sh

concurrency=64
duration=10
rounds=3
while (($#)); do
  case "$1" in
    --concurrency) concurrency="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

bins="$HOME/.cache/cairn/bench-bins"
mkdir -p "$bins"
cargo build --workspace --bins --features cairn-node/insecure-no-sealing
cp "$CARGO_TARGET_DIR/debug/cairn" "$bins/cairn-no-sealing"
cargo build --workspace --bins
cp "$CARGO_TARGET_DIR/debug/cairn" "$bins/cairn-sealed"

pids=()
work=""
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "$work" ]; then rm -rf "$work"; fi
}
trap cleanup EXIT

run() {
  local variant="$1" bin="$bins/cairn-$1"
  work="$(mktemp -d)"
  pids=()
  bench_cluster_start "$work" 7400
  echo "== $variant: kv-put, $concurrency connections, ${duration}s"
  "$bin" bench --config "$work/cluster.toml" --workload kv-put \
    --concurrency "$concurrency" --duration-secs "$duration" | tee "$work/bench.out"
  grep -oE 'throughput [0-9]+' "$work/bench.out" | awk '{print $2}' >>"$bins/$variant.rates"
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
  rm -rf "$work"
  work=""
}

rm -f "$bins/sealed.rates" "$bins/no-sealing.rates"
for _ in $(seq 1 "$rounds"); do
  run sealed
  run no-sealing
done
median() { sort -n "$1" | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
sealed="$(median "$bins/sealed.rates")"
plain="$(median "$bins/no-sealing.rates")"
echo "sealed runs:     $(tr '\n' ' ' <"$bins/sealed.rates")"
echo "no-sealing runs: $(tr '\n' ' ' <"$bins/no-sealing.rates")"
awk -v s="$sealed" -v p="$plain" 'BEGIN {
  printf "median: sealed %.0f puts/s, no-sealing %.0f puts/s: sealing costs %.1f%%\n", s, p, (p > 0 ? (1 - s / p) * 100 : 0)
}'
