//! `users`: create, read, update and delete a tenant's users — email
//! normalisation and uniqueness per tenant, password rules, and what a
//! deletion ends (every session, on every node at once).

use cairn_tests::api::{
    bearer, fails, unauthorized, Api, Auth, CreateUserRequest, UpdateUserRequest, User,
};
use reqwest::Method;
use serde_json::json;

use crate::{
    assert_inactive, assert_strict_json_body, introspect, listed_sessions, new_tenant, new_user,
    node, refresh_ok, sign_in, unix_now, user_request, Cx, NO_USER, PASSWORD, REGION,
};

over_both_transports!(
    users_are_created_with_normalised_unique_emails_and_valid_passwords,
    users_are_updated_and_an_email_moves_with_them,
    deleting_a_user_ends_all_its_sessions,
    a_user_deletion_holds_on_every_node_at_once,
    another_tenant_cannot_read_change_or_delete_a_user,
    a_user_is_looked_up_by_email_only_in_its_tenant,
    users_are_listed_in_pages_by_id,
);

fn change(id: &str, email: Option<&str>, password: Option<&str>) -> UpdateUserRequest {
    UpdateUserRequest {
        id: id.to_owned(),
        email: email.map(str::to_owned),
        password: password.map(str::to_owned),
        keep_session_id: None,
    }
}

fn in_region(email: &str, region: &str) -> CreateUserRequest {
    CreateUserRequest {
        region: Some(region.to_owned()),
        ..user_request(email, None)
    }
}

async fn users_are_created_with_normalised_unique_emails_and_valid_passwords<A: Api>(cx: &Cx<A>) {
    let api = &cx.api;
    let t = new_tenant(api, 1, "acme").await;
    let globex = new_tenant(api, 2, "globex").await;
    let key = t.api_key.as_str();
    let k = bearer(key);

    // The email is kept as typed (trimmed); its identity is its key: NFC,
    // Unicode lowercase of the whole address, the domain as an A-label.
    let alice = new_user(api, 1, key, "  Alice.Smith@Example.COM ", Some(PASSWORD)).await;
    assert!(alice.id.starts_with("usr_"), "{}", alice.id);
    assert_eq!(alice.email, "Alice.Smith@Example.COM");
    assert_eq!(alice.region, REGION);
    assert!(alice.has_password);
    assert_eq!(alice.created_at, alice.updated_at);
    assert!(alice.created_at.abs_diff(unix_now()) < 120);
    assert_eq!(
        api.get_user(2, k, &alice.id).await.expect("get"),
        alice,
        "a read returns what the create did"
    );
    let lower_domain = new_user(api, 1, key, "alice@Example.COM", Some(PASSWORD)).await;
    assert_eq!(lower_domain.email, "alice@Example.COM");

    // Unique per tenant by key: any case of the whole address is the same
    // account; another local part or another tenant is a different address.
    for (i, dup) in [
        "Alice.Smith@EXAMPLE.com",
        " Alice.Smith@example.com",
        "alice.smith@example.com",
        "ALICE.SMITH@EXAMPLE.COM",
        " alice@EXAMPLE.com",
    ]
    .into_iter()
    .enumerate()
    {
        fails(
            api.create_user(node(i), k, user_request(dup, Some(PASSWORD)))
                .await,
            409,
            "email_taken",
        );
    }
    // Signing in and looking up take any case of it, and of the domain.
    let signed_in = api
        .sign_in(2, k, "alice.smith@example.com", PASSWORD)
        .await
        .expect("sign in by the lowercase address");
    assert_eq!(signed_in.user_id, alice.id);
    let found = api
        .lookup_user(3, k, "ALICE.SMITH@example.COM")
        .await
        .expect("lookup by the uppercase address");
    assert_eq!(found.id, alice.id);
    // Unicode: a decomposed "é" is the composed one, an uppercase "É" its
    // lowercase, and a domain typed in Unicode is its A-label.
    let elodie = new_user(api, 2, key, "Élodie@BÜCHER.example", Some(PASSWORD)).await;
    assert_eq!(elodie.email, "Élodie@BÜCHER.example");
    for (i, same) in [
        "e\u{301}lodie@bücher.example",
        "élodie@xn--bcher-kva.example",
        "ÉLODIE@XN--BCHER-KVA.EXAMPLE",
    ]
    .into_iter()
    .enumerate()
    {
        let found = api.lookup_user(node(i), k, same).await.expect(same);
        assert_eq!(found.id, elodie.id, "{same}");
        fails(
            api.create_user(node(i), k, user_request(same, None)).await,
            409,
            "email_taken",
        );
    }
    let signed_in = api
        .sign_in(3, k, "élodie@xn--bcher-kva.example", PASSWORD)
        .await
        .expect("sign in by the A-label");
    assert_eq!(signed_in.user_id, elodie.id);
    let lower = new_user(api, 2, key, "alice.smyth@example.com", Some(PASSWORD)).await;
    assert_eq!(lower.email, "alice.smyth@example.com");
    let other = new_user(api, 3, &globex.api_key, "alice.smith@example.com", None).await;
    assert!(!other.has_password);
    assert_ne!(other.id, alice.id);

    // The region: the tenant's by default, or named.
    let implicit = new_user(api, 1, key, "region@example.com", None).await;
    assert_eq!(implicit.region, REGION);
    let named = api
        .create_user(1, k, in_region("r2@example.com", REGION))
        .await
        .expect("create in a region");
    assert_eq!(named.region, REGION);
    assert!(!named.has_password);
    fails(
        api.create_user(2, k, in_region("mars@example.com", "mars"))
            .await,
        400,
        "invalid_request",
    );

    // A user without a password cannot sign in with one.
    fails(
        api.sign_in(1, k, "region@example.com", PASSWORD).await,
        401,
        "invalid_credentials",
    );

    // Password length in characters: 8-256.
    for (i, (password, ok)) in [
        ("1234567".to_owned(), false),
        ("12345678".to_owned(), true),
        ("p".repeat(256), true),
        ("p".repeat(257), false),
        ("é".repeat(4), false),
        ("é".repeat(8), true),
        (String::new(), false),
        ("short".to_owned(), false),
    ]
    .into_iter()
    .enumerate()
    {
        let r = api
            .create_user(
                node(i),
                k,
                user_request(&format!("pw{i}@example.com"), Some(&password)),
            )
            .await;
        if ok {
            r.expect("a valid password");
        } else {
            fails(r, 400, "invalid_request");
        }
    }
    // Invalid emails.
    for (i, bad) in [
        "",
        "   ",
        "no-at-sign",
        "not-an-email",
        "@example.com",
        "user@",
        "a b@example.com",
        "a@exa mple.com",
        "a@example..com",
        "a@@example.com",
    ]
    .into_iter()
    .enumerate()
    {
        fails(
            api.create_user(node(i), k, user_request(bad, Some(PASSWORD)))
                .await,
            400,
            "invalid_request",
        );
    }
    // Unknown ids: not found, for every operation.
    for missing in [
        NO_USER.to_owned(),
        "nonsense".to_owned(),
        format!("{}0", alice.id),
    ] {
        fails(api.get_user(1, k, &missing).await, 404, "user_not_found");
        fails(
            api.update_user(2, k, change(&missing, Some("ghost@example.com"), None))
                .await,
            404,
            "user_not_found",
        );
        fails(api.delete_user(3, k, &missing).await, 404, "user_not_found");
        fails(
            api.list_sessions(1, k, &missing).await,
            404,
            "user_not_found",
        );
    }
    // An API key is needed.
    unauthorized(
        api.create_user(3, Auth::NONE, user_request("carol@example.com", None))
            .await,
    );
    unauthorized(api.get_user(3, Auth::NONE, &alice.id).await);
    unauthorized(
        api.update_user(
            3,
            Auth::NONE,
            change(&alice.id, Some("x@example.com"), None),
        )
        .await,
    );
    unauthorized(api.list_sessions(1, Auth::NONE, &alice.id).await);
}

async fn users_are_updated_and_an_email_moves_with_them<A: Api>(cx: &Cx<A>) {
    let api = &cx.api;
    let t = new_tenant(api, 1, "acme").await;
    let key = t.api_key.as_str();
    let k = bearer(key);
    let email = "Alice.Smith@example.com";
    let alice = new_user(api, 1, key, email, Some(PASSWORD)).await;
    let lower = new_user(api, 2, key, "alice.smyth@example.com", Some(PASSWORD)).await;

    // A new password: only it signs in.
    let patched = api
        .update_user(1, k, change(&alice.id, None, Some("a brand new password")))
        .await
        .expect("update");
    assert_eq!(patched.email, email);
    assert_eq!(patched.created_at, alice.created_at);
    assert!(patched.updated_at >= alice.updated_at);
    fails(
        api.sign_in(2, k, email, PASSWORD).await,
        401,
        "invalid_credentials",
    );
    sign_in(api, 3, key, email, "a brand new password").await;
    for bad in [
        change(&alice.id, None, Some("short")),
        change(&alice.id, Some("not-an-email"), None),
        change(&alice.id, Some("nope"), None),
        change(&alice.id, None, None),
    ] {
        fails(api.update_user(2, k, bad).await, 400, "invalid_request");
    }

    // An email taken in this tenant is refused; a new email moves sign-in and
    // frees the old one.
    fails(
        api.update_user(
            3,
            k,
            change(&alice.id, Some("alice.smyth@EXAMPLE.com"), None),
        )
        .await,
        409,
        "email_taken",
    );
    // Another spelling of its own address is no move: the user keeps it, and
    // shows the new spelling.
    let respelled = api
        .update_user(
            2,
            k,
            change(&alice.id, Some("ALICE.smith@example.com"), None),
        )
        .await
        .expect("respell");
    assert_eq!(respelled.email, "ALICE.smith@example.com");
    sign_in(api, 1, key, email, "a brand new password").await;
    let moved = api
        .update_user(
            1,
            k,
            change(&alice.id, Some(" Alice@NEW.example.com"), None),
        )
        .await
        .expect("update email");
    assert_eq!(moved.email, "Alice@NEW.example.com");
    assert_eq!(api.get_user(2, k, &alice.id).await.expect("get"), moved);
    fails(
        api.sign_in(2, k, email, "a brand new password").await,
        401,
        "invalid_credentials",
    );
    sign_in(api, 3, key, "Alice@new.example.com", "a brand new password").await;
    let taker = new_user(api, 1, key, email, Some(PASSWORD)).await;
    let taker_session = sign_in(api, 2, key, email, PASSWORD).await;
    assert_eq!(taker_session.user_id, taker.id);

    // A passwordless user gets an email and a password at once.
    let bob = api
        .create_user(2, k, in_region("bob@example.com", "local"))
        .await
        .expect("create passwordless user");
    assert!(!bob.has_password);
    fails(
        api.sign_in(1, k, "bob@example.com", PASSWORD).await,
        401,
        "invalid_credentials",
    );
    let bob = api
        .update_user(
            1,
            k,
            change(&bob.id, Some("robert@Example.com"), Some(PASSWORD)),
        )
        .await
        .expect("update user");
    assert_eq!(bob.email, "robert@Example.com");
    assert!(bob.has_password && bob.updated_at >= bob.created_at);
    assert_eq!(api.get_user(2, k, &bob.id).await.expect("get"), bob);
    let carol = new_user(api, 3, key, "bob@example.com", None).await;
    assert_ne!(carol.id, bob.id, "the released email is free again");
    sign_in(api, 2, key, "robert@example.com", PASSWORD).await;
    assert_eq!(
        api.get_user(1, k, &lower.id).await.expect("untouched"),
        lower
    );
}

async fn deleting_a_user_ends_all_its_sessions<A: Api>(cx: &Cx<A>) {
    let api = &cx.api;
    let t = new_tenant(api, 1, "acme").await;
    let key = t.api_key.as_str();
    let k = bearer(key);
    let email = "alice@example.com";
    let alice = new_user(api, 1, key, email, Some(PASSWORD)).await;
    let other = new_user(api, 2, key, "other@example.com", Some(PASSWORD)).await;
    let other_session = sign_in(api, 2, key, "other@example.com", PASSWORD).await;
    let s2 = sign_in(api, 2, key, email, PASSWORD).await;
    let s3 = sign_in(api, 1, key, email, PASSWORD).await;
    let s4 = sign_in(api, 3, key, email, PASSWORD).await;
    let (rt_after, at_after) = refresh_ok(api, 2, key, &s2.refresh_token).await;
    let alive = listed_sessions(api, 1, key, &alice.id).await;
    assert!(alive.len() >= 3, "{alive:?}");
    unauthorized(api.delete_user(1, Auth::NONE, &alice.id).await);

    api.delete_user(3, k, &alice.id).await.expect("delete");
    fails(api.get_user(1, k, &alice.id).await, 404, "user_not_found");
    fails(
        api.list_sessions(2, k, &alice.id).await,
        404,
        "user_not_found",
    );
    for (i, token) in [
        &s2.access_token,
        &s3.access_token,
        &s4.access_token,
        &at_after,
    ]
    .into_iter()
    .enumerate()
    {
        assert_inactive(
            &introspect(api, node(i), key, token).await,
            "access token of a deleted user",
        );
    }
    for (i, token) in [&rt_after, &s3.refresh_token, &s4.refresh_token]
        .into_iter()
        .enumerate()
    {
        fails(
            api.refresh(node(i), k, token).await,
            401,
            "invalid_refresh_token",
        );
        assert_inactive(
            &introspect(api, node(i + 1), key, token).await,
            "refresh token of a deleted user",
        );
    }
    fails(
        api.sign_in(1, k, email, PASSWORD).await,
        401,
        "invalid_credentials",
    );
    fails(
        api.delete_user(2, k, &alice.id).await,
        404,
        "user_not_found",
    );
    // Other users are untouched.
    assert!(
        introspect(api, 3, key, &other_session.access_token)
            .await
            .active
    );
    assert_eq!(api.get_user(1, k, &other.id).await.expect("get"), other);
}

/// A deletion acknowledged by node 2 ends the user's sessions on the other
/// nodes at once.
async fn a_user_deletion_holds_on_every_node_at_once<A: Api>(cx: &Cx<A>) {
    let api = &cx.api;
    let t = new_tenant(api, 1, "revocations").await;
    let key = t.api_key.as_str();
    let victim = new_user(api, 3, key, "gone@example.com", Some(PASSWORD)).await;
    let vs = sign_in(api, 1, key, "gone@example.com", PASSWORD).await;
    assert!(introspect(api, 3, key, &vs.access_token).await.active);
    api.delete_user(2, bearer(key), &victim.id)
        .await
        .expect("delete");
    let (x, y) = tokio::join!(
        introspect(api, 1, key, &vs.access_token),
        introspect(api, 3, key, &vs.access_token)
    );
    assert_inactive(&x, "deleted user, node 1");
    assert_inactive(&y, "deleted user, node 3");
    fails(
        api.refresh(3, bearer(key), &vs.refresh_token).await,
        401,
        "invalid_refresh_token",
    );
}

async fn another_tenant_cannot_read_change_or_delete_a_user<A: Api>(cx: &Cx<A>) {
    let api = &cx.api;
    let a = new_tenant(api, 1, "victim-corp").await;
    let b = new_tenant(api, 2, "mallory").await;
    let bk = bearer(&b.api_key);
    let a_email = "ceo@victim.example";
    let ua = new_user(api, 1, &a.api_key, a_email, Some(PASSWORD)).await;
    let before: User = api
        .get_user(3, bearer(&a.api_key), &ua.id)
        .await
        .expect("get");

    for via in [1, 2, 3] {
        fails(api.get_user(via, bk, &ua.id).await, 404, "user_not_found");
        for (email, password) in [
            (Some(format!("mallory{via}@evil.example")), None),
            (None, Some("owned by mallory")),
        ] {
            fails(
                api.update_user(via, bk, change(&ua.id, email.as_deref(), password))
                    .await,
                404,
                "user_not_found",
            );
        }
        fails(
            api.delete_user(via, bk, &ua.id).await,
            404,
            "user_not_found",
        );
        fails(
            api.list_sessions(via, bk, &ua.id).await,
            404,
            "user_not_found",
        );
    }
    // B may have a user with the same email: it is B's, not A's.
    let twin = new_user(api, 2, &b.api_key, a_email, Some("mallory's password")).await;
    assert_ne!(twin.id, ua.id);
    assert_eq!(
        api.get_user(1, bearer(&a.api_key), &ua.id)
            .await
            .expect("get"),
        before,
        "A's user is untouched"
    );
}

/// HTTP: user bodies are strict JSON (an email is required), and a user is
/// never shown with its password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_user_bodies_are_strict_and_never_echo_a_password() {
    let cx = Cx::http();
    let http = &cx.api;
    let t = new_tenant(http, 1, "inputs").await;
    let k = bearer(&t.api_key);
    let user = new_user(http, 2, &t.api_key, "in@example.com", Some(PASSWORD)).await;
    let r = http.get(2, &format!("/v1/users/{}", user.id), k).await;
    r.expect(200);
    assert!(!r.text.contains(PASSWORD), "never the password");

    http.post(3, "/v1/users", k, &json!({ "password": PASSWORD }))
        .await
        .problem(400, "invalid_request");
    assert_strict_json_body(
        http,
        3,
        Method::POST,
        "/v1/users",
        k,
        &json!({ "email": "other@example.com", "password": PASSWORD }),
    )
    .await;
    assert_strict_json_body(
        http,
        1,
        Method::PATCH,
        &format!("/v1/users/{}", user.id),
        k,
        &json!({ "email": "changed@example.com" }),
    )
    .await;
    // Nothing the refused requests carried happened.
    assert_eq!(
        http.get_user(2, k, &user.id).await.expect("get").email,
        "in@example.com"
    );
    fails(
        http.sign_in(3, k, "other@example.com", PASSWORD).await,
        401,
        "invalid_credentials",
    );
}

/// gRPC: an empty user id is a user that does not exist (over HTTP there is no
/// route to it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_an_empty_user_id_is_not_found() {
    let cx = Cx::grpc();
    let t = new_tenant(&cx.api, 1, "empty-id").await;
    fails(
        cx.api.get_user(1, bearer(&t.api_key), "").await,
        404,
        "user_not_found",
    );
}

/// `POST /v1/users/lookup` finds a user by email (normalised as at creation),
/// on any node, with scope read; another tenant's user and an unknown email
/// are both `user_not_found`, and a key without `read` is refused.
async fn a_user_is_looked_up_by_email_only_in_its_tenant<A: Api>(cx: &Cx<A>) {
    let api = &cx.api;
    let t = new_tenant(api, 1, "lookup").await;
    let other = new_tenant(api, 1, "lookup-other").await;
    let k = bearer(&t.api_key);
    let u = new_user(api, 2, &t.api_key, "Hana@Example.COM", None).await;
    for via in [1, 2, 3] {
        let found = api
            .lookup_user(via, k, " Hana@example.com ")
            .await
            .expect("lookup");
        assert_eq!(found.id, u.id);
        assert!(found.failed_sign_ins.is_some());
    }
    fails(
        api.lookup_user(1, k, "nobody@example.com").await,
        404,
        "user_not_found",
    );
    fails(
        api.lookup_user(2, bearer(&other.api_key), "Hana@example.com")
            .await,
        404,
        "user_not_found",
    );
    fails(
        api.lookup_user(3, k, "not an email").await,
        400,
        "invalid_request",
    );
    let writer = crate::new_api_key(api, 1, &t.id, &["write"]).await;
    fails(
        api.lookup_user(1, bearer(&writer.api_key), "Hana@example.com")
            .await,
        403,
        "insufficient_scope",
    );
}

/// `GET /v1/users` pages through a tenant's users in id order, without
/// repeats or gaps, and shows no other tenant's; bad paging is refused.
async fn users_are_listed_in_pages_by_id<A: Api>(cx: &Cx<A>) {
    let api = &cx.api;
    let t = new_tenant(api, 1, "listing").await;
    let other = new_tenant(api, 1, "listing-other").await;
    new_user(api, 1, &other.api_key, "stranger@example.com", None).await;
    let k = bearer(&t.api_key);
    let mut created = Vec::new();
    for i in 0..7 {
        let email = format!("member{i}@example.com");
        created.push(new_user(api, node(i), &t.api_key, &email, None).await.id);
    }
    created.sort();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for page in 0.. {
        let (users, next) = api
            .list_users(node(page), k, cursor.as_deref(), Some(3))
            .await
            .expect("list users");
        assert!(users.len() <= 3);
        seen.extend(users.into_iter().map(|u| u.id));
        match next {
            Some(n) => cursor = Some(n),
            None => break,
        }
        assert!(page < 10, "the pages end");
    }
    assert_eq!(seen, created, "every user once, in id order");
    let (all, next) = api
        .list_users(2, k, None, None)
        .await
        .expect("default page");
    assert_eq!(all.len(), 7);
    assert_eq!(next, None);
    for limit in [0, 101] {
        fails(
            api.list_users(1, k, None, Some(limit)).await,
            400,
            "invalid_request",
        );
    }
    fails(
        api.list_users(1, k, Some("not-a-cursor"), None).await,
        400,
        "invalid_request",
    );
}
