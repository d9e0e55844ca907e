//! The core dials for itself: bootstrap, first hops and next hops. Three
//! nodes find each other from one bootstrap address and carry a message and
//! its reply over a one-relay circuit.

use std::time::Duration;

use veil_core::node::Event;

use crate::support::{message_and_reply, one_relay_config, Peer};

/// Wall-clock cap for the whole exchange.
const CAP: Duration = Duration::from_secs(20);

#[test]
fn message_and_reply_over_a_circuit_the_core_dialled() {
    // Distinct /16s: path selection never puts two hops in one prefix.
    let mut a = Peer::with_config(11, one_relay_config(), "127.11.0.1:0");
    let mut b = Peer::with_config(12, one_relay_config(), "127.12.0.1:0");
    let mut c = Peer::with_config(13, one_relay_config(), "127.13.0.1:0");
    let bootstrap = a.rt.local_addr();
    b.rt.add_bootstrap(bootstrap).unwrap();
    c.rt.add_bootstrap(bootstrap).unwrap();
    let (a_id, b_id, c_id) = (a.id(), b.id(), c.id());

    message_and_reply(
        &mut a,
        &mut b,
        &mut c,
        b"ping over one relay",
        b"pong back over the same circuit",
        CAP,
    );
    // The circuit went B -> A -> C: B built it, to C, and A relayed it.
    assert!(b
        .events
        .iter()
        .any(|e| matches!(e, Event::CircuitReady { destination, .. } if *destination == c_id)));
    assert!(a.learned(b_id) && a.learned(c_id));
    assert!(b.learned(a_id) && c.learned(a_id));
    assert_eq!(a.rt.node().circuit_counts().0, 1, "A relays the circuit");
}
