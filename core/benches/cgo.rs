//! CGO costs beside the raw primitives they are built from, in one run:
//! - one relay layer on one 509-byte body (what a relay does per cell);
//! - the raw work inside it: AES-128-CTR over 493 bytes, POLYVAL over 512
//!   bytes, and one AES block;
//! - a relay forwarding cells end to end: link open of a message of 1, 8
//!   or 31 cells (one cell alone, what a client keeps queued of its own,
//!   and the most a link message holds), the CGO layer on each cell, and
//!   link seal towards the next hop. The per-cell cost at each batch size
//!   is what settles the poly1305 backend (docs/performance.md).
//!
//! Run: `cargo bench -p veil-core --bench cgo`

use aes::cipher::{BlockCipherEncrypt, KeyInit, KeyIvInit, StreamCipher};
use aes::Aes128;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use polyval::universal_hash::UniversalHash;
use polyval::Polyval;
use veil_core::cgo::{CellBody, ClientHop, ClientLayers, RelayLayer, Seed, PAYLOAD_LEN};
use veil_core::identity::Identity;
use veil_core::link::{LinkConfig, LinkHello, LinkParams, LinkRole, LinkSession, CELL_LEN};
use veil_core::noise::StaticKeypair;
use veil_core::time::Instant;

/// The std node's link buffers: a 16 KiB message and its length prefix,
/// room for the largest batch of cells.
const RX: usize = 16 * 1024 + 2;
type Session = LinkSession<[u8; RX], veil_core::heapless::Deque<[u8; CELL_LEN], 32>>;

/// Cells per link message the relay-forward bench runs at.
const BATCHES: [usize; 3] = [1, 8, 31];

fn seed(n: u8) -> Seed {
    Seed([n; 80])
}

fn bench_layer(c: &mut Criterion) {
    let mut group = c.benchmark_group("cgo");
    group.throughput(Throughput::Bytes(509));
    let mut relay = RelayLayer::new(&seed(1), &seed(2));
    let mut body = CellBody::new([3; 16], [4; PAYLOAD_LEN]);
    group.bench_function("relay_layer_one_cell", |b| {
        b.iter(|| relay.receive_forward(2, &mut body))
    });

    let mut client = ClientLayers::new();
    for h in 0..3 {
        client
            .push(ClientHop::new(&seed(h), &seed(h + 10)))
            .unwrap();
    }
    group.bench_function("client_originate_to_hop_3", |b| {
        b.iter(|| client.originate_forward(2, 2, &[5; PAYLOAD_LEN]).unwrap())
    });

    let key = [7u8; 16];
    let mut payload = [0u8; PAYLOAD_LEN];
    let tweak = [0u8; 512];
    let mut block = aes::Block::default();
    group.bench_function("raw_aes_ctr_493_plus_polyval_512_plus_aes_block", |b| {
        b.iter(|| {
            let mut ctr = ctr::Ctr128BE::<Aes128>::new(&key.into(), &[1u8; 16].into());
            ctr.apply_keystream(&mut payload);
            let mut h = Polyval::new(&key.into());
            h.update_padded(&tweak);
            let mask = h.finalize();
            Aes128::new(&key.into()).encrypt_block(&mut block);
            mask
        })
    });
    group.finish();
}

struct Side {
    keys: StaticKeypair,
    hello: [u8; veil_core::link::HELLO_LEN],
}

fn side(n: u8) -> Side {
    let identity = Identity::from_secret_bytes([n; 32]);
    let keys = StaticKeypair::from_secret_bytes([n + 50; 32]);
    let hello = LinkHello::new(&identity, &keys.public(), (RX - 2) as u16).emit();
    Side { keys, hello }
}

fn session(s: &Side, role: LinkRole, eph: u8) -> Box<Session> {
    Box::new(Session::new(
        Instant::ZERO,
        LinkParams {
            role,
            expected_peer: None,
            static_keypair: &s.keys,
            handshake_seed: [eph; 32],
            local_id: None,
            answer_unkeyed: true,
            unix_time: 0,
            hello: s.hello,
            local_max_message_len: RX - 2,
            config: LinkConfig {
                rekey_after_messages: u64::MAX,
                ..LinkConfig::default()
            },
            channel_binding: None,
        },
    ))
}

fn linked(a: &Side, b: &Side) -> (Box<Session>, Box<Session>) {
    let (mut i, mut r) = (
        session(a, LinkRole::Initiator, 1),
        session(b, LinkRole::Responder, 2),
    );
    let mut buf = vec![0u8; RX];
    for _ in 0..2 {
        while let Some(n) = i.poll_transmit(Instant::ZERO, &mut buf) {
            feed(&mut r, Instant::ZERO, &buf[..n]);
        }
        while let Some(n) = r.poll_transmit(Instant::ZERO, &mut buf) {
            feed(&mut i, Instant::ZERO, &buf[..n]);
        }
    }
    (i, r)
}

fn bench_relay_forward(c: &mut Criterion) {
    let (a, b, d) = (side(1), side(2), side(3));
    // Previous hop -> this relay, and this relay -> next hop.
    let (mut from_prev, mut at_relay_in) = linked(&a, &b);
    let (mut at_relay_out, mut next) = linked(&b, &d);
    let mut relay = RelayLayer::new(&seed(1), &seed(2));
    let mut wire_in = vec![0u8; RX];
    let mut wire_out = vec![0u8; RX];
    let cell = [9u8; CELL_LEN];
    let mut group = c.benchmark_group("relay");
    for batch in BATCHES {
        group.throughput(Throughput::Bytes((batch * CELL_LEN) as u64));
        group.bench_function(
            format!("forward_{batch}_cells_link_open_cgo_link_seal"),
            |bch| {
                bch.iter(|| {
                    // Outside the measured relay work, but in the loop: the
                    // previous hop seals (its cost is the same as the relay's
                    // seal below) and the next hop takes the cells, so that
                    // the queues never fill.
                    for _ in 0..batch {
                        from_prev.queue_cell(&cell).unwrap();
                    }
                    let n = from_prev
                        .poll_transmit(Instant::ZERO, &mut wire_in)
                        .unwrap();
                    at_relay_in.receive(Instant::ZERO, &wire_in[..n]);
                    while let Some(mut received) = at_relay_in.take_cell() {
                        let mut body_bytes = [0u8; 509];
                        body_bytes.copy_from_slice(&received[5..]);
                        let mut body = CellBody::from_bytes(&body_bytes);
                        relay.receive_forward(received[4], &mut body);
                        received[5..].copy_from_slice(&body.to_bytes());
                        at_relay_out.queue_cell(&received).unwrap();
                    }
                    let n = at_relay_out
                        .poll_transmit(Instant::ZERO, &mut wire_out)
                        .unwrap();
                    feed(&mut next, Instant::ZERO, &wire_out[..n]);
                    n
                })
            },
        );
    }
    group.finish();
}

/// The CPU work of building a circuit through three relays to a
/// destination (four hop handshakes, both sides, and the CGO layers), without
/// the network. Tor on this machine needs ~16 ms of wall time per 3-hop
/// circuit; this is the floor veil's build time can approach.
fn bench_circuit_build(c: &mut Criterion) {
    use veil_core::circuit::{respond, HopHandshakeClient};
    let onions: std::vec::Vec<StaticKeypair> = (0..4)
        .map(|i| StaticKeypair::from_secret_bytes([i + 1; 32]))
        .collect();
    let mut group = c.benchmark_group("circuit");
    group.bench_function("build_3_relays_plus_destination_cpu", |b| {
        b.iter(|| {
            let mut layers = ClientLayers::new();
            let mut relays = std::vec::Vec::new();
            for (i, onion) in onions.iter().enumerate() {
                let (client, create) =
                    HopHandshakeClient::start(&onion.public(), [i as u8 + 10; 32]).unwrap();
                let (relay, created) = respond(&[onion], [i as u8 + 20; 32], &create).unwrap();
                layers.push(client.finish(&created).unwrap()).unwrap();
                relays.push(relay);
            }
            (layers, relays)
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    bench_layer,
    bench_relay_forward,
    bench_circuit_build
);
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
