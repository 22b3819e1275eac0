#!/usr/bin/env bash
# What sealing costs: the same `cairn bench` KV put run against two builds, one
# after the other, each on a fresh 3-node cluster in a temporary directory:
#   sealed      the normal build
#   no-sealing  a benchmark-only build (feature `insecure-no-sealing`) that stores
#               key names and values in the clear; it is never installed anywhere.
# The two alternate for --rounds rounds (default 3) so drift on a shared machine
# hits both alike; the summary gives each variant's median.
# Usage: scripts/bench-sealing.sh [--concurrency 64] [--duration 10] [--rounds 3]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/setup.sh
source scripts/env.sh

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
  (umask 077; head -c 32 /dev/urandom >"$work/master.key"; head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/admin.token")
  {
    printf 'cluster_name = "bench"\nreplication_factor = 3\nmaster_key_file = "master.key"\nadmin_token_file = "admin.token"\n[tls]\ninsecure_plaintext = true\n'
    printf '[[regions]]\nname = "local"\nresidency = "hard"\n'
    for id in 1 2 3; do
      printf '[[nodes]]\nid = %s\nregion = "local"\nraft_addr = "127.0.0.1:%s"\nhttp_addr = "127.0.0.1:%s"\ngrpc_addr = "127.0.0.1:%s"\ndata_dir = "node-%s"\n' \
        "$id" "$((7400 + id))" "$((8400 + id))" "$((9400 + id))" "$id"
    done
  } >"$work/cluster.toml"
  pids=()
  for id in 1 2 3; do
    "$bin" node --config "$work/cluster.toml" --id "$id" >"$work/node-$id.log" 2>&1 &
    pids+=("$!")
  done
  "$bin" init --config "$work/cluster.toml" >/dev/null
  for id in 1 2 3; do
    for _ in $(seq 1 100); do
      curl -fsS "http://127.0.0.1:$((8400 + id))/readyz" >/dev/null 2>&1 && break
      sleep 0.1
    done
  done
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
