//! Discovery on the simulator: descriptor exchange when a link comes up,
//! gossip spreading descriptors through a network, and refusal of forged,
//! replayed and malformed descriptors.

use crate::common;

use common::*;
use veil_core::cell::{emit_descriptor_body, CellCommand, CellRepr, CircuitId};
use veil_core::discovery::InsertError;
use veil_core::identity::{verify_descriptor, DescriptorError};
use veil_core::link::{Cell, CloseReason, ClosedBy};
use veil_core::node::{DescriptorRefusal, Event, NodeConfig, SetAddresses};
use veil_core::time::Duration;
use veil_sim::{Sim, StreamConditions};

const UNIX_AT_ZERO: u64 = 1_800_000_000;

fn config() -> NodeConfig {
    NodeConfig {
        unix_time_at_zero: UNIX_AT_ZERO,
        gossip_interval: Duration::from_secs(1),
        // Some tests put raw circuit cells on links.
        link_only: true,
        ..NodeConfig::default()
    }
}

fn descriptor_cell(bytes: &[u8]) -> Cell {
    CellRepr {
        circuit_id: CircuitId::LINK,
        command: CellCommand::Descriptor,
        body: emit_descriptor_body(bytes).unwrap(),
    }
    .emit()
}

fn refusals(sim: &Sim, node: usize) -> Vec<DescriptorRefusal> {
    sim.node(node)
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::DescriptorRefused { reason, .. } => Some(*reason),
            _ => None,
        })
        .collect()
}

#[test]
fn linked_nodes_exchange_verified_descriptors() {
    let Pair { mut sim, a, b, .. } = pair(30, config(), StreamConditions::CHOPPY);
    sim.run_for(Duration::from_millis(500));
    for (me, other) in [(a, b), (b, a)] {
        let peer = sim.node_id(other);
        let learned = sim.node(me).events.iter().any(
            |(_, e)| matches!(e, Event::PeerLearned { peer: p, relay: true, .. } if *p == peer),
        );
        assert!(learned, "node {me} learned node {other}");
        let entry = sim
            .node(me)
            .core
            .node_table()
            .get(&peer)
            .expect("in the table");
        assert_eq!(
            entry.descriptor.repr().onion_key,
            sim.node(other).core.onion_public_key()
        );
        assert_eq!(
            entry.descriptor.as_bytes(),
            sim.node(other).core.descriptor()
        );
    }
    // Cells on circuits are unaffected by the exchange.
    assert!(refusals(&sim, a).is_empty() && refusals(&sim, b).is_empty());
}

#[test]
fn thirty_nodes_boot_from_two_bootstrap_nodes_by_gossip() {
    let mut sim = Sim::new(31);
    // Bootstrap nodes need an inbound link slot for everyone (a quarter of
    // a table is kept for dialling out); the others need two. Nodes have
    // addresses: path selection draws no relay without one.
    let nodes: Vec<usize> = (0..30)
        .map(|i| sim.add_addressed_node(config(), if i < 2 { 40 } else { 8 }))
        .collect();
    let (boot_a, boot_b) = (nodes[0], nodes[1]);
    sim.connect(boot_a, boot_b, StreamConditions::LAN);
    for &n in &nodes[2..] {
        // Every node has both bootstrap addresses in its config. Nodes join
        // 20 ms apart: all at once would exceed the bootstraps' half-open
        // limit, which (correctly) evicts the oldest handshakes.
        sim.connect(n, boot_a, StreamConditions::CHOPPY);
        sim.connect(n, boot_b, StreamConditions::CHOPPY);
        sim.run_for(Duration::from_millis(20));
    }
    let now_unix = UNIX_AT_ZERO + 200;
    sim.run_for(Duration::from_secs(120));
    for &n in &nodes {
        let table = sim.node(n).core.node_table();
        let relays = table.healthy_relays(now_unix).count();
        // Gossip over one link fills at most an eighth of the new table's
        // buckets (2 of 16, 8 entries): two bootstrap links teach at least
        // that much, and feeler dials (off here) the rest.
        assert!(relays >= 8, "node {n} knows only {relays} relays");
    }
    // The bootstrap nodes hear from everyone directly.
    assert_eq!(sim.node(boot_a).core.node_table().len(), 29);
    let total: usize = nodes
        .iter()
        .map(|&n| sim.node(n).core.node_table().len())
        .sum();
    println!(
        "average known nodes after 120 s: {:.1}",
        total as f64 / 30.0
    );
}

#[test]
fn forged_descriptors_are_refused_and_the_link_stays_up() {
    let Pair {
        mut sim,
        a,
        b,
        la,
        lb,
        ..
    } = pair(32, config(), StreamConditions::LAN);
    sim.run_for(Duration::from_millis(200));
    let verified = sim.node(b).core.stats().descriptors_verified;
    // Another onion key with the issue time of the stored descriptor: a
    // node never signs two, so this is refused without a verification.
    let mut altered = sim.node(a).core.descriptor().to_vec();
    altered[40] ^= 1; // the onion key
    sim.send_cell(a, la, &descriptor_cell(&altered)).unwrap();
    sim.run_for(Duration::from_millis(100));
    assert_eq!(
        refusals(&sim, b),
        vec![DescriptorRefusal::Table(InsertError::NotNewer)]
    );
    assert_eq!(sim.node(b).core.stats().descriptors_verified, verified);
    // The same with a later issue time is verified, and fails.
    let mut forged = altered.clone();
    let issued_at = u64::from_be_bytes(forged[66..74].try_into().unwrap());
    forged[66..74].copy_from_slice(&(issued_at + 1).to_be_bytes());
    sim.send_cell(a, la, &descriptor_cell(&forged)).unwrap();
    sim.run_for(Duration::from_millis(100));
    assert_eq!(
        refusals(&sim, b),
        vec![
            DescriptorRefusal::Table(InsertError::NotNewer),
            DescriptorRefusal::Invalid(DescriptorError::BadSignature)
        ]
    );
    assert_eq!(sim.node(b).core.stats().descriptors_verified, verified + 1);
    // The stored descriptor is still the genuine one.
    let stored = sim.node(b).core.node_table().get(&sim.node_id(a)).unwrap();
    assert_eq!(stored.descriptor.as_bytes(), sim.node(a).core.descriptor());
    sim.send_cell(a, la, &numbered_cell(1)).unwrap();
    sim.run_for(Duration::from_millis(100));
    assert_eq!(cells_received(&sim, b, lb), vec![numbered_cell(1)]);
}

#[test]
fn a_replayed_older_descriptor_cannot_roll_back_a_node() {
    let Pair {
        mut sim, a, b, la, ..
    } = pair(33, config(), StreamConditions::LAN);
    sim.run_for(Duration::from_millis(200));
    let old = sim.node(a).core.descriptor().to_vec();
    // `a` re-signs (new addresses, a later issue time) and re-announces.
    sim.run_for(Duration::from_secs(5));
    let addr = veil_core::identity::Address {
        transport: veil_core::identity::Transport::Tcp,
        socket: "192.0.2.7:9000".parse().unwrap(),
    };
    let _ = sim.now();
    sim.handle(a, SetAddresses::from_slice(&[addr]));
    let new = sim.node(a).core.descriptor().to_vec();
    assert!(
        verify_descriptor(&new, UNIX_AT_ZERO + 10)
            .unwrap()
            .repr()
            .issued_at
            > verify_descriptor(&old, UNIX_AT_ZERO + 10)
                .unwrap()
                .repr()
                .issued_at
    );
    sim.send_cell(a, la, &descriptor_cell(&new)).unwrap();
    sim.run_for(Duration::from_millis(100));
    let stored = sim.node(b).core.node_table().get(&sim.node_id(a)).unwrap();
    assert_eq!(stored.descriptor.repr().addresses.as_slice(), &[addr]);
    // An attacker (here: `a`'s link, replaying) sends the old one again.
    sim.send_cell(a, la, &descriptor_cell(&old)).unwrap();
    sim.run_for(Duration::from_millis(100));
    assert_eq!(
        refusals(&sim, b),
        vec![DescriptorRefusal::Table(InsertError::OlderThanKnown)]
    );
    let stored = sim.node(b).core.node_table().get(&sim.node_id(a)).unwrap();
    assert_eq!(stored.descriptor.repr().addresses.as_slice(), &[addr]);
}

#[test]
fn a_malformed_link_level_cell_closes_the_link() {
    let Pair {
        mut sim,
        a,
        b,
        la,
        lb,
        ..
    } = pair(34, config(), StreamConditions::LAN);
    sim.run_for(Duration::from_millis(200));
    let mut cell = [0u8; veil_core::link::CELL_LEN];
    cell[4] = 99; // unknown command on circuit 0
    sim.send_cell(a, la, &cell).unwrap();
    sim.run_for(Duration::from_millis(100));
    assert_eq!(
        closed(&sim, b, lb),
        Some((CloseReason::ProtocolViolation, ClosedBy::Local))
    );
    let _ = a;
}

#[test]
fn onion_keys_rotate_with_an_overlap_and_peers_hear_of_it() {
    use veil_core::circuit::{respond, HopHandshakeClient};
    let cfg = NodeConfig {
        descriptor_lifetime_secs: 20,
        onion_key_lifetime: Duration::from_secs(20),
        ..config()
    };
    let Pair { mut sim, a, b, .. } = pair(35, cfg, StreamConditions::LAN);
    sim.run_for(Duration::from_secs(1));
    let first = sim.node(a).core.onion_public_key();
    let a_id = sim.node_id(a);
    sim.run_for(Duration::from_secs(20));
    let second = sim.node(a).core.onion_public_key();
    assert_ne!(first, second, "the key rotated");
    let keys: Vec<[u8; 32]> = sim
        .node(a)
        .core
        .onion_keys()
        .iter()
        .map(|k| k.public())
        .collect();
    assert_eq!(
        keys,
        vec![second, first],
        "the previous key is kept for the overlap"
    );
    // The peer heard of the new descriptor without any new link.
    let stored = sim.node(b).core.node_table().get(&a_id).unwrap();
    assert_eq!(stored.descriptor.repr().onion_key, second);
    // A client that built from the old descriptor still gets through...
    let (_, create) = HopHandshakeClient::start(&first, [1; 32]).unwrap();
    assert!(respond(&sim.node(a).core.onion_keys(), [2; 32], &create).is_ok());
    // ...until the next rotation retires the old key.
    sim.run_for(Duration::from_secs(20));
    assert!(respond(&sim.node(a).core.onion_keys(), [2; 32], &create).is_err());
    assert_eq!(sim.node(a).core.onion_keys().len(), 2);
}

#[test]
fn a_circuit_cell_with_a_bad_command_closes_the_link() {
    for command in [
        99u8,
        CellCommand::Descriptor.code(),
        CellCommand::Padding.code(),
    ] {
        let Pair {
            mut sim,
            a,
            b,
            la,
            lb,
            ..
        } = pair(36, config(), StreamConditions::LAN);
        sim.run_for(Duration::from_millis(200));
        let mut cell = numbered_cell(1);
        cell[4] = command; // on circuit 0x80000001
        sim.send_cell(a, la, &cell).unwrap();
        sim.run_for(Duration::from_millis(100));
        assert_eq!(
            closed(&sim, b, lb),
            Some((CloseReason::ProtocolViolation, ClosedBy::Local)),
            "command {command}"
        );
        assert!(cells_received(&sim, b, lb).is_empty());
    }
}
