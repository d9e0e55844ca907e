//! Relay-circuit quotas under attack (issue 16, attack 2): one link cannot
//! hold every relay-circuit slot, circuits nobody uses are destroyed, and a
//! link streaming `CREATE`s gets hop handshakes at a bounded rate.

use crate::common;

use common::*;
use veil_core::cell::{CellCommand, CellRepr, CircuitId, DestroyReason};
use veil_core::circuit::HopHandshakeClient;
use veil_core::link::{Cell, LinkRole};
use veil_core::node::{LinkId, NodeConfig};
use veil_core::time::Duration;
use veil_sim::{Direction, NodeIndex, Sim, StreamConditions};

/// A relay, an attacker linked to it that sends raw cells and sees every
/// cell that comes back, and the attacker's link.
fn relay_and_attacker(seed: u64) -> (Sim, NodeIndex, NodeIndex, LinkId) {
    let mut sim = Sim::new(seed);
    let relay = sim.add_addressed_node(NodeConfig::default(), 16);
    let attacker = sim.add_node(
        NodeConfig {
            link_only: true,
            ..NodeConfig::default()
        },
        2,
    );
    let wire = sim.connect(attacker, relay, StreamConditions::LAN);
    sim.run_for(Duration::from_millis(100));
    let (_, link) = sim.end(wire, Direction::Forward);
    (sim, relay, attacker, link)
}

/// A valid `CREATE` for the relay's onion key, with the `n`-th id of the
/// dialling side's half.
fn create(sim: &Sim, relay: NodeIndex, n: u32) -> Cell {
    let onion = sim.node(relay).core.onion_public_key();
    let (_, body) = HopHandshakeClient::start(&onion, [n as u8 ^ 0x5a; 32]).unwrap();
    let id = CircuitId(0x8000_0000 | (n + 1));
    assert!(id.allocated_by(LinkRole::Initiator));
    CellRepr {
        circuit_id: id,
        command: CellCommand::Create,
        body,
    }
    .emit()
}

fn destroy(n: u32) -> Cell {
    let mut body = [0u8; 509];
    body[0] = DestroyReason::Requested.code();
    CellRepr {
        circuit_id: CircuitId(0x8000_0000 | (n + 1)),
        command: CellCommand::Destroy,
        body,
    }
    .emit()
}

/// How many `CREATED` and `DESTROY(ResourceLimit)` answers came back.
fn answers(sim: &Sim, attacker: NodeIndex, link: LinkId) -> (usize, usize) {
    let cells = cells_received(sim, attacker, link);
    let parsed: Vec<_> = cells
        .iter()
        .filter_map(|c| CellRepr::parse(c).ok())
        .collect();
    let created = parsed
        .iter()
        .filter(|c| c.command == CellCommand::Created)
        .count();
    let refused = parsed
        .iter()
        .filter(|c| {
            c.command == CellCommand::Destroy
                && DestroyReason::from_code(c.body[0]) == DestroyReason::ResourceLimit
        })
        .count();
    (created, refused)
}

#[test]
fn one_link_holds_at_most_its_quota_of_relay_circuits_and_idle_ones_go() {
    let (mut sim, relay, attacker, link) = relay_and_attacker(50);
    let quota = sim.node(relay).core.relay_quotas().per_link;
    let sent = 200u32;
    for n in 0..sent {
        let cell = create(&sim, relay, n);
        sim.send_cell(attacker, link, &cell).unwrap();
        sim.run_for(Duration::from_millis(20));
    }
    sim.run_for(Duration::from_secs(1));
    let (created, refused) = answers(&sim, attacker, link);
    assert_eq!(created, quota, "one link gets its quota of circuits");
    assert_eq!(created + refused, sent as usize, "every CREATE is answered");
    assert_eq!(sim.node(relay).core.circuit_counts().0, quota);

    // An honest client still gets a circuit through the relay.
    let client = sim.add_node(
        NodeConfig {
            path_relays: 0,
            ..NodeConfig::default()
        },
        4,
    );
    sim.connect(client, relay, StreamConditions::LAN);
    sim.run_for(Duration::from_secs(1));
    sim.send_message(client, relay, b"still serving").unwrap();
    sim.run_for(Duration::from_secs(2));
    assert_eq!(
        sim.node(relay).delivered.last().map(|d| d.bytes.as_slice()),
        Some(&b"still serving"[..])
    );

    // Two idle hours later the attacker's circuits are gone; the link
    // itself stays up (its keepalives are answered).
    sim.run_for(Duration::from_secs(2 * 3600));
    assert_eq!(sim.node(relay).core.circuit_counts().0, 0);
    assert!(closed(&sim, attacker, link).is_none());
}

#[test]
fn a_link_streaming_creates_gets_handshakes_at_a_bounded_rate() {
    let (mut sim, relay, attacker, link) = relay_and_attacker(51);
    let limit = sim.node(relay).core.config().creates_per_link;
    // Create and destroy at once, 1000 times in one simulated second: the
    // circuit quota is never reached, so only the rate limit can refuse.
    for n in 0..1000u32 {
        let cell = create(&sim, relay, n % 1024);
        sim.send_cell(attacker, link, &cell).unwrap();
        sim.send_cell(attacker, link, &destroy(n % 1024)).unwrap();
        sim.run_for(Duration::from_millis(1));
    }
    sim.run_for(Duration::from_millis(100));
    let (created, refused) = answers(&sim, attacker, link);
    let allowed = (limit.burst + limit.per_second + limit.per_second / 5) as usize;
    assert!(
        created <= allowed,
        "{created} hop handshakes in 1.1 s; the limit allows {allowed}"
    );
    assert!(created >= limit.burst as usize);
    assert_eq!(created + refused, 1000);
}
