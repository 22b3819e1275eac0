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

/// The client API, one file per feature (all in package `cairn.v1`).
const PROTOS: &[&str] = &[
    "../proto/cairn/v1/kv.proto",
    "../proto/cairn/v1/tenants.proto",
    "../proto/cairn/v1/api_keys.proto",
    "../proto/cairn/v1/signing_keys.proto",
    "../proto/cairn/v1/users.proto",
    "../proto/cairn/v1/sessions.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    tonic_prost_build::configure()
        .build_client(false)
        .skip_debug(REDACTED)
        .compile_protos(PROTOS, &["../proto"])?;
    Ok(())
}
