//! A node with a small event queue: received cells wait in the transport
//! until there is room, and a link event that does not fit is delivered
//! later, never dropped.

use crate::common;

use common::{events_of, outputs, relay_cell_on, small_node as node, Out, SmallNode as Small};
use veil_core::identity::Transport;
use veil_core::link::{CloseReason, ClosedBy, CELL_LEN};
use veil_core::node::{
    CloseLink, Event, LinkId, OpenLink, Receive, SendCell, Timeout, TransportRoom,
};
use veil_core::time::Instant;

/// Where the other end connects from.
const PEER: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 9));

/// A relay cell on one circuit whose first body byte is `n`.
fn relay_cell(n: u8) -> [u8; CELL_LEN] {
    relay_cell_on(0x8000_0001, n)
}

/// Drains `from`: its transmits go into `wire`, its events are returned.
fn flush(from: &mut Small, wire: &mut Vec<u8>) -> Vec<Event> {
    let out = outputs(from);
    for o in &out {
        if let Out::Transmit(_, bytes) = o {
            wire.extend_from_slice(bytes);
        }
    }
    events_of(&out)
}

fn receive(node: &mut Small, link: LinkId, bytes: &[u8]) -> usize {
    node.handle(Instant::ZERO, Receive { link, bytes }).unwrap()
}

fn established() -> (Small, Small, LinkId, LinkId) {
    let (mut a, mut b) = (node(1), node(2));
    let la = a
        .handle(Instant::ZERO, OpenLink::dialled(None, Transport::Tcp, PEER))
        .unwrap();
    let lb = b
        .handle(Instant::ZERO, OpenLink::accepted(Transport::Tcp, PEER))
        .unwrap();
    for _ in 0..3 {
        let (mut ab, mut ba) = (Vec::new(), Vec::new());
        flush(&mut a, &mut ab);
        receive(&mut b, lb, &ab);
        flush(&mut b, &mut ba);
        receive(&mut a, la, &ba);
    }
    flush(&mut a, &mut Vec::new());
    flush(&mut b, &mut Vec::new());
    (a, b, la, lb)
}

#[test]
fn cells_wait_in_the_transport_and_a_late_close_is_not_lost() {
    let (mut a, mut b, la, lb) = established();
    for n in 0..12u8 {
        a.handle(
            Instant::ZERO,
            SendCell {
                link: la,
                cell: &relay_cell(n),
            },
        )
        .unwrap();
    }
    let mut wire = Vec::new();
    flush(&mut a, &mut wire);
    let close = CloseLink {
        link: la,
        reason: CloseReason::Normal,
    };
    a.handle(Instant::ZERO, close).unwrap();
    flush(&mut a, &mut wire);

    // b can take at most 8 events: it consumes only what fits.
    let consumed = receive(&mut b, lb, &wire);
    assert!(
        consumed < wire.len(),
        "b held back input it had no room for"
    );
    let mut cells = Vec::new();
    let mut rest = &wire[consumed..];
    let mut closed = None;
    loop {
        for event in flush(&mut b, &mut Vec::new()) {
            match event {
                Event::CellReceived { cell, .. } => cells.push(cell[5]),
                Event::LinkClosed { reason, by, .. } => closed = Some((reason, by)),
                other => panic!("unexpected {other:?}"),
            }
        }
        if rest.is_empty() {
            break;
        }
        let n = receive(&mut b, lb, rest);
        rest = &rest[n..];
    }
    assert_eq!(cells, (0..12).collect::<Vec<u8>>(), "every cell, in order");
    assert_eq!(closed, Some((CloseReason::Normal, ClosedBy::Peer)));
    assert!(
        b.link_info(lb).is_none(),
        "slot freed once its event was delivered"
    );
}

#[test]
fn a_link_event_that_does_not_fit_is_delivered_after_room_is_made() {
    let (mut a, mut b, la, lb) = established();
    // Fill b's event queue with exactly 8 cells, then close from a's side.
    for n in 0..8u8 {
        a.handle(
            Instant::ZERO,
            SendCell {
                link: la,
                cell: &relay_cell(n),
            },
        )
        .unwrap();
    }
    let mut wire = Vec::new();
    flush(&mut a, &mut wire);
    let close = CloseLink {
        link: la,
        reason: CloseReason::Shutdown,
    };
    a.handle(Instant::ZERO, close).unwrap();
    flush(&mut a, &mut wire);
    assert_eq!(receive(&mut b, lb, &wire), wire.len());
    // The queue is full of cells; the close is recorded but waits.
    assert!(
        b.link_info(lb).is_some(),
        "closed slot kept until its event fits"
    );
    let events = flush(&mut b, &mut Vec::new());
    assert_eq!(events.len(), 9);
    assert!(matches!(
        events.last(),
        Some(Event::LinkClosed {
            reason: CloseReason::Shutdown,
            by: ClosedBy::Peer,
            ..
        })
    ));
    assert!(b.link_info(lb).is_none());
}

#[test]
fn a_closing_link_whose_close_frame_is_never_taken_ends_after_the_grace_period() {
    use veil_core::link::CLOSE_GRACE;
    let (mut a, _b, la, _lb) = established();
    // The transport takes nothing more (the peer stopped reading), so the
    // `Close` frame never leaves: only timers run.
    a.handle(Instant::ZERO, TransportRoom::none(la)).unwrap();
    let close = CloseLink {
        link: la,
        reason: CloseReason::Normal,
    };
    a.handle(Instant::ZERO, close).unwrap();
    let mut now = Instant::ZERO;
    let mut closed_at = None;
    let mut buf = [0u8; 4096];
    for _ in 0..10 {
        let mut events = Vec::new();
        let deadline = veil_core::node::drain(&mut a, now, &mut buf, |_, o| {
            assert!(
                !matches!(o, veil_core::node::Output::Transmit { .. }),
                "nothing is given for a blocked link"
            );
            if let veil_core::node::Output::Event(e) = o {
                events.push(e);
            }
        })
        .unwrap();
        for event in events {
            if let Event::LinkClosed {
                link, reason, by, ..
            } = event
            {
                assert_eq!(
                    (link, reason, by),
                    (la, CloseReason::Normal, ClosedBy::Local)
                );
                closed_at = Some(now);
            }
        }
        if closed_at.is_some() {
            break;
        }
        now = now.max(deadline);
        a.handle(now, Timeout);
    }
    let closed_at = closed_at.expect("the closing link ended");
    assert!(closed_at.saturating_since(Instant::ZERO) >= CLOSE_GRACE);
    assert!(a.links().next().is_none(), "its slot is free");
}

#[test]
fn held_cells_go_on_when_room_appears_without_more_input() {
    // All twelve cells arrive in one link message, which the node takes
    // whole: the last four wait decrypted in the link for event room.
    // Nothing more arrives (a peer waiting for this node, say): taking
    // events must be enough for them to go on.
    let (mut a, mut b, la, lb) = established();
    for n in 0..12u8 {
        a.handle(
            Instant::ZERO,
            SendCell {
                link: la,
                cell: &relay_cell(n),
            },
        )
        .unwrap();
    }
    let mut wire = Vec::new();
    flush(&mut a, &mut wire);
    let consumed = receive(&mut b, lb, &wire);
    assert_eq!(consumed, wire.len(), "one message: every byte is taken");
    let cells: Vec<u8> = flush(&mut b, &mut Vec::new())
        .into_iter()
        .filter_map(|e| match e {
            Event::CellReceived { cell, .. } => Some(cell[5]),
            _ => None,
        })
        .collect();
    assert_eq!(
        cells,
        (0..12).collect::<Vec<u8>>(),
        "the held cells were handled as events were taken, in order"
    );
}

#[test]
fn a_short_buffer_is_an_error_that_names_the_size_and_loses_nothing() {
    use veil_core::node::{Output, PollError};
    let (mut a, _b, la, _lb) = established();
    a.handle(
        Instant::ZERO,
        SendCell {
            link: la,
            cell: &relay_cell(1),
        },
    )
    .unwrap();
    let mut small = [0u8; 100];
    let needed = match a.poll(Instant::ZERO, &mut small) {
        Err(PollError::BufferTooSmall { needed }) => needed,
        other => panic!("expected BufferTooSmall, got {other:?}"),
    };
    assert_eq!(needed, veil_core::link::MIN_TRANSMIT_BUFFER);
    let mut big = vec![0u8; needed];
    match a.poll(Instant::ZERO, &mut big) {
        Ok(Output::Transmit { link, bytes }) => {
            assert_eq!(link, la);
            assert!(bytes.len() > CELL_LEN, "the cell went out whole");
        }
        other => panic!("expected the transmit, got {other:?}"),
    }
}
