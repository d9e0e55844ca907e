//! Dial policy (issue 16, attack 7): an `EXTEND` cannot make a relay
//! connect to a private address (server-side request forgery against the
//! relay's own network) unless the relay is configured to allow it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use veil_core::identity::{Address, Transport};
use veil_core::node::{AddBootstrap, NodeConfig};
use veil_core::time::Duration;
use veil_sim::{NodeIndex, Sim};

const UNIX_AT_ZERO: u64 = 1_800_000_000;
const PUBLIC_NODES: usize = 6;
const CLIENT: NodeIndex = 2;

/// A node inside someone's private network, reachable in the simulator
/// (as it would be from a relay on that network).
fn private_address() -> Address {
    Address {
        transport: Transport::Tcp,
        socket: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 7, 0, 1)), 7000),
    }
}

fn config(extend_to_private_addresses: bool) -> NodeConfig {
    NodeConfig {
        unix_time_at_zero: UNIX_AT_ZERO,
        gossip_interval: Duration::from_secs(1),
        extend_to_private_addresses,
        ..NodeConfig::default()
    }
}

/// Six public nodes and one at a private address, which gossips its
/// descriptor through node 0; the client sends it `messages` messages.
/// Returns the sim, the private node and how many times any node asked to
/// dial the private address.
fn run(extend_to_private_addresses: bool, messages: usize) -> (Sim, NodeIndex, usize) {
    let mut sim = Sim::new(41);
    for _ in 0..PUBLIC_NODES {
        sim.add_addressed_node(config(extend_to_private_addresses), 40);
    }
    let private = sim.add_node_at(config(extend_to_private_addresses), 40, private_address());
    for i in 1..=private {
        sim.handle(i, AddBootstrap::address(Sim::address_of(0)))
            .unwrap();
    }
    let target = sim.node_id(private);
    let known = sim.run_until_true(Duration::from_secs(60), |sim| {
        sim.node(CLIENT).core.node_table().get(&target).is_some()
    });
    assert!(known, "the client learned the private node's descriptor");
    for i in 0..messages {
        let _ = sim.send_message(CLIENT, private, format!("to the inside {i}").as_bytes());
        sim.run_for(Duration::from_secs(20));
    }
    let dials = (0..PUBLIC_NODES)
        .flat_map(|n| sim.dialled_by(n))
        .filter(|a| *a == private_address().socket)
        .count();
    (sim, private, dials)
}

#[test]
fn relays_refuse_to_extend_to_private_addresses() {
    let (mut sim, _, dials) = run(false, 6);
    assert_eq!(dials, 0, "no relay dialled the private address");
    // The refusal costs nothing else: messages between public nodes go.
    sim.send_message(CLIENT, 3, b"to a public node").unwrap();
    let delivered = sim.run_until_true(Duration::from_secs(60), |sim| {
        sim.node(3)
            .delivered
            .iter()
            .any(|d| d.bytes == b"to a public node")
    });
    assert!(delivered, "a message to a public node arrived");
}

/// The same network with the option on (as the loopback test networks
/// run): relays dial the private address and the messages arrive. This is
/// what the default refuses.
#[test]
fn relays_configured_for_private_addresses_extend_to_them() {
    let (sim, private, dials) = run(true, 6);
    assert!(dials > 0, "some relay dialled the private address");
    assert!(!sim.node(private).delivered.is_empty(), "messages arrived");
}
