//! The replicated state machine: the wire enums raft carries ([`Command`],
//! [`Outcome`], [`Query`], [`Answer`]), the typed entry points ([`Op`], [`Read`]),
//! and the dispatch ([`apply`], [`read`]) to the features, one module each:
//!
//! - [`kv`]: tenant key-value (data groups);
//! - [`tenants`], [`master_key`], [`api_keys`], [`signing_keys`], [`email_index`],
//!   [`cluster`] (the wire version): the `meta` group;
//! - [`users`], [`sessions`], [`audit`]: a region's data group;
//! - [`events`]: the domain events applies return, and the sink that writes them.
//!
//! Features never name each other. What spans several is composed here: creating
//! a tenant (it brings its first API key and signing key, and may establish the
//! master key), a master key rotation (it re-wraps every tenant's keys), and the
//! reads that pair a tenant with the master key state at one index.
//!
//! The wire enums are append-only: their variant order and field order are the
//! bytes of every log entry, peer message and snapshot ever written (pinned by
//! the golden tests). A command is a newtype variant over its feature's struct,
//! which encodes exactly like the struct variant it replaced. A variant appended
//! to [`Command`] or [`Outcome`] is appended to its mirror in `batched` too (the
//! decoding of a batch's elements, which refuses a nested batch).
//!
//! Variants added after wire version 1 ([`Command::Traced`],
//! [`MetaCommand::SetWireVersion`], [`AuthCommand::ChangeUser`]; in version 3
//! the tenant settings, the bounded refresh, rate limits, failed sign-ins and
//! signing out everywhere) are proposed only once the cluster's wire version
//! allows them (see [`cluster`]): an older binary cannot decode them.

use serde::{Deserialize, Serialize};

use crate::engine::{ApplyBatch, GroupState};
use crate::Result;

pub mod api_keys;
pub mod audit;
mod batched;
pub mod cluster;
pub mod email_index;
pub mod events;
pub mod kv;
pub mod master_key;
pub mod rate_limits;
pub mod sessions;
pub mod signing_keys;
pub mod tenants;
pub mod users;

use api_keys::{
    AddApiKey, AddApiKeyOutcome, ApiKeyRecord, GetApiKey, RevokeApiKey, RevokeApiKeyOutcome,
};
use cluster::{SetWireVersion, WireVersionSet};
use email_index::{
    EmailEntry, EmailReindexed, EmailReleased, EmailsReindexed, FindEmail, GetEmail,
    GetEmailsReindexed, MarkEmailsReindexed, ReindexEmail, ReleaseEmail, ReserveEmail,
    ReserveEmailOutcome,
};
use events::{Applied, Trace};
use kv::{Delete, DeleteOutcome, Get, KvRecord, Put, PutOutcome};
use master_key::{MasterKeyConflict, MasterKeyRecord, MasterKeyState, RotateMasterOutcome};
use rate_limits::{Charge, GetRates, Limited};
use sessions::{
    CreateSession, CreateSessionOutcome, GetSession, ListUserSessions, Refresh, RefreshOutcome,
    RefreshWithin, RevokeSession, RevokeSessionOutcome, RevokeUserSessions, SessionRecord,
    UserSessionsRevoked,
};
use signing_keys::{
    GetSigningKeys, RotateSigningKey, RotateSigningKeyOutcome, SigningKeyRecord, SigningKeys,
};
use tenants::{
    AddKeyOutcome, AddTenantKey, CreateOutcome, DeleteTenant, DeleteTenantOutcome,
    GetTenantSettings, ListTenants, PurgeTenant, Purged, SetSessionPolicy, SetSessionPolicyOutcome,
    SetTenantSettings, SetTenantSettingsOutcome, TenantRecord, TenantRef, TenantSettings,
    WrappedKey,
};
use users::{
    ChangeUser, CreateUser, CreateUserOutcome, DeleteUser, DeleteUserOutcome, FailedSignIns,
    GetFailedSignIns, GetUser, ListUsers, UpdateUser, UpdateUserOutcome, UserRecord,
};

// ---------------------------------------------------------------------------
// The wire enums (append-only).

/// A state change, replicated through a group's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    Kv(KvCommand),
    /// Tenants and keys: proposed to the `meta` group only.
    Meta(MetaCommand),
    /// API keys, signing keys, the email index: `meta` only.
    Directory(DirectoryCommand),
    /// Users and sessions: a region's data group.
    Auth(AuthCommand),
    /// Several writes proposed as one entry (raft's proposal batching), applied in
    /// order. One level deep: a batch inside a batch is refused when decoded
    /// (`batched` says why and how).
    #[serde(deserialize_with = "batched::commands")]
    Batch(Vec<Command>),
    /// A command with who caused it (wire version 2): its events carry the
    /// actor, request id and client IP. Inside a batch or not; never around a
    /// batch or another traced command.
    Traced(Traced),
}

/// [`Command::Traced`]'s payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Traced {
    pub trace: Trace,
    /// One command of a feature: a batch or traced command here is refused when
    /// decoded, and never proposed.
    #[serde(deserialize_with = "batched::leaf")]
    pub command: Box<Command>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvCommand {
    Put(Put),
    Delete(Delete),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetaCommand {
    CreateTenant(CreateTenant),
    AddTenantKey(AddTenantKey),
    RotateMaster(RotateMaster),
    SetSessionPolicy(SetSessionPolicy),
    SetWireVersion(SetWireVersion),
    SetTenantSettings(SetTenantSettings),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DirectoryCommand {
    AddApiKey(AddApiKey),
    RevokeApiKey(RevokeApiKey),
    RotateSigningKey(RotateSigningKey),
    ReserveEmail(ReserveEmail),
    ReleaseEmail(ReleaseEmail),
    DeleteTenant(DeleteTenant),
    ReindexEmail(ReindexEmail),
    MarkEmailsReindexed(MarkEmailsReindexed),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthCommand {
    CreateUser(CreateUser),
    UpdateUser(UpdateUser),
    DeleteUser(DeleteUser),
    CreateSession(CreateSession),
    Refresh(Refresh),
    RevokeSession(RevokeSession),
    PurgeTenant(PurgeTenant),
    ChangeUser(ChangeUser),
    RefreshWithin(RefreshWithin),
    RevokeUserSessions(RevokeUserSessions),
    StartSession(StartSession),
    SignInFailed(SignInFailed),
    ChangePassword(ChangePassword),
}

/// What applying a [`Command`] decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Blank and membership entries have no result.
    None,
    Kv(KvOutcome),
    Meta(MetaOutcome),
    Directory(DirectoryOutcome),
    Auth(AuthOutcome),
    /// One result per command of a [`Command::Batch`], in order; one level deep
    /// as that is.
    #[serde(deserialize_with = "batched::outcomes")]
    Batch(Vec<Outcome>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvOutcome {
    Written {
        revision: u64,
    },
    Deleted {
        existed: bool,
    },
    /// The guard failed; `current` is the key's revision (`0`: absent). Nothing changed.
    RevisionMismatch {
        current: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetaOutcome {
    TenantCreated(TenantRecord),
    /// A tenant of that name already existed; it is returned unchanged.
    TenantExists(TenantRecord),
    TenantNotFound,
    KeyAdded(TenantRecord),
    /// The proposed key version is not the next one; nothing changed.
    KeyVersionConflict {
        current: u32,
    },
    /// The proposed keys are not wrapped under the current master key (or the
    /// rotation expected another version); nothing changed.
    MasterKeyConflict {
        current: Option<MasterKeyRecord>,
    },
    MasterRotated(MasterKeyState),
    /// The re-wrapped keys are not exactly the stored keys (a tenant or key was
    /// added meanwhile): nothing changed; read again and retry.
    RewrapStale,
    TenantUpdated(TenantRecord),
    /// The proposed setting is out of bounds; nothing changed.
    InvalidSetting,
    /// The cluster's wire version after a [`SetWireVersion`].
    WireVersion {
        current: u32,
    },
    /// A tenant's settings after a [`SetTenantSettings`].
    SettingsSet(TenantSettings),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DirectoryOutcome {
    ApiKeyAdded,
    ApiKeyRevoked,
    ApiKeyNotFound,
    SigningKeyRotated(SigningKeys),
    EmailReserved,
    /// Another user holds the email; nothing changed.
    EmailTaken(EmailEntry),
    EmailReleased {
        existed: bool,
    },
    TenantDeleted(TenantRecord),
    TenantNotFound,
    /// A random id collided with an existing one; nothing changed.
    IdCollision,
    EmailReindexed {
        moved: bool,
        ambiguous: bool,
    },
    EmailsReindexed {
        marked: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthOutcome {
    UserCreated,
    UserUpdated(UserRecord),
    UserDeleted {
        sessions: usize,
    },
    UserNotFound,
    /// The user changed since it was read; nothing changed.
    UserVersionConflict {
        current: u64,
    },
    SessionCreated,
    Refresh(RefreshOutcome),
    SessionRevoked {
        already: bool,
    },
    SessionNotFound,
    Purged {
        rows: usize,
    },
    /// A random id collided with an existing one; nothing changed.
    IdCollision,
    SessionsRevoked {
        revoked: usize,
    },
    /// A rate limit's bucket is empty; nothing was charged.
    Limited(Limited),
    SignInFailureRecorded,
}

/// A linearizable read of a group's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Query {
    KvGet(Get),
    /// A tenant's record and the master key state, read at one index (`meta`).
    Tenant(TenantRef),
    /// Every tenant and the master key state, read at one index (`meta`).
    Tenants,
    /// An API key with its tenant and the master key state, at one index (`meta`).
    ApiKey(GetApiKey),
    /// A tenant's token signing keys (`meta`).
    SigningKeys(GetSigningKeys),
    /// Where the user holding an email (blind index) lives (`meta`).
    Email(GetEmail),
    User(GetUser),
    Session(GetSession),
    UserSessions(ListUserSessions),
    TenantSettings(GetTenantSettings),
    Rates(GetRates),
    FailedSignIns(GetFailedSignIns),
    Users(ListUsers),
    /// Every holder of an email, under its key and its earlier key (`meta`).
    EmailHolders(FindEmail),
    /// The data groups whose users of a tenant are re-indexed (`meta`).
    EmailsReindexed(GetEmailsReindexed),
}

impl Query {
    /// Whether the query reads a range of rows (all tenants, a user's sessions)
    /// rather than a few keys.
    #[must_use]
    pub fn is_scan(&self) -> bool {
        matches!(self, Self::Tenants | Self::UserSessions(_) | Self::Users(_))
    }
}

/// What a [`Query`] read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Answer {
    Kv(Option<KvRecord>),
    Tenant {
        tenant: Option<TenantRecord>,
        master: Option<MasterKeyState>,
    },
    Tenants {
        tenants: Vec<TenantRecord>,
        master: Option<MasterKeyState>,
    },
    ApiKey {
        view: Option<ApiKeyView>,
        master: Option<MasterKeyState>,
    },
    SigningKeys(SigningKeys),
    Email(Option<EmailEntry>),
    User(Option<UserRecord>),
    Session(Option<SessionRecord>),
    Sessions(Vec<SessionRecord>),
    TenantSettings(TenantSettings),
    Rates(Vec<Option<u64>>),
    FailedSignIns(Option<FailedSignIns>),
    Users(Vec<UserRecord>),
    EmailHolders(Vec<EmailEntry>),
    ReindexedGroups(Vec<u64>),
}

// ---------------------------------------------------------------------------
// Commands and answers that span features.

/// Creates `tenant` (with exactly one key, version 1) unless a tenant of that
/// name exists. The key must be wrapped under the current master key, named by
/// `master_fingerprint`; the first tenant ever created establishes it.
///
/// With the tenant come its first API key and its first token signing key
/// (optional only for tenants made by tests and tools).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateTenant {
    pub tenant: TenantRecord,
    pub master_fingerprint: String,
    pub api_key: Option<Box<ApiKeyRecord>>,
    pub signing_key: Option<Box<SigningKeyRecord>>,
}

/// Makes the master key `fingerprint` current (version `expected_version + 1`),
/// replacing every stored tenant key by its re-wrapped copy in `rewrapped`.
/// Before the first tenant (no master key recorded), `expected_version` 0 and
/// nothing to re-wrap establish `fingerprint` as version 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotateMaster {
    pub expected_version: u32,
    pub fingerprint: String,
    pub at: u64,
    pub rewrapped: Vec<(String, WrappedKey)>,
}

/// What [`CreateTenant`] decided.
pub type CreateTenantOutcome = CreateOutcome<MasterKeyConflict>;
/// What [`AddTenantKey`] decided.
pub type AddTenantKeyOutcome = AddKeyOutcome<MasterKeyConflict>;

/// A sign-in whose password matched (wire version 3): the session, created
/// only if every bucket of `require` has a token (the email bucket, unless
/// the pair is trusted), and the pair that signed in trusted until its end.
/// The user's failed sign-ins are cleared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartSession {
    pub create: CreateSession,
    pub require: Vec<Charge>,
    /// (pair id, until) for [`rate_limits::TRUSTED_PAIR`].
    pub trust: Option<(Vec<u8>, u64)>,
    /// Milliseconds at the proposer (the buckets' clock).
    pub at_ms: u64,
}

/// What [`StartSession`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartSessionOutcome {
    SessionCreated,
    UserNotFound,
    IdCollision,
    Limited(Limited),
}

/// A sign-in that failed (wire version 3): one token from every bucket of
/// `charges` (the email and pair buckets), or none if any is empty, and the
/// failure counted on the user, if there is one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInFailed {
    pub tenant: String,
    pub user_id: Option<String>,
    pub charges: Vec<Charge>,
    /// The client IP, sealed by the node.
    pub sealed_ip: Option<Vec<u8>>,
    pub at_ms: u64,
}

/// What [`SignInFailed`] decided: `Limited` if a bucket was already empty
/// (the failure still counts on the user).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInFailedOutcome {
    SignInFailureRecorded,
    Limited(Limited),
}

/// A user change that sets a new password (wire version 3): the change, and
/// in the same entry the revocation of every session of the user but
/// `keep_session`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangePassword {
    pub change: ChangeUser,
    pub keep_session: Option<String>,
}

/// What authenticating an API key needs, read at one applied index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyView {
    pub key: ApiKeyRecord,
    pub tenant: TenantRecord,
}

/// A tenant (by name or id) and the master key state, read at one index (a
/// master rotation applied between two separate reads would pair keys with the
/// wrong master key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantView {
    pub tenant: Option<TenantRecord>,
    pub master: Option<MasterKeyState>,
}

/// Every tenant (ordered by id) and the master key state, at one index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantsView {
    pub tenants: Vec<TenantRecord>,
    pub master: Option<MasterKeyState>,
}

/// An API key with its tenant (`None` if either is gone) and the master key
/// state, at one index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyLookup {
    pub view: Option<ApiKeyView>,
    pub master: Option<MasterKeyState>,
}

// ---------------------------------------------------------------------------
// Typed entry points.

/// A command that names its outcome: what the proposer gets back is exactly the
/// answers this command can give ([`Op::outcome`] projects the wire outcome onto
/// them; `None` is a wrong-family answer, a bug the raft glue reports once).
pub trait Op: Into<Command> {
    type Outcome;
    fn outcome(wire: Outcome) -> Option<Self::Outcome>;
}

/// `op` with its [`Trace`]: proposed as [`Command::Traced`], answered as `op`
/// is.
#[derive(Debug, Clone)]
pub struct TracedOp<O> {
    pub trace: Trace,
    pub op: O,
}

impl<O: Op> From<TracedOp<O>> for Command {
    fn from(t: TracedOp<O>) -> Self {
        Self::Traced(Traced {
            trace: t.trace,
            command: Box::new(t.op.into()),
        })
    }
}

impl<O: Op> Op for TracedOp<O> {
    type Outcome = O::Outcome;
    fn outcome(wire: Outcome) -> Option<O::Outcome> {
        O::outcome(wire)
    }
}

/// A query that names its answer (as [`Op`] for commands).
pub trait Read: Into<Query> {
    type Answer;
    fn answer(wire: Answer) -> Option<Self::Answer>;
}

/// A typed outcome recovered from its family's wire outcome.
trait FromWire<W>: Sized {
    fn from_wire(wire: W) -> Option<Self>;
}

/// A typed outcome whose variants are its family's variants of the same name and
/// payload: the conversions both ways.
macro_rules! outcome_map {
    ($typed:ident => $family:ident { $($v:ident $(($p:ident))? $({ $f:ident })?),* $(,)? }) => {
        impl From<$typed> for $family {
            fn from(o: $typed) -> Self {
                match o {
                    $($typed::$v $(($p))? $({ $f })? => Self::$v $(($p))? $({ $f })?,)*
                }
            }
        }
        impl FromWire<$family> for $typed {
            fn from_wire(wire: $family) -> Option<Self> {
                match wire {
                    $($family::$v $(($p))? $({ $f })? => Some(Self::$v $(($p))? $({ $f })?),)*
                    _ => None,
                }
            }
        }
    };
}

/// A command struct as its wire variant, and its [`Op`] impl.
macro_rules! op {
    ($cmd:ident => $family:ident($fam_cmd:ident::$variant:ident) -> $out:ident) => {
        impl From<$cmd> for Command {
            fn from(c: $cmd) -> Self {
                Self::$family($fam_cmd::$variant(c))
            }
        }
        impl Op for $cmd {
            type Outcome = $out;
            fn outcome(wire: Outcome) -> Option<$out> {
                match wire {
                    Outcome::$family(o) => FromWire::from_wire(o),
                    _ => None,
                }
            }
        }
    };
}

/// A query struct as its wire variant, and its [`Read`] impl.
macro_rules! read_op {
    ($q:ident => $variant:ident -> $answer:ty, $pat:pat => $e:expr) => {
        impl From<$q> for Query {
            fn from(q: $q) -> Self {
                Self::$variant(q)
            }
        }
        impl Read for $q {
            type Answer = $answer;
            fn answer(wire: Answer) -> Option<$answer> {
                match wire {
                    $pat => Some($e),
                    _ => None,
                }
            }
        }
    };
}

outcome_map!(PutOutcome => KvOutcome { Written { revision }, RevisionMismatch { current } });
outcome_map!(DeleteOutcome => KvOutcome { Deleted { existed }, RevisionMismatch { current } });
outcome_map!(RotateMasterOutcome => MetaOutcome {
    MasterRotated(state), MasterKeyConflict { current }, RewrapStale,
});
outcome_map!(SetSessionPolicyOutcome => MetaOutcome {
    TenantUpdated(tenant), TenantNotFound, InvalidSetting,
});
outcome_map!(AddApiKeyOutcome => DirectoryOutcome { ApiKeyAdded, TenantNotFound, IdCollision });
outcome_map!(RevokeApiKeyOutcome => DirectoryOutcome { ApiKeyRevoked, ApiKeyNotFound });
outcome_map!(RotateSigningKeyOutcome => DirectoryOutcome {
    SigningKeyRotated(keys), TenantNotFound, IdCollision,
});
outcome_map!(ReserveEmailOutcome => DirectoryOutcome {
    EmailReserved, EmailTaken(entry), TenantNotFound,
});
outcome_map!(DeleteTenantOutcome => DirectoryOutcome { TenantDeleted(tenant), TenantNotFound });
outcome_map!(CreateUserOutcome => AuthOutcome { UserCreated, IdCollision });
outcome_map!(UpdateUserOutcome => AuthOutcome {
    UserUpdated(user), UserNotFound, UserVersionConflict { current },
});
outcome_map!(DeleteUserOutcome => AuthOutcome { UserDeleted { sessions }, UserNotFound });
outcome_map!(CreateSessionOutcome => AuthOutcome { SessionCreated, UserNotFound, IdCollision });
outcome_map!(RevokeSessionOutcome => AuthOutcome { SessionRevoked { already }, SessionNotFound });
outcome_map!(SetTenantSettingsOutcome => MetaOutcome {
    SettingsSet(settings), TenantNotFound, InvalidSetting,
});
outcome_map!(StartSessionOutcome => AuthOutcome {
    SessionCreated, UserNotFound, IdCollision, Limited(limited),
});
outcome_map!(SignInFailedOutcome => AuthOutcome { SignInFailureRecorded, Limited(limited) });

impl From<UserSessionsRevoked> for AuthOutcome {
    fn from(o: UserSessionsRevoked) -> Self {
        Self::SessionsRevoked { revoked: o.revoked }
    }
}

impl FromWire<AuthOutcome> for UserSessionsRevoked {
    fn from_wire(wire: AuthOutcome) -> Option<Self> {
        match wire {
            AuthOutcome::SessionsRevoked { revoked } => Some(Self { revoked }),
            _ => None,
        }
    }
}

impl From<CreateTenantOutcome> for MetaOutcome {
    fn from(o: CreateTenantOutcome) -> Self {
        match o {
            CreateOutcome::Created(t) => Self::TenantCreated(t),
            CreateOutcome::Exists(t) => Self::TenantExists(t),
            CreateOutcome::NotFound => Self::TenantNotFound,
            CreateOutcome::KeyVersionConflict { current } => Self::KeyVersionConflict { current },
            CreateOutcome::MasterKeyConflict(c) => Self::MasterKeyConflict { current: c.current },
            CreateOutcome::InvalidSetting => Self::InvalidSetting,
        }
    }
}

impl FromWire<MetaOutcome> for CreateTenantOutcome {
    fn from_wire(wire: MetaOutcome) -> Option<Self> {
        Some(match wire {
            MetaOutcome::TenantCreated(t) => Self::Created(t),
            MetaOutcome::TenantExists(t) => Self::Exists(t),
            MetaOutcome::TenantNotFound => Self::NotFound,
            MetaOutcome::KeyVersionConflict { current } => Self::KeyVersionConflict { current },
            MetaOutcome::MasterKeyConflict { current } => {
                Self::MasterKeyConflict(MasterKeyConflict { current })
            }
            MetaOutcome::InvalidSetting => Self::InvalidSetting,
            _ => return None,
        })
    }
}

impl From<AddTenantKeyOutcome> for MetaOutcome {
    fn from(o: AddTenantKeyOutcome) -> Self {
        match o {
            AddKeyOutcome::KeyAdded(t) => Self::KeyAdded(t),
            AddKeyOutcome::TenantNotFound => Self::TenantNotFound,
            AddKeyOutcome::KeyVersionConflict { current } => Self::KeyVersionConflict { current },
            AddKeyOutcome::MasterKeyConflict(c) => Self::MasterKeyConflict { current: c.current },
        }
    }
}

impl FromWire<MetaOutcome> for AddTenantKeyOutcome {
    fn from_wire(wire: MetaOutcome) -> Option<Self> {
        Some(match wire {
            MetaOutcome::KeyAdded(t) => Self::KeyAdded(t),
            MetaOutcome::TenantNotFound => Self::TenantNotFound,
            MetaOutcome::KeyVersionConflict { current } => Self::KeyVersionConflict { current },
            MetaOutcome::MasterKeyConflict { current } => {
                Self::MasterKeyConflict(MasterKeyConflict { current })
            }
            _ => return None,
        })
    }
}

impl From<WireVersionSet> for MetaOutcome {
    fn from(o: WireVersionSet) -> Self {
        Self::WireVersion { current: o.current }
    }
}

impl FromWire<MetaOutcome> for WireVersionSet {
    fn from_wire(wire: MetaOutcome) -> Option<Self> {
        match wire {
            MetaOutcome::WireVersion { current } => Some(Self { current }),
            _ => None,
        }
    }
}

impl From<EmailReleased> for DirectoryOutcome {
    fn from(o: EmailReleased) -> Self {
        Self::EmailReleased { existed: o.existed }
    }
}

impl FromWire<DirectoryOutcome> for EmailReleased {
    fn from_wire(wire: DirectoryOutcome) -> Option<Self> {
        match wire {
            DirectoryOutcome::EmailReleased { existed } => Some(Self { existed }),
            _ => None,
        }
    }
}

impl From<EmailReindexed> for DirectoryOutcome {
    fn from(o: EmailReindexed) -> Self {
        Self::EmailReindexed {
            moved: o.moved,
            ambiguous: o.ambiguous,
        }
    }
}

impl FromWire<DirectoryOutcome> for EmailReindexed {
    fn from_wire(wire: DirectoryOutcome) -> Option<Self> {
        match wire {
            DirectoryOutcome::EmailReindexed { moved, ambiguous } => {
                Some(Self { moved, ambiguous })
            }
            _ => None,
        }
    }
}

impl From<EmailsReindexed> for DirectoryOutcome {
    fn from(o: EmailsReindexed) -> Self {
        Self::EmailsReindexed { marked: o.marked }
    }
}

impl FromWire<DirectoryOutcome> for EmailsReindexed {
    fn from_wire(wire: DirectoryOutcome) -> Option<Self> {
        match wire {
            DirectoryOutcome::EmailsReindexed { marked } => Some(Self { marked }),
            _ => None,
        }
    }
}

impl From<RefreshOutcome> for AuthOutcome {
    fn from(o: RefreshOutcome) -> Self {
        Self::Refresh(o)
    }
}

impl FromWire<AuthOutcome> for RefreshOutcome {
    fn from_wire(wire: AuthOutcome) -> Option<Self> {
        match wire {
            AuthOutcome::Refresh(o) => Some(o),
            _ => None,
        }
    }
}

impl From<Purged> for AuthOutcome {
    fn from(o: Purged) -> Self {
        Self::Purged { rows: o.rows }
    }
}

impl FromWire<AuthOutcome> for Purged {
    fn from_wire(wire: AuthOutcome) -> Option<Self> {
        match wire {
            AuthOutcome::Purged { rows } => Some(Self { rows }),
            _ => None,
        }
    }
}

op!(Put => Kv(KvCommand::Put) -> PutOutcome);
op!(Delete => Kv(KvCommand::Delete) -> DeleteOutcome);
op!(CreateTenant => Meta(MetaCommand::CreateTenant) -> CreateTenantOutcome);
op!(AddTenantKey => Meta(MetaCommand::AddTenantKey) -> AddTenantKeyOutcome);
op!(RotateMaster => Meta(MetaCommand::RotateMaster) -> RotateMasterOutcome);
op!(SetSessionPolicy => Meta(MetaCommand::SetSessionPolicy) -> SetSessionPolicyOutcome);
op!(SetWireVersion => Meta(MetaCommand::SetWireVersion) -> WireVersionSet);
op!(AddApiKey => Directory(DirectoryCommand::AddApiKey) -> AddApiKeyOutcome);
op!(RevokeApiKey => Directory(DirectoryCommand::RevokeApiKey) -> RevokeApiKeyOutcome);
op!(RotateSigningKey => Directory(DirectoryCommand::RotateSigningKey) -> RotateSigningKeyOutcome);
op!(ReserveEmail => Directory(DirectoryCommand::ReserveEmail) -> ReserveEmailOutcome);
op!(ReleaseEmail => Directory(DirectoryCommand::ReleaseEmail) -> EmailReleased);
op!(DeleteTenant => Directory(DirectoryCommand::DeleteTenant) -> DeleteTenantOutcome);
op!(ReindexEmail => Directory(DirectoryCommand::ReindexEmail) -> EmailReindexed);
op!(MarkEmailsReindexed => Directory(DirectoryCommand::MarkEmailsReindexed) -> EmailsReindexed);
op!(CreateUser => Auth(AuthCommand::CreateUser) -> CreateUserOutcome);
op!(UpdateUser => Auth(AuthCommand::UpdateUser) -> UpdateUserOutcome);
op!(DeleteUser => Auth(AuthCommand::DeleteUser) -> DeleteUserOutcome);
op!(CreateSession => Auth(AuthCommand::CreateSession) -> CreateSessionOutcome);
op!(Refresh => Auth(AuthCommand::Refresh) -> RefreshOutcome);
op!(RevokeSession => Auth(AuthCommand::RevokeSession) -> RevokeSessionOutcome);
op!(PurgeTenant => Auth(AuthCommand::PurgeTenant) -> Purged);
op!(ChangeUser => Auth(AuthCommand::ChangeUser) -> UpdateUserOutcome);
op!(SetTenantSettings => Meta(MetaCommand::SetTenantSettings) -> SetTenantSettingsOutcome);
op!(RefreshWithin => Auth(AuthCommand::RefreshWithin) -> RefreshOutcome);
op!(RevokeUserSessions => Auth(AuthCommand::RevokeUserSessions) -> UserSessionsRevoked);
op!(StartSession => Auth(AuthCommand::StartSession) -> StartSessionOutcome);
op!(SignInFailed => Auth(AuthCommand::SignInFailed) -> SignInFailedOutcome);
op!(ChangePassword => Auth(AuthCommand::ChangePassword) -> UpdateUserOutcome);

read_op!(Get => KvGet -> Option<KvRecord>, Answer::Kv(r) => r);
read_op!(TenantRef => Tenant -> TenantView,
    Answer::Tenant { tenant, master } => TenantView { tenant, master });
read_op!(GetApiKey => ApiKey -> ApiKeyLookup,
    Answer::ApiKey { view, master } => ApiKeyLookup { view, master });
read_op!(GetSigningKeys => SigningKeys -> SigningKeys, Answer::SigningKeys(k) => k);
read_op!(GetEmail => Email -> Option<EmailEntry>, Answer::Email(e) => e);
read_op!(GetUser => User -> Option<UserRecord>, Answer::User(u) => u);
read_op!(GetSession => Session -> Option<SessionRecord>, Answer::Session(s) => s);
read_op!(ListUserSessions => UserSessions -> Vec<SessionRecord>, Answer::Sessions(s) => s);
read_op!(GetTenantSettings => TenantSettings -> TenantSettings, Answer::TenantSettings(s) => s);
read_op!(GetRates => Rates -> Vec<Option<u64>>, Answer::Rates(r) => r);
read_op!(GetFailedSignIns => FailedSignIns -> Option<FailedSignIns>,
    Answer::FailedSignIns(f) => f);
read_op!(ListUsers => Users -> Vec<UserRecord>, Answer::Users(u) => u);
read_op!(FindEmail => EmailHolders -> Vec<EmailEntry>, Answer::EmailHolders(h) => h);
read_op!(GetEmailsReindexed => EmailsReindexed -> Vec<u64>, Answer::ReindexedGroups(g) => g);

impl From<ListTenants> for Query {
    fn from(_: ListTenants) -> Self {
        Self::Tenants
    }
}

impl Read for ListTenants {
    type Answer = TenantsView;
    fn answer(wire: Answer) -> Option<TenantsView> {
        match wire {
            Answer::Tenants { tenants, master } => Some(TenantsView { tenants, master }),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------
// Dispatch.

/// Applies one command, the one with sequence number `seq` (its entry's index ×
/// 256 + its position in the entry: its KV revision and its events' order), and
/// writes the events it caused into the same batch, with the command's trace if
/// it is a traced one.
///
/// # Errors
/// Reading current state failed or found a corrupt record.
pub fn apply(batch: &mut ApplyBatch<'_>, seq: u64, cmd: &Command) -> Result<Outcome> {
    let (trace, cmd) = match cmd {
        Command::Traced(t) => (Some(&t.trace), t.command.as_ref()),
        other => (None, other),
    };
    let applied = match cmd {
        Command::Kv(c) => apply_kv(batch, seq, c)?.map(Outcome::Kv),
        Command::Meta(c) => apply_meta(batch, c)?.map(Outcome::Meta),
        Command::Directory(c) => apply_directory(batch, c)?.map(Outcome::Directory),
        Command::Auth(c) => apply_auth(batch, c)?.map(Outcome::Auth),
        // The proposer never nests batches or traces (and the decoder refuses
        // them); a nested one changes nothing.
        Command::Batch(_) | Command::Traced(_) => {
            tracing::error!("nested batch or traced entry ignored");
            Applied::quiet(Outcome::None)
        }
    };
    events::sink(batch, seq, trace, &applied.events)?;
    Ok(applied.outcome)
}

fn apply_kv(batch: &mut ApplyBatch<'_>, seq: u64, cmd: &KvCommand) -> Result<Applied<KvOutcome>> {
    Ok(match cmd {
        KvCommand::Put(c) => kv::apply::put(batch, seq, c)?.map(Into::into),
        KvCommand::Delete(c) => kv::apply::delete(batch, c)?.map(Into::into),
    })
}

fn apply_meta(batch: &mut ApplyBatch<'_>, cmd: &MetaCommand) -> Result<Applied<MetaOutcome>> {
    Ok(match cmd {
        MetaCommand::CreateTenant(c) => create_tenant(batch, c)?.map(Into::into),
        MetaCommand::AddTenantKey(c) => tenants::apply::add_key(batch, c, |rows, key| {
            master_key::apply::check_current(rows, key.kek_version, &c.master_fingerprint)
        })?
        .map(Into::into),
        MetaCommand::RotateMaster(c) => Applied::quiet(rotate_master(batch, c)?.into()),
        MetaCommand::SetSessionPolicy(c) => {
            tenants::apply::set_session_policy(batch, c)?.map(Into::into)
        }
        MetaCommand::SetWireVersion(c) => cluster::apply::set(batch, c)?.map(Into::into),
        MetaCommand::SetTenantSettings(c) => {
            tenants::apply::set_settings(batch, c)?.map(Into::into)
        }
    })
}

fn apply_directory(
    batch: &mut ApplyBatch<'_>,
    cmd: &DirectoryCommand,
) -> Result<Applied<DirectoryOutcome>> {
    Ok(match cmd {
        DirectoryCommand::AddApiKey(c) => api_keys::apply::add(batch, c)?.map(Into::into),
        DirectoryCommand::RevokeApiKey(c) => api_keys::apply::revoke(batch, c)?.map(Into::into),
        DirectoryCommand::RotateSigningKey(c) => {
            signing_keys::apply::rotate_key(batch, c)?.map(Into::into)
        }
        DirectoryCommand::ReserveEmail(c) => {
            email_index::apply::reserve_email(batch, c)?.map(Into::into)
        }
        DirectoryCommand::ReleaseEmail(c) => {
            email_index::apply::release_email(batch, c)?.map(Into::into)
        }
        DirectoryCommand::DeleteTenant(c) => tenants::apply::delete(batch, c)?.map(Into::into),
        DirectoryCommand::ReindexEmail(c) => {
            email_index::apply::reindex_email(batch, c)?.map(Into::into)
        }
        DirectoryCommand::MarkEmailsReindexed(c) => {
            email_index::apply::mark_reindexed(batch, c)?.map(Into::into)
        }
    })
}

fn apply_auth(batch: &mut ApplyBatch<'_>, cmd: &AuthCommand) -> Result<Applied<AuthOutcome>> {
    Ok(match cmd {
        AuthCommand::CreateUser(c) => users::apply::create(batch, c)?.map(Into::into),
        AuthCommand::UpdateUser(c) => users::apply::update(batch, c)?.map(Into::into),
        AuthCommand::DeleteUser(c) => users::apply::delete(batch, c)?.map(Into::into),
        AuthCommand::CreateSession(c) => sessions::apply::create(batch, c)?.map(Into::into),
        AuthCommand::Refresh(c) => sessions::apply::refresh(batch, c)?.map(Into::into),
        AuthCommand::RevokeSession(c) => sessions::apply::revoke(batch, c)?.map(Into::into),
        AuthCommand::PurgeTenant(c) => tenants::apply::purge(batch, c)?.map(Into::into),
        AuthCommand::ChangeUser(c) => users::apply::change(batch, c)?.map(Into::into),
        AuthCommand::RefreshWithin(c) => sessions::apply::refresh_within(batch, c)?.map(Into::into),
        AuthCommand::RevokeUserSessions(c) => {
            sessions::apply::revoke_user_sessions(batch, c)?.map(Into::into)
        }
        AuthCommand::StartSession(c) => start_session(batch, c)?.map(Into::into),
        AuthCommand::SignInFailed(c) => sign_in_failed(batch, c)?.map(Into::into),
        AuthCommand::ChangePassword(c) => change_password(batch, c)?.map(Into::into),
    })
}

/// [`StartSession`]: the rate limit check (rate limits), the session
/// (sessions), then the trusted pair and the cleared failures (users).
fn start_session(
    batch: &mut ApplyBatch<'_>,
    cmd: &StartSession,
) -> Result<Applied<StartSessionOutcome>> {
    let tenant = &cmd.create.tenant;
    rate_limits::apply::sweep(batch, cmd.at_ms)?;
    if let Err(limited) = rate_limits::apply::check_all(batch, tenant, &cmd.require, cmd.at_ms)? {
        return Ok(Applied::quiet(StartSessionOutcome::Limited(limited)));
    }
    let applied = sessions::apply::create(batch, &cmd.create)?;
    Ok(match applied.outcome {
        CreateSessionOutcome::SessionCreated => {
            if let Some((pair, until)) = &cmd.trust {
                rate_limits::apply::hold_until(
                    batch,
                    tenant,
                    rate_limits::TRUSTED_PAIR,
                    pair,
                    *until,
                )?;
            }
            users::apply::clear_failures(batch, tenant, &cmd.create.session.user_id)?;
            applied.map(|_| StartSessionOutcome::SessionCreated)
        }
        CreateSessionOutcome::UserNotFound => Applied::quiet(StartSessionOutcome::UserNotFound),
        CreateSessionOutcome::IdCollision => Applied::quiet(StartSessionOutcome::IdCollision),
    })
}

/// [`SignInFailed`]: the buckets (rate limits), then the user's count (users).
fn sign_in_failed(
    batch: &mut ApplyBatch<'_>,
    cmd: &SignInFailed,
) -> Result<Applied<SignInFailedOutcome>> {
    rate_limits::apply::sweep(batch, cmd.at_ms)?;
    let charged = rate_limits::apply::charge_all(batch, &cmd.tenant, &cmd.charges, cmd.at_ms)?;
    let event = match &cmd.user_id {
        Some(user_id) => users::apply::record_failure(
            batch,
            &cmd.tenant,
            user_id,
            cmd.at_ms / 1000,
            cmd.sealed_ip.as_deref(),
        )?,
        None => None,
    };
    let outcome = match charged {
        Ok(()) => SignInFailedOutcome::SignInFailureRecorded,
        Err(limited) => SignInFailedOutcome::Limited(limited),
    };
    Ok(Applied {
        outcome,
        events: event.into_iter().collect(),
    })
}

/// [`ChangePassword`]: the change (users), then, if it applied, every other
/// session of the user revoked (sessions).
fn change_password(
    batch: &mut ApplyBatch<'_>,
    cmd: &ChangePassword,
) -> Result<Applied<UpdateUserOutcome>> {
    let mut applied = users::apply::change(batch, &cmd.change)?;
    if !matches!(applied.outcome, UpdateUserOutcome::UserUpdated(_)) {
        return Ok(applied);
    }
    let u = &cmd.change.update;
    let revoke = RevokeUserSessions {
        tenant: u.tenant.clone(),
        user_id: u.user_id.clone(),
        except: cmd.keep_session.clone(),
        at: u.at,
        reason: "password_changed".to_owned(),
    };
    let revoked = sessions::apply::revoke_user_sessions(batch, &revoke)?;
    applied.events.extend(revoked.events);
    Ok(applied)
}

/// [`CreateTenant`]: the tenant (tenants), admitted by the master key check
/// (master key, which records the first master key), then its first credentials
/// (API keys, signing keys).
fn create_tenant(
    batch: &mut ApplyBatch<'_>,
    cmd: &CreateTenant,
) -> Result<Applied<CreateTenantOutcome>> {
    let tenant = &cmd.tenant;
    let credentials_taken = match cmd.api_key.as_deref() {
        Some(k) => k.tenant_id != tenant.id || api_keys::read::exists(batch, &k.id)?,
        None => false,
    };
    let applied = tenants::apply::create(batch, tenant, credentials_taken, |batch, key| {
        master_key::apply::admit(
            batch,
            key.kek_version,
            &cmd.master_fingerprint,
            tenant.created_at,
        )
    })?;
    if matches!(applied.outcome, CreateOutcome::Created(_)) {
        if let Some(k) = cmd.api_key.as_deref() {
            api_keys::apply::put(batch, k)?;
        }
        if let Some(s) = cmd.signing_key.as_deref() {
            signing_keys::apply::put_first(batch, &tenant.id, s)?;
        }
    }
    Ok(applied)
}

/// [`RotateMaster`]: the master key's version check, the tenants' re-wrap, then
/// the new master key state. A cluster-level change, not a tenant's: no event.
fn rotate_master(batch: &mut ApplyBatch<'_>, cmd: &RotateMaster) -> Result<RotateMasterOutcome> {
    let Some(master) = master_key::read::state(batch)? else {
        // No tenant yet, so nothing to re-wrap: the rotation establishes the master
        // key as version 1.
        if cmd.expected_version == 0
            && cmd.rewrapped.is_empty()
            && tenants::read::list(batch)?.is_empty()
        {
            let state = master_key::rules::first(&cmd.fingerprint, 1, cmd.at);
            master_key::apply::put(batch, &state)?;
            return Ok(RotateMasterOutcome::MasterRotated(state));
        }
        return Ok(RotateMasterOutcome::MasterKeyConflict { current: None });
    };
    let next = match master_key::rules::next_version(&master, cmd.expected_version) {
        Ok(next) => next,
        Err(c) => return Ok(RotateMasterOutcome::MasterKeyConflict { current: c.current }),
    };
    if !tenants::apply::rewrap(batch, &cmd.rewrapped, next)? {
        return Ok(RotateMasterOutcome::RewrapStale);
    }
    let state = master_key::rules::rotated(master, next, &cmd.fingerprint, cmd.at);
    master_key::apply::put(batch, &state)?;
    Ok(RotateMasterOutcome::MasterRotated(state))
}

/// Runs `query` against this replica's state (callers ensure linearizability).
/// Reads that pair records of several rows read them from one RocksDB snapshot.
///
/// # Errors
/// RocksDB read failure or a corrupt record.
pub fn read(state: &GroupState, query: &Query) -> Result<Answer> {
    Ok(match query {
        Query::KvGet(q) => Answer::Kv(kv::read::get(state, q)?),
        Query::Tenant(by) => {
            let view = state.view();
            Answer::Tenant {
                tenant: tenants::read::lookup(&view, by)?,
                master: master_key::read::state(&view)?,
            }
        }
        Query::Tenants => {
            let view = state.view();
            Answer::Tenants {
                tenants: tenants::read::list(&view)?,
                master: master_key::read::state(&view)?,
            }
        }
        Query::ApiKey(q) => {
            let view = state.view();
            let master = master_key::read::state(&view)?;
            let found = match api_keys::read::get(&view, &q.key_id)? {
                Some(key) => tenants::read::get(&view, &key.tenant_id)?
                    .map(|tenant| ApiKeyView { key, tenant }),
                None => None,
            };
            Answer::ApiKey {
                view: found,
                master,
            }
        }
        Query::SigningKeys(q) => Answer::SigningKeys(signing_keys::read::get(state, q)?),
        Query::Email(q) => Answer::Email(email_index::read::get(state, q)?),
        Query::User(q) => Answer::User(users::read::get(state, q)?),
        Query::Session(q) => Answer::Session(sessions::read::get(state, q)?),
        Query::UserSessions(q) => Answer::Sessions(sessions::read::list_for_user(state, q)?),
        Query::TenantSettings(q) => {
            Answer::TenantSettings(tenants::read::settings(state, &q.tenant_id)?)
        }
        Query::Rates(q) => Answer::Rates(rate_limits::read::get(state, q)?),
        Query::FailedSignIns(q) => Answer::FailedSignIns(users::read::failed_sign_ins(state, q)?),
        Query::Users(q) => Answer::Users(users::read::list(&state.view(), q)?),
        Query::EmailHolders(q) => Answer::EmailHolders(email_index::read::find(&state.view(), q)?),
        Query::EmailsReindexed(q) => {
            Answer::ReindexedGroups(email_index::read::reindexed(state, q)?)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Engine;
    use crate::sm::tenants::SessionPolicy;

    fn directory(b: &mut ApplyBatch<'_>, cmd: DirectoryCommand) -> DirectoryOutcome {
        match apply(b, 1, &Command::Directory(cmd)).expect("apply") {
            Outcome::Directory(o) => o,
            other => panic!("{other:?}"),
        }
    }

    fn email_entry(meta: &GroupState, tenant: &str) -> Option<EmailEntry> {
        let q = Query::Email(GetEmail {
            tenant_id: tenant.to_owned(),
            index: b"idx".to_vec(),
        });
        match read(meta, &q).expect("read") {
            Answer::Email(e) => e,
            other => panic!("{other:?}"),
        }
    }

    fn api_key_view(meta: &GroupState, key_id: &str) -> Option<ApiKeyView> {
        let q = Query::ApiKey(GetApiKey {
            key_id: key_id.to_owned(),
        });
        match read(meta, &q).expect("read") {
            Answer::ApiKey { view, .. } => view,
            other => panic!("{other:?}"),
        }
    }

    fn signing_keys(meta: &GroupState, tenant: &str) -> SigningKeys {
        let q = Query::SigningKeys(GetSigningKeys {
            tenant_id: tenant.to_owned(),
        });
        match read(meta, &q).expect("read") {
            Answer::SigningKeys(k) => k,
            other => panic!("{other:?}"),
        }
    }

    fn tenant(id: &str, name: &str) -> TenantRecord {
        TenantRecord {
            id: id.to_owned(),
            name: name.to_owned(),
            region: "eu".to_owned(),
            created_at: 1,
            keys: vec![WrappedKey {
                version: 1,
                kek_version: 1,
                wrapped: vec![1],
                created_at: 1,
            }],
            sessions: SessionPolicy::default(),
        }
    }

    fn api_key(id: &str, tenant_id: &str) -> ApiKeyRecord {
        ApiKeyRecord {
            id: id.to_owned(),
            tenant_id: tenant_id.to_owned(),
            hash: vec![7; 32],
            scopes: vec!["read".to_owned()],
            created_at: 1,
        }
    }

    fn signing(kid: &str) -> SigningKeyRecord {
        SigningKeyRecord {
            kid: kid.to_owned(),
            public: vec![1; 32],
            sealed_private: vec![2; 40],
            created_at: 1,
            retired_at: None,
        }
    }

    fn entry(user: &str) -> EmailEntry {
        EmailEntry {
            user_id: user.to_owned(),
            region: "eu".to_owned(),
            reserved_at: 5,
        }
    }

    fn setup(engine: &Engine) -> GroupState {
        let meta = engine.state(0);
        let mut b = meta.batch();
        for (id, name) in [("ta", "a"), ("tb", "b")] {
            let create = CreateTenant {
                tenant: tenant(id, name),
                master_fingerprint: "fp".to_owned(),
                api_key: Some(Box::new(api_key(&format!("k{id}"), id))),
                signing_key: Some(Box::new(signing(&format!("s{id}")))),
            };
            let out = apply(&mut b, 1, &create.into()).expect("apply");
            assert!(
                matches!(out, Outcome::Meta(MetaOutcome::TenantCreated(_))),
                "{out:?}"
            );
        }
        b.commit().expect("commit");
        meta
    }

    #[test]
    fn email_reservation_is_unique_per_tenant_and_released_only_by_its_holder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = Engine::open(dir.path()).expect("open");
        let meta = setup(&engine);
        let mut b = meta.batch();
        let reserve = |tenant: &str, user: &str, replace: Option<&str>| {
            DirectoryCommand::ReserveEmail(ReserveEmail {
                tenant_id: tenant.to_owned(),
                email_index: b"idx".to_vec(),
                entry: entry(user),
                replace: replace.map(str::to_owned),
            })
        };
        assert_eq!(
            directory(&mut b, reserve("ta", "u1", None)),
            DirectoryOutcome::EmailReserved
        );
        assert_eq!(
            directory(&mut b, reserve("ta", "u1", None)),
            DirectoryOutcome::EmailReserved,
            "idempotent for its holder"
        );
        assert_eq!(
            directory(&mut b, reserve("ta", "u2", None)),
            DirectoryOutcome::EmailTaken(entry("u1"))
        );
        assert_eq!(
            directory(&mut b, reserve("ta", "u3", Some("u9"))),
            DirectoryOutcome::EmailTaken(entry("u1")),
            "takeover only from the named holder"
        );
        assert_eq!(
            directory(&mut b, reserve("tb", "u2", None)),
            DirectoryOutcome::EmailReserved,
            "same email, other tenant"
        );
        assert_eq!(
            directory(&mut b, reserve("nope", "u2", None)),
            DirectoryOutcome::TenantNotFound
        );
        let release = |user: &str| {
            DirectoryCommand::ReleaseEmail(ReleaseEmail {
                tenant_id: "ta".to_owned(),
                email_index: b"idx".to_vec(),
                user_id: user.to_owned(),
            })
        };
        assert_eq!(
            directory(&mut b, release("u2")),
            DirectoryOutcome::EmailReleased { existed: false }
        );
        assert_eq!(
            directory(&mut b, reserve("ta", "u3", Some("u1"))),
            DirectoryOutcome::EmailReserved
        );
        b.commit().expect("commit");
        assert_eq!(email_entry(&meta, "ta"), Some(entry("u3")));
        assert_eq!(email_entry(&meta, "tb"), Some(entry("u2")));
    }

    #[test]
    fn api_keys_belong_to_one_tenant_and_go_with_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = Engine::open(dir.path()).expect("open");
        let meta = setup(&engine);
        assert_eq!(
            api_key_view(&meta, "kta").map(|v| v.tenant.id),
            Some("ta".to_owned())
        );
        let mut b = meta.batch();
        assert_eq!(
            directory(
                &mut b,
                DirectoryCommand::AddApiKey(AddApiKey(api_key("k2", "ta")))
            ),
            DirectoryOutcome::ApiKeyAdded
        );
        assert_eq!(
            directory(
                &mut b,
                DirectoryCommand::AddApiKey(AddApiKey(api_key("k3", "zz")))
            ),
            DirectoryOutcome::TenantNotFound
        );
        assert_eq!(
            directory(
                &mut b,
                DirectoryCommand::RevokeApiKey(RevokeApiKey {
                    tenant_id: "tb".to_owned(),
                    key_id: "k2".to_owned(),
                })
            ),
            DirectoryOutcome::ApiKeyNotFound,
            "tenant b cannot revoke tenant a's key"
        );
        b.commit().expect("commit");
        assert!(api_key_view(&meta, "k2").is_some());

        let mut b = meta.batch();
        let out = directory(
            &mut b,
            DirectoryCommand::DeleteTenant(DeleteTenant {
                tenant_id: "ta".to_owned(),
            }),
        );
        assert!(matches!(out, DirectoryOutcome::TenantDeleted(_)));
        b.commit().expect("commit");
        for k in ["kta", "k2"] {
            assert_eq!(api_key_view(&meta, k), None, "{k}");
        }
        assert!(api_key_view(&meta, "ktb").is_some());
        assert!(signing_keys(&meta, "ta").keys.is_empty());
        assert_eq!(signing_keys(&meta, "tb").keys.len(), 1);
    }

    #[test]
    fn signing_key_rotation_keeps_retired_keys_for_the_token_lifetime() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = Engine::open(dir.path()).expect("open");
        let meta = setup(&engine);
        let rotate = |kid: &str, at: u64| {
            DirectoryCommand::RotateSigningKey(RotateSigningKey {
                tenant_id: "ta".to_owned(),
                key: signing(kid),
                at,
                keep_retired_secs: 900,
            })
        };
        let mut b = meta.batch();
        directory(&mut b, rotate("s2", 1000));
        directory(&mut b, rotate("s3", 1500));
        let out = directory(&mut b, rotate("s4", 2000));
        let DirectoryOutcome::SigningKeyRotated(keys) = out else {
            panic!("unexpected {out:?}");
        };
        let kids: Vec<_> = keys.keys.iter().map(|k| k.kid.as_str()).collect();
        // sta retired at 1000 < 2000 - 900: dropped; s2 retired at 1500: kept.
        assert_eq!(kids, ["s2", "s3", "s4"]);
        assert_eq!(keys.current().map(|k| k.kid.as_str()), Some("s4"));
        assert_eq!(keys.keys[0].retired_at, Some(1500));
        assert_eq!(
            directory(&mut b, rotate("s4", 2100)),
            DirectoryOutcome::IdCollision
        );
    }
}

#[cfg(test)]
mod op_tests {
    use super::*;
    use crate::engine::Engine;

    /// Applies `op` through the wire path (as raft does) and projects the answer.
    fn run<O: Op>(state: &GroupState, seq: u64, op: O) -> O::Outcome {
        let mut b = state.batch();
        let wire = apply(&mut b, seq, &op.into()).expect("apply");
        b.commit().expect("commit");
        O::outcome(wire).expect("the command's own family")
    }

    fn user(id: &str) -> UserRecord {
        UserRecord {
            id: id.to_owned(),
            version: 1,
            created_at: 1,
            updated_at: 1,
            sealed: vec![1],
        }
    }

    #[test]
    fn typed_commands_get_their_own_outcomes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = Engine::open(dir.path()).expect("open").state(1);
        let put = |expected_revision| Put {
            tenant: "t".to_owned(),
            key: b"k".to_vec(),
            value: b"v".to_vec(),
            expected_revision,
        };
        assert_eq!(
            run(&state, 256, put(Some(0))),
            PutOutcome::Written { revision: 256 }
        );
        assert_eq!(
            run(&state, 512, put(Some(0))),
            PutOutcome::RevisionMismatch { current: 256 }
        );
        let create = CreateUser {
            tenant: "t".to_owned(),
            user: user("u"),
        };
        assert_eq!(
            run(&state, 768, create.clone()),
            CreateUserOutcome::UserCreated
        );
        assert_eq!(run(&state, 1024, create), CreateUserOutcome::IdCollision);
        let update = UpdateUser {
            tenant: "t".to_owned(),
            user_id: "u".to_owned(),
            expected_version: 9,
            sealed: vec![2],
            at: 2,
        };
        assert_eq!(
            run(&state, 1280, update),
            UpdateUserOutcome::UserVersionConflict { current: 1 }
        );
        let purge = PurgeTenant {
            tenant: "t".to_owned(),
        };
        assert_eq!(run(&state, 1536, purge), Purged { rows: 2 });
    }

    #[test]
    fn a_wrong_family_answer_is_no_outcome() {
        let auth = Outcome::Auth(AuthOutcome::UserCreated);
        assert_eq!(Put::outcome(auth.clone()), None);
        assert_eq!(Delete::outcome(Outcome::None), None);
        assert_eq!(
            CreateUser::outcome(auth.clone()),
            Some(CreateUserOutcome::UserCreated)
        );
        // The same family, another command's answer.
        assert_eq!(CreateSession::outcome(auth), None);
        let kv = Answer::Kv(None);
        assert_eq!(GetUser::answer(kv.clone()), None);
        assert_eq!(Get::answer(kv), Some(None));
        assert_eq!(
            ListTenants::answer(Answer::Tenants {
                tenants: Vec::new(),
                master: None,
            }),
            Some(TenantsView {
                tenants: Vec::new(),
                master: None,
            })
        );
    }

    #[test]
    fn typed_outcomes_convert_to_the_wire_and_back() {
        let wire: Vec<MetaOutcome> = vec![
            CreateTenantOutcome::NotFound.into(),
            CreateTenantOutcome::MasterKeyConflict(MasterKeyConflict { current: None }).into(),
            AddTenantKeyOutcome::KeyVersionConflict { current: 3 }.into(),
            RotateMasterOutcome::RewrapStale.into(),
        ];
        assert_eq!(
            wire,
            [
                MetaOutcome::TenantNotFound,
                MetaOutcome::MasterKeyConflict { current: None },
                MetaOutcome::KeyVersionConflict { current: 3 },
                MetaOutcome::RewrapStale,
            ]
        );
        assert_eq!(
            CreateTenant::outcome(Outcome::Meta(MetaOutcome::MasterKeyConflict {
                current: None
            })),
            Some(CreateTenantOutcome::MasterKeyConflict(MasterKeyConflict {
                current: None
            }))
        );
        assert_eq!(
            RotateMaster::outcome(Outcome::Meta(MetaOutcome::KeyAdded(TenantRecord {
                id: "t".to_owned(),
                name: "n".to_owned(),
                region: "r".to_owned(),
                created_at: 0,
                keys: Vec::new(),
                sessions: tenants::SessionPolicy::default(),
            }))),
            None
        );
        assert_eq!(
            ReleaseEmail::outcome(Outcome::Directory(DirectoryOutcome::EmailReleased {
                existed: true
            })),
            Some(EmailReleased { existed: true })
        );
    }
}
