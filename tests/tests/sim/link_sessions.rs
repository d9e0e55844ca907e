//! Deterministic two- and three-node tests of the link layer on the simulator.

use crate::common;

use common::*;
use veil_core::link::{CloseReason, ClosedBy, LinkPhase, MAX_CELLS_PADDING};
use veil_core::node::NodeConfig;
use veil_core::time::{Duration, Instant};
use veil_sim::{Direction, Sim, StreamConditions};

/// Link-level tests: circuit cells go to the test, not to circuits.
fn config() -> NodeConfig {
    NodeConfig {
        link_only: true,
        ..NodeConfig::default()
    }
}

#[test]
fn handshake_authenticates_both_sides_over_a_choppy_stream() {
    let Pair {
        mut sim,
        a,
        b,
        la,
        lb,
        ..
    } = pair(1, config(), StreamConditions::CHOPPY);
    sim.run_for(Duration::from_secs(2));
    assert_eq!(established_peer(&sim, a, la), Some(sim.node_id(b)));
    assert_eq!(established_peer(&sim, b, lb), Some(sim.node_id(a)));
    assert_eq!(
        sim.node(a).core.link_info(la).unwrap().phase,
        LinkPhase::Established
    );
    // Each side padded its handshake messages (two for the initiator, one
    // for the responder) by 0 to 256 random bytes each (link spec §2.4),
    // and each `CELLS` message by 0 to 1,028 (§4.2): counted by the node,
    // and part of the bytes sent.
    let mut padding = 0;
    for (node, link, messages) in [(a, la, 2), (b, lb, 1)] {
        let padded = sim.node(node).core.stats().padding_bytes_sent;
        let stats = sim.node(node).core.link_info(link).unwrap().stats;
        let at_most = messages * 256 + stats.cells_sent * MAX_CELLS_PADDING as u64;
        assert!(padded <= at_most, "{padded} > {at_most}");
        assert!(
            padded < stats.bytes_sent,
            "{padded} of {}",
            stats.bytes_sent
        );
        padding += padded;
    }
    assert!(padding > 0, "every draw in 0..=256 and 0..=1,028 was 0");
}

#[test]
fn cells_arrive_intact_and_in_order_both_ways() {
    let Pair {
        mut sim,
        a,
        b,
        la,
        lb,
        ..
    } = pair(2, config(), StreamConditions::CHOPPY);
    sim.run_for(Duration::from_secs(1));
    for n in 0..300u64 {
        while sim.send_cell(a, la, &numbered_cell(n)).is_err() {
            sim.run_for(Duration::from_millis(10));
        }
        sim.send_cell(b, lb, &numbered_cell(10_000 + n)).ok();
        if n % 50 == 0 {
            sim.run_for(Duration::from_millis(30));
        }
    }
    sim.run_for(Duration::from_secs(3));
    let at_b = cells_received(&sim, b, lb);
    assert_eq!(at_b.len(), 300);
    for (n, cell) in at_b.iter().enumerate() {
        assert_eq!(*cell, numbered_cell(n as u64));
    }
    let at_a = cells_received(&sim, a, la);
    assert!(!at_a.is_empty());
    for pair in at_a.windows(2) {
        assert!(number_of(&pair[0]) < number_of(&pair[1]), "cells reordered");
    }
}

#[test]
fn dialling_the_wrong_identity_is_refused_on_both_ends() {
    let mut sim = Sim::new(3);
    let a = sim.add_node(config(), 4);
    let b = sim.add_node(config(), 4);
    let c = sim.add_node(config(), 4);
    // `a` believes it is dialling `c` but `b` answers.
    let wire = sim.connect_expecting(a, b, Some(sim.node_id(c)), StreamConditions::LAN);
    let (_, la) = sim.end(wire, Direction::Forward);
    let (_, lb) = sim.end(wire, Direction::Backward);
    sim.run_for(Duration::from_secs(2));
    // `a` marks its first message with `c`'s id (link spec §2): `b` finds
    // no mark it knows, answers nothing, reads on and closes within the
    // handshake timeout; `a` never hears a byte.
    assert_eq!(established_peer(&sim, b, lb), None);
    assert_eq!(established_peer(&sim, a, la), None);
    assert_eq!(
        sim.node(a)
            .core
            .link_info(la)
            .map(|l| l.stats.bytes_received),
        Some(0),
        "b answered a"
    );
    sim.run_for(Duration::from_secs(10));
    assert!(
        matches!(
            closed(&sim, b, lb),
            Some((
                CloseReason::ProtocolViolation | CloseReason::TransportClosed,
                _
            ))
        ),
        "{:?}",
        closed(&sim, b, lb)
    );
    assert!(
        matches!(
            closed(&sim, a, la),
            Some((
                CloseReason::TransportClosed | CloseReason::HandshakeTimeout,
                _
            ))
        ),
        "{:?}",
        closed(&sim, a, la)
    );
}

#[test]
fn a_tampered_transport_message_closes_only_that_link() {
    let mut sim = Sim::new(4);
    let a = sim.add_node(config(), 4);
    let b = sim.add_node(config(), 4);
    let c = sim.add_node(config(), 4);
    let bad = sim.connect(a, b, StreamConditions::LAN);
    let good = sim.connect(a, c, StreamConditions::LAN);
    let (_, la_bad) = sim.end(bad, Direction::Forward);
    let (_, lb) = sim.end(bad, Direction::Backward);
    let (_, la_good) = sim.end(good, Direction::Forward);
    let (_, lc) = sim.end(good, Direction::Backward);
    sim.run_for(Duration::from_secs(1));
    assert!(established_peer(&sim, b, lb).is_some());
    // Flip one bit inside the next message `a` writes to `b` (the hook sees
    // each write whole, at the sender).
    let mut done = false;
    sim.tamper(
        bad,
        Direction::Forward,
        Box::new(move |_, bytes| {
            if !done && bytes.len() > 10 {
                bytes[10] ^= 0x40;
                done = true;
            }
        }),
    );
    sim.send_cell(a, la_bad, &numbered_cell(1)).unwrap();
    sim.send_cell(a, la_good, &numbered_cell(2)).unwrap();
    sim.run_for(Duration::from_secs(1));
    assert_eq!(
        closed(&sim, b, lb),
        Some((CloseReason::AuthenticationFailed, ClosedBy::Local))
    );
    assert!(cells_received(&sim, b, lb).is_empty());
    // `b` told `a` why, over the still-valid reverse direction.
    assert_eq!(
        closed(&sim, a, la_bad),
        Some((CloseReason::AuthenticationFailed, ClosedBy::Peer))
    );
    // The other link of `a` is untouched.
    assert_eq!(cells_received(&sim, c, lc), vec![numbered_cell(2)]);
    assert_eq!(closed(&sim, a, la_good), None);
    sim.send_cell(a, la_good, &numbered_cell(3)).unwrap();
    sim.run_for(Duration::from_millis(100));
    assert_eq!(cells_received(&sim, c, lc).len(), 2);
}

#[test]
fn rekeying_under_load_loses_nothing() {
    let mut cfg = config();
    cfg.link.rekey_after_messages = 7;
    cfg.link.rekey_after = Duration::from_millis(250);
    let Pair {
        mut sim,
        a,
        b,
        la,
        lb,
        ..
    } = pair(5, cfg, StreamConditions::CHOPPY);
    sim.run_for(Duration::from_secs(1));
    let total = 2_000u64;
    for n in 0..total {
        while sim.send_cell(a, la, &numbered_cell(n)).is_err() {
            sim.run_for(Duration::from_millis(5));
        }
        let _ = sim.send_cell(b, lb, &numbered_cell(n));
        // Send in small bursts so that many messages (and rekeys) go out.
        sim.run_for(Duration::from_micros(300));
    }
    sim.run_for(Duration::from_secs(5));
    let got = cells_received(&sim, b, lb);
    assert_eq!(got.len(), total as usize);
    assert!(got
        .iter()
        .enumerate()
        .all(|(n, c)| *c == numbered_cell(n as u64)));
    // Rekeys continue on the idle link (pings count as messages), so one may
    // be in flight at any instant: wait until both directions are level.
    let level = sim.run_until_true(Duration::from_secs(2), |s| {
        let a_info = s.node(a).core.link_info(la).unwrap();
        let b_info = s.node(b).core.link_info(lb).unwrap();
        a_info.stats.rekeys_sent == b_info.stats.rekeys_received
            && b_info.stats.rekeys_sent == a_info.stats.rekeys_received
    });
    assert!(level, "every rekey sent is received");
    let info_a = sim.node(a).core.link_info(la).unwrap();
    assert!(
        info_a.stats.rekeys_sent >= 20,
        "only {} rekeys",
        info_a.stats.rekeys_sent
    );
    assert!(info_a.stats.rekeys_received >= 20);
    assert_eq!(closed(&sim, a, la), None);
}

#[test]
fn keepalives_measure_rtt_and_detect_a_silent_peer() {
    let mut cfg = config();
    cfg.link.keepalive_interval = Duration::from_secs(1);
    cfg.link.idle_timeout = Duration::from_secs(4);
    let mut sim = Sim::new(6);
    let a = sim.add_node(cfg, 4);
    let b = sim.add_node(cfg, 4);
    let conditions = StreamConditions {
        latency: Duration::from_millis(25),
        jitter: Duration::ZERO,
        max_chunk: usize::MAX,
        bandwidth: None,
    };
    let wire = sim.connect(a, b, conditions);
    let (_, la) = sim.end(wire, Direction::Forward);
    sim.run_for(Duration::from_secs(10));
    let rtt = sim.node(a).core.link_info(la).unwrap().rtt;
    assert_eq!(rtt.smoothed(), Some(Duration::from_millis(50)));
    assert_eq!(closed(&sim, a, la), None, "a healthy idle link stays up");

    // `b` freezes: its bytes stop arriving, its socket stays open.
    sim.silence(wire, Direction::Backward);
    let silenced_at = sim.now();
    sim.run_for(Duration::from_secs(10));
    let (at, reason) = sim
        .node(a)
        .events
        .iter()
        .find_map(|(t, e)| match e {
            veil_core::node::Event::LinkClosed { link, reason, .. } if *link == la => {
                Some((*t, *reason))
            }
            _ => None,
        })
        .expect("silent peer detected");
    assert_eq!(reason, CloseReason::PeerSilent);
    let detected_after = at.saturating_since(silenced_at);
    assert!(
        detected_after <= Duration::from_secs(4),
        "took {detected_after}"
    );
}

/// `a`'s `LinkClosed` of `la`: when, and why.
fn silent_peer_closed(
    sim: &Sim,
    a: usize,
    la: veil_core::link::LinkId,
) -> Option<(Instant, CloseReason)> {
    sim.node(a).events.iter().find_map(|(t, e)| match e {
        veil_core::node::Event::LinkClosed { link, reason, .. } if *link == la => {
            Some((*t, *reason))
        }
        _ => None,
    })
}

/// On the default timers, a peer that goes silent is found by its
/// unanswered ping: within one keepalive interval (15 s) plus the ping
/// timeout (here the 5 s floor, 4 RTOs of a 50 ms path being less), not
/// after the 60 s idle timeout the detector replaced.
#[test]
fn an_unanswered_ping_finds_a_silent_peer_long_before_the_idle_timeout() {
    let mut sim = Sim::new(16);
    let a = sim.add_node(config(), 4);
    let b = sim.add_node(config(), 4);
    let conditions = StreamConditions {
        latency: Duration::from_millis(25),
        jitter: Duration::ZERO,
        max_chunk: usize::MAX,
        bandwidth: None,
    };
    let wire = sim.connect(a, b, conditions);
    let (_, la) = sim.end(wire, Direction::Forward);
    sim.run_for(Duration::from_secs(40));
    assert_eq!(closed(&sim, a, la), None, "a healthy idle link stays up");
    sim.silence(wire, Direction::Backward);
    let silenced_at = sim.now();
    sim.run_for(Duration::from_secs(70));
    let (at, reason) = silent_peer_closed(&sim, a, la).expect("silent peer detected");
    assert_eq!(reason, CloseReason::PeerSilent);
    let detected_after = at.saturating_since(silenced_at);
    assert!(
        detected_after <= Duration::from_millis(20_100),
        "took {detected_after}"
    );
}

/// A slow path is not a silent peer: with 2.8 s each way (5.6 s round
/// trips, every pong later than the 5 s floor), the ping timeout follows the
/// measured RTO (the handshake gives the first sample) and the link stays
/// up.
#[test]
fn a_slow_path_is_not_taken_for_a_silent_peer() {
    let mut sim = Sim::new(17);
    let a = sim.add_node(config(), 4);
    let b = sim.add_node(config(), 4);
    let conditions = StreamConditions {
        latency: Duration::from_millis(2800),
        jitter: Duration::from_millis(100),
        max_chunk: usize::MAX,
        bandwidth: None,
    };
    let wire = sim.connect(a, b, conditions);
    let (_, la) = sim.end(wire, Direction::Forward);
    let (_, lb) = sim.end(wire, Direction::Backward);
    sim.run_for(Duration::from_secs(300));
    assert_eq!(closed(&sim, a, la), None, "the slow link stays up at a");
    assert_eq!(closed(&sim, b, lb), None, "and at b");
    let rtt = sim.node(a).core.link_info(la).unwrap().rtt;
    assert!(rtt.smoothed().unwrap() >= Duration::from_millis(5600));
}

#[test]
fn a_stalled_handshake_times_out() {
    let mut sim = Sim::new(7);
    let a = sim.add_node(config(), 4);
    let b = sim.add_node(config(), 4);
    let wire = sim.connect(a, b, StreamConditions::LAN);
    sim.silence(wire, Direction::Forward);
    let (_, la) = sim.end(wire, Direction::Forward);
    let (_, lb) = sim.end(wire, Direction::Backward);
    sim.run_for(Duration::from_secs(11));
    assert_eq!(
        closed(&sim, a, la),
        Some((CloseReason::HandshakeTimeout, ClosedBy::Local))
    );
    assert_eq!(
        closed(&sim, b, lb),
        Some((CloseReason::HandshakeTimeout, ClosedBy::Local))
    );
}

#[test]
fn a_clean_close_reaches_the_peer_with_its_reason() {
    let Pair {
        mut sim,
        a,
        b,
        la,
        lb,
        ..
    } = pair(8, config(), StreamConditions::CHOPPY);
    sim.run_for(Duration::from_secs(1));
    sim.send_cell(a, la, &numbered_cell(9)).unwrap();
    sim.close_link(a, la, CloseReason::Shutdown);
    sim.run_for(Duration::from_secs(1));
    // The cell queued before the close was discarded with the queue, and the
    // peer learned the reason.
    assert_eq!(
        closed(&sim, a, la),
        Some((CloseReason::Shutdown, ClosedBy::Local))
    );
    assert_eq!(
        closed(&sim, b, lb),
        Some((CloseReason::Shutdown, ClosedBy::Peer))
    );
    assert!(sim.node(a).core.link_info(la).is_none(), "slot freed");
}

fn run_scenario(seed: u64) -> ([u8; 32], u64) {
    let mut cfg = config();
    cfg.link.rekey_after_messages = 5;
    cfg.link.keepalive_interval = Duration::from_millis(500);
    let mut sim = Sim::new(seed);
    let nodes: Vec<_> = (0..4).map(|_| sim.add_node(cfg, 8)).collect();
    let mut links = Vec::new();
    for i in 0..nodes.len() {
        for j in (i + 1)..nodes.len() {
            let w = sim.connect(nodes[i], nodes[j], StreamConditions::CHOPPY);
            links.push(sim.end(w, Direction::Forward));
        }
    }
    sim.run_for(Duration::from_secs(1));
    for n in 0..50 {
        for &(node, link) in &links {
            let _ = sim.send_cell(node, link, &numbered_cell(n));
        }
        sim.run_for(Duration::from_millis(20));
    }
    sim.run_for(Duration::from_secs(3));
    let bytes: u64 = nodes.iter().map(|&n| sim.node(n).bytes_sent).sum();
    (sim.transcript_digest(), bytes)
}

#[test]
fn the_same_seed_gives_identical_bytes() {
    let first = run_scenario(42);
    let second = run_scenario(42);
    assert_eq!(first, second);
    assert!(first.1 > 100_000, "the scenario carried traffic");
    let other = run_scenario(43);
    assert_ne!(
        first.0, other.0,
        "a different seed gives different keys and bytes"
    );
}
