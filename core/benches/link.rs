//! Link costs beside the raw primitive, measured in the same run:
//! - a full `XX` link handshake (both sides, identity signatures verified);
//! - sealing and opening one transport message of ~512 B (one cell) and
//!   ~16 KiB (31 cells), beside raw ChaCha20-Poly1305 over the same bytes;
//! - the two length masks version 2 adds to each transport message.
//!
//! Run: `cargo bench -p veil-core --bench link`

use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use veil_core::identity::Identity;
use veil_core::link::obfs::length_keys;
use veil_core::link::{
    LinkConfig, LinkHello, LinkParams, LinkRole, LinkSession, CELLS_HEADER_LEN, CELL_LEN,
    MAX_CELLS_PADDING, TAG_LEN,
};
use veil_core::noise::StaticKeypair;
use veil_core::time::Instant;

const RX: usize = 16 * 1024 + 2;
type Session = LinkSession<[u8; RX], veil_core::heapless::Deque<[u8; CELL_LEN], 64>>;

struct Side {
    keys: StaticKeypair,
    hello: [u8; veil_core::link::HELLO_LEN],
}

fn side(seed: u8) -> Side {
    let identity = Identity::from_secret_bytes([seed; 32]);
    let keys = StaticKeypair::from_secret_bytes([seed.wrapping_add(100); 32]);
    let hello = LinkHello::new(&identity, &keys.public(), 16_384).emit();
    Side { keys, hello }
}

fn session(side: &Side, role: LinkRole, eph: u8) -> Session {
    Session::new(
        Instant::ZERO,
        LinkParams {
            role,
            expected_peer: None,
            static_keypair: &side.keys,
            handshake_seed: [eph; 32],
            local_id: None,
            answer_unkeyed: true,
            unix_time: 0,
            hello: side.hello,
            local_max_message_len: 16_384,
            // Keep rekeys (a separate, rare frame) out of the per-frame figures.
            config: LinkConfig {
                rekey_after_messages: u64::MAX,
                ..LinkConfig::default()
            },
            channel_binding: None,
        },
    )
}

/// Runs the handshake to completion; returns the two established sessions.
fn handshake(a: &Side, b: &Side) -> (Box<Session>, Box<Session>) {
    let mut i = Box::new(session(a, LinkRole::Initiator, 1));
    let mut r = Box::new(session(b, LinkRole::Responder, 2));
    let mut buf = [0u8; 600];
    let now = Instant::ZERO;
    for _ in 0..2 {
        while let Some(n) = i.poll_transmit(now, &mut buf) {
            feed(&mut r, now, &buf[..n]);
        }
        while let Some(n) = r.poll_transmit(now, &mut buf) {
            feed(&mut i, now, &buf[..n]);
        }
    }
    assert!(i.was_established() && r.was_established());
    (i, r)
}

/// The cryptography of a version 1 link handshake, in the same run: Noise
/// `XX` with a plain ephemeral key on each side and both hellos verified,
/// the work the link did before Elligator2 keys, marks and masked lengths
/// (link spec §2). Framing, which both versions do, is left out, so the
/// ratio to the full handshake above slightly overstates the new cost.
fn handshake_v1_equivalent(a: &Side, b: &Side) {
    use veil_core::noise::{HandshakePattern, HandshakeState, Role};
    let new = |role, keys: &StaticKeypair, eph| {
        HandshakeState::new(
            HandshakePattern::XX,
            role,
            b"veil link v1",
            Some(keys),
            [eph; 32],
            None,
        )
        .unwrap()
    };
    let mut i = new(Role::Initiator, &a.keys, 1);
    let mut r = new(Role::Responder, &b.keys, 2);
    let mut m = [0u8; 600];
    let mut p = [0u8; 600];
    let n = i.write_message(&[], &mut m).unwrap();
    r.read_message(&m[..n], &mut p).unwrap();
    let n = r.write_message(&b.hello, &mut m).unwrap();
    let got = i.read_message(&m[..n], &mut p).unwrap();
    let hello = LinkHello::parse(&p[..got]).unwrap();
    hello.verify(&i.remote_static().unwrap()).unwrap();
    let n = i.write_message(&a.hello, &mut m).unwrap();
    let got = r.read_message(&m[..n], &mut p).unwrap();
    let hello = LinkHello::parse(&p[..got]).unwrap();
    hello.verify(&r.remote_static().unwrap()).unwrap();
    let _ = (i.split().unwrap(), r.split().unwrap());
}

fn bench_handshake(c: &mut Criterion) {
    let a = side(1);
    let b = side(2);
    c.bench_function("link/handshake_xx_both_sides", |bench| {
        bench.iter(|| handshake(&a, &b))
    });
    c.bench_function("link/handshake_v1_equivalent_both_sides", |bench| {
        bench.iter(|| handshake_v1_equivalent(&a, &b))
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
        let (mut sender, _receiver) = handshake(&a, &b);
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
            let (mut tx, mut rx) = handshake(&a, &b);
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

/// Feeds `bytes` to `session` and takes every cell it yields (the node's
/// receive path, without the node); returns how many bytes it consumed.
fn feed(session: &mut Session, now: Instant, bytes: &[u8]) -> usize {
    let mut consumed = 0;
    loop {
        consumed += session.receive(now, &bytes[consumed..]);
        let mut took = false;
        while session.take_cell().is_some() {
            took = true;
        }
        if !took {
            return consumed;
        }
    }
}
