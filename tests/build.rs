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
        .build_server(false)
        .compile_protos(PROTOS, &["../proto"])?;
    Ok(())
}
