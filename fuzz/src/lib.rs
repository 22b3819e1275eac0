//! Cairn's fuzz targets: the decoders that take bytes from outside (bearer
//! tokens, access tokens, sealed values, stored records, peer messages), each as
//! a plain function that panics when a property fails.
//!
//! Layout:
//! - [`refresh_token`], [`api_key`]: the opaque bearer token formats (`crypto/src/token.rs`).
//! - [`jwt`]: access-token verification and signing (`crypto/src/jwt.rs`).
//! - [`sealed_value`]: opening sealed values and unwrapping data keys
//!   (`crypto/src/envelope.rs`, `crypto/src/keywrap.rs`).
//! - [`peer_certificate`]: the node id a peer's certificate names
//!   (`raft/src/tls.rs`).
//! - [`records`]: `codec` decoding of every stored record, log entry, wire enum
//!   and peer message.
//! - [`request_body`]: every HTTP route's JSON request body, through the node's
//!   own extractor (`node/src/http/extract.rs`).
//! - [`spec`]: the token formats restated from their docs, as oracles.
//! - [`input`]: the byte layout of the structured targets' inputs.
//!
//! Each target module has `run(data)`, the fuzz entry point, and `seeds()`, inputs
//! built with the code under test. `fuzz_targets/*.rs` hand `run` to libFuzzer,
//! `src/bin/fuzz-seeds.rs` writes the seeds, and `scripts/fuzz.sh` builds both with
//! coverage instrumentation and runs them. The tests below replay every seed and
//! every saved crash (`fuzz/regressions/<target>/`) in the ordinary test run.
//!
//! `cairn_node` is a dependency for its `#[doc(hidden)]` `fuzzing` module only;
//! `node` never depends on this crate.

pub mod api_key;
pub mod input;
pub mod jwt;
pub mod peer_certificate;
pub mod records;
pub mod refresh_token;
pub mod request_body;
pub mod sealed_value;
pub mod spec;

// One value of every stored record and wire type, maintained with the golden
// encoding tests (`records` uses them as seeds). `values.rs` names `crate::samples`.
#[path = "../../storage/tests/golden/samples.rs"]
mod samples;
#[path = "../../raft/tests/golden/values.rs"]
mod values;

/// A fuzz target: its name (the binary's and the corpus directory's), its entry
/// point, its seeds, and the words of its format for libFuzzer's dictionary.
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]),
    pub seeds: fn() -> Vec<(String, Vec<u8>)>,
    pub dict: fn() -> Vec<Vec<u8>>,
}

/// No dictionary: binary formats with no words in them.
fn no_words() -> Vec<Vec<u8>> {
    Vec::new()
}

/// Every target, in the order `scripts/fuzz.sh` runs them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "refresh_token",
        run: refresh_token::run,
        seeds: refresh_token::seeds,
        dict: refresh_token::dict,
    },
    Target {
        name: "api_key",
        run: api_key::run,
        seeds: api_key::seeds,
        dict: api_key::dict,
    },
    Target {
        name: "jwt",
        run: jwt::run,
        seeds: jwt::seeds,
        dict: jwt::dict,
    },
    Target {
        name: "sealed_value",
        run: sealed_value::run,
        seeds: sealed_value::seeds,
        dict: no_words,
    },
    Target {
        name: "records",
        run: records::run,
        seeds: records::seeds,
        dict: no_words,
    },
    Target {
        name: "peer_certificate",
        run: peer_certificate::run,
        seeds: peer_certificate::seeds,
        dict: no_words,
    },
    Target {
        name: "request_body",
        run: request_body::run,
        seeds: request_body::seeds,
        dict: request_body::dict,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Every seed passes its target's checks: a seed that broke a property would
    /// be a finding before any fuzzing.
    #[test]
    fn every_seed_passes_its_target() {
        for target in TARGETS {
            let seeds = (target.seeds)();
            assert!(!seeds.is_empty(), "{} has no seeds", target.name);
            for (name, data) in seeds {
                let result = std::panic::catch_unwind(|| (target.run)(&data));
                assert!(result.is_ok(), "{}: seed {name} fails", target.name);
            }
        }
    }

    /// Inputs that once crashed a target, kept after the fix (file names are
    /// libFuzzer's `crash-<sha1>`).
    #[test]
    fn saved_crashes_stay_fixed() {
        // The runtime value (cargo sets it for test runs), as in the golden tests.
        let root = std::env::var_os("CARGO_MANIFEST_DIR")
            .map_or_else(
                || std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")),
                std::path::PathBuf::from,
            )
            .join("regressions");
        for target in TARGETS {
            let Ok(dir) = std::fs::read_dir(root.join(target.name)) else {
                continue;
            };
            for file in dir {
                let path = file.expect("read the regressions dir").path();
                let data = std::fs::read(&path).expect("read a saved crash");
                let result = std::panic::catch_unwind(|| (target.run)(&data));
                assert!(
                    result.is_ok(),
                    "{} fails again on {}",
                    target.name,
                    path.display()
                );
            }
        }
    }

    #[test]
    fn target_names_are_the_binaries() {
        let manifest = include_str!("../Cargo.toml");
        for target in TARGETS {
            assert!(
                manifest.contains(&format!(
                    "name = \"{}\"\npath = \"fuzz_targets/{}.rs\"",
                    target.name, target.name
                )),
                "{} has no [[bin]] in fuzz/Cargo.toml",
                target.name
            );
        }
    }
}
