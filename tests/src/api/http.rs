//! [`HttpApi`]: the API as JSON over HTTP. Every call sends a fresh
//! `x-request-id` and checks what every answer must carry (`nosniff`, the echoed
//! request id; a problem document with a `code` and the `status` for an error)
//! and the exact fields of each success body. The raw helpers ([`HttpApi::call`],
//! [`HttpApi::exec`]) are there for HTTP-only tests, with the same checks.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder};
use serde_json::{json, Map, Value};

use super::{
    Api, ApiError, Auth, ClientInfo, CreateApiKeyResponse, CreateTenantRequest,
    CreateTenantResponse, CreateUserRequest, ErrorStatus, FailedSignIns, IntrospectResponse, Jwk,
    Jwks, KvEntry, RateLimit, RefreshResponse, Reply, Session, SignInResponse, Tenant, Transport,
    UpdateTenantRequest, UpdateUserRequest, User, USER_AGENT,
};
use crate::cluster::NodeAddrs;

static REQUEST_SEQ: AtomicU64 = AtomicU64::new(0);

/// What the admin API shows of a tenant.
pub const TENANT_FIELDS: &[&str] = &[
    "id",
    "name",
    "region",
    "created_at",
    "session_idle_timeout_secs",
    "session_absolute_timeout_secs",
    "refresh_retry_grace_secs",
    "rate_limits",
    "breached_password_check",
];

/// Buckets as the HTTP API writes them: `{action: {scope: {burst, per_minute}}}`.
fn rate_limits_json(list: &[RateLimit]) -> Value {
    let mut out = Map::new();
    for l in list {
        let action = out
            .entry(l.action.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(scopes) = action {
            scopes.insert(
                l.scope.clone(),
                json!({"burst": l.burst, "per_minute": l.per_minute}),
            );
        }
    }
    Value::Object(out)
}

#[track_caller]
fn rate_limits_of(v: &Value) -> Vec<RateLimit> {
    let table = v["rate_limits"]
        .as_object()
        .unwrap_or_else(|| panic!("rate_limits in {v}"));
    let mut out = Vec::new();
    for (action, scopes) in table {
        for (scope, b) in scopes.as_object().expect("scopes") {
            assert_fields(b, &["burst", "per_minute"]);
            out.push(RateLimit {
                action: action.clone(),
                scope: scope.clone(),
                burst: u32::try_from(number(b, "burst")).expect("u32"),
                per_minute: u32::try_from(number(b, "per_minute")).expect("u32"),
            });
        }
    }
    out
}

/// The settings fields of a create or update body.
fn settings_body(
    body: &mut Map<String, Value>,
    grace: Option<u64>,
    limits: &[RateLimit],
    breached: Option<bool>,
) {
    if let Some(g) = grace {
        body.insert("refresh_retry_grace_secs".into(), json!(g));
    }
    if !limits.is_empty() {
        body.insert("rate_limits".into(), rate_limits_json(limits));
    }
    if let Some(b) = breached {
        body.insert("breached_password_check".into(), json!(b));
    }
}

/// A whole HTTP answer.
#[derive(Debug)]
pub struct Resp {
    pub what: String,
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    pub body: Value,
}

impl Resp {
    #[must_use]
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// Asserts the status; returns the JSON body.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "{}: {}", self.what, self.text);
        &self.body
    }

    /// Asserts an RFC 9457 problem document with `code`.
    #[track_caller]
    pub fn problem(&self, status: u16, code: &str) -> &Value {
        assert_eq!(self.status, status, "{}: {}", self.what, self.text);
        assert_eq!(self.body["code"], code, "{}: {}", self.what, self.text);
        assert_eq!(self.body["status"], status, "{}: {}", self.what, self.text);
        &self.body
    }

    #[track_caller]
    #[must_use]
    pub fn str(&self, field: &str) -> String {
        self.body[field]
            .as_str()
            .unwrap_or_else(|| panic!("{}: no string {field:?} in {}", self.what, self.text))
            .to_owned()
    }

    /// The error this answer is, if it is one (its problem document's `status`
    /// checked against the HTTP status).
    #[track_caller]
    fn error(&self) -> Option<ApiError> {
        if self.status < 400 {
            return None;
        }
        assert_eq!(
            self.body["status"], self.status,
            "{}: {}",
            self.what, self.text
        );
        Some(ApiError {
            what: self.what.clone(),
            status: ErrorStatus::Http(self.status),
            code: self.body["code"].as_str().unwrap_or_default().to_owned(),
            detail: self.body["detail"].as_str().map(str::to_owned),
            text: self.text.clone(),
            retry_after: self
                .headers
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok()),
        })
    }

    /// The success body with exactly `status`, or the error.
    #[track_caller]
    fn ok(&self, status: u16) -> Result<&Value, ApiError> {
        if let Some(e) = self.error() {
            return Err(e);
        }
        Ok(self.expect(status))
    }
}

/// Asserts `v` is an object with exactly these fields.
#[track_caller]
pub fn assert_fields(v: &Value, fields: &[&str]) {
    let got: HashSet<&str> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect();
    let want: HashSet<&str> = fields.iter().copied().collect();
    assert_eq!(got, want, "fields of {v}");
}

#[track_caller]
fn string(v: &Value, field: &str) -> String {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("no string {field:?} in {v}"))
        .to_owned()
}

#[track_caller]
fn number(v: &Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("no number {field:?} in {v}"))
}

#[track_caller]
fn opt_string(v: &Value, field: &str) -> Option<String> {
    match &v[field] {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => panic!("{field:?} is not a string or null: {other} in {v}"),
    }
}

/// `s` for a URL path: unreserved characters as they are (and `/` if
/// `keep_slash`), everything else percent-encoded.
fn encode_path(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The API over HTTP: one `reqwest` client (of one runtime) and the nodes'
/// addresses.
#[derive(Clone)]
pub struct HttpApi {
    client: reqwest::Client,
    /// `(id, base URL)` of each node.
    nodes: Vec<(u64, String)>,
}

impl HttpApi {
    #[must_use]
    pub fn new(client: reqwest::Client, scheme: &str, nodes: &[NodeAddrs]) -> Self {
        Self {
            client,
            nodes: nodes
                .iter()
                .map(|n| (n.id, format!("{scheme}://{}", n.http)))
                .collect(),
        }
    }

    #[must_use]
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    #[must_use]
    pub fn url(&self, via: u64, path: &str) -> String {
        let base = self
            .nodes
            .iter()
            .find(|(id, _)| *id == via)
            .map(|(_, base)| base)
            .unwrap_or_else(|| panic!("no node {via}"));
        format!("{base}{path}")
    }

    /// A request to `path` on node `via` with `auth`'s headers.
    pub fn request(&self, via: u64, method: Method, path: &str, auth: Auth<'_>) -> RequestBuilder {
        let mut rb = self.client.request(method, self.url(via, path));
        if let Some(b) = auth.bearer {
            rb = rb.bearer_auth(b);
        }
        if let Some(t) = auth.tenant {
            rb = rb.header("x-tenant", t);
        }
        rb
    }

    /// Sends `rb` with a fresh request id and reads the whole answer. Every
    /// response must carry `nosniff` and echo the request id; every error must be
    /// a problem document with a `code`.
    pub async fn exec(&self, rb: RequestBuilder, what: String) -> Resp {
        let rid = format!("api-test-{}", REQUEST_SEQ.fetch_add(1, Ordering::Relaxed));
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
            assert_eq!(
                resp.header("content-type"),
                "application/problem+json",
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

    /// `method path` through node `via`, with `auth` and a JSON `body`.
    pub async fn call(
        &self,
        via: u64,
        method: Method,
        path: &str,
        auth: Auth<'_>,
        body: Option<&Value>,
    ) -> Resp {
        let what = format!("{method} {path} via node {via}");
        let mut rb = self.request(via, method, path, auth);
        if let Some(b) = body {
            rb = rb.json(b);
        }
        self.exec(rb, what).await
    }

    pub async fn get(&self, via: u64, path: &str, auth: Auth<'_>) -> Resp {
        self.call(via, Method::GET, path, auth, None).await
    }

    pub async fn post(&self, via: u64, path: &str, auth: Auth<'_>, body: &Value) -> Resp {
        self.call(via, Method::POST, path, auth, Some(body)).await
    }

    /// A POST without a body (revocation, rotation).
    pub async fn post_empty(&self, via: u64, path: &str, auth: Auth<'_>) -> Resp {
        self.call(via, Method::POST, path, auth, None).await
    }

    pub async fn put(&self, via: u64, path: &str, auth: Auth<'_>, body: &Value) -> Resp {
        self.call(via, Method::PUT, path, auth, Some(body)).await
    }

    pub async fn patch(&self, via: u64, path: &str, auth: Auth<'_>, body: &Value) -> Resp {
        self.call(via, Method::PATCH, path, auth, Some(body)).await
    }

    pub async fn del(&self, via: u64, path: &str, auth: Auth<'_>) -> Resp {
        self.call(via, Method::DELETE, path, auth, None).await
    }

    /// Sends raw bytes as a JSON body.
    pub async fn send_raw(
        &self,
        via: u64,
        method: Method,
        path: &str,
        auth: Auth<'_>,
        bytes: Vec<u8>,
    ) -> Resp {
        let what = format!("{method} {path} via node {via} (raw {} bytes)", bytes.len());
        let rb = self
            .request(via, method, path, auth)
            .header("content-type", "application/json")
            .body(bytes);
        self.exec(rb, what).await
    }
}

/// `{"name": …}` and every field the request sets.
fn tenant_body(req: &CreateTenantRequest) -> Value {
    let mut body = Map::new();
    body.insert("name".into(), json!(req.name));
    if let Some(r) = &req.region {
        body.insert("region".into(), json!(r));
    }
    if let Some(s) = req.session_idle_timeout_secs {
        body.insert("session_idle_timeout_secs".into(), json!(s));
    }
    if let Some(s) = req.session_absolute_timeout_secs {
        body.insert("session_absolute_timeout_secs".into(), json!(s));
    }
    settings_body(
        &mut body,
        req.refresh_retry_grace_secs,
        &req.rate_limits,
        req.breached_password_check,
    );
    Value::Object(body)
}

#[track_caller]
fn tenant(v: &Value) -> Tenant {
    assert_fields(v, TENANT_FIELDS);
    Tenant {
        id: string(v, "id"),
        name: string(v, "name"),
        region: string(v, "region"),
        created_at: number(v, "created_at"),
        session_idle_timeout_secs: number(v, "session_idle_timeout_secs"),
        session_absolute_timeout_secs: number(v, "session_absolute_timeout_secs"),
        refresh_retry_grace_secs: number(v, "refresh_retry_grace_secs"),
        rate_limits: rate_limits_of(v),
        breached_password_check: v["breached_password_check"]
            .as_bool()
            .unwrap_or_else(|| panic!("breached_password_check in {v}")),
    }
}

#[track_caller]
fn user(v: &Value) -> User {
    assert_fields(
        v,
        &[
            "id",
            "email",
            "region",
            "created_at",
            "updated_at",
            "has_password",
            "failed_sign_ins",
        ],
    );
    let failed = &v["failed_sign_ins"];
    assert_fields(failed, &["count", "last_at", "last_ip"]);
    User {
        failed_sign_ins: Some(FailedSignIns {
            count: number(failed, "count"),
            last_at: failed["last_at"].as_u64(),
            last_ip: failed["last_ip"].as_str().map(str::to_owned),
        }),
        id: string(v, "id"),
        email: string(v, "email"),
        region: string(v, "region"),
        created_at: number(v, "created_at"),
        updated_at: number(v, "updated_at"),
        has_password: v["has_password"]
            .as_bool()
            .unwrap_or_else(|| panic!("has_password in {v}")),
    }
}

#[track_caller]
fn jwks(v: &Value) -> Jwks {
    assert_fields(v, &["keys"]);
    let keys = v["keys"]
        .as_array()
        .unwrap_or_else(|| panic!("keys in {v}"))
        .iter()
        .map(|k| {
            assert_fields(k, &["kty", "crv", "x", "kid", "alg", "use"]);
            Jwk {
                kty: string(k, "kty"),
                crv: string(k, "crv"),
                x: string(k, "x"),
                kid: string(k, "kid"),
                alg: string(k, "alg"),
                r#use: string(k, "use"),
            }
        })
        .collect();
    Jwks { keys }
}

#[track_caller]
fn kv_entry(v: &Value) -> KvEntry {
    assert_fields(v, &["key", "value", "revision"]);
    KvEntry {
        key: string(v, "key"),
        value: string(v, "value"),
        revision: number(v, "revision"),
    }
}

/// The fields an active access token's introspection shows.
const ACCESS_INTROSPECTION: &[&str] = &[
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
];

#[track_caller]
fn introspection(v: &Value) -> IntrospectResponse {
    let active = v["active"]
        .as_bool()
        .unwrap_or_else(|| panic!("active in {v}"));
    if !active {
        assert_eq!(
            v,
            &json!({ "active": false }),
            "only `active` when inactive"
        );
        return IntrospectResponse::default();
    }
    if v["token_type"] == "access_token" {
        assert_fields(v, ACCESS_INTROSPECTION);
    } else {
        let known: HashSet<&str> = ACCESS_INTROSPECTION.iter().copied().collect();
        for k in v.as_object().map(Map::keys).into_iter().flatten() {
            assert!(known.contains(k.as_str()), "unknown field {k:?} in {v}");
        }
    }
    IntrospectResponse {
        active,
        token_type: opt_string(v, "token_type"),
        iss: opt_string(v, "iss"),
        sub: opt_string(v, "sub"),
        sid: opt_string(v, "sid"),
        tid: opt_string(v, "tid"),
        iat: v["iat"].as_u64(),
        exp: v["exp"].as_u64(),
        amr: v["amr"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|x| {
                        x.as_str()
                            .unwrap_or_else(|| panic!("amr in {v}"))
                            .to_owned()
                    })
                    .collect()
            })
            .unwrap_or_default(),
        aal: opt_string(v, "aal"),
    }
}

/// Token answers are never cached.
#[track_caller]
fn assert_no_store(r: &Resp) {
    assert_eq!(r.header("cache-control"), "no-store", "{}", r.what);
}

/// `client` as a request body holds it.
fn client_json(c: &ClientInfo) -> Value {
    let mut v = json!({});
    if let Some(ip) = &c.ip {
        v["ip"] = json!(ip);
    }
    if let Some(ua) = &c.user_agent {
        v["user_agent"] = json!(ua);
    }
    v
}

impl Api for HttpApi {
    fn transport(&self) -> Transport {
        Transport::Http
    }

    async fn create_tenant(
        &self,
        via: u64,
        auth: Auth<'_>,
        req: CreateTenantRequest,
    ) -> Reply<CreateTenantResponse> {
        let r = self
            .post(via, "/v1/admin/tenants", auth, &tenant_body(&req))
            .await;
        let b = r.ok(201)?;
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
                "refresh_retry_grace_secs",
                "rate_limits",
                "breached_password_check",
            ],
        );
        let t = tenant(&{
            let mut v = b.clone();
            if let Value::Object(m) = &mut v {
                m.remove("api_key");
                m.remove("api_key_id");
            }
            v
        });
        Ok(CreateTenantResponse {
            id: string(b, "id"),
            name: string(b, "name"),
            region: string(b, "region"),
            created_at: number(b, "created_at"),
            api_key: string(b, "api_key"),
            api_key_id: string(b, "api_key_id"),
            session_idle_timeout_secs: number(b, "session_idle_timeout_secs"),
            session_absolute_timeout_secs: number(b, "session_absolute_timeout_secs"),
            refresh_retry_grace_secs: t.refresh_retry_grace_secs,
            rate_limits: t.rate_limits,
            breached_password_check: t.breached_password_check,
        })
    }

    async fn list_tenants(&self, via: u64, auth: Auth<'_>) -> Reply<Vec<Tenant>> {
        let r = self.get(via, "/v1/admin/tenants", auth).await;
        let b = r.ok(200)?;
        assert_fields(b, &["tenants"]);
        Ok(b["tenants"]
            .as_array()
            .unwrap_or_else(|| panic!("tenants in {b}"))
            .iter()
            .map(tenant)
            .collect())
    }

    async fn get_tenant(&self, via: u64, auth: Auth<'_>, id: &str) -> Reply<Tenant> {
        let path = format!("/v1/admin/tenants/{}", encode_path(id, false));
        let r = self.get(via, &path, auth).await;
        Ok(tenant(r.ok(200)?))
    }

    async fn update_tenant(
        &self,
        via: u64,
        auth: Auth<'_>,
        req: UpdateTenantRequest,
    ) -> Reply<Tenant> {
        let mut body = Map::new();
        if let Some(s) = req.session_idle_timeout_secs {
            body.insert("session_idle_timeout_secs".into(), json!(s));
        }
        if let Some(s) = req.session_absolute_timeout_secs {
            body.insert("session_absolute_timeout_secs".into(), json!(s));
        }
        settings_body(
            &mut body,
            req.refresh_retry_grace_secs,
            &req.rate_limits,
            req.breached_password_check,
        );
        let path = format!("/v1/admin/tenants/{}", encode_path(&req.id, false));
        let r = self.patch(via, &path, auth, &Value::Object(body)).await;
        Ok(tenant(r.ok(200)?))
    }

    async fn delete_tenant(&self, via: u64, auth: Auth<'_>, id: &str) -> Reply<()> {
        let path = format!("/v1/admin/tenants/{}", encode_path(id, false));
        self.del(via, &path, auth).await.ok(204).map(|_| ())
    }

    async fn create_api_key(
        &self,
        via: u64,
        auth: Auth<'_>,
        tenant_id: &str,
        scopes: &[&str],
    ) -> Reply<CreateApiKeyResponse> {
        let path = format!(
            "/v1/admin/tenants/{}/api-keys",
            encode_path(tenant_id, false)
        );
        let r = self
            .post(via, &path, auth, &json!({ "scopes": scopes }))
            .await;
        let b = r.ok(201)?;
        assert_fields(b, &["id", "api_key", "scopes", "created_at"]);
        Ok(CreateApiKeyResponse {
            id: string(b, "id"),
            api_key: string(b, "api_key"),
            scopes: b["scopes"]
                .as_array()
                .unwrap_or_else(|| panic!("scopes in {b}"))
                .iter()
                .map(|s| {
                    s.as_str()
                        .unwrap_or_else(|| panic!("scope in {b}"))
                        .to_owned()
                })
                .collect(),
            created_at: number(b, "created_at"),
        })
    }

    async fn revoke_api_key(
        &self,
        via: u64,
        auth: Auth<'_>,
        tenant_id: &str,
        key_id: &str,
    ) -> Reply<()> {
        let path = format!(
            "/v1/admin/tenants/{}/api-keys/{}",
            encode_path(tenant_id, false),
            encode_path(key_id, false)
        );
        self.del(via, &path, auth).await.ok(204).map(|_| ())
    }

    async fn rotate_signing_key(&self, via: u64, auth: Auth<'_>, tenant_id: &str) -> Reply<Jwks> {
        let path = format!(
            "/v1/admin/tenants/{}/signing-keys/rotate",
            encode_path(tenant_id, false)
        );
        let r = self.post_empty(via, &path, auth).await;
        Ok(jwks(r.ok(200)?))
    }

    async fn get_jwks(&self, via: u64, tenant_id: &str) -> Reply<Jwks> {
        let path = format!("/v1/tenants/{}/jwks.json", encode_path(tenant_id, false));
        let r = self.get(via, &path, Auth::NONE).await;
        let keys = jwks(r.ok(200)?);
        assert!(
            r.header("cache-control").contains("public"),
            "the JWKS is cacheable: {:?}",
            r.header("cache-control")
        );
        Ok(keys)
    }

    async fn create_user(&self, via: u64, auth: Auth<'_>, req: CreateUserRequest) -> Reply<User> {
        let mut body = json!({ "email": req.email });
        if let Some(p) = &req.password {
            body["password"] = json!(p);
        }
        if let Some(r) = &req.region {
            body["region"] = json!(r);
        }
        if let Some(c) = &req.client {
            body["client"] = client_json(c);
        }
        let r = self.post(via, "/v1/users", auth, &body).await;
        Ok(user(r.ok(201)?))
    }

    async fn get_user(&self, via: u64, auth: Auth<'_>, id: &str) -> Reply<User> {
        let path = format!("/v1/users/{}", encode_path(id, false));
        let r = self.get(via, &path, auth).await;
        Ok(user(r.ok(200)?))
    }

    async fn update_user(&self, via: u64, auth: Auth<'_>, req: UpdateUserRequest) -> Reply<User> {
        let mut body = Map::new();
        if let Some(e) = &req.email {
            body.insert("email".into(), json!(e));
        }
        if let Some(p) = &req.password {
            body.insert("password".into(), json!(p));
        }
        if let Some(k) = &req.keep_session_id {
            body.insert("keep_session_id".into(), json!(k));
        }
        let path = format!("/v1/users/{}", encode_path(&req.id, false));
        let r = self.patch(via, &path, auth, &Value::Object(body)).await;
        Ok(user(r.ok(200)?))
    }

    async fn list_users(
        &self,
        via: u64,
        auth: Auth<'_>,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Reply<(Vec<User>, Option<String>)> {
        let mut query = Vec::new();
        if let Some(c) = cursor {
            query.push(format!("cursor={}", encode_path(c, false)));
        }
        if let Some(l) = limit {
            query.push(format!("limit={l}"));
        }
        let path = if query.is_empty() {
            "/v1/users".to_owned()
        } else {
            format!("/v1/users?{}", query.join("&"))
        };
        let r = self.get(via, &path, auth).await;
        let b = r.ok(200)?;
        assert_fields(b, &["users", "next_cursor"]);
        let users = b["users"]
            .as_array()
            .unwrap_or_else(|| panic!("users in {b}"))
            .iter()
            .map(user)
            .collect();
        Ok((users, b["next_cursor"].as_str().map(str::to_owned)))
    }

    async fn lookup_user(&self, via: u64, auth: Auth<'_>, email: &str) -> Reply<User> {
        let body = json!({ "email": email });
        let r = self.post(via, "/v1/users/lookup", auth, &body).await;
        Ok(user(r.ok(200)?))
    }

    async fn delete_user(&self, via: u64, auth: Auth<'_>, id: &str) -> Reply<()> {
        let path = format!("/v1/users/{}", encode_path(id, false));
        self.del(via, &path, auth).await.ok(204).map(|_| ())
    }

    async fn list_sessions(&self, via: u64, auth: Auth<'_>, user_id: &str) -> Reply<Vec<Session>> {
        let path = format!("/v1/users/{}/sessions", encode_path(user_id, false));
        let r = self.get(via, &path, auth).await;
        let b = r.ok(200)?;
        assert_fields(b, &["sessions"]);
        Ok(b["sessions"]
            .as_array()
            .unwrap_or_else(|| panic!("sessions in {b}"))
            .iter()
            .map(|x| {
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
                Session {
                    id: string(x, "id"),
                    user_id: string(x, "user_id"),
                    created_at: number(x, "created_at"),
                    last_refreshed_at: number(x, "last_refreshed_at"),
                    expires_at: number(x, "expires_at"),
                    ip: opt_string(x, "ip"),
                    user_agent: opt_string(x, "user_agent"),
                }
            })
            .collect())
    }

    async fn sign_in_for(
        &self,
        via: u64,
        auth: Auth<'_>,
        email: &str,
        password: &str,
        client: Option<ClientInfo>,
    ) -> Reply<SignInResponse> {
        let mut body = json!({ "email": email, "password": password });
        if let Some(c) = &client {
            body["client"] = client_json(c);
        }
        let rb = self
            .request(via, Method::POST, "/v1/sessions", auth)
            .header("user-agent", USER_AGENT)
            .json(&body);
        let r = self
            .exec(rb, format!("POST /v1/sessions via node {via}"))
            .await;
        let b = r.ok(201)?;
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
        assert_no_store(&r);
        Ok(SignInResponse {
            session_id: string(b, "session_id"),
            user_id: string(b, "user_id"),
            access_token: string(b, "access_token"),
            token_type: string(b, "token_type"),
            expires_in: number(b, "expires_in"),
            refresh_token: string(b, "refresh_token"),
        })
    }

    async fn refresh_for(
        &self,
        via: u64,
        auth: Auth<'_>,
        refresh_token: &str,
        client: Option<ClientInfo>,
    ) -> Reply<RefreshResponse> {
        let mut body = json!({ "refresh_token": refresh_token });
        if let Some(c) = &client {
            body["client"] = client_json(c);
        }
        let r = self.post(via, "/v1/sessions/refresh", auth, &body).await;
        let b = r.ok(200)?;
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
        assert_no_store(&r);
        Ok(RefreshResponse {
            session_id: string(b, "session_id"),
            access_token: string(b, "access_token"),
            token_type: string(b, "token_type"),
            expires_in: number(b, "expires_in"),
            refresh_token: string(b, "refresh_token"),
        })
    }

    async fn revoke_session(&self, via: u64, auth: Auth<'_>, session_id: &str) -> Reply<()> {
        let path = format!("/v1/sessions/{}/revoke", encode_path(session_id, false));
        self.post_empty(via, &path, auth).await.ok(204).map(|_| ())
    }

    async fn revoke_user_sessions(&self, via: u64, auth: Auth<'_>, user_id: &str) -> Reply<()> {
        let path = format!("/v1/users/{}/sessions/revoke", encode_path(user_id, false));
        self.post_empty(via, &path, auth).await.ok(204).map(|_| ())
    }

    async fn introspect(
        &self,
        via: u64,
        auth: Auth<'_>,
        token: &str,
        token_type_hint: Option<&str>,
    ) -> Reply<IntrospectResponse> {
        let mut body = json!({ "token": token });
        if let Some(h) = token_type_hint {
            body["token_type_hint"] = json!(h);
        }
        let r = self.post(via, "/v1/tokens/introspect", auth, &body).await;
        Ok(introspection(r.ok(200)?))
    }

    async fn kv_put(
        &self,
        via: u64,
        auth: Auth<'_>,
        key: &str,
        value: &str,
        expected_revision: Option<u64>,
    ) -> Reply<KvEntry> {
        let mut body = json!({ "value": value });
        if let Some(rev) = expected_revision {
            body["expected_revision"] = json!(rev);
        }
        let path = format!("/v1/kv/{}", encode_path(key, true));
        let r = self.put(via, &path, auth, &body).await;
        Ok(kv_entry(r.ok(200)?))
    }

    async fn kv_get(&self, via: u64, auth: Auth<'_>, key: &str) -> Reply<KvEntry> {
        let path = format!("/v1/kv/{}", encode_path(key, true));
        let r = self.get(via, &path, auth).await;
        Ok(kv_entry(r.ok(200)?))
    }

    async fn kv_delete(
        &self,
        via: u64,
        auth: Auth<'_>,
        key: &str,
        expected_revision: Option<u64>,
    ) -> Reply<()> {
        let mut path = format!("/v1/kv/{}", encode_path(key, true));
        if let Some(rev) = expected_revision {
            let _ = write!(path, "?expected_revision={rev}");
        }
        self.del(via, &path, auth).await.ok(204).map(|_| ())
    }
}
