//! Descriptor lookups (relay spec §2.3): a peer that holds a newer
//! descriptor answers a `DESCRIPTOR_REQUEST`; one that does not passes it
//! on once and relays the answer back; a request no honest node sends
//! closes the link.

use crate::common;

use common::*;
use veil_core::cell::{emit_descriptor_body, CellCommand, CellRepr, CircuitId, DescriptorRequest};
use veil_core::identity::{DescriptorRepr, Identity, NodeId, MAX_DESCRIPTOR_LEN};
use veil_core::link::{Cell, CloseReason, ClosedBy};
use veil_core::node::NodeConfig;
use veil_core::time::Duration;
use veil_sim::{Direction, NodeIndex, Sim, StreamConditions};

const UNIX_AT_ZERO: u64 = 1_800_000_000;

fn config() -> NodeConfig {
    NodeConfig {
        unix_time_at_zero: UNIX_AT_ZERO,
        link_only: true,
        ..NodeConfig::default()
    }
}

/// The wanted node's identity.
fn wanted() -> Identity {
    Identity::from_secret_bytes([0x44; 32])
}

/// The wanted node's descriptor, issued at `issued_at`.
fn descriptor(issued_at: u64) -> Vec<u8> {
    let identity = wanted();
    let repr = DescriptorRepr {
        identity: identity.public(),
        onion_key: [9; 32],
        relay: false,
        issued_at,
        expires_at: UNIX_AT_ZERO + 3_600,
        addresses: Default::default(),
    };
    let mut buf = [0u8; MAX_DESCRIPTOR_LEN];
    let len = repr.emit_signed(&identity, &mut buf).unwrap();
    buf[..len].to_vec()
}

fn descriptor_cell(bytes: &[u8]) -> Cell {
    CellRepr {
        circuit_id: CircuitId::LINK,
        command: CellCommand::Descriptor,
        body: emit_descriptor_body(bytes).unwrap(),
    }
    .emit()
}

fn request(known_issued_at: u64, hops: u8) -> Cell {
    DescriptorRequest {
        node_id: wanted().node_id(),
        known_issued_at,
        hops,
    }
    .emit()
}

/// The `issued_at` of `node`'s copy of the wanted node's descriptor.
fn copy_at(sim: &Sim, node: NodeIndex) -> Option<u64> {
    let id: NodeId = wanted().node_id();
    sim.node(node)
        .core
        .node_table()
        .get(&id)
        .map(|e| e.descriptor.repr().issued_at)
}

#[test]
fn a_peer_holding_a_newer_descriptor_answers_and_an_older_one_is_not_sent() {
    let Pair {
        mut sim, a, b, la, ..
    } = pair(70, config(), StreamConditions::LAN);
    sim.run_for(Duration::from_millis(200));
    // `b` learns the wanted node's descriptor (issued at +100) from `a`,
    // which sends it without keeping it.
    sim.send_cell(a, la, &descriptor_cell(&descriptor(UNIX_AT_ZERO + 100)))
        .unwrap();
    sim.run_for(Duration::from_millis(100));
    assert_eq!(copy_at(&sim, b), Some(UNIX_AT_ZERO + 100));
    assert_eq!(copy_at(&sim, a), None);
    // Asking for one newer than +100: no answer.
    sim.send_cell(a, la, &request(UNIX_AT_ZERO + 100, 0))
        .unwrap();
    sim.run_for(Duration::from_millis(100));
    assert_eq!(copy_at(&sim, a), None);
    assert_eq!(sim.node(b).core.stats().lookups_answered, 0);
    // Asking for one newer than +50: `b`'s copy comes back.
    sim.send_cell(a, la, &request(UNIX_AT_ZERO + 50, 0))
        .unwrap();
    sim.run_for(Duration::from_millis(100));
    assert_eq!(copy_at(&sim, a), Some(UNIX_AT_ZERO + 100));
    assert_eq!(sim.node(b).core.stats().lookups_answered, 1);
}

#[test]
fn a_peer_without_one_passes_the_request_on_once_and_relays_the_answer() {
    let mut sim = Sim::new(71);
    let a = sim.add_node(config(), 4);
    let b = sim.add_node(config(), 4);
    let c = sim.add_node(config(), 4);
    let d = sim.add_node(config(), 4);
    let ab = sim.connect(a, b, StreamConditions::LAN);
    let bc = sim.connect(b, c, StreamConditions::LAN);
    let cd = sim.connect(c, d, StreamConditions::LAN);
    let (_, la) = sim.end(ab, Direction::Forward);
    let (_, lbc) = sim.end(bc, Direction::Forward);
    let (_, lcd) = sim.end(cd, Direction::Forward);
    sim.run_for(Duration::from_millis(300));
    // `c` holds the descriptor (from `b`, which keeps none); so does `d`,
    // two hops from `b`.
    let bytes = descriptor(UNIX_AT_ZERO + 100);
    sim.send_cell(b, lbc, &descriptor_cell(&bytes)).unwrap();
    sim.send_cell(c, lcd, &descriptor_cell(&bytes)).unwrap();
    sim.run_for(Duration::from_millis(100));
    assert_eq!(copy_at(&sim, b), None);
    assert_eq!(copy_at(&sim, c), Some(UNIX_AT_ZERO + 100));
    // A request that may not be passed on finds nothing at `b`.
    sim.send_cell(a, la, &request(0, 0)).unwrap();
    sim.run_for(Duration::from_millis(200));
    assert_eq!(copy_at(&sim, a), None);
    // One that may be passed on once: `b` asks `c`, and relays the answer.
    sim.run_for(Duration::from_secs(2));
    sim.send_cell(a, la, &request(0, 1)).unwrap();
    sim.run_for(Duration::from_millis(300));
    assert_eq!(copy_at(&sim, a), Some(UNIX_AT_ZERO + 100));
    assert_eq!(copy_at(&sim, b), Some(UNIX_AT_ZERO + 100));
    assert_eq!(sim.node(c).core.stats().lookups_answered, 1);
    // `c` got it with no hops left: it asked nobody (`d` answered none).
    assert_eq!(sim.node(d).core.stats().lookups_answered, 0);
}

#[test]
fn a_request_to_be_passed_on_twice_closes_the_link() {
    let Pair {
        mut sim,
        a,
        b,
        la,
        lb,
        ..
    } = pair(72, config(), StreamConditions::LAN);
    sim.run_for(Duration::from_millis(200));
    sim.send_cell(a, la, &request(0, 1)).unwrap();
    sim.run_for(Duration::from_millis(100));
    assert_eq!(
        closed(&sim, b, lb),
        None,
        "an honest request keeps the link"
    );
    let mut cell = request(0, 1);
    // Byte 5 + 40 of the cell is the hop count.
    cell[45] = 2;
    sim.send_cell(a, la, &cell).unwrap();
    sim.run_for(Duration::from_millis(100));
    assert_eq!(
        closed(&sim, b, lb),
        Some((CloseReason::ProtocolViolation, ClosedBy::Local))
    );
}

/// A descriptor of node `seed` with no address: in a link's source, all
/// of them fall into one new bucket of the receiver's table.
fn filler(seed: u8) -> Vec<u8> {
    let identity = Identity::from_secret_bytes([seed; 32]);
    let repr = DescriptorRepr {
        identity: identity.public(),
        onion_key: [seed; 32],
        relay: false,
        issued_at: UNIX_AT_ZERO,
        expires_at: UNIX_AT_ZERO + 3_600,
        addresses: Default::default(),
    };
    let mut buf = [0u8; MAX_DESCRIPTOR_LEN];
    let len = repr.emit_signed(&identity, &mut buf).unwrap();
    buf[..len].to_vec()
}

#[test]
fn an_answer_the_passer_on_has_no_room_for_is_still_relayed() {
    let mut sim = Sim::new(73);
    let a = sim.add_node(config(), 4);
    let b = sim.add_node(config(), 4);
    let c = sim.add_node(config(), 4);
    let ab = sim.connect(a, b, StreamConditions::LAN);
    let bc = sim.connect(b, c, StreamConditions::LAN);
    let (_, la) = sim.end(ab, Direction::Forward);
    let (_, lbc) = sim.end(bc, Direction::Forward);
    let (_, lcb) = sim.end(bc, Direction::Backward);
    sim.run_for(Duration::from_millis(300));
    // `c` holds the wanted descriptor (from `b`, which keeps none), and
    // fills the bucket `b` would put it in (same source, no address) with
    // healthy strangers.
    sim.send_cell(b, lbc, &descriptor_cell(&descriptor(UNIX_AT_ZERO + 100)))
        .unwrap();
    for seed in 0..8u8 {
        sim.send_cell(c, lcb, &descriptor_cell(&filler(0x60 + seed)))
            .unwrap();
    }
    sim.run_for(Duration::from_millis(100));
    assert_eq!(copy_at(&sim, c), Some(UNIX_AT_ZERO + 100));
    let verified = sim.node(b).core.stats().descriptors_verified;
    sim.send_cell(a, la, &request(0, 1)).unwrap();
    sim.run_for(Duration::from_millis(300));
    // `b` had no room for the answer, checked its signature anyway, and
    // relayed it.
    assert_eq!(copy_at(&sim, b), None, "the bucket was full");
    assert_eq!(sim.node(b).core.stats().descriptors_verified, verified + 1);
    assert_eq!(copy_at(&sim, a), Some(UNIX_AT_ZERO + 100));
}

#[test]
fn a_burst_of_requests_is_passed_on_at_most_once_in_three_seconds() {
    let mut sim = Sim::new(74);
    let a = sim.add_node(config(), 4);
    let b = sim.add_node(config(), 4);
    let c = sim.add_node(config(), 4);
    let ab = sim.connect(a, b, StreamConditions::LAN);
    sim.connect(b, c, StreamConditions::LAN);
    let (_, la) = sim.end(ab, Direction::Forward);
    sim.run_for(Duration::from_millis(300));
    // Ten requests for ten nodes nobody holds, at once: `b` passes one on.
    for n in 0..10u8 {
        let cell = DescriptorRequest {
            node_id: NodeId([n; 32]),
            known_issued_at: 0,
            hops: 1,
        }
        .emit();
        sim.send_cell(a, la, &cell).unwrap();
    }
    sim.run_for(Duration::from_millis(200));
    assert_eq!(sim.node(b).core.stats().lookups_passed_on, 1);
    // Not two seconds later...
    sim.run_for(Duration::from_millis(1_800));
    sim.send_cell(a, la, &request(1, 1)).unwrap();
    sim.run_for(Duration::from_millis(200));
    assert_eq!(sim.node(b).core.stats().lookups_passed_on, 1);
    // ...but three seconds after the first (`FORWARD_SPACING`), the next
    // one goes.
    sim.run_for(Duration::from_millis(800));
    sim.send_cell(a, la, &request(0, 1)).unwrap();
    sim.run_for(Duration::from_millis(200));
    assert_eq!(sim.node(b).core.stats().lookups_passed_on, 2);
}
