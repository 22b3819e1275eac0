fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=../proto/cairn/v1/kv.proto");
    println!("cargo:rerun-if-changed=../proto/cairn/v1/auth.proto");
    tonic_prost_build::configure()
        .build_server(false)
        .compile_protos(
            &["../proto/cairn/v1/kv.proto", "../proto/cairn/v1/auth.proto"],
            &["../proto"],
        )?;
    Ok(())
}
