//! QUIC beside TCP in one runtime: nodes bootstrap over QUIC, learn each
//! other's addresses of both transports from descriptors, link over QUIC
//! (which transport selection prefers), and carry a message and its reply
//! over a circuit whose cells travel on a QUIC stream of their own on each
//! link.

use std::time::{Duration, Instant as WallInstant};

use veil_core::identity::{Address, Transport};
use veil_core::message::Sender;
use veil_core::node::{Event, NodeConfig};
use veil_core::time::Duration as CoreDuration;
use veil_mio::veil_quic::QuicConfig;

use crate::support::{Peer, TURN};

/// Wall-clock cap for the whole exchange.
const CAP: Duration = Duration::from_secs(20);

fn config() -> NodeConfig {
    NodeConfig {
        gossip_interval: CoreDuration::from_secs(1),
        bootstrap_retry: CoreDuration::from_secs(1),
        path_relays: 1,
        quic_dials: true,
        ..NodeConfig::default()
    }
}

fn quic_peer(secret: u8, ip: &str) -> Peer {
    let mut peer = Peer::with_config(secret, config(), &format!("{ip}:0"));
    let addr = format!("{ip}:0").parse().expect("address");
    peer.rt
        .listen_quic(addr, QuicConfig::default())
        .expect("QUIC socket");
    peer
}

#[test]
fn a_circuit_over_quic_links_carries_a_message_and_its_reply() {
    let mut a = quic_peer(21, "127.21.0.1");
    let mut b = quic_peer(22, "127.22.0.1");
    let mut c = quic_peer(23, "127.23.0.1");
    // Bootstrap over QUIC, to A's QUIC address.
    let bootstrap = Address {
        transport: Transport::Quic,
        socket: a.rt.quic_addr().expect("A listens for QUIC"),
    };
    assert!(b.rt.add_bootstrap_address(bootstrap));
    assert!(c.rt.add_bootstrap_address(bootstrap));
    let c_id = c.id();

    let start = WallInstant::now();
    let request = vec![0x5a; 3000];
    let answer = b"back over the same QUIC streams".to_vec();
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
        if sent.is_none() && b.rt.node().node_table().get(&c_id).is_some() {
            let now = b.rt.now();
            sent = Some(
                b.rt.node_mut()
                    .send_message(now, c_id, &request)
                    .expect("message queued"),
            );
        }
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
    assert!(sent.is_some(), "B never learned C; B saw {:?}", b.events);
    assert_eq!(c_got.as_deref(), Some(&request[..]), "C saw {:?}", c.events);
    assert_eq!(b_got.as_deref(), Some(&answer[..]), "B saw {:?}", b.events);

    // The circuit B -> A -> C ran over QUIC links: B's link to A (its first
    // hop) and A's link to C (the EXTEND it dialled) are QUIC, each with
    // the circuit on a stream of its own.
    let quic_with_streams = |p: &Peer| {
        p.rt.connections()
            .into_iter()
            .filter(|c| c.transport == Transport::Quic && c.circuit_streams > 0)
            .count()
    };
    assert!(
        quic_with_streams(&b) >= 1,
        "B has no QUIC link carrying a circuit stream: {:?}",
        b.rt.connections()
    );
    assert!(
        quic_with_streams(&a) >= 2,
        "A relays over two QUIC links with circuit streams: {:?}",
        a.rt.connections()
    );
    let a_links: Vec<_> = a.rt.node().links().collect();
    assert!(
        a_links
            .iter()
            .filter(|l| l.transport == Some(Transport::Quic))
            .count()
            >= 2,
        "A's node sees its links as QUIC: {a_links:?}"
    );
    assert_eq!(a.rt.node().circuit_counts().0, 1, "A relays the circuit");
}
