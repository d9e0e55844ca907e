//! Fuzz entry points, one per parser or input surface of the core.
//!
//! Each takes arbitrary bytes and must never panic. The cargo-fuzz targets
//! in `fuzz/` call these, and `tests/fuzz_entries.rs` runs each over
//! thousands of random inputs in the normal test suite so that they are
//! compiled and exercised in CI.

use veil_core::identity::{verify_descriptor, DescriptorPacket, DescriptorRepr, Identity};
use veil_core::link::{Frame, LinkHello, LinkRole, CELL_LEN};
use veil_core::message::MessageSlot;
use veil_core::node::{Event, LinkSlot, Node, NodeConfig};
use veil_core::noise::{HandshakePattern, HandshakeState, Role, StaticKeypair};
use veil_core::time::{Duration, Instant};

/// Frame plaintext parser; whatever parses re-emits to the same bytes.
pub fn frame(data: &[u8]) {
    if let Ok(frame) = Frame::parse(data) {
        let mut out = vec![0u8; frame.buffer_len()];
        let len = frame.emit(&mut out).expect("buffer sized by buffer_len");
        if !matches!(frame, Frame::Padding(_)) {
            assert_eq!(&out[..len], data, "parse/emit is not an identity");
        }
    }
}

/// Link hello parser and signature check.
pub fn hello(data: &[u8]) {
    if let Ok(hello) = LinkHello::parse(data) {
        let _ = hello.verify(&[0x42; 32]);
        assert_eq!(LinkHello::parse(&hello.emit()), Ok(hello));
    }
}

/// Descriptor parsing and verification; whatever verifies re-parses equal.
pub fn descriptor(data: &[u8]) {
    let _ = verify_descriptor(data, 1_700_000_000);
    if let Ok(packet) = DescriptorPacket::new_checked(data) {
        if let Ok(repr) = DescriptorRepr::parse(&packet) {
            let _ = repr.buffer_len();
        }
    }
}

/// A Noise responder reading an arbitrary first message, and an initiator
/// reading an arbitrary second message: errors only, never a panic.
pub fn noise_read(data: &[u8]) {
    let keys = StaticKeypair::from_secret_bytes([1; 32]);
    let mut payload = [0u8; 1024];
    if let Ok(mut responder) = HandshakeState::new(
        HandshakePattern::XX,
        Role::Responder,
        b"fuzz",
        Some(&keys),
        [2; 32],
        None,
    ) {
        let _ = responder.read_message(data, &mut payload);
    }
    if let Ok(mut initiator) = HandshakeState::new(
        HandshakePattern::XX,
        Role::Initiator,
        b"fuzz",
        Some(&keys),
        [3; 32],
        None,
    ) {
        let mut out = [0u8; 64];
        if initiator.write_message(&[], &mut out).is_ok() {
            let _ = initiator.read_message(data, &mut payload);
        }
    }
    let nk = StaticKeypair::from_secret_bytes([4; 32]);
    if let Ok(mut responder) = HandshakeState::new(
        HandshakePattern::NK,
        Role::Responder,
        b"",
        Some(&nk),
        [5; 32],
        None,
    ) {
        let _ = responder.read_message(data, &mut payload);
    }
}

type FuzzNode = Node<[LinkSlot<2050, 4>; 2], [MessageSlot<1024>; 2], 2050, 4, 8, 4, 4, 2, 1024>;

fn fuzz_node(seed: u8) -> FuzzNode {
    Node::new(
        NodeConfig::default(),
        Identity::from_secret_bytes([seed; 32]),
        [seed; 32],
        [LinkSlot::new(), LinkSlot::new()],
        [MessageSlot::new(), MessageSlot::new()],
    )
}

/// Arbitrary bytes, in arbitrary chunks, into a node's inbound link that is
/// still in its handshake. The first byte of `data` picks the chunk size.
/// The link must end up handshaking or closed, never anything else, and the
/// node must keep working.
pub fn link_input(data: &[u8]) {
    let Some((&chunk, data)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let mut node = fuzz_node(7);
    let mut now = Instant::from_millis(1);
    let link = node
        .open_link(now, LinkRole::Responder, None)
        .expect("fresh node has room");
    let mut buf = [0u8; 2048];
    for piece in data.chunks(chunk) {
        now = now.saturating_add(Duration::from_millis(1));
        let mut rest = piece;
        while !rest.is_empty() {
            let Ok(n) = node.handle_data(now, link, rest) else {
                break;
            };
            rest = &rest[n..];
            while node.poll_transmit(now, &mut buf).is_some() {}
            while node.poll_event().is_some() {}
            if n == 0 {
                break;
            }
        }
    }
    node.handle_timeout(now.saturating_add(Duration::from_secs(30)));
    while node.poll_transmit(now, &mut buf).is_some() {}
    let mut closed = false;
    while let Some(event) = node.poll_event() {
        closed |= matches!(event, Event::LinkClosed { .. });
        assert!(
            !matches!(event, Event::CellReceived { .. }),
            "cells from an unauthenticated peer"
        );
    }
    assert!(
        closed || node.link_info(link).is_none(),
        "the link outlived its handshake timeout"
    );
    // The node is still usable.
    assert!(node.open_link(now, LinkRole::Initiator, None).is_ok());
}

/// Arbitrary bytes into an *established* link, after a real handshake
/// between two nodes. Nothing but a close may come of it: no cell is
/// delivered, because nothing an attacker writes authenticates.
pub fn established_link_input(data: &[u8]) {
    let mut a = fuzz_node(1);
    let mut b = fuzz_node(2);
    let now = Instant::from_millis(1);
    let la = a
        .open_link(now, LinkRole::Initiator, Some(b.node_id()))
        .expect("room");
    let lb = b.open_link(now, LinkRole::Responder, None).expect("room");
    let mut buf = [0u8; 2048];
    for _ in 0..4 {
        while let Some(t) = a.poll_transmit(now, &mut buf) {
            let _ = b.handle_data(now, lb, &buf[..t.len]);
        }
        while let Some(t) = b.poll_transmit(now, &mut buf) {
            let _ = a.handle_data(now, la, &buf[..t.len]);
        }
    }
    let mut up = 0;
    while let Some(event) = b.poll_event() {
        up += usize::from(matches!(event, Event::LinkEstablished { .. }));
    }
    assert_eq!(up, 1, "handshake completes");
    let _ = b.handle_data(now, lb, data);
    while b.poll_transmit(now, &mut buf).is_some() {}
    while let Some(event) = b.poll_event() {
        assert!(
            !matches!(event, Event::CellReceived { .. }),
            "forged cell accepted"
        );
    }
    let _ = CELL_LEN;
}

/// Arbitrary cells on the circuit streams of an established stream link
/// (QUIC's form, link spec §10), after a real bound handshake: each 514
/// bytes of `data` is one cell, offered with `handle_stream_cell` (a
/// refused one is offered again after polling, as an adapter does). A peer
/// may send anything there: the node must not panic, must deliver no
/// message (no circuit of this peer's exists), and must stay usable.
pub fn stream_cells(data: &[u8]) {
    use veil_core::identity::Transport;
    let mut a = fuzz_node(1);
    let mut b = fuzz_node(2);
    let now = Instant::from_millis(1);
    let binding = [0x5a; 32];
    let la = a
        .open_stream_link(
            now,
            LinkRole::Initiator,
            Some(b.node_id()),
            Transport::Quic,
            binding,
        )
        .expect("room");
    let lb = b
        .open_stream_link(now, LinkRole::Responder, None, Transport::Quic, binding)
        .expect("room");
    let mut buf = [0u8; 2048];
    for _ in 0..4 {
        while let Some(n) = a.poll_link_transmit(now, la, &mut buf) {
            let _ = b.handle_data(now, lb, &buf[..n]);
        }
        while let Some(n) = b.poll_link_transmit(now, lb, &mut buf) {
            let _ = a.handle_data(now, la, &buf[..n]);
        }
    }
    for chunk in data.chunks(CELL_LEN) {
        let mut cell = [0u8; CELL_LEN];
        for (dst, src) in cell.iter_mut().zip(chunk) {
            *dst = *src;
        }
        for _ in 0..2 {
            if b.handle_stream_cell(now, lb, &cell).is_ok() {
                break;
            }
            while b.poll_event().is_some() {}
            while b.poll_link_transmit(now, lb, &mut buf).is_some() {}
            while b.poll_stream_cell(now, lb).is_some() {}
        }
        while b.poll_link_transmit(now, lb, &mut buf).is_some() {}
        while b.poll_stream_cell(now, lb).is_some() {}
        while let Some(event) = b.poll_event() {
            assert!(
                !matches!(event, Event::MessageReceived { .. }),
                "a message from cells on no circuit"
            );
        }
    }
    let mut out = [0u8; 64];
    assert!(b.poll_message(&mut out).is_none(), "nothing was delivered");
    b.handle_timeout(now.saturating_add(Duration::from_secs(1)));
    assert!(b.open_link(now, LinkRole::Initiator, None).is_ok());
}

/// Cell parser, and the parsers of every body kind inside it.
pub fn cell(data: &[u8]) {
    use veil_core::cell::{parse_create, parse_created, CellRepr, RelayMessage};
    let mut bytes = [0u8; veil_core::link::CELL_LEN];
    for (dst, src) in bytes.iter_mut().zip(data) {
        *dst = *src;
    }
    if let Ok(repr) = CellRepr::parse(&bytes) {
        assert_eq!(repr.emit(), bytes, "cell parse/emit is not an identity");
        let _ = parse_create(&repr.body);
        let _ = parse_created(&repr.body);
        let body = veil_core::cgo::CellBody::from_bytes(&repr.body);
        if let Ok(message) = RelayMessage::parse(&body.payload) {
            let again = message.emit().expect("a parsed message fits a cell");
            assert_eq!(RelayMessage::parse(&again), Ok(message));
        }
    }
}

/// A relay answering an arbitrary `CREATE` body, and a client finishing
/// with an arbitrary `CREATED` body.
pub fn hop_handshake(data: &[u8]) {
    use veil_core::circuit::{respond, HopHandshakeClient};
    let mut body = [0u8; veil_core::cgo::BODY_LEN];
    for (dst, src) in body.iter_mut().zip(data) {
        *dst = *src;
    }
    let onion = StaticKeypair::from_secret_bytes([3; 32]);
    let _ = respond(&[&onion], [4; 32], &body);
    if let Ok((client, _)) = HopHandshakeClient::start(&onion.public(), [5; 32]) {
        let _ = client.finish(&body);
    }
}

/// Arbitrary bytes as a stream of message fragments into a small message
/// pool: length-prefixed chunks (one length byte each), each offered as the
/// data of a relay `DATA` message, with complete messages taken as they
/// come. The pool must never exceed its halves, and whatever it hands out
/// must be a message it was given whole.
pub fn message_fragments(data: &[u8]) {
    use veil_core::message::{MessagePool, MessageSlot, Sender};
    const LEN: usize = 2 * 466 + 10;
    let mut pool: MessagePool<[MessageSlot<LEN>; 4], LEN> = MessagePool::new([
        MessageSlot::new(),
        MessageSlot::new(),
        MessageSlot::new(),
        MessageSlot::new(),
    ]);
    let mut sender = None;
    let mut rest = data;
    let mut out = [0u8; LEN];
    let mut now = 0u64;
    while let Some((&len, tail)) = rest.split_first() {
        let take = usize::from(len).min(tail.len());
        let (chunk, tail) = tail.split_at(take);
        rest = tail;
        now += 1;
        let from = *sender.get_or_insert(Sender::Node(veil_core::identity::NodeId([len; 32])));
        let _ = pool.accept(veil_core::time::Instant::from_millis(now), chunk, from);
        assert!(pool.incoming() <= pool.per_direction());
        while let Some(m) = pool.take(&mut out) {
            assert!(m.len <= LEN);
        }
        if len % 7 == 0 {
            pool.expire_incoming(veil_core::time::Instant::from_millis(now));
        }
    }
}
