//! A peer that sends garbage loses its link; other links stay up.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;

use veil_core::link::LinkPhase;
use veil_core::node::Event;

use crate::support::{drive, link_up, Peer};

#[test]
fn garbage_closes_only_the_bad_link() {
    let mut a = Peer::new(1);
    let mut b = Peer::new(2);
    let (good, _) = link_up(&mut a, &mut b);

    let mut bad = TcpStream::connect(a.rt.local_addr()).expect("connect");
    bad.write_all(&[0xFF; 1024]).expect("write garbage");
    bad.set_nonblocking(true).expect("non-blocking");

    let mut bad_saw_close = false;
    let closed = drive(&mut [&mut a, &mut b], |p| {
        let mut buf = [0u8; 256];
        loop {
            match bad.read(&mut buf) {
                Ok(0) => {
                    bad_saw_close = true;
                    break;
                }
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    bad_saw_close = true;
                    break;
                }
            }
        }
        bad_saw_close
            && p[0].events.iter().any(|e| {
                matches!(e, Event::LinkClosed { peer: None, reason, .. } if reason.is_peer_fault())
            })
    });
    assert!(closed, "garbage link was not closed; a saw {:?}", a.events);

    // A few more turns: the good link is still there on both sides.
    let (a_id, b_id) = (a.id(), b.id());
    drive(&mut [&mut a, &mut b], {
        let mut turns = 0;
        move |_| {
            turns += 1;
            turns >= 20
        }
    });
    assert!(!a.closed_with(b_id) && !b.closed_with(a_id));
    let info = a.rt.node().link_info(good).expect("good link still open");
    assert_eq!(info.phase, LinkPhase::Established);
    assert_eq!(info.peer, Some(b_id));
    assert_eq!(a.rt.connection_count(), 1);
    assert!(a.rt.connection(good).is_some());
}
