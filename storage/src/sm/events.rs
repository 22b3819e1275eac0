//! Domain events: what an apply changed, named from the event catalog (SPEC §4), and
//! the one sink that turns them into rows of the same write batch.
//!
//! Every feature's apply returns its outcome and the events it caused
//! ([`Applied`]); `sm::apply` hands the events to [`sink`]. Tenant KV writes are the
//! tenant's data plane and cause none.
//!
//! What the sink writes depends on the command's [`Trace`]:
//!
//! - A traced command ([`super::Command::Traced`], wire version 2) writes one
//!   [`EventRecord`] per event: the action, the actor, the request id and client
//!   IP from the service's `Call`, and the ids it concerns.
//! - An untraced command (wire version 1: a log written before the cluster was
//!   finalized at version 2, or a proposer that has not seen the version yet)
//!   writes the audit rows it always wrote, byte for byte: one [`AuditEvent`] for
//!   `user.deleted`, `session.revoked` and `session.compromised`, nothing for the
//!   other events.
//!
//! The hash chain and the webhook outbox (issue 19) plug in here, without
//! touching a feature's apply.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::engine::ApplyBatch;
use crate::sm::audit::{self, Actor, AuditEvent, EventRecord};
use crate::Result;

/// Who caused a command, under which request, and when: chosen by the proposing
/// node, carried in the log by [`super::Command::Traced`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trace {
    pub actor: Actor,
    pub request_id: Option<String>,
    pub ip: Option<IpAddr>,
    /// Unix seconds at the proposer.
    pub at: u64,
}

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
    PasswordChanged,
    SessionCreated,
    SessionRefreshed,
    SessionRevoked,
    SessionCompromised,
    UserSignInFailed,
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
            Self::PasswordChanged => "password.changed",
            Self::SessionCreated => "session.created",
            Self::SessionRefreshed => "session.refreshed",
            Self::SessionRevoked => "session.revoked",
            Self::SessionCompromised => "session.compromised",
            Self::UserSignInFailed => "user.sign_in_failed",
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
/// number `seq`, traced by `trace` or not (see the module doc).
///
/// # Errors
/// Reading or encoding a row failed.
pub fn sink(
    batch: &mut ApplyBatch<'_>,
    seq: u64,
    trace: Option<&Trace>,
    events: &[Event],
) -> Result<()> {
    for (n, e) in (0u32..).zip(events) {
        match trace {
            Some(trace) => {
                let record = EventRecord {
                    at: e.at.unwrap_or(trace.at),
                    action: e.action.name().to_owned(),
                    actor: trace.actor.clone(),
                    request_id: trace.request_id.clone().or_else(|| e.request_id.clone()),
                    ip: trace.ip,
                    user_id: e.user_id.clone(),
                    session_id: e.session_id.clone(),
                    key_id: e.key_id.clone(),
                };
                audit::apply::record(batch, seq, n, &e.tenant, &record)?;
            }
            None => legacy_row(batch, seq, e)?,
        }
    }
    Ok(())
}

/// The audit row an untraced command wrote for `e` before events had actors.
fn legacy_row(batch: &mut ApplyBatch<'_>, seq: u64, e: &Event) -> Result<()> {
    match e.action {
        Action::UserDeleted | Action::SessionRevoked | Action::SessionCompromised => {
            let row = AuditEvent {
                at: e.at.unwrap_or(0),
                action: e.action.name().to_owned(),
                user_id: e.user_id.clone(),
                session_id: e.session_id.clone(),
                request_id: e.request_id.clone(),
            };
            audit::apply::append(batch, seq, &e.tenant, &row)
        }
        Action::TenantCreated
        | Action::TenantUpdated
        | Action::TenantDeleted
        | Action::ApiKeyCreated
        | Action::ApiKeyRevoked
        | Action::SigningKeyRotated
        | Action::UserCreated
        | Action::UserUpdated
        | Action::PasswordChanged
        | Action::SessionCreated
        | Action::SessionRefreshed
        | Action::UserSignInFailed => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Engine;

    const ALL: [Action; 15] = [
        Action::TenantCreated,
        Action::TenantUpdated,
        Action::TenantDeleted,
        Action::ApiKeyCreated,
        Action::ApiKeyRevoked,
        Action::SigningKeyRotated,
        Action::UserCreated,
        Action::UserUpdated,
        Action::UserDeleted,
        Action::PasswordChanged,
        Action::SessionCreated,
        Action::SessionRefreshed,
        Action::SessionRevoked,
        Action::SessionCompromised,
        Action::UserSignInFailed,
    ];

    #[test]
    fn untraced_the_sink_writes_the_three_legacy_audit_rows_and_nothing_else() {
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
        sink(&mut b, 42, None, &events).expect("sink");
        b.commit().expect("commit");
        assert!(audit::read::records(&sm, "t", 100)
            .expect("read")
            .is_empty());
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
    fn traced_the_sink_writes_one_record_per_event_with_the_trace() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = Engine::open(dir.path()).expect("open");
        let sm = engine.state(1);
        let mut b = sm.batch();
        let trace = Trace {
            actor: Actor::ApiKey("ck1".to_owned()),
            request_id: Some("req-1".to_owned()),
            ip: Some("192.0.2.7".parse().expect("ip")),
            at: 99,
        };
        let events: Vec<Event> = ALL.iter().map(|a| Event::new(*a, "t").user("u")).collect();
        sink(&mut b, 42, Some(&trace), &events).expect("sink");
        // An event's own time wins over the trace's; its own request id loses.
        let own = Event::new(Action::SessionCompromised, "t")
            .at(7)
            .request(Some("other"));
        sink(&mut b, 43, Some(&trace), &[own]).expect("sink");
        b.commit().expect("commit");
        assert!(
            audit::read::events(&sm, "t", 100).expect("read").is_empty(),
            "no legacy rows for a traced command"
        );
        let rows = audit::read::records(&sm, "t", 100).expect("read");
        let names: Vec<&str> = rows.iter().map(|(_, r)| r.action.as_str()).collect();
        let mut expected: Vec<&str> = ALL.iter().map(|a| a.name()).collect();
        expected.push("session.compromised");
        assert_eq!(names, expected, "one record per event, in order");
        assert!(rows[..ALL.len()].iter().all(|(seq, _)| *seq == 42));
        assert_eq!(
            rows[0].1,
            EventRecord {
                at: 99,
                action: "tenant.created".to_owned(),
                actor: Actor::ApiKey("ck1".to_owned()),
                request_id: Some("req-1".to_owned()),
                ip: trace.ip,
                user_id: Some("u".to_owned()),
                session_id: None,
                key_id: None,
            }
        );
        let last = &rows[ALL.len()];
        assert_eq!((last.0, last.1.at), (43, 7));
        assert_eq!(last.1.request_id.as_deref(), Some("req-1"));
        assert_eq!(Actor::ApiKey("ck1".to_owned()).label(), "api_key:ck1");
    }

    #[test]
    fn catalog_names_are_distinct_and_dotted() {
        let names: std::collections::BTreeSet<&str> = ALL.iter().map(|a| a.name()).collect();
        assert_eq!(names.len(), ALL.len());
        assert!(names.iter().all(|n| n.split('.').count() == 2));
    }
}
