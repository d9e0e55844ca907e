//! Link admission under attack (issue 16, attacks 3 and 4): connections
//! from one network, half-open or established with throwaway identities,
//! cannot take a node's link table from peers in other networks.

use crate::common;

use std::net::{IpAddr, Ipv4Addr};

use common::*;
use veil_core::link::{CloseReason, LinkPhase, LinkRole};
use veil_core::node::{Event, LinkId, NodeConfig, OpenLinkError};
use veil_core::time::Duration;
use veil_sim::{Direction, NodeIndex, Sim, StreamConditions, ATTACKER_NETWORK};

/// 50 ms each way: a handshake takes 150 ms, long enough for a flood to
/// try to push it out.
const FAR: StreamConditions = StreamConditions {
    latency: Duration::from_millis(50),
    ..StreamConditions::LAN
};

/// An address in the attacker's /16.
fn attacker_ip(i: usize) -> IpAddr {
    let [a, b, _, _] = ATTACKER_NETWORK.octets();
    IpAddr::V4(Ipv4Addr::new(a, b, (i / 250) as u8, (i % 250) as u8 + 1))
}

fn still_half_open(sim: &Sim, target: NodeIndex, links: &[LinkId]) -> usize {
    sim.node(target)
        .core
        .links()
        .filter(|l| l.phase == LinkPhase::Handshaking && links.contains(&l.link))
        .count()
}

fn inbound_established(sim: &Sim, node: NodeIndex) -> Vec<veil_core::identity::NodeId> {
    sim.node(node)
        .core
        .links()
        .filter(|l| l.phase == LinkPhase::Established && l.role == LinkRole::Responder)
        .filter_map(|l| l.peer)
        .collect()
}

#[test]
fn a_connect_flood_from_one_network_does_not_evict_handshakes_from_others() {
    let mut sim = Sim::new(40);
    let config = NodeConfig::default();
    let target = sim.add_node(config, 64);
    let honest: Vec<NodeIndex> = (0..6).map(|_| sim.add_node(config, 4)).collect();
    let wires: Vec<_> = honest
        .iter()
        .map(|&h| sim.connect(h, target, FAR))
        .collect();
    // While those handshakes are in flight, the attacker connects 16 times
    // a millisecond, far more than the 16 half-open slots.
    let mut flood = Vec::new();
    for _ in 0..200 {
        for _ in 0..16 {
            flood.extend(sim.open_half_open(target));
        }
        assert!(still_half_open(&sim, target, &flood) <= config.max_half_open_per_prefix);
        sim.run_for(Duration::from_millis(1));
    }
    sim.run_for(Duration::from_millis(300));
    for (&h, &wire) in honest.iter().zip(&wires) {
        let (_, link) = sim.end(wire, Direction::Forward);
        assert!(
            established_peer(&sim, h, link).is_some(),
            "an honest handshake was pushed out by the flood"
        );
    }
    // The flood only ever displaced its own connections.
    assert_eq!(
        flood.len(),
        3200,
        "each new attempt replaces the network's own"
    );
    assert_eq!(inbound_established(&sim, target).len(), honest.len());
}

#[test]
fn throwaway_identities_from_one_network_cannot_fill_the_link_table() {
    let mut sim = Sim::new(41);
    let config = NodeConfig::default();
    let target = sim.add_addressed_node(config, 64);
    let mut refused = 0;
    for i in 0..64 {
        let attacker = sim.add_node(config, 2);
        sim.set_source_address(attacker, attacker_ip(i));
        match sim.try_connect(attacker, target, StreamConditions::LAN) {
            Ok(_) => sim.run_for(Duration::from_millis(10)),
            Err(OpenLinkError::NetworkFull) => refused += 1,
            Err(e) => panic!("unexpected refusal: {e}"),
        }
    }
    sim.run_for(Duration::from_millis(100));
    let held = inbound_established(&sim, target).len();
    assert_eq!(held, config.max_inbound_per_prefix);
    assert_eq!(refused, 64 - held);
    let stats = sim.node(target).core.stats();
    assert_eq!(stats.inbound_refused.network_full, refused as u64);
    assert_eq!(stats.inbound_refused.table_full, 0);
    // Honest peers, one per network, all still get in...
    let honest: Vec<NodeIndex> = (0..32).map(|_| sim.add_node(config, 4)).collect();
    for &h in &honest {
        sim.connect(h, target, StreamConditions::LAN);
        sim.run_for(Duration::from_millis(10));
    }
    sim.run_for(Duration::from_millis(100));
    assert_eq!(inbound_established(&sim, target).len(), held + honest.len());
    // ...and the node can still dial out.
    assert!(sim.try_dial(target).is_ok());
}

#[test]
fn a_full_inbound_share_makes_the_most_crowded_network_give_way() {
    let mut sim = Sim::new(42);
    let config = NodeConfig::default();
    // 8 slots: 6 for inbound links (a quarter is kept for dialling out),
    // at most 3 from one network.
    let target = sim.add_addressed_node(config, 8);
    let network = |n: u8, host: u8| IpAddr::V4(Ipv4Addr::new(66, 60 + n, 0, host));
    let mut joined = Vec::new();
    for (n, host) in [(0, 1), (1, 1), (0, 2), (1, 2), (2, 1), (0, 3)] {
        let peer = sim.add_node(config, 2);
        sim.set_source_address(peer, network(n, host));
        sim.connect(peer, target, StreamConditions::LAN);
        sim.run_for(Duration::from_secs(1));
        joined.push(sim.node_id(peer));
    }
    assert_eq!(inbound_established(&sim, target).len(), 6);
    assert!(sim.try_dial(target).is_ok(), "dialling out still works");
    // A peer from a fourth network gets in, in place of the youngest link
    // of the network holding the most; that network's oldest link stays.
    let newcomer = sim.add_node(config, 4);
    let wire = sim.connect(newcomer, target, StreamConditions::LAN);
    sim.run_for(Duration::from_millis(100));
    let (_, link) = sim.end(wire, Direction::Forward);
    assert!(established_peer(&sim, newcomer, link).is_some());
    let held = inbound_established(&sim, target);
    assert!(held.contains(&sim.node_id(newcomer)));
    assert!(
        !held.contains(&joined[5]),
        "the crowded network's youngest gave way"
    );
    for kept in &joined[..5] {
        assert!(held.contains(kept));
    }
    let evicted = sim
        .node(target)
        .events
        .iter()
        .filter(|(_, e)| {
            matches!(
                e,
                Event::LinkClosed {
                    reason: CloseReason::Evicted,
                    ..
                }
            )
        })
        .count();
    assert_eq!(evicted, 1);
}

#[test]
fn when_every_network_holds_one_link_a_newcomer_waits() {
    let mut sim = Sim::new(44);
    let config = NodeConfig::default();
    let target = sim.add_addressed_node(config, 4);
    let peers: Vec<NodeIndex> = (0..3).map(|_| sim.add_node(config, 2)).collect();
    for &p in &peers {
        sim.connect(p, target, StreamConditions::LAN);
        sim.run_for(Duration::from_millis(100));
    }
    let newcomer = sim.add_node(config, 2);
    assert_eq!(
        sim.try_connect(newcomer, target, StreamConditions::LAN),
        Err(OpenLinkError::TableFull)
    );
    assert_eq!(inbound_established(&sim, target).len(), 3);
    let stats = sim.node(target).core.stats();
    assert_eq!(stats.inbound_refused.table_full, 1);
    assert_eq!(stats.inbound_refused.total(), 1);
}

#[test]
fn a_half_open_flood_never_displaces_established_links() {
    let mut sim = Sim::new(43);
    let config = NodeConfig {
        max_half_open: 4,
        ..NodeConfig::default()
    };
    let target = sim.add_node(config, 8);
    let witness = sim.add_node(config, 4);
    let wire = sim.connect(witness, target, StreamConditions::LAN);
    sim.run_for(Duration::from_millis(100));
    let capacity = sim.node(target).core.link_capacity();
    let mut opened = 0;
    for _ in 0..200 {
        opened += usize::from(sim.open_half_open(target).is_some());
        assert!(sim.node(target).core.links().count() <= capacity);
        let half_open = sim
            .node(target)
            .core
            .links()
            .filter(|l| l.phase == LinkPhase::Handshaking)
            .count();
        // 8 slots give inbound links 6, and one network at most half.
        assert!(half_open <= 3, "{half_open} half-open links");
    }
    assert_eq!(opened, 200, "each replaces the network's own oldest");
    let (_, lw) = sim.end(wire, Direction::Backward);
    assert_eq!(closed(&sim, target, lw), None);
    assert_eq!(
        inbound_established(&sim, target),
        vec![sim.node_id(witness)]
    );
}
