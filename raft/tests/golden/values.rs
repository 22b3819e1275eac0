//! One fixed value of every replicated command and outcome, query and answer,
//! log entry kind and peer message, for raft's golden encoding test. The stored
//! records inside them come from storage's `golden/samples.rs`.
//!
//! Each value is named by an exhaustive `match` on its variant: a new variant
//! does not compile until it is named here, and then wants a sample (new
//! variants go last, see `docs/on-disk-layout.md`). Type paths appear only in
//! the `use` lists: when a type moves, change its path here, never the bytes.

use std::collections::{BTreeMap, BTreeSet};

use cairn_raft::error::RaftNodeError;
use cairn_raft::node::InitOutcome;
use cairn_raft::types::{Entry, LogId, Node, NodeId, SnapshotMeta, StoredMembership, Vote};
use cairn_raft::TypeConfig;
use cairn_storage::sm::{
    self, Answer as QueryResult, ApiKeyView, AuthCommand, AuthOutcome, Command, DirectoryCommand,
    DirectoryOutcome, KvCommand, KvOutcome, MetaCommand, MetaOutcome, Outcome as CommandResult,
    Query,
};
use cairn_storage::{Actor, RefreshOutcome, TenantRef, Trace, WrappedKey};
use openraft::error::{Fatal, InstallSnapshotError, RaftError, SnapshotMismatch};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{CommittedLeaderId, EntryPayload, SnapshotSegmentId};

use crate::samples::*;

pub type Membership = openraft::Membership<NodeId, Node>;

/// What a peer answers `AppendEntries` and `Vote` with.
pub type RaftReply<T> = Result<T, RaftError<NodeId>>;
/// What a peer answers `InstallSnapshot` with.
pub type SnapshotReply =
    Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>;

pub fn log_id(term: u64, index: u64) -> LogId {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

pub fn kv_put() -> KvCommand {
    KvCommand::Put(sm::kv::Put {
        tenant: TENANT_ID.to_owned(),
        key: b"blind-index".to_vec(),
        value: b"sealed-kv".to_vec(),
        expected_revision: Some(0),
    })
}

pub fn kv_delete() -> KvCommand {
    KvCommand::Delete(sm::kv::Delete {
        tenant: TENANT_ID.to_owned(),
        key: b"blind-index".to_vec(),
        expected_revision: None,
    })
}

pub fn refresh() -> sm::sessions::Refresh {
    sm::sessions::Refresh {
        tenant: TENANT_ID.to_owned(),
        session_id: SESSION_ID.to_owned(),
        generation: 1,
        presented_hash: vec![0xc1; 32],
        successor_hash: vec![0xc2; 32],
        proof: Some((2, vec![0xc3; 32])),
        kid: KID.to_owned(),
        at: T0 + 6,
        request_id: Some("req-0001".to_owned()),
    }
}

pub fn change_user() -> sm::users::ChangeUser {
    sm::users::ChangeUser {
        update: sm::users::UpdateUser {
            tenant: TENANT_ID.to_owned(),
            user_id: USER_ID.to_owned(),
            expected_version: 3,
            sealed: b"sealed-user-2".to_vec(),
            at: T0 + 4,
        },
        changed: vec![sm::users::UserField::Email, sm::users::UserField::Password],
    }
}

/// A bucket charge: an email bucket of the sign-in action.
pub fn charge() -> sm::rate_limits::Charge {
    sm::rate_limits::Charge {
        kind: 1,
        id: email_index(),
        burst: 5,
        per_minute: 2,
    }
}

pub fn tenant_settings() -> sm::tenants::TenantSettings {
    let mut s = sm::tenants::TenantSettings {
        refresh_retry_grace_secs: Some(10),
        breached_password_check: Some(true),
        ..Default::default()
    };
    s.rate_limits.insert(
        ("sign_in".to_owned(), "email".to_owned()),
        sm::tenants::RateLimit {
            burst: 5,
            per_minute: 2,
        },
    );
    s
}

pub fn revoke_session() -> AuthCommand {
    AuthCommand::RevokeSession(sm::sessions::RevokeSession {
        tenant: TENANT_ID.to_owned(),
        session_id: SESSION_ID.to_owned(),
        at: T0 + 9,
        reason: "revoked".to_owned(),
    })
}

/// Every command variant, the inner ones included, then a batch.
pub fn commands() -> Vec<(String, Command)> {
    let tenant = || TENANT_ID.to_owned();
    let mut all = vec![
        Command::Kv(kv_put()),
        Command::Kv(kv_delete()),
        Command::Meta(MetaCommand::CreateTenant(sm::CreateTenant {
            tenant: tenant_record(),
            master_fingerprint: FINGERPRINT.to_owned(),
            api_key: Some(Box::new(api_key_record())),
            signing_key: Some(Box::new(signing_key_record())),
        })),
        Command::Meta(MetaCommand::AddTenantKey(sm::tenants::AddTenantKey {
            tenant_id: tenant(),
            key: WrappedKey {
                version: 2,
                ..wrapped_key()
            },
            master_fingerprint: FINGERPRINT.to_owned(),
        })),
        Command::Meta(MetaCommand::RotateMaster(sm::RotateMaster {
            expected_version: 1,
            fingerprint: FINGERPRINT.to_owned(),
            at: T0 + 10,
            rewrapped: vec![(tenant(), wrapped_key())],
        })),
        Command::Meta(MetaCommand::SetSessionPolicy(
            sm::tenants::SetSessionPolicy {
                tenant_id: tenant(),
                idle_timeout_secs: Some(1_800),
                absolute_timeout_secs: None,
            },
        )),
        Command::Directory(DirectoryCommand::AddApiKey(sm::api_keys::AddApiKey(
            api_key_record(),
        ))),
        Command::Directory(DirectoryCommand::RevokeApiKey(sm::api_keys::RevokeApiKey {
            tenant_id: tenant(),
            key_id: API_KEY_ID.to_owned(),
        })),
        Command::Directory(DirectoryCommand::RotateSigningKey(
            sm::signing_keys::RotateSigningKey {
                tenant_id: tenant(),
                key: signing_key_record(),
                at: T0 + 2,
                keep_retired_secs: 7_200,
            },
        )),
        Command::Directory(DirectoryCommand::ReserveEmail(
            sm::email_index::ReserveEmail {
                tenant_id: tenant(),
                email_index: email_index(),
                entry: email_entry(),
                replace: Some("usr_old".to_owned()),
            },
        )),
        Command::Directory(DirectoryCommand::ReleaseEmail(
            sm::email_index::ReleaseEmail {
                tenant_id: tenant(),
                email_index: email_index(),
                user_id: USER_ID.to_owned(),
            },
        )),
        Command::Directory(DirectoryCommand::DeleteTenant(sm::tenants::DeleteTenant {
            tenant_id: tenant(),
        })),
        Command::Auth(AuthCommand::CreateUser(sm::users::CreateUser {
            tenant: tenant(),
            user: user_record(),
        })),
        Command::Auth(AuthCommand::UpdateUser(sm::users::UpdateUser {
            tenant: tenant(),
            user_id: USER_ID.to_owned(),
            expected_version: 3,
            sealed: b"sealed-user-2".to_vec(),
            at: T0 + 4,
        })),
        Command::Auth(AuthCommand::DeleteUser(sm::users::DeleteUser {
            tenant: tenant(),
            user_id: USER_ID.to_owned(),
            at: T0 + 11,
        })),
        Command::Auth(AuthCommand::CreateSession(sm::sessions::CreateSession {
            tenant: tenant(),
            session: fresh_session_record(),
        })),
        Command::Auth(AuthCommand::Refresh(refresh())),
        Command::Auth(revoke_session()),
        Command::Auth(AuthCommand::PurgeTenant(sm::tenants::PurgeTenant {
            tenant: tenant(),
        })),
        // Wire version 2.
        Command::Meta(MetaCommand::SetWireVersion(sm::cluster::SetWireVersion {
            version: 2,
        })),
        Command::Auth(AuthCommand::ChangeUser(change_user())),
        // Wire version 3.
        Command::Meta(MetaCommand::SetTenantSettings(
            sm::tenants::SetTenantSettings {
                tenant_id: tenant(),
                set: tenant_settings(),
            },
        )),
        Command::Auth(AuthCommand::RefreshWithin(sm::sessions::RefreshWithin {
            refresh: refresh(),
            retry_grace_secs: 10,
        })),
        Command::Auth(AuthCommand::RevokeUserSessions(
            sm::sessions::RevokeUserSessions {
                tenant: tenant(),
                user_id: USER_ID.to_owned(),
                except: Some(SESSION_ID.to_owned()),
                at: T0 + 13,
                reason: "revoked".to_owned(),
            },
        )),
        Command::Auth(AuthCommand::StartSession(sm::StartSession {
            create: sm::sessions::CreateSession {
                tenant: tenant(),
                session: fresh_session_record(),
            },
            require: vec![charge()],
            trust: Some((vec![0xd1; 32], (T0 + 86_400) * 1000)),
            at_ms: T0 * 1000 + 5,
        })),
        Command::Auth(AuthCommand::SignInFailed(sm::SignInFailed {
            tenant: tenant(),
            user_id: Some(USER_ID.to_owned()),
            charges: vec![charge()],
            sealed_ip: Some(b"sealed-ip".to_vec()),
            at_ms: T0 * 1000 + 7,
        })),
        Command::Auth(AuthCommand::ChangePassword(sm::ChangePassword {
            change: change_user(),
            keep_session: Some(SESSION_ID.to_owned()),
        })),
        // Wire version 4.
        Command::Directory(DirectoryCommand::ReindexEmail(
            sm::email_index::ReindexEmail {
                tenant_id: tenant(),
                from: vec![0xe0; 32],
                to: email_index(),
                entry: email_entry(),
            },
        )),
        Command::Directory(DirectoryCommand::MarkEmailsReindexed(
            sm::email_index::MarkEmailsReindexed {
                tenant_id: tenant(),
                group: 1,
            },
        )),
    ];
    all.push(Command::Batch(vec![
        Command::Kv(kv_put()),
        Command::Auth(revoke_session()),
    ]));
    all.push(Command::Traced(traced(Command::Auth(revoke_session()))));
    all.push(Command::Batch(vec![
        Command::Kv(kv_put()),
        Command::Traced(traced(Command::Auth(revoke_session()))),
    ]));
    all.into_iter().map(|c| (command_name(&c), c)).collect()
}

/// `command` as a request by the sample API key traces it.
pub fn traced(command: Command) -> sm::Traced {
    sm::Traced {
        trace: Trace {
            actor: Actor::ApiKey(API_KEY_ID.to_owned()),
            request_id: Some("req-0002".to_owned()),
            ip: Some(std::net::IpAddr::from([192, 0, 2, 1])),
            at: T0 + 12,
        },
        command: Box::new(command),
    }
}

fn command_name(c: &Command) -> String {
    let inner = match c {
        Command::Kv(c) => match c {
            KvCommand::Put { .. } => "kv.put",
            KvCommand::Delete { .. } => "kv.delete",
        },
        Command::Meta(c) => match c {
            MetaCommand::CreateTenant { .. } => "meta.create_tenant",
            MetaCommand::AddTenantKey { .. } => "meta.add_tenant_key",
            MetaCommand::RotateMaster { .. } => "meta.rotate_master",
            MetaCommand::SetSessionPolicy { .. } => "meta.set_session_policy",
            MetaCommand::SetWireVersion(_) => "meta.set_wire_version",
            MetaCommand::SetTenantSettings(_) => "meta.set_tenant_settings",
        },
        Command::Directory(c) => match c {
            DirectoryCommand::AddApiKey(_) => "directory.add_api_key",
            DirectoryCommand::RevokeApiKey { .. } => "directory.revoke_api_key",
            DirectoryCommand::RotateSigningKey { .. } => "directory.rotate_signing_key",
            DirectoryCommand::ReserveEmail { .. } => "directory.reserve_email",
            DirectoryCommand::ReleaseEmail { .. } => "directory.release_email",
            DirectoryCommand::DeleteTenant { .. } => "directory.delete_tenant",
            DirectoryCommand::ReindexEmail(_) => "directory.reindex_email",
            DirectoryCommand::MarkEmailsReindexed(_) => "directory.mark_emails_reindexed",
        },
        Command::Auth(c) => match c {
            AuthCommand::CreateUser { .. } => "auth.create_user",
            AuthCommand::UpdateUser { .. } => "auth.update_user",
            AuthCommand::DeleteUser { .. } => "auth.delete_user",
            AuthCommand::CreateSession { .. } => "auth.create_session",
            AuthCommand::Refresh { .. } => "auth.refresh",
            AuthCommand::RevokeSession { .. } => "auth.revoke_session",
            AuthCommand::PurgeTenant { .. } => "auth.purge_tenant",
            AuthCommand::ChangeUser(_) => "auth.change_user",
            AuthCommand::RefreshWithin(_) => "auth.refresh_within",
            AuthCommand::RevokeUserSessions(_) => "auth.revoke_user_sessions",
            AuthCommand::StartSession(_) => "auth.start_session",
            AuthCommand::SignInFailed(_) => "auth.sign_in_failed",
            AuthCommand::ChangePassword(_) => "auth.change_password",
        },
        Command::Batch(c) if c.iter().any(|c| matches!(c, Command::Traced(_))) => "batch.traced",
        Command::Batch(_) => "batch",
        Command::Traced(_) => "traced",
    };
    format!("command.{inner}")
}

/// Every outcome variant, the inner ones included, then a batch.
pub fn command_results() -> Vec<(String, CommandResult)> {
    use CommandResult as R;
    let mut all = vec![
        R::None,
        R::Kv(KvOutcome::Written { revision: 1025 }),
        R::Kv(KvOutcome::Deleted { existed: true }),
        R::Kv(KvOutcome::RevisionMismatch { current: 7 }),
        R::Meta(MetaOutcome::TenantCreated(tenant_record())),
        R::Meta(MetaOutcome::TenantExists(tenant_record())),
        R::Meta(MetaOutcome::TenantNotFound),
        R::Meta(MetaOutcome::KeyAdded(tenant_record())),
        R::Meta(MetaOutcome::KeyVersionConflict { current: 1 }),
        R::Meta(MetaOutcome::MasterKeyConflict {
            current: Some(master_key_record()),
        }),
        R::Meta(MetaOutcome::MasterRotated(master_key_state())),
        R::Meta(MetaOutcome::RewrapStale),
        R::Meta(MetaOutcome::TenantUpdated(tenant_record())),
        R::Meta(MetaOutcome::InvalidSetting),
        R::Meta(MetaOutcome::WireVersion { current: 2 }),
        R::Directory(DirectoryOutcome::ApiKeyAdded),
        R::Directory(DirectoryOutcome::ApiKeyRevoked),
        R::Directory(DirectoryOutcome::ApiKeyNotFound),
        R::Directory(DirectoryOutcome::SigningKeyRotated(signing_keys())),
        R::Directory(DirectoryOutcome::EmailReserved),
        R::Directory(DirectoryOutcome::EmailTaken(email_entry())),
        R::Directory(DirectoryOutcome::EmailReleased { existed: true }),
        R::Directory(DirectoryOutcome::TenantDeleted(tenant_record())),
        R::Directory(DirectoryOutcome::TenantNotFound),
        R::Directory(DirectoryOutcome::IdCollision),
        R::Auth(AuthOutcome::UserCreated),
        R::Auth(AuthOutcome::UserUpdated(user_record())),
        R::Auth(AuthOutcome::UserDeleted { sessions: 2 }),
        R::Auth(AuthOutcome::UserNotFound),
        R::Auth(AuthOutcome::UserVersionConflict { current: 4 }),
        R::Auth(AuthOutcome::SessionCreated),
        R::Auth(AuthOutcome::Refresh(RefreshOutcome::Rotated(
            session_record(),
        ))),
        R::Auth(AuthOutcome::Refresh(RefreshOutcome::Retried(
            session_record(),
        ))),
        R::Auth(AuthOutcome::Refresh(RefreshOutcome::Reused)),
        R::Auth(AuthOutcome::Refresh(RefreshOutcome::Invalid)),
        R::Auth(AuthOutcome::Refresh(RefreshOutcome::Revoked)),
        R::Auth(AuthOutcome::Refresh(RefreshOutcome::Expired)),
        R::Auth(AuthOutcome::Refresh(RefreshOutcome::NeedProof {
            current: 3,
        })),
        R::Auth(AuthOutcome::SessionRevoked { already: false }),
        R::Auth(AuthOutcome::SessionNotFound),
        R::Auth(AuthOutcome::Purged { rows: 12 }),
        R::Auth(AuthOutcome::IdCollision),
        R::Meta(MetaOutcome::SettingsSet(tenant_settings())),
        R::Auth(AuthOutcome::SessionsRevoked { revoked: 2 }),
        R::Auth(AuthOutcome::Limited(sm::rate_limits::Limited {
            retry_after_ms: 1_500,
        })),
        R::Auth(AuthOutcome::SignInFailureRecorded),
        R::Directory(DirectoryOutcome::EmailReindexed {
            moved: true,
            ambiguous: true,
        }),
        R::Directory(DirectoryOutcome::EmailsReindexed { marked: true }),
    ];
    all.push(R::Batch(vec![
        R::Kv(KvOutcome::Written { revision: 1025 }),
        R::Auth(AuthOutcome::SessionRevoked { already: false }),
    ]));
    all.into_iter().map(|r| (result_name(&r), r)).collect()
}

fn result_name(r: &CommandResult) -> String {
    use CommandResult as R;
    let inner = match r {
        R::None => "none",
        R::Kv(o) => match o {
            KvOutcome::Written { .. } => "kv.written",
            KvOutcome::Deleted { .. } => "kv.deleted",
            KvOutcome::RevisionMismatch { .. } => "kv.revision_mismatch",
        },
        R::Meta(o) => match o {
            MetaOutcome::TenantCreated(_) => "meta.tenant_created",
            MetaOutcome::TenantExists(_) => "meta.tenant_exists",
            MetaOutcome::TenantNotFound => "meta.tenant_not_found",
            MetaOutcome::KeyAdded(_) => "meta.key_added",
            MetaOutcome::KeyVersionConflict { .. } => "meta.key_version_conflict",
            MetaOutcome::MasterKeyConflict { .. } => "meta.master_key_conflict",
            MetaOutcome::MasterRotated(_) => "meta.master_rotated",
            MetaOutcome::RewrapStale => "meta.rewrap_stale",
            MetaOutcome::TenantUpdated(_) => "meta.tenant_updated",
            MetaOutcome::InvalidSetting => "meta.invalid_setting",
            MetaOutcome::WireVersion { .. } => "meta.wire_version",
            MetaOutcome::SettingsSet(_) => "meta.settings_set",
        },
        R::Directory(o) => match o {
            DirectoryOutcome::ApiKeyAdded => "directory.api_key_added",
            DirectoryOutcome::ApiKeyRevoked => "directory.api_key_revoked",
            DirectoryOutcome::ApiKeyNotFound => "directory.api_key_not_found",
            DirectoryOutcome::SigningKeyRotated(_) => "directory.signing_key_rotated",
            DirectoryOutcome::EmailReserved => "directory.email_reserved",
            DirectoryOutcome::EmailTaken(_) => "directory.email_taken",
            DirectoryOutcome::EmailReleased { .. } => "directory.email_released",
            DirectoryOutcome::TenantDeleted(_) => "directory.tenant_deleted",
            DirectoryOutcome::TenantNotFound => "directory.tenant_not_found",
            DirectoryOutcome::IdCollision => "directory.id_collision",
            DirectoryOutcome::EmailReindexed { .. } => "directory.email_reindexed",
            DirectoryOutcome::EmailsReindexed { .. } => "directory.emails_reindexed",
        },
        R::Auth(o) => match o {
            AuthOutcome::UserCreated => "auth.user_created",
            AuthOutcome::UserUpdated(_) => "auth.user_updated",
            AuthOutcome::UserDeleted { .. } => "auth.user_deleted",
            AuthOutcome::UserNotFound => "auth.user_not_found",
            AuthOutcome::UserVersionConflict { .. } => "auth.user_version_conflict",
            AuthOutcome::SessionCreated => "auth.session_created",
            AuthOutcome::Refresh(o) => match o {
                RefreshOutcome::Rotated(_) => "auth.refresh.rotated",
                RefreshOutcome::Retried(_) => "auth.refresh.retried",
                RefreshOutcome::Reused => "auth.refresh.reused",
                RefreshOutcome::Invalid => "auth.refresh.invalid",
                RefreshOutcome::Revoked => "auth.refresh.revoked",
                RefreshOutcome::Expired => "auth.refresh.expired",
                RefreshOutcome::NeedProof { .. } => "auth.refresh.need_proof",
            },
            AuthOutcome::SessionRevoked { .. } => "auth.session_revoked",
            AuthOutcome::SessionNotFound => "auth.session_not_found",
            AuthOutcome::Purged { .. } => "auth.purged",
            AuthOutcome::IdCollision => "auth.id_collision",
            AuthOutcome::SessionsRevoked { .. } => "auth.sessions_revoked",
            AuthOutcome::Limited(_) => "auth.limited",
            AuthOutcome::SignInFailureRecorded => "auth.sign_in_failure_recorded",
        },
        R::Batch(_) => "batch",
    };
    format!("result.{inner}")
}

/// Every query variant (both ways to name a tenant).
pub fn queries() -> Vec<(String, Query)> {
    let tenant = || TENANT_ID.to_owned();
    let all = vec![
        Query::KvGet(sm::kv::Get {
            tenant: tenant(),
            key: b"blind-index".to_vec(),
        }),
        Query::Tenant(TenantRef::Name(TENANT_NAME.to_owned())),
        Query::Tenant(TenantRef::Id(tenant())),
        Query::Tenants,
        Query::ApiKey(sm::api_keys::GetApiKey {
            key_id: API_KEY_ID.to_owned(),
        }),
        Query::SigningKeys(sm::signing_keys::GetSigningKeys {
            tenant_id: tenant(),
        }),
        Query::Email(sm::email_index::GetEmail {
            tenant_id: tenant(),
            index: email_index(),
        }),
        Query::User(sm::users::GetUser {
            tenant: tenant(),
            user_id: USER_ID.to_owned(),
        }),
        Query::Session(sm::sessions::GetSession {
            tenant: tenant(),
            session_id: SESSION_ID.to_owned(),
        }),
        Query::UserSessions(sm::sessions::ListUserSessions {
            tenant: tenant(),
            user_id: USER_ID.to_owned(),
        }),
        Query::TenantSettings(sm::tenants::GetTenantSettings {
            tenant_id: tenant(),
        }),
        Query::Rates(sm::rate_limits::GetRates {
            tenant: tenant(),
            rows: vec![(1, email_index()), (0xf0, vec![0xd1; 32])],
        }),
        Query::FailedSignIns(sm::users::GetFailedSignIns {
            tenant: tenant(),
            user_id: USER_ID.to_owned(),
        }),
        Query::Users(sm::users::ListUsers {
            tenant: tenant(),
            after: Some(USER_ID.to_owned()),
            limit: 50,
        }),
        Query::EmailHolders(sm::email_index::FindEmail {
            tenant_id: tenant(),
            index: email_index(),
            fallback: Some(vec![0xe0; 32]),
        }),
        Query::EmailsReindexed(sm::email_index::GetEmailsReindexed {
            tenant_id: tenant(),
        }),
    ];
    all.into_iter().map(|q| (query_name(&q), q)).collect()
}

fn query_name(q: &Query) -> String {
    let inner = match q {
        Query::KvGet { .. } => "kv_get",
        Query::Tenant(TenantRef::Name(_)) => "tenant.by_name",
        Query::Tenant(TenantRef::Id(_)) => "tenant.by_id",
        Query::Tenants => "tenants",
        Query::ApiKey { .. } => "api_key",
        Query::SigningKeys { .. } => "signing_keys",
        Query::Email { .. } => "email",
        Query::User { .. } => "user",
        Query::Session { .. } => "session",
        Query::UserSessions { .. } => "user_sessions",
        Query::TenantSettings(_) => "tenant_settings",
        Query::Rates(_) => "rates",
        Query::FailedSignIns(_) => "failed_sign_ins",
        Query::Users(_) => "users",
        Query::EmailHolders(_) => "email_holders",
        Query::EmailsReindexed(_) => "emails_reindexed",
    };
    format!("query.{inner}")
}

/// What `Query::ApiKey` answers with.
pub fn api_key_view() -> ApiKeyView {
    ApiKeyView {
        key: api_key_record(),
        tenant: tenant_record(),
    }
}

/// Every answer variant.
pub fn query_results() -> Vec<(String, QueryResult)> {
    let all = vec![
        QueryResult::Kv(Some(kv_record())),
        QueryResult::Tenant {
            tenant: Some(tenant_record()),
            master: Some(master_key_state()),
        },
        QueryResult::Tenants {
            tenants: vec![tenant_record()],
            master: Some(master_key_state()),
        },
        QueryResult::ApiKey {
            view: Some(api_key_view()),
            master: Some(master_key_state()),
        },
        QueryResult::SigningKeys(signing_keys()),
        QueryResult::Email(Some(email_entry())),
        QueryResult::User(Some(user_record())),
        QueryResult::Session(Some(session_record())),
        QueryResult::Sessions(vec![session_record(), fresh_session_record()]),
        QueryResult::TenantSettings(tenant_settings()),
        QueryResult::Rates(vec![Some(T0 * 1000 + 30_000), None]),
        QueryResult::FailedSignIns(Some(sm::users::FailedSignIns {
            count: 3,
            last_at: T0 + 7,
            sealed_last_ip: Some(b"sealed-ip".to_vec()),
        })),
        QueryResult::Users(vec![user_record()]),
        QueryResult::EmailHolders(vec![email_entry()]),
        QueryResult::ReindexedGroups(vec![1, 2]),
    ];
    all.into_iter()
        .map(|r| (query_result_name(&r), r))
        .collect()
}

fn query_result_name(r: &QueryResult) -> String {
    let inner = match r {
        QueryResult::Kv(_) => "kv",
        QueryResult::Tenant { .. } => "tenant",
        QueryResult::Tenants { .. } => "tenants",
        QueryResult::ApiKey { .. } => "api_key",
        QueryResult::SigningKeys(_) => "signing_keys",
        QueryResult::Email(_) => "email",
        QueryResult::User(_) => "user",
        QueryResult::Session(_) => "session",
        QueryResult::Sessions(_) => "sessions",
        QueryResult::TenantSettings(_) => "tenant_settings",
        QueryResult::Rates(_) => "rates",
        QueryResult::FailedSignIns(_) => "failed_sign_ins",
        QueryResult::Users(_) => "users",
        QueryResult::EmailHolders(_) => "email_holders",
        QueryResult::ReindexedGroups(_) => "reindexed_groups",
    };
    format!("query_result.{inner}")
}

/// Every `RaftNodeError` variant (relayed unchanged between nodes).
pub fn node_errors() -> Vec<(String, RaftNodeError)> {
    let all = vec![
        RaftNodeError::UnknownGroup(9),
        RaftNodeError::NoLeader { group: 1 },
        RaftNodeError::OutcomeUnknown {
            group: 1,
            detail: "deadline".to_owned(),
        },
        RaftNodeError::ShuttingDown,
        RaftNodeError::Internal("internal".to_owned()),
        RaftNodeError::PinnedAway {
            group: 1,
            region: "eu".to_owned(),
        },
    ];
    all.into_iter()
        .map(|e| {
            let name = match e {
                RaftNodeError::UnknownGroup(_) => "unknown_group",
                RaftNodeError::NoLeader { .. } => "no_leader",
                RaftNodeError::OutcomeUnknown { .. } => "outcome_unknown",
                RaftNodeError::ShuttingDown => "shutting_down",
                RaftNodeError::Internal(_) => "internal",
                RaftNodeError::PinnedAway { .. } => "pinned_away",
            };
            (name.to_owned(), e)
        })
        .collect()
}

/// Every `InitOutcome` variant.
pub fn init_outcomes() -> Vec<(String, InitOutcome)> {
    [InitOutcome::Initialized, InitOutcome::AlreadyInitialized]
        .into_iter()
        .map(|o| {
            let name = match o {
                InitOutcome::Initialized => "initialized",
                InitOutcome::AlreadyInitialized => "already_initialized",
            };
            (name.to_owned(), o)
        })
        .collect()
}

/// The members `cairn init` sends with `InitGroup`.
pub fn members() -> BTreeMap<NodeId, Node> {
    (1..=3)
        .map(|id| (id, Node::new(format!("127.0.0.1:{}", 7100 + id))))
        .collect()
}

pub fn membership() -> Membership {
    Membership::new(vec![BTreeSet::from([1, 2, 3])], members())
}

/// One entry of each payload kind.
pub fn entries() -> Vec<(String, Entry)> {
    vec![
        (
            "log_entry.normal".to_owned(),
            Entry {
                log_id: log_id(3, 10),
                payload: EntryPayload::Normal(Command::Kv(kv_put())),
            },
        ),
        (
            "log_entry.blank".to_owned(),
            Entry {
                log_id: log_id(3, 11),
                payload: EntryPayload::Blank,
            },
        ),
        (
            "log_entry.membership".to_owned(),
            Entry {
                log_id: log_id(3, 12),
                payload: EntryPayload::Membership(membership()),
            },
        ),
    ]
}

pub fn vote() -> Vote {
    Vote::new_committed(3, 1)
}

pub fn snapshot_meta() -> SnapshotMeta {
    SnapshotMeta {
        last_log_id: Some(log_id(3, 12)),
        last_membership: StoredMembership::new(Some(log_id(3, 12)), membership()),
        snapshot_id: "3-1-12-0".to_owned(),
    }
}

pub fn append_entries_request() -> AppendEntriesRequest<TypeConfig> {
    AppendEntriesRequest {
        vote: vote(),
        prev_log_id: Some(log_id(3, 9)),
        entries: entries().into_iter().map(|(_, e)| e).collect(),
        leader_commit: Some(log_id(3, 9)),
    }
}

/// Every `AppendEntriesResponse` variant, and the fatal errors a peer relays.
pub fn append_entries_replies() -> Vec<(String, RaftReply<AppendEntriesResponse<NodeId>>)> {
    let all = vec![
        Ok(AppendEntriesResponse::Success),
        Ok(AppendEntriesResponse::PartialSuccess(Some(log_id(3, 11)))),
        Ok(AppendEntriesResponse::Conflict),
        Ok(AppendEntriesResponse::HigherVote(Vote::new(4, 2))),
        Err(RaftError::Fatal(Fatal::Panicked)),
        Err(RaftError::Fatal(Fatal::Stopped)),
    ];
    all.into_iter()
        .map(|r| {
            let name = match &r {
                Ok(AppendEntriesResponse::Success) => "success",
                Ok(AppendEntriesResponse::PartialSuccess(_)) => "partial_success",
                Ok(AppendEntriesResponse::Conflict) => "conflict",
                Ok(AppendEntriesResponse::HigherVote(_)) => "higher_vote",
                Err(e) => fatal_name(e),
            };
            (name.to_owned(), r)
        })
        .collect()
}

fn fatal_name<E>(e: &RaftError<NodeId, E>) -> &'static str {
    match e {
        RaftError::Fatal(Fatal::Panicked) => "fatal.panicked",
        RaftError::Fatal(Fatal::Stopped) => "fatal.stopped",
        RaftError::Fatal(Fatal::StorageError(_)) => "fatal.storage_error",
        RaftError::APIError(_) => "api_error",
    }
}

pub fn vote_request() -> VoteRequest<NodeId> {
    VoteRequest {
        vote: Vote::new(4, 2),
        last_log_id: Some(log_id(3, 12)),
    }
}

pub fn vote_replies() -> Vec<(String, RaftReply<VoteResponse<NodeId>>)> {
    let all = vec![
        Ok(VoteResponse {
            vote: Vote::new(4, 2),
            vote_granted: true,
            last_log_id: Some(log_id(3, 12)),
        }),
        Err(RaftError::Fatal(Fatal::Stopped)),
    ];
    all.into_iter()
        .map(|r| {
            let name = match &r {
                Ok(_) => "ok",
                Err(e) => fatal_name(e),
            };
            (name.to_owned(), r)
        })
        .collect()
}

pub fn install_snapshot_request() -> InstallSnapshotRequest<TypeConfig> {
    InstallSnapshotRequest {
        vote: vote(),
        meta: snapshot_meta(),
        offset: 0,
        data: b"snapshot-rows".to_vec(),
        done: true,
    }
}

pub fn install_snapshot_replies() -> Vec<(String, SnapshotReply)> {
    let segment = |offset| SnapshotSegmentId {
        id: "3-1-12-0".to_owned(),
        offset,
    };
    let all = vec![
        Ok(InstallSnapshotResponse { vote: vote() }),
        Err(RaftError::APIError(InstallSnapshotError::SnapshotMismatch(
            SnapshotMismatch {
                expect: segment(0),
                got: segment(13),
            },
        ))),
        Err(RaftError::Fatal(Fatal::Stopped)),
    ];
    all.into_iter()
        .map(|r| {
            let name = match &r {
                Ok(_) => "ok",
                Err(RaftError::APIError(InstallSnapshotError::SnapshotMismatch(_))) => {
                    "snapshot_mismatch"
                }
                Err(e) => fatal_name(e),
            };
            (name.to_owned(), r)
        })
        .collect()
}
