#![no_main]

// A trace file of arbitrary bytes: the header and record decoders (postcard
// over the core's types) and the replay must refuse what is malformed with
// an error, never panic.
libfuzzer_sys::fuzz_target!(|data: &[u8]| veil_mio::trace::fuzz_trace(data));
