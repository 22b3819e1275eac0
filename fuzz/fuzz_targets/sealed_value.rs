//! libFuzzer entry point for the `sealed_value` target (`cairn_fuzz::sealed_value` holds the checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cairn_fuzz::sealed_value::run(data));
