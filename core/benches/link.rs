//! Link costs beside the raw primitive, measured in the same run:
//! - a full `XX` link handshake (both sides, identity signatures verified);
//! - sealing and opening one transport message of ~512 B (one cell) and
//!   ~16 KiB (31 cells), beside raw ChaCha20-Poly1305 over the same bytes;
//! - the two length masks version 2 adds to each transport message.
//!
//! Run: `cargo bench -p veil-core --bench link`. The handshake ratio on a
//! shared machine: `cargo run --release -p veil-core --example handshake_ratio`.

use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use veil_core::link::obfs::length_keys;
use veil_core::link::{CELLS_HEADER_LEN, CELL_LEN, MAX_CELLS_PADDING, TAG_LEN};
use veil_core::time::Instant;

#[path = "support/handshakes.rs"]
mod handshakes;
use handshakes::{feed, handshake, handshake_v1_equivalent, side};

fn bench_handshake(c: &mut Criterion) {
    let a = side(1);
    let b = side(2);
    let mut run = 0u32;
    c.bench_function("link/handshake_xx_both_sides", |bench| {
        bench.iter(|| {
            run = run.wrapping_add(1);
            handshake(&a, &b, run)
        })
    });
    c.bench_function("link/handshake_v1_equivalent_both_sides", |bench| {
        bench.iter(|| {
            run = run.wrapping_add(1);
            handshake_v1_equivalent(&a, &b, run)
        })
    });
}

fn bench_frames(c: &mut Criterion) {
    let a = side(1);
    let b = side(2);
    let mut group = c.benchmark_group("link/frame");
    for cells in [1usize, 31] {
        // Throughput counts the frame without its padding; the padding a
        // session adds (up to MAX_CELLS_PADDING) is part of the cost measured.
        let plaintext = CELLS_HEADER_LEN + cells * CELL_LEN;
        let wire = 2 + plaintext + TAG_LEN;
        let wire_padded = wire + MAX_CELLS_PADDING;
        group.throughput(Throughput::Bytes(plaintext as u64));

        // Raw AEAD over the same number of plaintext bytes.
        let aead = ChaCha20Poly1305::new(&[7u8; 32].into());
        let mut raw = vec![0u8; plaintext];
        let mut nonce = 0u64;
        group.bench_with_input(
            BenchmarkId::new("raw_chacha20poly1305_seal", plaintext),
            &plaintext,
            |bench, _| {
                bench.iter(|| {
                    nonce += 1;
                    let mut n = [0u8; 12];
                    n[4..].copy_from_slice(&nonce.to_le_bytes());
                    aead.encrypt_inout_detached(&n.into(), &[], raw.as_mut_slice().into())
                        .unwrap()
                })
            },
        );

        // Link seal: queue the cells and let the session build, encrypt and frame them.
        let (mut sender, _receiver) = handshake(&a, &b, 0);
        let cell = [0x5au8; CELL_LEN];
        let mut out = vec![0u8; wire_padded];
        group.bench_with_input(
            BenchmarkId::new("link_seal", plaintext),
            &plaintext,
            |bench, _| {
                bench.iter(|| {
                    for _ in 0..cells {
                        sender.queue_cell(&cell).unwrap();
                    }
                    let n = sender.poll_transmit(Instant::ZERO, &mut out).unwrap();
                    assert!((wire..=wire_padded).contains(&n));
                })
            },
        );

        // Link seal then open: a fresh message each time (nonces advance),
        // fed to the receiver. `_unpadded` gives the session a transmit
        // buffer of exactly the unpadded message, so it cannot pad: against
        // the first in the same run, what padding costs.
        for (name, buffer_len) in [
            ("link_seal_then_open", wire_padded),
            ("link_seal_then_open_unpadded", wire),
        ] {
            let (mut tx, mut rx) = handshake(&a, &b, 0);
            let mut messages = vec![0u8; buffer_len];
            group.bench_with_input(BenchmarkId::new(name, plaintext), &plaintext, |bench, _| {
                bench.iter(|| {
                    for _ in 0..cells {
                        tx.queue_cell(&cell).unwrap();
                    }
                    let n = tx.poll_transmit(Instant::ZERO, &mut messages).unwrap();
                    assert!((wire..=buffer_len).contains(&n));
                    assert_eq!(feed(&mut rx, Instant::ZERO, &messages[..n]), n);
                })
            });
        }

        // Raw seal + open for the same pair of operations.
        let mut raw2 = vec![0u8; plaintext];
        let mut nonce2 = 0u64;
        group.bench_with_input(
            BenchmarkId::new("raw_chacha20poly1305_seal_then_open", plaintext),
            &plaintext,
            |bench, _| {
                bench.iter(|| {
                    nonce2 += 1;
                    let mut n = [0u8; 12];
                    n[4..].copy_from_slice(&nonce2.to_le_bytes());
                    let tag = aead
                        .encrypt_inout_detached(&n.into(), &[], raw2.as_mut_slice().into())
                        .unwrap();
                    aead.decrypt_inout_detached(&n.into(), &[], raw2.as_mut_slice().into(), &tag)
                        .unwrap();
                })
            },
        );
    }
    group.finish();
}

/// What version 2 adds to every transport message over version 1: the
/// sender masks its length and the receiver unmasks it, one ChaCha20 block
/// each (transport spec §2.3). Against `link/frame/link_seal_then_open` in
/// the same run this is the bulk cost of the masked lengths.
fn bench_length_masks(c: &mut Criterion) {
    let (mut send, mut receive) = length_keys(&[5; 32], &[1; 32], &[2; 32]);
    c.bench_function("link/length_mask_both_ends", |bench| {
        bench.iter(|| (send.next_mask().unwrap(), receive.next_mask().unwrap()))
    });
}

criterion_group!(benches, bench_handshake, bench_frames, bench_length_masks);
criterion_main!(benches);
