//! What each transport adds around every feature: HTTP's `nosniff`, request
//! ids and problem documents on every answer (unknown routes and methods
//! included), and one store behind both transports (what gRPC writes, HTTP
//! reads, and the other way round, with the same codes), and which answer wins
//! when several things are wrong with a request.

use cairn_tests::api::{bearer, fails, Api, Auth};
use cairn_tests::shared::unique;
use reqwest::Method;
use serde_json::json;

use crate::{new_api_key, new_tenant, new_user, Cx, NO_USER, PASSWORD};

over_both_transports!(an_api_key_is_no_operator);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_every_answer_has_nosniff_and_a_request_id() {
    let cx = Cx::http();
    let http = &cx.api;
    let t = new_tenant(http, 1, "inputs").await;
    let k = bearer(&t.api_key);
    let uid = new_user(http, 2, &t.api_key, "in@example.com", Some(PASSWORD))
        .await
        .id;

    // Unknown routes and methods, and endpoints without a body: still problem
    // documents with nosniff and the request id (checked by `exec`).
    http.send_raw(2, Method::POST, "/v1/nope", k, b"{}".to_vec())
        .await
        .problem(404, "not_found");
    let r = http.del(3, "/v1/sessions", k).await;
    assert!(r.status >= 400, "{}: {}", r.what, r.text);
    http.get(1, &format!("/v1/tenants/{}/jwks.json", t.id), Auth::NONE)
        .await
        .expect(200);
    http.get(2, "/healthz", Auth::NONE).await;

    // A request without an id gets one; a valid one of 64 characters is echoed,
    // on an error too.
    let r = http
        .request(1, Method::GET, &format!("/v1/users/{uid}"), k)
        .send()
        .await
        .expect("request");
    assert!(r
        .headers()
        .get("x-request-id")
        .is_some_and(|v| !v.is_empty()));
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    let long_id = "r".repeat(64);
    let r = http
        .request(2, Method::POST, "/v1/tokens/introspect", k)
        .header("x-request-id", &long_id)
        .json(&json!({ "token": "x", "bogus": 1 }))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["x-request-id"], long_id.as_str());
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
}

/// One store behind both transports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_grpc_writes_http_reads_and_the_other_way_round() {
    let cx = Cx::grpc();
    let (grpc, http) = (&cx.api, &cx.over_http());
    let t = new_tenant(grpc, 1, "interop").await;
    let k = bearer(&t.api_key);

    // Users: written over gRPC, read over HTTP (and back), the same refusals.
    let alice = new_user(grpc, 1, &t.api_key, "alice@example.com", Some(PASSWORD)).await;
    assert_eq!(
        http.get_user(2, k, &alice.id).await.expect("over HTTP"),
        alice
    );
    let bob = new_user(http, 3, &t.api_key, "bob@example.com", None).await;
    assert_eq!(grpc.get_user(1, k, &bob.id).await.expect("over gRPC"), bob);
    for r in [
        grpc.get_user(1, k, NO_USER).await,
        http.get_user(2, k, NO_USER).await,
    ] {
        fails(r, 404, "user_not_found");
    }

    // The same JWKS, newest key first, after a rotation over gRPC.
    grpc.rotate_signing_key(2, Auth::OPERATOR, &t.id)
        .await
        .expect("rotate");
    let over_grpc = grpc.get_jwks(1, &t.id).await.expect("jwks");
    assert_eq!(over_grpc.keys.len(), 2);
    assert_eq!(http.get_jwks(3, &t.id).await.expect("jwks"), over_grpc);

    // KV: the same entry and revision either way.
    let op = Auth::operator_for(&t.name);
    let written = grpc
        .kv_put(1, op, "color", "blue", None)
        .await
        .expect("put");
    assert_eq!(http.kv_get(3, op, "color").await.expect("get"), written);
    let rewritten = http
        .kv_put(2, k, "color", "red", Some(written.revision))
        .await
        .expect("cas");
    assert_eq!(grpc.kv_get(3, k, "color").await.expect("get"), rewritten);
}

/// HTTP: a route answers for its credentials before it reads the path and body
/// (what each handler checked first before the restructure, d5d0e85): the
/// operator routes and the API-key routes refuse missing or wrong credentials
/// with 401 whatever the body; KV checks the key's scope, and the operator's
/// `X-Tenant` and its tenant, before the body too; the users and sessions
/// routes check the scope in the operation, after the body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_credentials_answer_before_the_path_and_body() {
    let cx = Cx::http();
    let http = &cx.api;
    let t = new_tenant(http, 1, "order").await;
    let read_only = new_api_key(http, 2, &t.id, &["read"]).await.api_key;
    let no_body = Vec::new;

    // No credentials and no body: 401, on an API-key, an operator and a KV route.
    for (method, path) in [
        (Method::POST, "/v1/users".to_owned()),
        (Method::POST, "/v1/sessions".to_owned()),
        (Method::POST, "/v1/admin/tenants".to_owned()),
        (Method::PATCH, format!("/v1/admin/tenants/{}", t.id)),
        (Method::PUT, "/v1/kv/k".to_owned()),
    ] {
        http.send_raw(3, method, &path, Auth::NONE, no_body())
            .await
            .problem(401, "unauthorized");
    }

    // An API key on an operator route, with a bad body or none needed: 401
    // (it is never taken for the admin token).
    http.send_raw(
        1,
        Method::POST,
        "/v1/admin/tenants",
        bearer(&t.api_key),
        no_body(),
    )
    .await
    .problem(401, "unauthorized");
    http.get(2, "/v1/admin/tenants", bearer(&t.api_key))
        .await
        .problem(401, "unauthorized");

    // KV: a key without the scope, with a bad body: 403.
    http.send_raw(
        3,
        Method::PUT,
        "/v1/kv/k",
        bearer(&read_only),
        b"{".to_vec(),
    )
    .await
    .problem(403, "insufficient_scope");
    // Users: the scope is the operation's, after the body: 400.
    http.send_raw(1, Method::POST, "/v1/users", bearer(&read_only), no_body())
        .await
        .problem(400, "invalid_request");

    // KV for the operator: a missing or unknown tenant before the body.
    http.send_raw(2, Method::PUT, "/v1/kv/k", Auth::OPERATOR, no_body())
        .await
        .problem(400, "missing_tenant");
    let nobody = unique("no-such-tenant");
    http.send_raw(
        3,
        Method::PUT,
        "/v1/kv/k",
        Auth::operator_for(&nobody),
        no_body(),
    )
    .await
    .problem(404, "tenant_not_found");

    // An `X-Tenant` that is not text refuses a KV request whoever makes it.
    let rb = http.request(1, Method::GET, "/v1/kv/k", Auth::NONE).header(
        "x-tenant",
        reqwest::header::HeaderValue::from_bytes(b"t\xff").expect("obs-text"),
    );
    http.exec(rb, "GET /v1/kv/k with a binary X-Tenant".to_owned())
        .await
        .problem(400, "invalid_request");
}

/// A tenant API key is no operator credential: the operator operations refuse
/// it (before anything else), the public ones ignore it.
async fn an_api_key_is_no_operator<A: Api>(cx: &Cx<A>) {
    let api = &cx.api;
    let t = new_tenant(api, 1, "not-operator").await;
    let k = bearer(&t.api_key);
    fails(api.list_tenants(2, k).await, 401, "unauthorized");
    fails(api.get_tenant(3, k, &t.id).await, 401, "unauthorized");
    fails(
        api.create_api_key(1, k, &t.id, &["read"]).await,
        401,
        "unauthorized",
    );
    fails(
        api.rotate_signing_key(2, k, &t.id).await,
        401,
        "unauthorized",
    );
    assert!(!api.get_jwks(3, &t.id).await.expect("jwks").keys.is_empty());
}
