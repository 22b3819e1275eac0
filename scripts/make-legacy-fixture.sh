#!/usr/bin/env bash
# Writes a legacy data-dir fixture: the data dirs of a 3-node cluster written by one
# `cairn` binary, for tests/tests/faults/legacy_fixture.rs to start with a later binary.
#
#   scripts/make-legacy-fixture.sh [CAIRN_BIN]
#
#   CAIRN_BIN     the binary to write with (argument or environment). Default: build
#                 this checkout (`cargo build --workspace --bins`) and use its cairn.
#   CAIRN_COMMIT  the commit that binary was built from. Default: the file COMMIT
#                 beside the binary, else (for the default build) this checkout's
#                 HEAD, which must then be clean.
#   FIXTURE_DIR   where the archive goes (default tests/fixtures).
#
# Out: $FIXTURE_DIR/legacy-<12 hex of the commit>.tar.gz (at most 2 MB), holding
#   cluster.toml                     the config the cluster ran with (cluster "legacy",
#                                    one hard region "local", nodes 1-3, data_dir node-N)
#   admin.token, master.key          the admin token and the current master key (v2)
#   master-v1.key                    the master key the cluster started with (retired)
#   node-1/ node-2/ node-3/          the three data dirs (RocksDB info LOG files dropped)
#   manifest.json                    everything a test checks, with the expected state
#
# The keys and the token are TEST SECRETS: fixed strings written by this script and
# committed in the archive. They protect nothing; never use them for a real cluster.
#
# What is written, through the public HTTP API (and the CLI that drives it):
#   tenants `acme` (10-year session lifetimes, so the recorded sessions outlive the
#   fixture for years) and `globex`; API keys with the scopes read / read+write /
#   manage / delete, one revoked; KV values with compare-and-set revision chains and
#   a deleted key; a signing key rotation; a tenant data key rotation (values sealed
#   under both versions); a master key rotation (tenant keys re-wrapped, v1 retired);
#   users with and without passwords, one updated (email and password), one deleted,
#   two whose emails differ only in the case of the part before '@' (from wire
#   version 3 on);
#   sessions: live and refreshed, revoked through the API, compromised by refresh
#   token reuse, and one deleted with its user. So today's three audit event kinds
#   (user.deleted, session.revoked, session.compromised) exist in the data group.
#
# The writes come in three phases, so the data dirs hold every kind of persisted
# bytes a later binary must read:
#   A  all three nodes up; then `cairn compact` on every node (snapshots + purged
#      logs keep the dirs small).
#   B  node 3 stopped (SIGTERM); more writes; nodes 1 and 2 compact again, and the
#      script waits until both have purged their logs past node 3's last entry.
#   C  more writes, which stay as log entries after that snapshot.
# Then nodes 1 and 2 stop (SIGTERM). A node started from node-3/ can only catch up by
# installing the snapshot the older binary built (phase B) and then appending its
# log entries (phase C): snapshot format, log entry encoding and stored rows are all
# read back by the binary under test.
#
# Node addresses: the config is the only source a node dials peers from
# (`raft::network::Peers` is built from `[[nodes]] raft_addr`; openraft's
# `RaftNetworkFactory::new_client` ignores the `BasicNode` it is handed). openraft's
# membership does record a `BasicNode { addr }` per voter, written by `cairn init`
# from this run's config, and those addresses stay in the log and snapshots. They
# are never dialed, so a test may rewrite the config with fresh ports: the
# manifest's `nodes` lists the addresses recorded here, and the test replaces
# exactly those strings in cluster.toml. The ports here come from 20000-29999,
# outside Linux's ephemeral range, so a test's kernel-chosen ports always differ and
# the test proves that stale membership addresses are harmless.
#
# Staged master key paths: `cairn keys rotate-master` records the absolute path of
# the staged key file in each node's local column family (so a restart reloads it).
# That path is in this script's temp dir and is gone when the fixture is unpacked
# elsewhere: a node started from the fixture logs "staged master key file does not
# load" once and goes on, because the config's master_key_file is the same key. An
# operator who moved the key file after a rotation sees the same.
#
# Needs: bash, curl, jq, tar, gzip; ports on 127.0.0.1. Takes about a minute.
# jq programs are single-quoted on purpose: their $names are jq variables.
# shellcheck disable=SC2016
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source scripts/env.sh

for tool in curl jq tar gzip; do
  command -v "$tool" >/dev/null || { echo "make-legacy-fixture: $tool is required (apt-get install $tool)" >&2; exit 1; }
done

bin="${1:-${CAIRN_BIN:-}}"
commit="${CAIRN_COMMIT:-}"
if [ -z "$bin" ]; then
  if [ -z "$commit" ]; then
    if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
      echo "make-legacy-fixture: the checkout has uncommitted changes; commit them, or pass CAIRN_BIN and CAIRN_COMMIT" >&2
      exit 1
    fi
    commit="$(git rev-parse HEAD)"
  fi
  cargo build --workspace --bins
  bin="$CARGO_TARGET_DIR/debug/cairn"
fi
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
[ -x "$bin" ] || { echo "make-legacy-fixture: $bin is not an executable" >&2; exit 1; }
if [ -z "$commit" ] && [ -f "$(dirname "$bin")/COMMIT" ]; then
  commit="$(tr -d '[:space:]' <"$(dirname "$bin")/COMMIT")"
fi
[[ "$commit" =~ ^[0-9a-f]{12,40}$ ]] || {
  echo "make-legacy-fixture: set CAIRN_COMMIT to the commit $bin was built from (got '${commit}')" >&2
  exit 1
}
short="${commit:0:12}"
out_dir="${FIXTURE_DIR:-$root/tests/fixtures}"
archive="$out_dir/legacy-$short.tar.gz"

work="$(mktemp -d)"
chmod 700 "$work"
pids=()
cleanup() {
  # Only the nodes this script started, by pid.
  for p in "${pids[@]}"; do
    if [ -n "$p" ]; then kill -KILL "$p" 2>/dev/null || true; fi
  done
  rm -rf "$work"
}
trap cleanup EXIT

log() { echo "make-legacy-fixture: $*" >&2; }
die() { log "$*"; exit 1; }

# ---- config and test secrets ------------------------------------------------------

# A port nothing listens on, from 20000-29999 (outside the kernel's ephemeral
# range, see the header) and not yet taken by this script; left in $port (not
# printed: a command substitution's subshell would forget what it took).
taken=" "
pick_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 10000))
    [[ "$taken" == *" $p "* ]] && continue
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      taken+="$p "
      port=$p
      return
    fi
  done
  die "no free port found"
}
declare -A raft_addr http_addr grpc_addr
for id in 1 2 3; do
  pick_port; raft_addr[$id]="127.0.0.1:$port"
  pick_port; http_addr[$id]="127.0.0.1:$port"
  pick_port; grpc_addr[$id]="127.0.0.1:$port"
done

# Fixed test secrets (see the header): 32-byte master keys, a 40-character token.
write_secret() { (umask 077; printf '%s' "$2" >"$work/$1"); }
write_secret master-v1.key "legacy-fixture-test-master-key-1"
write_secret master.key "legacy-fixture-test-master-key-2"
write_secret admin.token "legacy-fixture-test-admin-token-not-secret"
token="$(cat "$work/admin.token")"

# cluster.toml naming master key file $1.
write_config() {
  {
    echo "# The cluster that wrote this fixture (scripts/make-legacy-fixture.sh)."
    echo "# Tests rewrite the node addresses below with fresh ports."
    echo 'cluster_name = "legacy"'
    echo 'replication_factor = 3'
    echo "master_key_file = \"$1\""
    echo 'admin_token_file = "admin.token"'
    echo
    echo '[[regions]]'
    echo 'name = "local"'
    echo 'residency = "hard"'
    for id in 1 2 3; do
      echo
      echo '[[nodes]]'
      echo "id = $id"
      echo 'region = "local"'
      echo "raft_addr = \"${raft_addr[$id]}\""
      echo "http_addr = \"${http_addr[$id]}\""
      echo "grpc_addr = \"${grpc_addr[$id]}\""
      echo "data_dir = \"node-$id\""
    done
    # Binaries from issue 17 on serve TLS unless told otherwise; every address
    # here is loopback, and the test talks plaintext to every fixture.
    echo
    echo '[tls]'
    echo 'insecure_plaintext = true'
  } >"$work/cluster.toml"
}
write_config master-v1.key
config="$work/cluster.toml"

# ---- nodes ------------------------------------------------------------------------

start_node() {
  "$bin" node --config "$config" --id "$1" >>"$work/node-$1.out" 2>&1 &
  pids[$1]=$!
}

stop_node() {
  local id=$1 pid=${pids[$1]}
  kill -TERM "$pid"
  local rc=0
  wait "$pid" || rc=$?
  pids[id]=""
  [ "$rc" -eq 0 ] || die "node $id exited with status $rc on SIGTERM; its output: $(tail -20 "$work/node-$id.out")"
  log "node $id stopped cleanly"
}

wait_ready() {
  local id=$1
  for _ in $(seq 1 300); do
    if curl -fsS -m 2 -o /dev/null "http://${http_addr[$id]}/readyz" 2>/dev/null; then
      return
    fi
    sleep 0.1
  done
  die "node $id not ready in 30 s; its output: $(tail -20 "$work/node-$id.out")"
}

# ---- HTTP -------------------------------------------------------------------------

# call EXPECTED METHOD NODE PATH BEARER [BODY] [REQUEST_ID]: prints the JSON answer;
# dies unless the status is EXPECTED. Nothing is retried: every write must be
# acknowledged exactly once for the manifest to be right.
call() {
  local expected=$1 method=$2 node=$3 path=$4 bearer=$5 body=${6-} rid=${7-}
  local args=(-sS -m 20 -o "$work/body" -w '%{http_code}' -X "$method"
    -H "authorization: Bearer $bearer")
  [ -n "$body" ] && args+=(-H 'content-type: application/json' --data-binary "$body")
  [ -n "$rid" ] && args+=(-H "x-request-id: $rid")
  local status
  status="$(curl "${args[@]}" "http://${http_addr[$node]}$path")" || die "$method $path via node $node: curl failed"
  [ "$status" = "$expected" ] || die "$method $path via node $node: $status (expected $expected): $(cat "$work/body")"
  cat "$work/body"
}

# The manifest, built up as the writes are acknowledged.
manifest="$work/manifest.json"
jq -n '{}' >"$manifest"
# m JQ_ARGS… FILTER: updates the manifest in place.
m() {
  jq "$@" "$manifest" >"$manifest.new"
  mv "$manifest.new" "$manifest"
}

# kv_put API_KEY NODE NAME VALUE [EXPECTED_REVISION]: puts (compare-and-set if a
# revision is given; 0 = only if absent) and prints the answer (key, value, revision).
kv_put() {
  local key=$1 node=$2 name=$3 value=$4 rev=${5-} body
  body="$(jq -cn --arg v "$value" --arg r "$rev" '{value: $v} + (if $r == "" then {} else {expected_revision: ($r | tonumber)} end)')"
  local enc
  enc="$(jq -rn --arg k "$name" '$k | @uri | gsub("%2F"; "/")')"
  local answer
  answer="$(call 200 PUT "$node" "/v1/kv/$enc" "$key" "$body")"
  [ "$(jq -r .value <<<"$answer")" = "$value" ] || die "put $name: $answer"
  echo "$answer"
}

# status_of NODE GROUP: that node's status row for the group.
status_of() {
  call 200 GET "$1" /v1/cluster/status "$token" | jq -c --arg g "$2" '.groups[] | select(.group == $g)'
}

leader_of() {
  local l
  for _ in $(seq 1 100); do
    l="$(status_of "$1" "$2" | jq -r '.leader // empty')"
    [ -n "$l" ] && { echo "$l"; return; }
    sleep 0.1
  done
  die "no leader for group $2"
}

# ---- phase A: every node up -------------------------------------------------------

log "writing with $bin ($commit) in $work"
version="$("$bin" --version 2>/dev/null)" || version="unknown"
for id in 1 2 3; do start_node "$id"; done
"$bin" init --config "$config" >&2 || die "cairn init failed"
for id in 1 2 3; do wait_ready "$id"; done

m --arg c "$commit" --arg v "$version" --argjson at "$(date +%s)" '
  .format = 1
  | .note = "Written by scripts/make-legacy-fixture.sh. The master keys and the admin token are test secrets committed with this fixture; they protect nothing."
  | .cairn_commit = $c | .cairn_version = $v | .created_at = $at
  | .cluster_name = "legacy" | .region = "local"
  | .config_file = "cluster.toml" | .admin_token_file = "admin.token"'
for id in 1 2 3; do
  m --argjson id "$id" --arg r "${raft_addr[$id]}" --arg h "${http_addr[$id]}" --arg g "${grpc_addr[$id]}" \
    '.nodes += [{id: $id, raft_addr: $r, http_addr: $h, grpc_addr: $g, data_dir: "node-\($id)"}]'
done

# Tenants. acme's sessions may last the maximum (10 years, idle and absolute).
ten_years=315360000
acme="$(call 201 POST 1 /v1/admin/tenants "$token" \
  "{\"name\":\"acme\",\"session_idle_timeout_secs\":$ten_years,\"session_absolute_timeout_secs\":$ten_years}")"
globex="$(call 201 POST 2 /v1/admin/tenants "$token" '{"name":"globex"}')"
acme_id="$(jq -r .id <<<"$acme")"
globex_id="$(jq -r .id <<<"$globex")"
acme_key="$(jq -r .api_key <<<"$acme")"
globex_key="$(jq -r .api_key <<<"$globex")"
m --argjson a "$acme" --argjson g "$globex" '
  .tenants = [
    ($a | del(.api_key, .api_key_id) + {api_keys: [{id: $a.api_key_id, key: $a.api_key, scopes: ["read", "write", "manage", "delete"], revoked: false, phase: "A"}], kv: [], kv_deleted: [], users: [], sessions: [], audit: []}),
    ($g | del(.api_key, .api_key_id) + {api_keys: [{id: $g.api_key_id, key: $g.api_key, scopes: ["read", "write", "manage", "delete"], revoked: false, phase: "A"}], kv: [], kv_deleted: [], users: [], sessions: [], audit: []})
  ]'
# t NAME: the jq path of tenant NAME in the manifest.
t() { echo ".tenants[] | select(.name == \"$1\")"; }

# add_api_key TENANT_NAME TENANT_ID PHASE SCOPE…: issues a key; prints its id.
add_api_key() {
  local name=$1 id=$2 phase=$3
  shift 3
  local scopes answer
  scopes="$(printf '%s\n' "$@" | jq -R . | jq -cs .)"
  answer="$(call 201 POST 1 "/v1/admin/tenants/$id/api-keys" "$token" "{\"scopes\":$scopes}")"
  m --argjson k "$answer" --arg p "$phase" "($(t "$name")).api_keys += [{id: \$k.id, key: \$k.api_key, scopes: \$k.scopes, revoked: false, phase: \$p}]"
  jq -r .id <<<"$answer"
}
add_api_key acme "$acme_id" A read >/dev/null
add_api_key acme "$acme_id" A read write >/dev/null
add_api_key acme "$acme_id" A manage >/dev/null
add_api_key acme "$acme_id" A delete >/dev/null
revoked_a="$(add_api_key acme "$acme_id" A read write)"
call 204 DELETE 2 "/v1/admin/tenants/$acme_id/api-keys/$revoked_a" "$token" >/dev/null
m --arg k "$revoked_a" "($(t acme)).api_keys |= map(if .id == \$k then .revoked = true | .revoked_phase = \"A\" else . end)"
# Revoked in phase B (node 3 learns it from the snapshot).
revoked_b="$(add_api_key acme "$acme_id" A read)"

# record_kv TENANT PHASE ANSWER [SEALED_UNDER]: the key's expected value and revision.
record_kv() {
  m --arg p "$2" --argjson e "$3" --arg s "${4-}" \
    "($(t "$1")).kv |= (map(select(.key != \$e.key)) + [\$e + {phase: \$p} + (if \$s == \"\" then {} else {data_key_version: (\$s | tonumber)} end)])"
}

# put_rec TENANT PHASE DATA_KEY_VERSION API_KEY NODE NAME VALUE [REVISION]: kv_put,
# then record_kv (assigned first, so a failed put stops the script).
put_rec() {
  local tenant=$1 phase=$2 version=$3 answer
  shift 3
  answer="$(kv_put "$@")"
  record_kv "$tenant" "$phase" "$answer" "$version"
}

# KV under data key version 1.
put_rec acme A 1 "$acme_key" 1 color blue
put_rec acme A 1 "$acme_key" 2 config/feature-flags '{"dark_mode":true,"beta":["search","export"]}'
put_rec acme A 1 "$acme_key" 3 "unicode/clé" 'Grüße, 世界 🌍 — «quotes» and \backslash'
put_rec acme A 1 "$acme_key" 1 empty ''
put_rec acme A 1 "$acme_key" 1 big "$(head -c 3000 /dev/zero | tr '\0' 'x')"
# A compare-and-set chain: create only if absent (revision 0), then twice at the
# current revision; a stale revision is refused and changes nothing.
cas="$(kv_put "$acme_key" 1 counter 1 0)"
cas="$(kv_put "$acme_key" 2 counter 2 "$(jq .revision <<<"$cas")")"
stale="$(jq .revision <<<"$cas")"
cas="$(kv_put "$acme_key" 3 counter 3 "$stale")"
call 412 PUT 1 /v1/kv/counter "$acme_key" "{\"value\":\"lost\",\"expected_revision\":$stale}" >/dev/null
record_kv acme A "$cas" 1
kv_put "$acme_key" 1 to-delete doomed >/dev/null
call 204 DELETE 2 /v1/kv/to-delete "$acme_key" >/dev/null
m "($(t acme)).kv_deleted += [\"to-delete\"]"
# The same key name in another tenant holds another value.
put_rec globex A 1 "$globex_key" 2 color green

# Users and sessions. Passwords are test data.
# add_user TENANT KEY PHASE EMAIL [PASSWORD]: prints the user id.
add_user() {
  local tenant=$1 key=$2 phase=$3 email=$4 password=${5-} body answer
  if [ -n "$password" ]; then
    body="$(jq -cn --arg e "$email" --arg p "$password" '{email: $e, password: $p}')"
  else
    body="$(jq -cn --arg e "$email" '{email: $e}')"
  fi
  answer="$(call 201 POST 1 /v1/users "$key" "$body")"
  m --argjson u "$answer" --arg pw "$password" --arg p "$phase" \
    "($(t "$tenant")).users += [\$u + {password: (if \$pw == \"\" then null else \$pw end), state: \"active\", phase: \$p}]"
  jq -r .id <<<"$answer"
}
# sign_in TENANT KEY NODE EMAIL PASSWORD PHASE: prints the session id; records the
# session (active) and its refresh token.
sign_in() {
  local tenant=$1 key=$2 node=$3 email=$4 password=$5 phase=$6 answer
  answer="$(call 201 POST "$node" /v1/sessions "$key" "$(jq -cn --arg e "$email" --arg p "$password" '{email: $e, password: $p}')")"
  m --argjson s "$answer" --arg p "$phase" \
    "($(t "$tenant")).sessions += [{id: \$s.session_id, user_id: \$s.user_id, state: \"active\", phase: \$p, refresh_tokens: [\$s.refresh_token]}]"
  jq -r .session_id <<<"$answer"
}
# refresh TENANT KEY NODE SESSION_ID: rotates the session's newest recorded token.
refresh() {
  local tenant=$1 key=$2 node=$3 sid=$4 current answer
  current="$(jq -r --arg s "$sid" "$(t "$tenant") | .sessions[] | select(.id == \$s) | .refresh_tokens[-1]" "$manifest")"
  answer="$(call 200 POST "$node" /v1/sessions/refresh "$key" "$(jq -cn --arg r "$current" '{refresh_token: $r}')")"
  [ "$(jq -r .session_id <<<"$answer")" = "$sid" ] || die "refresh of $sid: $answer"
  m --arg s "$sid" --arg r "$(jq -r .refresh_token <<<"$answer")" \
    "($(t "$tenant")).sessions |= map(if .id == \$s then .refresh_tokens += [\$r] else . end)"
}
set_session() {
  m --arg s "$2" --arg st "$3" "($(t "$1")).sessions |= map(if .id == \$s then .state = \$st else . end)"
}

alice="$(add_user acme "$acme_key" A 'Alice@Example.COM' 'alice-password-1')"
bob="$(add_user acme "$acme_key" A 'bob@example.com' 'bob-password-1')"
carol="$(add_user acme "$acme_key" A 'carol@example.com' 'carol-password-1')"
add_user acme "$acme_key" A 'dave@example.com' >/dev/null
add_user globex "$globex_key" A 'alice@example.com' 'globex-alice-password' >/dev/null
# Two users whose emails differed only in the case of the part before '@', which
# the binaries before the email identity rules (trim, NFC, Unicode lowercase, UTS-46
# domain) kept apart. Under those rules they collide: both keep working by id, and a
# lookup or sign-in by that email is 409 email_ambiguous (marked in the manifest).
for ann in 'ann@example.com:ann-password-1' 'Ann@Example.com:ann-password-2'; do
  ann_id="$(add_user acme "$acme_key" A "${ann%%:*}" "${ann#*:}")"
  m --arg u "$ann_id" "($(t acme)).users |= map(if .id == \$u then .email_ambiguous = true else . end)"
done

# alice: a live session (refreshed in every phase) and one revoked through the API.
live="$(sign_in acme "$acme_key" 1 'Alice@Example.COM' 'alice-password-1' A)"
refresh acme "$acme_key" 2 "$live"
revoked="$(sign_in acme "$acme_key" 2 'Alice@Example.COM' 'alice-password-1' A)"
# bob: a session compromised by refresh token reuse (generation 0 presented after
# two rotations).
compromised="$(sign_in acme "$acme_key" 3 'bob@example.com' 'bob-password-1' A)"
refresh acme "$acme_key" 1 "$compromised"
refresh acme "$acme_key" 1 "$compromised"
# carol: a session deleted with its user.
doomed="$(sign_in acme "$acme_key" 1 'carol@example.com' 'carol-password-1' A)"

# Signing key rotation: the sessions above were signed with the first key.
jwks="$(call 200 POST 1 "/v1/admin/tenants/$acme_id/signing-keys/rotate" "$token")"
[ "$(jq '.keys | length' <<<"$jwks")" -eq 2 ] || die "signing key rotation: $jwks"
m --argjson j "$jwks" "($(t acme)).jwks = \$j.keys"
m --argjson j "$(call 200 GET 1 "/v1/tenants/$globex_id/jwks.json" "$token")" "($(t globex)).jwks = \$j.keys"
refresh acme "$acme_key" 3 "$live"

# Tenant data key rotation: what is written from now on is sealed under version 2.
rotated="$(call 200 POST 2 /v1/admin/keys/rotate "$token" '{"tenant":"acme"}')"
[ "$(jq .key_version <<<"$rotated")" -eq 2 ] || die "data key rotation: $rotated"
put_rec acme A 2 "$acme_key" 2 sealed-v2 'written after the data key rotation'
put_rec acme A 2 "$acme_key" 3 counter 4 "$(jq -r --arg k counter "$(t acme) | .kv[] | select(.key == \$k) | .revision" "$manifest")"

# The three audit event kinds of today.
call 204 POST 1 "/v1/sessions/$revoked/revoke" "$acme_key" >/dev/null
set_session acme "$revoked" revoked
m --arg u "$alice" --arg s "$revoked" "($(t acme)).audit += [{action: \"session.revoked\", user_id: \$u, session_id: \$s, request_id: null}]"
old="$(jq -r --arg s "$compromised" "$(t acme) | .sessions[] | select(.id == \$s) | .refresh_tokens[0]" "$manifest")"
reuse="$(call 401 POST 2 /v1/sessions/refresh "$acme_key" "$(jq -cn --arg r "$old" '{refresh_token: $r}')" legacy-fixture-reuse)"
jq -e '.code == "refresh_token_reused"' <<<"$reuse" >/dev/null || die "refresh token reuse was not detected: $reuse"
set_session acme "$compromised" compromised
m --arg u "$bob" --arg s "$compromised" "($(t acme)).audit += [{action: \"session.compromised\", user_id: \$u, session_id: \$s, request_id: \"legacy-fixture-reuse\"}]"
call 204 DELETE 3 "/v1/users/$carol" "$acme_key" >/dev/null
m --arg u "$carol" "($(t acme)).users |= map(if .id == \$u then .state = \"deleted\" else . end)"
set_session acme "$doomed" deleted
m --arg u "$carol" "($(t acme)).audit += [{action: \"user.deleted\", user_id: \$u, session_id: null, request_id: null}]"

# bob changes his email and password (his record is now sealed under version 2).
# After his session's reuse: from wire version 3 on, a new password ends a user's
# sessions.
bob_after="$(call 200 PATCH 2 "/v1/users/$bob" "$acme_key" '{"email":"robert@example.com","password":"bob-password-2"}')"
m --argjson u "$bob_after" "($(t acme)).users |= map(if .id == \$u.id then . + \$u + {password: \"bob-password-2\", former_email: \"bob@example.com\", former_password: \"bob-password-1\"} else . end)"

# Master key rotation: every node stages master.key, then the cluster re-wraps the
# tenant keys under it; the config names it from now on.
"$bin" keys rotate-master --config "$config" --new-key-file "$work/master.key" >&2 || die "master key rotation failed"
write_config master.key
keys="$(call 200 GET 1 /v1/admin/keys "$token")"
[ "$(jq .master_key.version <<<"$keys")" -eq 2 ] || die "master key rotation: $keys"
m --argjson k "$keys" '.master_key = {file: "master.key", version: $k.master_key.version, fingerprint: $k.master_key.fingerprint}
  | .retired_master_keys = [$k.retired_master_keys[] | {version, fingerprint, file: "master-v\(.version).key"}]
  | .tenants |= map(. as $t | . + {data_key_version: ($k.tenants[] | select(.id == $t.id) | .key_version)})'

"$bin" compact --config "$config" >&2 || die "cairn compact failed"

# ---- phase B: node 3 down ---------------------------------------------------------

declare -A node3_last
for g in meta local; do
  node3_last[$g]="$(status_of 3 "$g" | jq .last_log_index)"
done
stop_node 3
m --argjson meta "${node3_last[meta]}" --argjson data "${node3_last[local]}" \
  '.behind = {node: 3, last_log_index: {meta: $meta, local: $data}, note: "stopped before phases B and C: it catches up by installing the snapshot of phase B, then the log entries of phase C"}'

call 204 DELETE 1 "/v1/admin/tenants/$acme_id/api-keys/$revoked_b" "$token" >/dev/null
m --arg k "$revoked_b" "($(t acme)).api_keys |= map(if .id == \$k then .revoked = true | .revoked_phase = \"B\" else . end)"
add_api_key acme "$acme_id" B write >/dev/null
put_rec acme B 2 "$acme_key" 1 phase-b/in-snapshot 'only in the snapshot node 3 installs'
add_user acme "$acme_key" B 'frank@example.com' 'frank-password-1' >/dev/null
refresh acme "$acme_key" 2 "$live"

# Compact nodes 1 and 2 until both logs start past node 3's last entry. openraft
# purges behind the snapshot once no replication stream reads that range (the
# leader's stream to node 3 retries every backoff period), so wait for it.
for id in 1 2; do call 200 POST "$id" /v1/cluster/compact "$token" >/dev/null; done
for g in meta local; do
  for id in 1 2; do
    purged=0
    for _ in $(seq 1 300); do
      purged="$(status_of "$id" "$g" | jq '.purged_index // 0')"
      [ "$purged" -gt "${node3_last[$g]}" ] && break
      sleep 0.1
    done
    [ "$purged" -gt "${node3_last[$g]}" ] \
      || die "node $id never purged group $g past node 3's last entry ${node3_last[$g]} (purged $purged)"
  done
done

# ---- phase C: log entries after the snapshot --------------------------------------

add_api_key acme "$acme_id" C read >/dev/null
put_rec acme C 2 "$acme_key" 2 phase-c/in-log 'only in the log after the snapshot'
put_rec acme C 2 "$acme_key" 1 color blue-in-log "$(jq -r --arg k color "$(t acme) | .kv[] | select(.key == \$k) | .revision" "$manifest")"
add_user acme "$acme_key" C 'grace@example.com' 'grace-password-1' >/dev/null
sign_in acme "$acme_key" 2 'grace@example.com' 'grace-password-1' C >/dev/null
refresh acme "$acme_key" 1 "$live"

# What node 3 must reach, as the leader of each group committed it.
for g in meta local; do
  leader="$(leader_of 1 "$g")"
  m --arg g "$g" --argjson i "$(status_of "$leader" "$g" | jq .commit_index)" '.commit_index[$g] = $i'
done

stop_node 1
stop_node 2

# ---- pack -------------------------------------------------------------------------

# Sanity: the expected state the test relies on.
jq -e '
  (.tenants | length) == 2
  and ([.tenants[].sessions[].state] | sort | unique) == ["active", "compromised", "deleted", "revoked"]
  and ([.tenants[].audit[].action] | sort) == ["session.compromised", "session.revoked", "user.deleted"]
  and ([.tenants[].api_keys[] | select(.revoked)] | length) == 2' "$manifest" >/dev/null \
  || die "the manifest is missing expected state: $(cat "$manifest")"
jq . "$manifest" >"$manifest.new" && mv "$manifest.new" "$manifest"

# RocksDB's info logs (LOG, LOG.old.*) are diagnostics; the WAL (*.log) is data.
find "$work"/node-{1,2,3} -type f \( -name LOG -o -name 'LOG.old.*' \) -delete
mkdir -p "$out_dir"
# A stable archive: sorted names, no owners, no timestamps.
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$work" -cf - \
    cluster.toml admin.token master.key master-v1.key manifest.json node-1 node-2 node-3 \
  | gzip -9 -n >"$archive.new"
size="$(stat -c %s "$archive.new")"
[ "$size" -le 2097152 ] || { rm -f "$archive.new"; die "the archive is $size bytes, over 2 MB"; }
mv "$archive.new" "$archive"
log "wrote ${archive#"$root"/} ($size bytes)"
