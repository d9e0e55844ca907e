//! Runs every fuzz entry point over thousands of random and mutated inputs,
//! so that the fuzz targets are compiled and exercised in every CI run.

use chacha20::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use std::path::{Path, PathBuf};

use veil_sim::fuzzing;

fn inputs(seed: u64, count: usize, max_len: usize, seeds: &[&[u8]]) -> Vec<Vec<u8>> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    (0..count)
        .map(|i| {
            // Half random bytes, half mutations of a valid input.
            if i % 2 == 0 || seeds.is_empty() {
                let len = (rng.next_u32() as usize) % max_len;
                let mut v = vec![0u8; len];
                rng.fill_bytes(&mut v);
                v
            } else {
                let mut v = seeds[i % seeds.len()].to_vec();
                let flips = 1 + rng.next_u32() % 4;
                for _ in 0..flips {
                    if v.is_empty() {
                        break;
                    }
                    let at = (rng.next_u32() as usize) % v.len();
                    v[at] ^= 1 << (rng.next_u32() % 8);
                }
                if rng.next_u32() % 4 == 0 {
                    let cut = (rng.next_u32() as usize) % (v.len() + 1);
                    v.truncate(cut);
                }
                v
            }
        })
        .collect()
}

/// The hand-made inputs of each target: the bases the random tests below
/// mutate, and the first files of each corpus (`write_seed_corpora`).
fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let named = |list: Vec<Vec<u8>>| -> Vec<(String, Vec<u8>)> {
        list.into_iter()
            .enumerate()
            .map(|(i, s)| (format!("seed-{i}"), s))
            .collect()
    };
    match target {
        "frame" => named(vec![
            vec![2, 0, 0, 0, 0, 0, 0, 0, 9],
            vec![4],
            vec![5, 1],
            vec![6, 0, 0],
        ]),
        "hello" => {
            let id = veil_core::identity::Identity::from_secret_bytes([5; 32]);
            named(vec![veil_core::link::LinkHello::new(&id, &[1; 32], 16_000)
                .emit()
                .to_vec()])
        }
        "descriptor" => named(vec![
            fuzzing::descriptor_seed(),
            fuzzing::introduced_descriptor_seed(),
        ]),
        "service_descriptor" => named(vec![
            fuzzing::service_descriptor_seed(),
            fuzzing::largest_service_descriptor_seed(),
            fuzzing::intro_claim_seed(),
        ]),
        // Raw bytes, and a marked first message (top bit of the first
        // byte) with 5 bytes of padding, then a forged message 3.
        "link_input" => named(vec![
            [&[3u8][..], &[7; 48], &[0, 164], &[9; 164]].concat(),
            [
                &[0x83u8][..],
                &[7; 32],
                &[0, 5],
                &[1; 5],
                &[0, 164],
                &[9; 164],
            ]
            .concat(),
        ]),
        "established_link_input" => named(vec![[&[0u8, 40][..], &[1; 40]].concat()]),
        "stream_cells" => fuzzing::stream_cells_seeds()
            .into_iter()
            .map(|(name, s)| (format!("seed-{name}"), s))
            .collect(),
        "cell" => named(vec![vec![
            0x80u8, 0, 0, 1, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 5,
        ]]),
        "hop_handshake" => named(vec![[&[0u8, 1, 0, 48][..], &[7; 48]].concat()]),
        "message_fragments" => named(vec![[
            &[29u8][..],
            &[9; 16],
            &[0, 0, 0, 5, 0, 0, 0, 0],
            b"hello",
        ]
        .concat()]),
        // The start of a real trace: its header and first records.
        "trace" => {
            let trace = std::fs::read(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("traces/five-nodes-node1.vtrace"),
            )
            .expect("a committed trace");
            named(vec![trace[..trace.len().min(4096)].to_vec()])
        }
        _ => Vec::new(),
    }
}

fn seed_bytes(target: &str) -> Vec<Vec<u8>> {
    seeds(target).into_iter().map(|(_, s)| s).collect()
}

fn as_slices(seeds: &[Vec<u8>]) -> Vec<&[u8]> {
    seeds.iter().map(|s| &s[..]).collect()
}

#[test]
fn frame_parser_survives_random_input() {
    let valid = seed_bytes("frame");
    for input in inputs(1, 5_000, 1_200, &as_slices(&valid)) {
        fuzzing::frame(&input);
    }
}

#[test]
fn hello_parser_survives_random_input() {
    let valid = seed_bytes("hello");
    for input in inputs(2, 3_000, 200, &as_slices(&valid)) {
        fuzzing::hello(&input);
    }
}

#[test]
fn descriptor_verifier_survives_random_input() {
    let valid = seed_bytes("descriptor");
    for input in inputs(3, 3_000, 400, &as_slices(&valid)) {
        fuzzing::descriptor(&input);
    }
}

#[test]
fn service_descriptor_verifier_survives_random_input() {
    let valid = seed_bytes("service_descriptor");
    for input in inputs(11, 3_000, 700, &as_slices(&valid)) {
        fuzzing::service_descriptor(&input);
    }
}

#[test]
fn noise_reader_survives_random_input() {
    for input in inputs(4, 2_000, 300, &[]) {
        fuzzing::noise_read(&input);
    }
}

#[test]
fn link_handshake_input_survives_random_input() {
    let plausible = seed_bytes("link_input");
    for input in inputs(5, 2_000, 600, &as_slices(&plausible)) {
        fuzzing::link_input(&input);
    }
}

#[test]
fn established_link_survives_random_input() {
    let plausible = seed_bytes("established_link_input");
    for input in inputs(6, 2_000, 600, &as_slices(&plausible)) {
        fuzzing::established_link_input(&input);
    }
}

#[test]
fn stream_cells_survive_random_input() {
    let seeds = seed_bytes("stream_cells");
    for input in inputs(9, 1_000, 514 * 4, &as_slices(&seeds)) {
        fuzzing::stream_cells(&input);
    }
}

/// The stream harness reaches past the circuit layer: a sealed message is
/// delivered and acknowledged over the circuit (the client recognises the
/// answer), an `EXTEND` to the linked peer makes `b` send a `CREATE` on,
/// and the same cells unsealed deliver nothing.
#[test]
fn sealed_stream_cells_reach_messages_and_extends() {
    let seeds: std::collections::HashMap<_, _> =
        fuzzing::stream_cells_seeds().into_iter().collect();
    let run = fuzzing::stream_cells_run(&seeds["sealed-message"]);
    assert_eq!(run.messages, 1, "{run:?}");
    assert!(run.recognised >= 1, "{run:?}");
    let run = fuzzing::stream_cells_run(&seeds["sealed-two-fragments"]);
    assert_eq!(run.messages, 1, "{run:?}");
    let run = fuzzing::stream_cells_run(&seeds["sealed-extend-to-peer"]);
    assert!(run.other_cells >= 1, "{run:?}");
    // The seed names the circuit id b's generator picks for the EXTEND.
    let run = fuzzing::stream_cells_run(&seeds["extend-then-far-side-relay"]);
    assert_eq!(run.relayed, 1, "{run:?}");
    let mut unsealed = seeds["sealed-message"].clone();
    unsealed[4] &= !fuzzing::SEALED;
    let run = fuzzing::stream_cells_run(&unsealed);
    assert_eq!((run.messages, run.recognised), (0, 0), "{run:?}");
    // Every input starts from the same state: the same input twice does
    // the same thing.
    for seed in seeds.values() {
        assert_eq!(
            fuzzing::stream_cells_run(seed),
            fuzzing::stream_cells_run(seed)
        );
    }
}

/// The stream target's mutator and crossover keep inputs whole cells.
#[test]
fn stream_cell_mutations_keep_cell_boundaries() {
    const CELL: usize = 514;
    let mut rng = ChaCha20Rng::seed_from_u64(10);
    // A stand-in for libFuzzer's byte mutator: flips a byte, sometimes
    // shrinks.
    let mut flip = |bytes: &mut [u8], size: usize, _max: usize| {
        if size > 0 {
            bytes[size / 2] ^= 0x5a;
        }
        size.saturating_sub(size % 3)
    };
    let mut buf = vec![0u8; CELL * 8];
    let mut size = 100;
    for round in 0..5_000u32 {
        let max_size = [300, CELL, CELL * 3, CELL * 8][(rng.next_u32() % 4) as usize];
        let seed = rng.next_u32();
        size = fuzzing::mutate_cells(&mut buf, size, max_size, seed, &mut flip);
        assert!(size <= max_size, "round {round}");
        if max_size >= CELL {
            assert!(
                size > 0 && size.is_multiple_of(CELL),
                "round {round}: {size}"
            );
        }
        let one = buf[..size].to_vec();
        let two = vec![3u8; CELL * (rng.next_u32() % 4) as usize];
        let mut out = vec![0u8; max_size];
        let n = fuzzing::cross_cells(&one, &two, &mut out, seed);
        assert!(n <= max_size);
        if max_size >= CELL && (one.len() >= CELL || two.len() >= CELL) {
            assert!(n > 0 && n.is_multiple_of(CELL), "round {round}: {n}");
        }
    }
}

#[test]
fn cell_parsers_survive_random_input() {
    let relay = seed_bytes("cell");
    for input in inputs(7, 3_000, 600, &as_slices(&relay)) {
        fuzzing::cell(&input);
    }
}

#[test]
fn hop_handshake_survives_random_input() {
    let create = seed_bytes("hop_handshake");
    for input in inputs(8, 1_000, 520, &as_slices(&create)) {
        fuzzing::hop_handshake(&input);
    }
}

#[test]
fn message_fragments_survive_random_input() {
    // One valid single-fragment message: id, total 5, offset 0, 5 bytes.
    let valid = seed_bytes("message_fragments");
    for input in inputs(9, 2_000, 1_200, &as_slices(&valid)) {
        fuzzing::message_fragments(&input);
    }
}

#[test]
fn control_frame_parser_survives_random_input() {
    // The committed corpus (a send, a message, a status then listen) as
    // the valid inputs the mutations start from.
    let dir = fuzz_dir().join("corpus").join("control_frame");
    let valid: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .expect("the control_frame corpus")
        .map(|entry| std::fs::read(entry.expect("a directory entry").path()).expect("a file"))
        .collect();
    for input in inputs(14, 2_000, 1_200, &as_slices(&valid)) {
        veil_node::control_frame::fuzz_frames(&input);
    }
}

// ---------------------------------------------------------------------------
// The committed corpora (`fuzz/corpus/<target>/`), replayed.

/// A fuzz target's entry function.
type Entry = fn(&[u8]);

/// Every fuzz target (each `[[bin]]` of `fuzz/Cargo.toml`) and the entry
/// function it calls.
const TARGETS: &[(&str, Entry)] = &[
    ("frame", fuzzing::frame),
    ("hello", fuzzing::hello),
    ("descriptor", fuzzing::descriptor),
    ("service_descriptor", fuzzing::service_descriptor),
    ("noise_read", fuzzing::noise_read),
    ("link_input", fuzzing::link_input),
    ("established_link_input", fuzzing::established_link_input),
    ("cell", fuzzing::cell),
    ("hop_handshake", fuzzing::hop_handshake),
    ("message_fragments", fuzzing::message_fragments),
    ("stream_cells", fuzzing::stream_cells),
    ("lan9118_rx", veil_lan9118::fuzzing::rx_fifos),
    ("trace", veil_mio::trace::fuzz_trace),
    ("control_frame", veil_node::control_frame::fuzz_frames),
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The `[[bin]]` names of `fuzz/Cargo.toml`.
fn fuzz_targets() -> Vec<String> {
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("fuzz/Cargo.toml");
    let mut names = Vec::new();
    let mut in_bin = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
        } else if let Some(value) = line.strip_prefix("name") {
            if in_bin {
                let value = value.trim_start().trim_start_matches('=').trim();
                names.push(value.trim_matches('"').to_string());
            }
        }
    }
    names
}

#[test]
fn every_fuzz_target_has_a_replayed_corpus() {
    let mut listed: Vec<&str> = TARGETS.iter().map(|(name, _)| *name).collect();
    let mut bins = fuzz_targets();
    listed.sort_unstable();
    bins.sort_unstable();
    assert_eq!(
        listed, bins,
        "TARGETS in tests/tests/sim/fuzz_entries.rs must name every [[bin]] of fuzz/Cargo.toml"
    );
    for name in bins {
        let dir = fuzz_dir().join("corpus").join(&name);
        let files = std::fs::read_dir(&dir).map_or(0, |d| d.count());
        assert!(
            files > 0,
            "fuzz target {name} has no corpus in {}: run .ci/fuzz-campaign",
            dir.display()
        );
    }
}

/// Runs every file of `fuzz/corpus/<target>/` through the target's entry
/// function; fails, naming the files, if any panics.
fn replay(target: &str) {
    let (_, entry) = TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .expect("a listed target");
    let dir = fuzz_dir().join("corpus").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    let started = std::time::Instant::now();
    let mut failed = Vec::new();
    for path in &files {
        let bytes = std::fs::read(path).expect("a corpus file");
        let outcome = std::panic::catch_unwind(|| entry(&bytes));
        if outcome.is_err() {
            failed.push(path.display().to_string());
        }
    }
    eprintln!(
        "{target}: replayed {} corpus inputs in {:.2?}",
        files.len(),
        started.elapsed()
    );
    assert!(
        failed.is_empty(),
        "{} corpus input(s) of {target} panicked:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

macro_rules! replay_tests {
    ($($test:ident => $target:literal,)*) => {
        $(
            #[test]
            fn $test() {
                replay($target);
            }
        )*

        /// The replay tests above cover every target.
        #[test]
        fn every_target_has_a_replay_test() {
            let mut covered = vec![$($target),*];
            let mut listed: Vec<&str> = TARGETS.iter().map(|(name, _)| *name).collect();
            covered.sort_unstable();
            listed.sort_unstable();
            assert_eq!(covered, listed);
        }
    };
}

replay_tests! {
    corpus_frame => "frame",
    corpus_hello => "hello",
    corpus_descriptor => "descriptor",
    corpus_service_descriptor => "service_descriptor",
    corpus_noise_read => "noise_read",
    corpus_link_input => "link_input",
    corpus_established_link_input => "established_link_input",
    corpus_cell => "cell",
    corpus_hop_handshake => "hop_handshake",
    corpus_message_fragments => "message_fragments",
    corpus_stream_cells => "stream_cells",
    corpus_lan9118_rx => "lan9118_rx",
    corpus_trace => "trace",
    corpus_control_frame => "control_frame",
}

/// Writes the hand-made seeds into the corpora (`fuzz/corpus/<target>/seed-*`),
/// for a new target or a fresh start; the campaign grows and minimises them
/// from there. Run by hand:
/// `cargo test -p veil-sim --test sim fuzz_entries::write_seed_corpora -- --ignored`.
#[test]
#[ignore = "writes files; run by hand"]
fn write_seed_corpora() {
    for (target, _) in TARGETS {
        let dir = fuzz_dir().join("corpus").join(target);
        std::fs::create_dir_all(&dir).expect("corpus directory");
        for (name, bytes) in seeds(target) {
            std::fs::write(dir.join(name), bytes).expect("seed file");
        }
    }
}
