//! Applying KV commands.

use super::rules::guard;
use super::{Delete, DeleteOutcome, KvRecord, Put, PutOutcome};
use crate::engine::{ApplyBatch, Rows};
use crate::keyspace::kv_key;
use crate::sm::events::Applied;
use crate::Result;

fn current(batch: &ApplyBatch<'_>, key: &[u8]) -> Result<Option<KvRecord>> {
    batch.decode("kv record", key)
}

/// Applies a [`Put`] at `revision`.
///
/// # Errors
/// Reading the current value failed or found a corrupt record.
pub fn put(batch: &mut ApplyBatch<'_>, revision: u64, cmd: &Put) -> Result<Applied<PutOutcome>> {
    let k = kv_key(batch.group(), &cmd.tenant, &cmd.key);
    let current = current(batch, &k)?;
    if let Some(current) = guard(current.map(|r| r.revision), cmd.expected_revision) {
        return Ok(Applied::quiet(PutOutcome::RevisionMismatch { current }));
    }
    let record = KvRecord {
        revision,
        value: cmd.value.clone(),
    };
    batch.put_record("kv record", k, &record)?;
    Ok(Applied::quiet(PutOutcome::Written { revision }))
}

/// Applies a [`Delete`].
///
/// # Errors
/// Reading the current value failed or found a corrupt record.
pub fn delete(batch: &mut ApplyBatch<'_>, cmd: &Delete) -> Result<Applied<DeleteOutcome>> {
    let k = kv_key(batch.group(), &cmd.tenant, &cmd.key);
    let current = current(batch, &k)?;
    if let Some(current) = guard(current.as_ref().map(|r| r.revision), cmd.expected_revision) {
        return Ok(Applied::quiet(DeleteOutcome::RevisionMismatch { current }));
    }
    if current.is_some() {
        batch.delete(k)?;
    }
    Ok(Applied::quiet(DeleteOutcome::Deleted {
        existed: current.is_some(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sm::kv::{read, Get};
    use crate::Engine;

    fn put_cmd(tenant: &str, key: &str, value: &str, expected: Option<u64>) -> Put {
        Put {
            tenant: tenant.to_owned(),
            key: key.as_bytes().to_vec(),
            value: value.as_bytes().to_vec(),
            expected_revision: expected,
        }
    }

    fn get(tenant: &str, key: &str) -> Get {
        Get {
            tenant: tenant.to_owned(),
            key: key.as_bytes().to_vec(),
        }
    }

    #[test]
    fn compare_and_set_within_and_across_batches() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = Engine::open(dir.path()).expect("open");
        let sm = engine.state(1);
        let mut b = sm.batch();
        let out = |a: Applied<PutOutcome>| {
            assert!(a.events.is_empty(), "KV writes cause no event");
            a.outcome
        };
        assert_eq!(
            out(put(&mut b, 5, &put_cmd("t", "k", "v1", Some(0))).expect("apply")),
            PutOutcome::Written { revision: 5 }
        );
        // Same batch: sees the pending write.
        assert_eq!(
            out(put(&mut b, 6, &put_cmd("t", "k", "v2", Some(0))).expect("apply")),
            PutOutcome::RevisionMismatch { current: 5 }
        );
        assert_eq!(
            out(put(&mut b, 7, &put_cmd("t", "k", "v3", Some(5))).expect("apply")),
            PutOutcome::Written { revision: 7 }
        );
        b.set_applied(b"a7").expect("applied");
        b.commit().expect("commit");
        let rec = read::get(&sm, &get("t", "k"))
            .expect("get")
            .expect("present");
        assert_eq!((rec.revision, rec.value.as_slice()), (7, b"v3".as_slice()));
        assert_eq!(
            read::get(&sm, &get("u", "k")).expect("get"),
            None,
            "other tenant"
        );

        let mut b = sm.batch();
        let del = Delete {
            tenant: "t".to_owned(),
            key: b"k".to_vec(),
            expected_revision: Some(6),
        };
        assert_eq!(
            delete(&mut b, &del).expect("apply").outcome,
            DeleteOutcome::RevisionMismatch { current: 7 }
        );
        b.commit().expect("commit");
        assert!(read::get(&sm, &get("t", "k")).expect("get").is_some());
    }
}
