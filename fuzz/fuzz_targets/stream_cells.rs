#![no_main]

// Whole 514-byte cells on the circuit streams of an established link, raw or
// sealed on a real circuit (see `veil_sim::fuzzing::stream_cells`). The
// mutator and crossover keep inputs a whole number of cells, so mutations
// change cells rather than shift every later cell's boundary.

libfuzzer_sys::fuzz_target!(|data: &[u8]| veil_sim::fuzzing::stream_cells(data));

libfuzzer_sys::fuzz_mutator!(|data: &mut [u8], size: usize, max_size: usize, seed: u32| {
    veil_sim::fuzzing::mutate_cells(data, size, max_size, seed, &mut |bytes, size, max| {
        libfuzzer_sys::fuzzer_mutate(bytes, size, max)
    })
});

libfuzzer_sys::fuzz_crossover!(|one: &[u8], two: &[u8], out: &mut [u8], seed: u32| {
    veil_sim::fuzzing::cross_cells(one, two, out, seed)
});
