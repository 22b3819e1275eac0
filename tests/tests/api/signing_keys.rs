//! `signing_keys`: each tenant's token signing keys, published as a JWKS
//! (access tokens verify against it, here, with Ed25519), and their rotation.

use std::collections::HashSet;

use cairn_tests::api::{bearer, fails, unauthorized, Api, Auth};
use cairn_tests::jwt::{kid, verify_jwt};

use crate::{
    check_claims, introspect, jwks, kids, new_tenant, new_user, node, refresh_ok, sign_in, Cx,
    PASSWORD,
};

over_both_transports!(
    the_jwks_is_public_per_tenant_and_the_same_on_every_node,
    a_rotation_publishes_a_new_key_first_and_tokens_signed_before_stay_valid,
);

async fn the_jwks_is_public_per_tenant_and_the_same_on_every_node<A: Api>(cx: &Cx<A>) {
    let api = &cx.api;
    let acme = new_tenant(api, 1, "acme").await;
    let globex = new_tenant(api, 2, "globex").await;
    let key = acme.api_key.as_str();
    new_user(api, 1, key, "alice@example.com", Some(PASSWORD)).await;
    let s1 = sign_in(api, 3, key, "alice@example.com", PASSWORD).await;

    // One key at first, the same on every node; the access token verifies
    // against it and names it.
    let keyset = jwks(api, 1, &acme.id).await;
    assert_eq!(keyset.keys.len(), 1);
    for via in [2, 3] {
        assert_eq!(
            jwks(api, via, &acme.id).await,
            keyset,
            "same JWKS on node {via}"
        );
    }
    let (header, claims) = verify_jwt(&s1.access_token, &keyset);
    assert_eq!(header["kid"], kids(&keyset)[0].as_str());
    check_claims(&claims, &s1, &acme.id);

    // Keys are per tenant; an unknown tenant has none.
    let globex_keyset = jwks(api, 2, &globex.id).await;
    assert_ne!(kids(&globex_keyset), kids(&keyset), "keys are per tenant");
    assert!(!kids(&globex_keyset).contains(&kid(&s1.access_token)));
    for unknown in ["nosuchtenant", "x", "not-an-id", &"a".repeat(65)] {
        fails(api.get_jwks(1, unknown).await, 404, "tenant_not_found");
    }

    // Another tenant's key rotates nothing.
    unauthorized(
        api.rotate_signing_key(3, bearer(&globex.api_key), &acme.id)
            .await,
    );
    assert_eq!(
        jwks(api, 3, &acme.id).await,
        keyset,
        "the keys did not rotate"
    );
}

async fn a_rotation_publishes_a_new_key_first_and_tokens_signed_before_stay_valid<A: Api>(
    cx: &Cx<A>,
) {
    let api = &cx.api;
    let t = new_tenant(api, 1, "rotating").await;
    let bystander = new_tenant(api, 2, "bystander").await;
    let bystander_keys = jwks(api, 1, &bystander.id).await;
    let key = t.api_key.as_str();
    let email = "alice@example.com";
    new_user(api, 2, key, email, Some(PASSWORD)).await;
    let s2 = sign_in(api, 3, key, email, PASSWORD).await;
    let keyset = jwks(api, 1, &t.id).await;
    let old = keyset.keys[0].clone();

    // The new key first, the retired one still published, on every node.
    let rotated = api
        .rotate_signing_key(2, Auth::OPERATOR, &t.id)
        .await
        .expect("rotate");
    assert_eq!(rotated.keys.len(), 2, "{rotated:?}");
    assert_ne!(rotated.keys[0].kid, old.kid);
    assert_eq!(rotated.keys[1], old);
    let new_kid = rotated.keys[0].kid.clone();
    for via in [1, 2, 3] {
        let published = jwks(api, via, &t.id).await;
        assert_eq!(published, rotated, "node {via} publishes both keys");
        let published: HashSet<String> = kids(&published).into_iter().collect();
        assert_eq!(
            published,
            kids(&rotated).into_iter().collect::<HashSet<_>>()
        );
    }
    fails(
        api.rotate_signing_key(3, Auth::OPERATOR, "nosuchtenant")
            .await,
        404,
        "tenant_not_found",
    );
    unauthorized(api.rotate_signing_key(1, bearer(key), &t.id).await);

    // Tokens signed before stay valid; new ones (sign-in or refresh) carry the
    // new kid.
    let _ = verify_jwt(&s2.access_token, &rotated);
    for via in [1, 2, 3] {
        assert!(
            introspect(api, via, key, &s2.access_token).await.active,
            "a token signed before the rotation"
        );
    }
    let s3 = sign_in(api, 1, key, email, PASSWORD).await;
    let (h3, c3) = verify_jwt(&s3.access_token, &rotated);
    assert_eq!(h3["kid"], new_kid.as_str());
    check_claims(&c3, &s3, &t.id);
    let (_, at_after) = refresh_ok(api, 2, key, &s2.refresh_token).await;
    let (h4, _) = verify_jwt(&at_after, &rotated);
    assert_eq!(
        h4["kid"],
        new_kid.as_str(),
        "a refresh signs with the new key"
    );
    assert!(introspect(api, 3, key, &at_after).await.active);
    assert_eq!(
        jwks(api, 1, &bystander.id).await,
        bystander_keys,
        "other tenants' keys do not change"
    );

    // A second rotation: tokens signed under either earlier key stay valid while
    // they have not expired.
    let twice = api
        .rotate_signing_key(1, Auth::OPERATOR, &t.id)
        .await
        .expect("rotate again");
    assert_eq!(twice.keys.len(), 3, "{twice:?}");
    assert_eq!(twice.keys[1..], rotated.keys[..]);
    let third_kid = twice.keys[0].kid.clone();
    assert!(third_kid != old.kid && third_kid != new_kid);
    for (i, token) in [&s2.access_token, &s3.access_token, &at_after]
        .into_iter()
        .enumerate()
    {
        assert!(
            introspect(api, node(i), key, token).await.active,
            "signed under an earlier key"
        );
    }
    let s4 = sign_in(api, 2, key, email, PASSWORD).await;
    let (h5, _) = verify_jwt(&s4.access_token, &jwks(api, 3, &t.id).await);
    assert_eq!(h5["kid"], third_kid.as_str());
}
