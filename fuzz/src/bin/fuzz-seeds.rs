//! Writes each fuzz target's seeds into `<dir>/<target>/`, one file per seed, and
//! its dictionary (if it has words) to `<dir>/<target>.dict`:
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
        let words = (target.dict)();
        if !words.is_empty() {
            let path = dir.join(format!("{}.dict", target.name));
            if let Err(e) = std::fs::write(&path, dictionary(&words)) {
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

/// libFuzzer's dictionary format: one quoted word a line, `\`, `"` and
/// non-printable bytes escaped as `\xNN`.
fn dictionary(words: &[Vec<u8>]) -> String {
    let mut out = String::new();
    for word in words {
        out.push('"');
        for &b in word {
            if (b.is_ascii_graphic() && b != b'\\' && b != b'"') || b == b' ' {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("\\x{b:02x}"));
            }
        }
        out.push_str("\"\n");
    }
    out
}
