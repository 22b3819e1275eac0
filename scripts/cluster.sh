#!/usr/bin/env bash
# Local cluster: scripts/cluster.sh up|down|status|reload [--config FILE]
#   up      install build deps, build, create .cluster/ (keys, data dirs, logs),
#           make the dev CA and node certificates that are missing (cairn certs
#           init), start every node of the config, init the cluster once, wait
#           until ready
#   down    SIGTERM every node and wait (data is kept)
#   status  cairn status
#   reload  SIGHUP every node: each reloads its certificate, key and CA bundle
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source scripts/env.sh

cmd="${1:-}"
shift || true
config="scripts/cluster-3.toml"
while (($#)); do
  case "$1" in
    --config) config="$2"; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
config="$(cd "$(dirname "$config")" && pwd)/$(basename "$config")"
# Keys (master key, admin token) are shared by every local cluster in .cluster/;
# pid and log files go to .cluster/ for the default config and to
# .cluster/<config name>/ for any other, so two local clusters do not collide.
state="$root/.cluster"
run="$state"
if [ "$(basename "$config")" != "cluster-3.toml" ]; then
  run="$state/$(basename "$config" .toml)"
fi
bin="$CARGO_TARGET_DIR/debug/cairn"

node_ids() { grep -E '^[[:space:]]*id[[:space:]]*=' "$config" | sed -E 's/#.*//; s/[^0-9]//g'; }
# node_field ID FIELD: a quoted field of the [[nodes]] entry with that id.
node_field() {
  awk -v id="$1" -v field="$2" '
    /^\[\[nodes\]\]/ { n = 0 }
    /^[[:space:]]*id[[:space:]]*=/ { v = $0; sub(/#.*/, "", v); gsub(/[^0-9]/, "", v); n = (v == id) }
    n && $0 ~ "^[[:space:]]*" field "[[:space:]]*=" { sub(/^[^"]*"/, ""); sub(/".*/, ""); print; exit }
  ' "$config"
}
http_addr() { node_field "$1" http_addr; }
# resolve PATH: a path of the config, resolved against the config's directory.
resolve() {
  case "$1" in
    /*) realpath -m "$1" ;;
    *) realpath -m "$(dirname "$config")/$1" ;;
  esac
}
# The config's [tls] ca_file, resolved; empty when the cluster runs in plaintext.
ca_file() {
  local f
  f="$(awk '
    /^[[:space:]]*\[/ { tls = ($0 ~ /^[[:space:]]*\[tls\]/) }
    tls && /^[[:space:]]*ca_file[[:space:]]*=/ { sub(/^[^"]*"/, ""); sub(/".*/, ""); print; exit }
  ' "$config")"
  if [ -n "$f" ]; then resolve "$f"; fi
}
ca="$(ca_file)"
# How curl reaches the nodes: https, verifying each node against the cluster CA
# (the certificates name 127.0.0.1, not localhost), unless the config is plaintext.
if [ -n "$ca" ]; then
  scheme=https
  curl_tls=(--cacert "$ca")
else
  scheme=http
  curl_tls=()
fi
pid_of() { cat "$run/node-$1.pid" 2>/dev/null || true; }
# A live (not zombie) cairn process with the recorded pid: pids are reused.
alive() {
  local p
  p="$(pid_of "$1")"
  [ -n "$p" ] && kill -0 "$p" 2>/dev/null || return 1
  [ "$(ps -p "$p" -o stat= 2>/dev/null | cut -c1)" != "Z" ] || return 1
  tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q "cairn node"
}

up() {
  scripts/setup.sh
  echo "building cairn (target dir $CARGO_TARGET_DIR)..." >&2
  cargo build --workspace --bins
  mkdir -p "$state" "$run"
  chmod 700 "$state" "$run"
  if [ ! -f "$state/master.key" ]; then
    (umask 077; head -c 32 /dev/urandom >"$state/master.key")
  fi
  if [ ! -f "$state/admin.token" ]; then
    (umask 077; head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$state/admin.token")
  fi
  certs
  for id in $(node_ids); do
    if alive "$id"; then
      echo "node $id already running (pid $(pid_of "$id"))"
      continue
    fi
    nohup "$bin" node --config "$config" --id "$id" >>"$run/node-$id.log" 2>&1 &
    echo $! >"$run/node-$id.pid"
    echo "node $id started (pid $!, log ${run#"$root"/}/node-$id.log)"
  done
  # Exactly-once bootstrap: init is refused (409) once the cluster has a membership.
  if out="$("$bin" init --config "$config" 2>&1)"; then
    echo "$out"
  elif grep -q already_initialized <<<"$out"; then
    echo "cluster already initialised"
  else
    echo "$out" >&2
    exit 1
  fi
  for id in $(node_ids); do
    addr="$(http_addr "$id")"
    for _ in $(seq 1 100); do
      curl -fsS "${curl_tls[@]}" "$scheme://$addr/readyz" >/dev/null 2>&1 && break
      alive "$id" || { echo "node $id exited; see ${run#"$root"/}/node-$id.log" >&2; tail -5 "$run/node-$id.log" >&2; exit 1; }
      sleep 0.2
    done
    curl -fsS "${curl_tls[@]}" "$scheme://$addr/readyz" >/dev/null || { echo "node $id not ready" >&2; exit 1; }
  done
  echo
  echo "cluster ready. Endpoints:"
  for id in $(node_ids); do
    echo "  node $id: $scheme://$(http_addr "$id")  grpc $(node_field "$id" grpc_addr)"
  done
  echo "admin token: ${state#"$root"/}/admin.token"
  if [ -n "$ca" ]; then
    echo "TLS on every port; CA: ${ca#"$root"/} (curl --cacert ${ca#"$root"/} $scheme://$(http_addr "$(node_ids | head -1)")/healthz)"
  else
    echo "plaintext (insecure_plaintext = true): loopback only"
  fi
}

# certs: with TLS on, runs `cairn certs init` when the CA or a node's certificate
# or key is missing (it writes only those). Without any CA file it makes a new CA
# and, with --force, new certificates for every node: ones signed by an earlier
# CA would no longer verify.
certs() {
  [ -n "$ca" ] || return 0
  local id field f missing=0 force=()
  [ -f "$ca" ] || missing=1
  for id in $(node_ids); do
    for field in tls_cert_file tls_key_file; do
      f="$(node_field "$id" "$field")"
      if [ -z "$f" ] || [ ! -f "$(resolve "$f")" ]; then missing=1; fi
    done
  done
  ((missing)) || return 0
  if [ ! -f "$ca" ] && [ ! -f "$(dirname "$ca")/ca-key.pem" ]; then
    force=(--force)
  fi
  "$bin" certs init --config "$config" "${force[@]}"
}

down() {
  for id in $(node_ids); do
    if alive "$id"; then
      kill -TERM "$(pid_of "$id")"
      for _ in $(seq 1 100); do alive "$id" || break; sleep 0.1; done
      if alive "$id"; then
        echo "node $id did not stop in 10 s; sending SIGKILL" >&2
        kill -KILL "$(pid_of "$id")" || true
      fi
      echo "node $id stopped"
    fi
    rm -f "$run/node-$id.pid"
  done
}

case "$cmd" in
  up) up ;;
  down) down ;;
  status)
    [ -x "$bin" ] || cargo build -q --workspace --bins
    "$bin" status --config "$config"
    ;;
  reload)
    for id in $(node_ids); do
      if alive "$id"; then
        kill -HUP "$(pid_of "$id")"
        echo "node $id: SIGHUP (reloads its certificate, key and CA bundle)"
      fi
    done
    ;;
  *) echo "usage: scripts/cluster.sh up|down|status|reload [--config FILE]" >&2; exit 2 ;;
esac
