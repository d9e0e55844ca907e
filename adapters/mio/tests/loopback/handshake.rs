//! A dial brings a link up with the right identities and descriptors.

use veil_core::link::LinkRole;
use veil_mio::DialError;

use crate::support::{link_up, Peer};

#[test]
fn dial_establishes_a_link_and_exchanges_descriptors() {
    let mut a = Peer::new(1);
    let mut b = Peer::new(2);
    let (a_link, b_link) = link_up(&mut a, &mut b);

    // Each side names the other, in the role it played.
    assert_eq!(
        a.established_with(b.id(), LinkRole::Responder),
        Some(a_link)
    );
    assert_eq!(
        b.established_with(a.id(), LinkRole::Initiator),
        Some(b_link)
    );
    assert!(a.rt.node().node_table().get(&b.id()).is_some());
    assert!(b.rt.node().node_table().get(&a.id()).is_some());
    assert_eq!(a.rt.connection_count(), 1);
    assert_eq!(b.rt.connection_count(), 1);
    assert_eq!(b.rt.pending_dials(), 0);
}

#[test]
fn a_refused_dial_is_reported() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port");
    let mut a = Peer::new(3);
    match a.rt.dial(port, None) {
        // Refused at once by the OS: reported by `dial` itself.
        Err(DialError::Connect(_)) => return,
        Err(e) => panic!("unexpected dial error: {e}"),
        Ok(()) => {}
    }
    let mut failure = None;
    for _ in 0..1_000 {
        a.turn();
        failure = a.rt.poll_dial_failure();
        if failure.is_some() {
            break;
        }
    }
    let failure = failure.expect("the refused dial is reported");
    assert_eq!(failure.addr, port);
    assert!(
        matches!(failure.error, DialError::Connect(_)),
        "{}",
        failure.error
    );
    assert_eq!(a.rt.pending_dials(), 0);
    assert_eq!(a.rt.connection_count(), 0);
}
