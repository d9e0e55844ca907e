//! Links with circuit streams (link spec §10), driven by hand: the channel
//! binding must match on both ends, circuit cells leave and arrive one at a
//! time beside the link's frames and keep the queue's order, and cells that
//! are out of place close the link.

mod common;

use common::{relay_cell_on as relay_cell, small_node as node, SmallNode as Small};
use veil_core::identity::Transport;
use veil_core::link::{CloseReason, LinkPhase, LinkRole, CELL_LEN};
use veil_core::node::{Event, LinkId, StreamCellError};
use veil_core::time::Instant;

/// A link-level padding cell (circuit id 0).
fn padding_cell() -> [u8; CELL_LEN] {
    [0; CELL_LEN]
}

/// Moves the link bytes of `from` to `to` once.
fn exchange(from: &mut Small, from_link: LinkId, to: &mut Small, to_link: LinkId) {
    let mut buf = [0u8; 4096];
    while let Some(n) = from.poll_link_transmit(Instant::ZERO, from_link, &mut buf) {
        let _ = to.handle_data(Instant::ZERO, to_link, &buf[..n]);
    }
}

/// Two nodes on one link with circuit streams, bound to `binding_a` at the
/// initiator and `binding_b` at the responder, after the handshake ran.
fn pair(binding_a: [u8; 32], binding_b: [u8; 32]) -> (Small, Small, LinkId, LinkId) {
    let (mut a, mut b) = (node(1), node(2));
    let la = a
        .open_stream_link(
            Instant::ZERO,
            LinkRole::Initiator,
            None,
            Transport::Quic,
            binding_a,
        )
        .unwrap();
    let lb = b
        .open_stream_link(
            Instant::ZERO,
            LinkRole::Responder,
            None,
            Transport::Quic,
            binding_b,
        )
        .unwrap();
    for _ in 0..3 {
        exchange(&mut a, la, &mut b, lb);
        exchange(&mut b, lb, &mut a, la);
    }
    (a, b, la, lb)
}

fn closed_reason(node: &mut Small) -> Option<CloseReason> {
    let mut reason = None;
    while let Some(e) = node.poll_event() {
        if let Event::LinkClosed { reason: r, .. } = e {
            reason = Some(r);
        }
    }
    reason
}

#[test]
fn the_same_binding_on_both_ends_establishes_the_link() {
    let (a, b, la, lb) = pair([7; 32], [7; 32]);
    assert_eq!(a.link_info(la).unwrap().phase, LinkPhase::Established);
    assert_eq!(b.link_info(lb).unwrap().phase, LinkPhase::Established);
    assert!(a.has_circuit_streams(la) && b.has_circuit_streams(lb));
}

#[test]
fn a_different_binding_fails_the_handshake() {
    // As when a man in the middle terminates TLS on each side: each end
    // exports a different value from its own TLS session.
    let (mut a, mut b, _, _) = pair([7; 32], [8; 32]);
    let b_reason = closed_reason(&mut b);
    let a_reason = closed_reason(&mut a);
    assert_eq!(b_reason, None, "the responder cannot tell at message 1");
    assert_eq!(
        a_reason,
        Some(CloseReason::AuthenticationFailed),
        "the initiator refuses message 2"
    );
}

#[test]
fn circuit_cells_travel_beside_the_frames_in_queue_order() {
    let (mut a, mut b, la, lb) = pair([9; 32], [9; 32]);
    while a.poll_event().is_some() {}
    while b.poll_event().is_some() {}
    // Queue order: circuit cell, link-level cell, circuit cell.
    a.send_cell(Instant::ZERO, la, &relay_cell(0x8000_0001, 1))
        .unwrap();
    a.send_cell(Instant::ZERO, la, &padding_cell()).unwrap();
    a.send_cell(Instant::ZERO, la, &relay_cell(0x8000_0002, 2))
        .unwrap();
    let mut buf = [0u8; 4096];
    // The head is a circuit cell: no frame may overtake it.
    assert!(a.poll_link_transmit(Instant::ZERO, la, &mut buf).is_none());
    let first = a.poll_stream_cell(Instant::ZERO, la).expect("first cell");
    assert_eq!(first[5], 1);
    // Now the padding cell heads the queue: it goes in a frame first.
    assert!(a.poll_stream_cell(Instant::ZERO, la).is_none());
    assert!(a.poll_link_transmit(Instant::ZERO, la, &mut buf).is_some());
    let second = a.poll_stream_cell(Instant::ZERO, la).expect("second cell");
    assert_eq!(second[5], 2);
    assert!(!a.has_stream_cell(la));

    // The receiver takes them as circuit cells of their own circuits.
    let before = b.link_info(lb).unwrap().stats.cells_received;
    b.handle_stream_cell(Instant::ZERO, lb, &first).unwrap();
    b.handle_stream_cell(Instant::ZERO, lb, &second).unwrap();
    let cells: Vec<_> = std::iter::from_fn(|| b.poll_event())
        .filter_map(|e| match e {
            Event::CellReceived { cell, .. } => Some(cell),
            _ => None,
        })
        .collect();
    assert_eq!(cells, vec![first, second]);
    assert_eq!(b.link_info(lb).unwrap().stats.cells_received, before + 2);
}

#[test]
fn a_full_event_queue_holds_a_stream_cell_back() {
    let (mut a, mut b, la, lb) = pair([3; 32], [3; 32]);
    while a.poll_event().is_some() {}
    while b.poll_event().is_some() {}
    let _ = la;
    // Eight events fill B's queue; the ninth cell must wait, not be lost.
    for n in 0..8u8 {
        b.handle_stream_cell(Instant::ZERO, lb, &relay_cell(0x8000_0001, n))
            .unwrap();
    }
    let held = relay_cell(0x8000_0001, 8);
    assert_eq!(
        b.handle_stream_cell(Instant::ZERO, lb, &held),
        Err(StreamCellError::WouldBlock(lb))
    );
    assert!(b.poll_event().is_some());
    b.handle_stream_cell(Instant::ZERO, lb, &held).unwrap();
}

#[test]
fn out_of_place_cells_close_the_link() {
    // A link-level cell on a circuit stream.
    let (_, mut b, _, lb) = pair([4; 32], [4; 32]);
    while b.poll_event().is_some() {}
    b.handle_stream_cell(Instant::ZERO, lb, &padding_cell())
        .unwrap();
    assert_eq!(b.link_info(lb).unwrap().phase, LinkPhase::Closing);
    // The `Close` frame goes out, then the link is gone.
    let mut buf = [0u8; 4096];
    assert!(b.poll_link_transmit(Instant::ZERO, lb, &mut buf).is_some());
    assert_eq!(closed_reason(&mut b), Some(CloseReason::ProtocolViolation));

    // A stream cell on a link without circuit streams is the adapter's
    // mistake: refused, the link stays.
    let (mut c, mut d) = (node(3), node(4));
    let lc = c
        .open_link(Instant::ZERO, LinkRole::Initiator, None)
        .unwrap();
    let ld = d
        .open_link(Instant::ZERO, LinkRole::Responder, None)
        .unwrap();
    for _ in 0..3 {
        exchange(&mut c, lc, &mut d, ld);
        exchange(&mut d, ld, &mut c, lc);
    }
    assert_eq!(
        d.handle_stream_cell(Instant::ZERO, ld, &relay_cell(1, 0)),
        Err(StreamCellError::NotAStreamLink(ld))
    );
    assert_eq!(d.link_info(ld).unwrap().phase, LinkPhase::Established);
    assert!(c.poll_stream_cell(Instant::ZERO, lc).is_none());
}

#[test]
fn a_stream_cell_before_the_handshake_waits() {
    let mut b = node(2);
    let lb = b
        .open_stream_link(
            Instant::ZERO,
            LinkRole::Responder,
            None,
            Transport::Quic,
            [1; 32],
        )
        .unwrap();
    assert_eq!(
        b.handle_stream_cell(Instant::ZERO, lb, &relay_cell(0x8000_0001, 0)),
        Err(StreamCellError::WouldBlock(lb))
    );
}
