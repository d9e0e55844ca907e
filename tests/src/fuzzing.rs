//! Fuzz entry points, one per parser or input surface of the core.
//!
//! Each takes arbitrary bytes and must never panic. The cargo-fuzz targets
//! in `fuzz/` call these, and `tests/fuzz_entries.rs` runs each over
//! thousands of random inputs in the normal test suite so that they are
//! compiled and exercised in CI.

use std::sync::OnceLock;

use veil_core::cell::RELAY_DATA_LEN;
use veil_core::cell::{CellCommand, CellRepr, CircuitId};
use veil_core::cgo::{CellBody, ClientLayers, PAYLOAD_LEN};
use veil_core::identity::{
    verify_descriptor, DescriptorPacket, DescriptorRepr, Identity, ServiceDescriptor, ServiceKeys,
};
use veil_core::link::{Frame, LinkHello, CELLS_HEADER_LEN, CELL_LEN};
use veil_core::message::MessageSlot;
use veil_core::node::{
    drain, Event, LinkId, LinkSlot, Node, NodeConfig, OpenLink, Output, Receive, ReceiveStreamCell,
    Timeout,
};
use veil_core::noise::{HandshakePattern, HandshakeState, Role, StaticKeypair};
use veil_core::time::{Duration, Instant};

/// Frame plaintext parser; whatever parses re-emits to the same bytes, up
/// to the padding (emitted as zeros, whatever was received).
pub fn frame(data: &[u8]) {
    if let Ok(frame) = Frame::parse(data) {
        let mut out = vec![0u8; frame.buffer_len()];
        let len = frame.emit(&mut out).expect("buffer sized by buffer_len");
        assert_eq!(len, data.len(), "parse/emit changed the frame's length");
        let meaningful = match frame {
            Frame::Padding(_) => 1,
            Frame::Cells { cells, .. } => CELLS_HEADER_LEN + cells.len(),
            _ => len,
        };
        assert_eq!(
            &out[..meaningful],
            &data[..meaningful],
            "parse/emit is not an identity"
        );
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
    if let Ok(verified) = verify_descriptor(data, 1_700_000_000) {
        let _ = verified.introducers().count();
    }
    if let Ok(packet) = DescriptorPacket::new_checked(data) {
        let _ = packet.introducers().count();
        if let Ok(repr) = DescriptorRepr::parse(&packet) {
            let _ = repr.buffer_len();
        }
    }
}

/// The keys of the service whose descriptors seed the
/// `service_descriptor` target.
fn fuzz_service_keys() -> &'static ServiceKeys {
    static KEYS: OnceLock<ServiceKeys> = OnceLock::new();
    KEYS.get_or_init(|| ServiceKeys::from_secrets([11; 32], [12; 32]))
}

/// Service descriptor parsing and verification (relay spec §13). Only the
/// seed service can sign, so whatever verifies under its key is its own
/// descriptor, and signing the parsed form again gives the same bytes
/// (Ed25519 signatures are deterministic): anything else is a forgery.
pub fn service_descriptor(data: &[u8]) {
    // The service's other signed message, its introduction claim
    // (`ESTABLISH_INTRO`), is read from the same bytes.
    let point = INTRO_CLAIM_POINT;
    if let Ok(service) = veil_core::identity::verify_intro_claim(data, &point) {
        let keys = fuzz_service_keys();
        assert_eq!(
            service,
            veil_core::identity::service_id_for_key(&data[..32].try_into().unwrap())
        );
        if data[..32] == keys.service_key() {
            assert_eq!(
                data,
                keys.intro_claim(&point),
                "a forged introduction claim verified"
            );
        }
    }
    if let Ok(descriptor) = ServiceDescriptor::parse_verified(data) {
        assert_eq!(descriptor.wire_len(), data.len(), "wire_len disagrees");
        let keys = fuzz_service_keys();
        if descriptor.service_key == keys.service_key() {
            let mut out = vec![0u8; descriptor.wire_len()];
            let n = descriptor.emit_signed(keys, &mut out);
            assert_eq!(n, Ok(data.len()), "a forged service descriptor verified");
            assert_eq!(&out[..], data, "a forged service descriptor verified");
        }
    }
}

/// A Noise responder reading an arbitrary first message, and an initiator
/// reading an arbitrary second message: errors only, never a panic.
pub fn noise_read(data: &[u8]) {
    // The three readers, each built once per process (their ephemeral keys
    // cost a scalar multiplication each) and copied per input.
    static READERS: OnceLock<[HandshakeState; 3]> = OnceLock::new();
    let readers = READERS.get_or_init(|| {
        let keys = StaticKeypair::from_secret_bytes([1; 32]);
        let xx = |role, ephemeral| {
            HandshakeState::new(
                HandshakePattern::XX,
                role,
                b"fuzz",
                Some(&keys),
                ephemeral,
                None,
            )
            .expect("a valid XX state")
        };
        let responder = xx(Role::Responder, [2; 32]);
        let mut initiator = xx(Role::Initiator, [3; 32]);
        let mut out = [0u8; 64];
        initiator
            .write_message(&[], &mut out)
            .expect("the initiator writes message 1");
        let nk = StaticKeypair::from_secret_bytes([4; 32]);
        let nk_responder = HandshakeState::new(
            HandshakePattern::NK,
            Role::Responder,
            b"",
            Some(&nk),
            [5; 32],
            None,
        )
        .expect("a valid NK state");
        [responder, initiator, nk_responder]
    });
    let mut payload = [0u8; 1024];
    for reader in readers {
        let _ = reader.clone().read_message(data, &mut payload);
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

/// The node is still usable: an outbound [`OpenLink`] would succeed (it
/// fails only on a full link table). Checked on the table rather than by
/// opening a link, whose ephemeral key would cost more than the input.
fn assert_room_for_a_link(node: &FuzzNode) {
    assert!(
        node.links().count() < node.link_capacity(),
        "the peer filled the node's link table"
    );
}

/// Arbitrary bytes, in arbitrary chunks, into a node's inbound link that is
/// still in its handshake. The low 7 bits of the first byte of `data` pick
/// the chunk size. With its top bit set, the harness makes the rest a
/// *marked* first message (link spec §2.2), so that inputs get past the
/// mark to the padding length, the padding and the messages after it: the
/// first 32 bytes are the representative, the harness inserts their mark
/// under the all-zero key, and the next 2 bytes are the padding length in
/// clear, which the harness masks. The link must end up handshaking or
/// closed, never anything else, and the node must keep working.
pub fn link_input(data: &[u8]) {
    use veil_core::identity::Transport;
    use veil_core::link::obfs::first_message_header;
    let Some((&first, data)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(first & 0x7f).max(1);
    let marked;
    let data = match (first & 0x80 != 0, data.split_first_chunk::<32>()) {
        (true, Some((representative, rest))) => {
            let (padding_len, body) = match rest.split_first_chunk::<2>() {
                Some((len, body)) => (u16::from_be_bytes(*len), body),
                None => (0, rest),
            };
            // The node's clock starts at Unix time 0: mark epoch 0.
            let mut message =
                first_message_header(&[0; 32], representative, 0, padding_len).to_vec();
            message.extend_from_slice(body);
            marked = message;
            &marked[..]
        }
        _ => data,
    };
    // A fresh node with a fresh inbound link, built once per process (key
    // derivation, the signed descriptor and the link's ephemeral key cost
    // more than most inputs) and copied per input.
    static FRESH: OnceLock<(FuzzNode, LinkId)> = OnceLock::new();
    let (node, link) = FRESH.get_or_init(|| {
        let mut node = fuzz_node(7);
        let link = node
            .handle(
                Instant::from_millis(1),
                OpenLink::accepted(Transport::Tcp, PEER),
            )
            .expect("fresh node has room");
        (node, link)
    });
    let (mut node, link) = (node.clone(), *link);
    let mut now = Instant::from_millis(1);
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
    assert_room_for_a_link(&node);
}

/// Node `b` of a [`linked_pair`] and its end of the link, built once per
/// process: the handshake (X25519, Ed25519) costs far more than anything a
/// fuzz input does, so every input starts from a copy of this state. The
/// state is a pure function of fixed seeds, so a copy is the same node an
/// input would have met after a fresh handshake.
fn established_node() -> (FuzzNode, LinkId) {
    static PAIR: OnceLock<(FuzzNode, LinkId)> = OnceLock::new();
    let (node, link) = PAIR.get_or_init(|| {
        let (_a, _la, b, lb) = linked_pair(None);
        (b, lb)
    });
    (node.clone(), *link)
}

/// Arbitrary bytes into an *established* link, after a real handshake
/// between two nodes. Nothing but a close may come of it: no cell is
/// delivered, because nothing an attacker writes authenticates.
pub fn established_link_input(data: &[u8]) {
    let (mut b, lb) = established_node();
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

/// The circuit the [`stream_cells`] harness built through node `b`, as the
/// peer's client: `b` is its one hop.
pub const STREAM_CIRCUIT: CircuitId = CircuitId(0x8000_0001);

/// A command byte with this bit set marks a *sealed* cell in
/// [`stream_cells`] input: the harness encrypts it as the client of
/// [`STREAM_CIRCUIT`] before `b` sees it.
pub const SEALED: u8 = 0x80;

/// The state every [`stream_cells`] input starts from: node `b` of a pair
/// linked with circuit streams (QUIC's form), its link, and the client
/// layers of [`STREAM_CIRCUIT`], a one-hop circuit the harness built
/// through `b` with a real `CREATE`/`CREATED` hop handshake. Built once per
/// process, deterministic from fixed seeds, copied per input.
#[derive(Clone)]
struct StreamState {
    node: FuzzNode,
    link: LinkId,
    layers: ClientLayers,
}

fn stream_state() -> StreamState {
    static STATE: OnceLock<StreamState> = OnceLock::new();
    STATE
        .get_or_init(|| {
            use veil_core::circuit::HopHandshakeClient;
            let (_a, _la, mut b, lb) = linked_pair(Some([0x5a; 32]));
            let now = Instant::from_millis(1);
            let (client, create) = HopHandshakeClient::start(&b.onion_public_key(), [0x33; 32])
                .expect("b's onion key is a valid key");
            let mut cell = [0u8; CELL_LEN];
            cell[..4].copy_from_slice(&STREAM_CIRCUIT.0.to_be_bytes());
            cell[4] = CellCommand::Create.code();
            cell[5..].copy_from_slice(&create);
            b.handle(
                now,
                ReceiveStreamCell {
                    link: lb,
                    cell: &cell,
                },
            )
            .expect("b takes the CREATE");
            let mut created = None;
            drain_all(&mut b, now, |o| {
                if let Output::StreamCell { circuit, cell, .. } = o {
                    let repr = CellRepr::parse((*cell).try_into().expect("a whole cell"))
                        .expect("b sends valid cells");
                    if *circuit == STREAM_CIRCUIT && repr.command == CellCommand::Created {
                        created = Some(repr.body);
                    }
                }
            });
            let hop = client
                .finish(&created.expect("b answers CREATED"))
                .expect("the hop handshake completes");
            let mut layers = ClientLayers::new();
            layers.push(hop).expect("one hop fits");
            StreamState {
                node: b,
                link: lb,
                layers,
            }
        })
        .clone()
}

/// The cell `stream_cells` offers for one 514-byte piece of its input
/// (zero-padded if short). A piece whose command byte (byte 4) is
/// `SEALED | RELAY` or `SEALED | RELAY_EARLY` is sealed: its bytes 5..498
/// are the plaintext relay payload (relay command, length, data), which the
/// harness encrypts as the client of [`STREAM_CIRCUIT`] (whatever its first
/// four bytes say), so `b` recognises it and acts on the message inside.
/// Any other piece is offered as it is.
pub fn stream_cell(piece: &[u8], layers: &mut ClientLayers) -> ([u8; CELL_LEN], bool) {
    let mut cell = [0u8; CELL_LEN];
    for (dst, src) in cell.iter_mut().zip(piece) {
        *dst = *src;
    }
    let command = cell[4] & !SEALED;
    let sealed = cell[4] & SEALED != 0
        && (command == CellCommand::Relay.code() || command == CellCommand::RelayEarly.code());
    if sealed {
        let mut payload = [0u8; PAYLOAD_LEN];
        payload.copy_from_slice(&cell[5..5 + PAYLOAD_LEN]);
        let body = layers
            .originate_forward(0, command, &payload)
            .expect("the circuit has hop 0");
        cell[..4].copy_from_slice(&STREAM_CIRCUIT.0.to_be_bytes());
        cell[4] = command;
        cell[5..].copy_from_slice(&body.to_bytes());
    }
    (cell, sealed)
}

/// Arbitrary cells on the circuit streams of an established stream link
/// (QUIC's form, link spec §10), after a real bound handshake and a real
/// one-hop circuit: each 514 bytes of `data` is one cell (see
/// [`stream_cell`]: raw, or sealed by the harness as the circuit's client),
/// offered with `ReceiveStreamCell` (a refused one is offered again after
/// draining, as an adapter does). A peer may send anything there: the node
/// must not panic, must deliver a message only if the peer sealed cells on
/// its circuit, must originate on that circuit only cells the client
/// recognises (it is an honest hop; what it relays from the circuit's far
/// side is the far side's), and must stay usable.
pub fn stream_cells(data: &[u8]) {
    stream_cells_run(data);
}

/// What one [`stream_cells`] input did: for the tests that show the harness
/// reaches past the circuit layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamRun {
    /// Whole messages `b` delivered to its owner.
    pub messages: usize,
    /// Relay cells `b` sent back on [`STREAM_CIRCUIT`], each recognised by
    /// its client.
    pub recognised: usize,
    /// Relay cells `b` passed on to the client from the circuit's far side.
    pub relayed: usize,
    /// Cells `b` sent on links or streams other than the circuit's way
    /// back (a `CREATE` for an `EXTEND`, `DESTROY`s, …).
    pub other_cells: usize,
}

/// [`stream_cells`], saying what the input did.
pub fn stream_cells_run(data: &[u8]) -> StreamRun {
    let StreamState {
        node: mut b,
        link: lb,
        mut layers,
    } = stream_state();
    let now = Instant::from_millis(1);
    let mut sealed_any = false;
    let mut run = StreamRun::default();
    // What `b` sends back on the circuit, and whether it only relayed it:
    // a relay cell the peer sent on a circuit `b` extended over the same
    // link comes from the circuit's far side, and `b` passes it on towards
    // the client with its layer added, as an honest hop does (relay spec
    // §6.1). Only what `b` itself originates must be recognised.
    let mut backward: Vec<([u8; CELL_LEN], bool)> = Vec::new();
    let mut check = |o: &Output<'_>, sealed_any: bool, relaying: bool| match o {
        Output::Message { .. } => {
            assert!(sealed_any, "a message from cells no client sealed");
            run.messages += 1;
        }
        Output::StreamCell { circuit, cell, .. } if *circuit == STREAM_CIRCUIT => {
            backward.push(((*cell).try_into().expect("a whole cell"), relaying));
        }
        Output::StreamCell { .. } | Output::Transmit { .. } => run.other_cells += 1,
        _ => {}
    };
    for piece in data.chunks(CELL_LEN) {
        let (cell, sealed) = stream_cell(piece, &mut layers);
        sealed_any |= sealed;
        let relaying = !sealed
            && CircuitId::of(&cell) != STREAM_CIRCUIT
            && CellCommand::from_code(cell[4]).is_some_and(CellCommand::is_relay);
        for _ in 0..2 {
            let input = ReceiveStreamCell {
                link: lb,
                cell: &cell,
            };
            if b.handle(now, input).is_ok() {
                break;
            }
            drain_all(&mut b, now, |o| check(o, sealed_any, relaying));
        }
        drain_all(&mut b, now, |o| check(o, sealed_any, relaying));
    }
    b.handle(now.saturating_add(Duration::from_secs(1)), Timeout);
    drain_all(&mut b, now, |o| check(o, sealed_any, false));
    // The client takes every cell in order (each one chains the layer's
    // tweak, recognised or not).
    for (cell, relayed) in &backward {
        let repr = CellRepr::parse(cell).expect("b sends valid cells");
        if repr.command == CellCommand::Relay {
            let mut body = CellBody::from_bytes(&repr.body);
            let hop = layers.receive_backward(CellCommand::Relay.code(), &mut body);
            if *relayed {
                run.relayed += 1;
            } else {
                assert_eq!(
                    hop,
                    Some(0),
                    "the circuit's only hop sent a cell its client cannot recognise"
                );
                run.recognised += 1;
            }
        }
    }
    assert_room_for_a_link(&b);
    run
}

/// Cell parser, and the parsers of every body kind inside it.
pub fn cell(data: &[u8]) {
    use veil_core::cell::{parse_create, parse_created, CellRepr, ExtendRepr, RelayMessage};
    let mut bytes = [0u8; veil_core::link::CELL_LEN];
    for (dst, src) in bytes.iter_mut().zip(data) {
        *dst = *src;
    }
    if let Ok(repr) = CellRepr::parse(&bytes) {
        assert_eq!(repr.emit(), bytes, "cell parse/emit is not an identity");
        let _ = parse_create(&repr.body);
        let _ = parse_created(&repr.body);
        // Any body read as a DIAL_BACK's: what parses emits back the same.
        if let Ok(dial_back) = veil_core::cell::DialBack::parse(&repr.body) {
            let again = CellRepr::parse(&dial_back.emit()).expect("an emitted cell parses");
            assert_eq!(veil_core::cell::DialBack::parse(&again.body), Ok(dial_back));
        }
        // ... and as a DESCRIPTOR_REQUEST's (relay spec §2.3).
        if let Ok(request) = veil_core::cell::DescriptorRequest::parse(&repr.body) {
            let again = CellRepr::parse(&request.emit()).expect("an emitted cell parses");
            assert_eq!(
                veil_core::cell::DescriptorRequest::parse(&again.body),
                Ok(request)
            );
        }
        // ... and as a PADDING_NEGOTIATE's (relay spec §3).
        if let Ok(request) = veil_core::cell::parse_padding_negotiate(&repr.body) {
            let again = CellRepr::parse(&veil_core::cell::emit_padding_negotiate(request))
                .expect("an emitted cell parses");
            assert_eq!(
                veil_core::cell::parse_padding_negotiate(&again.body),
                Ok(request)
            );
        }
        let body = veil_core::cgo::CellBody::from_bytes(&repr.body);
        if let Ok(message) = RelayMessage::parse(&body.payload) {
            let again = message.emit().expect("a parsed message fits a cell");
            assert_eq!(RelayMessage::parse(&again), Ok(message));
            // Any relay message's data read as an EXTEND's.
            if let Ok(extend) = ExtendRepr::parse(message.data) {
                // One byte more than relay data: data that ends right after
                // the handshake gains an address count.
                let mut data = [0u8; veil_core::cell::RELAY_DATA_LEN + 1];
                let len = extend.emit(&mut data).expect("a parsed EXTEND fits");
                assert_eq!(ExtendRepr::parse(&data[..len]), Ok(extend));
            }
            // ... and as the data of the rendezvous messages (relay spec
            // §13), and as a decrypted introduction.
            let _ = veil_core::cell::parse_introduce1(message.data);
            let _ = veil_core::cell::parse_rendezvous1(message.data);
            if let Ok(payload) = veil_core::cell::IntroductionPayload::parse(message.data) {
                let mut data = [0u8; veil_core::cell::MAX_INTRODUCTION_PAYLOAD];
                let len = payload.emit(&mut data).expect("a parsed introduction fits");
                assert_eq!(
                    veil_core::cell::IntroductionPayload::parse(&data[..len]),
                    Ok(payload)
                );
            }
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
    // The relay's onion key and the client's started handshake, built once
    // per process and copied per input.
    static KEYS: OnceLock<(StaticKeypair, HopHandshakeClient)> = OnceLock::new();
    let (onion, client) = KEYS.get_or_init(|| {
        let onion = StaticKeypair::from_secret_bytes([3; 32]);
        let (client, _) =
            HopHandshakeClient::start(&onion.public(), [5; 32]).expect("a valid onion key");
        (onion, client)
    });
    let _ = respond(&[onion], [4; 32], &body);
    let _ = client.clone().finish(&body);
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

/// A small deterministic generator for the structure-aware mutators.
struct Pick(u64);

impl Pick {
    fn new(seed: u32) -> Self {
        Pick(u64::from(seed) ^ 0x9e37_79b9_7f4a_7c15)
    }

    /// splitmix64.
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n` (0 if `n` is 0).
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Command bytes worth trying at byte 4 of a [`stream_cells`] cell: every
/// cell command, and the two sealed ones.
const CELL_COMMANDS: [u8; 9] = [0, 1, 2, 3, 4, 5, 6, SEALED | 3, SEALED | 4];

/// Circuit ids worth trying: the link's own, the harness circuit, another
/// of the peer's half, one of `b`'s half.
const CIRCUIT_IDS: [u32; 4] = [0, STREAM_CIRCUIT.0, 0x8000_0002, 0x0000_0001];

/// The structure-aware mutator of the `stream_cells` target: it keeps the
/// input a whole number of 514-byte cells (once `max_size` allows one), and
/// mutates one cell's bytes (with `mutate`, libFuzzer's own byte mutator),
/// its header (command, circuit id, relay command and length of a sealed
/// cell), or the sequence of cells (duplicate, drop, swap, copy over).
/// Returns the new size, at most `max_size`.
pub fn mutate_cells(
    data: &mut [u8],
    size: usize,
    max_size: usize,
    seed: u32,
    mutate: &mut dyn FnMut(&mut [u8], usize, usize) -> usize,
) -> usize {
    let max_size = max_size.min(data.len());
    let max_cells = max_size / CELL_LEN;
    if max_cells == 0 {
        // Not even one cell fits: plain byte mutation.
        let size = size.min(max_size);
        return mutate(&mut data[..max_size], size, max_size);
    }
    let mut pick = Pick::new(seed);
    // Whole cells: a partial last cell is zero-padded, as the target reads it.
    let mut cells = size.div_ceil(CELL_LEN).clamp(1, max_cells);
    let used = size.min(cells * CELL_LEN);
    data[used..cells * CELL_LEN].fill(0);
    let at = pick.below(cells);
    let cell = at * CELL_LEN..(at + 1) * CELL_LEN;
    match pick.below(16) {
        // Bytes of one cell, most often its first bytes (header, relay
        // command and length, fragment header).
        0..=4 => {
            let len = [8, 32, 64, CELL_LEN][pick.below(4)];
            let part = &mut data[cell.start..cell.start + len];
            let _ = mutate(part, len, len);
        }
        5..=7 => {
            let _ = mutate(&mut data[cell], CELL_LEN, CELL_LEN);
        }
        8 => data[cell.start + 4] = CELL_COMMANDS[pick.below(CELL_COMMANDS.len())],
        9 => {
            let id = CIRCUIT_IDS[pick.below(CIRCUIT_IDS.len())];
            data[cell.start..cell.start + 4].copy_from_slice(&id.to_be_bytes());
        }
        10 => {
            // A sealed relay message: its relay command and a length.
            data[cell.start + 4] = SEALED | [3, 4][pick.below(2)];
            data[cell.start + 5] = 1 + pick.below(6) as u8;
            let len = pick.below(RELAY_DATA_LEN + 1) as u16;
            data[cell.start + 6..cell.start + 8].copy_from_slice(&len.to_be_bytes());
        }
        11 if cells < max_cells => {
            // Duplicate a cell in place.
            let end = cells * CELL_LEN;
            data.copy_within(cell.start..end, cell.end);
            cells += 1;
        }
        12 if cells > 1 => {
            // Drop a cell.
            data.copy_within(cell.end..cells * CELL_LEN, cell.start);
            cells -= 1;
        }
        13 if cells > 1 => {
            // Swap two cells.
            let other = pick.below(cells) * CELL_LEN;
            let mut tmp = [0u8; CELL_LEN];
            tmp.copy_from_slice(&data[cell.clone()]);
            data.copy_within(other..other + CELL_LEN, cell.start);
            data[other..other + CELL_LEN].copy_from_slice(&tmp);
        }
        14 if cells > 1 => {
            // Copy one cell over another.
            let other = pick.below(cells) * CELL_LEN;
            data.copy_within(other..other + CELL_LEN, cell.start);
        }
        _ if cells < max_cells => {
            // Append a fresh cell: a header from the lists, zero body.
            let start = cells * CELL_LEN;
            data[start..start + CELL_LEN].fill(0);
            let id = CIRCUIT_IDS[pick.below(CIRCUIT_IDS.len())];
            data[start..start + 4].copy_from_slice(&id.to_be_bytes());
            data[start + 4] = CELL_COMMANDS[pick.below(CELL_COMMANDS.len())];
            cells += 1;
        }
        _ => {
            let _ = mutate(&mut data[cell], CELL_LEN, CELL_LEN);
        }
    }
    cells * CELL_LEN
}

/// The crossover of the `stream_cells` target: the first cells of one
/// input, then the last cells of the other, cut on cell boundaries.
pub fn cross_cells(one: &[u8], two: &[u8], out: &mut [u8], seed: u32) -> usize {
    let mut pick = Pick::new(seed);
    let max_cells = out.len() / CELL_LEN;
    let (n1, n2) = (one.len() / CELL_LEN, two.len() / CELL_LEN);
    if max_cells == 0 || n1 + n2 == 0 {
        let n = one.len().min(out.len());
        out[..n].copy_from_slice(&one[..n]);
        return n;
    }
    let head = pick.below(n1 + 1).min(max_cells);
    let tail_start = pick.below(n2 + 1);
    let tail = (n2 - tail_start).min(max_cells - head);
    out[..head * CELL_LEN].copy_from_slice(&one[..head * CELL_LEN]);
    out[head * CELL_LEN..(head + tail) * CELL_LEN]
        .copy_from_slice(&two[tail_start * CELL_LEN..(tail_start + tail) * CELL_LEN]);
    if head + tail == 0 {
        let src = if n1 > 0 { one } else { two };
        out[..CELL_LEN].copy_from_slice(&src[..CELL_LEN]);
        return CELL_LEN;
    }
    (head + tail) * CELL_LEN
}

/// Inputs for [`stream_cells`] that reach past the circuit layer: complete
/// and partial messages, acknowledgements, credit, `EXTEND` to the linked
/// peer and to an unknown node, tampering and `DESTROY` on the harness
/// circuit, and the raw cells of a stranger. The seed corpus of the target
/// (`fuzz/corpus/stream_cells/`) starts from these.
pub fn stream_cells_seeds() -> Vec<(&'static str, Vec<u8>)> {
    use veil_core::cell::emit_create;
    fn raw(id: u32, command: u8, body: &[u8]) -> [u8; CELL_LEN] {
        let mut cell = [0u8; CELL_LEN];
        cell[..4].copy_from_slice(&id.to_be_bytes());
        cell[4] = command;
        cell[5..5 + body.len()].copy_from_slice(body);
        cell
    }
    fn sealed(command: CellCommand, relay: u8, data: &[u8]) -> [u8; CELL_LEN] {
        let mut payload = vec![relay];
        payload.extend_from_slice(&(data.len() as u16).to_be_bytes());
        payload.extend_from_slice(data);
        raw(STREAM_CIRCUIT.0, SEALED | command.code(), &payload)
    }
    fn fragment(id: u8, total: u32, offset: u32, bytes: &[u8]) -> Vec<u8> {
        let mut data = vec![id; 16];
        data.extend_from_slice(&total.to_be_bytes());
        data.extend_from_slice(&offset.to_be_bytes());
        data.extend_from_slice(bytes);
        data
    }
    let relay = CellCommand::Relay;
    let early = CellCommand::RelayEarly;
    let (data, ack, extend, credit, padding) = (1, 2, 3, 5, 6);
    let hello = sealed(relay, data, &fragment(9, 5, 0, b"hello"));
    let long: Vec<u8> = (0..600u32).map(|i| i as u8).collect();
    let first = sealed(relay, data, &fragment(8, 600, 0, &long[..466]));
    let second = sealed(relay, data, &fragment(8, 600, 466, &long[466..]));
    let create = emit_create(&[7; 48]).expect("48 bytes fit a CREATE");
    let extend_to = |id: [u8; 32]| {
        let mut data = id.to_vec();
        data.extend_from_slice(&create[..52]);
        sealed(early, extend, &data)
    };
    let peer = Identity::from_secret_bytes([1; 32]).node_id().0;
    let mut stranger = raw(0x8000_0007, CellCommand::Relay.code(), &[]);
    stranger[5..].fill(0x6b);
    let seeds: [(&str, Vec<[u8; CELL_LEN]>); 11] = [
        (
            "raw-create-relay-descriptor",
            vec![
                raw(0x8000_0007, 1, &[]),
                raw(0x8000_0007, 3, &[]),
                raw(0, 6, &[]),
            ],
        ),
        ("sealed-message", vec![hello]),
        ("sealed-two-fragments", vec![first, second]),
        ("sealed-ack", vec![sealed(relay, ack, &[9; 16])]),
        ("sealed-credit", vec![sealed(relay, credit, &[0, 40])]),
        ("sealed-extend-to-peer", vec![extend_to(peer)]),
        (
            "sealed-extend-to-stranger",
            vec![extend_to([0x42; 32]), hello],
        ),
        ("sealed-padding", vec![sealed(early, padding, &[])]),
        // The peer, as the next hop of the circuit b extended to it, sends
        // a relay cell back before its CREATED: b relays it to the client.
        (
            "extend-then-far-side-relay",
            vec![
                extend_to(peer),
                // The id b draws for the EXTEND from its CSPRNG stream (after
                // the node table key took its 32 bytes).
                raw(0x1664_5284, CellCommand::Relay.code(), &[]),
                raw(STREAM_CIRCUIT.0, CellCommand::RelayEarly.code(), &[]),
            ],
        ),
        (
            "destroy-then-message",
            vec![raw(STREAM_CIRCUIT.0, 5, &[2]), hello],
        ),
        (
            "message-then-tampered",
            vec![hello, stranger, {
                let mut c = stranger;
                c[..4].copy_from_slice(&STREAM_CIRCUIT.0.to_be_bytes());
                c
            }],
        ),
    ];
    seeds
        .into_iter()
        .map(|(name, cells)| (name, cells.concat()))
        .collect()
}

/// A valid signed descriptor (of a fuzz node), the seed of the
/// `descriptor` target.
pub fn descriptor_seed() -> Vec<u8> {
    fuzz_node(3).descriptor().to_vec()
}

/// A valid signed descriptor of a node reached through two introducers
/// (relay spec §2), the second seed of the `descriptor` target.
pub fn introduced_descriptor_seed() -> Vec<u8> {
    use veil_core::identity::{Address, Introducer, NodeId, Transport, MAX_DESCRIPTOR_LEN};
    let identity = Identity::from_secret_bytes([3; 32]);
    let at = |text: &str| Address {
        transport: Transport::Tcp,
        socket: text.parse().expect("an address"),
    };
    let repr = DescriptorRepr {
        identity: identity.public(),
        onion_key: [4; 32],
        relay: true,
        issued_at: 1_700_000_000,
        expires_at: 1_700_000_000 + 3 * 3600,
        addresses: veil_core::heapless::Vec::new(),
    };
    let introducers = [
        Introducer {
            node_id: NodeId([5; 32]),
            onion_key: [6; 32],
            address: at("198.51.100.7:9001"),
        },
        Introducer {
            node_id: NodeId([7; 32]),
            onion_key: [8; 32],
            address: at("[2001:db8::7]:9001"),
        },
    ];
    let mut buf = [0u8; MAX_DESCRIPTOR_LEN];
    let n = repr
        .emit_signed_introduced(&introducers, &identity, &mut buf)
        .expect("a valid descriptor");
    buf[..n].to_vec()
}

/// The introduction point the `service_descriptor` target checks claims
/// for.
const INTRO_CLAIM_POINT: veil_core::identity::NodeId = veil_core::identity::NodeId([0x1c; 32]);

/// A valid introduction claim (`ESTABLISH_INTRO`'s data), a seed of the
/// `service_descriptor` target.
pub fn intro_claim_seed() -> Vec<u8> {
    fuzz_service_keys().intro_claim(&INTRO_CLAIM_POINT).to_vec()
}

/// A valid signed service descriptor with one introduction point and one
/// address, the seed of the `service_descriptor` target.
pub fn service_descriptor_seed() -> Vec<u8> {
    signed_service_descriptor(&[vec!["198.51.100.7:9001".to_string()]])
}

/// The largest valid service descriptor: three introduction points of four
/// IPv6 addresses each, the second seed of the `service_descriptor` target.
pub fn largest_service_descriptor_seed() -> Vec<u8> {
    let point = |first: u16| -> Vec<String> {
        (first..first + 4)
            .map(|i| format!("[2001:db8::{i:x}]:{i}"))
            .collect()
    };
    signed_service_descriptor(&[point(1), point(5), point(9)])
}

/// A service descriptor of the fuzz service with one introduction point
/// per entry of `points`, each with those (TCP) addresses.
fn signed_service_descriptor(points: &[Vec<String>]) -> Vec<u8> {
    use veil_core::identity::{Address, IntroPoint, NodeId, Transport};
    let keys = fuzz_service_keys();
    let mut intro_points = veil_core::heapless::Vec::new();
    for (i, addresses) in (0u8..).zip(points) {
        let addresses = addresses.iter().map(|text| Address {
            transport: Transport::Tcp,
            socket: text.parse().expect("an address"),
        });
        let point = IntroPoint {
            node_id: NodeId([i + 1; 32]),
            onion_key: [i + 101; 32],
            addresses: addresses.collect(),
        };
        intro_points.push(point).expect("at most three points");
    }
    let descriptor = ServiceDescriptor {
        service_key: keys.service_key(),
        onion_key: keys.onion_public(),
        issued_at: 1_700_000_000,
        intro_points,
    };
    let mut out = vec![0u8; descriptor.wire_len()];
    let n = descriptor
        .emit_signed(keys, &mut out)
        .expect("a valid service descriptor");
    out.truncate(n);
    out
}
