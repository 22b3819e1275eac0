#!/usr/bin/env bash
# Sign-in under load and under abuse, on a fresh 3-node cluster of the release
# build (the figures issue 18 asks for):
#   1. the raw Argon2id verification rate of this machine on every core, with
#      the parameters sign-in uses (`cairn bench --workload argon2`, before the
#      cluster starts, so nothing else uses the cores);
#   2. sign-in throughput and latency (`signin`), against that rate;
#   3. rejected sign-ins (`signin-rejected`: wrong passwords for one email,
#      429 once its bucket is spent) and the node CPU each 429 costs, beside a
#      linearizable KV read's as the floor of an authenticated request;
#   4. both at once: the sign-ins the cluster still serves during the spray.
# CPU is the nodes' own (utime + stime of the three processes) over the
# measured window, per successful request; 429s are padded to sign-in's 150 ms
# minimum, so their rate is set by the spray's connections, and their cost by
# the CPU each one takes (a refilled token's Argon2 verify and 401 included).
# Usage: scripts/bench-sign-in.sh [--duration 10] [--warmup 3]
#                                 [--concurrency 32] [--spray 128]
#                                 [--transport tls|plaintext]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/setup.sh
source scripts/env.sh
source scripts/lib/bench-cluster.sh

duration=10
warmup=3
concurrency=32
spray=128
transport=tls
while (($#)); do
  case "$1" in
    --duration) duration="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    --concurrency) concurrency="$2"; shift 2 ;;
    --spray) spray="$2"; shift 2 ;;
    --transport) transport="$2"; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

bench_build
bench_scratch

# run WORKLOAD CONCURRENCY [ARGS…]: the bench's summary and the nodes' CPU per
# successful request over the measured window.
run() {
  local w="$1" c="$2"
  shift 2
  "$bin" bench --config "$work/cluster.toml" --workload "$w" --concurrency "$c" \
    --duration-secs "$duration" --warmup-secs "$warmup" --cpu-pids "$(IFS=,; echo "${cairn_pids[*]}")" "$@" | tail -2
}

echo "== argon2 (raw verification rate, no cluster)"
"$bin" bench --workload argon2 --duration-secs "$duration" --warmup-secs "$warmup" | sed -n '1p;/^ok/p'

bench_cluster_start "$work" 7800 "$transport"
echo "== signin ($concurrency clients)"
run signin "$concurrency"
echo "== signin-rejected ($spray clients)"
run signin-rejected "$spray"
echo "== kv-get ($concurrency clients; the cheapest authenticated request)"
run kv-get "$concurrency"
echo "== signin during a signin-rejected spray (the users exist: no setup)"
# The spray's window covers the sign-ins': it starts a second earlier and
# lasts two seconds longer.
"$bin" bench --config "$work/cluster.toml" --workload signin-rejected --concurrency "$spray" \
  --duration-secs $((duration + 2)) --warmup-secs "$warmup" --no-setup >"$work/spray.out" &
spray_pid=$!
sleep 1
run signin "$concurrency" --no-setup
wait "$spray_pid"
echo "the spray, meanwhile: $(grep '^ok' "$work/spray.out")"
echo "peak RSS of each node (VmHWM):$(bench_peak_rss)"
echo "(release build; $transport; every sign-in is an Argon2id verify and a durable Raft write on a majority)"
