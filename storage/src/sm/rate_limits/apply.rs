//! Charging buckets, trusting pairs and sweeping expired rows.

use super::rules::Gcra;
use super::{Charge, Limited};
use crate::engine::{ApplyBatch, Rows};
use crate::keyspace::{rate_expiry_key, rate_expiry_prefix, rate_key};
use crate::{Result, StorageError};

/// Expired rows each charging command removes: more than any command creates
/// (three), so the backlog of expired rows shrinks whenever buckets are used.
pub const SWEEP: usize = 16;

fn decode_time(bytes: &[u8]) -> Result<u64> {
    let raw: [u8; 8] = bytes.try_into().map_err(|_| StorageError::Corrupt {
        what: "rate limit row",
        detail: format!("{} bytes, not 8", bytes.len()),
    })?;
    Ok(u64::from_be_bytes(raw))
}

/// A rate row's stored time (a bucket's TAT, a trusted pair's end).
///
/// # Errors
/// RocksDB read failure or a corrupt row.
pub fn stored_time(rows: &impl Rows, key: &[u8]) -> Result<Option<u64>> {
    rows.get(key)?.map(|b| decode_time(&b)).transpose()
}

/// Sets rate row `key` to `time`, moving its expiry entry.
fn put_time(batch: &mut ApplyBatch<'_>, key: Vec<u8>, old: Option<u64>, time: u64) -> Result<()> {
    let group = batch.group();
    if let Some(old) = old {
        batch.delete(rate_expiry_key(group, old, &key))?;
    }
    batch.put(rate_expiry_key(group, time, &key), Vec::new())?;
    batch.put(key, time.to_be_bytes().to_vec())
}

/// Whether every bucket of `checks` has a token at `now_ms` (nothing taken).
///
/// # Errors
/// The longest wait among empty buckets, as `Ok(Err(_))`; reading failed.
pub fn check_all(
    batch: &ApplyBatch<'_>,
    tenant: &str,
    checks: &[Charge],
    now_ms: u64,
) -> Result<std::result::Result<(), Limited>> {
    let mut wait = 0;
    for c in checks {
        let key = rate_key(batch.group(), tenant, c.kind, &c.id);
        let tat = stored_time(batch, &key)?;
        if let Err(w) = Gcra::new(c.burst, c.per_minute).check(tat, now_ms) {
            wait = wait.max(w);
        }
    }
    Ok(if wait == 0 {
        Ok(())
    } else {
        Err(Limited {
            retry_after_ms: wait,
        })
    })
}

/// Takes one token from every bucket of `charges` at `now_ms`, or from none
/// of them if any is empty.
///
/// # Errors
/// As [`check_all`].
pub fn charge_all(
    batch: &mut ApplyBatch<'_>,
    tenant: &str,
    charges: &[Charge],
    now_ms: u64,
) -> Result<std::result::Result<(), Limited>> {
    let mut taken = Vec::with_capacity(charges.len());
    let mut wait = 0;
    for c in charges {
        let key = rate_key(batch.group(), tenant, c.kind, &c.id);
        let tat = stored_time(batch, &key)?;
        match Gcra::new(c.burst, c.per_minute).take(tat, now_ms) {
            Ok(next) => taken.push((key, tat, next)),
            Err(w) => wait = wait.max(w),
        }
    }
    if wait > 0 {
        return Ok(Err(Limited {
            retry_after_ms: wait,
        }));
    }
    for (key, old, next) in taken {
        put_time(batch, key, old, next)?;
    }
    Ok(Ok(()))
}

/// Marks the row (`kind`, `id`) as holding until `until_ms` (a trusted pair);
/// a later end replaces an earlier one, never the reverse.
///
/// # Errors
/// Reading failed.
pub fn hold_until(
    batch: &mut ApplyBatch<'_>,
    tenant: &str,
    kind: u8,
    id: &[u8],
    until_ms: u64,
) -> Result<()> {
    let key = rate_key(batch.group(), tenant, kind, id);
    let old = stored_time(batch, &key)?;
    if old.is_some_and(|t| t >= until_ms) {
        return Ok(());
    }
    put_time(batch, key, old, until_ms)
}

/// Removes up to [`SWEEP`] rows that expired by `now_ms` (with their expiry
/// entries); returns how many entries it removed.
///
/// # Errors
/// Reading failed.
pub fn sweep(batch: &mut ApplyBatch<'_>, now_ms: u64) -> Result<usize> {
    let prefix = rate_expiry_prefix(batch.group());
    let due = batch.scan_first(&prefix, SWEEP)?;
    let mut removed = 0;
    for (entry, _) in due {
        let Some((expires, row)) = entry[prefix.len()..].split_first_chunk::<8>() else {
            batch.delete(entry)?;
            continue;
        };
        let expires = u64::from_be_bytes(*expires);
        if expires > now_ms {
            break;
        }
        let row = row.to_vec();
        // A row whose time moved on has a newer entry; this one is stale.
        if stored_time(batch, &row)? == Some(expires) {
            batch.delete(row)?;
        }
        batch.delete(entry)?;
        removed += 1;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::GroupState;
    use crate::keyspace::{row_key, SM_RATE};
    use crate::sm::{self, AuthCommand, AuthOutcome, Command, Outcome, SignInFailed};
    use crate::Engine;

    fn fail(sm: &GroupState, seq: u64, email: &[u8], at_ms: u64) -> AuthOutcome {
        let cmd = Command::Auth(AuthCommand::SignInFailed(SignInFailed {
            tenant: "t".to_owned(),
            user_id: None,
            charges: vec![
                Charge {
                    kind: 1,
                    id: email.to_vec(),
                    burst: 3,
                    per_minute: 6, // a token every 10 s
                },
                Charge {
                    kind: 2,
                    id: [email, b"/ip"].concat(),
                    burst: 2,
                    per_minute: 6,
                },
            ],
            sealed_ip: None,
            at_ms,
        }));
        let mut b = sm.batch();
        let out = match sm::apply(&mut b, seq, &cmd).expect("apply") {
            Outcome::Auth(o) => o,
            other => panic!("{other:?}"),
        };
        b.commit().expect("commit");
        out
    }

    fn rows(sm: &GroupState, tag: u8) -> usize {
        sm.scan(&row_key(1, tag, &[])).expect("scan").len()
    }

    #[test]
    fn failures_drain_every_bucket_together_and_refill() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = Engine::open(dir.path()).expect("open");
        let sm = engine.state(1);
        let t0 = 1_000_000;
        assert_eq!(fail(&sm, 1, b"e", t0), AuthOutcome::SignInFailureRecorded);
        assert_eq!(fail(&sm, 2, b"e", t0), AuthOutcome::SignInFailureRecorded);
        // The pair bucket (burst 2) is empty: nothing is charged, so the email
        // bucket still has its third token.
        let limited = fail(&sm, 3, b"e", t0);
        assert_eq!(
            limited,
            AuthOutcome::Limited(Limited {
                retry_after_ms: 10_000
            })
        );
        assert_eq!(
            fail(&sm, 4, b"e", t0 + 10_000),
            AuthOutcome::SignInFailureRecorded,
            "a request after the wait goes through"
        );
        assert!(matches!(
            fail(&sm, 5, b"e", t0 + 10_000),
            AuthOutcome::Limited(_)
        ));
        assert_eq!(
            fail(&sm, 6, b"other", t0),
            AuthOutcome::SignInFailureRecorded
        );
    }

    /// A spray of distinct emails (the worst case: every bucket is new) keeps
    /// only the buckets still counting: the table stays at about what one
    /// bucket lifetime's worth of requests creates, however long the spray.
    #[test]
    fn a_spray_of_random_emails_leaves_a_bounded_table() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = Engine::open(dir.path()).expect("open");
        let sm = engine.state(1);
        let t0 = 1_000_000;
        // 4,000 failures, one every 100 ms: a bucket counts for 10 s (one
        // token at 6 per minute), so about 100 emails' rows live at once.
        let mut most = 0;
        for i in 0..4_000u64 {
            let email = i.to_be_bytes();
            fail(&sm, i + 1, &email, t0 + i * 100);
            if i % 250 == 0 {
                most = most.max(rows(&sm, SM_RATE));
            }
        }
        let (buckets, expiries) = (
            rows(&sm, SM_RATE),
            rows(&sm, crate::keyspace::SM_RATE_EXPIRY),
        );
        assert_eq!(buckets, expiries, "one expiry entry per row");
        assert!(
            most <= 2 * 101 + 2 * SWEEP,
            "{most} rate rows at most, for ~100 live emails of 2 buckets each"
        );
        // Once the spray stops, the next charges sweep what is left.
        let later = t0 + 4_000 * 100 + 60_000;
        for i in 0..(buckets / SWEEP + 2) as u64 {
            fail(&sm, 30_000 + i, b"late", later);
        }
        assert_eq!(
            rows(&sm, SM_RATE),
            2,
            "only the late email's buckets remain"
        );
    }
}
