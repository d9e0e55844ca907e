//! An `EXTEND` carries the addresses of the next hop (relay spec §6), so a
//! relay extends to a node its own table does not hold. Without them, in a
//! network larger than a node table, most `EXTEND`s failed: at 1,000 nodes
//! with 64-entry tables, 98 % of circuit builds (docs/churn.md). The relay's
//! dial policy still applies to the client's addresses.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use veil_core::identity::{Address, Transport};
use veil_core::node::NodeConfig;
use veil_core::time::Duration;
use veil_sim::{NodeIndex, Sim, StreamConditions};

const UNIX_AT_ZERO: u64 = 1_800_000_000;
const CLIENT: NodeIndex = 0;
/// The client, three relays and the destination.
const NODES: usize = 5;
const DESTINATION: NodeIndex = NODES - 1;

fn config(extend_to_private_addresses: bool) -> NodeConfig {
    NodeConfig {
        unix_time_at_zero: UNIX_AT_ZERO,
        // Nobody passes on what it knows, and nobody links on its own: the
        // relays know the client and nobody else.
        gossip_interval: Duration::from_secs(24 * 3600),
        outbound_links: 0,
        extend_to_private_addresses,
        ..NodeConfig::default()
    }
}

/// A network where only the client knows everyone: it is linked to each
/// node, and no other two nodes are linked or know each other. The
/// destination listens at `destination` if given (else a public address).
fn network(extend_to_private_addresses: bool, destination: Option<Address>) -> Sim {
    let mut sim = Sim::new(23);
    for index in 0..NODES {
        let config = config(extend_to_private_addresses);
        match destination {
            Some(address) if index == DESTINATION => sim.add_node_at(config, 8, address),
            _ => sim.add_addressed_node(config, 8),
        };
    }
    for index in 1..NODES {
        sim.connect(CLIENT, index, StreamConditions::default());
    }
    sim.run_for(Duration::from_secs(2));
    for index in 1..NODES {
        let id = sim.node_id(index);
        assert!(
            sim.node(CLIENT).core.node_table().get(&id).is_some(),
            "the client knows node {index}"
        );
    }
    for relay in 1..DESTINATION {
        let table = sim.node(relay).core.node_table();
        for other in 1..NODES {
            assert!(
                other == relay || table.get(&sim.node_id(other)).is_none(),
                "relay {relay} does not know node {other}"
            );
        }
    }
    sim
}

/// Whether the message reached the destination.
fn delivered(sim: &mut Sim) -> bool {
    sim.send_message(CLIENT, DESTINATION, b"to a stranger's neighbour")
        .expect("sent");
    sim.run_until_true(Duration::from_secs(60), |sim| {
        !sim.node(DESTINATION).delivered.is_empty()
    })
}

#[test]
fn relays_extend_to_nodes_they_do_not_know() {
    let mut sim = network(false, None);
    assert!(delivered(&mut sim), "the message arrived");
    // The last relay dialled the destination at the address the client
    // gave (it learns the descriptor only once linked to it).
    let destination = Sim::address_of(DESTINATION).socket;
    let dials = (1..DESTINATION)
        .flat_map(|relay| sim.dialled_by(relay))
        .filter(|a| *a == destination)
        .count();
    assert!(dials > 0, "a relay dialled the destination");
}

/// The client's addresses pass the relay's dial policy like its own
/// table's: a private address is not dialled for a stranger.
#[test]
fn a_private_address_in_an_extend_is_not_dialled() {
    let private = Address {
        transport: Transport::Tcp,
        socket: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 9, 0, 1)), 7000),
    };
    let mut sim = network(false, Some(private));
    assert!(!delivered(&mut sim), "no relay reached the private node");
    let dials = (1..DESTINATION)
        .flat_map(|relay| sim.dialled_by(relay))
        .filter(|a| *a == private.socket)
        .count();
    assert_eq!(dials, 0, "no relay dialled the private address");

    // With the option on (a test network on one host), it goes.
    let mut sim = network(true, Some(private));
    assert!(delivered(&mut sim), "the message arrived");
}
