#!/usr/bin/env bash
# Measures client-visible leader failover on the local cluster (scripts/cluster.sh up):
# SIGKILL the data group's leader, then time until a write through a survivor is
# acknowledged. Repeats N times (default 5), restarting the killed node in between.
# The local cluster runs TLS on every port: the nodes elect the new leader over
# mutual TLS (each peer connection authenticated by its certificate), and every
# write attempt is a new HTTPS connection verified against .cluster/tls/ca.pem
# (its handshake is part of the time measured).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source scripts/env.sh
runs="${1:-5}"
config="scripts/cluster-3.toml"
bin="$CARGO_TARGET_DIR/debug/cairn"
ca=".cluster/tls/ca.pem"
if ! grep -Eq '^[[:space:]]*ca_file[[:space:]]*=' "$config" || [ ! -f "$ca" ]; then
  echo "$config must run with TLS and $ca must exist: scripts/cluster.sh up first" >&2
  exit 1
fi
token="$(cat .cluster/admin.token)"
# The tenant must exist (201 created, or 409 already there).
curl -sS --cacert "$ca" -o /dev/null -X POST https://127.0.0.1:8101/v1/admin/tenants \
  -H "Authorization: Bearer $token" -d '{"name":"failover"}'

for run in $(seq 1 "$runs"); do
  leader="$("$bin" status --config "$config" --json | python3 -c '
import json, sys
for node in json.load(sys.stdin):
    for g in node.get("groups", []):
        if g["group"] != "meta" and g["role"] == "leader":
            print(node["id"]); sys.exit(0)
sys.exit(1)')"
  survivor=$(( leader % 3 + 1 ))
  port=$(( 8100 + survivor ))
  start=$(date +%s.%N)
  kill -KILL "$(cat .cluster/node-$leader.pid)"
  until curl -fsS --cacert "$ca" -m 2 -X PUT "https://127.0.0.1:$port/v1/kv/failover-$run" \
      -H "Authorization: Bearer $token" -H "X-Tenant: failover" \
      -d '{"value": "x"}' >/dev/null 2>&1; do :; done
  end=$(date +%s.%N)
  printf 'run %d: killed leader node %d, write via node %d (https, mTLS between nodes) acknowledged after %.0f ms\n' \
    "$run" "$leader" "$survivor" "$(echo "($end - $start) * 1000" | bc)"
  scripts/cluster.sh up >"$root/.cluster/measure-failover-up.log" 2>&1 ||
    { echo "restarting node $leader failed:" >&2; tail -5 "$root/.cluster/measure-failover-up.log" >&2; exit 1; }
done
