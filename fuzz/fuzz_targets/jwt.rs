//! libFuzzer entry point for the `jwt` target (`cairn_fuzz::jwt` holds the checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cairn_fuzz::jwt::run(data));
