#!/usr/bin/env bash
# KV puts, side by side: a 3-member etcd cluster and a 3-node Cairn cluster, one
# after the other on this machine, each on its own fresh data dirs, driven by the
# same load generator (wrk, keep-alive connections, unique keys, 96-byte values)
# at 64 and 256 connections: etcd through its HTTP gateway `POST /v3/kv/put`,
# Cairn through `PUT /v1/kv/{key}`. wrk sends to the first node of each cluster
# (which forwards to its leader when it is not the leader). Failed requests
# (non-2xx, socket errors) are subtracted from the throughput.
# Then, on the same Cairn cluster, `cairn bench` (a tenant API key, requests
# spread over every node, 64 clients) measures puts, linearizable gets and
# refresh rotations, and a second table sets them against the issue's targets:
# gets against Cairn's own put rate, refresh rotations against etcd's put rate
# at 64 connections.
# Usage: scripts/bench-vs-etcd.sh [--duration 10] [--warmup 2]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/setup.sh
source scripts/env.sh
source scripts/lib/bench-cluster.sh

duration=10
warmup=2
while (($#)); do
  case "$1" in
    --duration) duration="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

missing=()
command -v etcd >/dev/null || missing+=(etcd-server)
command -v wrk >/dev/null || missing+=(wrk)
if ((${#missing[@]})); then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}"
fi
bench_build

work="$(mktemp -d)"
pids=()
stop_all() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
}
trap 'stop_all; rm -rf "$work"' EXIT

value="$(head -c 96 /dev/zero | tr '\0' 'v')"
results="$work/results"
: >"$results"

# run_wrk NAME CONNS URL LUA: warm-up, then a measured run; appends a result row.
run_wrk() {
  local name="$1" conns="$2" url="$3" lua="$4" threads=2
  wrk -t"$threads" -c"$conns" -d"${warmup}s" -s "$lua" "$url" >/dev/null 2>&1 || true
  local out
  out="$(wrk -t"$threads" -c"$conns" -d"${duration}s" --latency -s "$lua" "$url")"
  echo "$out" >"$work/$name-$conns.wrk"
  awk -v name="$name" -v conns="$conns" -v secs="$duration" '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    /requests in/ { total = $1 }
    /Non-2xx or 3xx responses:/ { bad += $NF }
    /Socket errors:/ { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) { gsub(",", "", $i); bad += $i } }
    $1 == "50%" { p50 = ms($2) }
    $1 == "99%" { p99 = ms($2) }
    END { printf "%s %s %.0f %.2f %.2f %d\n", name, conns, (total - bad) / secs, p50, p99, bad }
  ' <<<"$out" >>"$results"
}

# --- etcd -----------------------------------------------------------------
cat >"$work/etcd.lua" <<'LUA'
local b = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function b64(data)
  return ((data:gsub(".", function(x)
    local r, byte = "", x:byte()
    for i = 8, 1, -1 do r = r .. (byte % 2 ^ i - byte % 2 ^ (i - 1) > 0 and "1" or "0") end
    return r
  end) .. "0000"):gsub("%d%d%d?%d?%d?%d?", function(x)
    if #x < 6 then return "" end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == "1" and 2 ^ (6 - i) or 0) end
    return b:sub(c + 1, c + 1)
  end) .. ({ "", "==", "=" })[#data % 3 + 1])
end
local value = b64(string.rep("v", 96))
local n = 0
local prefix = tostring(math.random(1, 1e9))
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  n = n + 1
  return wrk.format(nil, "/v3/kv/put", nil,
    '{"key":"' .. b64("bench-" .. prefix .. "-" .. n) .. '","value":"' .. value .. '"}')
end
LUA
cluster="e1=http://127.0.0.1:23801,e2=http://127.0.0.1:23802,e3=http://127.0.0.1:23803"
for i in 1 2 3; do
  etcd --name "e$i" --data-dir "$work/etcd-$i" \
    --listen-client-urls "http://127.0.0.1:2379$i" --advertise-client-urls "http://127.0.0.1:2379$i" \
    --listen-peer-urls "http://127.0.0.1:2380$i" --initial-advertise-peer-urls "http://127.0.0.1:2380$i" \
    --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token bench \
    --log-level error >"$work/etcd-$i.log" 2>&1 &
  pids+=("$!")
done
for _ in $(seq 1 100); do
  curl -fsS http://127.0.0.1:23791/health 2>/dev/null | grep -q '"health":"true"' && break
  sleep 0.2
done
for conns in 64 256; do
  run_wrk etcd "$conns" http://127.0.0.1:23791 "$work/etcd.lua"
done
stop_all

# --- Cairn ----------------------------------------------------------------
cairn_pids=()
bench_cluster_start "$work" 7500
token="$(cat "$work/admin.token")"
curl -fsS -o /dev/null -X POST http://127.0.0.1:8501/v1/admin/tenants \
  -H "Authorization: Bearer $token" -d '{"name":"bench"}'
cat >"$work/cairn.lua" <<LUA
local n = 0
local prefix = tostring(math.random(1, 1e9))
wrk.method = "PUT"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $token"
wrk.headers["X-Tenant"] = "bench"
request = function()
  n = n + 1
  return wrk.format(nil, "/v1/kv/bench-" .. prefix .. "-" .. n, nil, '{"value":"$value"}')
end
LUA
for conns in 64 256; do
  run_wrk cairn "$conns" http://127.0.0.1:8501 "$work/cairn.lua"
done
: >"$work/bench"
for w in kv-put kv-get refresh; do
  line="$("$bin" bench --config "$work/cluster.toml" --workload "$w" --concurrency 64 \
    --duration-secs "$duration" --warmup-secs "$warmup" | tail -1)"
  echo "$w $line" >>"$work/bench"
done
rss="$(bench_peak_rss)"
stop_all

echo
printf '%-8s %6s %10s %9s %9s %7s %14s\n' system conns puts/s p50_ms p99_ms errors cairn/etcd
while read -r name conns rate p50 p99 bad; do
  ratio=""
  if [ "$name" = cairn ]; then
    etcd_rate="$(awk -v c="$conns" '$1 == "etcd" && $2 == c { print $3 }' "$results")"
    ratio="$(awk -v a="$rate" -v b="$etcd_rate" 'BEGIN { if (b > 0) printf "%.2fx", a / b }')"
  fi
  printf '%-8s %6s %10s %9s %9s %7s %14s\n' "$name" "$conns" "$rate" "$p50" "$p99" "$bad" "$ratio"
done <"$results"
echo
# `cairn bench` prints: ok N  errors E  throughput T req/s  p50 X ms  p90 Y ms  p99 Z ms  max M ms
rate_of() { awk -v w="$1" '$1 == w { print $7 }' "$work/bench"; }
etcd64="$(awk '$1 == "etcd" && $2 == 64 { print $3 }' "$results")"
printf '%-20s %10s %9s %9s %7s   %s\n' "cairn bench, 64" req/s p50_ms p99_ms errors "against the target"
while read -r w _ _ _ errors _ rate _ _ p50 _ _ _ _ _ p99 _; do
  case "$w" in
    kv-get) target="$(awk -v a="$rate" -v b="$(rate_of kv-put)" 'BEGIN { if (b > 0) printf "%.2fx Cairn puts (target 5x)", a / b }')" ;;
    refresh) target="$(awk -v a="$rate" -v b="$etcd64" 'BEGIN { if (b > 0) printf "%.2fx etcd puts at 64 (target 1x)", a / b }')" ;;
    *) target="" ;;
  esac
  printf '%-20s %10s %9s %9s %7s   %s\n' "$w" "$rate" "$p50" "$p99" "$errors" "$target"
done <"$work/bench"
echo "peak RSS of each Cairn node (VmHWM):$rss"
echo "(Cairn: release build; values sealed; every put is a durable Raft write on a majority)"
