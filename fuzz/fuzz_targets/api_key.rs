//! libFuzzer entry point for the `api_key` target (`cairn_fuzz::api_key` holds the checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cairn_fuzz::api_key::run(data));
