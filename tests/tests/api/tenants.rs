//! `tenants`: tenant records (create, list, get, delete), their session
//! lifetime settings, and deletion taking effect on every node at once.

use std::collections::HashSet;

use cairn_tests::api::{
    bearer, fails, unauthorized, Api, Auth, CreateTenantRequest, RateLimit, UpdateTenantRequest,
};
use cairn_tests::shared::unique;
use reqwest::Method;
use serde_json::json;

use crate::{
    assert_strict_json_body, jwks, new_tenant, new_user, node, sign_in, tenant_request, unix_now,
    Cx, DEFAULT_ABSOLUTE, DEFAULT_IDLE, NO_USER, PASSWORD, REGION,
};

over_both_transports!(
    tenants_are_created_listed_and_validated,
    tenant_settings_are_validated_and_kept_per_tenant,
    deleting_a_tenant_removes_its_keys_jwks_and_data_everywhere,
    a_tenant_deletion_holds_at_once_on_every_node,
    rate_limit_and_refresh_settings_are_shown_and_checked,
);

fn lifetimes(name: &str, idle: Option<u64>, absolute: Option<u64>) -> CreateTenantRequest {
    CreateTenantRequest {
        name: name.to_owned(),
        region: None,
        session_idle_timeout_secs: idle,
        session_absolute_timeout_secs: absolute,
        ..Default::default()
    }
}

fn update(id: &str, idle: Option<u64>, absolute: Option<u64>) -> UpdateTenantRequest {
    UpdateTenantRequest {
        id: id.to_owned(),
        session_idle_timeout_secs: idle,
        session_absolute_timeout_secs: absolute,
        ..Default::default()
    }
}

async fn tenants_are_created_listed_and_validated<A: Api>(cx: &Cx<A>) {
    let api = &cx.api;
    let acme_name = unique("acme");

    // Only the operator creates tenants.
    for auth in [Auth::NONE, bearer("not-the-admin-token")] {
        unauthorized(
            api.create_tenant(1, auth, tenant_request(&acme_name, None))
                .await,
        );
    }

    // Create: the first API key (shown once), the default session lifetimes;
    // with and without a region.
    let acme = api
        .create_tenant(1, Auth::OPERATOR, tenant_request(&acme_name, Some(REGION)))
        .await
        .expect("create tenant");
    assert_eq!(
        (acme.name.as_str(), acme.region.as_str()),
        (acme_name.as_str(), REGION)
    );
    assert!(acme.created_at.abs_diff(unix_now()) < 120);
    assert!(!acme.id.is_empty() && !acme.api_key_id.is_empty());
    assert!(acme.api_key.starts_with("ck_"), "{}", acme.api_key);
    assert_eq!(
        (
            acme.session_idle_timeout_secs,
            acme.session_absolute_timeout_secs
        ),
        (DEFAULT_IDLE, DEFAULT_ABSOLUTE),
        "the default session lifetimes"
    );
    let globex = new_tenant(api, 2, "globex").await;
    assert_ne!(acme.id, globex.id);
    assert_ne!(acme.api_key, globex.api_key);

    // A duplicate name (through another node), a bad name, an unknown region.
    fails(
        api.create_tenant(3, Auth::OPERATOR, tenant_request(&acme_name, None))
            .await,
        409,
        "tenant_exists",
    );
    let mars = unique("mars-corp");
    fails(
        api.create_tenant(1, Auth::OPERATOR, tenant_request(&mars, Some("mars")))
            .await,
        400,
        "invalid_request",
    );
    for bad in ["not a name!", "bad name"] {
        fails(
            api.create_tenant(3, Auth::OPERATOR, tenant_request(bad, None))
                .await,
            400,
            "invalid_request",
        );
    }

    // List (any node): every tenant, with its id and region; of the names this
    // test tried, exactly the two it created.
    let listed = api.list_tenants(3, Auth::OPERATOR).await.expect("list");
    assert!(listed.iter().all(|t| t.created_at > 0));
    let tried: HashSet<&str> = [
        acme_name.as_str(),
        globex.name.as_str(),
        mars.as_str(),
        "not a name!",
        "bad name",
    ]
    .into_iter()
    .collect();
    let mut mine: Vec<_> = listed
        .iter()
        .filter(|t| tried.contains(t.name.as_str()))
        .map(|t| (t.name.as_str(), t.id.as_str(), t.region.as_str()))
        .collect();
    mine.sort_unstable();
    let mut expected = vec![
        (acme_name.as_str(), acme.id.as_str(), REGION),
        (globex.name.as_str(), globex.id.as_str(), REGION),
    ];
    expected.sort_unstable();
    assert_eq!(mine, expected);
    // The operator only: a tenant API key is not the operator token.
    unauthorized(api.list_tenants(3, Auth::NONE).await);
    unauthorized(api.list_tenants(3, bearer(&acme.api_key)).await);
}

async fn tenant_settings_are_validated_and_kept_per_tenant<A: Api>(cx: &Cx<A>) {
    let api = &cx.api;

    // Settings at creation, shown by create, get and list (through every node).
    let brief = api
        .create_tenant(
            1,
            Auth::OPERATOR,
            lifetimes(&unique("brief"), Some(4), Some(8)),
        )
        .await
        .expect("create with lifetimes");
    assert_eq!(
        (
            brief.session_idle_timeout_secs,
            brief.session_absolute_timeout_secs
        ),
        (4, 8)
    );
    let plain = new_tenant(api, 2, "plain").await;
    for via in 1..=3 {
        let b = api
            .get_tenant(via, Auth::OPERATOR, &brief.id)
            .await
            .expect("get tenant");
        assert_eq!(
            (b.id.as_str(), b.name.as_str()),
            (brief.id.as_str(), brief.name.as_str())
        );
        assert_eq!(
            (b.session_idle_timeout_secs, b.session_absolute_timeout_secs),
            (4, 8)
        );
        let p = api
            .get_tenant(via, Auth::OPERATOR, &plain.id)
            .await
            .expect("get tenant");
        assert_eq!(
            (p.session_idle_timeout_secs, p.session_absolute_timeout_secs),
            (DEFAULT_IDLE, DEFAULT_ABSOLUTE)
        );
    }
    let listed = api.list_tenants(3, Auth::OPERATOR).await.expect("list");
    let b = listed.iter().find(|t| t.id == brief.id).expect("listed");
    assert_eq!(b.session_idle_timeout_secs, 4);

    // Out of bounds: refused on update and on create, nothing changed.
    let never = unique("never-made");
    for (idle, absolute) in [
        (Some(0), None),
        (None, Some(0)),
        (Some(10), Some(9)),
        (Some(7_200), Some(3_600)),
        (None, Some(10 * 365 * 86_400 + 1)),
        (None, Some(u64::MAX)),
    ] {
        fails(
            api.update_tenant(2, Auth::OPERATOR, update(&brief.id, idle, absolute))
                .await,
            400,
            "invalid_request",
        );
        fails(
            api.create_tenant(1, Auth::OPERATOR, lifetimes(&never, idle, absolute))
                .await,
            400,
            "invalid_request",
        );
    }
    // Each lifetime is checked against the other as it will stand: brief's
    // absolute lifetime (8 s) for a new idle timeout, the default idle timeout
    // (30 days) for a new tenant's absolute lifetime.
    fails(
        api.update_tenant(3, Auth::OPERATOR, update(&brief.id, Some(9), None))
            .await,
        400,
        "invalid_request",
    );
    for (idle, absolute) in [(None, Some(5)), (Some(601), Some(600))] {
        fails(
            api.create_tenant(3, Auth::OPERATOR, lifetimes(&never, idle, absolute))
                .await,
            400,
            "invalid_request",
        );
    }
    // Unknown tenants, missing or wrong credentials.
    for unknown in ["0000", "nosuchtenant"] {
        fails(
            api.update_tenant(1, Auth::OPERATOR, update(unknown, Some(5), None))
                .await,
            404,
            "tenant_not_found",
        );
        fails(
            api.get_tenant(1, Auth::OPERATOR, unknown).await,
            404,
            "tenant_not_found",
        );
    }
    for auth in [Auth::NONE, bearer("wrong-token"), bearer(&brief.api_key)] {
        unauthorized(
            api.update_tenant(1, auth, update(&brief.id, Some(5), None))
                .await,
        );
        unauthorized(api.get_tenant(1, auth, &brief.id).await);
    }
    let b = api
        .get_tenant(3, Auth::OPERATOR, &brief.id)
        .await
        .expect("get");
    assert_eq!(
        (b.session_idle_timeout_secs, b.session_absolute_timeout_secs),
        (4, 8),
        "nothing changed"
    );
    assert!(!api
        .list_tenants(1, Auth::OPERATOR)
        .await
        .expect("list")
        .iter()
        .any(|t| t.name == never));

    // A change (fields left unset keep their value), read back through another
    // node; the other tenant's settings do not move.
    let changed = api
        .update_tenant(1, Auth::OPERATOR, update(&plain.id, Some(3_600), None))
        .await
        .expect("update tenant");
    assert_eq!(
        (
            changed.session_idle_timeout_secs,
            changed.session_absolute_timeout_secs
        ),
        (3_600, DEFAULT_ABSOLUTE)
    );
    assert_eq!(
        api.get_tenant(2, Auth::OPERATOR, &plain.id)
            .await
            .expect("get"),
        changed,
        "read back through another node"
    );
    assert_eq!(
        api.get_tenant(2, Auth::OPERATOR, &brief.id)
            .await
            .expect("get")
            .session_idle_timeout_secs,
        4
    );
    let created = api
        .create_tenant(
            1,
            Auth::OPERATOR,
            lifetimes(&unique("short-lived"), Some(60), Some(600)),
        )
        .await
        .expect("create tenant with lifetimes");
    assert_eq!(
        (
            created.session_idle_timeout_secs,
            created.session_absolute_timeout_secs
        ),
        (60, 600)
    );
}

async fn deleting_a_tenant_removes_its_keys_jwks_and_data_everywhere<A: Api>(cx: &Cx<A>) {
    let api = &cx.api;
    let bystander = new_tenant(api, 1, "bystander").await;
    let doomed = new_tenant(api, 3, "doomed").await;
    let dk = bearer(&doomed.api_key);
    new_user(api, 1, &doomed.api_key, "d@example.com", Some(PASSWORD)).await;
    let session = sign_in(api, 2, &doomed.api_key, "d@example.com", PASSWORD).await;
    api.kv_put(3, dk, "k", "v", None).await.expect("put");
    jwks(api, 1, &doomed.id).await;

    // The operator only.
    for auth in [Auth::NONE, dk] {
        unauthorized(api.delete_tenant(1, auth, &doomed.id).await);
    }
    api.delete_tenant(2, Auth::OPERATOR, &doomed.id)
        .await
        .expect("delete tenant");
    for via in [1, 2, 3] {
        unauthorized(api.get_user(via, dk, &session.user_id).await);
        unauthorized(api.get_user(via, dk, NO_USER).await);
        fails(api.get_jwks(via, &doomed.id).await, 404, "tenant_not_found");
    }
    fails(
        api.kv_get(3, Auth::operator_for(&doomed.name), "k").await,
        404,
        "tenant_not_found",
    );
    let listed = api.list_tenants(1, Auth::OPERATOR).await.expect("list");
    assert!(
        !listed
            .iter()
            .any(|t| t.id == doomed.id || t.name == doomed.name),
        "a deleted tenant is not listed"
    );
    assert!(
        listed.iter().any(|t| t.id == bystander.id),
        "the others are"
    );
    fails(
        api.delete_tenant(3, Auth::OPERATOR, &doomed.id).await,
        404,
        "tenant_not_found",
    );
    fails(
        api.delete_tenant(1, Auth::OPERATOR, "nosuchtenant").await,
        404,
        "tenant_not_found",
    );
    // The other tenants are untouched.
    fails(
        api.kv_get(2, bearer(&bystander.api_key), "anything").await,
        404,
        "key_not_found",
    );
}

/// A deletion acknowledged by one node holds at once on the others, on the
/// operator's x-tenant path too (whose tenant lookup a node may cache).
async fn a_tenant_deletion_holds_at_once_on_every_node<A: Api>(cx: &Cx<A>) {
    let api = &cx.api;
    for round in 0..8 {
        let t = new_tenant(api, node(round), "ephemeral").await;
        let op = Auth::operator_for(&t.name);
        for via in [1, 2, 3] {
            api.kv_put(via, op, "k", &format!("ephemeral-value-{via}"), None)
                .await
                .expect("warm x-tenant");
        }
        let deleter = node(round + 1);
        api.delete_tenant(deleter, Auth::OPERATOR, &t.id)
            .await
            .expect("delete tenant");
        let others: Vec<u64> = [1, 2, 3].into_iter().filter(|n| *n != deleter).collect();
        let key = bearer(&t.api_key);
        let (x, y, kx, ky) = tokio::join!(
            api.kv_get(others[0], op, "k"),
            api.kv_get(others[1], op, "k"),
            api.kv_get(others[0], key, "k"),
            api.kv_get(others[1], key, "k"),
        );
        for r in [x, y] {
            let e = fails(r, 404, "tenant_not_found");
            assert!(
                !e.text.contains("ephemeral-value"),
                "round {round}, deleted via node {deleter}: {e:?}"
            );
        }
        unauthorized(kx);
        unauthorized(ky);
    }
}

/// HTTP: create and update bodies are strict JSON (wrong types and unknown
/// fields refused), and the list never shows an API key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_tenant_bodies_are_strict_and_the_list_shows_no_key() {
    let cx = Cx::http();
    let http = &cx.api;
    let t = new_tenant(http, 1, "acme").await;
    let r = http.get(3, "/v1/admin/tenants", Auth::OPERATOR).await;
    r.expect(200);
    assert!(!r.text.contains(&t.api_key), "no API key in the list");

    let never = unique("never-made");
    let path = format!("/v1/admin/tenants/{}", t.id);
    for body in [
        json!({ "session_idle_timeout_secs": -5 }),
        json!({ "session_idle_timeout_secs": "4" }),
        json!({ "session_idle_timeout_secs": 4, "idle": 4 }),
    ] {
        http.patch(2, &path, Auth::OPERATOR, &body)
            .await
            .problem(400, "invalid_request");
        let mut create = body.clone();
        create["name"] = json!(never);
        http.post(1, "/v1/admin/tenants", Auth::OPERATOR, &create)
            .await
            .problem(400, "invalid_request");
    }
    let fresh = unique("fresh");
    assert_strict_json_body(
        http,
        1,
        Method::POST,
        "/v1/admin/tenants",
        Auth::OPERATOR,
        &json!({ "name": fresh }),
    )
    .await;
    let r = http.get(1, "/v1/admin/tenants", Auth::OPERATOR).await;
    r.expect(200);
    assert!(!r.text.contains(&fresh), "no tenant created: {}", r.text);
    assert!(!r.text.contains(&never), "no tenant created: {}", r.text);
    let b = http
        .get_tenant(2, Auth::OPERATOR, &t.id)
        .await
        .expect("get");
    assert_eq!(b.session_idle_timeout_secs, DEFAULT_IDLE, "nothing changed");
}

/// Rate limits and the refresh retry grace are tenant settings: every bucket
/// is shown (the cluster's defaults until set), and out-of-bounds values or
/// unknown names are refused before anything is stored.
async fn rate_limit_and_refresh_settings_are_shown_and_checked<A: Api>(cx: &Cx<A>) {
    let api = &cx.api;
    let t = new_tenant(api, 1, "settings").await;
    let shown = api.get_tenant(2, Auth::OPERATOR, &t.id).await.expect("get");
    assert_eq!(shown.refresh_retry_grace_secs, 10, "the default");
    assert!(!shown.breached_password_check);
    assert_eq!(shown.rate_limits.len(), 15, "{:?}", shown.rate_limits);
    let limit = |action: &str, scope: &str, burst, per_minute| RateLimit {
        action: action.to_owned(),
        scope: scope.to_owned(),
        burst,
        per_minute,
    };
    let set = |grace, limits| UpdateTenantRequest {
        id: t.id.clone(),
        refresh_retry_grace_secs: grace,
        rate_limits: limits,
        ..Default::default()
    };
    for bad in [
        limit("sign_up", "ip", 1, 1),
        limit("sign_in", "user", 1, 1),
        limit("sign_in", "ip", 0, 1),
        limit("sign_in", "ip", 1, 0),
    ] {
        fails(
            api.update_tenant(1, Auth::OPERATOR, set(None, vec![bad.clone()]))
                .await,
            400,
            "invalid_request",
        );
    }
    fails(
        api.update_tenant(1, Auth::OPERATOR, set(Some(61), Vec::new()))
            .await,
        400,
        "invalid_request",
    );
    let changed = api
        .update_tenant(
            3,
            Auth::OPERATOR,
            set(Some(0), vec![limit("code_send", "pair", 3, 2)]),
        )
        .await
        .expect("update");
    assert_eq!(changed.refresh_retry_grace_secs, 0);
    assert!(changed
        .rate_limits
        .contains(&limit("code_send", "pair", 3, 2)));
    let again = api
        .update_tenant(
            1,
            Auth::OPERATOR,
            set(None, vec![limit("sign_in", "ip", 9, 9)]),
        )
        .await
        .expect("update");
    assert_eq!(
        again.refresh_retry_grace_secs, 0,
        "a setting left out stays"
    );
    assert!(again
        .rate_limits
        .contains(&limit("code_send", "pair", 3, 2)));
    assert!(again.rate_limits.contains(&limit("sign_in", "ip", 9, 9)));
    let listed = api.list_tenants(2, Auth::OPERATOR).await.expect("list");
    let mine = listed.iter().find(|x| x.id == t.id).expect("listed");
    assert_eq!(mine.rate_limits, again.rate_limits);
}
