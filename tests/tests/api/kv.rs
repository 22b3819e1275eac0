//! `kv`: the tenant key-value store — put, get, compare-and-set, delete, the
//! size limits, the tenant a call acts on (from the API key, or the operator's
//! `x-tenant`) and the isolation between tenants.

use cairn_tests::api::{bearer, fails, unauthorized, Api, Auth, KvEntry};
use cairn_tests::shared::unique;
use reqwest::Method;
use serde_json::json;

use crate::{assert_strict_json_body, new_tenant, tenant_request, Cx};

over_both_transports!(
    kv_put_get_compare_and_set_and_delete,
    kv_tenants_are_isolated_and_must_exist,
    kv_refuses_missing_or_wrong_credentials,
);

async fn kv_put_get_compare_and_set_and_delete<A: Api>(cx: &Cx<A>) {
    let api = &cx.api;
    let alpha = new_tenant(api, 1, "alpha").await;
    let beta = new_tenant(api, 2, "beta").await;
    let op = Auth::operator_for(&alpha.name);

    // Put / get through different nodes; the answer is {key, value, revision}.
    let put = api
        .kv_put(1, op, "greeting", "hello", None)
        .await
        .expect("put");
    assert_eq!(
        (put.key.as_str(), put.value.as_str()),
        ("greeting", "hello")
    );
    let rev = put.revision;
    let got = api.kv_get(2, op, "greeting").await.expect("get");
    assert_eq!(
        got,
        KvEntry {
            key: "greeting".into(),
            value: "hello".into(),
            revision: rev
        }
    );
    // Keys may contain slashes and spaces.
    api.kv_put(3, op, "a/b c", "nested", None)
        .await
        .expect("put");
    assert_eq!(api.kv_get(1, op, "a/b c").await.expect("get").key, "a/b c");
    let beta_op = Auth::operator_for(&beta.name);
    api.kv_put(2, beta_op, "greeting", "bonjour", None)
        .await
        .expect("put");

    // Compare-and-set.
    let swapped = api
        .kv_put(2, op, "greeting", "hi", Some(rev))
        .await
        .expect("cas");
    let new_rev = swapped.revision;
    assert!(new_rev > rev);
    let stale = fails(
        api.kv_put(3, op, "greeting", "lost", Some(rev)).await,
        412,
        "revision_mismatch",
    );
    assert!(
        stale
            .detail
            .as_deref()
            .is_some_and(|d| d.contains(&new_rev.to_string())),
        "{stale:?}"
    );
    fails(
        api.kv_put(3, op, "greeting", "red", Some(new_rev + 100))
            .await,
        412,
        "revision_mismatch",
    );
    assert_eq!(api.kv_get(1, op, "greeting").await.expect("v").value, "hi");
    fails(
        api.kv_put(1, op, "greeting", "create", Some(0)).await,
        412,
        "revision_mismatch",
    );
    api.kv_put(1, op, "fresh-key", "created", Some(0))
        .await
        .expect("expected revision 0 creates");

    // Delete: then not found; again: fine (idempotent); guarded by a stale
    // revision: refused.
    api.kv_delete(3, op, "greeting", None)
        .await
        .expect("delete");
    fails(api.kv_get(1, op, "greeting").await, 404, "key_not_found");
    api.kv_delete(2, op, "greeting", None)
        .await
        .expect("idempotent");
    fails(
        api.kv_delete(1, op, "fresh-key", Some(1)).await,
        412,
        "revision_mismatch",
    );
    assert_eq!(
        api.kv_get(2, beta_op, "greeting").await.expect("b").value,
        "bonjour"
    );

    // Limits: value > 64 KiB, key > 512 bytes; a value of exactly 64 KiB is fine.
    fails(
        api.kv_put(1, op, "big", &"x".repeat(64 * 1024 + 1), None)
            .await,
        413,
        "payload_too_large",
    );
    fails(
        api.kv_put(3, op, &"k".repeat(513), "v", None).await,
        413,
        "payload_too_large",
    );
    api.kv_put(1, op, "max", &"x".repeat(64 * 1024), None)
        .await
        .expect("64 KiB");
}

async fn kv_tenants_are_isolated_and_must_exist<A: Api>(cx: &Cx<A>) {
    let api = &cx.api;

    // The same key in two tenants holds two values.
    let alpha = new_tenant(api, 1, "alpha").await;
    let beta = new_tenant(api, 2, "beta").await;
    let (a_op, b_op) = (
        Auth::operator_for(&alpha.name),
        Auth::operator_for(&beta.name),
    );
    api.kv_put(1, a_op, "greeting", "hello", None)
        .await
        .expect("put");
    api.kv_put(2, b_op, "greeting", "bonjour", None)
        .await
        .expect("put");
    assert_eq!(
        api.kv_get(3, a_op, "greeting").await.expect("a").value,
        "hello"
    );
    assert_eq!(
        api.kv_get(3, b_op, "greeting").await.expect("b").value,
        "bonjour"
    );

    // A tenant that was never created is not found, and a write does not create
    // it; once created, its keyspace is empty.
    let gamma = unique("gamma");
    let g_op = Auth::operator_for(&gamma);
    fails(
        api.kv_get(1, g_op, "greeting").await,
        404,
        "tenant_not_found",
    );
    for via in [1, 3] {
        fails(
            api.kv_put(via, g_op, "greeting", "x", None).await,
            404,
            "tenant_not_found",
        );
    }
    assert!(
        !api.list_tenants(1, Auth::OPERATOR)
            .await
            .expect("list")
            .iter()
            .any(|t| t.name == gamma),
        "an unknown x-tenant creates nothing"
    );
    api.create_tenant(1, Auth::OPERATOR, tenant_request(&gamma, None))
        .await
        .expect("create gamma");
    fails(api.kv_get(1, g_op, "greeting").await, 404, "key_not_found");

    // An API key names its tenant; the operator's x-tenant reaches the same data.
    let acme = new_tenant(api, 1, "acme").await;
    let globex = new_tenant(api, 2, "globex").await;
    let ak = bearer(&acme.api_key);
    let put = api
        .kv_put(1, ak, "greeting", "hello", None)
        .await
        .expect("put with an API key");
    assert_eq!(
        (put.key.as_str(), put.value.as_str()),
        ("greeting", "hello")
    );
    assert_eq!(api.kv_get(2, ak, "greeting").await.expect("get"), put);
    assert_eq!(
        api.kv_get(3, Auth::operator_for(&acme.name), "greeting")
            .await
            .expect("the operator reads it with x-tenant")
            .value,
        "hello"
    );
    fails(
        api.kv_get(1, bearer(&globex.api_key), "greeting").await,
        404,
        "key_not_found",
    );
    api.kv_delete(3, ak, "greeting", None)
        .await
        .expect("delete");
    fails(api.kv_get(1, ak, "greeting").await, 404, "key_not_found");

    // Another tenant's key reads its own namespace, even naming the victim in
    // x-tenant; it writes and deletes there only.
    let a = new_tenant(api, 1, "victim-corp").await;
    let b = new_tenant(api, 2, "mallory").await;
    let (ak, bk) = (bearer(&a.api_key), bearer(&b.api_key));
    let a_put = api
        .kv_put(1, ak, "secret", "a-value", None)
        .await
        .expect("put");
    for via in [1, 2, 3] {
        let e = fails(api.kv_get(via, bk, "secret").await, 404, "key_not_found");
        assert!(!e.text.contains("a-value"), "{e:?}");
        let e = fails(
            api.kv_get(via, bk.with_tenant(&a.name), "secret").await,
            404,
            "key_not_found",
        );
        assert!(!e.text.contains("a-value"), "{e:?}");
    }
    api.kv_put(2, bk, "secret", "b-value", None)
        .await
        .expect("B writes its own");
    assert_eq!(
        api.kv_get(3, bk, "secret").await.expect("get").value,
        "b-value"
    );
    api.kv_delete(1, bk, "secret", None)
        .await
        .expect("B deletes its own");
    assert_eq!(
        api.kv_get(2, ak, "secret").await.expect("A's value"),
        a_put,
        "A's value and revision are untouched"
    );
}

async fn kv_refuses_missing_or_wrong_credentials<A: Api>(cx: &Cx<A>) {
    let api = &cx.api;
    let t = new_tenant(api, 1, "creds").await;
    unauthorized(
        api.kv_get(
            1,
            Auth {
                bearer: None,
                tenant: Some(&t.name),
            },
            "fresh-key",
        )
        .await,
    );
    for (via, wrong) in [
        (2, "test-admin-token-0123456789abcdef0124"),
        (1, "wrong-token-wrong-token-wrong-token"),
    ] {
        unauthorized(
            api.kv_get(via, bearer(wrong).with_tenant(&t.name), "fresh-key")
                .await,
        );
    }
    fails(
        api.kv_get(3, Auth::OPERATOR, "fresh-key").await,
        400,
        "missing_tenant",
    );
}

/// HTTP: keys come URL-decoded from the path, a refusal for missing
/// credentials says how to authenticate, bodies are strict JSON under 1 MiB,
/// and unknown routes are problem documents too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_kv_paths_bodies_and_headers() {
    let cx = Cx::http();
    let http = &cx.api;
    let t = new_tenant(http, 1, "alpha").await;
    let op = Auth::operator_for(&t.name);

    http.put(3, "/v1/kv/a/b%20c", op, &json!({ "value": "nested" }))
        .await
        .expect(200);
    assert_eq!(
        http.kv_get(1, op, "a/b c").await.expect("present").key,
        "a/b c"
    );

    let r = http
        .get(
            1,
            "/v1/kv/fresh-key",
            Auth {
                bearer: None,
                tenant: Some(&t.name),
            },
        )
        .await;
    r.problem(401, "unauthorized");
    assert!(!r.header("www-authenticate").is_empty(), "{}", r.what);

    http.put(
        2,
        "/v1/kv/huge",
        op,
        &json!({ "value": "x".repeat(1024 * 1024 + 10) }),
    )
    .await
    .problem(413, "payload_too_large");

    // Malformed JSON, unknown fields, wrong types: refused, nothing written.
    for body in [
        r#"{"value": "#,
        r#"{"value": "v", "colour": 1}"#,
        r#"{"value": 5}"#,
        "",
    ] {
        http.send_raw(1, Method::PUT, "/v1/kv/bad", op, body.as_bytes().to_vec())
            .await
            .problem(400, "invalid_request");
    }
    fails(http.kv_get(2, op, "bad").await, 404, "key_not_found");

    // The input rules, for an API key and for the operator's x-tenant.
    let key = bearer(&t.api_key);
    for (i, auth) in [key, op].into_iter().enumerate() {
        assert_strict_json_body(
            http,
            crate::node(i),
            Method::PUT,
            "/v1/kv/input-key",
            auth,
            &json!({ "value": "v" }),
        )
        .await;
    }
    fails(http.kv_get(2, key, "input-key").await, 404, "key_not_found");
    // A body within the limit is accepted (a value just under 64 KiB inside it).
    http.put(
        1,
        "/v1/kv/input-key",
        key,
        &json!({ "value": "v".repeat(60 * 1024) }),
    )
    .await
    .expect(200);

    http.get(1, "/v1/nothing", Auth::NONE)
        .await
        .problem(404, "not_found");
}

/// gRPC: an empty key is invalid (over HTTP there is no route to it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_kv_refuses_an_empty_key() {
    let cx = Cx::grpc();
    let t = new_tenant(&cx.api, 1, "empty-key").await;
    fails(
        cx.api
            .kv_put(3, Auth::operator_for(&t.name), "", "v", None)
            .await,
        400,
        "invalid_request",
    );
}
