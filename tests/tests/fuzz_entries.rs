//! Runs every fuzz entry point over thousands of random and mutated inputs,
//! so that the fuzz targets are compiled and exercised in every CI run.

use chacha20::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
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

#[test]
fn frame_parser_survives_random_input() {
    let valid: &[&[u8]] = &[&[2, 0, 0, 0, 0, 0, 0, 0, 9], &[4], &[5, 1], &[6, 0, 0]];
    for input in inputs(1, 5_000, 1_200, valid) {
        fuzzing::frame(&input);
    }
}

#[test]
fn hello_parser_survives_random_input() {
    let id = veil_core::identity::Identity::from_secret_bytes([5; 32]);
    let valid = veil_core::link::LinkHello::new(&id, &[1; 32], 16_000).emit();
    for input in inputs(2, 3_000, 200, &[&valid]) {
        fuzzing::hello(&input);
    }
}

#[test]
fn descriptor_verifier_survives_random_input() {
    for input in inputs(3, 3_000, 400, &[]) {
        fuzzing::descriptor(&input);
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
    let plausible: Vec<u8> = [&[3u8, 0, 32][..], &[7; 32], &[0, 164], &[9; 164]].concat();
    for input in inputs(5, 2_000, 600, &[&plausible]) {
        fuzzing::link_input(&input);
    }
}

#[test]
fn established_link_survives_random_input() {
    let plausible: Vec<u8> = [&[0u8, 40][..], &[1; 40]].concat();
    for input in inputs(6, 500, 600, &[&plausible]) {
        fuzzing::established_link_input(&input);
    }
}

#[test]
fn stream_cells_survive_random_input() {
    // A plausible start: a CREATE on a fresh circuit id, then relay cells.
    let mut create = vec![0u8; 514 * 3];
    create[..5].copy_from_slice(&[0x80, 0, 0, 7, 1]);
    create[514..519].copy_from_slice(&[0x80, 0, 0, 7, 3]);
    create[1028..1033].copy_from_slice(&[0, 0, 0, 0, 6]);
    for input in inputs(9, 300, 514 * 4, &[&create]) {
        fuzzing::stream_cells(&input);
    }
}

#[test]
fn cell_parsers_survive_random_input() {
    let relay = [&[
        0x80u8, 0, 0, 1, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 5,
    ][..]];
    for input in inputs(7, 3_000, 600, &relay) {
        fuzzing::cell(&input);
    }
}

#[test]
fn hop_handshake_survives_random_input() {
    let create: Vec<u8> = [&[0u8, 1, 0, 48][..], &[7; 48]].concat();
    for input in inputs(8, 1_000, 520, &[&create]) {
        fuzzing::hop_handshake(&input);
    }
}

#[test]
fn message_fragments_survive_random_input() {
    // One valid single-fragment message: id, total 5, offset 0, 5 bytes.
    let valid: Vec<u8> = [&[29u8][..], &[9; 16], &[0, 0, 0, 5, 0, 0, 0, 0], b"hello"].concat();
    for input in inputs(9, 2_000, 1_200, &[&valid]) {
        fuzzing::message_fragments(&input);
    }
}
