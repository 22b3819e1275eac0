//! libFuzzer entry point for the `request_body` target (`cairn_fuzz::request_body` holds the checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cairn_fuzz::request_body::run(data));
