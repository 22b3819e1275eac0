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
#
# Like with like, twice: first both with TLS, then both in plaintext.
#   tls        etcd: https client and peer URLs, peers authenticated by their
#              certificates (--peer-client-cert-auth), clients not (as Cairn's
#              client ports); Cairn: TLS on every port, mutual TLS between nodes.
#              Both use certificates from `cairn certs init` (rcgen, ECDSA P-256):
#              etcd's from a throwaway config whose node addresses are etcd's.
#   plaintext  etcd: http URLs; Cairn: `[tls] insecure_plaintext = true`.
# wrk speaks TLS 1.2/1.3 through OpenSSL (it verifies no certificate); `cairn
# bench` verifies every node against the cluster CA. A last table gives what TLS
# costs each: TLS over plaintext for every figure of both runs.
# Usage: scripts/bench-vs-etcd.sh [--duration 10] [--warmup 2]
#                                 [--transport both|tls|plaintext]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/setup.sh
source scripts/env.sh
source scripts/lib/bench-cluster.sh

duration=10
warmup=2
transport=both
while (($#)); do
  case "$1" in
    --duration) duration="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    --transport) transport="$2"; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
case "$transport" in
  both) transports=(tls plaintext) ;;
  tls | plaintext) transports=("$transport") ;;
  *) echo "--transport is both, tls or plaintext" >&2; exit 2 ;;
esac

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

bench_scratch

value="$(head -c 96 /dev/zero | tr '\0' 'v')"
# One row per wrk run: transport system conns puts/s p50_ms p99_ms errors.
results="$work/results"
: >"$results"
# One row per `cairn bench` run: transport workload, then its summary line.
bench="$work/bench"
: >"$bench"
# One row per Cairn cluster: transport, then each node's peak RSS.
rss="$work/rss"
: >"$rss"

# run_wrk TRANSPORT NAME CONNS URL LUA: warm-up, then a measured run; appends a
# result row.
run_wrk() {
  local t="$1" name="$2" conns="$3" url="$4" lua="$5" threads=2
  wrk -t"$threads" -c"$conns" -d"${warmup}s" -s "$lua" "$url" >/dev/null 2>&1 || true
  local out
  out="$(wrk -t"$threads" -c"$conns" -d"${duration}s" --latency -s "$lua" "$url")"
  echo "$out" >"$work/$t-$name-$conns.wrk"
  awk -v t="$t" -v name="$name" -v conns="$conns" -v secs="$duration" '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    /requests in/ { total = $1 }
    /Non-2xx or 3xx responses:/ { bad += $NF }
    /Socket errors:/ { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) { gsub(",", "", $i); bad += $i } }
    $1 == "50%" { p50 = ms($2) }
    $1 == "99%" { p99 = ms($2) }
    END { printf "%s %s %s %.0f %.2f %.2f %d\n", t, name, conns, (total - bad) / secs, p50, p99, bad }
  ' <<<"$out" >>"$results"
}

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

# etcd_certs DIR: etcd's CA, certificates and keys in DIR/tls, made by `cairn
# certs init` from a config naming etcd's addresses (member i: client URL
# 127.0.0.1:2379i as http_addr, peer URL 127.0.0.1:2380i as raft_addr; the
# grpc_addr is unused). Each certificate carries the IP SAN 127.0.0.1 and EKU
# serverAuth and clientAuth, which etcd's peer mTLS needs both ways.
etcd_certs() {
  local dir="$1" i
  mkdir -p "$dir"
  (umask 077; head -c 32 /dev/urandom >"$dir/master.key"; head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/admin.token")
  {
    printf 'cluster_name = "etcd"\nreplication_factor = 3\nmaster_key_file = "master.key"\nadmin_token_file = "admin.token"\n'
    printf '[tls]\nca_file = "tls/ca.pem"\n[[regions]]\nname = "local"\nresidency = "hard"\n'
    for i in 1 2 3; do
      printf '[[nodes]]\nid = %s\nregion = "local"\nraft_addr = "127.0.0.1:2380%s"\nhttp_addr = "127.0.0.1:2379%s"\ngrpc_addr = "127.0.0.1:2381%s"\ndata_dir = "unused-%s"\n' \
        "$i" "$i" "$i" "$i" "$i"
      printf 'tls_cert_file = "tls/etcd-%s.pem"\ntls_key_file = "tls/etcd-%s-key.pem"\n' "$i" "$i"
    done
  } >"$dir/certs.toml"
  "$bin" certs init --config "$dir/certs.toml" >/dev/null
}

# run_etcd TRANSPORT: a fresh 3-member etcd, wrk at 64 and 256 connections, stop.
run_etcd() {
  local t="$1" scheme=http i curl_tls=() tls_flags=()
  if [ "$t" = tls ]; then
    scheme=https
    etcd_certs "$work/etcd-certs"
    # HTTP/1.1: etcd hands an h2 connection to its gRPC server, not the gateway.
    curl_tls=(--http1.1 --cacert "$work/etcd-certs/tls/ca.pem")
  fi
  local cluster="e1=$scheme://127.0.0.1:23801,e2=$scheme://127.0.0.1:23802,e3=$scheme://127.0.0.1:23803"
  for i in 1 2 3; do
    tls_flags=()
    if [ "$t" = tls ]; then
      local d="$work/etcd-certs/tls"
      # No --trusted-ca-file for clients: etcd would then demand a client
      # certificate, which Cairn's client ports do not.
      tls_flags=(--cert-file "$d/etcd-$i.pem" --key-file "$d/etcd-$i-key.pem"
        --peer-cert-file "$d/etcd-$i.pem" --peer-key-file "$d/etcd-$i-key.pem"
        --peer-trusted-ca-file "$d/ca.pem" --peer-client-cert-auth)
    fi
    etcd --name "e$i" --data-dir "$work/etcd-$t-$i" \
      --listen-client-urls "$scheme://127.0.0.1:2379$i" --advertise-client-urls "$scheme://127.0.0.1:2379$i" \
      --listen-peer-urls "$scheme://127.0.0.1:2380$i" --initial-advertise-peer-urls "$scheme://127.0.0.1:2380$i" \
      --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token "bench-$t" \
      "${tls_flags[@]}" --log-level error >"$work/etcd-$t-$i.log" 2>&1 &
    pids+=("$!")
  done
  local healthy=""
  for _ in $(seq 1 100); do
    if curl -fsS "${curl_tls[@]}" "$scheme://127.0.0.1:23791/health" 2>/dev/null | grep -q '"health":"true"'; then
      healthy=1
      break
    fi
    sleep 0.2
  done
  if [ -z "$healthy" ]; then
    echo "etcd ($t) did not become healthy; its log:" >&2
    tail -5 "$work/etcd-$t-1.log" >&2
    exit 1
  fi
  for conns in 64 256; do
    run_wrk "$t" etcd "$conns" "$scheme://127.0.0.1:23791" "$work/etcd.lua"
  done
  stop_all
}

# run_cairn TRANSPORT PORT_BASE: a fresh 3-node Cairn cluster, wrk at 64 and 256
# connections, then `cairn bench` kv-put, kv-get and refresh, stop.
run_cairn() {
  local t="$1" base="$2" dir="$work/cairn-$t" w line
  mkdir -p "$dir"
  cairn_pids=()
  bench_cluster_start "$dir" "$base" "$t"
  local http="$bench_scheme://127.0.0.1:$((base + 1001))"
  local token
  token="$(cat "$dir/admin.token")"
  curl -fsS "${bench_curl_tls[@]}" -o /dev/null -X POST "$http/v1/admin/tenants" \
    -H "Authorization: Bearer $token" -d '{"name":"bench"}'
  cat >"$dir/cairn.lua" <<LUA
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
    run_wrk "$t" cairn "$conns" "$http" "$dir/cairn.lua"
  done
  for w in kv-put kv-get refresh; do
    line="$("$bin" bench --config "$dir/cluster.toml" --workload "$w" --concurrency 64 \
      --duration-secs "$duration" --warmup-secs "$warmup" | tail -1)"
    echo "$t $w $line" >>"$bench"
  done
  echo "$t$(bench_peak_rss)" >>"$rss"
  stop_all
}

# Each transport's pair back to back, so the machine's drift (it varies by
# ±15-25 % over minutes) hits etcd and Cairn alike.
for t in "${transports[@]}"; do
  run_etcd "$t"
  run_cairn "$t" "$([ "$t" = tls ] && echo 7500 || echo 7600)"
done

title() {
  case "$1" in
    tls) echo "TLS: etcd https client and peer URLs (peer mTLS) vs Cairn TLS on every port (mTLS between nodes)" ;;
    plaintext) echo "plaintext: etcd http URLs vs Cairn insecure_plaintext = true" ;;
  esac
}
# `cairn bench` prints: ok N  errors E  throughput T req/s  p50 X ms  p90 Y ms  p99 Z ms  max M ms
# (with the transport and the workload before it: $8 is the throughput, $17 the p99).
bench_rate() { awk -v t="$1" -v w="$2" '$1 == t && $2 == w { print $8 }' "$bench"; }
bench_p99() { awk -v t="$1" -v w="$2" '$1 == t && $2 == w { print $17 }' "$bench"; }
wrk_rate() { awk -v t="$1" -v s="$2" -v c="$3" '$1 == t && $2 == s && $3 == c { print $4 }' "$results"; }
wrk_p99() { awk -v t="$1" -v s="$2" -v c="$3" '$1 == t && $2 == s && $3 == c { print $6 }' "$results"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b }'; }

for t in "${transports[@]}"; do
  echo
  echo "== $(title "$t")"
  printf '%-8s %6s %10s %9s %9s %7s %14s\n' system conns puts/s p50_ms p99_ms errors cairn/etcd
  while read -r rt name conns rate p50 p99 bad; do
    [ "$rt" = "$t" ] || continue
    r=""
    if [ "$name" = cairn ]; then r="$(ratio "$rate" "$(wrk_rate "$t" etcd "$conns")")"; fi
    printf '%-8s %6s %10s %9s %9s %7s %14s\n' "$name" "$conns" "$rate" "$p50" "$p99" "$bad" "$r"
  done <"$results"
  echo
  etcd64="$(wrk_rate "$t" etcd 64)"
  printf '%-20s %10s %9s %9s %7s   %s\n' "cairn bench, 64" req/s p50_ms p99_ms errors "against the target"
  while read -r bt w _ _ _ errors _ rate _ _ p50 _ _ _ _ _ p99 _; do
    [ "$bt" = "$t" ] || continue
    case "$w" in
      kv-get) target="$(awk -v a="$rate" -v b="$(bench_rate "$t" kv-put)" 'BEGIN { if (b > 0) printf "%.2fx Cairn puts (target 5x)", a / b }')" ;;
      refresh) target="$(awk -v a="$rate" -v b="$etcd64" 'BEGIN { if (b > 0) printf "%.2fx etcd puts at 64 (target 1x)", a / b }')" ;;
      *) target="" ;;
    esac
    printf '%-20s %10s %9s %9s %7s   %s\n' "$w" "$rate" "$p50" "$p99" "$errors" "$target"
  done <"$bench"
  echo "peak RSS of each Cairn node (VmHWM):$(awk -v t="$t" '$1 == t { $1 = ""; print }' "$rss")"
done

if ((${#transports[@]} == 2)); then
  echo
  echo "== what TLS costs (same machine, minutes apart): TLS / plaintext"
  printf '%-22s %10s %10s %8s %12s %12s\n' "" tls/s plain/s tls/plain "p99 tls ms" "p99 plain ms"
  for w in kv-put kv-get refresh; do
    a="$(bench_rate tls "$w")"
    b="$(bench_rate plaintext "$w")"
    printf '%-22s %10s %10s %8s %12s %12s\n' "cairn bench $w" "$a" "$b" "$(ratio "$a" "$b")" \
      "$(bench_p99 tls "$w")" "$(bench_p99 plaintext "$w")"
  done
  for s in cairn etcd; do
    for conns in 64 256; do
      a="$(wrk_rate tls "$s" "$conns")"
      b="$(wrk_rate plaintext "$s" "$conns")"
      printf '%-22s %10s %10s %8s %12s %12s\n' "$s wrk puts, $conns" "$a" "$b" "$(ratio "$a" "$b")" \
        "$(wrk_p99 tls "$s" "$conns")" "$(wrk_p99 plaintext "$s" "$conns")"
    done
  done
fi
echo
echo "(Cairn: release build; values sealed; every put is a durable Raft write on a majority)"
