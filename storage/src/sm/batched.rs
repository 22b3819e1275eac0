//! How a batch's elements decode: one level deep, a nested batch refused.
//!
//! [`Command::Batch`] holds `Vec<Command>` and [`Outcome::Batch`] holds
//! `Vec<Outcome>`, so the derived decoders would recurse once per nested batch
//! header: two bytes of input per level, from a peer or a log entry, and a few
//! kilobytes overflow the stack (found by the `records` fuzz target). Batches are
//! never nested (raft's proposal batching builds one level, and the receiver of a
//! forwarded batch refuses one), so their elements decode through the mirrors
//! below instead: the same variants at the same indices, so the same bytes, except
//! that the batch variant's index decodes to [`Nested`], which refuses without
//! reading anything. No decoder here calls itself: depth is bounded by the types.
//!
//! Rule when appending a variant to [`Command`] or [`Outcome`]: append it to its
//! mirror too, in the same position (the exhaustive matches below fail to compile
//! until then).
//!
//! [`Command::Traced`] wraps one command: its inner command decodes through
//! [`leaf`], a third mirror that refuses both a batch and another traced command.
//! So the deepest entry is a batch of traced commands, each around one feature's
//! command: three levels, fixed by the types.

use serde::de::{Deserialize, Deserializer, Error as _};

use super::{
    AuthCommand, AuthOutcome, Command, DirectoryCommand, DirectoryOutcome, KvCommand, KvOutcome,
    MetaCommand, MetaOutcome, Outcome, Traced,
};

/// A batch element: [`Command`] variant for variant, the batch refused.
#[derive(serde::Deserialize)]
#[serde(rename = "Command")]
enum BatchedCommand {
    Kv(KvCommand),
    Meta(MetaCommand),
    Directory(DirectoryCommand),
    Auth(AuthCommand),
    Batch(Nested),
    Traced(Traced),
}

/// A traced command's inner command: [`Command`] variant for variant, a batch and
/// a traced command refused.
#[derive(serde::Deserialize)]
#[serde(rename = "Command")]
enum LeafCommand {
    Kv(KvCommand),
    Meta(MetaCommand),
    Directory(DirectoryCommand),
    Auth(AuthCommand),
    Batch(Nested),
    Traced(NestedTrace),
}

/// A batch's result: [`Outcome`] variant for variant, the batch refused.
#[derive(serde::Deserialize)]
#[serde(rename = "Outcome")]
enum BatchedOutcome {
    None,
    Kv(KvOutcome),
    Meta(MetaOutcome),
    Directory(DirectoryOutcome),
    Auth(AuthOutcome),
    Batch(Nested),
}

/// The batch variant met inside a batch: an error, decided before its contents
/// are read.
enum Nested {}

impl<'de> Deserialize<'de> for Nested {
    fn deserialize<D: Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Err(D::Error::custom(
            "a batch nested in a batch (batches are one level deep)",
        ))
    }
}

/// A traced command met inside a traced command: an error, decided before its
/// contents are read.
enum NestedTrace {}

impl<'de> Deserialize<'de> for NestedTrace {
    fn deserialize<D: Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Err(D::Error::custom(
            "a traced command inside a traced command (a trace wraps one command)",
        ))
    }
}

/// Decodes [`Traced::command`] (`deserialize_with` there).
pub(super) fn leaf<'de, D: Deserializer<'de>>(d: D) -> Result<Box<Command>, D::Error> {
    Ok(Box::new(match LeafCommand::deserialize(d)? {
        LeafCommand::Kv(c) => Command::Kv(c),
        LeafCommand::Meta(c) => Command::Meta(c),
        LeafCommand::Directory(c) => Command::Directory(c),
        LeafCommand::Auth(c) => Command::Auth(c),
        LeafCommand::Batch(never) => match never {},
        LeafCommand::Traced(never) => match never {},
    }))
}

/// Decodes [`Command::Batch`]'s elements (`deserialize_with` there).
pub(super) fn commands<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Command>, D::Error> {
    let items = Vec::<BatchedCommand>::deserialize(d)?;
    Ok(items
        .into_iter()
        .map(|item| match item {
            BatchedCommand::Kv(c) => Command::Kv(c),
            BatchedCommand::Meta(c) => Command::Meta(c),
            BatchedCommand::Directory(c) => Command::Directory(c),
            BatchedCommand::Auth(c) => Command::Auth(c),
            BatchedCommand::Batch(never) => match never {},
            BatchedCommand::Traced(t) => Command::Traced(t),
        })
        .collect())
}

/// Decodes [`Outcome::Batch`]'s elements (`deserialize_with` there).
pub(super) fn outcomes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Outcome>, D::Error> {
    let items = Vec::<BatchedOutcome>::deserialize(d)?;
    Ok(items
        .into_iter()
        .map(|item| match item {
            BatchedOutcome::None => Outcome::None,
            BatchedOutcome::Kv(o) => Outcome::Kv(o),
            BatchedOutcome::Meta(o) => Outcome::Meta(o),
            BatchedOutcome::Directory(o) => Outcome::Directory(o),
            BatchedOutcome::Auth(o) => Outcome::Auth(o),
            BatchedOutcome::Batch(never) => match never {},
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::super::audit::Actor;
    use super::super::email_index::ReleaseEmail;
    use super::super::events::Trace;
    use super::super::kv::Put;
    use super::super::tenants::{PurgeTenant, SetSessionPolicy};
    use super::*;
    use crate::codec;

    /// One command of each family; the exhaustive match makes a variant appended
    /// to [`Command`] fail to compile here until it has a sample (and a mirror).
    fn commands_of_each_variant() -> Vec<Command> {
        let all = vec![
            Command::Kv(KvCommand::Put(Put {
                tenant: "t".to_owned(),
                key: b"k".to_vec(),
                value: b"v".to_vec(),
                expected_revision: Some(3),
            })),
            Command::Meta(MetaCommand::SetSessionPolicy(SetSessionPolicy {
                tenant_id: "t".to_owned(),
                idle_timeout_secs: Some(60),
                absolute_timeout_secs: None,
            })),
            Command::Directory(DirectoryCommand::ReleaseEmail(ReleaseEmail {
                tenant_id: "t".to_owned(),
                email_index: vec![7; 4],
                user_id: "u".to_owned(),
            })),
            Command::Auth(AuthCommand::PurgeTenant(PurgeTenant {
                tenant: "t".to_owned(),
            })),
            Command::Batch(Vec::new()),
            Command::Traced(traced(Command::Kv(KvCommand::Delete(
                super::super::kv::Delete {
                    tenant: "t".to_owned(),
                    key: b"k".to_vec(),
                    expected_revision: None,
                },
            )))),
        ];
        for c in &all {
            match c {
                Command::Kv(_)
                | Command::Meta(_)
                | Command::Directory(_)
                | Command::Auth(_)
                | Command::Batch(_)
                | Command::Traced(_) => {}
            }
        }
        all
    }

    fn traced(command: Command) -> Traced {
        Traced {
            trace: Trace {
                actor: Actor::Operator,
                request_id: Some("r".to_owned()),
                ip: None,
                at: 1,
            },
            command: Box::new(command),
        }
    }

    /// As [`commands_of_each_variant`], for [`Outcome`].
    fn outcomes_of_each_variant() -> Vec<Outcome> {
        let all = vec![
            Outcome::None,
            Outcome::Kv(KvOutcome::Written { revision: 9 }),
            Outcome::Meta(MetaOutcome::RewrapStale),
            Outcome::Directory(DirectoryOutcome::EmailReleased { existed: true }),
            Outcome::Auth(AuthOutcome::Purged { rows: 2 }),
            Outcome::Batch(Vec::new()),
        ];
        for o in &all {
            match o {
                Outcome::None
                | Outcome::Kv(_)
                | Outcome::Meta(_)
                | Outcome::Directory(_)
                | Outcome::Auth(_)
                | Outcome::Batch(_) => {}
            }
        }
        all
    }

    /// `prefix` repeated `levels` times, then `last`: the fuzzer's input shape.
    fn nest(prefix: [u8; 2], levels: usize, last: [u8; 2]) -> Vec<u8> {
        let mut bytes = prefix.repeat(levels);
        bytes.extend_from_slice(&last);
        bytes
    }

    /// Runs `f` on a thread with a small stack, so that a recursive decoder
    /// overflows it long before the fuzzer's 4000-byte input is consumed.
    fn on_small_stack(f: impl FnOnce() + Send + 'static) {
        std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(f)
            .expect("spawn")
            .join()
            .expect("the decode neither panicked nor overflowed");
    }

    #[test]
    fn one_level_batches_round_trip_as_before() {
        let leaves: Vec<Command> = commands_of_each_variant()
            .into_iter()
            .filter(|c| !matches!(c, Command::Batch(_)))
            .collect();
        let batch = Command::Batch(leaves.clone());
        let bytes = codec::encode("t", &batch).expect("encode");
        // The same bytes as the elements with the batch's index and length before.
        let mut expected = vec![4, u8::try_from(leaves.len()).expect("a few")];
        for c in &leaves {
            expected.extend(codec::encode("t", c).expect("encode"));
        }
        assert_eq!(bytes, expected);
        assert_eq!(
            codec::decode::<Command>("t", &bytes).expect("decode"),
            batch
        );
        for c in commands_of_each_variant() {
            let bytes = codec::encode("t", &c).expect("encode");
            assert_eq!(codec::decode::<Command>("t", &bytes).expect("decode"), c);
        }

        let leaves: Vec<Outcome> = outcomes_of_each_variant()
            .into_iter()
            .filter(|o| !matches!(o, Outcome::Batch(_)))
            .collect();
        let batch = Outcome::Batch(leaves.clone());
        let bytes = codec::encode("t", &batch).expect("encode");
        let mut expected = vec![5, 5];
        for o in &leaves {
            expected.extend(codec::encode("t", o).expect("encode"));
        }
        assert_eq!(bytes, expected);
        assert_eq!(
            codec::decode::<Outcome>("t", &bytes).expect("decode"),
            batch
        );
        for o in outcomes_of_each_variant() {
            let bytes = codec::encode("t", &o).expect("encode");
            assert_eq!(codec::decode::<Outcome>("t", &bytes).expect("decode"), o);
        }
    }

    #[test]
    fn a_nested_batch_is_a_decode_error_not_a_stack_overflow() {
        on_small_stack(|| {
            let refused = |what: &str, result: crate::Result<()>| {
                let err = result.expect_err(what).to_string();
                assert!(err.contains("one level deep"), "{what}: {err}");
            };
            let command = |b: &[u8]| codec::decode::<Command>("t", b).map(drop);
            let outcome = |b: &[u8]| codec::decode::<Outcome>("t", b).map(drop);
            // The fuzzer's finding: 2000 batch headers of one element each.
            refused("command", command(&nest([4, 1], 2000, [4, 0])));
            refused("outcome", outcome(&nest([5, 1], 2000, [5, 0])));
            // Two levels, as an encoder would write them.
            let two = Command::Batch(vec![Command::Batch(Vec::new())]);
            refused(
                "command",
                command(&codec::encode("t", &two).expect("encode")),
            );
            let two = Outcome::Batch(vec![Outcome::Batch(vec![Outcome::None])]);
            refused(
                "outcome",
                outcome(&codec::encode("t", &two).expect("encode")),
            );
            // Inside a forwarded batch (a peer's `Vec<Command>`).
            let mut forwarded = vec![1];
            forwarded.extend(nest([4, 1], 2000, [4, 0]));
            refused(
                "forwarded",
                codec::decode::<Vec<Command>>("t", &forwarded).map(drop),
            );
            // A trace around a batch, or around a trace, at any depth.
            let around_batch = Command::Traced(traced(Command::Batch(Vec::new())));
            let bytes = codec::encode("t", &around_batch).expect("encode");
            let err = command(&bytes)
                .expect_err("trace around a batch")
                .to_string();
            assert!(err.contains("one level deep"), "{err}");
            let twice =
                Command::Traced(traced(Command::Traced(traced(Command::Batch(Vec::new())))));
            let bytes = codec::encode("t", &twice).expect("encode");
            let err = command(&bytes).expect_err("trace in a trace").to_string();
            assert!(err.contains("a trace wraps one command"), "{err}");
            let in_batch = Command::Batch(vec![Command::Traced(traced(Command::Traced(traced(
                Command::Batch(Vec::new()),
            ))))]);
            let bytes = codec::encode("t", &in_batch).expect("encode");
            assert!(command(&bytes).is_err());
            // An unknown variant index inside a batch is refused as before.
            assert!(command(&[4, 1, 6]).is_err());
            assert!(outcome(&[5, 1, 6]).is_err());
        });
    }
}
