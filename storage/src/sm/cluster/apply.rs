//! Applying [`SetWireVersion`].

use super::{read, SetWireVersion, WireVersionSet};
use crate::engine::{ApplyBatch, Rows};
use crate::keyspace::wire_version_key;
use crate::sm::events::Applied;
use crate::Result;

/// Raises the version if `cmd` names a higher one; a lower or equal one changes
/// nothing. Whether every node decodes it was checked before proposing (a
/// decision every replica makes alike, whatever its binary supports). A
/// cluster-level change, not a tenant's: no event.
///
/// # Errors
/// Reading or writing the row failed.
pub fn set(batch: &mut ApplyBatch<'_>, cmd: &SetWireVersion) -> Result<Applied<WireVersionSet>> {
    let current = read::wire_version(batch)?;
    if cmd.version <= current {
        return Ok(Applied::quiet(WireVersionSet { current }));
    }
    let key = wire_version_key(batch.group());
    batch.put_record("wire version", key, &cmd.version)?;
    Ok(Applied::quiet(WireVersionSet {
        current: cmd.version,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Engine;

    #[test]
    fn the_version_only_moves_up() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = Engine::open(dir.path()).expect("open");
        let meta = engine.state(0);
        assert_eq!(read::wire_version(&meta).expect("read"), 1, "absent: 1");
        let mut b = meta.batch();
        let set_to = |b: &mut ApplyBatch<'_>, version| {
            set(b, &SetWireVersion { version }).expect("set").outcome
        };
        assert_eq!(set_to(&mut b, 2), WireVersionSet { current: 2 });
        assert_eq!(set_to(&mut b, 1), WireVersionSet { current: 2 });
        assert_eq!(set_to(&mut b, 0), WireVersionSet { current: 2 });
        b.commit().expect("commit");
        assert_eq!(read::wire_version(&meta).expect("read"), 2);
    }
}
