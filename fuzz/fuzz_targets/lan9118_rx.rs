#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| veil_lan9118::fuzzing::rx_fifos(data));
