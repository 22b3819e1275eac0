/// Messages carrying a secret (password, API key, token) or an email: their
/// `Debug` is written by hand in `src/grpc/auth.rs`, never printing those.
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
    println!("cargo:rerun-if-changed=../proto/cairn/v1/kv.proto");
    println!("cargo:rerun-if-changed=../proto/cairn/v1/auth.proto");
    tonic_prost_build::configure()
        .build_client(false)
        .skip_debug(REDACTED)
        .compile_protos(
            &["../proto/cairn/v1/kv.proto", "../proto/cairn/v1/auth.proto"],
            &["../proto"],
        )?;
    Ok(())
}
