//! Records what a passive observer sees of many veil links, for the
//! statistical tests of `scripts/wire_randomness.py` (issue 12, transport
//! spec §2).
//!
//! Each connection is a pair of real link sessions (the core's
//! `LinkSession`, as the node runs it) with fresh keys and seeds: the
//! handshake, then four one-cell messages from the dialler. The example
//! writes, per connection, the first 1,024 bytes the dialler sent, the
//! length of each side's first flight (what it sent before it had to wait
//! for the other: message 1, message 2), and the length on the wire of each
//! of the four one-cell messages (transport spec §4.2: padded in v2).
//!
//! `--format v1` writes the same for the version 1 wire instead, rebuilt
//! from its spec (a raw X25519 key after `00 20`, lengths in clear, fixed
//! handshake sizes): the control the tests must reject.
//!
//! ```text
//! cargo run --release -p veil-sim --example wire_sample -- --connections 10000 --out target/wire
//! cargo run --release -p veil-sim --example wire_sample -- --connections 10000 --format v1 --out target/wire
//! python3 scripts/wire_randomness.py target/wire
//! ```

use std::io::Write;
use std::path::PathBuf;

use veil_core::identity::Identity;
use veil_core::link::{
    FrameKind, LinkConfig, LinkHello, LinkParams, LinkRole, LinkSession, CELL_LEN,
    MIN_TRANSMIT_BUFFER,
};
use veil_core::noise::{HandshakePattern, HandshakeState, Role, StaticKeypair};
use veil_core::time::Instant;

const SAMPLE_LEN: usize = 1024;
/// One-cell messages the dialler sends after the handshake.
const CELL_MESSAGES: usize = 4;

/// What one connection gives the tests.
struct Connection {
    /// The dialler's first `SAMPLE_LEN` bytes.
    bytes: Vec<u8>,
    /// Each side's first flight, dialler then responder.
    flights: [usize; 2],
    /// The wire length of each one-cell message.
    cell_messages: [usize; CELL_MESSAGES],
}
const RX: usize = 16 * 1024 + 2;
type Session = LinkSession<[u8; RX], veil_core::heapless::Deque<[u8; CELL_LEN], 64>>;

struct Args {
    connections: u32,
    v1: bool,
    out: PathBuf,
}

fn args() -> Args {
    let mut args = Args {
        connections: 10_000,
        v1: false,
        out: PathBuf::from("target/wire"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        match flag.as_str() {
            "--connections" => args.connections = value.parse().expect("--connections N"),
            "--format" => args.v1 = value == "v1",
            "--out" => args.out = PathBuf::from(value),
            other => panic!("unknown flag {other}: use --connections N --format v1|v2 --out DIR"),
        }
    }
    args
}

/// 32 bytes for connection `i`, role `r`, purpose `p`: distinct and fixed.
fn seed(i: u32, r: u8, p: u8) -> [u8; 32] {
    let mut s = [0u8; 32];
    s[..4].copy_from_slice(&i.to_le_bytes());
    s[4] = r;
    s[5] = p;
    s[31] = 1;
    s
}

fn session(i: u32, role: LinkRole, keys: &StaticKeypair, hello: [u8; 100]) -> Box<Session> {
    let r = u8::from(role == LinkRole::Responder);
    Box::new(Session::new(
        Instant::ZERO,
        LinkParams {
            role,
            expected_peer: None,
            static_keypair: keys,
            handshake_seed: seed(i, r, 3),
            local_id: None,
            answer_unkeyed: true,
            unix_time: 0,
            hello,
            local_max_message_len: 16_384,
            config: LinkConfig::default(),
            channel_binding: None,
        },
    ))
}

/// One v2 connection: the dialler's first bytes, and both first flights.
fn v2_connection(i: u32) -> Connection {
    let id_i = Identity::from_secret_bytes(seed(i, 0, 1));
    let id_r = Identity::from_secret_bytes(seed(i, 1, 1));
    let keys_i = StaticKeypair::from_secret_bytes(seed(i, 0, 2));
    let keys_r = StaticKeypair::from_secret_bytes(seed(i, 1, 2));
    let mut a = session(
        i,
        LinkRole::Initiator,
        &keys_i,
        LinkHello::new(&id_i, &keys_i.public(), 16_384).emit(),
    );
    let mut b = session(
        i,
        LinkRole::Responder,
        &keys_r,
        LinkHello::new(&id_r, &keys_r.public(), 16_384).emit(),
    );
    let now = Instant::ZERO;
    let mut sent = Vec::new();
    let mut buf = vec![0u8; MIN_TRANSMIT_BUFFER.max(20_000)];
    let mut flights = [0usize; 2];
    for round in 0..4 {
        while let Some(n) = a.poll_transmit(now, &mut buf) {
            sent.extend_from_slice(&buf[..n]);
            if round == 0 {
                flights[0] += n;
            }
            b.receive(now, &buf[..n]);
        }
        while let Some(n) = b.poll_transmit(now, &mut buf) {
            if round == 0 {
                flights[1] += n;
            }
            a.receive(now, &buf[..n]);
        }
    }
    let mut cell = [0u8; CELL_LEN];
    cell[..4].copy_from_slice(&0x8000_0001u32.to_be_bytes());
    let mut cell_messages = [0; CELL_MESSAGES];
    for length in &mut cell_messages {
        a.queue_cell(&cell).expect("established");
        let n = a.poll_transmit(now, &mut buf).expect("a one-cell message");
        sent.extend_from_slice(&buf[..n]);
        b.receive(now, &buf[..n]);
        assert!(b.take_cell().is_some(), "the cell arrived");
        *length = n;
    }
    assert!(sent.len() >= SAMPLE_LEN);
    sent.truncate(SAMPLE_LEN);
    Connection {
        bytes: sent,
        flights,
        cell_messages,
    }
}

/// One connection in the version 1 format, rebuilt from its spec with the
/// same Noise handshake: `00 20` ‖ e, then `00 c4` ‖ message 2, `00 a4` ‖
/// message 3, then transport messages with clear lengths.
fn v1_connection(i: u32) -> Connection {
    let id_i = Identity::from_secret_bytes(seed(i, 0, 1));
    let id_r = Identity::from_secret_bytes(seed(i, 1, 1));
    let keys_i = StaticKeypair::from_secret_bytes(seed(i, 0, 2));
    let keys_r = StaticKeypair::from_secret_bytes(seed(i, 1, 2));
    let prologue = b"veil link v1";
    let new = |role, keys: &StaticKeypair, r| {
        HandshakeState::new(
            HandshakePattern::XX,
            role,
            prologue,
            Some(keys),
            seed(i, r, 3),
            None,
        )
        .expect("keys")
    };
    let mut a = new(Role::Initiator, &keys_i, 0);
    let mut b = new(Role::Responder, &keys_r, 1);
    let hello_i = LinkHello::new(&id_i, &keys_i.public(), 16_384).emit();
    let hello_r = LinkHello::new(&id_r, &keys_r.public(), 16_384).emit();
    let mut sent = Vec::new();
    let mut out = [0u8; 1024];
    let mut payload = [0u8; 1024];
    let n = a.write_message(&[], &mut out).expect("m1");
    sent.extend_from_slice(&(n as u16).to_be_bytes());
    sent.extend_from_slice(&out[..n]);
    let first_i = 2 + n;
    b.read_message(&out[..n], &mut payload).expect("m1");
    let n = b.write_message(&hello_r, &mut out).expect("m2");
    let first_r = 2 + n;
    a.read_message(&out[..n], &mut payload).expect("m2");
    let n = a.write_message(&hello_i, &mut out).expect("m3");
    sent.extend_from_slice(&(n as u16).to_be_bytes());
    sent.extend_from_slice(&out[..n]);
    let keys = a.split().expect("split");
    let mut send = keys.initiator_to_responder;
    let mut cell = [0u8; CELL_LEN];
    cell[..4].copy_from_slice(&0x8000_0001u32.to_be_bytes());
    let mut cell_messages = [0; CELL_MESSAGES];
    for length in &mut cell_messages {
        // Version 1's CELLS frame: the kind byte and the cell, no count.
        let mut frame = vec![0u8; 1 + CELL_LEN + 16];
        frame[0] = FrameKind::Cells.to_byte();
        frame[1..1 + CELL_LEN].copy_from_slice(&cell);
        let len = 1 + CELL_LEN;
        let sealed = send
            .encrypt_in_place(&[], &mut frame, len)
            .expect("encrypt");
        sent.extend_from_slice(&(sealed as u16).to_be_bytes());
        sent.extend_from_slice(&frame[..sealed]);
        *length = 2 + sealed;
    }
    assert!(sent.len() >= SAMPLE_LEN);
    sent.truncate(SAMPLE_LEN);
    Connection {
        bytes: sent,
        flights: [first_i, first_r],
        cell_messages,
    }
}

fn main() {
    let args = args();
    let format = if args.v1 { "v1" } else { "v2" };
    std::fs::create_dir_all(&args.out).expect("output directory");
    let mut streams = std::io::BufWriter::new(
        std::fs::File::create(args.out.join(format!("{format}_streams.bin"))).expect("create"),
    );
    let mut flights = std::io::BufWriter::new(
        std::fs::File::create(args.out.join(format!("{format}_flights.csv"))).expect("create"),
    );
    writeln!(flights, "dialler_first_flight,responder_first_flight").expect("write");
    let mut cell_messages = std::io::BufWriter::new(
        std::fs::File::create(args.out.join(format!("{format}_cell_messages.csv")))
            .expect("create"),
    );
    let header: Vec<String> = (1..=CELL_MESSAGES)
        .map(|n| format!("message_{n}"))
        .collect();
    writeln!(cell_messages, "{}", header.join(",")).expect("write");
    let started = std::time::Instant::now();
    for i in 0..args.connections {
        let connection = if args.v1 {
            v1_connection(i)
        } else {
            v2_connection(i)
        };
        streams.write_all(&connection.bytes).expect("write");
        let [first_i, first_r] = connection.flights;
        writeln!(flights, "{first_i},{first_r}").expect("write");
        let lengths: Vec<String> = connection
            .cell_messages
            .iter()
            .map(|n| n.to_string())
            .collect();
        writeln!(cell_messages, "{}", lengths.join(",")).expect("write");
    }
    streams.flush().expect("flush");
    flights.flush().expect("flush");
    cell_messages.flush().expect("flush");
    println!(
        "{} {format} connections in {:.1} s: {}",
        args.connections,
        started.elapsed().as_secs_f64(),
        args.out.display()
    );
}
