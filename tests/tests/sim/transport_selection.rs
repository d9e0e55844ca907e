//! Transport selection on the simulator: peers that advertise QUIC are
//! dialled over QUIC first, TCP is raced after a delay, the first link up
//! wins and a later one is closed as `Duplicate`, what worked is
//! remembered, and a node whose UDP is blocked still joins over TCP.

use veil_core::identity::{NodeId, Transport};
use veil_core::link::CloseReason;
use veil_core::node::{AddBootstrap, Event, NodeConfig, SendMessageError};
use veil_core::time::Duration;
use veil_sim::{NodeIndex, Sim};

const UNIX_AT_ZERO: u64 = 1_800_000_000;

fn config(quic: bool) -> NodeConfig {
    NodeConfig {
        unix_time_at_zero: UNIX_AT_ZERO,
        gossip_interval: Duration::from_secs(1),
        quic_dials: quic,
        path_relays: 1,
        // Gossip from one link fills only a share of the new table; nodes
        // learn the rest from peers they reach with feeler dials.
        feeler_interval: Duration::from_secs(1),
        ..NodeConfig::default()
    }
}

/// `n` nodes; `quic(i)` says whether node `i` listens and dials over QUIC
/// too. Everyone bootstraps from node 0's TCP address.
fn network(seed: u64, n: usize, quic: impl Fn(NodeIndex) -> bool, race: Duration) -> Sim {
    network_blocking(seed, n, quic, race, None)
}

/// [`network`], with UDP blocked for `blocked` from the start.
fn network_blocking(
    seed: u64,
    n: usize,
    quic: impl Fn(NodeIndex) -> bool,
    race: Duration,
    blocked: Option<NodeIndex>,
) -> Sim {
    let mut sim = Sim::new(seed);
    for i in 0..n {
        let transports: &[Transport] = if quic(i) {
            &[Transport::Quic, Transport::Tcp]
        } else {
            &[Transport::Tcp]
        };
        let cfg = NodeConfig {
            transport_race_delay: race,
            ..config(quic(i))
        };
        sim.add_node_over(cfg, 32, transports);
    }
    if let Some(blocked) = blocked {
        sim.set_udp_blocked(blocked, true);
    }
    for i in 1..n {
        sim.handle(i, AddBootstrap::address(Sim::address_of(0)))
            .unwrap();
    }
    let learned = sim.run_until_true(Duration::from_secs(120), |sim| {
        (0..n).all(|i| sim.node(i).core.node_table().len() == n - 1)
    });
    assert!(learned, "every node learned every other");
    sim
}

fn send(sim: &mut Sim, from: NodeIndex, to: NodeIndex, body: &[u8]) {
    loop {
        match sim.send_message(from, to, body) {
            Ok(_) => return,
            Err(SendMessageError::Full) => sim.run_for(Duration::from_millis(20)),
            Err(e) => panic!("{e}"),
        }
    }
}

/// Transports of `node`'s established links to `peer`.
fn transports_to(sim: &Sim, node: NodeIndex, peer: NodeId) -> Vec<Option<Transport>> {
    sim.node(node)
        .core
        .links()
        .filter(|l| l.peer == Some(peer))
        .map(|l| l.transport)
        .collect()
}

fn duplicates_closed(sim: &Sim, node: NodeIndex) -> usize {
    sim.node(node)
        .events
        .iter()
        .filter(|(_, e)| {
            matches!(
                e,
                Event::LinkClosed {
                    reason: CloseReason::Duplicate,
                    ..
                }
            )
        })
        .count()
}

#[test]
fn quic_is_preferred_when_both_ends_speak_it() {
    let mut sim = network(1, 6, |_| true, Duration::from_millis(250));
    send(&mut sim, 3, 5, b"over quic");
    sim.run_for(Duration::from_secs(5));
    assert_eq!(sim.node(5).delivered.len(), 1);
    // Node 3 dialled its first hop itself: over QUIC, which connected well
    // inside the race delay, so TCP was never tried.
    let dialled: Vec<_> = sim
        .node(3)
        .core
        .links()
        .filter(|l| l.peer != Some(sim.node_id(0)))
        .map(|l| l.transport)
        .collect();
    assert!(!dialled.is_empty());
    assert!(
        dialled.iter().all(|t| *t == Some(Transport::Quic)),
        "{dialled:?}"
    );
    assert_eq!(duplicates_closed(&sim, 3), 0);
    let relay = sim
        .node(3)
        .core
        .links()
        .find(|l| l.peer != Some(sim.node_id(0)))
        .and_then(|l| l.peer)
        .unwrap();
    let entry = sim.node(3).core.node_table().get(&relay).unwrap();
    assert_eq!(entry.transport, Some(Transport::Quic), "remembered");
}

#[test]
fn a_node_whose_udp_is_blocked_still_joins_and_works_over_tcp() {
    // Blocked from the start: feeler dials reach it while the network forms.
    let blocked = 4;
    let mut sim = network_blocking(2, 6, |_| true, Duration::from_millis(250), Some(blocked));
    let blocked_id = sim.node_id(blocked);
    // Others reach it: their QUIC dial goes unanswered, TCP wins the race.
    send(&mut sim, 2, blocked, b"to the blocked node");
    // And it reaches others: its QUIC dials go nowhere, TCP gets through.
    send(&mut sim, blocked, 1, b"from the blocked node");
    sim.run_for(Duration::from_secs(10));
    assert_eq!(sim.node(blocked).delivered.len(), 1);
    assert_eq!(sim.node(1).delivered.len(), 1);
    for i in 0..6 {
        if i == blocked {
            continue;
        }
        for t in transports_to(&sim, i, blocked_id) {
            assert_ne!(t, Some(Transport::Quic), "node {i} reached it over QUIC");
        }
    }
    // Whoever dialled it remembers TCP, and next time dials TCP first.
    let remembered = (0..6).filter(|&i| {
        sim.node(i)
            .core
            .node_table()
            .get(&blocked_id)
            .is_some_and(|e| e.transport == Some(Transport::Tcp))
    });
    assert!(remembered.count() >= 1);
}

#[test]
fn with_no_head_start_both_transports_connect_and_the_later_link_is_closed() {
    let mut sim = network(3, 6, |_| true, Duration::ZERO);
    for to in [1, 2, 4, 5] {
        send(&mut sim, 3, to, b"race");
    }
    sim.run_for(Duration::from_secs(5));
    let delivered: usize = (0..6).map(|i| sim.node(i).delivered.len()).sum();
    assert_eq!(delivered, 4);
    let closed: usize = (0..6).map(|i| duplicates_closed(&sim, i)).sum();
    assert!(closed >= 1, "a race loser was closed");
    // No node keeps two links it dialled to the same peer (of one kind:
    // an anonymous link for its own circuits may stand beside one under
    // its identity, relay spec §11).
    for node in 0..6 {
        for peer in 0..6 {
            for anonymous in [false, true] {
                if peer == node {
                    continue;
                }
                let dialled = sim
                    .node(node)
                    .core
                    .links()
                    .filter(|l| {
                        l.peer == Some(sim.node_id(peer))
                            && l.role == veil_core::link::LinkRole::Initiator
                            && l.anonymous == anonymous
                    })
                    .count();
                assert!(dialled <= 1, "node {node} dialled {peer} {dialled} times");
            }
        }
    }
}

#[test]
fn a_mixed_network_carries_circuits_across_both_transports() {
    let n = 10;
    let mut sim = network(4, n, |i| i % 2 == 0, Duration::from_millis(250));
    for i in 0..n {
        let (from, to) = (i, (i + 3) % n);
        send(&mut sim, from, to, format!("message {i}").as_bytes());
    }
    let done = sim.run_until_true(Duration::from_secs(30), |sim| {
        (0..n).map(|i| sim.node(i).delivered.len()).sum::<usize>() == n
    });
    assert!(done, "every message arrived");
    let mut quic = 0;
    let mut tcp = 0;
    for i in 0..n {
        for l in sim.node(i).core.links() {
            match l.transport {
                Some(Transport::Quic) => quic += 1,
                Some(Transport::Tcp) => tcp += 1,
                None => {}
            }
        }
    }
    assert!(
        quic > 0 && tcp > 0,
        "links over both ({quic} QUIC, {tcp} TCP)"
    );
    // A TCP-only node never got a QUIC link.
    for i in (1..n).step_by(2) {
        assert!(sim
            .node(i)
            .core
            .links()
            .all(|l| l.transport != Some(Transport::Quic)));
    }
}
