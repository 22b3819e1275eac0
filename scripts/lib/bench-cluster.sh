# Sourced by the benchmark scripts: a fresh 3-node Cairn cluster in a scratch
# directory, from the release build (benchmarks measure what would be deployed;
# the first release build compiles RocksDB again, ~15 minutes on 2 cores).

# stop_all: stops every process in the caller's `pids` and waits for them.
stop_all() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
}

# bench_scratch: sets `work` (a fresh scratch directory) and empties `pids` and
# `cairn_pids`; on exit, every process in `pids` is stopped and `work` removed.
bench_scratch() {
  work="$(mktemp -d)"
  pids=()
  cairn_pids=()
  trap 'stop_all; rm -rf "$work"' EXIT
}

# bench_build: builds the release binaries; sets `bin`. With CAIRN_BENCH_BIN set,
# uses that binary instead and builds nothing (A/B runs of two builds).
bench_build() {
  if [ -n "${CAIRN_BENCH_BIN:-}" ]; then
    bin="$CAIRN_BENCH_BIN"
    return
  fi
  cargo build --release --workspace --bins
  bin="$CARGO_TARGET_DIR/release/cairn"
}

# bench_cluster_start DIR PORT_BASE [tls|plaintext]: writes DIR/cluster.toml (a
# master key and an admin token beside it), starts the three nodes (their pids
# are appended to the caller's `pids` and `cairn_pids` arrays), runs `cairn init`
# and waits until every node is ready. Node i listens on PORT_BASE+i (raft),
# +1000+i (HTTP), +2000+i (gRPC).
#   tls        (the default, as deployed) TLS on every port, mutual TLS between
#              the nodes, a dev CA of the cluster's own (`cairn certs init`:
#              DIR/tls/ca.pem, a certificate and key per node)
#   plaintext  `[tls] insecure_plaintext = true` (loopback only): what TLS costs
# Sets `bench_scheme` (https or http) and `bench_curl_tls` (curl's arguments
# to trust the cluster CA; empty in plaintext) for the caller's own requests.
bench_cluster_start() {
  local dir="$1" base="$2" transport="${3:-tls}" id
  case "$transport" in
    tls) bench_scheme=https; bench_curl_tls=(--cacert "$dir/tls/ca.pem") ;;
    plaintext) bench_scheme=http; bench_curl_tls=() ;;
    *) echo "bench_cluster_start: transport is tls or plaintext, not $transport" >&2; return 2 ;;
  esac
  (umask 077; head -c 32 /dev/urandom >"$dir/master.key"; head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/admin.token")
  {
    printf 'cluster_name = "bench"\nreplication_factor = 3\nmaster_key_file = "master.key"\nadmin_token_file = "admin.token"\n'
    if [ "$transport" = tls ]; then
      printf '[tls]\nca_file = "tls/ca.pem"\n'
    else
      printf '[tls]\ninsecure_plaintext = true\n'
    fi
    printf '[[regions]]\nname = "local"\nresidency = "hard"\n'
    for id in 1 2 3; do
      printf '[[nodes]]\nid = %s\nregion = "local"\nraft_addr = "127.0.0.1:%s"\nhttp_addr = "127.0.0.1:%s"\ngrpc_addr = "127.0.0.1:%s"\ndata_dir = "node-%s"\n' \
        "$id" "$((base + id))" "$((base + 1000 + id))" "$((base + 2000 + id))" "$id"
      if [ "$transport" = tls ]; then
        printf 'tls_cert_file = "tls/node-%s.pem"\ntls_key_file = "tls/node-%s-key.pem"\n' "$id" "$id"
      fi
    done
  } >"$dir/cluster.toml"
  if [ "$transport" = tls ]; then
    "$bin" certs init --config "$dir/cluster.toml" >/dev/null
  fi
  for id in 1 2 3; do
    "$bin" node --config "$dir/cluster.toml" --id "$id" >"$dir/node-$id.log" 2>&1 &
    pids+=("$!")
    cairn_pids+=("$!")
  done
  "$bin" init --config "$dir/cluster.toml" >/dev/null
  for id in 1 2 3; do
    for _ in $(seq 1 100); do
      curl -fsS "${bench_curl_tls[@]}" "$bench_scheme://127.0.0.1:$((base + 1000 + id))/readyz" >/dev/null 2>&1 && break
      sleep 0.1
    done
  done
}

# bench_peak_rss: the peak RSS (VmHWM) of each node in `cairn_pids`, e.g. " 96MiB 97MiB 96MiB".
bench_peak_rss() {
  local p out=""
  for p in "${cairn_pids[@]}"; do
    out="$out $(awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$p/status" 2>/dev/null || echo "?")MiB"
  done
  echo "$out"
}
