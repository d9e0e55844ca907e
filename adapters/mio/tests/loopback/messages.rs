//! The core dials for itself: bootstrap, first hops and next hops. Three
//! nodes find each other from one bootstrap address and carry a message and
//! its reply over a one-relay circuit.

use std::time::{Duration, Instant as WallInstant};

use veil_core::message::Sender;
use veil_core::node::{Event, NodeConfig};
use veil_core::time::Duration as CoreDuration;

use crate::support::{Peer, TURN};

/// Wall-clock cap for the whole exchange.
const CAP: Duration = Duration::from_secs(20);

fn config() -> NodeConfig {
    NodeConfig {
        gossip_interval: CoreDuration::from_secs(1),
        bootstrap_retry: CoreDuration::from_secs(1),
        path_relays: 1,
        ..NodeConfig::default()
    }
}

#[test]
fn message_and_reply_over_a_circuit_the_core_dialled() {
    // Distinct /16s: path selection never puts two hops in one prefix.
    let mut a = Peer::with_config(11, config(), "127.11.0.1:0");
    let mut b = Peer::with_config(12, config(), "127.12.0.1:0");
    let mut c = Peer::with_config(13, config(), "127.13.0.1:0");
    let bootstrap = a.rt.local_addr();
    assert!(b.rt.add_bootstrap(bootstrap));
    assert!(c.rt.add_bootstrap(bootstrap));
    let (a_id, b_id, c_id) = (a.id(), b.id(), c.id());

    let start = WallInstant::now();
    let request = b"ping over one relay".to_vec();
    let answer = b"pong back over the same circuit".to_vec();
    let mut sent = None;
    let mut c_got = None;
    let mut b_got = None;
    let mut buf = vec![0u8; 64 * 1024];

    while start.elapsed() < CAP {
        for peer in [&mut a, &mut b, &mut c] {
            peer.rt
                .turn(Some(TURN), |_, e| peer.events.push(e))
                .expect("turn");
        }
        // B sends once it knows C (gossiped by A).
        if sent.is_none() && b.rt.node().node_table().get(&c_id).is_some() {
            let now = b.rt.now();
            sent = Some(
                b.rt.node_mut()
                    .send_message(now, c_id, &request)
                    .expect("message queued"),
            );
        }
        // C takes the message and answers over the circuit it came on.
        while let Some(m) = c.rt.node_mut().poll_message(&mut buf) {
            let Sender::Anonymous(to) = m.sender else {
                panic!("a message over a circuit must be anonymous: {m:?}");
            };
            assert!(c_got.is_none(), "delivered twice");
            c_got = Some(buf[..m.len].to_vec());
            let now = c.rt.now();
            c.rt.node_mut()
                .reply(now, to, &answer)
                .expect("reply queued");
        }
        while let Some(m) = b.rt.node_mut().poll_message(&mut buf) {
            assert_eq!(m.sender, Sender::Node(c_id), "the reply names C");
            assert!(b_got.is_none(), "reply delivered twice");
            b_got = Some(buf[..m.len].to_vec());
        }
        let acked = sent.is_some_and(|id| {
            b.events
                .iter()
                .any(|e| matches!(e, Event::MessageAcknowledged { id: i } if *i == id))
        });
        if acked && b_got.is_some() {
            break;
        }
    }

    let failures: Vec<_> = b
        .events
        .iter()
        .filter(|e| matches!(e, Event::MessageFailed { .. }))
        .collect();
    assert!(failures.is_empty(), "B's message failed: {failures:?}");
    assert!(sent.is_some(), "B never learned C; B saw {:?}", b.events);
    assert_eq!(c_got.as_deref(), Some(&request[..]), "C saw {:?}", c.events);
    assert_eq!(b_got.as_deref(), Some(&answer[..]), "B saw {:?}", b.events);
    let id = sent.expect("sent");
    assert!(
        b.events
            .iter()
            .any(|e| matches!(e, Event::MessageAcknowledged { id: i } if *i == id)),
        "no acknowledgement; B saw {:?}",
        b.events
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
