#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| agx_fuzz::spirv(data));
