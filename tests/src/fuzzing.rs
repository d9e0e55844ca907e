//! Fuzz entry points, one per parser or input surface of the core.
//!
//! Each takes arbitrary bytes and must never panic. The cargo-fuzz targets
//! in `fuzz/` call these, and `tests/fuzz_entries.rs` runs each over
//! thousands of random inputs in the normal test suite so that they are
//! compiled and exercised in CI.

use veil_core::identity::{verify_descriptor, DescriptorPacket, DescriptorRepr, Identity};
use veil_core::link::{Frame, LinkHello, CELL_LEN};
use veil_core::message::MessageSlot;
use veil_core::node::{
    drain, Event, LinkId, LinkSlot, Node, NodeConfig, OpenLink, Output, Receive, ReceiveStreamCell,
    Timeout,
};
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

/// Where the fuzzed node's peer connects from.
const PEER: core::net::IpAddr = core::net::IpAddr::V4(core::net::Ipv4Addr::new(192, 0, 2, 9));

veil_core::node_profile! {
    /// Small capacities, so that the fuzzed node fills its tables.
    struct FuzzProfile {
        link_receive: 2050,
        link_send_queue: 4,
        events: 8,
        peers: 4,
        relayed: 4,
        own: 2,
        message: 1024,
        links: [LinkSlot<FuzzProfile>; 2],
        messages: [MessageSlot<[u8; 1024]>; 2],
    }
}

type FuzzNode = Node<FuzzProfile>;

fn fuzz_node(seed: u8) -> FuzzNode {
    Node::new(
        NodeConfig::default(),
        Identity::from_secret_bytes([seed; 32]),
        [seed; 32],
        [LinkSlot::new(), LinkSlot::new()],
        [MessageSlot::new(), MessageSlot::new()],
    )
}

/// Drains `node`, handing each output to `each`, and returns the bytes it
/// transmitted.
fn drain_all(node: &mut FuzzNode, now: Instant, mut each: impl FnMut(&Output<'_>)) -> Vec<u8> {
    let mut buf = [0u8; 2048];
    let mut wire = Vec::new();
    drain(node, now, &mut buf, |_, output| {
        if let Output::Transmit { bytes, .. } = &output {
            wire.extend_from_slice(bytes);
        }
        each(&output);
    })
    .expect("the buffer fits every output of the fuzz profile");
    wire
}

/// Two fuzz nodes with a link between them, handshake done.
fn linked_pair(circuit_streams: Option<[u8; 32]>) -> (FuzzNode, LinkId, FuzzNode, LinkId) {
    use veil_core::identity::Transport;
    let mut a = fuzz_node(1);
    let mut b = fuzz_node(2);
    let now = Instant::from_millis(1);
    let dialled = OpenLink {
        circuit_streams,
        ..OpenLink::dialled(Some(b.node_id()), Transport::Quic, PEER)
    };
    let accepted = OpenLink {
        circuit_streams,
        ..OpenLink::accepted(Transport::Quic, PEER)
    };
    let la = a.handle(now, dialled).expect("room");
    let lb = b.handle(now, accepted).expect("room");
    let mut up = 0;
    for _ in 0..4 {
        let wire = drain_all(&mut a, now, |_| {});
        let _ = b.handle(
            now,
            Receive {
                link: lb,
                bytes: &wire,
            },
        );
        let wire = drain_all(&mut b, now, |o| {
            up += usize::from(matches!(o, Output::Event(Event::LinkEstablished { .. })));
        });
        let _ = a.handle(
            now,
            Receive {
                link: la,
                bytes: &wire,
            },
        );
    }
    assert_eq!(up, 1, "handshake completes");
    (a, la, b, lb)
}

/// Arbitrary bytes, in arbitrary chunks, into a node's inbound link that is
/// still in its handshake. The first byte of `data` picks the chunk size.
/// The link must end up handshaking or closed, never anything else, and the
/// node must keep working.
pub fn link_input(data: &[u8]) {
    use veil_core::identity::Transport;
    let Some((&chunk, data)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let mut node = fuzz_node(7);
    let mut now = Instant::from_millis(1);
    let link = node
        .handle(now, OpenLink::accepted(Transport::Tcp, PEER))
        .expect("fresh node has room");
    let no_cells = |o: &Output<'_>| {
        assert!(
            !matches!(o, Output::Event(Event::CellReceived { .. })),
            "cells from an unauthenticated peer"
        );
    };
    for piece in data.chunks(chunk) {
        now = now.saturating_add(Duration::from_millis(1));
        let mut rest = piece;
        while !rest.is_empty() {
            let Ok(n) = node.handle(now, Receive { link, bytes: rest }) else {
                break;
            };
            rest = &rest[n..];
            drain_all(&mut node, now, no_cells);
            if n == 0 {
                break;
            }
        }
    }
    node.handle(now.saturating_add(Duration::from_secs(30)), Timeout);
    let mut closed = false;
    drain_all(&mut node, now, |o| {
        no_cells(o);
        closed |= matches!(o, Output::Event(Event::LinkClosed { .. }));
    });
    assert!(
        closed || node.link_info(link).is_none(),
        "the link outlived its handshake timeout"
    );
    // The node is still usable.
    assert!(node
        .handle(now, OpenLink::dialled(None, Transport::Tcp, PEER))
        .is_ok());
}

/// Arbitrary bytes into an *established* link, after a real handshake
/// between two nodes. Nothing but a close may come of it: no cell is
/// delivered, because nothing an attacker writes authenticates.
pub fn established_link_input(data: &[u8]) {
    let (_a, _la, mut b, lb) = linked_pair(None);
    let now = Instant::from_millis(1);
    let _ = b.handle(
        now,
        Receive {
            link: lb,
            bytes: data,
        },
    );
    drain_all(&mut b, now, |o| {
        assert!(
            !matches!(o, Output::Event(Event::CellReceived { .. })),
            "forged cell accepted"
        );
    });
}

/// Arbitrary cells on the circuit streams of an established stream link
/// (QUIC's form, link spec §10), after a real bound handshake: each 514
/// bytes of `data` is one cell, offered with `ReceiveStreamCell` (a refused
/// one is offered again after draining, as an adapter does). A peer may
/// send anything there: the node must not panic, must deliver no message
/// (no circuit of this peer's exists), and must stay usable.
pub fn stream_cells(data: &[u8]) {
    use veil_core::identity::Transport;
    let (_a, _la, mut b, lb) = linked_pair(Some([0x5a; 32]));
    let now = Instant::from_millis(1);
    let no_message = |o: &Output<'_>| {
        assert!(
            !matches!(o, Output::Message { .. }),
            "a message from cells on no circuit"
        );
    };
    for chunk in data.chunks(CELL_LEN) {
        let mut cell = [0u8; CELL_LEN];
        for (dst, src) in cell.iter_mut().zip(chunk) {
            *dst = *src;
        }
        for _ in 0..2 {
            let input = ReceiveStreamCell {
                link: lb,
                cell: &cell,
            };
            if b.handle(now, input).is_ok() {
                break;
            }
            drain_all(&mut b, now, no_message);
        }
        drain_all(&mut b, now, no_message);
    }
    b.handle(now.saturating_add(Duration::from_secs(1)), Timeout);
    drain_all(&mut b, now, no_message);
    assert!(b
        .handle(now, OpenLink::dialled(None, Transport::Tcp, PEER))
        .is_ok());
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
    let mut pool: MessagePool<[MessageSlot<[u8; LEN]>; 4], [u8; LEN]> = MessagePool::new([
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
        while let Ok(Some(m)) = pool.take(&mut out) {
            assert!(m.len <= LEN);
        }
        if len % 7 == 0 {
            pool.expire_incoming(veil_core::time::Instant::from_millis(now));
        }
    }
}
