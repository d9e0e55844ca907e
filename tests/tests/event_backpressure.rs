//! A node with a small event queue: received cells wait in the transport
//! until there is room, and a link event that does not fit is delivered
//! later, never dropped.

mod common;

use common::{relay_cell_on, small_node as node, SmallNode as Small};
use veil_core::link::{CloseReason, ClosedBy, LinkRole, CELL_LEN};
use veil_core::node::{Event, LinkId};
use veil_core::time::Instant;

/// A relay cell on one circuit whose first body byte is `n`.
fn relay_cell(n: u8) -> [u8; CELL_LEN] {
    relay_cell_on(0x8000_0001, n)
}

/// Moves every pending transmit of `from` into `wire`.
fn flush(from: &mut Small, wire: &mut Vec<u8>) {
    let mut buf = [0u8; 4096];
    while let Some(t) = from.poll_transmit(Instant::ZERO, &mut buf) {
        wire.extend_from_slice(&buf[..t.len]);
    }
}

fn established() -> (Small, Small, LinkId, LinkId) {
    let (mut a, mut b) = (node(1), node(2));
    let la = a
        .open_link(Instant::ZERO, LinkRole::Initiator, None)
        .unwrap();
    let lb = b
        .open_link(Instant::ZERO, LinkRole::Responder, None)
        .unwrap();
    for _ in 0..3 {
        let (mut ab, mut ba) = (Vec::new(), Vec::new());
        flush(&mut a, &mut ab);
        b.handle_data(Instant::ZERO, lb, &ab).unwrap();
        flush(&mut b, &mut ba);
        a.handle_data(Instant::ZERO, la, &ba).unwrap();
    }
    while a.poll_event().is_some() {}
    while b.poll_event().is_some() {}
    (a, b, la, lb)
}

#[test]
fn cells_wait_in_the_transport_and_a_late_close_is_not_lost() {
    let (mut a, mut b, la, lb) = established();
    for n in 0..12u8 {
        a.send_cell(Instant::ZERO, la, &relay_cell(n)).unwrap();
    }
    let mut wire = Vec::new();
    flush(&mut a, &mut wire);
    a.close_link(Instant::ZERO, la, CloseReason::Normal)
        .unwrap();
    flush(&mut a, &mut wire);

    // b can take at most 8 events: it consumes only what fits.
    let consumed = b.handle_data(Instant::ZERO, lb, &wire).unwrap();
    assert!(
        consumed < wire.len(),
        "b held back input it had no room for"
    );
    let mut cells = Vec::new();
    let mut rest = &wire[consumed..];
    let mut closed = None;
    loop {
        while let Some(event) = b.poll_event() {
            match event {
                Event::CellReceived { cell, .. } => cells.push(cell[5]),
                Event::LinkClosed { reason, by, .. } => closed = Some((reason, by)),
                other => panic!("unexpected {other:?}"),
            }
        }
        if rest.is_empty() {
            break;
        }
        let n = b.handle_data(Instant::ZERO, lb, rest).unwrap();
        rest = &rest[n..];
    }
    while let Some(event) = b.poll_event() {
        if let Event::LinkClosed { reason, by, .. } = event {
            closed = Some((reason, by));
        }
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
        a.send_cell(Instant::ZERO, la, &relay_cell(n)).unwrap();
    }
    let mut wire = Vec::new();
    flush(&mut a, &mut wire);
    a.close_link(Instant::ZERO, la, CloseReason::Shutdown)
        .unwrap();
    flush(&mut a, &mut wire);
    assert_eq!(b.handle_data(Instant::ZERO, lb, &wire).unwrap(), wire.len());
    // The queue is full of cells; the close is recorded but waits.
    assert!(
        b.link_info(lb).is_some(),
        "closed slot kept until its event fits"
    );
    let events: Vec<Event> = std::iter::from_fn(|| b.poll_event()).collect();
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
    a.close_link(Instant::ZERO, la, CloseReason::Normal)
        .unwrap();
    // The transport never takes the `Close` frame (the peer stopped
    // reading): the adapter polls no transmit, only timers.
    let mut now = Instant::ZERO;
    let mut closed_at = None;
    for _ in 0..10 {
        let Some(deadline) = a.poll_timeout() else {
            break;
        };
        now = now.max(deadline);
        a.handle_timeout(now);
        while let Some(event) = a.poll_event() {
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
        a.send_cell(Instant::ZERO, la, &relay_cell(n)).unwrap();
    }
    let mut wire = Vec::new();
    flush(&mut a, &mut wire);
    let consumed = b.handle_data(Instant::ZERO, lb, &wire).unwrap();
    assert_eq!(consumed, wire.len(), "one message: every byte is taken");
    let mut cells = Vec::new();
    while let Some(event) = b.poll_event() {
        if let Event::CellReceived { cell, .. } = event {
            cells.push(cell[5]);
        }
    }
    assert_eq!(
        cells,
        (0..12).collect::<Vec<u8>>(),
        "the held cells were handled as events were taken, in order"
    );
}
