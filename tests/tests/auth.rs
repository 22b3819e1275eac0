//! The auth API, black-box, on real 3-node clusters: tenant administration and API
//! key scopes; users, sign-in and sessions; access tokens (EdDSA, verified here
//! against the published JWKS) and signing key rotation; refresh rotation with
//! reuse detection, lost-answer retry and concurrent use; revocation seen on every
//! node at once; introspection of forged tokens; tenant isolation (an attacker
//! tenant against every object of another); the input rules of every endpoint; and
//! refresh chains that survive the SIGKILL of the data group's leader.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use cairn_tests::{TestCluster, TOKEN};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder};
use serde_json::{json, Value};
use tokio::time::Instant;

/// The default test config's only region (and so the data group's name).
const REGION: &str = "local";
const PASSWORD: &str = "correct horse battery";
const ACCESS_TOKEN_TTL: u64 = 900;
const MIB: usize = 1024 * 1024;
/// What the admin API shows of a tenant.
const TENANT_FIELDS: &[&str] = &[
    "id",
    "name",
    "region",
    "created_at",
    "session_idle_timeout_secs",
    "session_absolute_timeout_secs",
];

static REQUEST_SEQ: AtomicU64 = AtomicU64::new(0);

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn node(i: usize) -> u64 {
    u64::try_from(i % 3).expect("small") + 1
}

// ---------------------------------------------------------------------------
// HTTP helpers: every call sends a fresh X-Request-Id and checks the headers and
// error shape every response must have.
// ---------------------------------------------------------------------------

struct Resp {
    what: String,
    status: u16,
    headers: HeaderMap,
    text: String,
    body: Value,
}

impl Resp {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// Asserts the status; returns the JSON body.
    #[track_caller]
    fn expect(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "{}: {}", self.what, self.text);
        &self.body
    }

    /// Asserts an RFC 9457 problem document with `code`.
    #[track_caller]
    fn problem(&self, status: u16, code: &str) -> &Value {
        assert_eq!(self.status, status, "{}: {}", self.what, self.text);
        assert_eq!(self.body["code"], code, "{}: {}", self.what, self.text);
        assert_eq!(self.body["status"], status, "{}: {}", self.what, self.text);
        &self.body
    }

    fn str(&self, field: &str) -> String {
        self.body[field]
            .as_str()
            .unwrap_or_else(|| panic!("{}: no string {field:?} in {}", self.what, self.text))
            .to_owned()
    }
}

/// Sends `rb` with a fresh request id and reads the whole answer. Every response
/// must carry `nosniff` and echo the request id; every error must be a problem
/// document with a `code`.
async fn exec(rb: RequestBuilder, what: String) -> Resp {
    let rid = format!("auth-test-{}", REQUEST_SEQ.fetch_add(1, Ordering::Relaxed));
    let r = rb
        .header("x-request-id", &rid)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r
        .text()
        .await
        .unwrap_or_else(|e| panic!("{what}: reading the body: {e}"));
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    let resp = Resp {
        what,
        status,
        headers,
        text,
        body,
    };
    assert_eq!(
        resp.header("x-content-type-options"),
        "nosniff",
        "{}",
        resp.what
    );
    assert_eq!(
        resp.header("x-request-id"),
        rid,
        "{}: the request id is echoed",
        resp.what
    );
    if status >= 400 {
        assert!(
            resp.header("content-type")
                .starts_with("application/problem+json"),
            "{}: errors are problem documents: {:?} {}",
            resp.what,
            resp.header("content-type"),
            resp.text
        );
        assert!(
            resp.body["code"].is_string(),
            "{}: a problem has a code: {}",
            resp.what,
            resp.text
        );
    }
    resp
}

async fn call(
    c: &TestCluster,
    via: u64,
    method: Method,
    path: &str,
    auth: Option<&str>,
    body: Option<&Value>,
) -> Resp {
    let what = format!("{method} {path} via node {via}");
    let mut rb = c.client().request(method, c.url(via, path));
    if let Some(a) = auth {
        rb = rb.bearer_auth(a);
    }
    if let Some(b) = body {
        rb = rb.json(b);
    }
    exec(rb, what).await
}

async fn get(c: &TestCluster, via: u64, path: &str, auth: Option<&str>) -> Resp {
    call(c, via, Method::GET, path, auth, None).await
}

async fn post(c: &TestCluster, via: u64, path: &str, auth: Option<&str>, body: &Value) -> Resp {
    call(c, via, Method::POST, path, auth, Some(body)).await
}

/// A POST without a body (revocation, rotation).
async fn post_empty(c: &TestCluster, via: u64, path: &str, auth: Option<&str>) -> Resp {
    call(c, via, Method::POST, path, auth, None).await
}

async fn put(c: &TestCluster, via: u64, path: &str, auth: Option<&str>, body: &Value) -> Resp {
    call(c, via, Method::PUT, path, auth, Some(body)).await
}

async fn patch(c: &TestCluster, via: u64, path: &str, auth: Option<&str>, body: &Value) -> Resp {
    call(c, via, Method::PATCH, path, auth, Some(body)).await
}

async fn del(c: &TestCluster, via: u64, path: &str, auth: Option<&str>) -> Resp {
    call(c, via, Method::DELETE, path, auth, None).await
}

/// Sends raw bytes as a JSON body.
async fn send_raw(
    c: &TestCluster,
    via: u64,
    method: Method,
    path: &str,
    auth: &str,
    bytes: Vec<u8>,
) -> Resp {
    let what = format!("{method} {path} via node {via} (raw {} bytes)", bytes.len());
    let rb = c
        .client()
        .request(method, c.url(via, path))
        .bearer_auth(auth)
        .header("content-type", "application/json")
        .body(bytes);
    exec(rb, what).await
}

/// Asserts `v` is an object with exactly these fields.
#[track_caller]
fn assert_fields(v: &Value, fields: &[&str]) {
    let got: HashSet<&str> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect();
    let want: HashSet<&str> = fields.iter().copied().collect();
    assert_eq!(got, want, "fields of {v}");
}

fn s(v: &Value, field: &str) -> String {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("no string {field:?} in {v}"))
        .to_owned()
}

// ---------------------------------------------------------------------------
// Domain helpers.
// ---------------------------------------------------------------------------

struct Tenant {
    id: String,
    key: String,
    key_id: String,
}

/// Creates a tenant through the admin API, checking the answer's shape.
async fn new_tenant(c: &TestCluster, via: u64, name: &str) -> Tenant {
    let r = post(
        c,
        via,
        "/v1/admin/tenants",
        Some(TOKEN),
        &json!({ "name": name }),
    )
    .await;
    let b = r.expect(201);
    assert_fields(
        b,
        &[
            "id",
            "name",
            "region",
            "created_at",
            "api_key",
            "api_key_id",
            "session_idle_timeout_secs",
            "session_absolute_timeout_secs",
        ],
    );
    assert_eq!(b["name"], name);
    assert_eq!(b["region"], REGION);
    Tenant {
        id: r.str("id"),
        key: r.str("api_key"),
        key_id: r.str("api_key_id"),
    }
}

/// Issues an API key with `scopes`; returns (key, key id).
async fn new_api_key(
    c: &TestCluster,
    via: u64,
    tenant_id: &str,
    scopes: &[&str],
) -> (String, String) {
    let r = post(
        c,
        via,
        &format!("/v1/admin/tenants/{tenant_id}/api-keys"),
        Some(TOKEN),
        &json!({ "scopes": scopes }),
    )
    .await;
    let b = r.expect(201);
    assert_fields(b, &["id", "api_key", "scopes", "created_at"]);
    let got: HashSet<&str> = b["scopes"]
        .as_array()
        .expect("scopes")
        .iter()
        .map(|v| v.as_str().expect("scope"))
        .collect();
    assert_eq!(got, scopes.iter().copied().collect::<HashSet<_>>());
    (r.str("api_key"), r.str("id"))
}

/// Creates a user; returns the 201 body.
async fn new_user(
    c: &TestCluster,
    via: u64,
    key: &str,
    email: &str,
    password: Option<&str>,
) -> Value {
    let mut body = json!({ "email": email });
    if let Some(p) = password {
        body["password"] = json!(p);
    }
    let r = post(c, via, "/v1/users", Some(key), &body).await;
    r.expect(201).clone()
}

#[derive(Clone, Debug)]
struct Session {
    id: String,
    user_id: String,
    access: String,
    refresh: String,
}

async fn sign_in(c: &TestCluster, via: u64, key: &str, email: &str, password: &str) -> Session {
    let r = post(
        c,
        via,
        "/v1/sessions",
        Some(key),
        &json!({ "email": email, "password": password }),
    )
    .await;
    let b = r.expect(201);
    assert_fields(
        b,
        &[
            "session_id",
            "user_id",
            "access_token",
            "token_type",
            "expires_in",
            "refresh_token",
        ],
    );
    assert_eq!(b["token_type"], "Bearer");
    assert_eq!(r.header("cache-control"), "no-store", "{}", r.what);
    Session {
        id: r.str("session_id"),
        user_id: r.str("user_id"),
        access: r.str("access_token"),
        refresh: r.str("refresh_token"),
    }
}

async fn refresh(c: &TestCluster, via: u64, key: &str, token: &str) -> Resp {
    post(
        c,
        via,
        "/v1/sessions/refresh",
        Some(key),
        &json!({ "refresh_token": token }),
    )
    .await
}

/// Refreshes, expecting success; returns (refresh token, access token).
async fn refresh_ok(c: &TestCluster, via: u64, key: &str, token: &str) -> (String, String) {
    let r = refresh(c, via, key, token).await;
    let b = r.expect(200);
    assert_fields(
        b,
        &[
            "session_id",
            "access_token",
            "token_type",
            "expires_in",
            "refresh_token",
        ],
    );
    assert_eq!(b["token_type"], "Bearer");
    assert_eq!(r.header("cache-control"), "no-store", "{}", r.what);
    (r.str("refresh_token"), r.str("access_token"))
}

async fn introspect(c: &TestCluster, via: u64, key: &str, token: &str) -> Value {
    let r = post(
        c,
        via,
        "/v1/tokens/introspect",
        Some(key),
        &json!({ "token": token }),
    )
    .await;
    r.expect(200).clone()
}

#[track_caller]
fn assert_inactive(v: &Value, what: &str) {
    assert_eq!(v, &json!({ "active": false }), "{what}");
}

async fn jwks(c: &TestCluster, via: u64, tenant_id: &str) -> Value {
    let r = get(c, via, &format!("/v1/tenants/{tenant_id}/jwks.json"), None).await;
    let b = r.expect(200).clone();
    assert!(
        r.header("cache-control").contains("public"),
        "the JWKS is cacheable: {:?}",
        r.header("cache-control")
    );
    assert_fields(&b, &["keys"]);
    for k in b["keys"].as_array().expect("keys") {
        assert_fields(k, &["kty", "crv", "x", "kid", "alg", "use"]);
        assert_eq!(k["kty"], "OKP");
        assert_eq!(k["crv"], "Ed25519");
        assert_eq!(k["alg"], "EdDSA");
        assert_eq!(k["use"], "sig");
    }
    b
}

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| s(k, "kid"))
        .collect()
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// (header, claims) of a JWT, unverified.
fn jwt_parts(token: &str) -> (Value, Value) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a compact JWS");
    let decode = |p: &str| -> Value {
        let bytes = URL_SAFE_NO_PAD.decode(p).expect("base64url");
        serde_json::from_slice(&bytes).expect("json")
    };
    (decode(parts[0]), decode(parts[1]))
}

/// Verifies `token`'s Ed25519 signature with the JWKS key its `kid` names; returns
/// (header, claims).
#[track_caller]
fn verify_jwt(token: &str, jwks: &Value) -> (Value, Value) {
    let (header, claims) = jwt_parts(token);
    assert_eq!(header["alg"], "EdDSA", "{header}");
    let kid = s(&header, "kid");
    let jwk = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .unwrap_or_else(|| panic!("kid {kid} is not in the JWKS {jwks}"));
    let x: [u8; 32] = URL_SAFE_NO_PAD
        .decode(s(jwk, "x"))
        .expect("x is base64url")
        .try_into()
        .expect("32-byte key");
    let key = VerifyingKey::from_bytes(&x).expect("a valid Ed25519 key");
    let (signed, sig) = token.rsplit_once('.').expect("segments");
    let sig = URL_SAFE_NO_PAD.decode(sig).expect("signature base64url");
    let sig = Signature::from_slice(&sig).expect("64-byte signature");
    key.verify_strict(signed.as_bytes(), &sig)
        .expect("the access token's signature verifies against the JWKS");
    (header, claims)
}

/// Checks an access token's claims for `session` of `tenant_id`.
#[track_caller]
fn check_claims(claims: &Value, session: &Session, tenant_id: &str) {
    assert_fields(
        claims,
        &["iss", "sub", "sid", "tid", "iat", "exp", "amr", "aal"],
    );
    assert_eq!(claims["sub"], session.user_id.as_str());
    assert_eq!(claims["sid"], session.id.as_str());
    assert_eq!(claims["tid"], tenant_id);
    assert!(claims["iss"].as_str().is_some_and(|i| !i.is_empty()));
    assert_eq!(claims["amr"], json!(["pwd"]));
    assert!(claims["aal"].is_string());
    let iat = claims["iat"].as_u64().expect("iat");
    let exp = claims["exp"].as_u64().expect("exp");
    assert_eq!(exp, iat + ACCESS_TOKEN_TTL, "exp = iat + 900");
    assert!(iat.abs_diff(unix_now()) < 120, "iat {iat} is now");
}

/// The generation of a refresh token (`rt1.<session>.<generation>.<secret>`).
fn generation(rt: &str) -> u64 {
    rt.split('.')
        .nth(2)
        .and_then(|g| g.parse().ok())
        .unwrap_or_else(|| panic!("not a refresh token: {rt}"))
}

/// A refresh token of `session_id` at `generation` with a secret we made up.
fn forged_refresh(session_id: &str, generation: u64, fill: u8) -> String {
    format!("rt1.{session_id}.{generation}.{}", b64(&[fill; 32]))
}

/// Active session ids of `user_id`, as listed.
async fn listed_sessions(c: &TestCluster, via: u64, key: &str, user_id: &str) -> Vec<String> {
    let r = get(c, via, &format!("/v1/users/{user_id}/sessions"), Some(key)).await;
    let b = r.expect(200);
    assert_fields(b, &["sessions"]);
    b["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .map(|x| s(x, "id"))
        .collect()
}

// ---------------------------------------------------------------------------
// 1a. Tenant administration, API keys and scopes.
// ---------------------------------------------------------------------------

/// Checks one call of the scope matrix: allowed if the key holds `needed`.
#[track_caller]
fn scoped(r: &Resp, held: &str, needed: &str, ok: u16) {
    if held == needed {
        r.expect(ok);
    } else {
        let b = r.problem(403, "insufficient_scope");
        assert!(b["detail"].as_str().is_some(), "{b}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_administration_api_keys_and_scopes() {
    let mut c = TestCluster::new(3, "");
    c.boot().await;

    // Create: 201 with the first API key (shown once), with and without a region.
    let r = post(
        &c,
        1,
        "/v1/admin/tenants",
        Some(TOKEN),
        &json!({ "name": "acme", "region": REGION }),
    )
    .await;
    let b = r.expect(201).clone();
    assert_fields(
        &b,
        &[
            "id",
            "name",
            "region",
            "created_at",
            "api_key",
            "api_key_id",
            "session_idle_timeout_secs",
            "session_absolute_timeout_secs",
        ],
    );
    assert_eq!(b["name"], "acme");
    assert_eq!(b["region"], REGION);
    assert!(b["created_at"]
        .as_u64()
        .is_some_and(|t| t.abs_diff(unix_now()) < 120));
    let acme = Tenant {
        id: s(&b, "id"),
        key: s(&b, "api_key"),
        key_id: s(&b, "api_key_id"),
    };
    assert!(!acme.id.is_empty() && !acme.key_id.is_empty());
    let globex = new_tenant(&c, 2, "globex").await;
    assert_ne!(acme.id, globex.id);
    assert_ne!(acme.key, globex.key);

    // Duplicate name (through another node) -> 409 tenant_exists; bad input -> 400.
    post(
        &c,
        3,
        "/v1/admin/tenants",
        Some(TOKEN),
        &json!({ "name": "acme" }),
    )
    .await
    .problem(409, "tenant_exists");
    post(
        &c,
        1,
        "/v1/admin/tenants",
        Some(TOKEN),
        &json!({ "name": "mars-corp", "region": "mars" }),
    )
    .await
    .problem(400, "invalid_request");
    post(
        &c,
        1,
        "/v1/admin/tenants",
        Some(TOKEN),
        &json!({ "name": "not a name!" }),
    )
    .await
    .problem(400, "invalid_request");

    // List (any node): every tenant, never a key.
    let r = get(&c, 3, "/v1/admin/tenants", Some(TOKEN)).await;
    let b = r.expect(200);
    assert_fields(b, &["tenants"]);
    let tenants = b["tenants"].as_array().expect("tenants");
    for t in tenants {
        assert_fields(t, TENANT_FIELDS);
    }
    let listed: HashMap<String, String> =
        tenants.iter().map(|t| (s(t, "name"), s(t, "id"))).collect();
    assert_eq!(listed.get("acme"), Some(&acme.id));
    assert_eq!(listed.get("globex"), Some(&globex.id));
    assert!(!listed.contains_key("mars-corp"));
    assert!(!r.text.contains(&acme.key), "no API key in the list");

    // The first key has every scope: tenant KV with an API key (the tenant comes
    // from the key), and the operator's X-Tenant path onto the same data.
    let r = put(
        &c,
        1,
        "/v1/kv/greeting",
        Some(&acme.key),
        &json!({ "value": "hello" }),
    )
    .await;
    let b = r.expect(200);
    assert_eq!(b["key"], "greeting");
    assert_eq!(b["value"], "hello");
    let rev = b["revision"].as_u64().expect("revision");
    let r = get(&c, 2, "/v1/kv/greeting", Some(&acme.key)).await;
    assert_eq!(
        r.expect(200),
        &json!({ "key": "greeting", "value": "hello", "revision": rev })
    );
    let r = c.get(3, "acme", "greeting").await;
    assert_eq!(r.status(), 200, "the operator reads it with X-Tenant");
    assert_eq!(r.json::<Value>().await.expect("json")["value"], "hello");
    get(&c, 1, "/v1/kv/greeting", Some(&globex.key))
        .await
        .problem(404, "key_not_found");
    let unknown_x_tenant = c
        .client()
        .get(c.url(2, "/v1/kv/greeting"))
        .bearer_auth(TOKEN)
        .header("x-tenant", "no-such-tenant");
    exec(unknown_x_tenant, "GET kv, X-Tenant unknown".to_owned())
        .await
        .problem(404, "tenant_not_found");
    let unknown_x_tenant_put = c
        .client()
        .put(c.url(3, "/v1/kv/greeting"))
        .bearer_auth(TOKEN)
        .header("x-tenant", "no-such-tenant")
        .json(&json!({ "value": "v" }));
    exec(unknown_x_tenant_put, "PUT kv, X-Tenant unknown".to_owned())
        .await
        .problem(404, "tenant_not_found");
    assert!(
        !get(&c, 1, "/v1/admin/tenants", Some(TOKEN))
            .await
            .text
            .contains("no-such-tenant"),
        "an unknown X-Tenant creates nothing"
    );
    del(&c, 3, "/v1/kv/greeting", Some(&acme.key))
        .await
        .expect(204);
    get(&c, 1, "/v1/kv/greeting", Some(&acme.key))
        .await
        .problem(404, "key_not_found");

    // API keys: shape, bad scopes, unknown tenant.
    let api_keys = format!("/v1/admin/tenants/{}/api-keys", acme.id);
    for bad in [
        json!({ "scopes": [] }),
        json!({ "scopes": ["admin"] }),
        json!({ "scopes": ["read", "everything"] }),
        json!({ "scopes": "read" }),
        json!({}),
    ] {
        post(&c, 1, &api_keys, Some(TOKEN), &bad)
            .await
            .problem(400, "invalid_request");
    }
    post(
        &c,
        2,
        "/v1/admin/tenants/nosuchtenant/api-keys",
        Some(TOKEN),
        &json!({ "scopes": ["read"] }),
    )
    .await
    .problem(404, "tenant_not_found");
    let (both_key, _) = new_api_key(&c, 3, &acme.id, &["read", "write"]).await;

    // The scope matrix: one key per scope against every tenant operation.
    let alice_email = "alice@example.com";
    let alice = s(
        &new_user(&c, 1, &acme.key, alice_email, Some(PASSWORD)).await,
        "id",
    );
    let victim = s(
        &new_user(&c, 2, &acme.key, "victim@example.com", Some(PASSWORD)).await,
        "id",
    );
    let to_refresh = sign_in(&c, 2, &acme.key, alice_email, PASSWORD).await;
    let to_revoke = sign_in(&c, 3, &acme.key, alice_email, PASSWORD).await;
    let mut scoped_keys = Vec::new();
    for (i, scope) in ["write", "read", "manage", "delete"]
        .into_iter()
        .enumerate()
    {
        scoped_keys.push((scope, new_api_key(&c, node(i), &acme.id, &[scope]).await));
    }
    for (i, (held, (key, _))) in scoped_keys.iter().enumerate() {
        let via = node(i);
        let key = Some(key.as_str());
        let r = post(
            &c,
            via,
            "/v1/users",
            key,
            &json!({ "email": format!("new-{held}@example.com"), "password": PASSWORD }),
        )
        .await;
        scoped(&r, held, "write", 201);
        let r = get(&c, via, &format!("/v1/users/{alice}"), key).await;
        scoped(&r, held, "read", 200);
        let r = patch(
            &c,
            via,
            &format!("/v1/users/{alice}"),
            key,
            &json!({ "email": alice_email }),
        )
        .await;
        scoped(&r, held, "write", 200);
        let r = get(&c, via, &format!("/v1/users/{alice}/sessions"), key).await;
        scoped(&r, held, "read", 200);
        let r = post(
            &c,
            via,
            "/v1/sessions",
            key,
            &json!({ "email": alice_email, "password": PASSWORD }),
        )
        .await;
        scoped(&r, held, "write", 201);
        let r = post(
            &c,
            via,
            "/v1/sessions/refresh",
            key,
            &json!({ "refresh_token": to_refresh.refresh }),
        )
        .await;
        scoped(&r, held, "write", 200);
        let r = post_empty(
            &c,
            via,
            &format!("/v1/sessions/{}/revoke", to_revoke.id),
            key,
        )
        .await;
        scoped(&r, held, "manage", 204);
        let r = post(
            &c,
            via,
            "/v1/tokens/introspect",
            key,
            &json!({ "token": to_refresh.access }),
        )
        .await;
        scoped(&r, held, "read", 200);
        let r = put(&c, via, "/v1/kv/scoped", key, &json!({ "value": "v" })).await;
        scoped(&r, held, "write", 200);
        let r = get(&c, via, "/v1/kv/scoped", key).await;
        scoped(&r, held, "read", 200);
        let r = del(&c, via, "/v1/kv/scoped", key).await;
        scoped(&r, held, "delete", 204);
        let r = del(&c, via, &format!("/v1/users/{victim}"), key).await;
        scoped(&r, held, "delete", 204);
    }
    // The refused calls changed nothing; the allowed ones did what they said.
    get(&c, 1, &format!("/v1/users/{victim}"), Some(&acme.key))
        .await
        .problem(404, "user_not_found");
    get(&c, 1, "/v1/kv/scoped", Some(&acme.key))
        .await
        .problem(404, "key_not_found");
    assert!(!listed_sessions(&c, 2, &acme.key, &alice)
        .await
        .contains(&to_revoke.id));
    // A key with two scopes has both and nothing else.
    get(&c, 1, &format!("/v1/users/{alice}"), Some(&both_key))
        .await
        .expect(200);
    put(
        &c,
        2,
        "/v1/kv/both",
        Some(&both_key),
        &json!({ "value": "v" }),
    )
    .await
    .expect(200);
    del(&c, 3, "/v1/kv/both", Some(&both_key))
        .await
        .problem(403, "insufficient_scope");

    // Missing, malformed, unknown or misplaced credentials on tenant routes -> 401.
    let user_path = format!("/v1/users/{alice}");
    let unknown_key = format!("ck_0123456789abcdef_{}", b64(&[5; 32]));
    for auth in [
        None,
        Some("garbage"),
        Some(unknown_key.as_str()),
        Some(TOKEN),
        Some(&acme.key[..acme.key.len() - 1]),
    ] {
        get(&c, 1, &user_path, auth)
            .await
            .problem(401, "unauthorized");
    }
    let basic = c
        .client()
        .get(c.url(2, &user_path))
        .header("authorization", format!("Basic {}", acme.key));
    exec(basic, "Basic auth".to_owned())
        .await
        .problem(401, "unauthorized");

    // A tenant API key (even with every scope) is no admin token.
    let admin_calls: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/v1/admin/tenants".to_owned(), None),
        (
            Method::POST,
            "/v1/admin/tenants".to_owned(),
            Some(json!({ "name": "sneaky" })),
        ),
        (
            Method::DELETE,
            format!("/v1/admin/tenants/{}", globex.id),
            None,
        ),
        (
            Method::POST,
            format!("/v1/admin/tenants/{}/api-keys", acme.id),
            Some(json!({ "scopes": ["read"] })),
        ),
        (
            Method::DELETE,
            format!("/v1/admin/tenants/{}/api-keys/{}", acme.id, acme.key_id),
            None,
        ),
        (
            Method::POST,
            format!("/v1/admin/tenants/{}/signing-keys/rotate", acme.id),
            None,
        ),
    ];
    for (i, (method, path, body)) in admin_calls.iter().enumerate() {
        for auth in [Some(acme.key.as_str()), None, Some("not-the-admin-token")] {
            call(&c, node(i), method.clone(), path, auth, body.as_ref())
                .await
                .problem(401, "unauthorized");
        }
    }
    assert!(
        !get(&c, 1, "/v1/admin/tenants", Some(TOKEN))
            .await
            .text
            .contains("sneaky"),
        "nothing was created"
    );

    // Revoking a key: 204, then 401 at once on every node; a second revocation, an
    // unknown key id or another tenant's key id -> 404 api_key_not_found.
    let (read_key, read_id) = scoped_keys[1].1.clone();
    assert_eq!(scoped_keys[1].0, "read");
    del(
        &c,
        2,
        &format!("/v1/admin/tenants/{}/api-keys/{read_id}", acme.id),
        Some(TOKEN),
    )
    .await
    .expect(204);
    for via in [1, 2, 3] {
        get(&c, via, &user_path, Some(&read_key))
            .await
            .problem(401, "unauthorized");
        get(&c, via, "/v1/kv/anything", Some(&read_key))
            .await
            .problem(401, "unauthorized");
    }
    del(
        &c,
        3,
        &format!("/v1/admin/tenants/{}/api-keys/{read_id}", acme.id),
        Some(TOKEN),
    )
    .await
    .problem(404, "api_key_not_found");
    del(
        &c,
        1,
        &format!("/v1/admin/tenants/{}/api-keys/0123456789abcdef", acme.id),
        Some(TOKEN),
    )
    .await
    .problem(404, "api_key_not_found");
    del(
        &c,
        1,
        &format!("/v1/admin/tenants/{}/api-keys/{}", acme.id, globex.key_id),
        Some(TOKEN),
    )
    .await
    .problem(404, "api_key_not_found");
    get(&c, 2, "/v1/kv/anything", Some(&globex.key))
        .await
        .problem(404, "key_not_found");
    // Revoking the tenant's first key leaves its other keys working.
    del(
        &c,
        1,
        &format!("/v1/admin/tenants/{}/api-keys/{}", acme.id, acme.key_id),
        Some(TOKEN),
    )
    .await
    .expect(204);
    for via in [1, 2, 3] {
        get(&c, via, &user_path, Some(&acme.key))
            .await
            .problem(401, "unauthorized");
    }
    get(&c, 3, &user_path, Some(&both_key)).await.expect(200);

    // Deleting a tenant: 204; its keys, JWKS and X-Tenant path are gone everywhere.
    let doomed = new_tenant(&c, 3, "doomed").await;
    new_user(&c, 1, &doomed.key, "d@example.com", Some(PASSWORD)).await;
    let doomed_session = sign_in(&c, 2, &doomed.key, "d@example.com", PASSWORD).await;
    put(
        &c,
        3,
        "/v1/kv/k",
        Some(&doomed.key),
        &json!({ "value": "v" }),
    )
    .await
    .expect(200);
    jwks(&c, 1, &doomed.id).await;
    del(
        &c,
        2,
        &format!("/v1/admin/tenants/{}", doomed.id),
        Some(TOKEN),
    )
    .await
    .expect(204);
    for via in [1, 2, 3] {
        get(
            &c,
            via,
            &format!("/v1/users/{}", doomed_session.user_id),
            Some(&doomed.key),
        )
        .await
        .problem(401, "unauthorized");
        get(
            &c,
            via,
            &format!("/v1/tenants/{}/jwks.json", doomed.id),
            None,
        )
        .await
        .problem(404, "tenant_not_found");
    }
    let gone = c
        .client()
        .get(c.url(3, "/v1/kv/k"))
        .bearer_auth(TOKEN)
        .header("x-tenant", "doomed");
    exec(gone, "GET kv of a deleted tenant".to_owned())
        .await
        .problem(404, "tenant_not_found");
    let r = get(&c, 1, "/v1/admin/tenants", Some(TOKEN)).await;
    assert!(!r.text.contains(&doomed.id), "deleted tenant not listed");
    del(
        &c,
        3,
        &format!("/v1/admin/tenants/{}", doomed.id),
        Some(TOKEN),
    )
    .await
    .problem(404, "tenant_not_found");
    del(&c, 1, "/v1/admin/tenants/nosuchtenant", Some(TOKEN))
        .await
        .problem(404, "tenant_not_found");
    // The other tenants are untouched.
    get(&c, 2, "/v1/kv/anything", Some(&globex.key))
        .await
        .problem(404, "key_not_found");

    // A deletion acknowledged by one node holds at once on the others, on the
    // operator's X-Tenant path too (whose tenant lookup a node may cache).
    for round in 0..8 {
        let name = format!("ephemeral{round}");
        let t = new_tenant(&c, node(round), &name).await;
        for via in [1, 2, 3] {
            let warm = c
                .client()
                .put(c.url(via, "/v1/kv/k"))
                .bearer_auth(TOKEN)
                .header("x-tenant", &name)
                .json(&json!({ "value": format!("ephemeral-value-{via}") }));
            exec(warm, format!("warm X-Tenant {name} on node {via}"))
                .await
                .expect(200);
        }
        let deleter = node(round + 1);
        del(
            &c,
            deleter,
            &format!("/v1/admin/tenants/{}", t.id),
            Some(TOKEN),
        )
        .await
        .expect(204);
        let others: Vec<u64> = [1, 2, 3].into_iter().filter(|n| *n != deleter).collect();
        let x_tenant_get = |via: u64| {
            exec(
                c.client()
                    .get(c.url(via, "/v1/kv/k"))
                    .bearer_auth(TOKEN)
                    .header("x-tenant", &name),
                format!("round {round}: X-Tenant {name} on node {via} right after its deletion via node {deleter}"),
            )
        };
        let (x, y, kx, ky) = tokio::join!(
            x_tenant_get(others[0]),
            x_tenant_get(others[1]),
            get(&c, others[0], "/v1/kv/k", Some(&t.key)),
            get(&c, others[1], "/v1/kv/k", Some(&t.key)),
        );
        for r in [&x, &y] {
            assert!(
                !r.text.contains("ephemeral-value"),
                "{}: {}",
                r.what,
                r.text
            );
            r.problem(404, "tenant_not_found");
        }
        kx.problem(401, "unauthorized");
        ky.problem(401, "unauthorized");
    }
}

// ---------------------------------------------------------------------------
// 1b. Users, sign-in, access tokens, JWKS, rotation, sessions, introspection.
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_sign_in_tokens_sessions_and_introspection() {
    let mut c = TestCluster::new(3, "");
    c.boot().await;
    let acme = new_tenant(&c, 1, "acme").await;
    let globex = new_tenant(&c, 2, "globex").await;
    let key = acme.key.as_str();

    // Create: the email is normalised (trimmed, domain lowercased, local part kept).
    let alice = new_user(&c, 1, key, "  Alice.Smith@Example.COM ", Some(PASSWORD)).await;
    assert_fields(
        &alice,
        &[
            "id",
            "email",
            "region",
            "created_at",
            "updated_at",
            "has_password",
        ],
    );
    assert_eq!(alice["email"], "Alice.Smith@example.com");
    assert_eq!(alice["region"], REGION);
    assert_eq!(alice["has_password"], true);
    assert_eq!(alice["created_at"], alice["updated_at"]);
    assert!(alice["created_at"]
        .as_u64()
        .is_some_and(|t| t.abs_diff(unix_now()) < 120));
    let alice_id = s(&alice, "id");
    let r = get(&c, 2, &format!("/v1/users/{alice_id}"), Some(key)).await;
    assert_eq!(r.expect(200), &alice, "GET returns what POST did");
    assert!(!r.text.contains(PASSWORD), "never the password");

    // Unique per tenant (after normalisation); another local part or another
    // tenant is a different address.
    for dup in [
        "Alice.Smith@EXAMPLE.com",
        " Alice.Smith@example.com",
        "Alice.Smith@example.com",
    ] {
        post(
            &c,
            3,
            "/v1/users",
            Some(key),
            &json!({ "email": dup, "password": PASSWORD }),
        )
        .await
        .problem(409, "email_taken");
    }
    let lower = new_user(&c, 2, key, "alice.smith@example.com", Some(PASSWORD)).await;
    assert_eq!(lower["email"], "alice.smith@example.com");
    let other = new_user(&c, 3, &globex.key, "Alice.Smith@example.com", None).await;
    assert_eq!(other["has_password"], false);
    assert_ne!(other["id"], alice["id"]);
    let explicit = new_user(&c, 1, key, "region@example.com", None).await;
    assert_eq!(explicit["region"], REGION);
    let r = post(
        &c,
        1,
        "/v1/users",
        Some(key),
        &json!({ "email": "r2@example.com", "region": REGION }),
    )
    .await;
    assert_eq!(r.expect(201)["region"], REGION);

    // Password length in characters: 8-256.
    for (i, (password, ok)) in [
        ("1234567".to_owned(), false),
        ("12345678".to_owned(), true),
        ("p".repeat(256), true),
        ("p".repeat(257), false),
        ("é".repeat(4), false),
        ("é".repeat(8), true),
        (String::new(), false),
    ]
    .into_iter()
    .enumerate()
    {
        let r = post(
            &c,
            node(i),
            "/v1/users",
            Some(key),
            &json!({ "email": format!("pw{i}@example.com"), "password": password }),
        )
        .await;
        if ok {
            r.expect(201);
        } else {
            r.problem(400, "invalid_request");
        }
    }
    // Invalid emails, unknown regions, missing fields.
    for bad in [
        "",
        "   ",
        "no-at-sign",
        "@example.com",
        "user@",
        "a b@example.com",
        "a@exa mple.com",
        "a@example..com",
        "a@@example.com",
    ] {
        post(
            &c,
            1,
            "/v1/users",
            Some(key),
            &json!({ "email": bad, "password": PASSWORD }),
        )
        .await
        .problem(400, "invalid_request");
    }
    post(
        &c,
        2,
        "/v1/users",
        Some(key),
        &json!({ "email": "mars@example.com", "region": "mars" }),
    )
    .await
    .problem(400, "invalid_request");
    post(
        &c,
        3,
        "/v1/users",
        Some(key),
        &json!({ "password": PASSWORD }),
    )
    .await
    .problem(400, "invalid_request");
    for missing in [
        "usr_1_00000000000000000000000000000000".to_owned(),
        "nonsense".to_owned(),
        format!("{alice_id}0"),
    ] {
        get(&c, 1, &format!("/v1/users/{missing}"), Some(key))
            .await
            .problem(404, "user_not_found");
        patch(
            &c,
            2,
            &format!("/v1/users/{missing}"),
            Some(key),
            &json!({ "email": "ghost@example.com" }),
        )
        .await
        .problem(404, "user_not_found");
        del(&c, 3, &format!("/v1/users/{missing}"), Some(key))
            .await
            .problem(404, "user_not_found");
        get(&c, 1, &format!("/v1/users/{missing}/sessions"), Some(key))
            .await
            .problem(404, "user_not_found");
    }

    // Sign-in: 201, no-store, an EdDSA access token verified against the JWKS.
    let ua = "cairn-auth-test/1.0";
    let r = exec(
        c.client()
            .post(c.url(3, "/v1/sessions"))
            .bearer_auth(key)
            .header("user-agent", ua)
            .json(&json!({ "email": " Alice.Smith@EXAMPLE.COM ", "password": PASSWORD })),
        "sign in with a user agent".to_owned(),
    )
    .await;
    let b = r.expect(201).clone();
    assert_eq!(r.header("cache-control"), "no-store");
    assert_eq!(b["token_type"], "Bearer");
    assert_eq!(b["user_id"], alice_id.as_str());
    let expires_in = b["expires_in"].as_u64().expect("expires_in");
    assert!(
        (ACCESS_TOKEN_TTL - 60..=ACCESS_TOKEN_TTL).contains(&expires_in),
        "{expires_in}"
    );
    let s1 = Session {
        id: s(&b, "session_id"),
        user_id: s(&b, "user_id"),
        access: s(&b, "access_token"),
        refresh: s(&b, "refresh_token"),
    };
    let keyset = jwks(&c, 1, &acme.id).await;
    assert_eq!(keys_len(&keyset), 1);
    for via in [2, 3] {
        assert_eq!(
            jwks(&c, via, &acme.id).await,
            keyset,
            "same JWKS on node {via}"
        );
    }
    let (header, claims) = verify_jwt(&s1.access, &keyset);
    assert_eq!(header["kid"], kids(&keyset)[0].as_str());
    check_claims(&claims, &s1, &acme.id);
    let globex_keyset = jwks(&c, 2, &globex.id).await;
    assert_ne!(kids(&globex_keyset), kids(&keyset), "keys are per tenant");
    for unknown in ["nosuchtenant", "x", "not-an-id", &"a".repeat(65)] {
        get(&c, 1, &format!("/v1/tenants/{unknown}/jwks.json"), None)
            .await
            .problem(404, "tenant_not_found");
    }

    // Wrong password, unknown email, a user without a password, a malformed email:
    // one identical answer.
    let mut refusals = Vec::new();
    for (email, password) in [
        ("Alice.Smith@example.com", "wrong password!"),
        ("nobody@example.com", PASSWORD),
        ("region@example.com", PASSWORD),
        ("not-an-email", PASSWORD),
    ] {
        let r = post(
            &c,
            1,
            "/v1/sessions",
            Some(key),
            &json!({ "email": email, "password": password }),
        )
        .await;
        r.problem(401, "invalid_credentials");
        refusals.push(r.body.clone());
    }
    for r in &refusals[1..] {
        assert_eq!(r, &refusals[0], "refusals are indistinguishable");
    }

    // Introspection of the access token on every node.
    for via in [1, 2, 3] {
        let v = introspect(&c, via, key, &s1.access).await;
        assert_fields(
            &v,
            &[
                "active",
                "sub",
                "sid",
                "tid",
                "exp",
                "iat",
                "amr",
                "aal",
                "iss",
                "token_type",
            ],
        );
        assert_eq!(v["active"], true);
        assert_eq!(v["token_type"], "access_token");
        for f in ["sub", "sid", "tid", "exp", "iat", "amr", "aal", "iss"] {
            assert_eq!(v[f], claims[f], "introspected {f}");
        }
    }
    // ... and of the refresh token (active while current).
    let v = introspect(&c, 2, key, &s1.refresh).await;
    assert_eq!(v["active"], true, "{v}");
    assert_eq!(v["token_type"], "refresh_token");
    assert_eq!(v["sid"], s1.id.as_str());
    assert_eq!(v["sub"], alice_id.as_str());

    // Refresh: 200, a new pair; the old refresh token is no longer current.
    let (rt2, at2) = refresh_ok(&c, 1, key, &s1.refresh).await;
    assert_ne!(rt2, s1.refresh);
    assert_eq!(generation(&rt2), generation(&s1.refresh) + 1);
    let (_, claims2) = verify_jwt(&at2, &keyset);
    check_claims(&claims2, &s1, &acme.id);
    assert_inactive(
        &introspect(&c, 3, key, &s1.refresh).await,
        "a rotated refresh token",
    );
    assert_eq!(introspect(&c, 3, key, &rt2).await["active"], true);
    assert_eq!(
        introspect(&c, 1, key, &s1.access).await["active"],
        true,
        "an access token lives until it expires"
    );
    for garbage in [
        "garbage".to_owned(),
        String::new(),
        "rt1.".to_owned(),
        "rt1.ses_1_00.0.xx".to_owned(),
        forged_refresh("ses_1_00000000000000000000000000000000", 0, 1),
        format!("{rt2}x"),
        s1.access.clone(),
    ] {
        refresh(&c, 2, key, &garbage)
            .await
            .problem(401, "invalid_refresh_token");
    }

    // Sessions list: active sessions only, their metadata, never a token.
    let s2 = sign_in(&c, 2, key, "Alice.Smith@example.com", PASSWORD).await;
    let r = get(&c, 3, &format!("/v1/users/{alice_id}/sessions"), Some(key)).await;
    let b = r.expect(200).clone();
    let sessions = b["sessions"].as_array().expect("sessions");
    assert_eq!(sessions.len(), 2, "{b}");
    for x in sessions {
        assert_fields(
            x,
            &[
                "id",
                "user_id",
                "created_at",
                "last_refreshed_at",
                "expires_at",
                "ip",
                "user_agent",
            ],
        );
        assert_eq!(x["user_id"], alice_id.as_str());
        let created = x["created_at"].as_u64().expect("created_at");
        let last = x["last_refreshed_at"].as_u64().expect("last_refreshed_at");
        let expires = x["expires_at"].as_u64().expect("expires_at");
        assert!(created <= last && last < expires, "{x}");
        assert_eq!(x["ip"], "127.0.0.1");
    }
    let listed_s1 = sessions
        .iter()
        .find(|x| x["id"] == s1.id.as_str())
        .expect("s1 listed");
    assert_eq!(listed_s1["user_agent"], ua);
    assert!(sessions.iter().any(|x| x["id"] == s2.id.as_str()));
    for secret in [&s1.refresh, &rt2, &s1.access, &at2, &s2.refresh, &s2.access] {
        assert!(!r.text.contains(secret.as_str()), "no token in the list");
    }

    // Revocation: 204; gone from the list; refresh and introspection refuse it.
    post_empty(&c, 1, &format!("/v1/sessions/{}/revoke", s1.id), Some(key))
        .await
        .expect(204);
    assert_eq!(
        listed_sessions(&c, 2, key, &alice_id).await,
        vec![s2.id.clone()]
    );
    refresh(&c, 3, key, &rt2)
        .await
        .problem(401, "session_revoked");
    assert_inactive(&introspect(&c, 2, key, &at2).await, "revoked access");
    assert_inactive(&introspect(&c, 3, key, &s1.access).await, "revoked access");
    assert_inactive(&introspect(&c, 1, key, &rt2).await, "revoked refresh");
    for missing in [
        "ses_1_00000000000000000000000000000000".to_owned(),
        "nonsense".to_owned(),
    ] {
        post_empty(&c, 2, &format!("/v1/sessions/{missing}/revoke"), Some(key))
            .await
            .problem(404, "session_not_found");
    }
    let globex_user = new_user(&c, 1, &globex.key, "g@example.com", Some(PASSWORD)).await;
    let gs = sign_in(&c, 3, &globex.key, "g@example.com", PASSWORD).await;
    assert_eq!(gs.user_id, s(&globex_user, "id"));
    post_empty(&c, 1, &format!("/v1/sessions/{}/revoke", gs.id), Some(key))
        .await
        .problem(404, "session_not_found");
    assert_eq!(
        introspect(&c, 2, &globex.key, &gs.access).await["active"],
        true
    );

    // Forged and foreign tokens introspect inactive, never an error.
    let (h, p) = {
        let mut parts = s2.access.split('.');
        (
            parts.next().expect("header").to_owned(),
            parts.next().expect("payload").to_owned(),
        )
    };
    let sig = s2.access.rsplit('.').next().expect("signature").to_owned();
    let (header, claims) = jwt_parts(&s2.access);
    let kid = s(&header, "kid");
    let attacker = SigningKey::from_bytes(&[7; 32]);
    let sign_with = |k: &SigningKey, header: &Value, claims: &Value| -> String {
        let signed = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        format!("{signed}.{}", b64(&k.sign(signed.as_bytes()).to_bytes()))
    };
    let mut tampered_sub = claims.clone();
    tampered_sub["sub"] = json!(s(&other, "id"));
    let mut tampered_exp = claims.clone();
    tampered_exp["exp"] = json!(claims["exp"].as_u64().expect("exp") + 86_400);
    let mut foreign_kid_header = jwt_parts(&gs.access).0;
    foreign_kid_header["kid"] = json!(kid);
    let gs_payload = gs.access.split('.').nth(1).expect("payload").to_owned();
    let gs_sig = gs.access.rsplit('.').next().expect("signature").to_owned();
    let mut flipped_sig = sig.clone();
    let last = flipped_sig.pop().expect("char");
    flipped_sig.push(if last == 'A' { 'Q' } else { 'A' });
    let forgeries: Vec<(&str, String)> = vec![
        (
            "alg none, no signature",
            format!(
                "{}.{p}.",
                b64(json!({ "alg": "none", "typ": "JWT", "kid": kid })
                    .to_string()
                    .as_bytes())
            ),
        ),
        (
            "alg none, original signature",
            format!(
                "{}.{p}.{sig}",
                b64(json!({ "alg": "none", "kid": kid }).to_string().as_bytes())
            ),
        ),
        (
            "alg HS256",
            format!(
                "{}.{p}.{sig}",
                b64(json!({ "alg": "HS256", "typ": "JWT", "kid": kid })
                    .to_string()
                    .as_bytes())
            ),
        ),
        (
            "signed by an attacker key under the tenant's kid",
            sign_with(&attacker, &header, &claims),
        ),
        (
            "signed by an attacker key under its own kid",
            sign_with(
                &attacker,
                &json!({ "alg": "EdDSA", "typ": "JWT", "kid": "attacker" }),
                &claims,
            ),
        ),
        (
            "a jwk header pointing at the attacker key",
            sign_with(
                &attacker,
                &json!({ "alg": "EdDSA", "typ": "JWT", "kid": kid,
                         "jwk": { "kty": "OKP", "crv": "Ed25519",
                                  "x": b64(attacker.verifying_key().as_bytes()) } }),
                &claims,
            ),
        ),
        ("another tenant's real token", gs.access.clone()),
        (
            "another tenant's token under this tenant's kid",
            format!(
                "{}.{gs_payload}.{gs_sig}",
                b64(foreign_kid_header.to_string().as_bytes())
            ),
        ),
        (
            "tampered sub",
            format!("{h}.{}.{sig}", b64(tampered_sub.to_string().as_bytes())),
        ),
        (
            "tampered exp",
            format!("{h}.{}.{sig}", b64(tampered_exp.to_string().as_bytes())),
        ),
        ("tampered signature", format!("{h}.{p}.{flipped_sig}")),
        ("no signature", format!("{h}.{p}.")),
        ("two segments", format!("{h}.{p}")),
        ("four segments", format!("{}.{sig}", s2.access)),
        ("bad base64", format!("!!!.{p}.{sig}")),
        ("bad base64 payload", format!("{h}.@@@@.{sig}")),
        ("random string", "not-a-token-at-all".to_owned()),
        ("three dots", "...".to_owned()),
        ("empty", String::new()),
        ("huge", "a".repeat(100_000)),
        ("padded base64", format!("{h}=.{p}.{sig}")),
        ("refresh prefix only", "rt1.".to_owned()),
        (
            "a made-up refresh token of a real session",
            forged_refresh(&s2.id, generation(&s2.refresh), 3),
        ),
        ("another tenant's refresh token", gs.refresh.clone()),
        ("an API key", key.to_owned()),
    ];
    for (i, (what, token)) in forgeries.iter().enumerate() {
        assert_inactive(&introspect(&c, node(i), key, token).await, what);
    }
    // The genuine token still verifies and is active.
    assert_eq!(introspect(&c, 1, key, &s2.access).await["active"], true);

    // Signing key rotation: the new JWKS holds the new and the previous key; tokens
    // signed before stay valid; new tokens carry the new kid.
    let old_kid = kids(&keyset)[0].clone();
    let r = post_empty(
        &c,
        2,
        &format!("/v1/admin/tenants/{}/signing-keys/rotate", acme.id),
        Some(TOKEN),
    )
    .await;
    let rotated = r.expect(200).clone();
    assert_fields(&rotated, &["keys"]);
    let rotated_kids = kids(&rotated);
    assert_eq!(rotated_kids.len(), 2, "{rotated}");
    assert!(rotated_kids.contains(&old_kid));
    let new_kid = rotated_kids
        .iter()
        .find(|k| **k != old_kid)
        .expect("a new kid")
        .clone();
    for via in [1, 2, 3] {
        let published = jwks(&c, via, &acme.id).await;
        let published_kids: HashSet<String> = kids(&published).into_iter().collect();
        assert_eq!(
            published_kids,
            rotated_kids.iter().cloned().collect::<HashSet<_>>(),
            "node {via} publishes both keys"
        );
    }
    let after = jwks(&c, 3, &acme.id).await;
    verify_jwt(&s2.access, &after);
    for via in [1, 2, 3] {
        assert_eq!(
            introspect(&c, via, key, &s2.access).await["active"],
            true,
            "a token signed before the rotation"
        );
    }
    let s3 = sign_in(&c, 1, key, "Alice.Smith@example.com", PASSWORD).await;
    let (h3, c3) = verify_jwt(&s3.access, &after);
    assert_eq!(h3["kid"], new_kid.as_str());
    check_claims(&c3, &s3, &acme.id);
    let (rt_after, at_after) = refresh_ok(&c, 2, key, &s2.refresh).await;
    let (h4, _) = verify_jwt(&at_after, &after);
    assert_eq!(
        h4["kid"],
        new_kid.as_str(),
        "a refresh signs with the new key"
    );
    assert_eq!(introspect(&c, 3, key, &at_after).await["active"], true);
    assert_eq!(
        jwks(&c, 1, &globex.id).await,
        globex_keyset,
        "other tenants' keys do not change"
    );
    post_empty(
        &c,
        3,
        "/v1/admin/tenants/nosuchtenant/signing-keys/rotate",
        Some(TOKEN),
    )
    .await
    .problem(404, "tenant_not_found");
    // A second rotation: tokens signed under either earlier key stay valid while
    // they have not expired.
    let r = post_empty(
        &c,
        1,
        &format!("/v1/admin/tenants/{}/signing-keys/rotate", acme.id),
        Some(TOKEN),
    )
    .await;
    let twice = kids(r.expect(200));
    assert!(
        twice.contains(&old_kid) && twice.contains(&new_kid),
        "{twice:?}"
    );
    let third_kid = twice
        .iter()
        .find(|k| **k != old_kid && **k != new_kid)
        .expect("a third kid")
        .clone();
    for (i, token) in [&s2.access, &s3.access, &at_after].into_iter().enumerate() {
        assert_eq!(
            introspect(&c, node(i), key, token).await["active"],
            true,
            "signed under an earlier key"
        );
    }
    let s4 = sign_in(&c, 2, key, "Alice.Smith@example.com", PASSWORD).await;
    let (h5, _) = verify_jwt(&s4.access, &jwks(&c, 3, &acme.id).await);
    assert_eq!(h5["kid"], third_kid.as_str());

    // PATCH: a new password; only it signs in.
    let r = patch(
        &c,
        1,
        &format!("/v1/users/{alice_id}"),
        Some(key),
        &json!({ "password": "a brand new password" }),
    )
    .await;
    let patched = r.expect(200).clone();
    assert_fields(
        &patched,
        &[
            "id",
            "email",
            "region",
            "created_at",
            "updated_at",
            "has_password",
        ],
    );
    assert_eq!(patched["email"], "Alice.Smith@example.com");
    assert_eq!(patched["created_at"], alice["created_at"]);
    assert!(patched["updated_at"].as_u64() >= alice["updated_at"].as_u64());
    post(
        &c,
        2,
        "/v1/sessions",
        Some(key),
        &json!({ "email": "Alice.Smith@example.com", "password": PASSWORD }),
    )
    .await
    .problem(401, "invalid_credentials");
    sign_in(
        &c,
        3,
        key,
        "Alice.Smith@example.com",
        "a brand new password",
    )
    .await;
    for bad in [
        json!({ "password": "short" }),
        json!({ "email": "not-an-email" }),
    ] {
        patch(&c, 2, &format!("/v1/users/{alice_id}"), Some(key), &bad)
            .await
            .problem(400, "invalid_request");
    }
    // PATCH: an email taken in this tenant -> 409; a new email moves sign-in and
    // frees the old one.
    patch(
        &c,
        3,
        &format!("/v1/users/{alice_id}"),
        Some(key),
        &json!({ "email": "alice.smith@EXAMPLE.com" }),
    )
    .await
    .problem(409, "email_taken");
    let r = patch(
        &c,
        1,
        &format!("/v1/users/{alice_id}"),
        Some(key),
        &json!({ "email": " Alice@NEW.example.com" }),
    )
    .await;
    assert_eq!(r.expect(200)["email"], "Alice@new.example.com");
    assert_eq!(
        get(&c, 2, &format!("/v1/users/{alice_id}"), Some(key))
            .await
            .expect(200)["email"],
        "Alice@new.example.com"
    );
    post(
        &c,
        2,
        "/v1/sessions",
        Some(key),
        &json!({ "email": "Alice.Smith@example.com", "password": "a brand new password" }),
    )
    .await
    .problem(401, "invalid_credentials");
    sign_in(&c, 3, key, "Alice@new.example.com", "a brand new password").await;
    let taker = new_user(&c, 1, key, "Alice.Smith@example.com", Some(PASSWORD)).await;
    let taker_session = sign_in(&c, 2, key, "Alice.Smith@example.com", PASSWORD).await;
    assert_eq!(taker_session.user_id, s(&taker, "id"));

    // DELETE: the user and all its sessions.
    let alive = listed_sessions(&c, 1, key, &alice_id).await;
    assert!(alive.len() >= 3, "{alive:?}");
    del(&c, 3, &format!("/v1/users/{alice_id}"), Some(key))
        .await
        .expect(204);
    get(&c, 1, &format!("/v1/users/{alice_id}"), Some(key))
        .await
        .problem(404, "user_not_found");
    get(&c, 2, &format!("/v1/users/{alice_id}/sessions"), Some(key))
        .await
        .problem(404, "user_not_found");
    for (i, token) in [&s2.access, &s3.access, &at_after].into_iter().enumerate() {
        assert_inactive(
            &introspect(&c, node(i), key, token).await,
            "access token of a deleted user",
        );
    }
    for (i, token) in [&rt_after, &s3.refresh].into_iter().enumerate() {
        let r = refresh(&c, node(i), key, token).await;
        assert_eq!(
            r.status, 401,
            "refresh of a deleted user's session: {}",
            r.text
        );
        assert_inactive(&introspect(&c, node(i + 1), key, token).await, "refresh");
    }
    post(
        &c,
        1,
        "/v1/sessions",
        Some(key),
        &json!({ "email": "Alice@new.example.com", "password": "a brand new password" }),
    )
    .await
    .problem(401, "invalid_credentials");
    del(&c, 2, &format!("/v1/users/{alice_id}"), Some(key))
        .await
        .problem(404, "user_not_found");
    // Other users are untouched.
    assert_eq!(
        introspect(&c, 3, key, &taker_session.access).await["active"],
        true
    );
    get(&c, 1, &format!("/v1/users/{}", s(&lower, "id")), Some(key))
        .await
        .expect(200);
}

fn keys_len(jwks: &Value) -> usize {
    jwks["keys"].as_array().map_or(0, Vec::len)
}

// ---------------------------------------------------------------------------
// 1c. Input rules on every endpoint that takes a body.
// ---------------------------------------------------------------------------

/// `body` with its first string (or first string in an array) made longer than
/// 1 MiB.
fn inflate(body: &Value) -> Value {
    let mut out = body.clone();
    let big = Value::String("x".repeat(MIB + 64));
    let map = out.as_object_mut().expect("object");
    for (_, v) in map.iter_mut() {
        if v.is_string() {
            *v = big;
            return out;
        }
        if let Some(first) = v.as_array_mut().and_then(|a| a.first_mut()) {
            *first = big;
            return out;
        }
    }
    panic!("nothing to inflate in {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_rules_on_every_endpoint() {
    let mut c = TestCluster::new(3, "");
    c.boot().await;
    let t = new_tenant(&c, 1, "inputs").await;
    let key = t.key.as_str();
    let user = new_user(&c, 2, key, "in@example.com", Some(PASSWORD)).await;
    let uid = s(&user, "id");
    let session = sign_in(&c, 3, key, "in@example.com", PASSWORD).await;

    // (method, path, auth, X-Tenant, a valid body)
    let endpoints: Vec<(Method, String, &str, Option<&str>, Value)> = vec![
        (
            Method::POST,
            "/v1/admin/tenants".to_owned(),
            TOKEN,
            None,
            json!({ "name": "fresh" }),
        ),
        (
            Method::POST,
            format!("/v1/admin/tenants/{}/api-keys", t.id),
            TOKEN,
            None,
            json!({ "scopes": ["read"] }),
        ),
        (
            Method::POST,
            "/v1/users".to_owned(),
            key,
            None,
            json!({ "email": "other@example.com", "password": PASSWORD }),
        ),
        (
            Method::PATCH,
            format!("/v1/users/{uid}"),
            key,
            None,
            json!({ "email": "changed@example.com" }),
        ),
        (
            Method::POST,
            "/v1/sessions".to_owned(),
            key,
            None,
            json!({ "email": "in@example.com", "password": PASSWORD }),
        ),
        (
            Method::POST,
            "/v1/sessions/refresh".to_owned(),
            key,
            None,
            json!({ "refresh_token": session.refresh }),
        ),
        (
            Method::POST,
            "/v1/tokens/introspect".to_owned(),
            key,
            None,
            json!({ "token": session.access }),
        ),
        (
            Method::PUT,
            "/v1/kv/input-key".to_owned(),
            key,
            None,
            json!({ "value": "v" }),
        ),
        (
            Method::PUT,
            "/v1/kv/input-key".to_owned(),
            TOKEN,
            Some("inputs"),
            json!({ "value": "v" }),
        ),
    ];
    for (i, (method, path, auth, x_tenant, valid)) in endpoints.iter().enumerate() {
        let via = node(i);
        let send = |bytes: Vec<u8>, what: &str| {
            let mut rb = c
                .client()
                .request(method.clone(), c.url(via, path))
                .bearer_auth(auth)
                .header("content-type", "application/json")
                .body(bytes);
            if let Some(x) = x_tenant {
                rb = rb.header("x-tenant", *x);
            }
            exec(rb, format!("{method} {path} via node {via}: {what}"))
        };
        // Unknown fields.
        let mut extra = valid.clone();
        extra["unexpected"] = json!(true);
        send(extra.to_string().into_bytes(), "unknown field")
            .await
            .problem(400, "invalid_request");
        let mut extra = valid.clone();
        extra["tenant"] = json!("someone-else");
        send(extra.to_string().into_bytes(), "unknown field tenant")
            .await
            .problem(400, "invalid_request");
        // Not JSON, not an object, wrong types.
        for (what, bytes) in [
            ("not JSON", b"{not json".to_vec()),
            ("empty", Vec::new()),
            ("an array", b"[]".to_vec()),
            ("a number", b"42".to_vec()),
        ] {
            send(bytes, what).await.problem(400, "invalid_request");
        }
        // Over 1 MiB.
        let r = send(inflate(valid).to_string().into_bytes(), "over 1 MiB").await;
        r.problem(413, "payload_too_large");
    }

    // Nothing the refused requests carried happened.
    let r = get(&c, 1, "/v1/admin/tenants", Some(TOKEN)).await;
    assert!(!r.text.contains("fresh"), "no tenant created: {}", r.text);
    assert_eq!(
        get(&c, 2, &format!("/v1/users/{uid}"), Some(key))
            .await
            .expect(200)["email"],
        "in@example.com"
    );
    post(
        &c,
        3,
        "/v1/sessions",
        Some(key),
        &json!({ "email": "other@example.com", "password": PASSWORD }),
    )
    .await
    .problem(401, "invalid_credentials");
    let v = introspect(&c, 1, key, &session.refresh).await;
    assert_eq!(v["active"], true, "the refresh token was not rotated: {v}");
    get(&c, 2, "/v1/kv/input-key", Some(key))
        .await
        .problem(404, "key_not_found");
    assert_eq!(
        listed_sessions(&c, 3, key, &uid).await,
        vec![session.id.clone()],
        "no session created"
    );

    // A body within the limit is accepted (a value just under 64 KiB inside it).
    put(
        &c,
        1,
        "/v1/kv/input-key",
        Some(key),
        &json!({ "value": "v".repeat(60 * 1024) }),
    )
    .await
    .expect(200);

    // Endpoints without a body and unknown routes: still problem documents with
    // nosniff and the request id (checked by `exec`).
    send_raw(&c, 2, Method::POST, "/v1/nope", key, b"{}".to_vec())
        .await
        .problem(404, "not_found");
    del(&c, 3, "/v1/sessions", Some(key)).await;
    get(&c, 1, &format!("/v1/tenants/{}/jwks.json", t.id), None)
        .await
        .expect(200);
    get(&c, 2, "/healthz", None).await;

    // A request without an id gets one; a valid one of 64 characters is echoed.
    let r = c
        .client()
        .get(c.url(1, &format!("/v1/users/{uid}")))
        .bearer_auth(key)
        .send()
        .await
        .expect("request");
    assert!(r
        .headers()
        .get("x-request-id")
        .is_some_and(|v| !v.is_empty()));
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    let long_id = "r".repeat(64);
    let r = c
        .client()
        .post(c.url(2, "/v1/tokens/introspect"))
        .bearer_auth(key)
        .header("x-request-id", &long_id)
        .json(&json!({ "token": "x", "bogus": 1 }))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["x-request-id"], long_id.as_str());
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
}

// ---------------------------------------------------------------------------
// 2. The attacker's matrix: tenant B against every object of tenant A.
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attacker_tenant_cannot_touch_another_tenants_objects() {
    let mut c = TestCluster::new(3, "");
    c.boot().await;
    let a = new_tenant(&c, 1, "victim-corp").await;
    let b = new_tenant(&c, 2, "mallory").await;
    let ak = a.key.as_str();
    let bk = b.key.as_str();

    // A's objects: a user with two sessions (one rotated twice), a KV value.
    let a_email = "ceo@victim.example";
    let a_user = new_user(&c, 1, ak, a_email, Some(PASSWORD)).await;
    let ua = s(&a_user, "id");
    let sa = sign_in(&c, 2, ak, a_email, PASSWORD).await;
    let r0 = sa.refresh.clone();
    let (r1, _) = refresh_ok(&c, 3, ak, &r0).await;
    let (r2, a_access) = refresh_ok(&c, 1, ak, &r1).await;
    let sa2 = sign_in(&c, 3, ak, a_email, PASSWORD).await;
    let put_a = put(
        &c,
        1,
        "/v1/kv/secret",
        Some(ak),
        &json!({ "value": "a-value" }),
    )
    .await;
    let a_rev = put_a.expect(200)["revision"].clone();
    let a_jwks = jwks(&c, 2, &a.id).await;
    let user_before = get(&c, 3, &format!("/v1/users/{ua}"), Some(ak))
        .await
        .expect(200)
        .clone();

    for via in [1, 2, 3] {
        // Users.
        get(&c, via, &format!("/v1/users/{ua}"), Some(bk))
            .await
            .problem(404, "user_not_found");
        for body in [
            json!({ "email": format!("mallory{via}@evil.example") }),
            json!({ "password": "owned by mallory" }),
        ] {
            patch(&c, via, &format!("/v1/users/{ua}"), Some(bk), &body)
                .await
                .problem(404, "user_not_found");
        }
        del(&c, via, &format!("/v1/users/{ua}"), Some(bk))
            .await
            .problem(404, "user_not_found");
        get(&c, via, &format!("/v1/users/{ua}/sessions"), Some(bk))
            .await
            .problem(404, "user_not_found");
        // Sessions.
        for sid in [&sa.id, &sa2.id] {
            post_empty(&c, via, &format!("/v1/sessions/{sid}/revoke"), Some(bk))
                .await
                .problem(404, "session_not_found");
        }
        // Refresh tokens: current, previous (the retry path) and retired (the
        // reuse path, which must not revoke A's session).
        for token in [&r2, &r1, &r0, &sa2.refresh] {
            let r = refresh(&c, via, bk, token).await;
            assert_eq!(r.status, 401, "B refreshing A's token: {}", r.text);
            assert!(!r.text.contains("rt1."), "no token in the refusal");
        }
        // Introspection: A's tokens are inactive for B.
        for token in [&sa.access, &a_access, &sa2.access, &r2, &sa2.refresh] {
            assert_inactive(
                &introspect(&c, via, bk, token).await,
                "A's token introspected by B",
            );
        }
        // Sign-in to A's user with B's key.
        post(
            &c,
            via,
            "/v1/sessions",
            Some(bk),
            &json!({ "email": a_email, "password": PASSWORD }),
        )
        .await
        .problem(401, "invalid_credentials");
        // KV: A's key through B's API key is B's (absent) key, even naming A in
        // X-Tenant.
        let r = get(&c, via, "/v1/kv/secret", Some(bk)).await;
        r.problem(404, "key_not_found");
        assert!(!r.text.contains("a-value"));
        let naming_a = c
            .client()
            .get(c.url(via, "/v1/kv/secret"))
            .bearer_auth(bk)
            .header("x-tenant", "victim-corp");
        let r = exec(naming_a, "B's key naming A in X-Tenant".to_owned()).await;
        r.problem(404, "key_not_found");
        assert!(!r.text.contains("a-value"));
        // A's tokens are not credentials.
        for token in [&sa.access, &r2] {
            get(&c, via, &format!("/v1/users/{ua}"), Some(token))
                .await
                .problem(401, "unauthorized");
            get(&c, via, "/v1/kv/secret", Some(token))
                .await
                .problem(401, "unauthorized");
            get(&c, via, "/v1/admin/tenants", Some(token))
                .await
                .problem(401, "unauthorized");
        }
    }
    // B writes and deletes "secret" in its own namespace only.
    put(
        &c,
        2,
        "/v1/kv/secret",
        Some(bk),
        &json!({ "value": "b-value" }),
    )
    .await
    .expect(200);
    assert_eq!(
        get(&c, 3, "/v1/kv/secret", Some(bk)).await.expect(200)["value"],
        "b-value"
    );
    del(&c, 1, "/v1/kv/secret", Some(bk)).await.expect(204);
    // B's key on A's administration.
    for (method, path, body) in [
        (Method::DELETE, format!("/v1/admin/tenants/{}", a.id), None),
        (
            Method::POST,
            format!("/v1/admin/tenants/{}/api-keys", a.id),
            Some(json!({ "scopes": ["read", "write", "manage", "delete"] })),
        ),
        (
            Method::DELETE,
            format!("/v1/admin/tenants/{}/api-keys/{}", a.id, a.key_id),
            None,
        ),
        (
            Method::POST,
            format!("/v1/admin/tenants/{}/signing-keys/rotate", a.id),
            None,
        ),
    ] {
        call(&c, 3, method, &path, Some(bk), body.as_ref())
            .await
            .problem(401, "unauthorized");
    }
    // A's key id under B's tenant is not B's to revoke.
    del(
        &c,
        1,
        &format!("/v1/admin/tenants/{}/api-keys/{}", b.id, a.key_id),
        Some(TOKEN),
    )
    .await
    .problem(404, "api_key_not_found");
    // B may have a user with the same email; it is B's, not A's.
    let b_user = new_user(&c, 2, bk, a_email, Some("mallory's password")).await;
    let bs = sign_in(&c, 3, bk, a_email, "mallory's password").await;
    assert_eq!(bs.user_id, s(&b_user, "id"));
    assert_ne!(bs.user_id, ua);
    assert_eq!(
        listed_sessions(&c, 1, bk, &bs.user_id).await,
        vec![bs.id.clone()]
    );
    // A's tokens checked with B's published keys do not verify, and B's tokens are
    // refused by A.
    let b_jwks = jwks(&c, 1, &b.id).await;
    let a_kid = s(&jwt_parts(&sa.access).0, "kid");
    assert!(!kids(&b_jwks).contains(&a_kid));
    assert_inactive(&introspect(&c, 2, ak, &bs.access).await, "B's token at A");
    assert_inactive(
        &introspect(&c, 3, ak, &bs.refresh).await,
        "B's refresh at A",
    );
    refresh(&c, 1, ak, &bs.refresh)
        .await
        .problem(401, "invalid_refresh_token");

    // Nothing of A changed.
    let user_after = get(&c, 1, &format!("/v1/users/{ua}"), Some(ak))
        .await
        .expect(200)
        .clone();
    assert_eq!(user_after, user_before, "A's user is untouched");
    let mut listed = listed_sessions(&c, 2, ak, &ua).await;
    listed.sort();
    let mut expected = vec![sa.id.clone(), sa2.id.clone()];
    expected.sort();
    assert_eq!(listed, expected, "A's sessions are all alive");
    for via in [1, 2, 3] {
        assert_eq!(introspect(&c, via, ak, &a_access).await["active"], true);
        assert_eq!(
            introspect(&c, via, ak, &r2).await["active"],
            true,
            "r2 still current"
        );
    }
    verify_jwt(&a_access, &a_jwks);
    let (r3, _) = refresh_ok(&c, 3, ak, &r2).await;
    assert_eq!(generation(&r3), 3, "B's attempts rotated nothing");
    refresh_ok(&c, 1, ak, &sa2.refresh).await;
    let r = get(&c, 2, "/v1/kv/secret", Some(ak)).await;
    let v = r.expect(200);
    assert_eq!(v["value"], "a-value");
    assert_eq!(v["revision"], a_rev);
    sign_in(&c, 1, ak, a_email, PASSWORD).await;
    assert_eq!(jwks(&c, 3, &a.id).await, a_jwks, "A's keys did not rotate");
}

// ---------------------------------------------------------------------------
// 3. Refresh rotation: a chain across nodes, lost-answer retry, reuse, forgeries,
//    and 50 concurrent refreshes of one token.
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_rotation_reuse_retry_and_concurrency() {
    let mut c = TestCluster::new(3, "");
    c.boot().await;
    let t = new_tenant(&c, 1, "rotations").await;
    let key = t.key.as_str();
    let user = new_user(&c, 2, key, "rot@example.com", Some(PASSWORD)).await;
    let uid = s(&user, "id");
    let keyset = jwks(&c, 3, &t.id).await;

    // A chain of 20 rotations through nodes 1, 2, 3, 1, ...
    let s1 = sign_in(&c, 1, key, "rot@example.com", PASSWORD).await;
    let mut seen: HashSet<String> = HashSet::from([s1.refresh.clone()]);
    let mut token = s1.refresh.clone();
    let mut access = s1.access.clone();
    for i in 0..20 {
        let via = node(i);
        let r = refresh(&c, via, key, &token).await;
        let b = r.expect(200);
        assert_eq!(b["session_id"], s1.id.as_str());
        let next = r.str("refresh_token");
        assert!(
            seen.insert(next.clone()),
            "rotation {i} answered a used token"
        );
        assert_eq!(generation(&next), generation(&token) + 1);
        let next_access = r.str("access_token");
        let (_, claims) = verify_jwt(&next_access, &keyset);
        check_claims(&claims, &s1, &t.id);
        assert_eq!(
            introspect(&c, node(i + 1), key, &next_access).await["active"],
            true
        );
        assert_inactive(
            &introspect(&c, node(i + 2), key, &token).await,
            "a rotated-away refresh token",
        );
        token = next;
        access = next_access;
    }
    assert_eq!(generation(&token), 20);
    assert_eq!(introspect(&c, 1, key, &access).await["active"], true);

    // Lost-answer retry: the previous token again, while its successor is unused,
    // answers the same pair, on any node, as often as asked.
    let (t21, a21) = refresh_ok(&c, 1, key, &token).await;
    for via in [2, 3, 1, 2] {
        let (rt, at) = refresh_ok(&c, via, key, &token).await;
        assert_eq!(rt, t21, "the retry answers the same refresh token");
        assert_eq!(at, a21, "and the same access token");
    }
    // Using the successor retires the old token: presenting it is reuse, which
    // revokes the whole session, its newest token included.
    let (t22, a22) = refresh_ok(&c, 2, key, &t21).await;
    assert_ne!(t22, t21);
    let (again, _) = refresh_ok(&c, 3, key, &t21).await;
    assert_eq!(again, t22, "t21 is now the previous token: a retry");
    refresh(&c, 3, key, &token)
        .await
        .problem(401, "refresh_token_reused");
    for via in [1, 2, 3] {
        refresh(&c, via, key, &t22)
            .await
            .problem(401, "session_revoked");
        assert_inactive(&introspect(&c, via, key, &a22).await, "after reuse");
        assert_inactive(&introspect(&c, via, key, &t22).await, "after reuse");
    }
    refresh(&c, 1, key, &t21)
        .await
        .problem(401, "session_revoked");
    refresh(&c, 2, key, &token)
        .await
        .problem(401, "session_revoked");
    assert!(!listed_sessions(&c, 1, key, &uid).await.contains(&s1.id));

    // Reuse of the very first token after two rotations.
    let s2 = sign_in(&c, 2, key, "rot@example.com", PASSWORD).await;
    let (s2_1, _) = refresh_ok(&c, 3, key, &s2.refresh).await;
    let (s2_2, _) = refresh_ok(&c, 1, key, &s2_1).await;
    refresh(&c, 2, key, &s2.refresh)
        .await
        .problem(401, "refresh_token_reused");
    refresh(&c, 3, key, &s2_2)
        .await
        .problem(401, "session_revoked");

    // Forged tokens of a live session (made-up secrets at every generation) are
    // invalid and revoke nothing.
    let s3 = sign_in(&c, 3, key, "rot@example.com", PASSWORD).await;
    let mut cur = s3.refresh.clone();
    for i in 0..4 {
        cur = refresh_ok(&c, node(i), key, &cur).await.0;
    }
    let g = generation(&cur);
    for (i, forged_gen) in [0, 1, g - 2, g - 1, g, g + 1, g + 5]
        .into_iter()
        .enumerate()
    {
        refresh(&c, node(i), key, &forged_refresh(&s3.id, forged_gen, 9))
            .await
            .problem(401, "invalid_refresh_token");
    }
    refresh(&c, 1, key, &format!("{cur}x"))
        .await
        .problem(401, "invalid_refresh_token");
    let (after_forgeries, _) = refresh_ok(&c, 2, key, &cur).await;
    assert_eq!(generation(&after_forgeries), g + 1, "the session survived");

    // 50 concurrent refreshes of one token through all three nodes: exactly one
    // successor.
    let s4 = sign_in(&c, 1, key, "rot@example.com", PASSWORD).await;
    let (t1, _) = refresh_ok(&c, 2, key, &s4.refresh).await;
    let barrier = Arc::new(tokio::sync::Barrier::new(50));
    let mut tasks = Vec::new();
    for i in 0..50 {
        let client = c.client().clone();
        let url = c.url(node(i), "/v1/sessions/refresh");
        let key = key.to_owned();
        let token = t1.clone();
        let barrier = Arc::clone(&barrier);
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let r = client
                .post(&url)
                .bearer_auth(&key)
                .json(&json!({ "refresh_token": token }))
                .send()
                .await
                .expect("concurrent refresh");
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            (status, body)
        }));
    }
    let mut successors = HashSet::new();
    let mut accesses = HashSet::new();
    let mut statuses: HashMap<u16, usize> = HashMap::new();
    for task in tasks {
        let (status, body) = task.await.expect("task");
        *statuses.entry(status).or_default() += 1;
        match status {
            200 => {
                successors.insert(s(&body, "refresh_token"));
                accesses.insert(s(&body, "access_token"));
            }
            401 => {}
            other => panic!("concurrent refresh answered {other}: {body}"),
        }
    }
    println!("50 concurrent refreshes of one token: {statuses:?}");
    assert_eq!(
        successors.len(),
        1,
        "every success answers the same successor: {statuses:?}"
    );
    assert_eq!(accesses.len(), 1, "and the same access token");
    let t2 = successors.into_iter().next().expect("one");
    assert_eq!(generation(&t2), generation(&t1) + 1);
    // The one successor refreshes fine, once: presenting it again is a retry of
    // that same rotation, not a second one.
    let (t3, a3) = refresh_ok(&c, 3, key, &t2).await;
    assert_eq!(generation(&t3), generation(&t2) + 1);
    let (t3_again, a3_again) = refresh_ok(&c, 1, key, &t2).await;
    assert_eq!((t3_again, a3_again), (t3.clone(), a3.clone()));
    assert_eq!(introspect(&c, 2, key, &a3).await["active"], true);
    assert_eq!(introspect(&c, 3, key, &t3).await["active"], true);
    assert!(listed_sessions(&c, 2, key, &uid).await.contains(&s4.id));

    // Sessions, sign-in and users survive a rotation of the tenant's data key.
    let r = post(
        &c,
        3,
        "/v1/admin/keys/rotate",
        Some(TOKEN),
        &json!({ "tenant": "rotations" }),
    )
    .await;
    r.expect(200);
    let (t4, _) = refresh_ok(&c, 1, key, &t3).await;
    assert_eq!(generation(&t4), generation(&t3) + 1);
    assert_eq!(introspect(&c, 2, key, &t4).await["active"], true);
    get(&c, 3, &format!("/v1/users/{uid}"), Some(key))
        .await
        .expect(200);

    // A lost-answer retry answers the same pair even when the tenant's signing key
    // rotated between the first answer and the retry.
    let s5 = sign_in(&c, 2, key, "rot@example.com", PASSWORD).await;
    let (first_rt, first_at) = refresh_ok(&c, 3, key, &s5.refresh).await;
    post_empty(
        &c,
        1,
        &format!("/v1/admin/tenants/{}/signing-keys/rotate", t.id),
        Some(TOKEN),
    )
    .await
    .expect(200);
    let (retry_rt, retry_at) = refresh_ok(&c, 2, key, &s5.refresh).await;
    assert_eq!(
        retry_rt, first_rt,
        "the retry answers the same refresh token"
    );
    let kid_of = |t: &str| s(&jwt_parts(t).0, "kid");
    assert!(
        retry_at == first_at,
        "the retry answers the same access token, even across a signing key rotation: \
         first answer signed under kid {}, retry under kid {} (claims equal: {})",
        kid_of(&first_at),
        kid_of(&retry_at),
        jwt_parts(&first_at).1 == jwt_parts(&retry_at).1
    );
}

// ---------------------------------------------------------------------------
// 3b. Session lifetimes are per tenant: idle and absolute ends, settings API.
// ---------------------------------------------------------------------------

const DEFAULT_IDLE: u64 = 30 * 86_400;
const DEFAULT_ABSOLUTE: u64 = 90 * 86_400;

/// The session of `session_id` as `GET /v1/users/{id}/sessions` lists it.
async fn listed_session(
    c: &TestCluster,
    via: u64,
    key: &str,
    user_id: &str,
    session_id: &str,
) -> Option<Value> {
    let r = get(c, via, &format!("/v1/users/{user_id}/sessions"), Some(key)).await;
    r.expect(200)["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .find(|x| x["id"] == session_id)
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_lifetimes_are_per_tenant() {
    let mut c = TestCluster::new(3, "");
    c.boot().await;

    // Settings at creation, shown by create, get and list (through every node).
    let r = post(
        &c,
        1,
        "/v1/admin/tenants",
        Some(TOKEN),
        &json!({ "name": "brief", "session_idle_timeout_secs": 4,
                 "session_absolute_timeout_secs": 8 }),
    )
    .await;
    let b = r.expect(201).clone();
    assert_eq!(
        (
            &b["session_idle_timeout_secs"],
            &b["session_absolute_timeout_secs"]
        ),
        (&json!(4), &json!(8))
    );
    let brief = Tenant {
        id: s(&b, "id"),
        key: s(&b, "api_key"),
        key_id: s(&b, "api_key_id"),
    };
    let plain = new_tenant(&c, 2, "plain").await;
    for via in 1..=3 {
        let r = get(
            &c,
            via,
            &format!("/v1/admin/tenants/{}", brief.id),
            Some(TOKEN),
        )
        .await;
        let b = r.expect(200);
        assert_fields(b, TENANT_FIELDS);
        assert_eq!(b["name"], "brief");
        assert_eq!(b["session_absolute_timeout_secs"], 8);
        let r = get(
            &c,
            via,
            &format!("/v1/admin/tenants/{}", plain.id),
            Some(TOKEN),
        )
        .await;
        let b = r.expect(200);
        assert_eq!(b["session_idle_timeout_secs"], DEFAULT_IDLE);
        assert_eq!(b["session_absolute_timeout_secs"], DEFAULT_ABSOLUTE);
    }
    let r = get(&c, 3, "/v1/admin/tenants", Some(TOKEN)).await;
    let listed = r.expect(200)["tenants"]
        .as_array()
        .expect("tenants")
        .clone();
    let b = listed
        .iter()
        .find(|t| t["id"] == brief.id.as_str())
        .expect("listed");
    assert_eq!(b["session_idle_timeout_secs"], 4);

    // Out of bounds, malformed, unknown, unauthorised: refused, nothing changed.
    let bad = [
        json!({ "session_idle_timeout_secs": 0 }),
        json!({ "session_absolute_timeout_secs": 0 }),
        json!({ "session_idle_timeout_secs": 10, "session_absolute_timeout_secs": 9 }),
        json!({ "session_absolute_timeout_secs": 10u64 * 365 * 86_400 + 1 }),
        json!({ "session_idle_timeout_secs": -5 }),
        json!({ "session_idle_timeout_secs": "4" }),
        json!({ "session_idle_timeout_secs": 4, "idle": 4 }),
    ];
    for body in &bad {
        patch(
            &c,
            2,
            &format!("/v1/admin/tenants/{}", brief.id),
            Some(TOKEN),
            body,
        )
        .await
        .problem(400, "invalid_request");
        let mut create = body.clone();
        create["name"] = json!("never-made");
        post(&c, 1, "/v1/admin/tenants", Some(TOKEN), &create)
            .await
            .problem(400, "invalid_request");
    }
    // Each lifetime is checked against the other as it will stand: brief's
    // absolute lifetime (8 s) for a new idle timeout, the default idle timeout
    // (30 days) for a new tenant's absolute lifetime.
    patch(
        &c,
        3,
        &format!("/v1/admin/tenants/{}", brief.id),
        Some(TOKEN),
        &json!({ "session_idle_timeout_secs": 9 }),
    )
    .await
    .problem(400, "invalid_request");
    post(
        &c,
        3,
        "/v1/admin/tenants",
        Some(TOKEN),
        &json!({ "name": "never-made", "session_absolute_timeout_secs": 5 }),
    )
    .await
    .problem(400, "invalid_request");
    let ok = json!({ "session_idle_timeout_secs": 5 });
    patch(&c, 1, "/v1/admin/tenants/0000", Some(TOKEN), &ok)
        .await
        .problem(404, "tenant_not_found");
    get(&c, 1, "/v1/admin/tenants/0000", Some(TOKEN))
        .await
        .problem(404, "tenant_not_found");
    let path = format!("/v1/admin/tenants/{}", brief.id);
    for auth in [None, Some("wrong-token"), Some(brief.key.as_str())] {
        patch(&c, 1, &path, auth, &ok)
            .await
            .problem(401, "unauthorized");
        get(&c, 1, &path, auth).await.problem(401, "unauthorized");
    }
    let r = get(&c, 3, &path, Some(TOKEN)).await;
    let b = r.expect(200);
    assert_eq!(
        (
            &b["session_idle_timeout_secs"],
            &b["session_absolute_timeout_secs"]
        ),
        (&json!(4), &json!(8)),
        "nothing changed"
    );
    let r = get(&c, 1, "/v1/admin/tenants", Some(TOKEN)).await;
    assert!(!r.text.contains("never-made"));

    // Idle end: a session unused for longer than 4 s is over; its access token
    // never outlives it.
    let key = brief.key.as_str();
    let user = new_user(&c, 1, key, "brief@example.com", Some(PASSWORD)).await;
    let uid = s(&user, "id");
    let session = sign_in(&c, 2, key, "brief@example.com", PASSWORD).await;
    let (_, claims) = jwt_parts(&session.access);
    let (iat, exp) = (
        claims["iat"].as_u64().expect("iat"),
        claims["exp"].as_u64().expect("exp"),
    );
    assert_eq!(exp, iat + 4, "capped at the idle end: {claims}");
    let listed = listed_session(&c, 3, key, &uid, &session.id)
        .await
        .expect("listed");
    assert_eq!(listed["expires_at"], iat + 4);
    assert_eq!(
        introspect(&c, 1, key, &session.access).await["active"],
        true
    );
    tokio::time::sleep(Duration::from_millis(5_200)).await;
    refresh(&c, 3, key, &session.refresh)
        .await
        .problem(401, "session_expired");
    assert_inactive(
        &introspect(&c, 1, key, &session.refresh).await,
        "refresh token of an idle-expired session",
    );
    assert_inactive(
        &introspect(&c, 2, key, &session.access).await,
        "access token of an idle-expired session",
    );
    assert!(listed_session(&c, 2, key, &uid, &session.id)
        .await
        .is_none());

    // Absolute end: refreshed every 1.5 s (well inside the idle timeout), the
    // session still ends 8 s after sign-in.
    let session = sign_in(&c, 1, key, "brief@example.com", PASSWORD).await;
    let (_, claims) = jwt_parts(&session.access);
    let signed_in = claims["iat"].as_u64().expect("iat");
    let mut token = session.refresh.clone();
    let mut i = 0;
    let ended = loop {
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        i += 1;
        let r = refresh(&c, node(i), key, &token).await;
        if r.status == 401 {
            r.problem(401, "session_expired");
            break unix_now();
        }
        let b = r.expect(200);
        let (_, claims) = jwt_parts(&s(b, "access_token"));
        let exp = claims["exp"].as_u64().expect("exp");
        assert!(
            exp <= signed_in + 8,
            "never past the absolute end: {claims}"
        );
        token = s(b, "refresh_token");
        assert!(i < 10, "the session outlived its absolute lifetime");
    };
    assert!(ended >= signed_in + 8, "not before the absolute end");
    assert_inactive(
        &introspect(&c, 3, key, &token).await,
        "refresh token past the absolute end",
    );

    // A change applies to sessions signed in from then on, at once on every
    // node; sessions signed in before keep their lifetimes.
    let pkey = plain.key.as_str();
    let puser = new_user(&c, 1, pkey, "plain@example.com", Some(PASSWORD)).await;
    let puid = s(&puser, "id");
    let before = sign_in(&c, 1, pkey, "plain@example.com", PASSWORD).await;
    let r = patch(
        &c,
        1,
        &format!("/v1/admin/tenants/{}", plain.id),
        Some(TOKEN),
        &json!({ "session_idle_timeout_secs": 60 }),
    )
    .await;
    let b = r.expect(200);
    assert_fields(b, TENANT_FIELDS);
    assert_eq!(b["session_idle_timeout_secs"], 60);
    assert_eq!(b["session_absolute_timeout_secs"], DEFAULT_ABSOLUTE);
    let after = sign_in(&c, 3, pkey, "plain@example.com", PASSWORD).await;
    let (_, claims) = jwt_parts(&after.access);
    let iat = claims["iat"].as_u64().expect("iat");
    let listed = listed_session(&c, 2, pkey, &puid, &after.id)
        .await
        .expect("listed");
    assert_eq!(listed["expires_at"], iat + 60);
    assert_eq!(claims["exp"], iat + 60, "capped at the new idle end");
    let listed = listed_session(&c, 2, pkey, &puid, &before.id)
        .await
        .expect("listed");
    assert!(
        listed["expires_at"].as_u64().expect("expires_at") >= unix_now() + DEFAULT_IDLE - 120,
        "a session signed in before the change keeps its lifetime: {listed}"
    );
    // Tenant isolation: brief's settings did not move.
    let r = get(&c, 2, &path, Some(TOKEN)).await;
    assert_eq!(r.expect(200)["session_idle_timeout_secs"], 4);
}

// ---------------------------------------------------------------------------
// 4. A revocation acknowledged by one node is seen by every node at once.
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_is_seen_on_every_node_immediately() {
    let mut c = TestCluster::new(3, "");
    c.boot().await;
    let t = new_tenant(&c, 1, "revocations").await;
    let key = t.key.as_str();
    let user = new_user(&c, 2, key, "rev@example.com", Some(PASSWORD)).await;
    let uid = s(&user, "id");

    // Session revocation, acknowledged by node 1 (then by 2 and 3 in turn).
    for round in 0..6 {
        let revoker = node(round);
        let others: Vec<u64> = [1, 2, 3].into_iter().filter(|n| *n != revoker).collect();
        let session = sign_in(&c, node(round + 1), key, "rev@example.com", PASSWORD).await;
        let (rt, at) = refresh_ok(&c, node(round + 2), key, &session.refresh).await;
        assert_eq!(introspect(&c, others[0], key, &at).await["active"], true);
        post_empty(
            &c,
            revoker,
            &format!("/v1/sessions/{}/revoke", session.id),
            Some(key),
        )
        .await
        .expect(204);
        // Immediately: both other nodes at once, then the refresh.
        let (x, y) = tokio::join!(
            introspect(&c, others[0], key, &at),
            introspect(&c, others[1], key, &at)
        );
        assert_inactive(&x, &format!("round {round}: node {}", others[0]));
        assert_inactive(&y, &format!("round {round}: node {}", others[1]));
        refresh(&c, others[1], key, &rt)
            .await
            .problem(401, "session_revoked");
        assert_inactive(
            &introspect(&c, others[0], key, &rt).await,
            "revoked refresh token",
        );
        assert!(!listed_sessions(&c, others[1], key, &uid)
            .await
            .contains(&session.id));
    }

    // Reuse detection's revocation is also seen at once everywhere.
    let session = sign_in(&c, 1, key, "rev@example.com", PASSWORD).await;
    let (r1, _) = refresh_ok(&c, 2, key, &session.refresh).await;
    let (r2, a2) = refresh_ok(&c, 3, key, &r1).await;
    refresh(&c, 1, key, &session.refresh)
        .await
        .problem(401, "refresh_token_reused");
    let (x, y) = tokio::join!(introspect(&c, 2, key, &a2), introspect(&c, 3, key, &a2));
    assert_inactive(&x, "after reuse, node 2");
    assert_inactive(&y, "after reuse, node 3");
    refresh(&c, 3, key, &r2)
        .await
        .problem(401, "session_revoked");

    // API key revocation, acknowledged by one node, fails on every node at once.
    for round in 0..3 {
        let (k, kid) = new_api_key(&c, node(round), &t.id, &["read"]).await;
        // Every node has authenticated (and may cache) the key before it goes.
        for n in 1..=3 {
            get(&c, n, &format!("/v1/users/{uid}"), Some(&k))
                .await
                .expect(200);
        }
        del(
            &c,
            node(round + 2),
            &format!("/v1/admin/tenants/{}/api-keys/{kid}", t.id),
            Some(TOKEN),
        )
        .await
        .expect(204);
        let path = format!("/v1/users/{uid}");
        let (x, y, z) = tokio::join!(
            get(&c, 1, &path, Some(&k)),
            get(&c, 2, &path, Some(&k)),
            get(&c, 3, &path, Some(&k))
        );
        for r in [x, y, z] {
            r.problem(401, "unauthorized");
        }
    }

    // User deletion, acknowledged by node 2, ends its sessions everywhere at once.
    let victim = new_user(&c, 3, key, "gone@example.com", Some(PASSWORD)).await;
    let vs = sign_in(&c, 1, key, "gone@example.com", PASSWORD).await;
    assert_eq!(introspect(&c, 3, key, &vs.access).await["active"], true);
    del(&c, 2, &format!("/v1/users/{}", s(&victim, "id")), Some(key))
        .await
        .expect(204);
    let (x, y) = tokio::join!(
        introspect(&c, 1, key, &vs.access),
        introspect(&c, 3, key, &vs.access)
    );
    assert_inactive(&x, "deleted user, node 1");
    assert_inactive(&y, "deleted user, node 3");
    let r = refresh(&c, 3, key, &vs.refresh).await;
    assert_eq!(r.status, 401, "{}", r.text);
}

// ---------------------------------------------------------------------------
// 5. Refresh chains through a SIGKILL of the data group's leader.
// ---------------------------------------------------------------------------

#[derive(Debug, Default)]
struct ChainReport {
    chain: usize,
    /// The last acknowledged refresh token and its access token.
    token: String,
    access: String,
    rotations: u64,
    replays: u64,
    unavailable: u64,
    /// Connection refused (nothing was sent: the node was down).
    refused: u64,
    /// Sent, and no answer came back (the outcome is unknown).
    lost: u64,
    /// 200s that came after an attempt whose outcome was unknown.
    recovered: u64,
    violations: Vec<String>,
}

/// One client refreshing its own chain in a loop through every node until `stop`:
/// on 200 it adopts the new token (and, every 4th rotation, replays the previous
/// token once, as a client whose answer was lost would); on 503, a timeout or a
/// connection error it retries the same token; anything else is a violation.
async fn refresh_chain(
    chain: usize,
    client: reqwest::Client,
    urls: Vec<String>,
    key: String,
    first: String,
    stop: Arc<AtomicBool>,
) -> ChainReport {
    let mut rep = ChainReport {
        chain,
        token: first.clone(),
        ..ChainReport::default()
    };
    // Presented token -> the (refresh, access) pair answered for it.
    let mut answered: HashMap<String, (String, String)> = HashMap::new();
    let mut presented = first;
    let mut unknown = false;
    let mut i = chain;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if stop.load(Ordering::SeqCst) && !unknown && presented == rep.token {
            break;
        }
        if Instant::now() > deadline {
            rep.violations.push(format!(
                "no acknowledged answer for generation {} before the deadline",
                generation(&presented)
            ));
            break;
        }
        let url = &urls[i % urls.len()];
        i += 1;
        let sent = client
            .post(url)
            .bearer_auth(&key)
            .json(&json!({ "refresh_token": presented }))
            .send()
            .await;
        let answer = match sent {
            Ok(r) => {
                let status = r.status().as_u16();
                r.json::<Value>().await.map(|b| (status, b))
            }
            Err(e) => Err(e),
        };
        let (status, body) = match answer {
            Ok(x) => x,
            Err(e) => {
                if e.is_connect() {
                    rep.refused += 1;
                } else {
                    rep.lost += 1;
                    unknown = true;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        match status {
            200 => {
                let next = s(&body, "refresh_token");
                let access = s(&body, "access_token");
                if unknown {
                    rep.recovered += 1;
                }
                unknown = false;
                if let Some(earlier) = answered.get(&presented) {
                    if *earlier != (next.clone(), access.clone()) {
                        rep.violations.push(format!(
                            "generation {} answered two different successors",
                            generation(&presented)
                        ));
                        break;
                    }
                }
                if generation(&next) != generation(&presented) + 1 {
                    rep.violations.push(format!(
                        "generation {} answered generation {}",
                        generation(&presented),
                        generation(&next)
                    ));
                    break;
                }
                answered.insert(presented.clone(), (next.clone(), access.clone()));
                if presented == rep.token {
                    rep.rotations += 1;
                    let previous = std::mem::replace(&mut rep.token, next);
                    rep.access = access;
                    presented = if rep.rotations.is_multiple_of(4) {
                        previous
                    } else {
                        rep.token.clone()
                    };
                } else {
                    // The replay of the previous token answered the same pair.
                    assert_eq!(next, rep.token, "checked above");
                    rep.replays += 1;
                    presented = rep.token.clone();
                }
            }
            503 => {
                rep.unavailable += 1;
                unknown = true;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => {
                rep.violations.push(format!(
                    "presenting generation {} (after {} rotations, last outcome {}): {other} {body}",
                    generation(&presented),
                    rep.rotations,
                    if unknown { "unknown" } else { "known" },
                ));
                break;
            }
        }
    }
    rep
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_chains_survive_a_leader_kill() {
    const CHAINS: usize = 6;
    let mut c = TestCluster::new(3, "");
    c.boot().await;
    let t = new_tenant(&c, 1, "storm").await;
    let key = t.key.clone();
    let mut sessions = Vec::new();
    for i in 0..CHAINS {
        let email = format!("storm{}@example.com", i % 3);
        if i < 3 {
            new_user(&c, node(i), &key, &email, Some(PASSWORD)).await;
        }
        sessions.push(sign_in(&c, node(i + 1), &key, &email, PASSWORD).await);
    }
    // Longer than any server-side deadline, so no request outlives its client.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let urls: Vec<String> = c
        .ids()
        .into_iter()
        .map(|id| c.url(id, "/v1/sessions/refresh"))
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let tasks: Vec<_> = sessions
        .iter()
        .enumerate()
        .map(|(i, session)| {
            tokio::spawn(refresh_chain(
                i,
                client.clone(),
                urls.clone(),
                key.clone(),
                session.refresh.clone(),
                Arc::clone(&stop),
            ))
        })
        .collect();

    tokio::time::sleep(Duration::from_secs(3)).await;
    let leader = c.leader(1, REGION).await;
    println!("killing node {leader}, the leader of {REGION}, mid-storm");
    c.kill(leader);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let survivor = c
        .ids()
        .into_iter()
        .find(|id| *id != leader)
        .expect("a survivor");
    let new_leader = c.leader(survivor, REGION).await;
    println!("new leader of {REGION}: node {new_leader}; restarting node {leader}");
    c.start(leader);
    c.wait_ready(leader).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::SeqCst);

    let mut reports = Vec::new();
    for task in tasks {
        reports.push(task.await.expect("chain task"));
    }
    println!("storm ran {:?}", started.elapsed());
    for r in &reports {
        println!(
            "chain {}: {} rotations, {} replays, {} answered 503, {} refused connections, \
             {} lost answers, {} successes after an unknown outcome",
            r.chain, r.rotations, r.replays, r.unavailable, r.refused, r.lost, r.recovered
        );
    }
    let violations: Vec<String> = reports
        .iter()
        .flat_map(|r| {
            r.violations
                .iter()
                .map(move |v| format!("chain {}: {v}", r.chain))
        })
        .collect();
    assert!(violations.is_empty(), "violations: {violations:#?}");
    assert!(
        reports.iter().all(|r| r.rotations >= 5),
        "every chain made progress"
    );

    // No acknowledged rotation was lost and no session was revoked: every chain's
    // last acknowledged token is current and refreshes, on every node.
    for (r, session) in reports.iter().zip(&sessions) {
        assert_eq!(
            generation(&r.token),
            r.rotations,
            "chain {}: one generation per acknowledged rotation",
            r.chain
        );
        for via in c.ids() {
            let v = introspect(&c, via, &key, &r.token).await;
            assert_eq!(
                v["active"], true,
                "chain {}: last token on node {via}: {v}",
                r.chain
            );
            assert_eq!(v["sid"], session.id.as_str());
            assert_eq!(introspect(&c, via, &key, &r.access).await["active"], true);
        }
        let (next, _) = refresh_ok(&c, node(r.chain), &key, &r.token).await;
        assert_eq!(generation(&next), r.rotations + 1);
        assert!(
            listed_sessions(&c, node(r.chain + 1), &key, &session.user_id)
                .await
                .contains(&session.id),
            "chain {}: session still active",
            r.chain
        );
    }
}
