//! Domain events: what an apply changed, named from the event catalog (SPEC §4), and
//! the one sink that turns them into rows of the same write batch.
//!
//! Every feature's apply returns its outcome and the events it caused
//! ([`Applied`]); `sm::apply` hands the events to [`sink`]. Tenant KV writes are the
//! tenant's data plane and cause none.
//!
//! The sink writes today's audit rows, byte for byte: one for `user.deleted`,
//! `session.revoked` and `session.compromised`, and nothing for the other events
//! yet. Issue 19 fills it in (actor and request id from the caller, the hash
//! chain, the outbox) without touching a feature's apply.

use crate::engine::ApplyBatch;
use crate::sm::audit::{self, AuditEvent};
use crate::Result;

/// An event's name in the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    TenantCreated,
    TenantUpdated,
    TenantDeleted,
    ApiKeyCreated,
    ApiKeyRevoked,
    SigningKeyRotated,
    UserCreated,
    UserUpdated,
    UserDeleted,
    SessionCreated,
    SessionRefreshed,
    SessionRevoked,
    SessionCompromised,
}

impl Action {
    /// The catalog name (`user.created`, …): what audit `?action=` and webhook
    /// subscriptions use.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::TenantCreated => "tenant.created",
            Self::TenantUpdated => "tenant.updated",
            Self::TenantDeleted => "tenant.deleted",
            Self::ApiKeyCreated => "api_key.created",
            Self::ApiKeyRevoked => "api_key.revoked",
            Self::SigningKeyRotated => "signing_key.rotated",
            Self::UserCreated => "user.created",
            Self::UserUpdated => "user.updated",
            Self::UserDeleted => "user.deleted",
            Self::SessionCreated => "session.created",
            Self::SessionRefreshed => "session.refreshed",
            Self::SessionRevoked => "session.revoked",
            Self::SessionCompromised => "session.compromised",
        }
    }
}

/// One domain event: ids only, never personal data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub action: Action,
    /// The tenant it happened in.
    pub tenant: String,
    /// Unix seconds, from the command (chosen by the proposing node); `None` for
    /// commands that carry no time.
    pub at: Option<u64>,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    /// The API key or signing key (`kid`) concerned.
    pub key_id: Option<String>,
    pub request_id: Option<String>,
}

impl Event {
    /// An event of `action` in `tenant`, every other field empty.
    #[must_use]
    pub fn new(action: Action, tenant: &str) -> Self {
        Self {
            action,
            tenant: tenant.to_owned(),
            at: None,
            user_id: None,
            session_id: None,
            key_id: None,
            request_id: None,
        }
    }

    #[must_use]
    pub fn at(mut self, at: u64) -> Self {
        self.at = Some(at);
        self
    }

    #[must_use]
    pub fn user(mut self, user_id: &str) -> Self {
        self.user_id = Some(user_id.to_owned());
        self
    }

    #[must_use]
    pub fn session(mut self, session_id: &str) -> Self {
        self.session_id = Some(session_id.to_owned());
        self
    }

    #[must_use]
    pub fn key(mut self, key_id: &str) -> Self {
        self.key_id = Some(key_id.to_owned());
        self
    }

    #[must_use]
    pub fn request(mut self, request_id: Option<&str>) -> Self {
        self.request_id = request_id.map(str::to_owned);
        self
    }
}

/// What one command's apply decided, and the events it caused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied<O> {
    pub outcome: O,
    pub events: Vec<Event>,
}

impl<O> Applied<O> {
    /// An outcome that changed nothing worth an event (a refusal, a read-only
    /// answer, a data-plane write).
    #[must_use]
    pub fn quiet(outcome: O) -> Self {
        Self {
            outcome,
            events: Vec::new(),
        }
    }

    #[must_use]
    pub fn with(outcome: O, event: Event) -> Self {
        Self {
            outcome,
            events: vec![event],
        }
    }

    /// The same events with the outcome mapped (to its wire family).
    pub fn map<P>(self, f: impl FnOnce(O) -> P) -> Applied<P> {
        Applied {
            outcome: f(self.outcome),
            events: self.events,
        }
    }
}

/// Writes the rows `events` call for into `batch`, for the command with sequence
/// number `seq` (see the module doc: today only the three audit rows).
///
/// # Errors
/// Reading or encoding a row failed.
pub fn sink(batch: &mut ApplyBatch<'_>, seq: u64, events: &[Event]) -> Result<()> {
    for e in events {
        match e.action {
            Action::UserDeleted | Action::SessionRevoked | Action::SessionCompromised => {
                let row = AuditEvent {
                    at: e.at.unwrap_or(0),
                    action: e.action.name().to_owned(),
                    user_id: e.user_id.clone(),
                    session_id: e.session_id.clone(),
                    request_id: e.request_id.clone(),
                };
                audit::apply::append(batch, seq, &e.tenant, &row)?;
            }
            // Issue 19: audit rows for every event, the hash chain, the outbox.
            Action::TenantCreated
            | Action::TenantUpdated
            | Action::TenantDeleted
            | Action::ApiKeyCreated
            | Action::ApiKeyRevoked
            | Action::SigningKeyRotated
            | Action::UserCreated
            | Action::UserUpdated
            | Action::SessionCreated
            | Action::SessionRefreshed => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Engine;

    const ALL: [Action; 13] = [
        Action::TenantCreated,
        Action::TenantUpdated,
        Action::TenantDeleted,
        Action::ApiKeyCreated,
        Action::ApiKeyRevoked,
        Action::SigningKeyRotated,
        Action::UserCreated,
        Action::UserUpdated,
        Action::UserDeleted,
        Action::SessionCreated,
        Action::SessionRefreshed,
        Action::SessionRevoked,
        Action::SessionCompromised,
    ];

    #[test]
    fn the_sink_writes_todays_three_audit_rows_and_nothing_else() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = Engine::open(dir.path()).expect("open");
        let sm = engine.state(1);
        let mut b = sm.batch();
        let events: Vec<Event> = ALL
            .iter()
            .map(|a| {
                Event::new(*a, "t")
                    .at(7)
                    .user("u")
                    .session("s")
                    .key("k")
                    .request(Some("r"))
            })
            .collect();
        sink(&mut b, 42, &events).expect("sink");
        b.commit().expect("commit");
        let rows = audit::read::events(&sm, "t", 100).expect("read");
        let actions: Vec<&str> = rows.iter().map(|(_, e)| e.action.as_str()).collect();
        assert_eq!(
            actions,
            ["user.deleted", "session.revoked", "session.compromised"],
            "in order, one row each (n = 0, 1, 2 under sequence 42)"
        );
        assert!(rows.iter().all(|(seq, _)| *seq == 42));
        assert_eq!(
            rows[0].1,
            AuditEvent {
                at: 7,
                action: "user.deleted".to_owned(),
                user_id: Some("u".to_owned()),
                session_id: Some("s".to_owned()),
                request_id: Some("r".to_owned()),
            }
        );
    }

    #[test]
    fn catalog_names_are_distinct_and_dotted() {
        let names: std::collections::BTreeSet<&str> = ALL.iter().map(|a| a.name()).collect();
        assert_eq!(names.len(), ALL.len());
        assert!(names.iter().all(|n| n.split('.').count() == 2));
    }
}
