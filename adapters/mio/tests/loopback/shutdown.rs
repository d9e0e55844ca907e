//! A clean shutdown closes every link with `Shutdown`, and the node dials
//! nobody afterwards, not even its bootstrap address.

use veil_core::link::{CloseReason, ClosedBy};
use veil_core::node::Event;
use veil_mio::DialError;

use crate::support::{drive, link_up, Peer};

#[test]
fn shutdown_closes_links_and_dials_no_more() {
    let mut a = Peer::new(21);
    let mut b = Peer::new(22);
    let b_addr = b.rt.local_addr();
    link_up(&mut b, &mut a);
    // With no link left, A would dial this again at once.
    a.rt.add_bootstrap(b_addr).unwrap();
    let a_id = a.id();
    let b_id = b.id();

    a.rt.shutdown();
    let done = drive(&mut [&mut a, &mut b], |p| {
        p[0].rt.is_shut_down() && p[1].closed_with(a_id)
    });
    assert!(done, "A saw {:?}; B saw {:?}", a.events, b.events);
    assert!(b.events.iter().any(|e| matches!(
        e,
        Event::LinkClosed { peer: Some(p), reason: CloseReason::Shutdown, by: ClosedBy::Peer, .. }
            if *p == a_id
    )));
    assert!(a.closed_with(b_id));

    // A few more turns: A stays unlinked and refuses to dial.
    for _ in 0..200 {
        a.turn();
        b.turn();
    }
    assert_eq!(a.rt.connection_count(), 0);
    assert_eq!(a.rt.pending_dials(), 0);
    assert_eq!(b.rt.connection_count(), 0);
    assert!(matches!(
        a.rt.dial(b_addr, None),
        Err(DialError::ShuttingDown)
    ));
}
