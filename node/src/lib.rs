//! `cairn_node`: one Cairn node as a library — [`run`] serves a node on
//! [`Listeners`] bound beforehand, until a shutdown future resolves — plus the
//! operator commands (`cli`) that the `cairn` binary (`main.rs`) dispatches to.
//!
//! - `service`: the service layer (`core/` and one module per feature); every
//!   method takes the caller ([`service::Call`]) and checks it itself.
//! - `http`, `grpc`: thin adapters over it, each building the `Call` in one place.
//! - `server`: [`run`] and [`Listeners`].
//! - `cli`: `cairn init`, `status`, `keys`, `compact`, `bench`.

pub mod cli;
mod error;
mod grpc;
mod http;
mod server;
mod service;

pub use http::openapi::openapi_json;
pub use server::{run, Listeners};
