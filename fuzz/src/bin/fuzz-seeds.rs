//! Writes each fuzz target's seeds into `<dir>/<target>/`, one file per seed:
//! `fuzz-seeds <dir> [target]`. Run by `scripts/fuzz.sh` before fuzzing, so the
//! seeds are always valid values of the code being fuzzed.

// Links libFuzzer's runtime: in the instrumented build every crate calls its
// coverage hooks, this binary included.
extern crate libfuzzer_sys;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next().map(PathBuf::from) else {
        eprintln!("usage: fuzz-seeds <dir> [target]");
        return ExitCode::FAILURE;
    };
    let only = args.next();
    let mut wrote = false;
    for target in cairn_fuzz::TARGETS {
        if only.as_deref().is_some_and(|name| name != target.name) {
            continue;
        }
        let out = dir.join(target.name);
        if let Err(e) = std::fs::create_dir_all(&out) {
            eprintln!("fuzz-seeds: cannot create {}: {e}", out.display());
            return ExitCode::FAILURE;
        }
        for (name, data) in (target.seeds)() {
            let path = out.join(format!("seed-{name}"));
            if let Err(e) = std::fs::write(&path, data) {
                eprintln!("fuzz-seeds: cannot write {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        }
        wrote = true;
    }
    if !wrote {
        eprintln!("fuzz-seeds: no target named {}", only.unwrap_or_default());
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
