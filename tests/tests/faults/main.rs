//! Faults, black-box: each test boots a cluster of its own, because it kills,
//! pauses, cuts off, restarts or wipes nodes, gives them their own topology, or
//! reads their data dirs with the nodes stopped. One module per topic; a new
//! fault scenario is a new file here and a `mod` line below.
//!
//! What needs no fault runs on the shared cluster of the `api` binary.

mod abuse;
mod audit_events;
mod chaos;
mod data_dirs;
mod encryption;
mod failover;
mod leases;
mod legacy_fixture;
mod peer_attacks;
mod readiness;
mod regions;
mod restarts;
mod transport;
