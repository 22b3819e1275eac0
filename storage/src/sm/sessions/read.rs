//! Reading sessions.

use super::{GetSession, ListUserSessions, SessionRecord};
use crate::engine::Rows;
use crate::keyspace::{session_key, user_sessions_prefix};
use crate::Result;

/// # Errors
/// RocksDB read failure or a corrupt record.
pub fn get(rows: &impl Rows, q: &GetSession) -> Result<Option<SessionRecord>> {
    rows.decode(
        "session",
        &session_key(rows.group(), &q.tenant, q.session_id.as_bytes()),
    )
}

/// Every session of a user, by session id.
///
/// # Errors
/// RocksDB read failure or a corrupt record.
pub fn list_for_user(rows: &impl Rows, q: &ListUserSessions) -> Result<Vec<SessionRecord>> {
    let prefix = user_sessions_prefix(rows.group(), &q.tenant, &q.user_id);
    let mut out = Vec::new();
    for (k, _) in rows.scan(&prefix)? {
        let sid = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
        let session = get(
            rows,
            &GetSession {
                tenant: q.tenant.clone(),
                session_id: sid,
            },
        )?;
        if let Some(s) = session {
            out.push(s);
        }
    }
    Ok(out)
}
