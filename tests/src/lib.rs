//! Shared support for Cairn's integration tests, which run real `cairn node`
//! processes on loopback ports with real data dirs in temporary directories.
//!
//! - [`cluster`] — [`TestCluster`] (the processes, their config and data dirs)
//!   and [`ClusterClient`] (HTTP helpers, gRPC channels, the CLI).
//! - `process` (private) — a node process that dies with the test process.
//! - [`shared`] — the one cluster the `api` tests share, booted on first use.
//! - [`api`] — the [`api::Api`] trait over HTTP and gRPC, so a scenario runs over
//!   both transports.
//! - [`jwt`] — token helpers (verify against a JWKS, forge, refresh generations).
//! - [`peer`] — an attacker's client of a node's peer port (raw TLS, any
//!   certificate, any `from`) and the certificates it forges.
//! - [`chaos`], [`linearizability`] — the chaos run and its checker.
//!
//! The `cairn` binary is found via `CAIRN_BIN`, or next to the test executable's
//! target directory (`cargo build --workspace --bins` builds it; `scripts/test.sh`
//! does).

pub mod api;
pub mod chaos;
pub mod cluster;
pub mod jwt;
pub mod linearizability;
pub mod peer;
mod process;
pub mod shared;

/// Generated gRPC clients for the `cairn.v1` API (KV and auth).
pub mod proto {
    #![allow(clippy::all, clippy::pedantic)]
    tonic::include_proto!("cairn.v1");
}

pub use cluster::{
    cairn_bin, files_containing, open_db, ClusterClient, NodeAddrs, TestCluster, TOKEN,
};
