//! Audit events in a region's data group: the record the events sink writes
//! (`sm::events`) and the read that lists a tenant's events. Today three events
//! write rows; the hash chain and retention come with issue 19.

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
