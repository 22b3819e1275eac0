//! A data dir written by an older `main` still starts and serves. Each
//! `tests/fixtures/legacy-<commit>.tar.gz` holds the three data dirs, the config, the
//! test secrets and a manifest of a cluster that `scripts/make-legacy-fixture.sh`
//! wrote with that commit's binary. Here the nodes start from those dirs with the
//! binary under test, on fresh ports, and everything the manifest records must read
//! back: tenants and key versions, every KV value and revision (over HTTP and gRPC),
//! API keys by scope and revocation, users, sessions in every state, refresh
//! rotation with lost-answer retry and reuse detection. Node 3 was stopped early,
//! so it catches up by installing the older binary's snapshot and appending its log
//! entries. New writes then succeed, and survive a restart. No other commit is built.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use cairn_tests::proto::GetRequest;
use cairn_tests::TestCluster;
use reqwest::Method;
use serde_json::{json, Value};
use tokio::time::Instant;

/// The fixtures, oldest name first (`CARGO_MANIFEST_DIR` is the `tests` crate,
/// whichever test binary this file is compiled into).
fn fixtures() -> Vec<PathBuf> {
    // The runtime value (cargo sets it for test runs), as in the golden tests.
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("fixtures");
    let entries =
        std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("legacy-") && n.ends_with(".tar.gz"))
        })
        .collect();
    found.sort();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_data_dirs_start_serve_and_take_new_writes() {
    let fixtures = fixtures();
    assert!(
        !fixtures.is_empty(),
        "no tests/fixtures/legacy-*.tar.gz (scripts/make-legacy-fixture.sh writes one)"
    );
    for archive in &fixtures {
        let mut legacy = Legacy::start(archive).await;
        legacy.check().await;
    }
}

/// One answer: status and JSON body, with what was asked for the messages.
struct Answer {
    what: String,
    status: u16,
    body: Value,
}

impl Answer {
    /// Asserts the status; returns the body.
    #[track_caller]
    fn expect(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "{}: {}", self.what, self.body);
        &self.body
    }

    /// Asserts a problem document with this status and code.
    #[track_caller]
    fn problem(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status, self.body["code"].as_str()),
            (status, Some(code)),
            "{}: {}",
            self.what,
            self.body
        );
    }
}

/// `v[field]` as a string.
#[track_caller]
fn text<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("no string {field:?} in {v}"))
}

#[track_caller]
fn number(v: &Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("no number {field:?} in {v}"))
}

#[track_caller]
fn list<'a>(v: &'a Value, field: &str) -> &'a [Value] {
    v[field]
        .as_array()
        .unwrap_or_else(|| panic!("no array {field:?} in {v}"))
}

fn has_scope(key: &Value, scope: &str) -> bool {
    list(key, "scopes").iter().any(|s| s == scope)
}

/// Nodes 1-3 in turn.
fn node(i: usize) -> u64 {
    u64::try_from(i % 3).expect("small") + 1
}

/// A running cluster on a fixture's data dirs, and what its manifest expects.
struct Legacy {
    c: TestCluster,
    manifest: Value,
    /// The fixture's admin token (its own file, not the harness's).
    token: String,
    /// The archive's file name, for messages.
    name: String,
}

impl Legacy {
    /// Unpacks `archive` into a fresh cluster dir, points its config at fresh
    /// ports, starts the three nodes and waits until each is ready.
    async fn start(archive: &Path) -> Self {
        let name = archive
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("fixture")
            .to_owned();
        // The harness picks free ports and writes a config and secrets of its own;
        // the archive's files replace them. The fixture's config predates TLS, so
        // the cluster runs (and the harness talks to it) in loopback plaintext.
        let c = TestCluster::new(3, "[tls]\ninsecure_plaintext = true\n");
        let dir = c.dir.path().to_path_buf();
        let status = Command::new("tar")
            .arg("-xzf")
            .arg(archive)
            .arg("-C")
            .arg(&dir)
            .status()
            .expect("run tar");
        assert!(status.success(), "unpacking {name}: {status}");
        let manifest: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join("manifest.json")).expect("manifest.json"),
        )
        .expect("manifest.json is JSON");
        assert_eq!(
            manifest["format"], 1,
            "{name}: a manifest format this test reads"
        );

        // Key files must be 0600 (git and archives need not keep modes), data dirs 0700.
        let mut secrets = vec![
            text(&manifest, "admin_token_file").to_owned(),
            text(&manifest["master_key"], "file").to_owned(),
        ];
        secrets.extend(
            list(&manifest, "retired_master_keys")
                .iter()
                .map(|k| text(k, "file").to_owned()),
        );
        for f in &secrets {
            std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o600))
                .unwrap_or_else(|e| panic!("{name}: chmod {f}: {e}"));
        }
        for n in list(&manifest, "nodes") {
            std::fs::set_permissions(
                dir.join(text(n, "data_dir")),
                std::fs::Permissions::from_mode(0o700),
            )
            .expect("chmod data dir");
        }
        let token = std::fs::read_to_string(dir.join(text(&manifest, "admin_token_file")))
            .expect("admin token")
            .trim()
            .to_owned();

        // Fresh ports. The membership in the logs and snapshots still names the
        // addresses the fixture was written with; peers are dialed from the config
        // only, so only the config changes. The fixture's ports lie outside the
        // kernel's ephemeral range the harness draws from: they always differ.
        let config_path = dir.join(text(&manifest, "config_file"));
        let mut config = std::fs::read_to_string(&config_path).expect("fixture config");
        for recorded in list(&manifest, "nodes") {
            let id = number(recorded, "id");
            let fresh = c.nodes().iter().find(|n| n.id == id).expect("node id");
            for (field, new) in [
                ("raft_addr", &fresh.raft),
                ("http_addr", &fresh.http),
                ("grpc_addr", &fresh.grpc),
            ] {
                let old = format!("\"{}\"", text(recorded, field));
                assert_ne!(old, format!("\"{new}\""), "{name}: a fresh port");
                assert_eq!(
                    config.matches(&old).count(),
                    1,
                    "{name}: node {id}'s {field} {old} appears once in the config"
                );
                config = config.replace(&old, &format!("\"{new}\""));
            }
        }
        assert_eq!(config_path, c.config, "the harness runs this config");
        // Configs from before issue 17 name no [tls]: today's must say plaintext
        // in so many words (every address here is loopback). Later fixtures say so.
        if !config.contains("\n[tls]\n") {
            config.push_str("\n[tls]\ninsecure_plaintext = true\n");
        }
        std::fs::write(&config_path, config).expect("write config");

        let mut legacy = Self {
            c,
            manifest,
            token,
            name,
        };
        legacy.c.start_all();
        for id in legacy.c.ids() {
            legacy.c.wait_ready(id).await;
        }
        legacy
    }

    async fn check(&mut self) {
        self.node_behind_catches_up_by_snapshot().await;
        self.admin_sees_tenants_and_key_versions().await;
        self.every_kv_value_reads_back().await;
        self.api_keys_keep_their_scopes_and_revocations().await;
        self.users_read_back().await;
        self.sessions_keep_their_state().await;
        self.passwords_still_sign_in().await;
        self.emails_follow_the_identity_rules().await;
        self.new_writes_succeed().await;
        self.restart_keeps_old_and_new_data().await;
    }

    fn tenants(&self) -> &[Value] {
        list(&self.manifest, "tenants")
    }

    fn tenant(&self, name: &str) -> &Value {
        self.tenants()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("{}: no tenant {name} in the manifest", self.name))
    }

    /// The tenant's first API key (all scopes).
    fn key_of(tenant: &Value) -> &str {
        let k = &list(tenant, "api_keys")[0];
        assert!(
            ["read", "write", "manage", "delete"]
                .iter()
                .all(|s| has_scope(k, s)),
            "the first key has every scope: {k}"
        );
        text(k, "key")
    }

    /// `method path` through `node` with `bearer`. Reads are retried while the
    /// cluster answers 503 (a node still catching up); writes never are.
    async fn call(
        &self,
        node: u64,
        method: Method,
        path: &str,
        bearer: &str,
        body: Option<&Value>,
    ) -> Answer {
        let what = format!("{}: {method} {path} via node {node}", self.name);
        let read = method == Method::GET || path == "/v1/tokens/introspect";
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut rb = self
                .c
                .client()
                .request(method.clone(), self.c.url(node, path))
                .bearer_auth(bearer);
            if let Some(b) = body {
                rb = rb.json(b);
            }
            let r = rb.send().await.unwrap_or_else(|e| panic!("{what}: {e}"));
            let status = r.status().as_u16();
            let raw = r
                .text()
                .await
                .unwrap_or_else(|e| panic!("{what}: reading the body: {e}"));
            if status == 503 && read && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            return Answer {
                what,
                status,
                body: serde_json::from_str(&raw).unwrap_or(Value::Null),
            };
        }
    }

    async fn admin(&self, node: u64, method: Method, path: &str, body: Option<&Value>) -> Answer {
        self.call(node, method, path, &self.token, body).await
    }

    async fn refresh(&self, node: u64, key: &str, refresh_token: &str) -> Answer {
        let body = json!({ "refresh_token": refresh_token });
        self.call(node, Method::POST, "/v1/sessions/refresh", key, Some(&body))
            .await
    }

    async fn introspect(&self, node: u64, key: &str, token: &str) -> Value {
        let body = json!({ "token": token });
        self.call(
            node,
            Method::POST,
            "/v1/tokens/introspect",
            key,
            Some(&body),
        )
        .await
        .expect(200)
        .clone()
    }

    async fn sign_in(&self, node: u64, key: &str, email: &str, password: &str) -> Answer {
        let body = json!({ "email": email, "password": password });
        self.call(node, Method::POST, "/v1/sessions", key, Some(&body))
            .await
    }

    async fn group_status(&self, node: u64, group: &str) -> Value {
        let s = self
            .admin(node, Method::GET, "/v1/cluster/status", None)
            .await;
        list(s.expect(200), "groups")
            .iter()
            .find(|g| g["group"] == group)
            .cloned()
            .unwrap_or_else(|| panic!("{}: node {node} has no group {group}", self.name))
    }

    /// The node stopped before phases B and C has only its own older log: the
    /// leader's log starts past it, so it must install the snapshot the older
    /// binary built, then append the later log entries.
    async fn node_behind_catches_up_by_snapshot(&self) {
        let behind = &self.manifest["behind"];
        let id = number(behind, "node");
        for group in ["meta", text(&self.manifest, "region")] {
            let last = number(&behind["last_log_index"], group);
            let target = number(&self.manifest["commit_index"], group);
            assert!(
                target > last,
                "{}: the fixture left node {id} behind in {group}",
                self.name
            );
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let s = self.group_status(id, group).await;
                if s["applied_index"].as_u64().unwrap_or(0) >= target {
                    assert!(
                        s["snapshot_index"].as_u64().unwrap_or(0) > last,
                        "{}: node {id} caught up in {group} by installing a snapshot: {s}",
                        self.name
                    );
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{}: node {id} did not catch up in {group} to {target}: {s}",
                    self.name
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    async fn admin_sees_tenants_and_key_versions(&self) {
        const FIELDS: [&str; 6] = [
            "id",
            "name",
            "region",
            "created_at",
            "session_idle_timeout_secs",
            "session_absolute_timeout_secs",
        ];
        let view = |t: &Value| -> Vec<Value> { FIELDS.iter().map(|f| t[*f].clone()).collect() };
        let mut expected: Vec<Vec<Value>> = self.tenants().iter().map(view).collect();
        expected.sort_by_key(|v| v[1].to_string());
        assert_eq!(expected.len(), 2, "{}: two tenants", self.name);

        // The fixture's admin token is the one in force (not the harness's).
        assert_ne!(self.token, cairn_tests::TOKEN);
        self.call(
            1,
            Method::GET,
            "/v1/admin/tenants",
            cairn_tests::TOKEN,
            None,
        )
        .await
        .problem(401, "unauthorized");
        for id in self.c.ids() {
            let a = self.admin(id, Method::GET, "/v1/admin/tenants", None).await;
            let mut listed: Vec<Vec<Value>> =
                list(a.expect(200), "tenants").iter().map(view).collect();
            listed.sort_by_key(|v| v[1].to_string());
            assert_eq!(listed, expected, "{}: tenants via node {id}", self.name);
        }
        for t in self.tenants() {
            let path = format!("/v1/admin/tenants/{}", text(t, "id"));
            let a = self.admin(3, Method::GET, &path, None).await;
            assert_eq!(view(a.expect(200)), view(t), "{}", self.name);
            // Signing keys, public: both of a rotated tenant's keys still published.
            let jwks = self
                .call(
                    3,
                    Method::GET,
                    &format!("/v1/tenants/{}/jwks.json", text(t, "id")),
                    "",
                    None,
                )
                .await;
            assert_eq!(
                jwks.expect(200)["keys"],
                t["jwks"],
                "{}: JWKS of {}",
                self.name,
                t["name"]
            );
        }

        // Master key version 2 (re-wrapped from the retired version 1), and each
        // tenant's data key version.
        let keys = self.admin(3, Method::GET, "/v1/admin/keys", None).await;
        let keys = keys.expect(200);
        let master = &self.manifest["master_key"];
        assert_eq!(
            keys["master_key"]["version"], master["version"],
            "{}: {keys}",
            self.name
        );
        assert_eq!(
            keys["master_key"]["fingerprint"], master["fingerprint"],
            "{}: {keys}",
            self.name
        );
        let retired: Vec<&Value> = list(keys, "retired_master_keys")
            .iter()
            .map(|k| &k["fingerprint"])
            .collect();
        let expected_retired: Vec<&Value> = list(&self.manifest, "retired_master_keys")
            .iter()
            .map(|k| &k["fingerprint"])
            .collect();
        assert_eq!(retired, expected_retired, "{}: {keys}", self.name);
        for t in self.tenants() {
            let shown = list(keys, "tenants")
                .iter()
                .find(|k| k["id"] == t["id"])
                .unwrap_or_else(|| panic!("{}: {} in {keys}", self.name, t["name"]));
            assert_eq!(
                shown["key_version"], t["data_key_version"],
                "{}: {keys}",
                self.name
            );
        }
    }

    async fn every_kv_value_reads_back(&self) {
        for t in self.tenants() {
            let key = Self::key_of(t);
            let mut grpc = self.c.grpc(3).await;
            for (i, e) in list(t, "kv").iter().enumerate() {
                let path = format!("/v1/kv/{}", text(e, "key"));
                for via in self.c.ids() {
                    let got = self.call(via, Method::GET, &path, key, None).await;
                    let got = got.expect(200);
                    assert_eq!(
                        (&got["key"], &got["value"], &got["revision"]),
                        (&e["key"], &e["value"], &e["revision"]),
                        "{}: {} via node {via}",
                        self.name,
                        t["name"]
                    );
                }
                // The operator reads the same for the tenant it names.
                let got = self
                    .c
                    .client()
                    .get(self.c.url(node(i), &path))
                    .bearer_auth(&self.token)
                    .header("x-tenant", text(t, "name"))
                    .send()
                    .await
                    .expect("operator get");
                assert_eq!(got.status(), 200, "{}: operator {path}", self.name);
                let got: Value = got.json().await.expect("json");
                assert_eq!(got["value"], e["value"], "{}: operator {path}", self.name);
                // And gRPC.
                let mut req = tonic::Request::new(GetRequest {
                    key: text(e, "key").to_owned(),
                });
                req.metadata_mut().insert(
                    "authorization",
                    format!("Bearer {key}").parse().expect("ascii"),
                );
                let got = grpc.get(req).await.expect("grpc get").into_inner();
                assert_eq!(
                    (got.value.as_str(), got.revision),
                    (text(e, "value"), number(e, "revision")),
                    "{}: gRPC {path}",
                    self.name
                );
            }
            for gone in list(t, "kv_deleted") {
                let path = format!("/v1/kv/{}", gone.as_str().expect("key name"));
                self.call(3, Method::GET, &path, key, None)
                    .await
                    .problem(404, "key_not_found");
            }
        }
    }

    async fn api_keys_keep_their_scopes_and_revocations(&self) {
        let revoked = self
            .tenants()
            .iter()
            .flat_map(|t| list(t, "api_keys"))
            .filter(|k| k["revoked"] == true)
            .count();
        assert!(
            revoked > 0,
            "{}: the fixture has revoked API keys",
            self.name
        );
        for t in self.tenants() {
            let keys = list(t, "api_keys");
            for (i, k) in keys.iter().enumerate() {
                let secret = text(k, "key");
                let probe = format!("/v1/kv/probe/{}", text(k, "id"));
                if k["revoked"] == true {
                    for via in self.c.ids() {
                        self.call(via, Method::GET, "/v1/kv/color", secret, None)
                            .await
                            .problem(401, "unauthorized");
                    }
                    continue;
                }
                let get = self
                    .call(node(i), Method::GET, "/v1/kv/color", secret, None)
                    .await;
                if has_scope(k, "read") {
                    get.expect(200);
                } else {
                    get.problem(403, "insufficient_scope");
                }
                let body = json!({ "value": "probe" });
                let put = self
                    .call(node(i + 1), Method::PUT, &probe, secret, Some(&body))
                    .await;
                if has_scope(k, "write") {
                    put.expect(200);
                } else {
                    put.problem(403, "insufficient_scope");
                }
            }
        }
    }

    async fn users_read_back(&self) {
        const FIELDS: [&str; 6] = [
            "id",
            "email",
            "region",
            "created_at",
            "updated_at",
            "has_password",
        ];
        for t in self.tenants() {
            let key = Self::key_of(t);
            for (i, u) in list(t, "users").iter().enumerate() {
                let path = format!("/v1/users/{}", text(u, "id"));
                let got = self.call(node(i), Method::GET, &path, key, None).await;
                match text(u, "state") {
                    "active" => {
                        let got = got.expect(200);
                        for f in FIELDS {
                            assert_eq!(got[f], u[f], "{}: user {f}: {got}", self.name);
                        }
                    }
                    "deleted" => got.problem(404, "user_not_found"),
                    other => panic!("{}: user state {other}", self.name),
                }
            }
        }
        // Another tenant's key does not see them.
        let acme = self.tenant("acme");
        let globex = self.tenant("globex");
        let alice = &list(acme, "users")[0];
        let path = format!("/v1/users/{}", text(alice, "id"));
        self.call(3, Method::GET, &path, Self::key_of(globex), None)
            .await
            .problem(404, "user_not_found");
    }

    /// Revoked, compromised and deleted sessions stay dead; each active one
    /// rotates, answers a retry of its last token with the same successor, and is
    /// revoked when an older token comes back.
    async fn sessions_keep_their_state(&self) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        for t in self.tenants() {
            let key = Self::key_of(t);
            let sessions = list(t, "sessions");
            // Each user lists exactly the sessions recorded active.
            for u in list(t, "users").iter().filter(|u| u["state"] == "active") {
                let expected: BTreeSet<&str> = sessions
                    .iter()
                    .filter(|s| s["user_id"] == u["id"] && s["state"] == "active")
                    .map(|s| text(s, "id"))
                    .collect();
                let path = format!("/v1/users/{}/sessions", text(u, "id"));
                let got = self.call(3, Method::GET, &path, key, None).await;
                let listed: BTreeSet<&str> = list(got.expect(200), "sessions")
                    .iter()
                    .map(|s| text(s, "id"))
                    .collect();
                assert_eq!(
                    listed, expected,
                    "{}: sessions of {}",
                    self.name, u["email"]
                );
                for s in list(got.expect(200), "sessions") {
                    assert!(
                        number(s, "expires_at") > now,
                        "{}: session {} ends at {}: the fixture's sessions last 10 years \
                         from when it was written; write a new fixture",
                        self.name,
                        s["id"],
                        s["expires_at"]
                    );
                }
            }
            for (i, s) in sessions.iter().enumerate() {
                let tokens: Vec<&str> = list(s, "refresh_tokens")
                    .iter()
                    .map(|r| r.as_str().expect("token"))
                    .collect();
                let newest = *tokens.last().expect("a refresh token");
                let via = node(i);
                match text(s, "state") {
                    "revoked" | "compromised" => {
                        self.refresh(via, key, newest)
                            .await
                            .problem(401, "session_revoked");
                        let seen = self.introspect(via, key, newest).await;
                        assert_eq!(seen, json!({ "active": false }), "{}", self.name);
                    }
                    "deleted" => {
                        self.refresh(via, key, newest)
                            .await
                            .problem(401, "invalid_refresh_token");
                    }
                    "active" => self.rotate_retry_and_reuse(t, s, newest).await,
                    other => panic!("{}: session state {other}", self.name),
                }
            }
        }
    }

    async fn rotate_retry_and_reuse(&self, tenant: &Value, session: &Value, newest: &str) {
        let key = Self::key_of(tenant);
        let sid = text(session, "id");
        let user = text(session, "user_id");
        let seen = self.introspect(3, key, newest).await;
        assert_eq!(
            (
                &seen["active"],
                &seen["token_type"],
                seen["sid"].as_str(),
                seen["sub"].as_str()
            ),
            (&json!(true), &json!("refresh_token"), Some(sid), Some(user)),
            "{}: {seen}",
            self.name
        );
        let first = self.refresh(1, key, newest).await;
        let first = first.expect(200).clone();
        assert_eq!(text(&first, "session_id"), sid);
        let next = text(&first, "refresh_token");
        assert_ne!(next, newest);
        let access = self.introspect(2, key, text(&first, "access_token")).await;
        assert_eq!(
            (
                &access["active"],
                access["sub"].as_str(),
                access["sid"].as_str()
            ),
            (&json!(true), Some(user), Some(sid)),
            "{}: {access}",
            self.name
        );
        // The answer was "lost": the same token again gets the same successor.
        let retry = self.refresh(2, key, newest).await;
        assert_eq!(
            text(retry.expect(200), "refresh_token"),
            next,
            "{}",
            self.name
        );
        let second = self.refresh(3, key, next).await;
        let last = text(second.expect(200), "refresh_token").to_owned();
        // Now `newest` is two generations old: reuse revokes the session.
        self.refresh(1, key, newest)
            .await
            .problem(401, "refresh_token_reused");
        self.refresh(2, key, &last)
            .await
            .problem(401, "session_revoked");
        assert_eq!(
            self.introspect(3, key, &last).await,
            json!({ "active": false })
        );
        assert_eq!(
            self.introspect(3, key, text(&first, "access_token")).await,
            json!({ "active": false }),
            "{}: the revocation reaches access tokens",
            self.name
        );
    }

    async fn passwords_still_sign_in(&self) {
        for t in self.tenants() {
            let key = Self::key_of(t);
            for (i, u) in list(t, "users").iter().enumerate() {
                let Some(password) = u["password"].as_str() else {
                    continue;
                };
                if u["email_ambiguous"] == true {
                    continue; // emails_follow_the_identity_rules
                }
                let email = text(u, "email");
                let a = self.sign_in(node(i), key, email, password).await;
                if u["state"] == "deleted" {
                    a.problem(401, "invalid_credentials");
                    continue;
                }
                assert_eq!(a.expect(201)["user_id"], u["id"], "{}", self.name);
                if let Some(former) = u["former_password"].as_str() {
                    self.sign_in(node(i + 1), key, email, former)
                        .await
                        .problem(401, "invalid_credentials");
                }
                if let Some(former) = u["former_email"].as_str() {
                    self.sign_in(node(i + 2), key, former, password)
                        .await
                        .problem(401, "invalid_credentials");
                }
            }
        }
        // globex's alice is not acme's.
        let globex_alice = &list(self.tenant("globex"), "users")[0];
        let password = text(globex_alice, "password");
        let email = text(globex_alice, "email");
        self.sign_in(1, Self::key_of(self.tenant("acme")), email, password)
            .await
            .problem(401, "invalid_credentials");
    }

    async fn lookup(&self, node: u64, key: &str, email: &str) -> Answer {
        let body = json!({ "email": email });
        self.call(node, Method::POST, "/v1/users/lookup", key, Some(&body))
            .await
    }

    /// The email identity rules on legacy users (wire version 4): users stored
    /// under the earlier rule (only the domain lowercased) are found by any
    /// case of their address once the cluster is raised and the email index
    /// re-indexed; two users that rule kept apart share an email, which is
    /// ambiguous (409) until one of them changes it.
    async fn emails_follow_the_identity_rules(&self) {
        let acme = self.tenant("acme");
        let key = Self::key_of(acme);
        let users = list(acme, "users");
        let ambiguous: Vec<&Value> = users
            .iter()
            .filter(|u| u["email_ambiguous"] == true)
            .collect();
        // Before the upgrade is finalised the index is as the older binary left
        // it; a lookup tries the earlier key too, so an address typed as the
        // second user of an ambiguous pair typed it already names both.
        if let Some(second) = ambiguous.get(1) {
            self.lookup(1, key, text(second, "email"))
                .await
                .problem(409, "email_ambiguous");
        }
        let raised = self.c.cli_ok(&["finalize-upgrade"]);
        assert!(
            raised.contains("at wire version"),
            "{}: {raised}",
            self.name
        );
        let active: Vec<&Value> = users
            .iter()
            .filter(|u| u["state"] == "active" && u["email_ambiguous"] != true)
            .collect();
        let shouted = |u: &Value| text(u, "email").to_uppercase();
        let deadline = Instant::now() + Duration::from_secs(60);
        'reindexed: loop {
            let mut pending = None;
            for u in &active {
                let a = self.lookup(2, key, &shouted(u)).await;
                if a.status != 200 || a.body["id"] != u["id"] {
                    pending = Some(format!("{} -> {} {}", shouted(u), a.status, a.body));
                }
            }
            for u in &ambiguous {
                let a = self.lookup(2, key, &text(u, "email").to_lowercase()).await;
                if a.status != 409 {
                    pending = Some(format!("{} -> {} {}", text(u, "email"), a.status, a.body));
                }
            }
            let Some(pending) = pending else {
                break 'reindexed;
            };
            assert!(
                Instant::now() < deadline,
                "{}: the email index is not re-indexed after 60 s: {pending}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        // Every case of an address signs in, and the user still shows it as typed.
        for (i, u) in active.iter().enumerate() {
            let Some(password) = u["password"].as_str() else {
                continue;
            };
            let a = self.sign_in(node(i), key, &shouted(u), password).await;
            assert_eq!(a.expect(201)["user_id"], u["id"], "{}", self.name);
        }
        if ambiguous.is_empty() {
            return;
        }
        // Both users of an ambiguous email keep working by id; by the email,
        // neither signs in and no third user takes it.
        for (i, u) in ambiguous.iter().enumerate() {
            let path = format!("/v1/users/{}", text(u, "id"));
            let got = self.call(node(i), Method::GET, &path, key, None).await;
            assert_eq!(got.expect(200)["email"], u["email"], "{}", self.name);
            self.sign_in(node(i + 1), key, text(u, "email"), text(u, "password"))
                .await
                .problem(409, "email_ambiguous");
        }
        let body = json!({ "email": text(ambiguous[0], "email").to_uppercase() });
        self.call(3, Method::POST, "/v1/users", key, Some(&body))
            .await
            .problem(409, "email_taken");
        // One of them moves to another address: both sign in again.
        let (first, second) = (ambiguous[0], ambiguous[1]);
        let path = format!("/v1/users/{}", text(second, "id"));
        let moved = json!({ "email": "ann.two@example.com" });
        self.call(1, Method::PATCH, &path, key, Some(&moved))
            .await
            .expect(200);
        let a = self
            .sign_in(2, key, text(first, "email"), text(first, "password"))
            .await;
        assert_eq!(a.expect(201)["user_id"], first["id"], "{}", self.name);
        let a = self
            .sign_in(3, key, "Ann.Two@Example.com", text(second, "password"))
            .await;
        assert_eq!(a.expect(201)["user_id"], second["id"], "{}", self.name);
    }

    async fn new_writes_succeed(&self) {
        let acme = self.tenant("acme");
        let key = Self::key_of(acme);
        let acme_id = text(acme, "id");

        // A new user signs in; the access token is signed with a legacy signing key.
        let body =
            json!({ "email": "new-after-upgrade@example.com", "password": "new-password-1" });
        let user = self
            .call(3, Method::POST, "/v1/users", key, Some(&body))
            .await;
        let user_id = text(user.expect(201), "id").to_owned();
        let session = self
            .sign_in(2, key, "new-after-upgrade@example.com", "new-password-1")
            .await;
        let session = session.expect(201).clone();
        assert_eq!(text(&session, "user_id"), user_id);
        let seen = self
            .introspect(1, key, text(&session, "access_token"))
            .await;
        assert_eq!(seen["active"], true, "{}: {seen}", self.name);

        // KV: a new key, and compare-and-set on a legacy one at its recorded revision.
        let body = json!({ "value": "written by the binary under test" });
        self.call(2, Method::PUT, "/v1/kv/after-upgrade", key, Some(&body))
            .await
            .expect(200);
        let got = self
            .call(3, Method::GET, "/v1/kv/after-upgrade", key, None)
            .await;
        assert_eq!(got.expect(200)["value"], body["value"]);
        let counter = list(acme, "kv")
            .iter()
            .find(|e| e["key"] == "counter")
            .expect("counter in the manifest");
        let recorded = number(counter, "revision");
        let body = json!({ "value": "after-upgrade", "expected_revision": recorded });
        let put = self
            .call(1, Method::PUT, "/v1/kv/counter", key, Some(&body))
            .await;
        assert!(
            number(put.expect(200), "revision") > recorded,
            "{}",
            self.name
        );
        self.call(2, Method::PUT, "/v1/kv/counter", key, Some(&body))
            .await
            .problem(412, "revision_mismatch");

        // Key management on top of the legacy key ring: another data key version
        // (old values still open), another signing key, a revoked API key.
        let rotated = self
            .admin(
                2,
                Method::POST,
                "/v1/admin/keys/rotate",
                Some(&json!({ "tenant": "acme" })),
            )
            .await;
        assert_eq!(
            number(rotated.expect(200), "key_version"),
            number(acme, "data_key_version") + 1,
            "{}",
            self.name
        );
        for e in list(acme, "kv").iter().filter(|e| e["key"] != "counter") {
            let path = format!("/v1/kv/{}", text(e, "key"));
            let got = self.call(3, Method::GET, &path, key, None).await;
            assert_eq!(
                got.expect(200)["value"],
                e["value"],
                "{}: {path}",
                self.name
            );
        }
        let jwks = self
            .admin(
                1,
                Method::POST,
                &format!("/v1/admin/tenants/{acme_id}/signing-keys/rotate"),
                None,
            )
            .await;
        // A rotation adds one key and keeps the one it retires (its tokens are still
        // valid); keys retired longer ago than a token's lifetime may be pruned by it,
        // so the count depends on how old the fixture is: compare kids instead.
        let before: Vec<&str> = list(acme, "jwks").iter().map(|k| text(k, "kid")).collect();
        let after = jwks.expect(200);
        let after: Vec<&str> = list(after, "keys").iter().map(|k| text(k, "kid")).collect();
        assert_eq!(
            after.iter().filter(|k| !before.contains(k)).count(),
            1,
            "{}: one new signing key after the rotation ({before:?} -> {after:?})",
            self.name
        );
        assert!(
            after.iter().any(|k| before.contains(k)),
            "{}: the key the rotation retired is still published ({before:?} -> {after:?})",
            self.name
        );
        let live = list(acme, "api_keys")
            .iter()
            .rev()
            .find(|k| k["revoked"] == false && has_scope(k, "read"))
            .expect("a live read key");
        let path = format!("/v1/admin/tenants/{acme_id}/api-keys/{}", text(live, "id"));
        self.admin(3, Method::DELETE, &path, None).await.expect(204);
        self.call(1, Method::GET, "/v1/kv/color", text(live, "key"), None)
            .await
            .problem(401, "unauthorized");

        // A third tenant.
        let created = self
            .admin(
                1,
                Method::POST,
                "/v1/admin/tenants",
                Some(&json!({ "name": "initech" })),
            )
            .await;
        created.expect(201);
        let all = self.admin(2, Method::GET, "/v1/admin/tenants", None).await;
        let names: BTreeSet<&str> = list(all.expect(200), "tenants")
            .iter()
            .map(|t| text(t, "name"))
            .collect();
        assert_eq!(
            names,
            BTreeSet::from(["acme", "globex", "initech"]),
            "{}",
            self.name
        );
    }

    /// The binary under test reopens the dirs it now shares with the older one.
    async fn restart_keeps_old_and_new_data(&mut self) {
        for id in self.c.ids() {
            assert!(
                self.c.terminate(id),
                "{}: node {id} stops cleanly",
                self.name
            );
        }
        self.c.start_all();
        for id in self.c.ids() {
            self.c.wait_ready(id).await;
        }
        let acme = self.tenant("acme");
        let key = Self::key_of(acme);
        let got = self
            .call(3, Method::GET, "/v1/kv/after-upgrade", key, None)
            .await;
        assert_eq!(got.expect(200)["value"], "written by the binary under test");
        let legacy = list(acme, "kv")
            .iter()
            .find(|e| e["key"] != "counter")
            .expect("a legacy value");
        let path = format!("/v1/kv/{}", text(legacy, "key"));
        let got = self.call(1, Method::GET, &path, key, None).await;
        assert_eq!(got.expect(200)["value"], legacy["value"], "{}", self.name);
    }
}
