//! The cluster's wire version, in `meta`: which log entry formats every node of
//! the cluster decodes, so which a proposer may write.
//!
//! Version 1 is the format before commands carried their trace; version 2 adds
//! [`crate::sm::Command::Traced`] and [`crate::sm::AuthCommand::ChangeUser`];
//! version 3 tenant settings, rate limits, failed sign-ins, the bounded
//! refresh and the revocation of a user's sessions (and their queries); version
//! 4 the email index's re-indexing under the email identity rules. A
//! binary decodes up to [`WIRE_VERSION`]. The cluster's version only moves up,
//! and only when an operator (or `cairn init`, on a new cluster) has checked that
//! every node runs a binary that decodes it: a node proposes traced commands
//! once its own `meta` replica shows version 2, and until then proposes what an
//! older node still reads (a rolling restart from an older binary keeps working).

use serde::{Deserialize, Serialize};

pub mod apply;
pub mod read;

/// The highest wire version this binary decodes and writes.
pub const WIRE_VERSION: u32 = 4;

/// The version of a cluster that never recorded one.
pub const FIRST_WIRE_VERSION: u32 = 1;

/// Raises the cluster's wire version to `version` (never lowers it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetWireVersion {
    pub version: u32,
}

/// What [`SetWireVersion`] left: the cluster's version after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireVersionSet {
    pub current: u32,
}
