//! Compiles `src/altstack.c` and links its object into the fuzz binaries: passed
//! as an object, not an archive, because nothing refers to its constructor and
//! a linker drops unreferenced archive members.

fn main() {
    println!("cargo:rerun-if-changed=src/altstack.c");
    let objects = cc::Build::new()
        .file("src/altstack.c")
        .compile_intermediates();
    for object in objects {
        println!("cargo:rustc-link-arg-bins={}", object.display());
    }
}
