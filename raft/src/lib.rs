//! Cairn consensus: every Raft group of a node, on openraft 0.9 over the `storage`
//! engine, with a gRPC peer network shared by all groups.
//!
//! Layout:
//! - [`types`]: the openraft type config over the state machine's opaque wire
//!   enums (`cairn_storage::sm`).
//! - [`log_store`]: `RaftLogStorage` over [`cairn_storage::GroupLog`].
//! - [`state_machine`]: `RaftStateMachine` over [`cairn_storage::GroupState`].
//! - [`network`]: the peer client (one connection per peer, tagged with the group).
//! - [`server`]: the peer gRPC service that routes messages to the local groups,
//!   after checking that the sender is the node its certificate names.
//! - [`tls`]: certificates, keys and CA bundle (reloadable), the rustls configs
//!   of every port, and the SPIFFE identity of a node certificate.
//! - [`listener`]: the accept loop of every port (connection cap, TLS handshake,
//!   peer admission by certificate).
//! - [`node`]: [`RaftNode`], which owns the groups and gives the rest of the node
//!   leader-transparent writes, linearizable reads, init and status.
//! - [`relay`]: client requests relayed whole to a hard-pinned group's
//!   members by a node outside its region.
//! - `read_batch`: concurrent linearizable reads share leadership confirmations.
//! - `propose_batch`: concurrent writes to a group share a Raft entry.

// openraft's storage traits return `openraft::StorageError` by value (224 bytes);
// our helpers that feed those traits return it too rather than box and unbox.
#![allow(clippy::result_large_err)]

mod batch;
pub mod error;
mod forward_batch;
mod lease;
pub mod listener;
pub mod log_store;
pub mod network;
pub mod node;
mod propose_batch;
mod read_batch;
pub mod relay;
pub mod server;
pub mod state_machine;
pub mod status;
pub mod tls;
pub mod types;

pub mod proto {
    #![allow(clippy::all, clippy::pedantic)]
    tonic::include_proto!("cairn.peer.v1");
}

pub use error::{InitError, RaftNodeError};
pub use node::RaftNode;
pub use status::{GroupStatus, PeerProgress};
pub use types::TypeConfig;
