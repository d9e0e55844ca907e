//! Head-of-line blocking between circuits that share a link, over TCP and
//! over QUIC, with real sockets.
//!
//! Client C builds two circuits through relay R (its guard): c1 to D1 and
//! c2 to D2, both over the one link C–R. Then D1 stops reading (its loop
//! is not turned: a stalled receiver), C streams bulk to D1 until R's link
//! to D1 is full, and only then sends messages to D2.
//!
//! - Over TCP, every circuit of C–R shares one byte stream. R cannot take
//!   c1's next cell (its link to D1 is full) and the cells of c2 behind it
//!   wait too: nothing reaches D2 while D1 stalls.
//! - Over QUIC, each circuit has a stream of its own. R leaves c1's stream
//!   unread and goes on reading c2's: D2 gets everything while D1 stalls.
//!
//! R's and D1's TCP buffers are short (`RuntimeOptions::tcp_buffer`) so
//! that the stall reaches R's queues within one circuit window (128 cells);
//! with kernel autotuning (megabytes on loopback) the kernel would swallow
//! the whole window and neither transport would show anything. After D1
//! resumes, every message on both circuits is delivered in both runs.

use std::time::{Duration, Instant as WallInstant};

use veil_core::identity::{Address, NodeId, Transport};
use veil_core::message::MessageId;
use veil_core::node::{Event, NodeConfig, SendMessage, SetGuards};
use veil_core::time::Duration as CoreDuration;
use veil_mio::veil_quic::QuicConfig;
use veil_mio::{RuntimeOptions, TXQ};

use crate::support::Peer;

/// How long D1 stalls while C sends to D2.
const STALL: Duration = Duration::from_secs(3);
/// Wall-clock cap for each phase.
const CAP: Duration = Duration::from_secs(20);
/// Bulk messages for D1 (far more than one circuit window).
const BULK: usize = 8;
const BULK_LEN: usize = 32 * 1024;
/// Messages for D2 while D1 stalls.
const PROBES: usize = 8;
const PROBE_LEN: usize = 8 * 1024;

fn config(quic_dials: bool) -> NodeConfig {
    NodeConfig {
        gossip_interval: CoreDuration::from_millis(200),
        bootstrap_retry: CoreDuration::from_millis(500),
        path_relays: 1,
        quic_dials,
        // The stall is the test: no resends over new circuits meanwhile.
        message_resend_after: CoreDuration::from_secs(120),
        message_give_up_after: CoreDuration::from_secs(240),
        extend_to_private_addresses: true,
        // One link from C to R, the one it bootstrapped over, carries both
        // circuits: the test measures that link (an anonymous second link
        // for C's own circuits would be a separate connection).
        anonymous_first_hops: false,
        // ...and C links to nobody else: it keeps its bootstrap link rather
        // than dial relays of its own (relay spec §10).
        outbound_links: 0,
        ..NodeConfig::default()
    }
}

fn short_buffers() -> RuntimeOptions {
    RuntimeOptions {
        tcp_buffer: Some(4096),
        ..RuntimeOptions::default()
    }
}

/// What one run measured.
#[derive(Debug)]
struct Outcome {
    /// D2's messages acknowledged while D1 stalled.
    probes_during_stall: usize,
    /// How long those took (all of them, or the whole stall).
    probe_time: Duration,
    /// Everything acknowledged once D1 resumed.
    all_delivered: bool,
}

fn acked(peer: &Peer, ids: &[MessageId]) -> usize {
    ids.iter()
        .filter(|id| {
            peer.events
                .iter()
                .any(|e| matches!(e, Event::MessageAcknowledged { id: i } if i == *id))
        })
        .count()
}

fn turn_all(peers: &mut [&mut Peer]) {
    for peer in peers.iter_mut() {
        peer.turn();
    }
}

fn drain_messages(peer: &mut Peer) {
    peer.received.clear();
}

/// Queued cells on R's link to `peer`.
fn queued_towards(r: &Peer, peer: NodeId) -> usize {
    r.rt.node()
        .links()
        .filter(|l| l.peer == Some(peer))
        .map(|l| l.queued_cells)
        .max()
        .unwrap_or(0)
}

fn run(over_quic: bool, base: u8) -> Outcome {
    let ip = |n: u8| format!("127.{}.0.1", base + n);
    let mut r = Peer::with_options(
        base + 1,
        config(false),
        &format!("{}:0", ip(1)),
        short_buffers(),
    );
    if over_quic {
        r.rt.listen_quic(
            format!("{}:0", ip(1)).parse().unwrap(),
            QuicConfig::default(),
        )
        .expect("QUIC socket");
    }
    let mut c = Peer::with_config(base + 2, config(over_quic), &format!("{}:0", ip(2)));
    if over_quic {
        c.rt.listen_quic(
            format!("{}:0", ip(2)).parse().unwrap(),
            QuicConfig::default(),
        )
        .expect("QUIC socket");
    }
    // D1 takes small link messages, so R holds little for it outside its queue.
    let d1_config = NodeConfig {
        max_message_len: 4096,
        ..config(false)
    };
    let mut d1 = Peer::with_options(
        base + 3,
        d1_config,
        &format!("{}:0", ip(3)),
        short_buffers(),
    );
    let mut d2 = Peer::with_config(base + 4, config(false), &format!("{}:0", ip(4)));
    let (r_id, d1_id, d2_id) = (r.id(), d1.id(), d2.id());
    let c_bootstrap = match over_quic {
        true => Address {
            transport: Transport::Quic,
            socket: r.rt.quic_addr().unwrap(),
        },
        false => Address {
            transport: Transport::Tcp,
            socket: r.rt.local_addr(),
        },
    };
    c.rt.add_bootstrap_address(c_bootstrap).unwrap();
    d1.rt.add_bootstrap(r.rt.local_addr()).unwrap();
    d2.rt.add_bootstrap(r.rt.local_addr()).unwrap();
    c.rt.handle(SetGuards::from_slice(&[r_id]));

    // Warm up: both circuits built and used once.
    let start = WallInstant::now();
    let mut warm = Vec::new();
    while start.elapsed() < CAP && acked(&c, &warm) < 2 {
        turn_all(&mut [&mut r, &mut c, &mut d1, &mut d2]);
        drain_messages(&mut d1);
        drain_messages(&mut d2);
        let table = c.rt.node().node_table();
        if warm.is_empty() && table.get(&d1_id).is_some() && table.get(&d2_id).is_some() {
            for d in [d1_id, d2_id] {
                warm.push(
                    c.rt.handle(SendMessage {
                        destination: d,
                        message: b"warm up",
                    })
                    .unwrap(),
                );
            }
        }
    }
    assert_eq!(acked(&c, &warm), 2, "warm-up failed; C saw {:?}", c.events);
    let c_link = c.rt.connections();
    assert_eq!(c_link.len(), 1, "C has one link, to R: {c_link:?}");
    let expected = if over_quic {
        Transport::Quic
    } else {
        Transport::Tcp
    };
    assert_eq!(c_link[0].transport, expected);

    // D1 stalls; C streams bulk to it until R's link to D1 is full.
    let mut bulk = Vec::new();
    for i in 0..BULK {
        let body = vec![u8::try_from(i).unwrap(); BULK_LEN];
        bulk.push(
            c.rt.handle(SendMessage {
                destination: d1_id,
                message: &body,
            })
            .unwrap(),
        );
    }
    let start = WallInstant::now();
    while start.elapsed() < CAP && queued_towards(&r, d1_id) < TXQ {
        turn_all(&mut [&mut r, &mut c, &mut d2]);
    }
    assert_eq!(
        queued_towards(&r, d1_id),
        TXQ,
        "R's link to the stalled D1 never filled, so the stall never reached R"
    );
    // Let what C can send of c1 reach R.
    let settle = WallInstant::now();
    while settle.elapsed() < Duration::from_millis(300) {
        turn_all(&mut [&mut r, &mut c, &mut d2]);
    }

    // Now C sends to D2, over the same link to R.
    let mut probes = Vec::new();
    for i in 0..PROBES {
        let body = vec![0x80 | u8::try_from(i).unwrap(); PROBE_LEN];
        probes.push(
            c.rt.handle(SendMessage {
                destination: d2_id,
                message: &body,
            })
            .unwrap(),
        );
    }
    let start = WallInstant::now();
    while start.elapsed() < STALL && acked(&c, &probes) < PROBES {
        turn_all(&mut [&mut r, &mut c, &mut d2]);
        drain_messages(&mut d2);
    }
    let probe_time = start.elapsed();
    let probes_during_stall = acked(&c, &probes);
    assert_eq!(
        acked(&c, &bulk),
        0,
        "D1 stalled, yet its messages were acknowledged"
    );

    // D1 resumes: everything arrives.
    let start = WallInstant::now();
    while start.elapsed() < CAP && (acked(&c, &bulk) < BULK || acked(&c, &probes) < PROBES) {
        turn_all(&mut [&mut r, &mut c, &mut d1, &mut d2]);
        drain_messages(&mut d1);
        drain_messages(&mut d2);
    }
    Outcome {
        probes_during_stall,
        probe_time,
        all_delivered: acked(&c, &bulk) == BULK && acked(&c, &probes) == PROBES,
    }
}

fn report(name: &str, o: &Outcome) {
    let bytes = o.probes_during_stall * PROBE_LEN;
    let rate = bytes as f64 / o.probe_time.as_secs_f64() / 1e6;
    eprintln!(
        "{name}: while D1 stalled, c2 delivered {}/{PROBES} messages ({bytes} B) in {:.3} s: {rate:.2} MB/s",
        o.probes_during_stall,
        o.probe_time.as_secs_f64(),
    );
}

#[test]
fn a_stalled_circuit_blocks_its_tcp_link_but_not_its_quic_link() {
    let tcp = run(false, 40);
    report("TCP ", &tcp);
    let quic = run(true, 50);
    report("QUIC", &quic);
    assert!(
        tcp.all_delivered,
        "TCP: not everything arrived after the stall: {tcp:?}"
    );
    assert!(
        quic.all_delivered,
        "QUIC: not everything arrived after the stall: {quic:?}"
    );
    assert_eq!(
        tcp.probes_during_stall, 0,
        "over TCP, c2's cells wait behind c1's in the one byte stream: {tcp:?}"
    );
    assert_eq!(
        quic.probes_during_stall, PROBES,
        "over QUIC, c2 has a stream of its own and must not wait for c1: {quic:?}"
    );
}
