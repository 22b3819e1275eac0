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
# CPU is the nodes' own (utime + stime of the three processes), per successful
# request; 429s are padded to sign-in's 150 ms minimum, so their rate is set by
# the spray's connections, and their cost by the CPU each one takes.
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
work="$(mktemp -d)"
pids=()
cairn_pids=()
stop_all() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
}
trap 'stop_all; rm -rf "$work"' EXIT

# The nodes' CPU so far, in clock ticks.
node_ticks() {
  local p t=0
  for p in "${cairn_pids[@]}"; do
    t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat")))
  done
  echo "$t"
}
hz="$(getconf CLK_TCK)"

# run WORKLOAD CONCURRENCY: the bench's summary line, then the nodes' CPU per
# successful request.
run() {
  local w="$1" c="$2" before after line ok
  before="$(node_ticks)"
  line="$("$bin" bench --config "$work/cluster.toml" --workload "$w" --concurrency "$c" \
    --duration-secs "$duration" --warmup-secs "$warmup" | tail -1)"
  after="$(node_ticks)"
  ok="$(awk '{ print $2 }' <<<"$line")"
  echo "$line"
  # Warm-up and setup are in the CPU too: an upper bound per request.
  awk -v t=$((after - before)) -v hz="$hz" -v ok="$ok" \
    'BEGIN { if (ok > 0) printf "node CPU per ok request (at most): %.3f ms\n", t * 1000 / hz / ok }'
}

echo "== argon2 (raw verification rate, no cluster)"
"$bin" bench --workload argon2 --duration-secs "$duration" --warmup-secs "$warmup" | sed -n '1p;$p'

bench_cluster_start "$work" 7800 "$transport"
echo "== signin ($concurrency clients)"
run signin "$concurrency"
echo "== signin-rejected ($spray clients)"
run signin-rejected "$spray"
echo "== kv-get ($concurrency clients; the cheapest authenticated request)"
run kv-get "$concurrency"
echo "== signin during a signin-rejected spray"
"$bin" bench --config "$work/cluster.toml" --workload signin-rejected --concurrency "$spray" \
  --duration-secs $((duration + 2)) --warmup-secs "$warmup" >"$work/spray.out" &
spray_pid=$!
sleep 1
"$bin" bench --config "$work/cluster.toml" --workload signin --concurrency "$concurrency" \
  --duration-secs "$duration" --warmup-secs "$warmup" | tail -1
wait "$spray_pid"
echo "the spray, meanwhile: $(tail -1 "$work/spray.out")"
echo "peak RSS of each node (VmHWM):$(bench_peak_rss)"
echo "(release build; $transport; every sign-in is an Argon2id verify and a durable Raft write on a majority)"
