//! Audit events: the records the events sink writes (`sm::events`) and the reads
//! that list a tenant's. Two shapes: [`EventRecord`], one per event of a traced
//! command (wire version 2), in whichever group applied it (`meta` for tenants
//! and keys, a region's data group for users and sessions); and [`AuditEvent`],
//! the three rows untraced commands write in data groups (wire version 1). The
//! hash chain and retention come with issue 19.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

pub mod apply;
pub mod read;

/// One audit event: ids and an action only (no personal data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub at: u64,
    /// `user.created`, `session.compromised`, …
    pub action: String,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub request_id: Option<String>,
}

/// One event of a traced command: ids, the actor and the request only (no
/// personal data but the client IP, which data-subject deletion anonymises).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    pub at: u64,
    /// The catalog name (`user.created`, `password.changed`, …).
    pub action: String,
    pub actor: Actor,
    pub request_id: Option<String>,
    pub ip: Option<IpAddr>,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    /// The API key or signing key (`kid`) concerned.
    pub key_id: Option<String>,
}

/// Who caused a command (wire version 2, append-only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Actor {
    /// The node itself: background work, never a request.
    System,
    /// The cluster operator (the admin token).
    Operator,
    /// A tenant's API key, by id.
    ApiKey(String),
    /// A caller without credentials.
    Public,
}

impl Actor {
    /// As audit shows it: `system`, `operator`, `api_key:<id>`, `public`.
    #[must_use]
    pub fn label(&self) -> String {
        match self {
            Self::System => "system".to_owned(),
            Self::Operator => "operator".to_owned(),
            Self::ApiKey(id) => format!("api_key:{id}"),
            Self::Public => "public".to_owned(),
        }
    }
}
