//! libFuzzer entry point for the `records` target (`cairn_fuzz::records` holds the checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cairn_fuzz::records::run(data));
