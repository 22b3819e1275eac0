//! `api_keys`: issuing and revoking a tenant's API keys, what each scope
//! allows, and which credentials tenant and admin routes accept.

use std::fmt::Debug;

use cairn_tests::api::{
    bearer, fails, insufficient_scope, unauthorized, Api, Auth, Reply, UpdateUserRequest,
};
use cairn_tests::jwt::b64;
use cairn_tests::shared::unique;
use cairn_tests::TOKEN;
use reqwest::Method;
use serde_json::json;

use crate::{
    assert_strict_json_body, listed_sessions, new_api_key, new_tenant, new_user, node, sign_in,
    tenant_request, user_request, Cx, NO_USER, PASSWORD,
};

over_both_transports!(
    api_keys_are_issued_with_valid_scopes_and_revoked_everywhere,
    each_scope_allows_exactly_its_operations,
    tenant_routes_refuse_missing_or_foreign_credentials,
    an_api_key_revocation_holds_on_every_node_at_once,
);

async fn api_keys_are_issued_with_valid_scopes_and_revoked_everywhere<A: Api>(cx: &Cx<A>) {
    let api = &cx.api;
    let t = new_tenant(api, 1, "acme").await;
    let other = new_tenant(api, 2, "globex").await;
    let alice = new_user(api, 1, &t.api_key, "alice@example.com", Some(PASSWORD)).await;

    // Scopes are validated, sorted and deduplicated.
    let issued = api
        .create_api_key(2, Auth::OPERATOR, &t.id, &["write", "read", "write"])
        .await
        .expect("create api key");
    assert_eq!(issued.scopes, ["read", "write"]);
    assert!(issued.api_key.starts_with("ck_") && !issued.id.is_empty() && issued.created_at > 0);
    for (i, bad) in [&[][..], &["admin"][..], &["read", "everything"][..]]
        .into_iter()
        .enumerate()
    {
        fails(
            api.create_api_key(node(i), Auth::OPERATOR, &t.id, bad)
                .await,
            400,
            "invalid_request",
        );
    }
    fails(
        api.create_api_key(2, Auth::OPERATOR, "nosuchtenant", &["read"])
            .await,
        404,
        "tenant_not_found",
    );
    unauthorized(api.create_api_key(3, Auth::NONE, &t.id, &["read"]).await);

    // Revocation: the operator only, through the key's own tenant; at once on
    // every node; a second revocation, an unknown key id or another tenant's
    // key id is not found.
    unauthorized(api.revoke_api_key(1, Auth::NONE, &t.id, &issued.id).await);
    fails(
        api.revoke_api_key(1, Auth::OPERATOR, &other.id, &issued.id)
            .await,
        404,
        "api_key_not_found",
    );
    let ik = bearer(&issued.api_key);
    fails(api.get_user(2, ik, NO_USER).await, 404, "user_not_found");
    api.revoke_api_key(2, Auth::OPERATOR, &t.id, &issued.id)
        .await
        .expect("revoke api key");
    for via in [1, 2, 3] {
        unauthorized(api.get_user(via, ik, &alice.id).await);
        unauthorized(api.kv_get(via, ik, "anything").await);
    }
    fails(
        api.revoke_api_key(3, Auth::OPERATOR, &t.id, &issued.id)
            .await,
        404,
        "api_key_not_found",
    );
    fails(
        api.revoke_api_key(1, Auth::OPERATOR, &t.id, "0123456789abcdef")
            .await,
        404,
        "api_key_not_found",
    );
    for (tenant, key_id) in [(&t.id, &other.api_key_id), (&other.id, &t.api_key_id)] {
        fails(
            api.revoke_api_key(1, Auth::OPERATOR, tenant, key_id).await,
            404,
            "api_key_not_found",
        );
    }
    fails(
        api.kv_get(2, bearer(&other.api_key), "anything").await,
        404,
        "key_not_found",
    );

    // Revoking the tenant's first key leaves its other keys working.
    let both = new_api_key(api, 3, &t.id, &["read", "write"]).await;
    api.revoke_api_key(1, Auth::OPERATOR, &t.id, &t.api_key_id)
        .await
        .expect("revoke the first key");
    for via in [1, 2, 3] {
        unauthorized(api.get_user(via, bearer(&t.api_key), &alice.id).await);
    }
    api.get_user(3, bearer(&both.api_key), &alice.id)
        .await
        .expect("another key still works");
}

/// Allowed if the key holds `needed`, else refused for the scope.
#[track_caller]
fn scoped<T: Debug>(r: Reply<T>, held: &str, needed: &str) {
    if held == needed {
        if let Err(e) = r {
            panic!("a {held} key may do what needs {needed}: {e:?}");
        }
    } else {
        insufficient_scope(r);
    }
}

/// The scope matrix: one key per scope against every tenant operation.
async fn each_scope_allows_exactly_its_operations<A: Api>(cx: &Cx<A>) {
    let api = &cx.api;
    let t = new_tenant(api, 1, "scopes").await;
    let ak = t.api_key.as_str();
    let alice_email = "alice@example.com";
    let alice = new_user(api, 1, ak, alice_email, Some(PASSWORD)).await.id;
    let victim = new_user(api, 2, ak, "victim@example.com", Some(PASSWORD))
        .await
        .id;
    let to_refresh = sign_in(api, 2, ak, alice_email, PASSWORD).await;
    let to_revoke = sign_in(api, 3, ak, alice_email, PASSWORD).await;
    let both = new_api_key(api, 3, &t.id, &["read", "write"]).await;
    let mut keys = Vec::new();
    for (i, scope) in ["write", "read", "manage", "delete"]
        .into_iter()
        .enumerate()
    {
        keys.push((scope, new_api_key(api, node(i), &t.id, &[scope]).await));
    }
    for (i, (held, key)) in keys.iter().enumerate() {
        let via = node(i);
        let k = bearer(&key.api_key);
        scoped(
            api.create_user(
                via,
                k,
                user_request(&format!("new-{held}@example.com"), Some(PASSWORD)),
            )
            .await,
            held,
            "write",
        );
        scoped(api.get_user(via, k, &alice).await, held, "read");
        scoped(
            api.update_user(
                via,
                k,
                UpdateUserRequest {
                    id: alice.clone(),
                    email: Some(alice_email.to_owned()),
                    password: None,
                    keep_session_id: None,
                },
            )
            .await,
            held,
            "write",
        );
        scoped(api.list_sessions(via, k, &alice).await, held, "read");
        scoped(
            api.sign_in(via, k, alice_email, PASSWORD).await,
            held,
            "write",
        );
        scoped(
            api.refresh(via, k, &to_refresh.refresh_token).await,
            held,
            "write",
        );
        scoped(
            api.revoke_session(via, k, &to_revoke.session_id).await,
            held,
            "manage",
        );
        scoped(
            api.introspect(via, k, &to_refresh.access_token, None).await,
            held,
            "read",
        );
        scoped(api.kv_put(via, k, "scoped", "v", None).await, held, "write");
        scoped(api.kv_get(via, k, "scoped").await, held, "read");
        scoped(api.kv_delete(via, k, "scoped", None).await, held, "delete");
        scoped(api.delete_user(via, k, &victim).await, held, "delete");
    }
    // The refused calls changed nothing; the allowed ones did what they said.
    fails(
        api.get_user(1, bearer(ak), &victim).await,
        404,
        "user_not_found",
    );
    fails(
        api.kv_get(1, bearer(ak), "scoped").await,
        404,
        "key_not_found",
    );
    assert!(!listed_sessions(api, 2, ak, &alice)
        .await
        .contains(&to_revoke.session_id));
    // A key with two scopes has both and nothing else.
    let bk = bearer(&both.api_key);
    api.get_user(1, bk, &alice).await.expect("read");
    api.kv_put(2, bk, "both", "v", None).await.expect("write");
    insufficient_scope(api.kv_delete(3, bk, "both", None).await);
}

async fn tenant_routes_refuse_missing_or_foreign_credentials<A: Api>(cx: &Cx<A>) {
    let api = &cx.api;
    let acme = new_tenant(api, 1, "acme").await;
    let globex = new_tenant(api, 2, "globex").await;
    let alice = new_user(api, 1, &acme.api_key, "alice@example.com", Some(PASSWORD))
        .await
        .id;

    // Missing, malformed, unknown or misplaced credentials on tenant routes.
    let unknown_key = format!("ck_0123456789abcdef_{}", b64(&[5; 32]));
    let truncated = &acme.api_key[..acme.api_key.len() - 1];
    for auth in [
        Auth::NONE,
        bearer("garbage"),
        bearer(&unknown_key),
        Auth::OPERATOR,
        bearer(truncated),
    ] {
        unauthorized(api.get_user(1, auth, &alice).await);
    }
    // The operator token is not a tenant API key.
    unauthorized(
        api.create_user(3, Auth::OPERATOR, user_request("carol@example.com", None))
            .await,
    );

    // A tenant API key (even with every scope) is no admin token; nor is
    // anything else but the operator's token.
    let sneaky = unique("sneaky");
    for (i, auth) in [
        bearer(&acme.api_key),
        Auth::NONE,
        bearer("not-the-admin-token"),
        bearer(&globex.api_key),
    ]
    .into_iter()
    .enumerate()
    {
        let via = node(i);
        unauthorized(api.list_tenants(via, auth).await);
        unauthorized(
            api.create_tenant(via, auth, tenant_request(&sneaky, None))
                .await,
        );
        unauthorized(api.delete_tenant(via, auth, &globex.id).await);
        unauthorized(api.delete_tenant(via, auth, &acme.id).await);
        unauthorized(
            api.create_api_key(via, auth, &acme.id, &["read", "write", "manage", "delete"])
                .await,
        );
        unauthorized(
            api.revoke_api_key(via, auth, &acme.id, &acme.api_key_id)
                .await,
        );
        unauthorized(api.rotate_signing_key(via, auth, &acme.id).await);
    }
    assert!(
        !api.list_tenants(1, Auth::OPERATOR)
            .await
            .expect("list")
            .iter()
            .any(|t| t.name == sneaky),
        "nothing was created"
    );
    api.get_user(2, bearer(&acme.api_key), &alice)
        .await
        .expect("nothing was revoked");
}

/// A key revoked through one node fails on every node at once, although every
/// node had authenticated (and may cache) it.
async fn an_api_key_revocation_holds_on_every_node_at_once<A: Api>(cx: &Cx<A>) {
    let api = &cx.api;
    let t = new_tenant(api, 1, "revocations").await;
    let uid = new_user(api, 2, &t.api_key, "rev@example.com", Some(PASSWORD))
        .await
        .id;
    for round in 0..3 {
        let k = new_api_key(api, node(round), &t.id, &["read"]).await;
        let auth = bearer(&k.api_key);
        for via in 1..=3 {
            api.get_user(via, auth, &uid).await.expect("the key works");
        }
        api.revoke_api_key(node(round + 2), Auth::OPERATOR, &t.id, &k.id)
            .await
            .expect("revoke");
        let (x, y, z) = tokio::join!(
            api.get_user(1, auth, &uid),
            api.get_user(2, auth, &uid),
            api.get_user(3, auth, &uid)
        );
        for r in [x, y, z] {
            unauthorized(r);
        }
    }
}

/// HTTP: scopes must be a list, the body is strict JSON, and only a `Bearer`
/// authorization counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_api_key_bodies_are_strict_and_only_bearer_credentials_count() {
    let cx = Cx::http();
    let http = &cx.api;
    let t = new_tenant(http, 1, "acme").await;
    let path = format!("/v1/admin/tenants/{}/api-keys", t.id);
    for bad in [json!({ "scopes": "read" }), json!({})] {
        http.post(1, &path, Auth::OPERATOR, &bad)
            .await
            .problem(400, "invalid_request");
    }
    assert_strict_json_body(
        http,
        2,
        Method::POST,
        &path,
        Auth::OPERATOR,
        &json!({ "scopes": ["read"] }),
    )
    .await;

    let user = new_user(http, 2, &t.api_key, "in@example.com", Some(PASSWORD)).await;
    let basic = http
        .client()
        .get(http.url(2, &format!("/v1/users/{}", user.id)))
        .header("authorization", format!("Basic {}", t.api_key));
    http.exec(basic, "Basic auth".to_owned())
        .await
        .problem(401, "unauthorized");
    // The admin token in a Basic header is no admin credential either.
    let basic = http
        .client()
        .get(http.url(3, "/v1/admin/tenants"))
        .header("authorization", format!("Basic {TOKEN}"));
    http.exec(basic, "Basic admin auth".to_owned())
        .await
        .problem(401, "unauthorized");
}
