//! A probe-resistant node (`NodeConfig::answer_unkeyed_dials = false`,
//! link spec §2.2) is joined through by a node given its id with its
//! address (`id@address`), and by no node given the address alone: that
//! node's first message, marked with the all-zero key, gets silence.

use crate::common;

use common::linked_to;
use veil_core::node::{AddBootstrap, NodeConfig};
use veil_core::time::Duration;
use veil_sim::Sim;

const UNIX_AT_ZERO: u64 = 1_800_000_000;

fn config() -> NodeConfig {
    NodeConfig {
        unix_time_at_zero: UNIX_AT_ZERO,
        ..NodeConfig::default()
    }
}

#[test]
fn a_probe_resistant_bootstrap_node_is_joined_through_with_its_id_only() {
    let mut sim = Sim::new(71);
    let hidden_bridge = sim.add_addressed_node(
        NodeConfig {
            answer_unkeyed_dials: false,
            ..config()
        },
        16,
    );
    let keyed = sim.add_addressed_node(config(), 16);
    let unkeyed = sim.add_addressed_node(config(), 16);
    let address = Sim::address_of(hidden_bridge);
    let id = sim.node_id(hidden_bridge);
    sim.handle(
        keyed,
        AddBootstrap {
            address,
            node_id: Some(id),
        },
    )
    .unwrap();
    sim.handle(unkeyed, AddBootstrap::address(address)).unwrap();
    sim.run_for(Duration::from_secs(20));
    assert!(
        linked_to(&sim, keyed, hidden_bridge),
        "the node given the id joined"
    );
    assert!(
        !linked_to(&sim, unkeyed, hidden_bridge),
        "the node given the address alone was answered"
    );
    // The bridge refused the zero-key first messages in silence, and the
    // keyed link is a bootstrap link like any other: the joining node
    // learned the bridge's descriptor over it.
    assert!(sim.node(keyed).core.node_table().get(&id).is_some());
    assert!(sim.node(unkeyed).core.node_table().get(&id).is_none());
}

#[test]
fn a_bootstrap_id_that_is_not_the_nodes_is_refused() {
    let mut sim = Sim::new(72);
    let bridge = sim.add_addressed_node(config(), 16);
    let other = sim.add_addressed_node(config(), 16);
    let joiner = sim.add_addressed_node(config(), 16);
    // The address is the bridge's, the id another node's: the bridge does
    // not answer a mark under another id, and no link comes up.
    sim.handle(
        joiner,
        AddBootstrap {
            address: Sim::address_of(bridge),
            node_id: Some(sim.node_id(other)),
        },
    )
    .unwrap();
    sim.run_for(Duration::from_secs(20));
    assert!(!linked_to(&sim, joiner, bridge));
    assert!(!linked_to(&sim, joiner, other));
}
