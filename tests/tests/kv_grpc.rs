//! The tenant KV over gRPC (`cairn.v1.Kv`): the same operations and error codes as
//! HTTP, through every node.

use cairn_tests::proto::{DeleteRequest, GetRequest, PutRequest};
use cairn_tests::{TestCluster, TOKEN};
use tonic::Code;

fn authed<T>(msg: T, token: &str, tenant: Option<&str>) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    let md = req.metadata_mut();
    md.insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ascii"),
    );
    if let Some(t) = tenant {
        md.insert("x-tenant", t.parse().expect("ascii"));
    }
    req
}

fn put(key: &str, value: &str, expected_revision: Option<u64>) -> PutRequest {
    PutRequest {
        key: key.to_owned(),
        value: value.to_owned(),
        expected_revision,
    }
}

fn code_of(status: &tonic::Status) -> String {
    status
        .metadata()
        .get("cairn-code")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_over_grpc_success_paths_and_error_codes() {
    let mut c = TestCluster::new(3, "");
    c.boot().await;
    let mut n1 = c.grpc(1).await;
    let mut n2 = c.grpc(2).await;
    let mut n3 = c.grpc(3).await;

    // An operator call for a tenant that does not exist is not found, and
    // creates nothing.
    let unknown = n1
        .put(authed(put("color", "blue", None), TOKEN, Some("acme")))
        .await
        .expect_err("unknown tenant");
    assert_eq!(unknown.code(), Code::NotFound);
    assert_eq!(code_of(&unknown), "tenant_not_found");
    c.create_tenant(1, "acme").await.expect("created");
    c.create_tenant(2, "other").await.expect("created");

    let written = n1
        .put(authed(put("color", "blue", None), TOKEN, Some("acme")))
        .await
        .expect("put")
        .into_inner();
    assert_eq!(
        (written.key.as_str(), written.value.as_str()),
        ("color", "blue")
    );
    let got = n2
        .get(authed(
            GetRequest {
                key: "color".into(),
            },
            TOKEN,
            Some("acme"),
        ))
        .await
        .expect("get")
        .into_inner();
    assert_eq!(got, written);

    // The HTTP API sees the same data.
    let via_http = c.get_value(3, "acme", "color").await.expect("present");
    assert_eq!(via_http["revision"].as_u64(), Some(written.revision));

    // Compare-and-set.
    let stale = n3
        .put(authed(
            put("color", "red", Some(written.revision + 100)),
            TOKEN,
            Some("acme"),
        ))
        .await
        .expect_err("stale revision");
    assert_eq!(stale.code(), Code::FailedPrecondition);
    assert_eq!(code_of(&stale), "revision_mismatch");
    let swapped = n3
        .put(authed(
            put("color", "red", Some(written.revision)),
            TOKEN,
            Some("acme"),
        ))
        .await
        .expect("cas")
        .into_inner();
    assert!(swapped.revision > written.revision);

    // Tenant isolation.
    let other = n1
        .get(authed(
            GetRequest {
                key: "color".into(),
            },
            TOKEN,
            Some("other"),
        ))
        .await
        .expect_err("other tenant has no such key");
    assert_eq!(other.code(), Code::NotFound);
    assert_eq!(code_of(&other), "key_not_found");

    // Delete, then not found.
    n2.delete(authed(
        DeleteRequest {
            key: "color".into(),
            expected_revision: None,
        },
        TOKEN,
        Some("acme"),
    ))
    .await
    .expect("delete");
    let gone = n1
        .get(authed(
            GetRequest {
                key: "color".into(),
            },
            TOKEN,
            Some("acme"),
        ))
        .await
        .expect_err("deleted");
    assert_eq!(gone.code(), Code::NotFound);

    // Errors: wrong token, missing tenant, oversized value, empty key.
    let e = n1
        .get(authed(
            GetRequest { key: "k".into() },
            "wrong-token-wrong-token-wrong-token",
            Some("acme"),
        ))
        .await
        .expect_err("bad token");
    assert_eq!(
        (e.code(), code_of(&e).as_str()),
        (Code::Unauthenticated, "unauthorized")
    );
    let e = n2
        .get(authed(GetRequest { key: "k".into() }, TOKEN, None))
        .await
        .expect_err("no tenant");
    assert_eq!(
        (e.code(), code_of(&e).as_str()),
        (Code::InvalidArgument, "missing_tenant")
    );
    let e = n3
        .put(authed(
            put("big", &"x".repeat(64 * 1024 + 1), None),
            TOKEN,
            Some("acme"),
        ))
        .await
        .expect_err("too large");
    assert_eq!(
        (e.code(), code_of(&e).as_str()),
        (Code::ResourceExhausted, "payload_too_large")
    );
    let e = n3
        .put(authed(put("", "v", None), TOKEN, Some("acme")))
        .await
        .expect_err("empty key");
    assert_eq!(
        (e.code(), code_of(&e).as_str()),
        (Code::InvalidArgument, "invalid_request")
    );
}
