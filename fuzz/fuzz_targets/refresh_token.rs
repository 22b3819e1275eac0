//! libFuzzer entry point for the `refresh_token` target (`cairn_fuzz::refresh_token` holds the checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cairn_fuzz::refresh_token::run(data));
