#!/usr/bin/env bash
# `cairn bench` on a fresh 3-node cluster of the release build, one workload after
# the other on the same cluster: throughput and p50/p90/p99/max latency of each,
# then the peak RSS of each node. Requests use a tenant API key and are spread
# over every node. The cluster speaks TLS on every port (mutual TLS between the
# nodes) unless `--transport plaintext`.
# Usage: scripts/bench.sh [--workloads kv-put,kv-get,kv-mixed,refresh,signin]
#                         [--concurrency 64] [--duration 10] [--warmup 2]
#                         [--transport tls|plaintext]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/setup.sh
source scripts/env.sh
source scripts/lib/bench-cluster.sh

workloads="kv-put,kv-get,kv-mixed,refresh,signin"
concurrency=64
duration=10
warmup=2
transport=tls
while (($#)); do
  case "$1" in
    --workloads) workloads="$2"; shift 2 ;;
    --concurrency) concurrency="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    --transport) transport="$2"; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

bench_build
bench_scratch
bench_cluster_start "$work" 7700 "$transport"

IFS=',' read -r -a list <<<"$workloads"
for w in "${list[@]}"; do
  echo "== $w"
  "$bin" bench --config "$work/cluster.toml" --workload "$w" --concurrency "$concurrency" \
    --duration-secs "$duration" --warmup-secs "$warmup" | tail -1
done
echo "peak RSS of each node (VmHWM):$(bench_peak_rss)"
echo "(release build; $transport; $concurrency clients; every write is a sealed, durable Raft write on a majority)"
