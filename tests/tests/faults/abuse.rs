//! Abuse resistance under faults and counted work: rate limits survive the
//! data group's leader being killed (no fresh budget after failover), and
//! garbage refresh tokens cost a bounded walk on the blocking pool and no Raft
//! write at all.

use std::time::{Duration, Instant};

use cairn_tests::api::{
    bearer, fails, user_request, Api, Auth, ClientInfo, CreateTenantRequest, HttpApi, RateLimit,
};
use cairn_tests::jwt::{forged_refresh, sign_jwt};
use cairn_tests::TestCluster;
use serde_json::Value;

const PASSWORD: &str = "correct horse battery";

fn from(ip: &str) -> Option<ClientInfo> {
    Some(ClientInfo {
        ip: Some(ip.to_owned()),
        user_agent: None,
    })
}

/// A tenant, an app key with `client_info`, and one user.
async fn tenant_with_user(api: &HttpApi, limits: Vec<RateLimit>) -> (String, String) {
    let t = api
        .create_tenant(
            1,
            Auth::OPERATOR,
            CreateTenantRequest {
                name: "abuse".to_owned(),
                rate_limits: limits,
                ..CreateTenantRequest::default()
            },
        )
        .await
        .expect("create tenant");
    let app = api
        .create_api_key(
            1,
            Auth::OPERATOR,
            &t.id,
            &["read", "write", "manage", "client_info"],
        )
        .await
        .expect("app key");
    api.create_user(
        2,
        bearer(&t.api_key),
        user_request("frank@example.com", Some(PASSWORD)),
    )
    .await
    .expect("create user");
    (t.id, app.api_key)
}

/// The email bucket lives in the replicated state: exhausted before the data
/// group's leader is SIGKILLed, it is still exhausted on the survivors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_survive_a_leader_kill() {
    let mut c = TestCluster::new(3, "");
    c.boot().await;
    let api = c.http_api();
    let email = RateLimit {
        action: "sign_in".to_owned(),
        scope: "email".to_owned(),
        burst: 3,
        per_minute: 1,
    };
    let (_, key) = tenant_with_user(&api, vec![email]).await;
    for i in 0..3 {
        let ip = format!("192.0.2.{}", i + 1);
        fails(
            api.sign_in_for(i + 1, bearer(&key), "frank@example.com", "guess", from(&ip))
                .await,
            401,
            "invalid_credentials",
        );
    }
    fails(
        api.sign_in_for(
            1,
            bearer(&key),
            "frank@example.com",
            "guess",
            from("192.0.2.9"),
        )
        .await,
        429,
        "rate_limited",
    );
    let leader = c.leader(1, "local").await;
    println!("killing node {leader}, the leader of local");
    c.kill(leader);
    let survivors: Vec<u64> = c.ids().into_iter().filter(|id| *id != leader).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    for via in survivors {
        loop {
            let r = api
                .sign_in_for(
                    via,
                    bearer(&key),
                    "frank@example.com",
                    PASSWORD,
                    from("192.0.2.50"),
                )
                .await;
            match r {
                Err(e) if e.code == "rate_limited" => break,
                Err(e) if e.is_status(503) && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                other => panic!("node {via} after failover: no fresh budget, got {other:?}"),
            }
        }
    }
}

/// Refresh proof walks with `[limits] refresh_proof_walk_max = 50`, counted in
/// the node's status (counts, not times): a garbage token further behind than
/// the bound is refused unwalked; one within it is walked once, on the
/// blocking pool, exactly as far as needed; neither writes to the log. A
/// genuine old token within the bound is still caught as reuse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_refresh_tokens_cost_a_bounded_walk_and_no_write() {
    let mut c = TestCluster::new(3, "[limits]\nrefresh_proof_walk_max = 50\n");
    c.boot().await;
    let api = c.http_api();
    let (_, key) = tenant_with_user(&api, Vec::new()).await;
    let k = bearer(&key);
    let s = api
        .sign_in(1, k, "frank@example.com", PASSWORD)
        .await
        .expect("sign in");
    let mut token = s.refresh_token.clone();
    let mut at_20 = String::new();
    for i in 0..60 {
        if i == 20 {
            at_20.clone_from(&token);
        }
        token = api
            .refresh(1, k, &token)
            .await
            .expect("rotate")
            .refresh_token;
    }
    let walks = |v: &Value| {
        let w = &v["refresh_proof_walks"];
        (
            w["walks"].as_u64().expect("walks"),
            w["hmacs"].as_u64().expect("hmacs"),
            w["refused"].as_u64().expect("refused"),
        )
    };
    let commit = |v: Value| v["commit_index"].as_u64().expect("commit index");
    let before = walks(&c.status(2).await);
    let committed = commit(c.group_status(2, "local").await);

    // Far behind (60 > 50): refused, unwalked.
    let sid = &s.session_id;
    fails(
        api.refresh(2, k, &forged_refresh(sid, 0, 7)).await,
        401,
        "invalid_refresh_token",
    );
    // Within the bound: one walk of 40 HMACs that reaches no stored hash.
    fails(
        api.refresh(2, k, &forged_refresh(sid, 20, 7)).await,
        401,
        "invalid_refresh_token",
    );
    // Garbage at the current and previous generations needs no walk at all.
    for g in [59, 60, 61, 1_000_000] {
        fails(
            api.refresh(2, k, &forged_refresh(sid, g, 7)).await,
            401,
            "invalid_refresh_token",
        );
    }
    let after = walks(&c.status(2).await);
    assert_eq!(
        (after.0 - before.0, after.1 - before.1, after.2 - before.2),
        (1, 40, 1),
        "walks, HMACs, refusals: {before:?} -> {after:?}"
    );
    assert_eq!(
        commit(c.group_status(2, "local").await),
        committed,
        "garbage is answered without a Raft write"
    );

    // The spray, and what it does to everyone else's latency (printed for
    // the note; timings are never asserted).
    let spray: Vec<_> = (0..200u64)
        .map(|i| {
            let api = api.clone();
            let key = key.clone();
            let sid = sid.clone();
            tokio::spawn(async move {
                let _ = api
                    .refresh(
                        i % 3 + 1,
                        bearer(&key),
                        &forged_refresh(&sid, 20 + i % 30, 9),
                    )
                    .await;
            })
        })
        .collect();
    let mut others = Vec::new();
    for i in 0..40u64 {
        let started = Instant::now();
        api.get_user(i % 3 + 1, k, &s.user_id)
            .await
            .expect("get user");
        others.push(started.elapsed());
    }
    for t in spray {
        t.await.expect("spray task");
    }
    others.sort();
    println!(
        "during a spray of 200 garbage refresh tokens: GET /v1/users/{{id}} p50 {:?}, p99 {:?}",
        others[others.len() / 2],
        others[others.len() * 99 / 100]
    );

    // A genuine token 40 behind is still reuse, and ends the family.
    fails(api.refresh(3, k, &at_20).await, 401, "refresh_token_reused");
    fails(api.refresh(1, k, &token).await, 401, "session_revoked");
}

/// A node's `key_lookups` counters: (API keys read from `meta`, unknown key
/// ids answered from the negative cache, signing key reads).
fn key_lookups(status: &Value) -> (u64, u64, u64) {
    let l = &status["key_lookups"];
    let n = |f: &str| l[f].as_u64().unwrap_or_else(|| panic!("{f} in {l}"));
    (
        n("api_key_reads"),
        n("unknown_api_key_hits"),
        n("signing_key_reads"),
    )
}

/// Unknown credentials cost no `meta` read each (counts, not times): a key id
/// `meta` does not hold, repeated, is read once and then answered from the
/// negative cache; so is a revoked key; and access tokens under made-up `kid`s
/// read the tenant's signing keys at most once, however many arrive. The
/// genuine key and a fresh key made after the misses still work at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_api_keys_and_kids_cost_no_meta_read_each() {
    let mut c = TestCluster::new(3, "");
    c.boot().await;
    let api = c.http_api();
    let (tenant_id, key) = tenant_with_user(&api, Vec::new()).await;
    let k = bearer(&key);
    let s = api
        .sign_in(2, k, "frank@example.com", PASSWORD)
        .await
        .expect("sign in");
    // A well-formed key whose id no key has: the genuine key's secret under
    // another id.
    let prefix_and_id = "ck_".len() + 16;
    let unknown = format!("ck_0123456789abcdef{}", &key[prefix_and_id..]);
    assert_ne!(unknown[..prefix_and_id], key[..prefix_and_id]);

    let before = key_lookups(&c.status(2).await);
    for _ in 0..30 {
        fails(
            api.get_user(2, bearer(&unknown), &s.user_id).await,
            401,
            "unauthorized",
        );
    }
    let after = key_lookups(&c.status(2).await);
    let (reads, hits) = (after.0 - before.0, after.1 - before.1);
    assert_eq!(reads + hits, 30, "{before:?} -> {after:?}");
    assert!(
        reads <= 2,
        "30 requests with one unknown key read meta {reads} times"
    );

    // A revoked key is unknown from the revocation on, on every node, and
    // then costs no read either.
    let doomed = api
        .create_api_key(1, Auth::OPERATOR, &tenant_id, &["read"])
        .await
        .expect("key");
    api.get_user(2, bearer(&doomed.api_key), &s.user_id)
        .await
        .expect("the new key works");
    api.revoke_api_key(1, Auth::OPERATOR, &tenant_id, &doomed.id)
        .await
        .expect("revoke");
    let before = key_lookups(&c.status(2).await);
    for _ in 0..10 {
        fails(
            api.get_user(2, bearer(&doomed.api_key), &s.user_id).await,
            401,
            "unauthorized",
        );
    }
    let after = key_lookups(&c.status(2).await);
    assert_eq!(
        (after.0 - before.0, after.1 - before.1),
        (1, 9),
        "one read, then the negative cache: {before:?} -> {after:?}"
    );

    // A known key id with a wrong secret, repeated: one read, then the cache
    // (of the stored hash) answers.
    let known = api
        .create_api_key(1, Auth::OPERATOR, &tenant_id, &["read"])
        .await
        .expect("key");
    // One character of the secret changed, away from its last (whose low bits
    // base64 does not carry).
    let at = known.api_key.len() - 5;
    let flipped = if &known.api_key[at..=at] == "A" {
        "B"
    } else {
        "A"
    };
    let wrong_secret = format!(
        "{}{flipped}{}",
        &known.api_key[..at],
        &known.api_key[at + 1..]
    );
    let before = key_lookups(&c.status(2).await);
    for _ in 0..10 {
        fails(
            api.get_user(2, bearer(&wrong_secret), &s.user_id).await,
            401,
            "unauthorized",
        );
    }
    let after = key_lookups(&c.status(2).await);
    assert!(
        after.0 - before.0 <= 1,
        "10 wrong secrets of one key read meta {} times",
        after.0 - before.0
    );
    api.get_user(2, bearer(&known.api_key), &s.user_id)
        .await
        .expect("the right secret still works");

    // Made-up kids at introspection: at most one read of the signing keys.
    let attacker = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let claims = serde_json::json!({ "sub": s.user_id, "sid": s.session_id, "tid": tenant_id,
                                     "iat": 0, "exp": u64::MAX });
    let before = key_lookups(&c.status(2).await);
    for i in 0..30 {
        let header =
            serde_json::json!({ "alg": "EdDSA", "typ": "JWT", "kid": format!("made-up-{i}") });
        let r = api
            .introspect(2, k, &sign_jwt(&attacker, &header, &claims), None)
            .await
            .expect("introspect");
        assert!(!r.active, "a made-up kid is inactive");
    }
    let after = key_lookups(&c.status(2).await);
    assert!(
        after.2 - before.2 <= 1,
        "30 unknown kids read the signing keys {} times",
        after.2 - before.2
    );
    // The genuine token still introspects as active, on every node.
    for via in c.ids() {
        let r = api
            .introspect(via, k, &s.access_token, None)
            .await
            .expect("introspect");
        assert!(r.active, "node {via}: the genuine token is active");
    }

    // A key created after all these misses is known at once, everywhere.
    let fresh = api
        .create_api_key(1, Auth::OPERATOR, &tenant_id, &["read"])
        .await
        .expect("key");
    for via in c.ids() {
        api.get_user(via, bearer(&fresh.api_key), &s.user_id)
            .await
            .unwrap_or_else(|e| panic!("node {via}: a new key works at once: {e:?}"));
    }
}

/// What the stand-in range service was asked: (path, `Add-Padding` value).
type Asked = std::sync::Arc<std::sync::Mutex<Vec<(String, Option<String>)>>>;

/// The SHA-1 of `password`, upper-case hex.
fn sha1_hex(password: &str) -> String {
    use sha1::Digest;
    sha1::Sha1::digest(password.as_bytes())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

/// A local stand-in for a k-anonymity range service: every range answers the
/// breached password's suffix with a count, a padding entry (count 0) for
/// `padded`, and filler.
async fn range_service(breached: &str, padded: &str) -> (String, Asked) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let asked: Asked = Asked::default();
    let (hit, pad) = (sha1_hex(breached), sha1_hex(padded));
    let log = std::sync::Arc::clone(&asked);
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            let path = head
                .split_whitespace()
                .nth(1)
                .unwrap_or_default()
                .to_owned();
            let padding = head
                .lines()
                .find_map(|l| {
                    l.strip_prefix("add-padding: ")
                        .or(l.strip_prefix("Add-Padding: "))
                })
                .map(str::to_owned);
            log.lock().expect("log").push((path, padding));
            let mut body = format!("{}:42\r\n{}:0\r\n", &hit[5..], &pad[5..]);
            for i in 0..20 {
                body.push_str(&format!("{:035X}:{}\r\n", i, i + 1));
            }
            let resp = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(resp.as_bytes()).await;
        }
    });
    (url, asked)
}

/// The breached-password check (per tenant, off by default) against a local
/// stand-in range service: a breached password is refused with 400
/// `password_breached` at creation and at a change; a padding entry (count 0)
/// is no hit; only the hash's first five hex digits leave the node, with
/// `Add-Padding: true`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breached_passwords_are_refused_when_the_tenant_asks() {
    let breached = "password123456";
    let padded = "padded but never breached";
    let (url, asked) = range_service(breached, padded).await;
    let mut c = TestCluster::new(1, &format!("[breached_passwords]\nrange_url = \"{url}\"\n"));
    c.boot().await;
    let api = c.http_api();
    let t = api
        .create_tenant(
            1,
            Auth::OPERATOR,
            CreateTenantRequest {
                name: "breach".to_owned(),
                ..CreateTenantRequest::default()
            },
        )
        .await
        .expect("create tenant");
    let k = bearer(&t.api_key);
    api.create_user(1, k, user_request("off@example.com", Some(breached)))
        .await
        .expect("the check is off by default");
    assert!(asked.lock().expect("log").is_empty(), "nothing asked");
    let on = api
        .update_tenant(
            1,
            Auth::OPERATOR,
            cairn_tests::api::UpdateTenantRequest {
                id: t.id.clone(),
                breached_password_check: Some(true),
                ..Default::default()
            },
        )
        .await
        .expect("turn it on");
    assert!(on.breached_password_check);
    fails(
        api.create_user(1, k, user_request("on@example.com", Some(breached)))
            .await,
        400,
        "password_breached",
    );
    let u = api
        .create_user(1, k, user_request("on@example.com", Some(padded)))
        .await
        .expect("a padding entry is no hit");
    fails(
        api.update_user(
            1,
            k,
            cairn_tests::api::UpdateUserRequest {
                id: u.id.clone(),
                email: None,
                password: Some(breached.to_owned()),
                keep_session_id: None,
            },
        )
        .await,
        400,
        "password_breached",
    );
    let asked = asked.lock().expect("log").clone();
    assert_eq!(asked.len(), 3, "{asked:?}");
    let full = [sha1_hex(breached), sha1_hex(padded)];
    for (path, padding) in &asked {
        let prefix = path.strip_prefix("/range/").expect("a range path");
        assert_eq!(prefix.len(), 5, "{path}");
        assert!(full.iter().any(|h| h.starts_with(prefix)), "{path}");
        assert!(
            full.iter().all(|h| !path.contains(&h[5..])),
            "no suffix sent"
        );
        assert_eq!(padding.as_deref(), Some("true"));
    }
}
