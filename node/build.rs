//! Compiles the client API's protos (server side), with a hand-written `Debug`
//! for the messages that carry a secret.

/// Messages carrying a secret (password, API key, token) or an email: their
/// `Debug` is written by hand in `src/grpc/<feature>.rs`, never printing those.
const REDACTED: &[&str] = &[
    ".cairn.v1.CreateTenantResponse",
    ".cairn.v1.CreateApiKeyResponse",
    ".cairn.v1.CreateUserRequest",
    ".cairn.v1.UpdateUserRequest",
    ".cairn.v1.User",
    ".cairn.v1.SignInRequest",
    ".cairn.v1.SignInResponse",
    ".cairn.v1.RefreshRequest",
    ".cairn.v1.RefreshResponse",
    ".cairn.v1.IntrospectRequest",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = client_protos()?;
    tonic_prost_build::configure()
        .build_client(false)
        .skip_debug(REDACTED)
        .compile_protos(&protos, &[std::path::PathBuf::from("../proto")])?;
    Ok(())
}

// `client_protos()`: shared by the node and tests build scripts.
include!("../proto/client_protos.rs");
