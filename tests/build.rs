//! Compiles the client API's protos (client side) for the tests' gRPC client.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = client_protos()?;
    tonic_prost_build::configure()
        .build_server(false)
        .compile_protos(&protos, &[std::path::PathBuf::from("../proto")])?;
    Ok(())
}

// `client_protos()`: shared by the node and tests build scripts.
include!("../proto/client_protos.rs");
