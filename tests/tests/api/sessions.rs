//! `sessions`: sign-in, refresh rotation (lost-answer retry, reuse detection,
//! forgeries, concurrent use), revocation seen on every node at once,
//! listing, introspection (of forged and foreign tokens too), and session
//! lifetimes set per tenant.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use cairn_tests::api::{
    bearer, fails, unauthorized, Api, Auth, ClientInfo, CreateTenantRequest, RateLimit, Transport,
    UpdateTenantRequest, USER_AGENT,
};
use cairn_tests::jwt::{b64, forged_refresh, generation, jwt_parts, kid, sign_jwt, verify_jwt};
use cairn_tests::shared::unique;
use ed25519_dalek::SigningKey;
use reqwest::Method;
use serde_json::{json, Value};

use crate::{
    assert_inactive, assert_strict_json_body, check_claims, introspect, jwks, kids,
    listed_sessions, new_tenant, new_user, node, refresh_ok, sign_in, unix_now, Cx,
    ACCESS_TOKEN_TTL, DEFAULT_ABSOLUTE, DEFAULT_IDLE, NO_SESSION, PASSWORD,
};

over_both_transports!(
    sign_in_issues_tokens_that_verify_and_introspect_on_every_node,
    refresh_rotates_the_pair_and_revocation_ends_the_session,
    a_lost_answer_is_retried_and_a_reused_token_revokes_the_session,
    concurrent_refreshes_of_one_token_have_exactly_one_successor,
    refresh_survives_data_key_and_signing_key_rotations,
    forged_and_foreign_tokens_introspect_inactive,
    a_session_revocation_holds_on_every_node_at_once,
    another_tenant_cannot_revoke_refresh_or_introspect_a_session,
    a_session_ends_when_idle_and_at_its_absolute_lifetime,
    a_lifetime_change_applies_to_sessions_signed_in_after_it,
    an_app_names_its_end_user_only_with_the_client_info_scope,
    a_thief_who_refreshes_first_loses_the_session_once_the_grace_is_over,
    sign_in_meets_its_rate_limits,
    a_password_change_ends_the_other_sessions,
    verification_failures_take_their_minimum_time,
);

async fn sign_in_issues_tokens_that_verify_and_introspect_on_every_node<A: Api>(cx: &Cx<A>) {
    let api = &cx.api;
    let t = new_tenant(api, 1, "acme").await;
    let key = t.api_key.as_str();
    let k = bearer(key);
    let alice = new_user(api, 1, key, "Alice.Smith@example.com", Some(PASSWORD)).await;
    new_user(api, 2, key, "region@example.com", None).await;

    // Wrong password, unknown email, a user without a password, a malformed
    // email: one identical answer.
    let mut refusals = Vec::new();
    for (email, password) in [
        ("Alice.Smith@example.com", "wrong password!"),
        ("nobody@example.com", PASSWORD),
        ("region@example.com", PASSWORD),
        ("not-an-email", PASSWORD),
        ("not an email", PASSWORD),
    ] {
        let e = fails(
            api.sign_in(1, k, email, password).await,
            401,
            "invalid_credentials",
        );
        refusals.push((e.status, e.code, e.detail, e.text));
    }
    for r in &refusals[1..] {
        assert_eq!(r, &refusals[0], "refusals are indistinguishable");
    }
    unauthorized(
        api.sign_in(1, Auth::NONE, "Alice.Smith@example.com", PASSWORD)
            .await,
    );

    // A session, an EdDSA access token that verifies against the JWKS, and a
    // refresh token.
    let s1 = sign_in(api, 3, key, " Alice.Smith@EXAMPLE.COM ", PASSWORD).await;
    assert!(s1.session_id.starts_with("ses_"), "{}", s1.session_id);
    assert_eq!(s1.user_id, alice.id);
    assert!(
        (ACCESS_TOKEN_TTL - 60..=ACCESS_TOKEN_TTL).contains(&s1.expires_in),
        "{}",
        s1.expires_in
    );
    assert!(s1.refresh_token.starts_with("rt1."));
    assert_eq!(s1.access_token.matches('.').count(), 2);
    let keyset = jwks(api, 1, &t.id).await;
    let (header, claims) = verify_jwt(&s1.access_token, &keyset);
    assert_eq!(header["kid"], kids(&keyset)[0].as_str());
    check_claims(&claims, &s1, &t.id);

    // Introspection of the access token on every node (with a hint too) ...
    for via in [1, 2, 3] {
        let v = introspect(api, via, key, &s1.access_token).await;
        assert!(v.active);
        assert_eq!(v.token_type.as_deref(), Some("access_token"));
        for (got, field) in [
            (v.sub.as_deref(), "sub"),
            (v.sid.as_deref(), "sid"),
            (v.tid.as_deref(), "tid"),
            (v.aal.as_deref(), "aal"),
            (v.iss.as_deref(), "iss"),
        ] {
            assert_eq!(got, claims[field].as_str(), "introspected {field}");
        }
        assert_eq!(v.iat, claims["iat"].as_u64());
        assert_eq!(v.exp, claims["exp"].as_u64());
        assert_eq!(json!(v.amr), claims["amr"]);
        let hinted = api
            .introspect(via, k, &s1.access_token, Some("access_token"))
            .await
            .expect("introspect with a hint");
        assert_eq!(hinted, v);
    }
    // ... and of the refresh token (active while current), and of junk.
    let v = introspect(api, 2, key, &s1.refresh_token).await;
    assert!(v.active, "{v:?}");
    assert_eq!(v.token_type.as_deref(), Some("refresh_token"));
    assert_eq!(v.sid.as_deref(), Some(s1.session_id.as_str()));
    assert_eq!(v.sub.as_deref(), Some(alice.id.as_str()));
    assert_inactive(&introspect(api, 2, key, "not-a-token").await, "junk");
    unauthorized(api.introspect(1, Auth::NONE, &s1.access_token, None).await);

    // Listed with where it came from, never with a token.
    let listed = api.list_sessions(3, k, &alice.id).await.expect("list");
    assert_eq!(listed.len(), 1);
    let l = &listed[0];
    assert_eq!(
        (l.id.as_str(), l.user_id.as_str()),
        (s1.session_id.as_str(), alice.id.as_str())
    );
    assert_eq!(l.ip.as_deref(), Some("127.0.0.1"));
    let ua = l.user_agent.as_deref().unwrap_or_default();
    match api.transport() {
        Transport::Http => assert_eq!(ua, USER_AGENT),
        // gRPC appends its own user agent after the caller's.
        Transport::Grpc => assert!(ua.starts_with(USER_AGENT), "{ua}"),
    }
    assert!(l.created_at > 0 && l.last_refreshed_at == l.created_at && l.expires_at > l.created_at);
}

async fn refresh_rotates_the_pair_and_revocation_ends_the_session<A: Api>(cx: &Cx<A>) {
    let api = &cx.api;
    let t = new_tenant(api, 1, "acme").await;
    let globex = new_tenant(api, 2, "globex").await;
    let key = t.api_key.as_str();
    let k = bearer(key);
    let email = "alice@example.com";
    let alice = new_user(api, 1, key, email, Some(PASSWORD)).await;
    let s1 = sign_in(api, 3, key, email, PASSWORD).await;
    let keyset = jwks(api, 2, &t.id).await;

    // Refresh: a new pair; the old refresh token is no longer current.
    let r1 = api.refresh(1, k, &s1.refresh_token).await.expect("refresh");
    assert_eq!(r1.session_id, s1.session_id);
    assert_eq!(r1.token_type, "Bearer");
    assert!(r1.expires_in > 0 && r1.expires_in <= ACCESS_TOKEN_TTL);
    let (rt2, at2) = (r1.refresh_token, r1.access_token);
    assert_ne!(rt2, s1.refresh_token);
    assert_eq!(generation(&rt2), generation(&s1.refresh_token) + 1);
    let (_, claims2) = verify_jwt(&at2, &keyset);
    check_claims(&claims2, &s1, &t.id);
    assert_inactive(
        &introspect(api, 3, key, &s1.refresh_token).await,
        "a rotated refresh token",
    );
    assert!(introspect(api, 3, key, &rt2).await.active);
    assert!(introspect(api, 1, key, &at2).await.active);
    assert!(
        introspect(api, 1, key, &s1.access_token).await.active,
        "an access token lives until it expires"
    );
    for garbage in [
        "garbage".to_owned(),
        String::new(),
        "rt1.".to_owned(),
        "rt1.garbage".to_owned(),
        "rt1.ses_1_00.0.xx".to_owned(),
        forged_refresh(NO_SESSION, 0, 1),
        format!("{rt2}x"),
        s1.access_token.clone(),
    ] {
        fails(
            api.refresh(2, k, &garbage).await,
            401,
            "invalid_refresh_token",
        );
    }

    // The list: active sessions only, with their metadata.
    let s2 = sign_in(api, 2, key, email, PASSWORD).await;
    let sessions = api.list_sessions(3, k, &alice.id).await.expect("list");
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    for x in &sessions {
        assert_eq!(x.user_id, alice.id);
        assert!(
            x.created_at <= x.last_refreshed_at && x.last_refreshed_at < x.expires_at,
            "{x:?}"
        );
        assert_eq!(x.ip.as_deref(), Some("127.0.0.1"));
        assert!(
            x.user_agent
                .as_deref()
                .is_some_and(|ua| ua.starts_with(USER_AGENT)),
            "{x:?}"
        );
    }
    assert!(sessions.iter().any(|x| x.id == s1.session_id));
    assert!(sessions.iter().any(|x| x.id == s2.session_id));

    // Revocation: gone from the list; refresh and introspection refuse it.
    unauthorized(api.revoke_session(1, Auth::NONE, &s1.session_id).await);
    api.revoke_session(1, k, &s1.session_id)
        .await
        .expect("revoke");
    assert_eq!(
        listed_sessions(api, 2, key, &alice.id).await,
        vec![s2.session_id.clone()]
    );
    fails(api.refresh(3, k, &rt2).await, 401, "session_revoked");
    assert_inactive(&introspect(api, 2, key, &at2).await, "revoked access");
    assert_inactive(
        &introspect(api, 3, key, &s1.access_token).await,
        "revoked access",
    );
    assert_inactive(&introspect(api, 1, key, &rt2).await, "revoked refresh");
    for missing in [NO_SESSION, "nonsense"] {
        fails(
            api.revoke_session(2, k, missing).await,
            404,
            "session_not_found",
        );
    }
    // Another tenant's session is not found, and stays alive.
    new_user(api, 1, &globex.api_key, "g@example.com", Some(PASSWORD)).await;
    let gs = sign_in(api, 3, &globex.api_key, "g@example.com", PASSWORD).await;
    fails(
        api.revoke_session(1, k, &gs.session_id).await,
        404,
        "session_not_found",
    );
    assert!(
        introspect(api, 2, &globex.api_key, &gs.access_token)
            .await
            .active
    );
}

/// A chain across nodes; a lost answer's retry (the previous token again)
/// answers the same pair; presenting a retired token is reuse, which revokes
/// the whole session; made-up secrets revoke nothing.
async fn a_lost_answer_is_retried_and_a_reused_token_revokes_the_session<A: Api>(cx: &Cx<A>) {
    let api = &cx.api;
    let t = new_tenant(api, 1, "rotations").await;
    let key = t.api_key.as_str();
    let k = bearer(key);
    let email = "rot@example.com";
    let uid = new_user(api, 2, key, email, Some(PASSWORD)).await.id;
    let keyset = jwks(api, 3, &t.id).await;

    // A chain of 20 rotations through nodes 1, 2, 3, 1, ...
    let s1 = sign_in(api, 1, key, email, PASSWORD).await;
    let mut seen: HashSet<String> = HashSet::from([s1.refresh_token.clone()]);
    let mut token = s1.refresh_token.clone();
    let mut access = s1.access_token.clone();
    for i in 0..20 {
        let r = api.refresh(node(i), k, &token).await.expect("refresh");
        assert_eq!(r.session_id, s1.session_id);
        let next = r.refresh_token;
        assert!(
            seen.insert(next.clone()),
            "rotation {i} answered a used token"
        );
        assert_eq!(generation(&next), generation(&token) + 1);
        let (_, claims) = verify_jwt(&r.access_token, &keyset);
        check_claims(&claims, &s1, &t.id);
        assert!(
            introspect(api, node(i + 1), key, &r.access_token)
                .await
                .active
        );
        assert_inactive(
            &introspect(api, node(i + 2), key, &token).await,
            "a rotated-away refresh token",
        );
        token = next;
        access = r.access_token;
    }
    assert_eq!(generation(&token), 20);
    assert!(introspect(api, 1, key, &access).await.active);

    // Lost-answer retry: the previous token again, while its successor is unused,
    // answers the same pair, on any node, as often as asked.
    let (t21, a21) = refresh_ok(api, 1, key, &token).await;
    for via in [2, 3, 1, 2] {
        let (rt, at) = refresh_ok(api, via, key, &token).await;
        assert_eq!(rt, t21, "the retry answers the same refresh token");
        assert_eq!(at, a21, "and the same access token");
    }
    // Using the successor retires the old token: presenting it is reuse, which
    // revokes the whole session, its newest token included.
    let (t22, a22) = refresh_ok(api, 2, key, &t21).await;
    assert_ne!(t22, t21);
    let (again, _) = refresh_ok(api, 3, key, &t21).await;
    assert_eq!(again, t22, "t21 is now the previous token: a retry");
    fails(api.refresh(3, k, &token).await, 401, "refresh_token_reused");
    for via in [1, 2, 3] {
        fails(api.refresh(via, k, &t22).await, 401, "session_revoked");
        assert_inactive(&introspect(api, via, key, &a22).await, "after reuse");
        assert_inactive(&introspect(api, via, key, &t22).await, "after reuse");
    }
    fails(api.refresh(1, k, &t21).await, 401, "session_revoked");
    fails(api.refresh(2, k, &token).await, 401, "session_revoked");
    assert!(!listed_sessions(api, 1, key, &uid)
        .await
        .contains(&s1.session_id));

    // Reuse of the very first token after two rotations.
    let s2 = sign_in(api, 2, key, email, PASSWORD).await;
    let (s2_1, s2_1_access) = refresh_ok(api, 3, key, &s2.refresh_token).await;
    let (s2_2, s2_2_access) = refresh_ok(api, 1, key, &s2_1).await;
    fails(
        api.refresh(2, k, &s2.refresh_token).await,
        401,
        "refresh_token_reused",
    );
    fails(api.refresh(3, k, &s2_2).await, 401, "session_revoked");
    for token in [&s2.access_token, &s2_1_access, &s2_2_access, &s2_2] {
        assert_inactive(&introspect(api, 2, key, token).await, "after reuse");
    }

    // Forged tokens of a live session (made-up secrets at every generation) are
    // invalid and revoke nothing.
    let s3 = sign_in(api, 3, key, email, PASSWORD).await;
    let mut cur = s3.refresh_token.clone();
    for i in 0..4 {
        cur = refresh_ok(api, node(i), key, &cur).await.0;
    }
    let g = generation(&cur);
    for (i, forged_gen) in [0, 1, g - 2, g - 1, g, g + 1, g + 5]
        .into_iter()
        .enumerate()
    {
        fails(
            api.refresh(node(i), k, &forged_refresh(&s3.session_id, forged_gen, 9))
                .await,
            401,
            "invalid_refresh_token",
        );
    }
    fails(
        api.refresh(1, k, &format!("{cur}x")).await,
        401,
        "invalid_refresh_token",
    );
    let (after_forgeries, _) = refresh_ok(api, 2, key, &cur).await;
    assert_eq!(generation(&after_forgeries), g + 1, "the session survived");
}

/// 50 concurrent refreshes of one token through all three nodes: exactly one
/// successor, which then rotates once (presenting it again is a retry).
async fn concurrent_refreshes_of_one_token_have_exactly_one_successor<A: Api>(cx: &Cx<A>) {
    let api = &cx.api;
    let t = new_tenant(api, 1, "concurrent").await;
    let key = t.api_key.as_str();
    let uid = new_user(api, 2, key, "rot@example.com", Some(PASSWORD))
        .await
        .id;
    let s4 = sign_in(api, 1, key, "rot@example.com", PASSWORD).await;
    let (t1, _) = refresh_ok(api, 2, key, &s4.refresh_token).await;
    let barrier = Arc::new(tokio::sync::Barrier::new(50));
    let mut tasks = Vec::new();
    for i in 0..50 {
        let api = api.clone();
        let key = key.to_owned();
        let token = t1.clone();
        let barrier = Arc::clone(&barrier);
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            api.refresh(node(i), bearer(&key), &token).await
        }));
    }
    let mut successors = HashSet::new();
    let mut accesses = HashSet::new();
    let mut outcomes: HashMap<String, usize> = HashMap::new();
    for task in tasks {
        match task.await.expect("task") {
            Ok(r) => {
                *outcomes.entry("ok".to_owned()).or_default() += 1;
                successors.insert(r.refresh_token);
                accesses.insert(r.access_token);
            }
            Err(e) if e.is_status(401) => {
                *outcomes.entry(e.code).or_default() += 1;
            }
            Err(e) => panic!("concurrent refresh: {e:?}"),
        }
    }
    println!("50 concurrent refreshes of one token: {outcomes:?}");
    assert_eq!(
        successors.len(),
        1,
        "every success answers the same successor: {outcomes:?}"
    );
    assert_eq!(accesses.len(), 1, "and the same access token");
    let t2 = successors.into_iter().next().expect("one");
    assert_eq!(generation(&t2), generation(&t1) + 1);
    let (t3, a3) = refresh_ok(api, 3, key, &t2).await;
    assert_eq!(generation(&t3), generation(&t2) + 1);
    let (t3_again, a3_again) = refresh_ok(api, 1, key, &t2).await;
    assert_eq!((t3_again, a3_again), (t3.clone(), a3.clone()));
    assert!(introspect(api, 2, key, &a3).await.active);
    assert!(introspect(api, 3, key, &t3).await.active);
    assert!(listed_sessions(api, 2, key, &uid)
        .await
        .contains(&s4.session_id));
}

/// Sessions, sign-in and users survive a rotation of the tenant's data key; a
/// lost-answer retry answers the same pair even when the tenant's signing key
/// rotated before the first answer or between it and the retry.
async fn refresh_survives_data_key_and_signing_key_rotations<A: Api>(cx: &Cx<A>) {
    let api = &cx.api;
    let t = new_tenant(api, 1, "rotations").await;
    let key = t.api_key.as_str();
    let email = "rot@example.com";
    let uid = new_user(api, 2, key, email, Some(PASSWORD)).await.id;
    let s = sign_in(api, 1, key, email, PASSWORD).await;
    let (t3, _) = refresh_ok(api, 2, key, &s.refresh_token).await;

    cx.over_http()
        .post(
            3,
            "/v1/admin/keys/rotate",
            Auth::OPERATOR,
            &json!({ "tenant": t.name }),
        )
        .await
        .expect(200);
    let (t4, _) = refresh_ok(api, 1, key, &t3).await;
    assert_eq!(generation(&t4), generation(&t3) + 1);
    assert!(introspect(api, 2, key, &t4).await.active);
    api.get_user(3, bearer(key), &uid)
        .await
        .expect("the user survives");

    // The signing key rotates between the first answer and the retry.
    let s5 = sign_in(api, 2, key, email, PASSWORD).await;
    let (first_rt, first_at) = refresh_ok(api, 3, key, &s5.refresh_token).await;
    api.rotate_signing_key(1, Auth::OPERATOR, &t.id)
        .await
        .expect("rotate");
    let (retry_rt, retry_at) = refresh_ok(api, 2, key, &s5.refresh_token).await;
    assert_eq!(
        retry_rt, first_rt,
        "the retry answers the same refresh token"
    );
    assert!(
        retry_at == first_at,
        "the retry answers the same access token, even across a signing key rotation: \
         first answer signed under kid {}, retry under kid {} (claims equal: {})",
        kid(&first_at),
        kid(&retry_at),
        jwt_parts(&first_at).1 == jwt_parts(&retry_at).1
    );

    // The signing key rotates just before the first answer.
    let s6 = sign_in(api, 3, key, email, PASSWORD).await;
    api.rotate_signing_key(1, Auth::OPERATOR, &t.id)
        .await
        .expect("rotate");
    let (first_rt, first_at) = refresh_ok(api, 3, key, &s6.refresh_token).await;
    let (retry_rt, retry_at) = refresh_ok(api, 1, key, &s6.refresh_token).await;
    assert_eq!((&retry_rt, &retry_at), (&first_rt, &first_at));
    let claims = introspect(api, 2, key, &retry_at).await;
    assert!(claims.active);
    assert_eq!(claims, introspect(api, 2, key, &first_at).await);
}

async fn forged_and_foreign_tokens_introspect_inactive<A: Api>(cx: &Cx<A>) {
    let api = &cx.api;
    let t = new_tenant(api, 1, "acme").await;
    let globex = new_tenant(api, 2, "globex").await;
    let key = t.api_key.as_str();
    new_user(api, 1, key, "alice@example.com", Some(PASSWORD)).await;
    let other = new_user(api, 3, &globex.api_key, "alice@example.com", None).await;
    new_user(api, 1, &globex.api_key, "g@example.com", Some(PASSWORD)).await;
    let s2 = sign_in(api, 2, key, "alice@example.com", PASSWORD).await;
    let gs = sign_in(api, 3, &globex.api_key, "g@example.com", PASSWORD).await;

    let access = &s2.access_token;
    let (h, p) = {
        let mut parts = access.split('.');
        (
            parts.next().expect("header").to_owned(),
            parts.next().expect("payload").to_owned(),
        )
    };
    let sig = access.rsplit('.').next().expect("signature").to_owned();
    let (header, claims) = jwt_parts(access);
    let kid = kid(access);
    let attacker = SigningKey::from_bytes(&[7; 32]);
    let mut tampered_sub = claims.clone();
    tampered_sub["sub"] = json!(other.id);
    let mut tampered_exp = claims.clone();
    tampered_exp["exp"] = json!(claims["exp"].as_u64().expect("exp") + 86_400);
    let mut foreign_kid_header = jwt_parts(&gs.access_token).0;
    foreign_kid_header["kid"] = json!(kid);
    let gs_payload = gs
        .access_token
        .split('.')
        .nth(1)
        .expect("payload")
        .to_owned();
    let gs_sig = gs
        .access_token
        .rsplit('.')
        .next()
        .expect("signature")
        .to_owned();
    let mut flipped_sig = sig.clone();
    let last = flipped_sig.pop().expect("char");
    flipped_sig.push(if last == 'A' { 'Q' } else { 'A' });
    let b64_json = |v: &Value| b64(v.to_string().as_bytes());
    let forgeries: Vec<(&str, String)> = vec![
        (
            "alg none, no signature",
            format!(
                "{}.{p}.",
                b64_json(&json!({ "alg": "none", "typ": "JWT", "kid": kid }))
            ),
        ),
        (
            "alg none, original signature",
            format!(
                "{}.{p}.{sig}",
                b64_json(&json!({ "alg": "none", "kid": kid }))
            ),
        ),
        (
            "alg HS256",
            format!(
                "{}.{p}.{sig}",
                b64_json(&json!({ "alg": "HS256", "typ": "JWT", "kid": kid }))
            ),
        ),
        (
            "signed by an attacker key under the tenant's kid",
            sign_jwt(&attacker, &header, &claims),
        ),
        (
            "signed by an attacker key under its own kid",
            sign_jwt(
                &attacker,
                &json!({ "alg": "EdDSA", "typ": "JWT", "kid": "attacker" }),
                &claims,
            ),
        ),
        (
            "a jwk header pointing at the attacker key",
            sign_jwt(
                &attacker,
                &json!({ "alg": "EdDSA", "typ": "JWT", "kid": kid,
                         "jwk": { "kty": "OKP", "crv": "Ed25519",
                                  "x": b64(attacker.verifying_key().as_bytes()) } }),
                &claims,
            ),
        ),
        ("another tenant's real token", gs.access_token.clone()),
        (
            "another tenant's token under this tenant's kid",
            format!("{}.{gs_payload}.{gs_sig}", b64_json(&foreign_kid_header)),
        ),
        (
            "tampered sub",
            format!("{h}.{}.{sig}", b64_json(&tampered_sub)),
        ),
        (
            "tampered exp",
            format!("{h}.{}.{sig}", b64_json(&tampered_exp)),
        ),
        ("tampered signature", format!("{h}.{p}.{flipped_sig}")),
        ("no signature", format!("{h}.{p}.")),
        ("two segments", format!("{h}.{p}")),
        ("four segments", format!("{access}.{sig}")),
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
            forged_refresh(&s2.session_id, generation(&s2.refresh_token), 3),
        ),
        ("another tenant's refresh token", gs.refresh_token.clone()),
        ("an API key", key.to_owned()),
    ];
    for (i, (what, token)) in forgeries.iter().enumerate() {
        assert_inactive(&introspect(api, node(i), key, token).await, what);
    }
    // The genuine token still verifies and is active.
    assert!(introspect(api, 1, key, access).await.active);
}

/// A revocation acknowledged by one node is seen by the others at once.
async fn a_session_revocation_holds_on_every_node_at_once<A: Api>(cx: &Cx<A>) {
    let api = &cx.api;
    let t = new_tenant(api, 1, "revocations").await;
    let key = t.api_key.as_str();
    let k = bearer(key);
    let email = "rev@example.com";
    let uid = new_user(api, 2, key, email, Some(PASSWORD)).await.id;

    // Session revocation, acknowledged by node 1 (then by 2 and 3 in turn).
    for round in 0..6 {
        let revoker = node(round);
        let others: Vec<u64> = [1, 2, 3].into_iter().filter(|n| *n != revoker).collect();
        let session = sign_in(api, node(round + 1), key, email, PASSWORD).await;
        let (rt, at) = refresh_ok(api, node(round + 2), key, &session.refresh_token).await;
        assert!(introspect(api, others[0], key, &at).await.active);
        api.revoke_session(revoker, k, &session.session_id)
            .await
            .expect("revoke");
        // Immediately: both other nodes at once, then the refresh.
        let (x, y) = tokio::join!(
            introspect(api, others[0], key, &at),
            introspect(api, others[1], key, &at)
        );
        assert_inactive(&x, &format!("round {round}: node {}", others[0]));
        assert_inactive(&y, &format!("round {round}: node {}", others[1]));
        fails(api.refresh(others[1], k, &rt).await, 401, "session_revoked");
        assert_inactive(
            &introspect(api, others[0], key, &rt).await,
            "revoked refresh token",
        );
        assert!(!listed_sessions(api, others[1], key, &uid)
            .await
            .contains(&session.session_id));
    }

    // Reuse detection's revocation is also seen at once everywhere.
    let session = sign_in(api, 1, key, email, PASSWORD).await;
    let (r1, _) = refresh_ok(api, 2, key, &session.refresh_token).await;
    let (r2, a2) = refresh_ok(api, 3, key, &r1).await;
    fails(
        api.refresh(1, k, &session.refresh_token).await,
        401,
        "refresh_token_reused",
    );
    let (x, y) = tokio::join!(introspect(api, 2, key, &a2), introspect(api, 3, key, &a2));
    assert_inactive(&x, "after reuse, node 2");
    assert_inactive(&y, "after reuse, node 3");
    fails(api.refresh(3, k, &r2).await, 401, "session_revoked");
}

/// The attacker's side: tenant B against every session and token of tenant A.
async fn another_tenant_cannot_revoke_refresh_or_introspect_a_session<A: Api>(cx: &Cx<A>) {
    let api = &cx.api;
    let a = new_tenant(api, 1, "victim-corp").await;
    let b = new_tenant(api, 2, "mallory").await;
    let (ak, bk) = (a.api_key.as_str(), b.api_key.as_str());
    let a_email = "ceo@victim.example";
    let ua = new_user(api, 1, ak, a_email, Some(PASSWORD)).await.id;
    // A's sessions: one rotated twice, one fresh.
    let sa = sign_in(api, 2, ak, a_email, PASSWORD).await;
    let r0 = sa.refresh_token.clone();
    let (r1, _) = refresh_ok(api, 3, ak, &r0).await;
    let (r2, a_access) = refresh_ok(api, 1, ak, &r1).await;
    let sa2 = sign_in(api, 3, ak, a_email, PASSWORD).await;
    let a_jwks = jwks(api, 2, &a.id).await;

    for via in [1, 2, 3] {
        for sid in [&sa.session_id, &sa2.session_id] {
            fails(
                api.revoke_session(via, bearer(bk), sid).await,
                404,
                "session_not_found",
            );
        }
        // Refresh tokens: current, previous (the retry path) and retired (the
        // reuse path, which must not revoke A's session).
        for token in [&r2, &r1, &r0, &sa2.refresh_token] {
            let e = fails(
                api.refresh(via, bearer(bk), token).await,
                401,
                "invalid_refresh_token",
            );
            assert!(!e.text.contains("rt1."), "no token in the refusal: {e:?}");
        }
        // Introspection: A's tokens are inactive for B.
        for token in [
            &sa.access_token,
            &a_access,
            &sa2.access_token,
            &r2,
            &sa2.refresh_token,
        ] {
            assert_inactive(
                &introspect(api, via, bk, token).await,
                "A's token introspected by B",
            );
        }
        // Sign-in to A's user with B's key.
        fails(
            api.sign_in(via, bearer(bk), a_email, PASSWORD).await,
            401,
            "invalid_credentials",
        );
        // A's tokens are not credentials.
        for token in [&sa.access_token, &r2] {
            unauthorized(api.get_user(via, bearer(token), &ua).await);
            unauthorized(api.kv_get(via, bearer(token), "secret").await);
            unauthorized(api.list_tenants(via, bearer(token)).await);
        }
    }
    // B's own user of the same email has B's sessions; B's tokens are refused
    // by A; A's kid is not among B's keys.
    let twin = new_user(api, 2, bk, a_email, Some("mallory's password")).await;
    let bs = sign_in(api, 3, bk, a_email, "mallory's password").await;
    assert_eq!(bs.user_id, twin.id);
    assert_ne!(bs.user_id, ua);
    assert_eq!(
        listed_sessions(api, 1, bk, &bs.user_id).await,
        vec![bs.session_id.clone()]
    );
    assert_inactive(
        &introspect(api, 2, ak, &bs.access_token).await,
        "B's token at A",
    );
    assert_inactive(
        &introspect(api, 3, ak, &bs.refresh_token).await,
        "B's refresh at A",
    );
    fails(
        api.refresh(1, bearer(ak), &bs.refresh_token).await,
        401,
        "invalid_refresh_token",
    );
    let b_jwks = jwks(api, 1, &b.id).await;
    assert!(!kids(&b_jwks).contains(&kid(&sa.access_token)));

    // Nothing of A changed.
    let mut listed = listed_sessions(api, 2, ak, &ua).await;
    listed.sort();
    let mut expected = vec![sa.session_id.clone(), sa2.session_id.clone()];
    expected.sort();
    assert_eq!(listed, expected, "A's sessions are all alive");
    for via in [1, 2, 3] {
        assert!(introspect(api, via, ak, &a_access).await.active);
        assert!(
            introspect(api, via, ak, &r2).await.active,
            "r2 still current"
        );
    }
    let _ = verify_jwt(&a_access, &a_jwks);
    let (r3, _) = refresh_ok(api, 3, ak, &r2).await;
    assert_eq!(generation(&r3), 3, "B's attempts rotated nothing");
    refresh_ok(api, 1, ak, &sa2.refresh_token).await;
    sign_in(api, 1, ak, a_email, PASSWORD).await;
    assert_eq!(jwks(api, 3, &a.id).await, a_jwks, "A's keys did not rotate");
}

/// The session of `session_id` as its user's listing shows it.
async fn listed_session<A: Api>(
    api: &A,
    via: u64,
    key: &str,
    user_id: &str,
    session_id: &str,
) -> Option<cairn_tests::api::Session> {
    api.list_sessions(via, bearer(key), user_id)
        .await
        .expect("list sessions")
        .into_iter()
        .find(|s| s.id == session_id)
}

/// A tenant's idle timeout (4 s) and absolute lifetime (8 s): a session unused
/// for longer than the first is over, one refreshed well inside it still ends
/// at the second, and an access token never outlives its session.
async fn a_session_ends_when_idle_and_at_its_absolute_lifetime<A: Api>(cx: &Cx<A>) {
    let api = &cx.api;
    let brief = api
        .create_tenant(
            1,
            Auth::OPERATOR,
            CreateTenantRequest {
                name: unique("brief"),
                region: None,
                session_idle_timeout_secs: Some(4),
                session_absolute_timeout_secs: Some(8),
                ..Default::default()
            },
        )
        .await
        .expect("create tenant");
    let key = brief.api_key.as_str();
    let k = bearer(key);
    let email = "brief@example.com";
    let uid = new_user(api, 1, key, email, Some(PASSWORD)).await.id;

    // Idle end.
    let session = sign_in(api, 2, key, email, PASSWORD).await;
    let (_, claims) = jwt_parts(&session.access_token);
    let (iat, exp) = (
        claims["iat"].as_u64().expect("iat"),
        claims["exp"].as_u64().expect("exp"),
    );
    assert_eq!(exp, iat + 4, "capped at the idle end: {claims}");
    let listed = listed_session(api, 3, key, &uid, &session.session_id)
        .await
        .expect("listed");
    assert_eq!(listed.expires_at, iat + 4);
    assert!(introspect(api, 1, key, &session.access_token).await.active);
    tokio::time::sleep(Duration::from_millis(5_200)).await;
    fails(
        api.refresh(3, k, &session.refresh_token).await,
        401,
        "session_expired",
    );
    assert_inactive(
        &introspect(api, 1, key, &session.refresh_token).await,
        "refresh token of an idle-expired session",
    );
    assert_inactive(
        &introspect(api, 2, key, &session.access_token).await,
        "access token of an idle-expired session",
    );
    assert!(listed_session(api, 2, key, &uid, &session.session_id)
        .await
        .is_none());

    // Absolute end: refreshed every 1.5 s, the session still ends 8 s after
    // sign-in.
    let session = sign_in(api, 1, key, email, PASSWORD).await;
    let signed_in = jwt_parts(&session.access_token).1["iat"]
        .as_u64()
        .expect("iat");
    let mut token = session.refresh_token.clone();
    let mut i = 0;
    let ended = loop {
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        i += 1;
        match api.refresh(node(i), k, &token).await {
            Err(e) if e.is_status(401) => {
                e.assert_is(401, "session_expired");
                break unix_now();
            }
            r => {
                let r = r.expect("refresh inside the idle timeout");
                let (_, claims) = jwt_parts(&r.access_token);
                let exp = claims["exp"].as_u64().expect("exp");
                assert!(
                    exp <= signed_in + 8,
                    "never past the absolute end: {claims}"
                );
                token = r.refresh_token;
                assert!(i < 10, "the session outlived its absolute lifetime");
            }
        }
    };
    assert!(ended >= signed_in + 8, "not before the absolute end");
    assert_inactive(
        &introspect(api, 3, key, &token).await,
        "refresh token past the absolute end",
    );
}

/// A change of a tenant's lifetimes applies to sessions signed in from then
/// on, at once on every node; sessions signed in before keep theirs.
async fn a_lifetime_change_applies_to_sessions_signed_in_after_it<A: Api>(cx: &Cx<A>) {
    let api = &cx.api;
    let plain = new_tenant(api, 2, "plain").await;
    let pkey = plain.api_key.as_str();
    let email = "plain@example.com";
    let puid = new_user(api, 1, pkey, email, Some(PASSWORD)).await.id;
    let before = sign_in(api, 1, pkey, email, PASSWORD).await;
    let changed = api
        .update_tenant(
            1,
            Auth::OPERATOR,
            UpdateTenantRequest {
                id: plain.id.clone(),
                session_idle_timeout_secs: Some(60),
                session_absolute_timeout_secs: None,
                ..Default::default()
            },
        )
        .await
        .expect("update tenant");
    assert_eq!(changed.session_idle_timeout_secs, 60);
    assert_eq!(changed.session_absolute_timeout_secs, DEFAULT_ABSOLUTE);
    let after = sign_in(api, 3, pkey, email, PASSWORD).await;
    let (_, claims) = jwt_parts(&after.access_token);
    let iat = claims["iat"].as_u64().expect("iat");
    let listed = listed_session(api, 2, pkey, &puid, &after.session_id)
        .await
        .expect("listed");
    assert_eq!(listed.expires_at, iat + 60);
    assert_eq!(claims["exp"], iat + 60, "capped at the new idle end");
    let listed = listed_session(api, 2, pkey, &puid, &before.session_id)
        .await
        .expect("listed");
    assert!(
        listed.expires_at >= unix_now() + DEFAULT_IDLE - 120,
        "a session signed in before the change keeps its lifetime: {listed:?}"
    );
}

/// HTTP: session and token bodies are strict JSON, and a session listing
/// carries no token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_session_bodies_are_strict_and_listings_show_no_token() {
    let cx = Cx::http();
    let http = &cx.api;
    let t = new_tenant(http, 1, "inputs").await;
    let key = t.api_key.as_str();
    let k = bearer(key);
    let uid = new_user(http, 2, key, "in@example.com", Some(PASSWORD))
        .await
        .id;
    let session = sign_in(http, 3, key, "in@example.com", PASSWORD).await;
    for (i, (path, valid)) in [
        (
            "/v1/sessions",
            json!({ "email": "in@example.com", "password": PASSWORD }),
        ),
        (
            "/v1/sessions/refresh",
            json!({ "refresh_token": session.refresh_token }),
        ),
        (
            "/v1/tokens/introspect",
            json!({ "token": session.access_token }),
        ),
    ]
    .into_iter()
    .enumerate()
    {
        assert_strict_json_body(http, node(i), Method::POST, path, k, &valid).await;
    }
    // Nothing the refused requests carried happened.
    let v = introspect(http, 1, key, &session.refresh_token).await;
    assert!(v.active, "the refresh token was not rotated: {v:?}");
    assert_eq!(
        listed_sessions(http, 3, key, &uid).await,
        vec![session.session_id.clone()],
        "no session created"
    );

    // The listing, with one session refreshed: no token in it.
    let (rt2, at2) = refresh_ok(http, 1, key, &session.refresh_token).await;
    let s2 = sign_in(http, 2, key, "in@example.com", PASSWORD).await;
    let r = http.get(3, &format!("/v1/users/{uid}/sessions"), k).await;
    r.expect(200);
    for secret in [
        &session.refresh_token,
        &rt2,
        &session.access_token,
        &at2,
        &s2.refresh_token,
        &s2.access_token,
    ] {
        assert!(!r.text.contains(secret.as_str()), "no token in the list");
    }
}

/// The end user at `ip` (with `user_agent`) an app names.
fn end_user(ip: &str, user_agent: Option<&str>) -> ClientInfo {
    ClientInfo {
        ip: Some(ip.to_owned()),
        user_agent: user_agent.map(str::to_owned),
    }
}

/// An app names its end user (`client`) only with a key of scope
/// `client_info`, which a tenant's first key lacks; the session then records
/// that user's address and user agent, never the app's. `X-Forwarded-For` is
/// ignored while `[http] trusted_proxy_hops` is 0.
async fn an_app_names_its_end_user_only_with_the_client_info_scope<A: Api>(cx: &Cx<A>) {
    let api = &cx.api;
    let t = new_tenant(api, 1, "client-info").await;
    let first = bearer(&t.api_key);
    new_user(api, 2, &t.api_key, "carol@example.com", Some(PASSWORD)).await;
    let browser = Some(end_user("203.0.113.7", Some("Browser/1.0")));
    fails(
        api.sign_in_for(1, first, "carol@example.com", PASSWORD, browser.clone())
            .await,
        403,
        "insufficient_scope",
    );
    let mut request = crate::user_request("dave@example.com", Some(PASSWORD));
    request.client.clone_from(&browser);
    fails(
        api.create_user(2, first, request.clone()).await,
        403,
        "insufficient_scope",
    );
    // Refused before anything else: not created.
    fails(
        api.sign_in(3, first, "dave@example.com", PASSWORD).await,
        401,
        "invalid_credentials",
    );

    let app = crate::new_api_key(api, 1, &t.id, &["read", "write", "client_info"]).await;
    let k = bearer(&app.api_key);
    api.create_user(3, k, request)
        .await
        .expect("create with client");
    let s = api
        .sign_in_for(2, k, "carol@example.com", PASSWORD, browser.clone())
        .await
        .expect("sign in for the browser");
    let r = api
        .refresh_for(3, k, &s.refresh_token, browser.clone())
        .await
        .expect("refresh for the browser");
    assert_eq!(r.session_id, s.session_id);
    let user_id = s.user_id.clone();
    let sessions = api.list_sessions(1, k, &user_id).await.expect("list");
    let session = sessions
        .iter()
        .find(|x| x.id == s.session_id)
        .expect("listed");
    assert_eq!(session.ip.as_deref(), Some("203.0.113.7"), "{session:?}");
    assert_eq!(
        session.user_agent.as_deref(),
        Some("Browser/1.0"),
        "{session:?}"
    );

    let v6 = api
        .sign_in_for(
            1,
            k,
            "carol@example.com",
            PASSWORD,
            Some(end_user("2001:db8::1", None)),
        )
        .await
        .expect("an IPv6 end user");
    let sessions = api.list_sessions(1, k, &user_id).await.expect("list");
    let session = sessions
        .iter()
        .find(|x| x.id == v6.session_id)
        .expect("listed");
    assert_eq!(session.ip.as_deref(), Some("2001:db8::1"), "{session:?}");
    assert!(
        session
            .user_agent
            .as_deref()
            .is_some_and(|ua| ua.starts_with(USER_AGENT)),
        "without a client user agent, the request's: {session:?}"
    );
    fails(
        api.sign_in_for(
            2,
            k,
            "carol@example.com",
            PASSWORD,
            Some(end_user("not-an-ip", None)),
        )
        .await,
        400,
        "invalid_request",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_x_forwarded_for_is_ignored_without_trusted_proxies() {
    let cx = Cx::http();
    let api = &cx.api;
    let t = new_tenant(api, 1, "xff").await;
    new_user(api, 2, &t.api_key, "erin@example.com", Some(PASSWORD)).await;
    let r = cx
        .cluster
        .client()
        .post(cx.cluster.url(3, "/v1/sessions"))
        .bearer_auth(&t.api_key)
        .header("x-forwarded-for", "198.51.100.9")
        .json(&json!({"email": "erin@example.com", "password": PASSWORD}))
        .send()
        .await
        .expect("sign in");
    assert_eq!(r.status(), 201);
    let s: Value = r.json().await.expect("json");
    let user_id = s["user_id"].as_str().expect("user id");
    let sessions = api
        .list_sessions(1, bearer(&t.api_key), user_id)
        .await
        .expect("list");
    assert_eq!(sessions[0].ip.as_deref(), Some("127.0.0.1"), "{sessions:?}");
}

/// A bucket of the `sign_in` action, as a tenant setting.
fn sign_in_limit(scope: &str, burst: u32, per_minute: u32) -> RateLimit {
    RateLimit {
        action: "sign_in".to_owned(),
        scope: scope.to_owned(),
        burst,
        per_minute,
    }
}

/// Sets `t`'s settings (operator).
async fn set_settings<A: Api>(api: &A, t: &str, grace: Option<u64>, limits: Vec<RateLimit>) {
    api.update_tenant(
        1,
        Auth::OPERATOR,
        UpdateTenantRequest {
            id: t.to_owned(),
            refresh_retry_grace_secs: grace,
            rate_limits: limits,
            ..Default::default()
        },
    )
    .await
    .expect("update tenant settings");
}

/// The theft scenario: a thief holding a copy of the refresh token refreshes
/// first. Within the tenant's retry grace the victim's refresh with the same
/// (now previous) token is a lost-answer retry and gets the same pair; after
/// it, the victim's presentation is reuse: the family dies, and both sides'
/// tokens are refused on every node.
async fn a_thief_who_refreshes_first_loses_the_session_once_the_grace_is_over<A: Api>(cx: &Cx<A>) {
    let api = &cx.api;
    let t = new_tenant(api, 1, "theft").await;
    set_settings(api, &t.id, Some(1), Vec::new()).await;
    let key = t.api_key.as_str();
    let k = bearer(key);
    new_user(api, 2, key, "victim@example.com", Some(PASSWORD)).await;

    // Within the grace: the retry answers the thief's pair (a lost answer).
    let s = sign_in(api, 1, key, "victim@example.com", PASSWORD).await;
    let stolen = s.refresh_token.clone();
    let (thief, thief_access) = refresh_ok(api, 2, key, &stolen).await;
    let (retry, _) = refresh_ok(api, 3, key, &stolen).await;
    assert_eq!(retry, thief, "within the grace, the previous token retries");

    // After the grace (1 s, measured between the proposers' times in whole
    // seconds: wait past the next second boundary and one more).
    let s = sign_in(api, 1, key, "victim@example.com", PASSWORD).await;
    let stolen = s.refresh_token.clone();
    let (thief, thief_access2) = refresh_ok(api, 2, key, &stolen).await;
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    fails(
        api.refresh(3, k, &stolen).await,
        401,
        "refresh_token_reused",
    );
    for via in [1, 2, 3] {
        fails(api.refresh(via, k, &thief).await, 401, "session_revoked");
        assert_inactive(&introspect(api, via, key, &thief_access2).await, "thief");
        assert_inactive(&introspect(api, via, key, &thief).await, "thief");
    }
    assert!(
        introspect(api, 1, key, &thief_access).await.active,
        "the first session, refreshed within its grace, lives"
    );

    // A grace of 0: the previous token is never a retry.
    set_settings(api, &t.id, Some(0), Vec::new()).await;
    let s = sign_in(api, 2, key, "victim@example.com", PASSWORD).await;
    let (_, _) = refresh_ok(api, 1, key, &s.refresh_token).await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    fails(
        api.refresh(2, k, &s.refresh_token).await,
        401,
        "refresh_token_reused",
    );
}

/// Sign-in's buckets (SPEC §4 rate limits), with a tenant's own limits:
/// - the pair bucket stops one address hammering one account, while the
///   account still signs in from elsewhere;
/// - a spray through all three nodes at once meets one per-email limit,
///   exactly (the log decides each failure), after which only a pair that
///   signed in before gets in with the right password;
/// - one address meets its own bucket, whatever the emails;
/// - `Retry-After` is honest: a request made after it goes through.
async fn sign_in_meets_its_rate_limits<A: Api>(cx: &Cx<A>) {
    let api = &cx.api;
    let t = new_tenant(api, 1, "limits").await;
    set_settings(
        api,
        &t.id,
        None,
        vec![
            sign_in_limit("email", 4, 1),
            sign_in_limit("pair", 2, 60),
            sign_in_limit("ip", 8, 1),
        ],
    )
    .await;
    let shown = api.get_tenant(1, Auth::OPERATOR, &t.id).await.expect("get");
    assert!(shown.rate_limits.contains(&sign_in_limit("pair", 2, 60)));
    let app = crate::new_api_key(api, 1, &t.id, &["read", "write", "client_info"]).await;
    let k = bearer(&app.api_key);
    let from = |ip: &str| Some(end_user(ip, None));
    let attempt = |via: u64, email: &'static str, password: &'static str, ip: String| {
        let api = api.clone();
        let key = app.api_key.clone();
        async move {
            api.sign_in_for(
                via,
                bearer(&key),
                email,
                password,
                Some(end_user(&ip, None)),
            )
            .await
        }
    };
    new_user(api, 2, &t.api_key, "alice@example.com", Some(PASSWORD)).await;
    new_user(api, 3, &t.api_key, "bob@example.com", Some(PASSWORD)).await;

    // The pair: two failures from one address, then that address is refused
    // (right password or not) while alice signs in from home.
    for via in [1, 2] {
        fails(
            attempt(via, "alice@example.com", "wrong", "198.51.100.1".into()).await,
            401,
            "invalid_credentials",
        );
    }
    let limited = fails(
        attempt(3, "alice@example.com", PASSWORD, "198.51.100.1".into()).await,
        429,
        "rate_limited",
    );
    assert_eq!(limited.retry_after, Some(1), "{limited:?}");
    api.sign_in_for(1, k, "alice@example.com", PASSWORD, from("203.0.113.5"))
        .await
        .expect("alice from home");
    tokio::time::sleep(Duration::from_secs(limited.retry_after.unwrap_or(1))).await;
    fails(
        attempt(2, "alice@example.com", "wrong", "198.51.100.1".into()).await,
        401,
        "invalid_credentials",
    );

    // The spray: bob signs in from home first, then twelve addresses guess
    // at once through all three nodes. Exactly four failures are counted.
    api.sign_in_for(2, k, "bob@example.com", PASSWORD, from("203.0.113.9"))
        .await
        .expect("bob from home");
    let spray: Vec<_> = (0..12u8)
        .map(|i| {
            tokio::spawn(attempt(
                u64::from(i % 3) + 1,
                "bob@example.com",
                "guess",
                format!("192.0.2.{}", i + 10),
            ))
        })
        .collect();
    let mut codes: HashMap<String, usize> = HashMap::new();
    for a in spray {
        let e = a.await.expect("task").expect_err("a guess");
        if e.code == "rate_limited" {
            assert!(e.retry_after.is_some_and(|s| s >= 1), "{e:?}");
        }
        *codes.entry(e.code).or_default() += 1;
    }
    assert_eq!(
        (codes.get("invalid_credentials"), codes.get("rate_limited")),
        (Some(&4), Some(&8)),
        "one per-email limit across the nodes: {codes:?}"
    );
    fails(
        api.sign_in_for(3, k, "bob@example.com", PASSWORD, from("203.0.113.77"))
            .await,
        429,
        "rate_limited",
    );
    api.sign_in_for(1, k, "bob@example.com", PASSWORD, from("203.0.113.9"))
        .await
        .expect("bob's own address still signs him in");

    // One address, many emails: its node-local bucket of 8.
    for i in 0..8 {
        let email = format!("nobody{i}@example.com");
        fails(
            api.sign_in_for(2, k, &email, "x", from("192.0.2.200"))
                .await,
            401,
            "invalid_credentials",
        );
    }
    fails(
        api.sign_in_for(2, k, "nobody@example.com", "x", from("192.0.2.200"))
            .await,
        429,
        "rate_limited",
    );
}

/// A new password ends every other session of the user in the same entry:
/// their refresh tokens and introspection say so at once on every node; the
/// session named `keep_session_id` lives on. "Sign out everywhere" ends the
/// rest. Failed sign-ins are counted on the user until it signs in.
async fn a_password_change_ends_the_other_sessions<A: Api>(cx: &Cx<A>) {
    let api = &cx.api;
    let t = new_tenant(api, 1, "pwchange").await;
    let key = t.api_key.as_str();
    let k = bearer(key);
    let uid = new_user(api, 2, key, "erin@example.com", Some(PASSWORD))
        .await
        .id;
    let app = crate::new_api_key(api, 1, &t.id, &["read", "write", "client_info"]).await;
    for _ in 0..2 {
        fails(
            api.sign_in_for(
                3,
                bearer(&app.api_key),
                "erin@example.com",
                "wrong password",
                Some(end_user("198.51.100.23", None)),
            )
            .await,
            401,
            "invalid_credentials",
        );
    }
    let u = api.get_user(1, k, &uid).await.expect("get user");
    let failed = u.failed_sign_ins.expect("failed_sign_ins");
    assert_eq!(failed.count, 2, "{failed:?}");
    assert_eq!(failed.last_ip.as_deref(), Some("198.51.100.23"));
    assert!(failed.last_at.is_some_and(|at| at + 60 > unix_now()));

    let kept = sign_in(api, 1, key, "erin@example.com", PASSWORD).await;
    let other = sign_in(api, 2, key, "erin@example.com", PASSWORD).await;
    let third = sign_in(api, 3, key, "erin@example.com", PASSWORD).await;
    let u = api.get_user(2, k, &uid).await.expect("get user");
    assert_eq!(u.failed_sign_ins.map(|f| f.count), Some(0), "cleared");

    let new_password = "a brand new passphrase";
    api.update_user(
        3,
        k,
        cairn_tests::api::UpdateUserRequest {
            id: uid.clone(),
            email: None,
            password: Some(new_password.to_owned()),
            keep_session_id: Some(kept.session_id.clone()),
        },
    )
    .await
    .expect("change the password");
    for via in [1, 2, 3] {
        for s in [&other, &third] {
            assert_inactive(&introspect(api, via, key, &s.access_token).await, "ended");
            assert_inactive(&introspect(api, via, key, &s.refresh_token).await, "ended");
        }
        assert!(introspect(api, via, key, &kept.access_token).await.active);
    }
    fails(
        api.refresh(1, k, &other.refresh_token).await,
        401,
        "session_revoked",
    );
    let listed = listed_sessions(api, 2, key, &uid).await;
    assert_eq!(listed, std::slice::from_ref(&kept.session_id));
    fails(
        api.sign_in(1, k, "erin@example.com", PASSWORD).await,
        401,
        "invalid_credentials",
    );

    // Sign out everywhere (scope manage): the kept session goes too.
    let reader = crate::new_api_key(api, 1, &t.id, &["read", "write"]).await;
    fails(
        api.revoke_user_sessions(2, bearer(&reader.api_key), &uid)
            .await,
        403,
        "insufficient_scope",
    );
    let again = sign_in(api, 2, key, "erin@example.com", new_password).await;
    api.revoke_user_sessions(3, k, &uid)
        .await
        .expect("sign out everywhere");
    for via in [1, 2, 3] {
        for s in [&kept, &again] {
            assert_inactive(
                &introspect(api, via, key, &s.access_token).await,
                "signed out",
            );
        }
    }
    assert!(listed_sessions(api, 1, key, &uid).await.is_empty());
    let other_tenant = new_tenant(api, 1, "pwchange-other").await;
    fails(
        api.revoke_user_sessions(1, bearer(&other_tenant.api_key), &uid)
            .await,
        404,
        "user_not_found",
    );
}

/// Every verification failure takes its minimum time, whatever decided it
/// (lower bounds only: these never time the service's speed): a sign-in
/// 150 ms, a refused refresh 50 ms, a refused API key 25 ms.
async fn verification_failures_take_their_minimum_time<A: Api>(cx: &Cx<A>) {
    let api = &cx.api;
    let t = new_tenant(api, 1, "min-time").await;
    let key = t.api_key.as_str();
    let k = bearer(key);
    new_user(api, 2, key, "gina@example.com", Some(PASSWORD)).await;
    let s = sign_in(api, 1, key, "gina@example.com", PASSWORD).await;
    let at_least = |min_ms: u64, started: std::time::Instant, what: &str| {
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(min_ms),
            "{what} answered after {took:?}, before its minimum of {min_ms} ms"
        );
    };
    for (email, password) in [
        ("gina@example.com", "wrong password"),
        ("nobody@example.com", PASSWORD),
        ("not an email", PASSWORD),
    ] {
        let started = std::time::Instant::now();
        fails(
            api.sign_in(3, k, email, password).await,
            401,
            "invalid_credentials",
        );
        at_least(150, started, "a failed sign-in");
    }
    for token in [
        forged_refresh(&s.session_id, 0, 3),
        forged_refresh(&s.session_id, 5_000_000, 3),
        "rt1.nonsense".to_owned(),
    ] {
        let started = std::time::Instant::now();
        fails(
            api.refresh(2, k, &token).await,
            401,
            "invalid_refresh_token",
        );
        at_least(50, started, "a refused refresh");
    }
    let unknown = format!("ck_{}", "0".repeat(20));
    for bad in [format!("{key}x"), unknown] {
        let started = std::time::Instant::now();
        fails(
            api.get_user(1, bearer(&bad), "usr_1_x").await,
            401,
            "unauthorized",
        );
        at_least(25, started, "a refused API key");
    }
}
