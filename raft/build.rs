//! Compiles the peer protocol (`proto/cairn/peer/v1/peer.proto`).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=../proto/cairn/peer/v1/peer.proto");
    tonic_prost_build::configure()
        .compile_protos(&["../proto/cairn/peer/v1/peer.proto"], &["../proto"])?;
    Ok(())
}
