//! libFuzzer entry point for the `peer_certificate` target (`cairn_fuzz::peer_certificate` holds the checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cairn_fuzz::peer_certificate::run(data));
