//! Joining at any size (issue 11, point 5): many nodes that know only one
//! bootstrap address all end up linked to, and known by, the network. The
//! bootstrap node's link table never stays full: a joining node hands its
//! bootstrap link off once it is linked elsewhere, and a full node prunes
//! idle links for newcomers (relay spec §10, "Outbound links, hand-off and
//! pruning"). Links that carry circuits are never closed for room.

use crate::common;

use std::time::Instant as WallClock;

use common::linked_to;

use veil_core::link::{CloseReason, LinkPhase, LinkRole};
use veil_core::node::{AddBootstrap, Event, NodeConfig};
use veil_core::time::{Duration, Instant};
use veil_sim::{NodeIndex, Sim, StreamConditions};

const UNIX_AT_ZERO: u64 = 1_800_000_000;

fn config() -> NodeConfig {
    NodeConfig {
        unix_time_at_zero: UNIX_AT_ZERO,
        ..NodeConfig::default()
    }
}

/// Unix seconds at simulated time `at`.
fn unix(at: Instant) -> u64 {
    UNIX_AT_ZERO + at.as_micros() / 1_000_000
}

fn is_linked(sim: &Sim, node: NodeIndex) -> bool {
    sim.node(node)
        .core
        .links()
        .any(|l| l.phase == LinkPhase::Established)
}

fn known_relays(sim: &Sim, node: NodeIndex) -> usize {
    let now = unix(sim.now());
    sim.node(node).core.node_table().healthy_relays(now).count()
}

/// What a joining run measured, each node 60 s after it joined.
#[derive(Debug)]
struct Joined {
    /// Nodes with no established link 60 s after joining.
    unlinked: usize,
    /// The fewest healthy relays any node knew 60 s after joining.
    min_known: usize,
    /// At the end: the fewest other nodes whose table holds a node.
    min_known_by: usize,
    /// At the end: the most links the bootstrap node held.
    bootstrap_links: usize,
    /// Simulated time of the whole run.
    simulated: Duration,
}

/// `n` nodes with `links` link slots each join, one every `every`, through
/// the one bootstrap address of a node that is up first; each is measured
/// 60 s after it joined.
fn join_through_one_bootstrap(seed: u64, n: usize, links: usize, every: Duration) -> Joined {
    let wall = WallClock::now();
    let mut sim = Sim::new(seed);
    sim.set_dial_conditions(StreamConditions {
        latency: Duration::from_millis(10),
        ..StreamConditions::LAN
    });
    let start = sim.now();
    let boot = sim.add_addressed_node(config(), links);
    let deadline = Duration::from_secs(60);
    let mut joined: Vec<(NodeIndex, Instant)> = Vec::new();
    let mut checked = 0;
    let (mut unlinked, mut min_known) = (0, usize::MAX);
    while checked < n {
        if joined.len() < n {
            let node = sim.add_addressed_node(config(), links);
            let address = Sim::address_of(boot);
            sim.handle(node, AddBootstrap::address(address)).unwrap();
            joined.push((node, sim.now()));
        }
        sim.run_for(every);
        while let Some(&(node, at)) = joined.get(checked) {
            if sim.now().saturating_since(at) < deadline {
                break;
            }
            unlinked += usize::from(!is_linked(&sim, node));
            min_known = min_known.min(known_relays(&sim, node));
            checked += 1;
        }
    }
    let known_by: Vec<usize> = joined
        .iter()
        .map(|&(node, _)| {
            let id = sim.node_id(node);
            let others = joined.iter().map(|&(o, _)| o).chain([boot]);
            others
                .filter(|&o| o != node && sim.node(o).core.node_table().get(&id).is_some())
                .count()
        })
        .collect();
    let min_known_by = known_by.iter().copied().min().unwrap_or(0);
    let bootstrap_links = sim.node(boot).core.links().count();
    let result = Joined {
        unlinked,
        min_known,
        min_known_by,
        bootstrap_links,
        simulated: Duration::from_micros(sim.now().saturating_since(start).as_micros()),
    };
    println!(
        "{n} nodes, {links} slots, one joining every {} ms, {:.1} s simulated: {result:?}; \
         wall time {:.1} s",
        every.as_micros() / 1000,
        result.simulated.as_micros() as f64 / 1e6,
        wall.elapsed().as_secs_f64()
    );
    result
}

#[test]
fn two_hundred_nodes_join_through_one_bootstrap_address() {
    let r = join_through_one_bootstrap(51, 200, 32, Duration::from_millis(50));
    assert_eq!(r.unlinked, 0, "{r:?}");
    assert!(r.min_known >= 8, "{r:?}");
    assert!(r.min_known_by >= 1, "{r:?}");
    // Room for the next node to join: its inbound share is not full.
    assert!(r.bootstrap_links < 24, "{r:?}");
}

/// The same at 1,000 nodes: about a minute of wall time in a debug build,
/// so not part of the normal run:
/// `cargo test -p veil-sim --test sim joining:: -- --ignored --nocapture`.
#[test]
#[ignore]
fn a_thousand_nodes_join_through_one_bootstrap_address() {
    let r = join_through_one_bootstrap(52, 1000, 32, Duration::from_millis(50));
    assert_eq!(r.unlinked, 0, "{r:?}");
    assert!(r.min_known >= 8, "{r:?}");
    assert!(r.min_known_by >= 1, "{r:?}");
    // Room for the next node to join: its inbound share is not full.
    assert!(r.bootstrap_links < 24, "{r:?}");
}

/// Closes of `node`'s links to `peer`, with their reasons.
fn closes_to(sim: &Sim, node: NodeIndex, peer: NodeIndex) -> Vec<CloseReason> {
    let id = sim.node_id(peer);
    sim.node(node)
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::LinkClosed {
                peer: Some(p),
                reason,
                ..
            } if *p == id => Some(*reason),
            _ => None,
        })
        .collect()
}

/// A full node prunes idle inbound links for newcomers, youngest first,
/// and never one that carries a circuit: once only those are left (and
/// links still in their grace period), a newcomer is refused.
#[test]
fn pruning_for_newcomers_spares_links_that_carry_circuits() {
    let mut sim = Sim::new(53);
    // 8 slots: 6 for inbound links.
    let r = sim.add_addressed_node(config(), 8);
    let d = sim.add_addressed_node(config(), 8);
    sim.connect(r, d, StreamConditions::LAN);
    sim.run_for(Duration::from_secs(1));
    // Four clients whose circuits start over their (only) link to R, and
    // two idle peers: R's inbound share is full.
    let client = NodeConfig {
        relay: false,
        anonymous_first_hops: false,
        path_relays: 1,
        ..config()
    };
    let clients: Vec<NodeIndex> = (0..4).map(|_| sim.add_node(client, 4)).collect();
    for &c in &clients {
        sim.connect(c, r, StreamConditions::LAN);
        sim.run_for(Duration::from_millis(100));
    }
    let idle: Vec<NodeIndex> = (0..2).map(|_| sim.add_node(config(), 4)).collect();
    for &i in &idle {
        sim.connect(i, r, StreamConditions::LAN);
        sim.run_for(Duration::from_millis(100));
    }
    let guard = [sim.node_id(r)];
    for &c in &clients {
        sim.handle(c, veil_core::node::SetGuards::from_slice(&guard));
        sim.send_message(c, d, b"over R").unwrap();
    }
    sim.run_for(Duration::from_secs(2));
    assert_eq!(sim.node(d).delivered.len(), 4);
    assert_eq!(sim.node(r).core.circuit_counts().0, 4);
    // Past the grace period, two newcomers get in in place of the idle
    // peers, the youngest first.
    sim.run_for(veil_core::node::PRUNE_GRACE);
    for (n, gone) in [(0, idle[1]), (1, idle[0])] {
        let newcomer = sim.add_node(config(), 4);
        sim.try_connect(newcomer, r, StreamConditions::LAN)
            .unwrap_or_else(|e| panic!("newcomer {n} refused: {e}"));
        sim.run_for(Duration::from_millis(100));
        assert_eq!(closes_to(&sim, r, gone), [CloseReason::Pruned]);
    }
    // Now only circuit links and links in their grace period are left.
    let late = sim.add_node(config(), 4);
    assert!(sim.try_connect(late, r, StreamConditions::LAN).is_err());
    for &c in &clients {
        assert!(linked_to(&sim, r, c) && closes_to(&sim, r, c).is_empty());
        sim.send_message(c, d, b"still over R").unwrap();
    }
    sim.run_for(Duration::from_secs(2));
    assert_eq!(sim.node(d).delivered.len(), 8);
}

/// A node that joined through a bootstrap node hands its bootstrap link
/// off once it has linked to another relay, unless that link carries a
/// circuit.
#[test]
fn a_bootstrap_link_that_carries_a_circuit_is_not_handed_off() {
    let config = NodeConfig {
        gossip_interval: Duration::from_secs(1),
        ..config()
    };
    let mut sim = Sim::new(54);
    let r = sim.add_addressed_node(config, 16);
    let join = |sim: &mut Sim| {
        let n = sim.add_addressed_node(config, 16);
        let address = Sim::address_of(r);
        sim.handle(n, AddBootstrap::address(address)).unwrap();
        n
    };
    // J joins through R; there is no other relay to link to yet.
    let j = join(&mut sim);
    sim.run_for(Duration::from_secs(2));
    assert!(linked_to(&sim, j, r));
    // A client's circuit K → R → J runs over J's bootstrap link.
    let k = sim.add_node(
        NodeConfig {
            relay: false,
            path_relays: 1,
            ..config
        },
        4,
    );
    sim.connect(k, r, StreamConditions::LAN);
    sim.run_for(Duration::from_secs(2));
    sim.handle(k, veil_core::node::SetGuards::from_slice(&[sim.node_id(r)]));
    sim.send_message(k, j, b"to J").unwrap();
    sim.run_for(Duration::from_secs(2));
    assert_eq!(sim.node(j).delivered.len(), 1);
    // Relay E links to R, and J2 joins through R: J and J2 hear of E (and
    // of each other) and each links out to a relay other than R.
    let e = sim.add_addressed_node(config, 16);
    sim.connect(e, r, StreamConditions::LAN);
    let j2 = join(&mut sim);
    sim.run_for(Duration::from_secs(20));
    let r_id = sim.node_id(r);
    for n in [j, j2] {
        let linked_out = sim.node(n).core.links().any(|l| {
            l.role == LinkRole::Initiator
                && l.phase == LinkPhase::Established
                && l.peer != Some(r_id)
        });
        assert!(linked_out, "node {n} linked out");
    }
    assert_eq!(closes_to(&sim, j2, r), [CloseReason::Pruned], "handed off");
    assert!(linked_to(&sim, j, r) && closes_to(&sim, j, r).is_empty());
    sim.send_message(k, j, b"to J again").unwrap();
    sim.run_for(Duration::from_secs(2));
    assert_eq!(sim.node(j).delivered.len(), 2);
}
