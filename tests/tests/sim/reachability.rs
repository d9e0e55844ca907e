//! Reachability detection by dial-back (issue 19, point 1; relay spec §10
//! "Reachability"): a node asks linked peers to dial each of its addresses
//! back and advertises only those reached. A node that can be dialled
//! finds so and advertises its address; a node behind NAT finds it cannot,
//! advertises nothing, lists introducers, and still gets its messages.

use veil_core::identity::verify_descriptor;
use veil_core::node::{AddBootstrap, NodeConfig, Reachability, ReachabilityStatus};
use veil_core::time::Duration;
use veil_sim::{NodeIndex, Sim};

const UNIX_AT_ZERO: u64 = 1_800_000_000;

fn config() -> NodeConfig {
    NodeConfig {
        unix_time_at_zero: UNIX_AT_ZERO,
        gossip_interval: Duration::from_secs(5),
        ..NodeConfig::default()
    }
}

fn detecting() -> NodeConfig {
    NodeConfig {
        reachability: Reachability::Detect,
        ..config()
    }
}

/// Eight public relays joined through the first.
fn relays(sim: &mut Sim) -> Vec<NodeIndex> {
    let first = sim.add_addressed_node(config(), 32);
    let mut relays = vec![first];
    for _ in 1..8 {
        let relay = sim.add_addressed_node(config(), 32);
        sim.handle(relay, AddBootstrap::address(Sim::address_of(first)))
            .unwrap();
        relays.push(relay);
    }
    sim.run_for(Duration::from_secs(20));
    relays
}

fn advertised(sim: &Sim, node: NodeIndex) -> Vec<std::net::SocketAddr> {
    let unix = UNIX_AT_ZERO + sim.now().as_micros() / 1_000_000;
    let d = verify_descriptor(sim.node(node).core.descriptor(), unix).unwrap();
    d.repr().addresses.iter().map(|a| a.socket).collect()
}

#[test]
fn a_node_peers_can_dial_finds_so_and_advertises_its_address() {
    let mut sim = Sim::new(5);
    let relays = relays(&mut sim);
    let node = sim.add_addressed_node(detecting(), 16);
    assert_eq!(
        sim.node(node).core.reachability(),
        ReachabilityStatus::Checking
    );
    assert!(
        advertised(&sim, node).is_empty(),
        "nothing before a verdict"
    );
    sim.handle(node, AddBootstrap::address(Sim::address_of(relays[0])))
        .unwrap();
    let found = sim.run_until_true(Duration::from_secs(30), |sim| {
        sim.node(node).core.reachability() == ReachabilityStatus::Reachable
    });
    assert!(found, "status {:?}", sim.node(node).core.reachability());
    assert_eq!(advertised(&sim, node), vec![Sim::address_of(node).socket]);
    assert!(sim.node(node).core.introducers().is_empty());
}

#[test]
fn a_node_behind_nat_finds_it_cannot_be_dialled_and_is_reached_through_introducers() {
    let mut sim = Sim::new(6);
    let relays = relays(&mut sim);
    let hidden = sim.add_node_behind_nat(detecting(), 16);
    sim.handle(hidden, AddBootstrap::address(Sim::address_of(relays[0])))
        .unwrap();
    let found = sim.run_until_true(Duration::from_secs(30), |sim| {
        sim.node(hidden).core.reachability() == ReachabilityStatus::Unreachable
            && sim.node(hidden).core.introducers().len() == 2
    });
    assert!(
        found,
        "status {:?}, introducers {:?}",
        sim.node(hidden).core.reachability(),
        sim.node(hidden).core.introducers()
    );
    assert!(
        advertised(&sim, hidden).is_empty(),
        "its private address is not advertised"
    );
    let sender = relays[7];
    let id = sim.node_id(hidden);
    let known = sim.run_until_true(Duration::from_secs(60), |sim| {
        sim.node(sender).core.node_table().get(&id).is_some()
    });
    assert!(known, "the sender learned of it");
    for i in 0..5u8 {
        sim.send_message(sender, hidden, &[i; 32]).unwrap();
    }
    let delivered = sim.run_until_true(Duration::from_secs(60), |sim| {
        sim.node(hidden).delivered.len() >= 5
    });
    assert!(delivered, "got {}", sim.node(hidden).delivered.len());
    assert_eq!(sim.node(hidden).delivered.len(), 5, "each exactly once");
}

/// A client that relays for nobody and starts its circuits on anonymous
/// links (a device, a phone) behind NAT: it keeps an outbound link under its
/// identity all the same, so that it has an introducer to list. Without that
/// link its only identified link was its bootstrap link, which never
/// introduces, and nobody could reach it.
#[test]
fn an_anonymous_client_behind_nat_keeps_a_link_for_its_introducer() {
    let mut sim = Sim::new(7);
    let relays = relays(&mut sim);
    let client = NodeConfig {
        relay: false,
        anonymous_first_hops: true,
        introducers: 1,
        outbound_links: 1,
        ..detecting()
    };
    let hidden = sim.add_node_behind_nat(client, 8);
    sim.handle(hidden, AddBootstrap::address(Sim::address_of(relays[0])))
        .unwrap();
    let found = sim.run_until_true(Duration::from_secs(60), |sim| {
        sim.node(hidden).core.reachability() == ReachabilityStatus::Unreachable
            && sim.node(hidden).core.introducers().len() == 1
    });
    assert!(
        found,
        "status {:?}, introducers {:?}",
        sim.node(hidden).core.reachability(),
        sim.node(hidden).core.introducers()
    );
    let sender = relays[7];
    let id = sim.node_id(hidden);
    let known = sim.run_until_true(Duration::from_secs(60), |sim| {
        sim.node(sender).core.node_table().get(&id).is_some()
    });
    assert!(known, "the sender learned of it");
    sim.send_message(sender, hidden, b"to a client behind NAT")
        .unwrap();
    let delivered = sim.run_until_true(Duration::from_secs(60), |sim| {
        !sim.node(hidden).delivered.is_empty()
    });
    assert!(delivered, "its message arrived through its introducer");
    assert_eq!(sim.node(hidden).delivered.len(), 1, "exactly once");
}
