//! Feeler dials (issue 16, item 1): a node dials entries it has only heard
//! of, promotes those that answer to the tried table and closes the feeler
//! link again; an entry whose address answers nobody is marked failing, so
//! any newcomer of its bucket may replace it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use veil_core::identity::{Address, DescriptorRepr, Identity, Transport, MAX_DESCRIPTOR_LEN};
use veil_core::node::{LearnDescriptor, NodeConfig};
use veil_core::time::Duration;
use veil_sim::{NodeIndex, Sim, StreamConditions};

const UNIX_AT_ZERO: u64 = 1_800_000_000;

fn config() -> NodeConfig {
    NodeConfig {
        unix_time_at_zero: UNIX_AT_ZERO,
        feeler_interval: Duration::from_secs(5),
        ..NodeConfig::default()
    }
}

/// A relay descriptor for an address nobody listens at.
fn phantom(seed: u32) -> Vec<u8> {
    let mut secret = [0x77; 32];
    secret[..4].copy_from_slice(&seed.to_be_bytes());
    let identity = Identity::from_secret_bytes(secret);
    let mut repr = DescriptorRepr {
        identity: identity.public(),
        onion_key: [1; 32],
        relay: true,
        issued_at: UNIX_AT_ZERO,
        expires_at: UNIX_AT_ZERO + 3600,
        addresses: Default::default(),
    };
    let ip = Ipv4Addr::new(30, seed as u8, 0, 1);
    repr.addresses
        .push(Address {
            transport: Transport::Tcp,
            socket: SocketAddr::new(IpAddr::V4(ip), 7000),
        })
        .unwrap();
    let mut buf = [0u8; MAX_DESCRIPTOR_LEN];
    let len = repr.emit_signed(&identity, &mut buf).unwrap();
    buf[..len].to_vec()
}

#[test]
fn feelers_promote_nodes_that_answer_and_mark_those_that_do_not() {
    let mut sim = Sim::new(77);
    let node = sim.add_addressed_node(config(), 16);
    let boot = sim.add_addressed_node(config(), 16);
    let others: Vec<NodeIndex> = (0..6)
        .map(|_| sim.add_addressed_node(config(), 16))
        .collect();
    for &o in &others {
        sim.connect(o, boot, StreamConditions::LAN);
    }
    sim.run_for(Duration::from_secs(2));
    // The node hears of the others only through its bootstrap's gossip.
    sim.connect(node, boot, StreamConditions::LAN);
    let phantoms: Vec<Vec<u8>> = (0..3).map(phantom).collect();
    for bytes in &phantoms {
        sim.handle(node, LearnDescriptor { descriptor: bytes })
            .unwrap();
    }
    sim.run_for(Duration::from_secs(2));
    let table = sim.node(node).core.node_table();
    let heard: Vec<_> = others.iter().map(|&o| sim.node_id(o)).collect();
    assert!(heard
        .iter()
        .any(|id| table.get(id).is_some_and(|e| !e.is_tried())));
    sim.run_for(Duration::from_secs(120));
    let table = sim.node(node).core.node_table();
    let tried = heard
        .iter()
        .filter(|id| table.get(id).is_some_and(|e| e.is_tried()))
        .count();
    assert!(tried >= 3, "{tried} of 6 promoted by feelers");
    // Feeler links close again: only the bootstrap link (and links the
    // others dialled to it) stay.
    let dialled = sim
        .node(node)
        .core
        .links()
        .filter(|l| l.role == veil_core::link::LinkRole::Initiator)
        .count();
    assert_eq!(dialled, 1, "feeler links closed");
    // The phantoms were dialled in turn, answered nobody, and are failing.
    let failing = phantoms
        .iter()
        .map(|b| {
            veil_core::identity::verify_descriptor(b, UNIX_AT_ZERO)
                .unwrap()
                .node_id()
        })
        .filter(|id| {
            table
                .get(id)
                .is_none_or(|e| !e.is_healthy(UNIX_AT_ZERO + 200))
        })
        .count();
    assert!(failing >= 1, "{failing} of 3 phantoms marked failing");
}
