//! QUIC beside TCP in one runtime: nodes bootstrap over QUIC, learn each
//! other's addresses of both transports from descriptors, link over QUIC
//! (which transport selection prefers), and carry a message and its reply
//! over a circuit whose cells travel on a QUIC stream of their own on each
//! link.

use std::time::{Duration, Instant as WallInstant};

use veil_core::identity::{Address, Transport};
use veil_core::node::{Event, NodeConfig, SendMessage, SetAddresses, SetGuards};
use veil_core::time::Duration as CoreDuration;
use veil_mio::veil_quic::QuicConfig;

use crate::support::{message_and_reply, Peer};

/// Wall-clock cap for the whole exchange.
const CAP: Duration = Duration::from_secs(20);

/// These tests decide which links exist (a first hop dialled for a
/// circuit, over the transport under test), so the nodes keep no outbound
/// links of their own (relay spec §10).
fn config() -> NodeConfig {
    NodeConfig {
        outbound_links: 0,
        gossip_interval: CoreDuration::from_secs(1),
        bootstrap_retry: CoreDuration::from_secs(1),
        path_relays: 1,
        quic_dials: true,
        extend_to_private_addresses: true,
        ..NodeConfig::default()
    }
}

fn quic_peer(secret: u8, ip: &str) -> Peer {
    quic_peer_recording(secret, ip, None)
}

/// A QUIC node, recording a trace into `trace` if given.
fn quic_peer_recording(secret: u8, ip: &str, trace: Option<&std::path::Path>) -> Peer {
    let mut peer = match trace {
        None => Peer::with_config(secret, config(), &format!("{ip}:0")),
        Some(path) => {
            let file = veil_mio::trace::create_trace_file(path).expect("trace file");
            let rt = veil_mio::Runtime::bind_recording(
                config(),
                veil_core::identity::Identity::from_secret_bytes([secret; 32]),
                format!("{ip}:0").parse().expect("address"),
                veil_mio::RuntimeOptions::default(),
                Box::new(file),
            )
            .expect("bind");
            Peer {
                rt,
                events: Vec::new(),
                received: Vec::new(),
            }
        }
    };
    let addr = format!("{ip}:0").parse().expect("address");
    peer.rt
        .listen_quic(addr, QuicConfig::default())
        .expect("QUIC socket");
    peer
}

#[test]
fn a_circuit_over_quic_links_carries_a_message_and_its_reply() {
    // A (the relay: circuit cells in and out on streams) and B (the
    // sender) record traces, which must replay exactly afterwards.
    let dir = std::env::temp_dir().join(format!("veil-quic-trace-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (a_trace, b_trace) = (dir.join("a.trace"), dir.join("b.trace"));
    let mut a = quic_peer_recording(21, "127.21.0.1", Some(&a_trace));
    let mut b = quic_peer_recording(22, "127.22.0.1", Some(&b_trace));
    let mut c = quic_peer(23, "127.23.0.1");
    // Bootstrap over QUIC, to A's QUIC address.
    let bootstrap = Address {
        transport: Transport::Quic,
        socket: a.rt.quic_addr().expect("A listens for QUIC"),
    };
    b.rt.add_bootstrap_address(bootstrap).unwrap();
    c.rt.add_bootstrap_address(bootstrap).unwrap();
    message_and_reply(
        &mut a,
        &mut b,
        &mut c,
        &[0x5a; 3000],
        b"back over the same QUIC streams",
        CAP,
    );

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

    // Both traces replay with every output the same, QUIC's stream-link
    // inputs included.
    let mut relay_report = None;
    for (peer, path) in [(&mut a, &a_trace), (&mut b, &b_trace)] {
        peer.rt.finish_trace().expect("trace finished");
        let report = veil_mio::trace::replay_file(path)
            .unwrap_or_else(|e| panic!("{} does not replay: {e}", path.display()));
        assert_eq!(report.node_id, peer.id());
        // How many records depends on how soon B can build its circuit to
        // C: runs that finish before A's first gossip round (1 s) record
        // about 60, runs that wait for it over 100; scheduling can make
        // it fewer still, so the floor only rules out an empty run.
        assert!(report.records > 20, "a real run: {report:?}");
        relay_report.get_or_insert(report);
    }
    let kinds = relay_report.expect("the relay's report").by_kind;
    for kind in ["OpenLink", "ReceiveStreamCell", "Poll"] {
        assert!(
            kinds.get(kind).is_some_and(|&n| n > 0),
            "the relay's trace has no {kind} record: {kinds:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Turns `peers` until `done`, or the cap.
fn drive_until(peers: &mut [&mut Peer], mut done: impl FnMut(&mut [&mut Peer]) -> bool) -> bool {
    let start = WallInstant::now();
    while start.elapsed() < CAP {
        for p in peers.iter_mut() {
            p.turn();
        }
        if done(peers) {
            return true;
        }
    }
    false
}

fn acknowledged(p: &Peer, id: veil_core::message::MessageId) -> bool {
    p.events
        .iter()
        .any(|e| matches!(e, Event::MessageAcknowledged { id: i } if *i == id))
}

#[test]
fn one_circuit_crosses_a_quic_link_and_a_tcp_link() {
    // A, B and D speak QUIC; C only TCP. With two relays between A and D
    // the path is A-B-C-D or A-C-B-D: either way its links are of both
    // kinds (QUIC between QUIC nodes, TCP wherever C is).
    let two_relays = NodeConfig {
        path_relays: 2,
        ..config()
    };
    let quic_node = |secret: u8, ip: &str| {
        let mut p = Peer::with_config(secret, two_relays, &format!("{ip}:0"));
        p.rt.listen_quic(format!("{ip}:0").parse().unwrap(), QuicConfig::default())
            .expect("QUIC socket");
        p
    };
    let mut a = quic_node(31, "127.31.0.1");
    let mut b = quic_node(32, "127.32.0.1");
    let tcp_only = NodeConfig {
        quic_dials: false,
        ..two_relays
    };
    let mut c = Peer::with_config(33, tcp_only, "127.33.0.1:0");
    let mut d = quic_node(34, "127.34.0.1");
    // Everyone bootstraps from C, over TCP, the transport every node speaks.
    let bootstrap = c.rt.local_addr();
    for p in [&mut a, &mut b, &mut d] {
        p.rt.add_bootstrap(bootstrap).unwrap();
    }
    let d_id = d.id();
    let (b_id, c_id) = (b.id(), c.id());
    assert!(
        drive_until(&mut [&mut a, &mut b, &mut c, &mut d], |p| {
            let t = p[0].rt.node().node_table();
            t.get(&b_id).is_some() && t.get(&c_id).is_some() && t.get(&d_id).is_some()
        }),
        "A never learned everyone"
    );
    let id =
        a.rt.handle(SendMessage {
            destination: d_id,
            message: b"across both transports",
        })
        .expect("queued");
    let mut got = None;
    assert!(
        drive_until(&mut [&mut a, &mut b, &mut c, &mut d], |p| {
            if let Some((_, bytes)) = p[3].received.pop() {
                got = Some(bytes);
            }
            acknowledged(p[0], id)
        }),
        "the message was not acknowledged; A saw {:?}",
        a.events
    );
    assert_eq!(got.as_deref(), Some(&b"across both transports"[..]));
    // B and C each relay the circuit, and the circuit's links between them
    // are of both kinds.
    assert_eq!(b.rt.node().circuit_counts().0, 1, "B relays it");
    assert_eq!(c.rt.node().circuit_counts().0, 1, "C relays it");
    let kinds: std::collections::BTreeSet<_> = [&b, &c]
        .iter()
        .flat_map(|p| p.rt.connections())
        .map(|conn| conn.transport)
        .collect();
    assert_eq!(
        kinds.len(),
        2,
        "the relays' links are not of both kinds: {:?} / {:?}",
        b.rt.connections(),
        c.rt.connections()
    );
    assert!(
        b.rt.connections()
            .iter()
            .any(|c| c.transport == Transport::Quic && c.circuit_streams == 1),
        "B's QUIC link carries the circuit on a stream of its own: {:?}",
        b.rt.connections()
    );
}

#[test]
fn a_peer_whose_udp_is_blocked_is_reached_over_tcp_and_remembered() {
    // B advertises a QUIC address where datagrams vanish (a UDP socket
    // nobody reads: no answer, no ICMP), as if a firewall dropped UDP. A,
    // which prefers QUIC, must reach B over TCP after the race delay and
    // remember that TCP works.
    let mut a = quic_peer(41, "127.41.0.1");
    let mut b = Peer::with_config(42, config(), "127.42.0.1:0");
    let black_hole = std::net::UdpSocket::bind("127.42.0.1:0").expect("UDP socket");
    let advertised = [
        Address {
            transport: Transport::Tcp,
            socket: b.rt.local_addr(),
        },
        Address {
            transport: Transport::Quic,
            socket: black_hole.local_addr().unwrap(),
        },
    ];
    b.rt.handle(SetAddresses::from_slice(&advertised));
    // A learns B's descriptor from a third node both bootstrap from.
    let mut m = quic_peer(43, "127.43.0.1");
    a.rt.add_bootstrap(m.rt.local_addr()).unwrap();
    b.rt.add_bootstrap(m.rt.local_addr()).unwrap();
    let b_id = b.id();
    assert!(
        drive_until(&mut [&mut a, &mut b, &mut m], |p| p[0]
            .rt
            .node()
            .node_table()
            .get(&b_id)
            .is_some_and(|e| e.descriptor.repr().addresses.len() == 2)),
        "A never learned B's two addresses"
    );
    // A builds a circuit with B as its first hop (its guard) to M: A has
    // no link to B yet, so it dials B, QUIC first by preference.
    assert!(a.rt.node().links().all(|l| l.peer != Some(b_id)));
    a.rt.handle(SetGuards::from_slice(&[b_id]));
    let m_id = m.id();
    let id =
        a.rt.handle(SendMessage {
            destination: m_id,
            message: b"over tcp, since udp is blocked",
        })
        .expect("queued");
    assert!(
        drive_until(&mut [&mut a, &mut b, &mut m], |p| {
            p[2].received.clear();
            acknowledged(p[0], id)
        }),
        "the message through B was not acknowledged; A saw {:?}",
        a.events
    );
    assert_eq!(b.rt.node().circuit_counts().0, 1, "B relayed the circuit");
    let to_b: Vec<_> =
        a.rt.node()
            .links()
            .filter(|l| l.peer == Some(b_id))
            .map(|l| (l.role, l.transport))
            .collect();
    assert!(
        to_b.contains(&(veil_core::link::LinkRole::Initiator, Some(Transport::Tcp))),
        "A dialled B and got there over TCP: {to_b:?}"
    );
    assert_eq!(
        a.rt.node()
            .node_table()
            .get(&b_id)
            .and_then(|e| e.transport),
        Some(Transport::Tcp),
        "A remembers that TCP works for B"
    );
    drop(black_hole);
}
