#!/usr/bin/env bash
# Measures client-visible leader failover on the local cluster (scripts/cluster.sh up):
# SIGKILL the data group's leader, then time until a write through a survivor is
# acknowledged. Repeats N times (default 5), restarting the killed node in between.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source scripts/env.sh
runs="${1:-5}"
config="scripts/cluster-3.toml"
bin="$CARGO_TARGET_DIR/debug/cairn"
token="$(cat .cluster/admin.token)"
# The tenant must exist (201 created, or 409 already there).
curl -sS -o /dev/null -X POST localhost:8101/v1/admin/tenants \
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
  until curl -fsS -m 2 -X PUT "localhost:$port/v1/kv/failover-$run" \
      -H "Authorization: Bearer $token" -H "X-Tenant: failover" \
      -d '{"value": "x"}' >/dev/null 2>&1; do :; done
  end=$(date +%s.%N)
  printf 'run %d: killed leader node %d, write via node %d acknowledged after %.0f ms\n' \
    "$run" "$leader" "$survivor" "$(echo "($end - $start) * 1000" | bc)"
  scripts/cluster.sh up >/dev/null
done
