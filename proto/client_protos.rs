// Included by `node/build.rs` and `tests/build.rs`: the list of client API protos.
// (An `include!`d file: an inner `//!` doc is not allowed here.)

/// The client API: every `.proto` in `proto/cairn/v1` (one per feature, all in
/// package `cairn.v1`), in name order, so a new feature's file needs no edit here.
fn client_protos() -> Result<Vec<std::path::PathBuf>, Box<dyn std::error::Error>> {
    let dir = std::path::Path::new("../proto/cairn/v1");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut protos = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "proto") {
            println!("cargo:rerun-if-changed={}", path.display());
            protos.push(path);
        }
    }
    protos.sort();
    Ok(protos)
}
