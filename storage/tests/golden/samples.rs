//! One fixed value of every stored record type, for the golden encoding tests of
//! `storage` and `raft` (which includes this file by path). No clock, no
//! randomness: the same bytes on every run.
//!
//! Where the types live is named only in the `use` below: when a type moves,
//! change its path here; its bytes must not change.

use cairn_storage::{
    Actor, ApiKeyRecord, AuditEvent, EmailEntry, EventRecord, KvRecord, MasterKeyRecord,
    MasterKeyState, NodeIdentity, Revocation, SessionPolicy, SessionRecord, SigningKeyRecord,
    SigningKeys, TenantRecord, UserRecord, WrappedKey,
};

pub const TENANT_ID: &str = "ten_0a1b";
pub const TENANT_NAME: &str = "acme";
pub const REGION: &str = "eu-west";
pub const USER_ID: &str = "usr_1c2d";
pub const SESSION_ID: &str = "ses_3e4f";
pub const API_KEY_ID: &str = "key_5a6b";
pub const KID: &str = "kid-7c8d";
pub const FINGERPRINT: &str = "fp-9e0f";
/// Unix seconds: 2023-11-14T22:13:20Z.
pub const T0: u64 = 1_700_000_000;

pub fn kv_record() -> KvRecord {
    KvRecord {
        revision: 1025,
        value: b"sealed-kv".to_vec(),
    }
}

pub fn wrapped_key() -> WrappedKey {
    WrappedKey {
        version: 1,
        kek_version: 1,
        wrapped: vec![0xd1; 8],
        created_at: T0,
    }
}

pub fn session_policy() -> SessionPolicy {
    SessionPolicy {
        idle_timeout_secs: 3_600,
        absolute_timeout_secs: 86_400,
    }
}

pub fn tenant_record() -> TenantRecord {
    TenantRecord {
        id: TENANT_ID.to_owned(),
        name: TENANT_NAME.to_owned(),
        region: REGION.to_owned(),
        created_at: T0,
        keys: vec![wrapped_key()],
        sessions: session_policy(),
    }
}

pub fn master_key_record() -> MasterKeyRecord {
    MasterKeyRecord {
        version: 2,
        fingerprint: FINGERPRINT.to_owned(),
        since: T0 + 10,
    }
}

pub fn master_key_state() -> MasterKeyState {
    MasterKeyState {
        current: master_key_record(),
        retired: vec![MasterKeyRecord {
            version: 1,
            fingerprint: "fp-old".to_owned(),
            since: T0,
        }],
    }
}

pub fn api_key_record() -> ApiKeyRecord {
    ApiKeyRecord {
        id: API_KEY_ID.to_owned(),
        tenant_id: TENANT_ID.to_owned(),
        hash: vec![0xa5; 32],
        scopes: vec!["read".to_owned(), "write".to_owned()],
        created_at: T0 + 1,
    }
}

pub fn signing_key_record() -> SigningKeyRecord {
    SigningKeyRecord {
        kid: KID.to_owned(),
        public: vec![0x5e; 32],
        sealed_private: b"sealed-private".to_vec(),
        created_at: T0 + 2,
        retired_at: None,
    }
}

/// A retired key and the current one.
pub fn signing_keys() -> SigningKeys {
    SigningKeys {
        keys: vec![
            SigningKeyRecord {
                kid: "kid-old".to_owned(),
                public: vec![0x50; 32],
                sealed_private: b"sealed-old".to_vec(),
                created_at: T0,
                retired_at: Some(T0 + 2),
            },
            signing_key_record(),
        ],
    }
}

pub fn email_entry() -> EmailEntry {
    EmailEntry {
        user_id: USER_ID.to_owned(),
        region: REGION.to_owned(),
        reserved_at: T0 + 3,
    }
}

/// The email's blind index (an HMAC in production).
pub fn email_index() -> Vec<u8> {
    vec![0xe1; 32]
}

pub fn user_record() -> UserRecord {
    UserRecord {
        id: USER_ID.to_owned(),
        version: 3,
        created_at: T0 + 3,
        updated_at: T0 + 4,
        sealed: b"sealed-user".to_vec(),
    }
}

pub fn revocation() -> Revocation {
    Revocation {
        at: T0 + 9,
        reason: "revoked".to_owned(),
    }
}

/// A session that was refreshed once and then revoked: every optional field set.
pub fn session_record() -> SessionRecord {
    SessionRecord {
        id: SESSION_ID.to_owned(),
        user_id: USER_ID.to_owned(),
        created_at: T0 + 5,
        last_refreshed_at: T0 + 6,
        expires_at: T0 + 86_405,
        idle_timeout_secs: 3_600,
        amr: vec!["pwd".to_owned()],
        kid: KID.to_owned(),
        generation: 2,
        current_hash: vec![0xc2; 32],
        previous_hash: Some(vec![0xc1; 32]),
        revoked: Some(revocation()),
        sealed_details: b"sealed-details".to_vec(),
    }
}

/// A session as sign-in creates it: no previous token, not revoked.
pub fn fresh_session_record() -> SessionRecord {
    SessionRecord {
        last_refreshed_at: T0 + 5,
        generation: 1,
        current_hash: vec![0xc1; 32],
        previous_hash: None,
        revoked: None,
        ..session_record()
    }
}

pub fn audit_event() -> AuditEvent {
    AuditEvent {
        at: T0 + 9,
        action: "session.revoked".to_owned(),
        user_id: Some(USER_ID.to_owned()),
        session_id: Some(SESSION_ID.to_owned()),
        request_id: Some("req-0001".to_owned()),
    }
}

pub fn event_record() -> EventRecord {
    EventRecord {
        at: T0 + 9,
        action: "session.revoked".to_owned(),
        actor: Actor::ApiKey(API_KEY_ID.to_owned()),
        request_id: Some("req-0002".to_owned()),
        ip: Some(std::net::IpAddr::from([192, 0, 2, 1])),
        user_id: Some(USER_ID.to_owned()),
        session_id: Some(SESSION_ID.to_owned()),
        key_id: None,
    }
}

pub fn node_identity() -> NodeIdentity {
    NodeIdentity {
        cluster_name: "golden".to_owned(),
        node_id: 2,
        groups: vec![(0, "meta".to_owned()), (1, REGION.to_owned())],
    }
}
