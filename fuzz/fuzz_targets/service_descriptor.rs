#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| veil_sim::fuzzing::service_descriptor(data));
