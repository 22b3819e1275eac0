//! The auth API over gRPC (`cairn.v1.TenantAdmin`, `Users`, `Sessions`,
//! `Tokens`) against a real 3-node cluster: every rpc's success path and error
//! codes (the tonic code and the `cairn-code` metadata, as over HTTP), refresh
//! rotation with lost-answer retry and reuse detection, and tenant isolation.
//! Calls go through different nodes on purpose.

use cairn_tests::proto::sessions_client::SessionsClient;
use cairn_tests::proto::tenant_admin_client::TenantAdminClient;
use cairn_tests::proto::tokens_client::TokensClient;
use cairn_tests::proto::users_client::UsersClient;
use cairn_tests::proto::{
    CreateApiKeyRequest, CreateTenantRequest, CreateTenantResponse, CreateUserRequest,
    DeleteTenantRequest, DeleteUserRequest, GetJwksRequest, GetTenantRequest, GetUserRequest,
    IntrospectRequest, IntrospectResponse, Jwks, ListSessionsRequest, ListTenantsRequest,
    RefreshRequest, RefreshResponse, RevokeApiKeyRequest, RevokeSessionRequest,
    RotateSigningKeyRequest, SignInRequest, SignInResponse, UpdateTenantRequest, UpdateUserRequest,
    User,
};
use cairn_tests::{TestCluster, TOKEN};
use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status};

const PASSWORD: &str = "correct horse battery";
const USER_AGENT: &str = "auth-grpc-test/1.0";

/// `msg` with `authorization: Bearer <bearer>` (none if `None`).
fn req<T>(msg: T, bearer: Option<&str>) -> Request<T> {
    let mut r = Request::new(msg);
    if let Some(b) = bearer {
        r.metadata_mut().insert(
            "authorization",
            format!("Bearer {b}").parse().expect("ascii"),
        );
    }
    r
}

fn code_of(status: &Status) -> String {
    status
        .metadata()
        .get("cairn-code")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Asserts the call failed with `code` and `cairn-code: cairn`.
#[track_caller]
fn fails<T: std::fmt::Debug>(r: Result<Response<T>, Status>, code: Code, cairn: &str) {
    let e = r.expect_err(cairn);
    assert_eq!(
        (e.code(), code_of(&e).as_str()),
        (code, cairn),
        "{}",
        e.message()
    );
}

#[track_caller]
fn unauthorized<T: std::fmt::Debug>(r: Result<Response<T>, Status>) {
    fails(r, Code::Unauthenticated, "unauthorized");
}

#[track_caller]
fn insufficient_scope<T: std::fmt::Debug>(r: Result<Response<T>, Status>) {
    fails(r, Code::PermissionDenied, "insufficient_scope");
}

/// One channel per node; a client of any service on any node.
struct Grpc {
    channels: Vec<Channel>,
}

impl Grpc {
    fn ch(&self, node: u64) -> Channel {
        self.channels[usize::try_from(node - 1).expect("small")].clone()
    }
    fn admin(&self, node: u64) -> TenantAdminClient<Channel> {
        TenantAdminClient::new(self.ch(node))
    }
    fn users(&self, node: u64) -> UsersClient<Channel> {
        UsersClient::new(self.ch(node))
    }
    fn sessions(&self, node: u64) -> SessionsClient<Channel> {
        SessionsClient::new(self.ch(node))
    }
    fn tokens(&self, node: u64) -> TokensClient<Channel> {
        TokensClient::new(self.ch(node))
    }

    async fn create_api_key(&self, tenant_id: &str, scopes: &[&str]) -> String {
        let k = self
            .admin(1)
            .create_api_key(req(
                CreateApiKeyRequest {
                    tenant_id: tenant_id.to_owned(),
                    scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
                },
                Some(TOKEN),
            ))
            .await
            .expect("create api key")
            .into_inner();
        k.api_key
    }

    async fn sign_in(
        &self,
        node: u64,
        key: &str,
        email: &str,
        password: &str,
    ) -> Result<Response<SignInResponse>, Status> {
        let mut r = req(
            SignInRequest {
                email: email.to_owned(),
                password: password.to_owned(),
            },
            Some(key),
        );
        r.metadata_mut()
            .insert("user-agent", USER_AGENT.parse().expect("ascii"));
        self.sessions(node).sign_in(r).await
    }

    async fn refresh(
        &self,
        node: u64,
        key: &str,
        token: &str,
    ) -> Result<Response<RefreshResponse>, Status> {
        self.sessions(node)
            .refresh(req(
                RefreshRequest {
                    refresh_token: token.to_owned(),
                },
                Some(key),
            ))
            .await
    }

    async fn introspect(&self, node: u64, key: &str, token: &str) -> IntrospectResponse {
        self.tokens(node)
            .introspect(req(
                IntrospectRequest {
                    token: token.to_owned(),
                    token_type_hint: None,
                },
                Some(key),
            ))
            .await
            .expect("introspect")
            .into_inner()
    }

    async fn get_user(&self, node: u64, key: &str, id: &str) -> Result<Response<User>, Status> {
        self.users(node)
            .get_user(req(GetUserRequest { id: id.to_owned() }, Some(key)))
            .await
    }
}

/// Keys of tenant A: one with every scope, and single-scope ones.
struct Keys {
    all: String,
    read: String,
    write: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_api_over_grpc() {
    let mut c = TestCluster::new(3, "");
    c.boot().await;
    let mut channels = Vec::new();
    for id in 1..=3 {
        channels.push(c.grpc_channel(id).await);
    }
    let g = Grpc { channels };

    let (a, b, keys, jwks) = tenant_admin(&g).await;
    let kb = b.api_key.clone();
    let (alice, bob) = users(&g, &keys).await;
    let a_session = sessions(&g, &keys, &alice, &bob, &jwks, &a.id).await;
    cross_tenant(&g, &keys, &kb, &alice, &a_session).await;
    interop_with_http(&c, &g, &keys, &alice, &a.id).await;
    cleanup(&g, &keys, &b, &bob).await;
}

/// `TenantAdmin`: get and update a tenant's session lifetimes; settings at
/// creation.
async fn tenant_settings(g: &Grpc, tenant_id: &str) {
    let get = |id: &str| GetTenantRequest { id: id.to_owned() };
    let update = |id: &str, idle: Option<u64>, absolute: Option<u64>| UpdateTenantRequest {
        id: id.to_owned(),
        session_idle_timeout_secs: idle,
        session_absolute_timeout_secs: absolute,
    };
    let t = g
        .admin(2)
        .get_tenant(req(get(tenant_id), Some(TOKEN)))
        .await
        .expect("get tenant")
        .into_inner();
    assert_eq!((t.id.as_str(), t.name.as_str()), (tenant_id, "acme"));
    assert_eq!(t.session_idle_timeout_secs, 30 * 86_400);
    fails(
        g.admin(1)
            .get_tenant(req(get("nosuchtenant"), Some(TOKEN)))
            .await,
        Code::NotFound,
        "tenant_not_found",
    );
    unauthorized(g.admin(1).get_tenant(req(get(tenant_id), None)).await);

    let changed = g
        .admin(3)
        .update_tenant(req(update(tenant_id, Some(3_600), None), Some(TOKEN)))
        .await
        .expect("update tenant")
        .into_inner();
    assert_eq!(
        (
            changed.session_idle_timeout_secs,
            changed.session_absolute_timeout_secs
        ),
        (3_600, 90 * 86_400)
    );
    let t = g
        .admin(1)
        .get_tenant(req(get(tenant_id), Some(TOKEN)))
        .await
        .expect("get tenant")
        .into_inner();
    assert_eq!(t, changed, "read back through another node");
    for (idle, absolute) in [
        (Some(0), None),
        (Some(7_200), Some(3_600)),
        (None, Some(u64::MAX)),
    ] {
        fails(
            g.admin(2)
                .update_tenant(req(update(tenant_id, idle, absolute), Some(TOKEN)))
                .await,
            Code::InvalidArgument,
            "invalid_request",
        );
    }
    fails(
        g.admin(2)
            .update_tenant(req(update("nosuchtenant", Some(60), None), Some(TOKEN)))
            .await,
        Code::NotFound,
        "tenant_not_found",
    );
    unauthorized(
        g.admin(2)
            .update_tenant(req(update(tenant_id, Some(60), None), None))
            .await,
    );
    // Back to the defaults, so the session checks below see a 15-minute token.
    g.admin(2)
        .update_tenant(req(
            update(tenant_id, Some(30 * 86_400), Some(90 * 86_400)),
            Some(TOKEN),
        ))
        .await
        .expect("update tenant");

    let created = g
        .admin(1)
        .create_tenant(req(
            CreateTenantRequest {
                name: "short-lived".to_owned(),
                region: None,
                session_idle_timeout_secs: Some(60),
                session_absolute_timeout_secs: Some(600),
            },
            Some(TOKEN),
        ))
        .await
        .expect("create tenant with lifetimes")
        .into_inner();
    assert_eq!(
        (
            created.session_idle_timeout_secs,
            created.session_absolute_timeout_secs
        ),
        (60, 600)
    );
    fails(
        g.admin(1)
            .create_tenant(req(
                CreateTenantRequest {
                    name: "never-made".to_owned(),
                    region: None,
                    session_idle_timeout_secs: Some(601),
                    session_absolute_timeout_secs: Some(600),
                },
                Some(TOKEN),
            ))
            .await,
        Code::InvalidArgument,
        "invalid_request",
    );
}

/// `TenantAdmin`: create (A and B), list, JWKS, signing key rotation, API keys.
async fn tenant_admin(g: &Grpc) -> (CreateTenantResponse, CreateTenantResponse, Keys, Jwks) {
    let create = |name: &str, region: Option<&str>| CreateTenantRequest {
        name: name.to_owned(),
        region: region.map(str::to_owned),
        ..CreateTenantRequest::default()
    };
    unauthorized(
        g.admin(1)
            .create_tenant(req(create("acme", None), None))
            .await,
    );
    unauthorized(
        g.admin(1)
            .create_tenant(req(create("acme", None), Some("not-the-admin-token")))
            .await,
    );
    let a = g
        .admin(1)
        .create_tenant(req(create("acme", None), Some(TOKEN)))
        .await
        .expect("create tenant")
        .into_inner();
    assert_eq!((a.name.as_str(), a.region.as_str()), ("acme", "local"));
    assert!(!a.id.is_empty() && a.created_at > 0);
    assert!(a.api_key.starts_with("ck_") && !a.api_key_id.is_empty());
    assert_eq!(
        (a.session_idle_timeout_secs, a.session_absolute_timeout_secs),
        (30 * 86_400, 90 * 86_400),
        "the default session lifetimes"
    );
    fails(
        g.admin(2)
            .create_tenant(req(create("acme", None), Some(TOKEN)))
            .await,
        Code::AlreadyExists,
        "tenant_exists",
    );
    fails(
        g.admin(3)
            .create_tenant(req(create("bad name", None), Some(TOKEN)))
            .await,
        Code::InvalidArgument,
        "invalid_request",
    );
    fails(
        g.admin(3)
            .create_tenant(req(create("elsewhere", Some("mars")), Some(TOKEN)))
            .await,
        Code::InvalidArgument,
        "invalid_request",
    );
    let b = g
        .admin(2)
        .create_tenant(req(create("beta", Some("local")), Some(TOKEN)))
        .await
        .expect("create tenant b")
        .into_inner();
    assert_ne!(a.id, b.id);

    // List: both, with their ids; the operator only.
    let listed = g
        .admin(3)
        .list_tenants(req(ListTenantsRequest {}, Some(TOKEN)))
        .await
        .expect("list tenants")
        .into_inner()
        .tenants;
    let mut names: Vec<_> = listed
        .iter()
        .map(|t| (t.name.as_str(), t.id.as_str(), t.region.as_str()))
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            ("acme", a.id.as_str(), "local"),
            ("beta", b.id.as_str(), "local")
        ]
    );
    assert!(listed.iter().all(|t| t.created_at > 0));
    tenant_settings(g, &a.id).await;
    unauthorized(
        g.admin(3)
            .list_tenants(req(ListTenantsRequest {}, None))
            .await,
    );
    // A tenant API key is not the operator token.
    unauthorized(
        g.admin(3)
            .list_tenants(req(ListTenantsRequest {}, Some(&a.api_key)))
            .await,
    );

    // The public JWKS: no authentication.
    let jwks_of = |id: &str| GetJwksRequest {
        tenant_id: id.to_owned(),
    };
    let first = g
        .admin(1)
        .get_jwks(req(jwks_of(&a.id), None))
        .await
        .expect("jwks")
        .into_inner();
    assert_eq!(first.keys.len(), 1);
    let k = &first.keys[0];
    assert_eq!(
        (
            k.kty.as_str(),
            k.crv.as_str(),
            k.alg.as_str(),
            k.r#use.as_str()
        ),
        ("OKP", "Ed25519", "EdDSA", "sig")
    );
    assert!(!k.kid.is_empty() && k.x.len() == 43, "{k:?}");
    fails(
        g.admin(2)
            .get_jwks(req(jwks_of("nosuchtenant"), None))
            .await,
        Code::NotFound,
        "tenant_not_found",
    );

    // Rotation: the new key first, the retired one still published.
    let rotate = |id: &str| RotateSigningKeyRequest {
        tenant_id: id.to_owned(),
    };
    let rotated = g
        .admin(2)
        .rotate_signing_key(req(rotate(&a.id), Some(TOKEN)))
        .await
        .expect("rotate")
        .into_inner();
    assert_eq!(rotated.keys.len(), 2);
    assert_ne!(rotated.keys[0].kid, k.kid);
    assert_eq!(rotated.keys[1], *k);
    let seen = g
        .admin(3)
        .get_jwks(req(jwks_of(&a.id), None))
        .await
        .expect("jwks")
        .into_inner();
    assert_eq!(seen, rotated);
    fails(
        g.admin(1)
            .rotate_signing_key(req(rotate("nosuchtenant"), Some(TOKEN)))
            .await,
        Code::NotFound,
        "tenant_not_found",
    );
    unauthorized(
        g.admin(1)
            .rotate_signing_key(req(rotate(&a.id), Some(&a.api_key)))
            .await,
    );

    // API keys: scopes validated, sorted and deduplicated.
    let key_req = |tenant: &str, scopes: &[&str]| CreateApiKeyRequest {
        tenant_id: tenant.to_owned(),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
    };
    let issued = g
        .admin(2)
        .create_api_key(req(
            key_req(&a.id, &["write", "read", "write"]),
            Some(TOKEN),
        ))
        .await
        .expect("create api key")
        .into_inner();
    assert_eq!(issued.scopes, ["read", "write"]);
    assert!(issued.api_key.starts_with("ck_") && !issued.id.is_empty() && issued.created_at > 0);
    for bad in [&[][..], &["admin"][..]] {
        fails(
            g.admin(3)
                .create_api_key(req(key_req(&a.id, bad), Some(TOKEN)))
                .await,
            Code::InvalidArgument,
            "invalid_request",
        );
    }
    fails(
        g.admin(3)
            .create_api_key(req(key_req("nosuchtenant", &["read"]), Some(TOKEN)))
            .await,
        Code::NotFound,
        "tenant_not_found",
    );
    unauthorized(
        g.admin(3)
            .create_api_key(req(key_req(&a.id, &["read"]), None))
            .await,
    );

    // Revocation takes effect at once on every node; a key is revoked only
    // through its own tenant.
    let revoke = |tenant: &str, key_id: &str| RevokeApiKeyRequest {
        tenant_id: tenant.to_owned(),
        key_id: key_id.to_owned(),
    };
    unauthorized(
        g.admin(1)
            .revoke_api_key(req(revoke(&a.id, &issued.id), None))
            .await,
    );
    fails(
        g.admin(1)
            .revoke_api_key(req(revoke(&b.id, &issued.id), Some(TOKEN)))
            .await,
        Code::NotFound,
        "api_key_not_found",
    );
    fails(
        g.get_user(2, &issued.api_key, "usr_1_00000000000000000000000000000000")
            .await,
        Code::NotFound,
        "user_not_found",
    );
    g.admin(1)
        .revoke_api_key(req(revoke(&a.id, &issued.id), Some(TOKEN)))
        .await
        .expect("revoke api key");
    for node in 1..=3 {
        unauthorized(
            g.get_user(
                node,
                &issued.api_key,
                "usr_1_00000000000000000000000000000000",
            )
            .await,
        );
    }
    fails(
        g.admin(2)
            .revoke_api_key(req(revoke(&a.id, &issued.id), Some(TOKEN)))
            .await,
        Code::NotFound,
        "api_key_not_found",
    );

    let keys = Keys {
        all: a.api_key.clone(),
        read: g.create_api_key(&a.id, &["read"]).await,
        write: g.create_api_key(&a.id, &["write"]).await,
    };
    (a, b, keys, rotated)
}

/// `Users`: create, get, update, list sessions (delete is in `cleanup`).
async fn users(g: &Grpc, keys: &Keys) -> (User, User) {
    let create = |email: &str, password: Option<&str>, region: Option<&str>| CreateUserRequest {
        email: email.to_owned(),
        password: password.map(str::to_owned),
        region: region.map(str::to_owned),
    };
    let alice = g
        .users(1)
        .create_user(req(
            create("alice@Example.COM", Some(PASSWORD), None),
            Some(&keys.write),
        ))
        .await
        .expect("create user")
        .into_inner();
    assert!(alice.id.starts_with("usr_"), "{}", alice.id);
    assert_eq!(
        (alice.email.as_str(), alice.region.as_str()),
        ("alice@example.com", "local")
    );
    assert!(alice.has_password && alice.created_at > 0);
    assert_eq!(alice.created_at, alice.updated_at);
    fails(
        g.users(2)
            .create_user(req(
                create(" alice@EXAMPLE.com", Some(PASSWORD), None),
                Some(&keys.all),
            ))
            .await,
        Code::AlreadyExists,
        "email_taken",
    );
    for bad in [
        create("not-an-email", None, None),
        create("carol@example.com", Some("short"), None),
        create("carol@example.com", None, Some("mars")),
    ] {
        fails(
            g.users(3).create_user(req(bad, Some(&keys.all))).await,
            Code::InvalidArgument,
            "invalid_request",
        );
    }
    insufficient_scope(
        g.users(3)
            .create_user(req(
                create("carol@example.com", None, None),
                Some(&keys.read),
            ))
            .await,
    );
    unauthorized(
        g.users(3)
            .create_user(req(create("carol@example.com", None, None), None))
            .await,
    );
    // The operator token is not a tenant API key.
    unauthorized(
        g.users(3)
            .create_user(req(create("carol@example.com", None, None), Some(TOKEN)))
            .await,
    );
    let bob = g
        .users(2)
        .create_user(req(
            create("bob@example.com", None, Some("local")),
            Some(&keys.all),
        ))
        .await
        .expect("create passwordless user")
        .into_inner();
    assert!(!bob.has_password);

    // Get: any node, the read scope.
    let got = g
        .get_user(3, &keys.read, &alice.id)
        .await
        .expect("get user")
        .into_inner();
    assert_eq!(got, alice);
    insufficient_scope(g.get_user(3, &keys.write, &alice.id).await);
    unauthorized(
        g.users(3)
            .get_user(req(
                GetUserRequest {
                    id: alice.id.clone(),
                },
                None,
            ))
            .await,
    );
    for unknown in ["usr_1_00000000000000000000000000000000", "nonsense", ""] {
        fails(
            g.get_user(1, &keys.all, unknown).await,
            Code::NotFound,
            "user_not_found",
        );
    }

    // Update: email and/or password.
    let update = |id: &str, email: Option<&str>, password: Option<&str>| UpdateUserRequest {
        id: id.to_owned(),
        email: email.map(str::to_owned),
        password: password.map(str::to_owned),
    };
    // Not yet signed in: a passwordless user cannot sign in.
    fails(
        g.sign_in(1, &keys.all, "bob@example.com", PASSWORD).await,
        Code::Unauthenticated,
        "invalid_credentials",
    );
    let bob = g
        .users(1)
        .update_user(req(
            update(&bob.id, Some("robert@Example.com"), Some(PASSWORD)),
            Some(&keys.write),
        ))
        .await
        .expect("update user")
        .into_inner();
    assert_eq!(bob.email, "robert@example.com");
    assert!(bob.has_password && bob.updated_at >= bob.created_at);
    assert_eq!(
        g.get_user(2, &keys.read, &bob.id)
            .await
            .expect("get")
            .into_inner(),
        bob
    );
    fails(
        g.users(2)
            .update_user(req(
                update(&bob.id, Some("alice@example.com"), None),
                Some(&keys.all),
            ))
            .await,
        Code::AlreadyExists,
        "email_taken",
    );
    for bad in [
        update(&bob.id, None, None),
        update(&bob.id, Some("nope"), None),
        update(&bob.id, None, Some("short")),
    ] {
        fails(
            g.users(3).update_user(req(bad, Some(&keys.all))).await,
            Code::InvalidArgument,
            "invalid_request",
        );
    }
    fails(
        g.users(3)
            .update_user(req(
                update(
                    "usr_1_00000000000000000000000000000000",
                    Some("x@example.com"),
                    None,
                ),
                Some(&keys.all),
            ))
            .await,
        Code::NotFound,
        "user_not_found",
    );
    insufficient_scope(
        g.users(3)
            .update_user(req(
                update(&bob.id, Some("x@example.com"), None),
                Some(&keys.read),
            ))
            .await,
    );

    // The released email is free again; the new password signs in.
    let carol = g
        .users(3)
        .create_user(req(create("bob@example.com", None, None), Some(&keys.all)))
        .await
        .expect("released email is free")
        .into_inner();
    assert_ne!(carol.id, bob.id);
    g.sign_in(2, &keys.all, "robert@example.com", PASSWORD)
        .await
        .expect("sign in with the new password");

    // List sessions: errors (the listing itself is checked with the sessions).
    let list = |id: &str| ListSessionsRequest {
        user_id: id.to_owned(),
    };
    insufficient_scope(
        g.users(1)
            .list_sessions(req(list(&alice.id), Some(&keys.write)))
            .await,
    );
    fails(
        g.users(1)
            .list_sessions(req(
                list("usr_1_00000000000000000000000000000000"),
                Some(&keys.read),
            ))
            .await,
        Code::NotFound,
        "user_not_found",
    );
    unauthorized(g.users(1).list_sessions(req(list(&alice.id), None)).await);
    (alice, bob)
}

/// `Sessions` and `Tokens`: sign-in, listing, introspection, refresh rotation
/// (retry, reuse), revocation. Returns a live session of alice's: (id, access
/// token, refresh token).
async fn sessions(
    g: &Grpc,
    keys: &Keys,
    alice: &User,
    bob: &User,
    jwks: &Jwks,
    tenant_id: &str,
) -> (String, String, String) {
    // Sign-in failures are all alike.
    for (email, password) in [
        ("alice@example.com", "wrong password!"),
        ("nobody@example.com", PASSWORD),
        ("not an email", PASSWORD),
    ] {
        fails(
            g.sign_in(1, &keys.all, email, password).await,
            Code::Unauthenticated,
            "invalid_credentials",
        );
    }
    insufficient_scope(
        g.sign_in(1, &keys.read, "alice@example.com", PASSWORD)
            .await,
    );
    unauthorized(
        g.sessions(1)
            .sign_in(req(
                SignInRequest {
                    email: "alice@example.com".into(),
                    password: PASSWORD.into(),
                },
                None,
            ))
            .await,
    );

    let s = g
        .sign_in(2, &keys.write, "  alice@EXAMPLE.com", PASSWORD)
        .await
        .expect("sign in")
        .into_inner();
    assert!(s.session_id.starts_with("ses_"), "{}", s.session_id);
    assert_eq!(s.user_id, alice.id);
    assert_eq!(s.token_type, "Bearer");
    assert!(s.expires_in > 0 && s.expires_in <= 900);
    assert!(s.refresh_token.starts_with("rt1."));
    assert_eq!(s.access_token.matches('.').count(), 2);

    // Listed with where it came from, never with a token.
    let listed = g
        .users(3)
        .list_sessions(req(
            ListSessionsRequest {
                user_id: alice.id.clone(),
            },
            Some(&keys.read),
        ))
        .await
        .expect("list sessions")
        .into_inner()
        .sessions;
    assert_eq!(listed.len(), 1);
    let l = &listed[0];
    assert_eq!(
        (l.id.as_str(), l.user_id.as_str()),
        (s.session_id.as_str(), alice.id.as_str())
    );
    assert_eq!(l.ip.as_deref(), Some("127.0.0.1"));
    let ua = l.user_agent.as_deref().unwrap_or_default();
    assert!(ua.starts_with(USER_AGENT), "{ua}");
    assert!(l.created_at > 0 && l.last_refreshed_at == l.created_at && l.expires_at > l.created_at);

    // Introspection: the access token and the refresh token are active.
    let at = g.introspect(3, &keys.read, &s.access_token).await;
    assert!(at.active);
    assert_eq!(at.token_type.as_deref(), Some("access_token"));
    assert_eq!(at.iss, Some(format!("urn:cairn:tenant:{tenant_id}")));
    assert_eq!(at.sub.as_deref(), Some(alice.id.as_str()));
    assert_eq!(at.sid.as_deref(), Some(s.session_id.as_str()));
    assert_eq!(at.tid.as_deref(), Some(tenant_id));
    let iat = at.iat.expect("iat");
    assert_eq!(at.exp, Some(iat + 900));
    assert_eq!(at.amr, ["pwd"]);
    assert_eq!(at.aal.as_deref(), Some("aal1"));
    let rt = g.introspect(1, &keys.all, &s.refresh_token).await;
    assert!(rt.active);
    assert_eq!(rt.token_type.as_deref(), Some("refresh_token"));
    assert_eq!(rt.sid.as_deref(), Some(s.session_id.as_str()));
    let junk = g.introspect(2, &keys.read, "not-a-token").await;
    assert_eq!(
        junk,
        IntrospectResponse {
            active: false,
            ..IntrospectResponse::default()
        }
    );
    let introspect = |key: Option<&str>| {
        req(
            IntrospectRequest {
                token: s.access_token.clone(),
                token_type_hint: Some("access_token".into()),
            },
            key,
        )
    };
    insufficient_scope(g.tokens(1).introspect(introspect(Some(&keys.write))).await);
    unauthorized(g.tokens(1).introspect(introspect(None)).await);
    assert!(
        g.tokens(1)
            .introspect(introspect(Some(&keys.read)))
            .await
            .expect("with a hint")
            .into_inner()
            .active
    );

    // After a signing key rotation, tokens signed with the retired key still verify.
    let rotated = g
        .admin(1)
        .rotate_signing_key(req(
            RotateSigningKeyRequest {
                tenant_id: tenant_id.to_owned(),
            },
            Some(TOKEN),
        ))
        .await
        .expect("rotate")
        .into_inner();
    assert_eq!(rotated.keys.len(), 3);
    assert_eq!(rotated.keys[1..], jwks.keys[..]);
    assert!(g.introspect(2, &keys.read, &s.access_token).await.active);

    // Refresh: rotation, a lost answer's retry (the same pair), then reuse of a
    // spent token, which revokes the whole family.
    fails(
        g.refresh(1, &keys.all, "rt1.garbage").await,
        Code::Unauthenticated,
        "invalid_refresh_token",
    );
    insufficient_scope(g.refresh(1, &keys.read, &s.refresh_token).await);
    let r1 = g
        .refresh(3, &keys.write, &s.refresh_token)
        .await
        .expect("refresh")
        .into_inner();
    assert_eq!(r1.session_id, s.session_id);
    assert_eq!(r1.token_type, "Bearer");
    assert!(r1.expires_in > 0 && r1.expires_in <= 900);
    assert_ne!(r1.refresh_token, s.refresh_token);
    assert!(g.introspect(1, &keys.read, &r1.access_token).await.active);
    // The spent token is no longer an active refresh token.
    assert!(!g.introspect(1, &keys.read, &s.refresh_token).await.active);
    let retried = g
        .refresh(1, &keys.write, &s.refresh_token)
        .await
        .expect("lost-answer retry")
        .into_inner();
    // The same refresh token, and an access token over the same claims (its
    // signature too, unless the answering node had not yet applied the signing
    // key rotation above: a node signs with the newest key it has applied).
    assert_eq!(
        (&retried.refresh_token, &retried.session_id),
        (&r1.refresh_token, &r1.session_id)
    );
    let claims = g.introspect(2, &keys.read, &retried.access_token).await;
    assert!(claims.active);
    assert_eq!(claims, g.introspect(2, &keys.read, &r1.access_token).await);
    let r2 = g
        .refresh(2, &keys.write, &r1.refresh_token)
        .await
        .expect("refresh the successor")
        .into_inner();
    assert_ne!(r2.refresh_token, r1.refresh_token);
    let mut reuse = req(
        RefreshRequest {
            refresh_token: s.refresh_token.clone(),
        },
        Some(&keys.write),
    );
    reuse
        .metadata_mut()
        .insert("x-request-id", "grpc-reuse-1".parse().expect("ascii"));
    fails(
        g.sessions(3).refresh(reuse).await,
        Code::Unauthenticated,
        "refresh_token_reused",
    );
    fails(
        g.refresh(1, &keys.write, &r2.refresh_token).await,
        Code::Unauthenticated,
        "session_revoked",
    );
    for token in [
        &s.access_token,
        &r1.access_token,
        &r2.access_token,
        &r2.refresh_token,
    ] {
        assert!(!g.introspect(2, &keys.read, token).await.active);
    }

    // Revocation (the manage scope).
    let s2 = g
        .sign_in(3, &keys.all, "alice@example.com", PASSWORD)
        .await
        .expect("sign in again")
        .into_inner();
    let s3 = g
        .sign_in(1, &keys.all, "alice@example.com", PASSWORD)
        .await
        .expect("sign in a third time")
        .into_inner();
    let revoke = |id: &str, key: Option<&str>| {
        req(
            RevokeSessionRequest {
                session_id: id.to_owned(),
            },
            key,
        )
    };
    insufficient_scope(
        g.sessions(1)
            .revoke(revoke(&s2.session_id, Some(&keys.write)))
            .await,
    );
    unauthorized(g.sessions(1).revoke(revoke(&s2.session_id, None)).await);
    g.sessions(2)
        .revoke(revoke(&s2.session_id, Some(&keys.all)))
        .await
        .expect("revoke");
    fails(
        g.refresh(3, &keys.all, &s2.refresh_token).await,
        Code::Unauthenticated,
        "session_revoked",
    );
    assert!(!g.introspect(1, &keys.read, &s2.access_token).await.active);
    for unknown in ["ses_1_00000000000000000000000000000000", "nonsense"] {
        fails(
            g.sessions(3).revoke(revoke(unknown, Some(&keys.all))).await,
            Code::NotFound,
            "session_not_found",
        );
    }
    // Only the live session is listed.
    let listed = g
        .users(2)
        .list_sessions(req(
            ListSessionsRequest {
                user_id: alice.id.clone(),
            },
            Some(&keys.all),
        ))
        .await
        .expect("list sessions")
        .into_inner()
        .sessions;
    assert_eq!(
        listed.iter().map(|l| l.id.as_str()).collect::<Vec<_>>(),
        [s3.session_id.as_str()]
    );

    // Bob (signed in earlier) has a session of his own, which his deletion ends.
    let bob_sessions = g
        .users(1)
        .list_sessions(req(
            ListSessionsRequest {
                user_id: bob.id.clone(),
            },
            Some(&keys.read),
        ))
        .await
        .expect("list bob's sessions")
        .into_inner()
        .sessions;
    assert_eq!(bob_sessions.len(), 1);
    (s3.session_id, s3.access_token, s3.refresh_token)
}

/// Tenant B's key sees nothing of tenant A's.
async fn cross_tenant(
    g: &Grpc,
    keys: &Keys,
    kb: &str,
    alice: &User,
    (session_id, access_token, refresh_token): &(String, String, String),
) {
    fails(
        g.get_user(1, kb, &alice.id).await,
        Code::NotFound,
        "user_not_found",
    );
    fails(
        g.users(2)
            .list_sessions(req(
                ListSessionsRequest {
                    user_id: alice.id.clone(),
                },
                Some(kb),
            ))
            .await,
        Code::NotFound,
        "user_not_found",
    );
    fails(
        g.users(3)
            .update_user(req(
                UpdateUserRequest {
                    id: alice.id.clone(),
                    email: Some("mallory@example.com".into()),
                    password: None,
                },
                Some(kb),
            ))
            .await,
        Code::NotFound,
        "user_not_found",
    );
    fails(
        g.users(1)
            .delete_user(req(
                DeleteUserRequest {
                    id: alice.id.clone(),
                },
                Some(kb),
            ))
            .await,
        Code::NotFound,
        "user_not_found",
    );
    fails(
        g.sessions(2)
            .revoke(req(
                RevokeSessionRequest {
                    session_id: session_id.clone(),
                },
                Some(kb),
            ))
            .await,
        Code::NotFound,
        "session_not_found",
    );
    fails(
        g.refresh(3, kb, refresh_token).await,
        Code::Unauthenticated,
        "invalid_refresh_token",
    );
    fails(
        g.sign_in(1, kb, "alice@example.com", PASSWORD).await,
        Code::Unauthenticated,
        "invalid_credentials",
    );
    for token in [access_token, refresh_token] {
        assert!(!g.introspect(2, kb, token).await.active);
    }
    // An email is unique per tenant, not across tenants.
    let twin = g
        .users(2)
        .create_user(req(
            CreateUserRequest {
                email: "alice@example.com".into(),
                password: Some(PASSWORD.into()),
                region: None,
            },
            Some(kb),
        ))
        .await
        .expect("the same email in tenant B")
        .into_inner();
    assert_ne!(twin.id, alice.id);

    // A's user and session are untouched: the session still refreshes, for A.
    assert_eq!(
        g.get_user(3, &keys.read, &alice.id)
            .await
            .expect("alice")
            .into_inner(),
        *alice
    );
    assert!(g.introspect(1, &keys.read, access_token).await.active);
    let r = g
        .refresh(1, &keys.write, refresh_token)
        .await
        .expect("A's refresh token still works for A")
        .into_inner();
    assert_eq!(&r.session_id, session_id);
}

/// What gRPC wrote, HTTP reads (and the other way round), with the same codes.
async fn interop_with_http(c: &TestCluster, g: &Grpc, keys: &Keys, alice: &User, tenant_id: &str) {
    let resp = c
        .client()
        .get(c.url(2, &format!("/v1/users/{}", alice.id)))
        .bearer_auth(&keys.read)
        .send()
        .await
        .expect("http get user");
    assert_eq!(resp.status().as_u16(), 200);
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(body["email"], alice.email.as_str());
    assert_eq!(body["created_at"].as_u64(), Some(alice.created_at));

    let resp = c
        .client()
        .get(c.url(3, &format!("/v1/tenants/{tenant_id}/jwks.json")))
        .send()
        .await
        .expect("http jwks");
    let body: serde_json::Value = resp.json().await.expect("json");
    let via_grpc = g
        .admin(1)
        .get_jwks(req(
            GetJwksRequest {
                tenant_id: tenant_id.to_owned(),
            },
            None,
        ))
        .await
        .expect("jwks")
        .into_inner();
    let http_kids: Vec<_> = body["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().unwrap_or_default().to_owned())
        .collect();
    let grpc_kids: Vec<_> = via_grpc.keys.iter().map(|k| k.kid.clone()).collect();
    assert_eq!(http_kids, grpc_kids);
}

/// `DeleteUser` and `DeleteTenant`.
async fn cleanup(g: &Grpc, keys: &Keys, b: &CreateTenantResponse, bob: &User) {
    let delete = |id: &str, key: Option<&str>| req(DeleteUserRequest { id: id.to_owned() }, key);
    let bob_session = g
        .sign_in(1, &keys.all, "robert@example.com", PASSWORD)
        .await
        .expect("bob signs in")
        .into_inner();
    insufficient_scope(
        g.users(1)
            .delete_user(delete(&bob.id, Some(&keys.write)))
            .await,
    );
    unauthorized(g.users(1).delete_user(delete(&bob.id, None)).await);
    g.users(2)
        .delete_user(delete(&bob.id, Some(&keys.all)))
        .await
        .expect("delete user");
    fails(
        g.get_user(3, &keys.all, &bob.id).await,
        Code::NotFound,
        "user_not_found",
    );
    fails(
        g.users(3)
            .delete_user(delete(&bob.id, Some(&keys.all)))
            .await,
        Code::NotFound,
        "user_not_found",
    );
    // His sessions went with him.
    fails(
        g.refresh(1, &keys.all, &bob_session.refresh_token).await,
        Code::Unauthenticated,
        "invalid_refresh_token",
    );
    fails(
        g.sign_in(2, &keys.all, "robert@example.com", PASSWORD)
            .await,
        Code::Unauthenticated,
        "invalid_credentials",
    );

    // Deleting tenant B: its key, its JWKS and it are gone.
    let delete_tenant = |key: Option<&str>| req(DeleteTenantRequest { id: b.id.clone() }, key);
    unauthorized(g.admin(1).delete_tenant(delete_tenant(None)).await);
    unauthorized(
        g.admin(1)
            .delete_tenant(delete_tenant(Some(&b.api_key)))
            .await,
    );
    g.admin(2)
        .delete_tenant(delete_tenant(Some(TOKEN)))
        .await
        .expect("delete tenant");
    unauthorized(
        g.get_user(3, &b.api_key, "usr_1_00000000000000000000000000000000")
            .await,
    );
    fails(
        g.admin(3)
            .get_jwks(req(
                GetJwksRequest {
                    tenant_id: b.id.clone(),
                },
                None,
            ))
            .await,
        Code::NotFound,
        "tenant_not_found",
    );
    fails(
        g.admin(1).delete_tenant(delete_tenant(Some(TOKEN))).await,
        Code::NotFound,
        "tenant_not_found",
    );
    let left = g
        .admin(3)
        .list_tenants(req(ListTenantsRequest {}, Some(TOKEN)))
        .await
        .expect("list")
        .into_inner()
        .tenants;
    let mut left: Vec<_> = left.iter().map(|t| t.name.as_str()).collect();
    left.sort_unstable();
    assert_eq!(left, ["acme", "short-lived"]);
}
