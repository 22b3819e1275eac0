//! `cairn_node`: one Cairn node as a library — [`run`] serves a node on
//! [`Listeners`] bound beforehand, until a shutdown future resolves — plus the
//! operator commands (`cli`) that the `cairn` binary (`main.rs`) dispatches to.
//!
//! - `service`: the service layer (`core/` and one module per feature); every
//!   method takes the caller ([`service::Call`]) and checks it itself.
//! - `http`, `grpc`: thin adapters over it, each building the `Call` in one place.
//! - `server`: [`run`] and [`Listeners`].
//! - `workers`: background loops (the email index's re-indexing).
//! - `cli`: `cairn init`, `status`, `keys`, `compact`, `bench`.

pub mod cli;
mod error;
mod grpc;
mod http;
mod relay;
mod server;
mod service;
mod workers;

pub use http::openapi::openapi_json;
pub use server::{run, Listeners};

/// The request body decoder as the HTTP routes use it, and the body limit,
/// for the fuzz target `request_body` (`cairn-fuzz`); not an API.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::http::extract::{decode_request_body, RequestBody};
    pub use crate::service::MAX_BODY_BYTES;
}
