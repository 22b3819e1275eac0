//! The client API, black-box, on one shared 3-node cluster: one module per
//! feature (the names every layer uses), one tenant (or more) per test, so tests
//! cannot see each other's data and may run in parallel.
//!
//! Behaviour scenarios are written once against [`cairn_tests::api::Api`] and run
//! over both transports by [`over_both_transports!`] (as `<scenario>::http` and
//! `<scenario>::grpc`); what only one transport has (JSON bodies and headers,
//! problem documents, raw paths, gRPC metadata) is in tests named `http_…` or
//! `grpc_…`. Calls go through different nodes on purpose. Tests that stop,
//! pause, cut off or restart nodes are in the `faults` binary, on their own
//! clusters.

use std::collections::HashSet;
use std::time::{SystemTime, UNIX_EPOCH};

pub use cairn_tests::api::user_request;
use cairn_tests::api::{
    bearer, Api, Auth, CreateApiKeyResponse, CreateTenantRequest, CreateTenantResponse, GrpcApi,
    HttpApi, IntrospectResponse, Jwks, SignInResponse,
};
use cairn_tests::shared::{shared, unique};
use cairn_tests::ClusterClient;
use reqwest::Method;
use serde_json::{json, Value};

/// Runs each named scenario `async fn s<A: Api>(cx: &Cx<A>)` as two tests,
/// `s::http` and `s::grpc`.
macro_rules! over_both_transports {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn http() {
                super::$scenario(&crate::Cx::http()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn grpc() {
                super::$scenario(&crate::Cx::grpc()).await;
            }
        }
    )*};
}

mod api_keys;
mod bench;
mod cluster;
mod kv;
mod sessions;
mod signing_keys;
mod tenants;
mod transport;
mod users;

/// The shared cluster's only region (and so its data group's name).
pub const REGION: &str = "local";
pub const PASSWORD: &str = "correct horse battery";
pub const ACCESS_TOKEN_TTL: u64 = 900;
pub const DEFAULT_IDLE: u64 = 30 * 86_400;
pub const DEFAULT_ABSOLUTE: u64 = 90 * 86_400;
/// A user id of the right form that no tenant has.
pub const NO_USER: &str = "usr_1_00000000000000000000000000000000";
/// A session id of the right form that no tenant has.
pub const NO_SESSION: &str = "ses_1_00000000000000000000000000000000";

/// What a test works with: an API client made in its own runtime, and a client
/// of the shared cluster (URLs, HTTP helpers, the CLI) made the same way.
pub struct Cx<A> {
    pub api: A,
    pub cluster: ClusterClient,
}

impl Cx<HttpApi> {
    pub fn http() -> Self {
        let cluster = shared().client();
        Self {
            api: cluster.http_api(),
            cluster,
        }
    }
}

impl Cx<GrpcApi> {
    pub fn grpc() -> Self {
        let cluster = shared().client();
        Self {
            api: cluster.grpc_api(),
            cluster,
        }
    }
}

impl<A> Cx<A> {
    /// HTTP, for what only HTTP has (data key rotation, cluster status) or to
    /// read back over the other transport, whatever the transport under test.
    pub fn over_http(&self) -> HttpApi {
        self.cluster.http_api()
    }
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Node 1, 2, 3, 1, … for `i` = 0, 1, 2, 3, …
pub fn node(i: usize) -> u64 {
    u64::try_from(i % 3).expect("small") + 1
}

/// A request to create tenant `name` (in `region`, if given).
pub fn tenant_request(name: &str, region: Option<&str>) -> CreateTenantRequest {
    CreateTenantRequest {
        name: name.to_owned(),
        region: region.map(str::to_owned),
        ..CreateTenantRequest::default()
    }
}

/// Creates a tenant named `name-<n>` through node `via`, checking the answer.
pub async fn new_tenant<A: Api>(api: &A, via: u64, name: &str) -> CreateTenantResponse {
    let name = unique(name);
    let t = api
        .create_tenant(via, Auth::OPERATOR, tenant_request(&name, None))
        .await
        .expect("create tenant");
    assert_eq!(t.name, name);
    assert_eq!(t.region, REGION);
    t
}

/// Issues an API key with `scopes`, checking it holds exactly those.
pub async fn new_api_key<A: Api>(
    api: &A,
    via: u64,
    tenant_id: &str,
    scopes: &[&str],
) -> CreateApiKeyResponse {
    let k = api
        .create_api_key(via, Auth::OPERATOR, tenant_id, scopes)
        .await
        .expect("create api key");
    let got: HashSet<&str> = k.scopes.iter().map(String::as_str).collect();
    assert_eq!(got, scopes.iter().copied().collect::<HashSet<_>>());
    k
}

/// Creates a user with API key `key`.
pub async fn new_user<A: Api>(
    api: &A,
    via: u64,
    key: &str,
    email: &str,
    password: Option<&str>,
) -> cairn_tests::api::User {
    api.create_user(via, bearer(key), user_request(email, password))
        .await
        .expect("create user")
}

/// Signs in, expecting success.
pub async fn sign_in<A: Api>(
    api: &A,
    via: u64,
    key: &str,
    email: &str,
    password: &str,
) -> SignInResponse {
    let s = api
        .sign_in(via, bearer(key), email, password)
        .await
        .expect("sign in");
    assert_eq!(s.token_type, "Bearer");
    s
}

/// Refreshes, expecting success; returns (refresh token, access token).
pub async fn refresh_ok<A: Api>(api: &A, via: u64, key: &str, token: &str) -> (String, String) {
    let r = api.refresh(via, bearer(key), token).await.expect("refresh");
    assert_eq!(r.token_type, "Bearer");
    (r.refresh_token, r.access_token)
}

/// Introspects `token` with API key `key`.
pub async fn introspect<A: Api>(api: &A, via: u64, key: &str, token: &str) -> IntrospectResponse {
    api.introspect(via, bearer(key), token, None)
        .await
        .expect("introspect")
}

/// Asserts an introspection says `active: false` and nothing else.
#[track_caller]
pub fn assert_inactive(v: &IntrospectResponse, what: &str) {
    assert_eq!(v, &IntrospectResponse::default(), "{what}");
}

/// The tenant's published JWKS, checked: Ed25519 signing keys only.
pub async fn jwks<A: Api>(api: &A, via: u64, tenant_id: &str) -> Jwks {
    let keys = api.get_jwks(via, tenant_id).await.expect("jwks");
    for k in &keys.keys {
        assert_eq!(
            (
                k.kty.as_str(),
                k.crv.as_str(),
                k.alg.as_str(),
                k.r#use.as_str()
            ),
            ("OKP", "Ed25519", "EdDSA", "sig")
        );
        assert!(!k.kid.is_empty() && k.x.len() == 43, "{k:?}");
    }
    keys
}

pub fn kids(jwks: &Jwks) -> Vec<String> {
    jwks.keys.iter().map(|k| k.kid.clone()).collect()
}

/// Checks an access token's claims for `session` of `tenant_id`.
#[track_caller]
pub fn check_claims(claims: &Value, session: &SignInResponse, tenant_id: &str) {
    let fields: HashSet<&str> = claims
        .as_object()
        .expect("claims")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        fields,
        ["iss", "sub", "sid", "tid", "iat", "exp", "amr", "aal"]
            .into_iter()
            .collect::<HashSet<_>>(),
        "{claims}"
    );
    assert_eq!(claims["sub"], session.user_id.as_str());
    assert_eq!(claims["sid"], session.session_id.as_str());
    assert_eq!(claims["tid"], tenant_id);
    assert_eq!(
        claims["iss"],
        format!("urn:cairn:tenant:{tenant_id}"),
        "{claims}"
    );
    assert_eq!(claims["amr"], json!(["pwd"]));
    assert_eq!(claims["aal"], "aal1");
    let iat = claims["iat"].as_u64().expect("iat");
    let exp = claims["exp"].as_u64().expect("exp");
    assert_eq!(exp, iat + ACCESS_TOKEN_TTL, "exp = iat + 900");
    assert!(iat.abs_diff(unix_now()) < 120, "iat {iat} is now");
}

/// Active session ids of `user_id`, as listed.
pub async fn listed_sessions<A: Api>(api: &A, via: u64, key: &str, user_id: &str) -> Vec<String> {
    api.list_sessions(via, bearer(key), user_id)
        .await
        .expect("list sessions")
        .into_iter()
        .map(|s| s.id)
        .collect()
}

/// `body` with its first string (or first string in an array) made longer than
/// 1 MiB.
fn inflate(body: &Value) -> Value {
    let mut out = body.clone();
    let big = Value::String("x".repeat(1024 * 1024 + 64));
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

/// The input rules of an HTTP endpoint that takes a JSON body, checked with
/// variations of `valid`: unknown fields (`tenant` too), not JSON, not an
/// object, and a body over 1 MiB are refused before anything happens.
pub async fn assert_strict_json_body(
    http: &HttpApi,
    via: u64,
    method: Method,
    path: &str,
    auth: Auth<'_>,
    valid: &Value,
) {
    let send = |bytes: Vec<u8>, what: &str| {
        let rb = http
            .request(via, method.clone(), path, auth)
            .header("content-type", "application/json")
            .body(bytes);
        http.exec(rb, format!("{method} {path} via node {via}: {what}"))
    };
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
    for (what, bytes) in [
        ("not JSON", b"{not json".to_vec()),
        ("empty", Vec::new()),
        ("an array", b"[]".to_vec()),
        ("a number", b"42".to_vec()),
    ] {
        send(bytes, what).await.problem(400, "invalid_request");
    }
    send(inflate(valid).to_string().into_bytes(), "over 1 MiB")
        .await
        .problem(413, "payload_too_large");
}
