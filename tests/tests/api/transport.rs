//! What each transport adds around every feature: HTTP's `nosniff`, request
//! ids and problem documents on every answer (unknown routes and methods
//! included), and one store behind both transports (what gRPC writes, HTTP
//! reads, and the other way round, with the same codes).

use cairn_tests::api::{bearer, fails, Api, Auth};
use reqwest::Method;
use serde_json::json;

use crate::{new_tenant, new_user, Cx, NO_USER, PASSWORD};

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
