//! Cairn cluster configuration: the TOML model, loading, validation and the
//! placement of Raft groups that follows from it.
//!
//! Layout:
//! - [`RawConfig`]: what the operator wrote, parsed strictly (unknown fields refused).
//! - [`ClusterConfig`]: a validated config; only [`RawConfig::validate`] makes one, and it
//!   reports every problem at once, each naming the field it is about.
//! - [`GroupSpec`]: the Raft groups (one `meta` group, one data group per region) and
//!   their voters, derived deterministically from the validated config.
//!
//! This crate is a leaf: it uses no other workspace crate and does no I/O beyond
//! reading the config file.

mod error;
mod model;
mod placement;
mod rate_limits;

pub use error::{ConfigError, ConfigErrors};
pub use model::{
    host_of, is_loopback, BreachedPasswords, ClusterConfig, DebugConfig, HttpConfig, Limits,
    NodeConfig, NodeTls, RaftTuning, RawConfig, RawNode, RawRegion, RawTls, RegionConfig,
    Residency, TlsConfig,
};
pub use placement::{GroupId, GroupKind, GroupSpec, META_GROUP};
pub use rate_limits::{Bucket, RateLimits, RawRateLimits, ACTIONS as RATE_LIMIT_ACTIONS};
