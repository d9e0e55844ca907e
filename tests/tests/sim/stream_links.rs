//! Links with circuit streams (link spec §10), driven by hand: the channel
//! binding must match on both ends, circuit cells leave and arrive one at a
//! time beside the link's frames and keep the queue's order, and cells that
//! are out of place close the link.

use crate::common;

use common::{
    events_of, outputs, relay_cell_on as relay_cell, small_node as node, Out, SmallNode as Small,
};
use veil_core::identity::Transport;
use veil_core::link::{CloseReason, LinkPhase, CELL_LEN};
use veil_core::node::{
    Event, LinkId, OpenLink, Receive, ReceiveStreamCell, SendCell, StreamCellError,
};
use veil_core::time::Instant;

/// Where the other end connects from.
const PEER: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 9));

/// A link-level padding cell (circuit id 0).
fn padding_cell() -> [u8; CELL_LEN] {
    [0; CELL_LEN]
}

/// Moves the link bytes of `from` to `to` once; returns `from`'s other
/// outputs.
fn exchange(from: &mut Small, to: &mut Small, to_link: LinkId) -> Vec<Out> {
    let mut rest = Vec::new();
    for o in outputs(from) {
        match o {
            Out::Transmit(_, bytes) => {
                let _ = to.handle(
                    Instant::ZERO,
                    Receive {
                        link: to_link,
                        bytes: &bytes,
                    },
                );
            }
            other => rest.push(other),
        }
    }
    rest
}

/// A cell offered on a circuit stream.
fn stream_cell(
    node: &mut Small,
    link: LinkId,
    cell: &[u8; CELL_LEN],
) -> Result<(), StreamCellError> {
    node.handle(Instant::ZERO, ReceiveStreamCell { link, cell })
}

fn open(node: &mut Small, dialled: bool, binding: Option<[u8; 32]>) -> LinkId {
    let how = if dialled {
        OpenLink::dialled(None, Transport::Quic, PEER)
    } else {
        OpenLink::accepted(Transport::Quic, PEER)
    };
    let how = OpenLink {
        circuit_streams: binding,
        ..how
    };
    node.handle(Instant::ZERO, how).unwrap()
}

/// Two nodes on one link with circuit streams, bound to `binding_a` at the
/// initiator and `binding_b` at the responder, after the handshake ran.
fn pair(
    binding_a: [u8; 32],
    binding_b: [u8; 32],
) -> (Small, Small, LinkId, LinkId, Vec<Out>, Vec<Out>) {
    let (mut a, mut b) = (node(1), node(2));
    let la = open(&mut a, true, Some(binding_a));
    let lb = open(&mut b, false, Some(binding_b));
    let (mut a_events, mut b_events) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        a_events.extend(exchange(&mut a, &mut b, lb));
        b_events.extend(exchange(&mut b, &mut a, la));
    }
    (a, b, la, lb, a_events, b_events)
}

fn closed_reason(outputs: &[Out]) -> Option<CloseReason> {
    events_of(outputs).into_iter().rev().find_map(|e| match e {
        Event::LinkClosed { reason, .. } => Some(reason),
        _ => None,
    })
}

#[test]
fn the_same_binding_on_both_ends_establishes_the_link() {
    let (a, b, la, lb, ..) = pair([7; 32], [7; 32]);
    assert_eq!(a.link_info(la).unwrap().phase, LinkPhase::Established);
    assert_eq!(b.link_info(lb).unwrap().phase, LinkPhase::Established);
}

#[test]
fn a_different_binding_fails_the_handshake() {
    // As when a man in the middle terminates TLS on each side: each end
    // exports a different value from its own TLS session.
    let (_, _, _, _, a_out, b_out) = pair([7; 32], [8; 32]);
    let b_reason = closed_reason(&b_out);
    let a_reason = closed_reason(&a_out);
    assert_eq!(b_reason, None, "the responder cannot tell at message 1");
    assert_eq!(
        a_reason,
        Some(CloseReason::AuthenticationFailed),
        "the initiator refuses message 2"
    );
}

#[test]
fn circuit_cells_travel_beside_the_frames_in_queue_order() {
    let (mut a, mut b, la, lb, ..) = pair([9; 32], [9; 32]);
    // Queue order: circuit cell, link-level cell, circuit cell.
    a.handle(
        Instant::ZERO,
        SendCell {
            link: la,
            cell: &relay_cell(0x8000_0001, 1),
        },
    )
    .unwrap();
    a.handle(
        Instant::ZERO,
        SendCell {
            link: la,
            cell: &padding_cell(),
        },
    )
    .unwrap();
    a.handle(
        Instant::ZERO,
        SendCell {
            link: la,
            cell: &relay_cell(0x8000_0002, 2),
        },
    )
    .unwrap();
    // No frame overtakes the circuit cell at the head, and the padding
    // cell goes in a frame before the circuit cell behind it.
    let sent = outputs(&mut a);
    let kinds: Vec<&str> = sent
        .iter()
        .map(|o| match o {
            Out::StreamCell(..) => "cell",
            Out::Transmit(..) => "frame",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["cell", "frame", "cell"]);
    let cells: Vec<[u8; CELL_LEN]> = sent
        .iter()
        .filter_map(|o| match o {
            Out::StreamCell(_, c) => Some(*c),
            _ => None,
        })
        .collect();
    assert_eq!((cells[0][5], cells[1][5]), (1, 2));

    // The receiver takes them as circuit cells of their own circuits.
    let before = b.link_info(lb).unwrap().stats.cells_received;
    stream_cell(&mut b, lb, &cells[0]).unwrap();
    stream_cell(&mut b, lb, &cells[1]).unwrap();
    let received: Vec<_> = events_of(&outputs(&mut b))
        .into_iter()
        .filter_map(|e| match e {
            Event::CellReceived { cell, .. } => Some(cell),
            _ => None,
        })
        .collect();
    assert_eq!(received, cells);
    assert_eq!(b.link_info(lb).unwrap().stats.cells_received, before + 2);
}

#[test]
fn a_full_event_queue_holds_a_stream_cell_back() {
    let (_, mut b, _, lb, ..) = pair([3; 32], [3; 32]);
    // Eight events fill B's queue; the ninth cell must wait, not be lost.
    for n in 0..8u8 {
        stream_cell(&mut b, lb, &relay_cell(0x8000_0001, n)).unwrap();
    }
    let held = relay_cell(0x8000_0001, 8);
    assert_eq!(
        stream_cell(&mut b, lb, &held),
        Err(StreamCellError::WouldBlock(lb))
    );
    assert_eq!(events_of(&outputs(&mut b)).len(), 8);
    stream_cell(&mut b, lb, &held).unwrap();
}

#[test]
fn out_of_place_cells_close_the_link() {
    // A link-level cell on a circuit stream.
    let (_, mut b, _, lb, ..) = pair([4; 32], [4; 32]);
    stream_cell(&mut b, lb, &padding_cell()).unwrap();
    assert_eq!(b.link_info(lb).unwrap().phase, LinkPhase::Closing);
    // The `Close` frame goes out, then the link is gone.
    let out = outputs(&mut b);
    assert!(matches!(out.first(), Some(Out::Transmit(..))));
    assert_eq!(closed_reason(&out), Some(CloseReason::ProtocolViolation));

    // A stream cell on a link without circuit streams is the adapter's
    // mistake: refused, the link stays.
    let (mut c, mut d) = (node(3), node(4));
    let lc = open(&mut c, true, None);
    let ld = open(&mut d, false, None);
    for _ in 0..3 {
        exchange(&mut c, &mut d, ld);
        exchange(&mut d, &mut c, lc);
    }
    assert_eq!(
        stream_cell(&mut d, ld, &relay_cell(1, 0)),
        Err(StreamCellError::NotAStreamLink(ld))
    );
    assert_eq!(d.link_info(ld).unwrap().phase, LinkPhase::Established);
    assert!(!outputs(&mut c)
        .iter()
        .any(|o| matches!(o, Out::StreamCell(..))));
}

#[test]
fn a_stream_cell_before_the_handshake_waits() {
    let mut b = node(2);
    let lb = open(&mut b, false, Some([1; 32]));
    assert_eq!(
        stream_cell(&mut b, lb, &relay_cell(0x8000_0001, 0)),
        Err(StreamCellError::WouldBlock(lb))
    );
}
