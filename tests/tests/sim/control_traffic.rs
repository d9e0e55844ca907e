//! Backpressure never starves a link's control traffic (issue 16, attack
//! 6). A client builds A→R→B→D, the destination streams replies, and A
//! stops reading. R's queue to A fills and R cannot take the next cell from
//! B. That must cost only A's circuit: R–B stays up (R does not mistake its
//! own not-reading for B's silence), and after the hold timeout R destroys
//! A's circuit so that another client's circuit over R–B moves again.

use veil_core::identity::NodeId;
use veil_core::link::{CloseReason, CELL_LEN};
use veil_core::message::Sender;
use veil_core::node::{Event, LinkId, NodeConfig, Reply, SetGuards};
use veil_core::time::Duration;
use veil_sim::{Direction, NodeIndex, Sim, StreamConditions};

fn client_config() -> NodeConfig {
    NodeConfig {
        relay: false,
        path_relays: 2,
        ..NodeConfig::default()
    }
}

fn link_closes(sim: &Sim, node: NodeIndex, peer: NodeId) -> Vec<CloseReason> {
    sim.node(node)
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::LinkClosed {
                peer: Some(p),
                reason,
                ..
            } if *p == peer => Some(*reason),
            _ => None,
        })
        .collect()
}

/// The scenario: relays R, B and destination D in a triangle, clients A
/// and C whose only guard is R (so both circuits run X→R→B→D). A sends to
/// D, then stops reading while D streams replies at it.
struct Stall {
    sim: Sim,
    a: NodeIndex,
    a_link: LinkId,
    r: NodeIndex,
    b: NodeIndex,
    c: NodeIndex,
    d: NodeIndex,
}

fn stall(seed: u64, relay: NodeConfig, a_config: NodeConfig) -> Stall {
    let mut sim = Sim::new(seed);
    let (r, b, d) = (
        sim.add_addressed_node(relay, 16),
        sim.add_addressed_node(relay, 16),
        sim.add_addressed_node(relay, 16),
    );
    sim.connect(r, b, StreamConditions::LAN);
    sim.connect(b, d, StreamConditions::LAN);
    sim.connect(r, d, StreamConditions::LAN);
    sim.run_for(Duration::from_secs(1));
    let (a, c) = (sim.add_node(a_config, 4), sim.add_node(client_config(), 4));
    sim.connect(a, r, StreamConditions::LAN);
    sim.connect(c, r, StreamConditions::LAN);
    // A's circuits start over an anonymous link to R (relay spec §11):
    // that is the one A stops reading.
    let a_wire = sim.connect_anonymously(a, r, StreamConditions::LAN);
    sim.run_for(Duration::from_secs(1));
    let guard = [sim.node_id(r)];
    sim.handle(a, SetGuards::from_slice(&guard));
    sim.handle(c, SetGuards::from_slice(&guard));
    sim.send_message(a, d, b"hello from a").unwrap();
    sim.send_message(c, d, b"hello from c").unwrap();
    sim.run_for(Duration::from_secs(2));
    assert_eq!(sim.node(r).core.circuit_counts().0, 2);
    let from_a = sim
        .node(d)
        .delivered
        .iter()
        .find(|m| m.bytes == b"hello from a")
        .map(|m| m.sender)
        .expect("D heard from A");
    let Sender::Anonymous(to_a) = from_a else {
        panic!("A's message came over a circuit");
    };
    let (_, a_link) = sim.end(a_wire, Direction::Forward);
    sim.stop_reading(a, a_link);
    let reply = vec![0x42u8; 16 * 1024];
    for _ in 0..12 {
        let _ = sim.handle(
            d,
            Reply {
                to: to_a,
                message: &reply,
            },
        );
    }
    Stall {
        sim,
        a,
        a_link,
        r,
        b,
        c,
        d,
    }
}

#[test]
fn a_client_that_stops_reading_stalls_only_its_own_circuit() {
    let Stall {
        mut sim,
        r,
        b,
        c,
        d,
        ..
    } = stall(60, NodeConfig::default(), client_config());
    sim.run_for(Duration::from_secs(30));
    // A's circuit is gone at R and beyond; C's is still there...
    assert_eq!(sim.node(r).core.circuit_counts().0, 1);
    assert_eq!(sim.node(b).core.circuit_counts().0, 1);
    let dropped = sim.node(r).core.stats().cells_dropped;
    assert!(dropped.total() >= 1);
    assert_eq!(
        dropped.circuit_stalled,
        dropped.total(),
        "every drop at R is a cell behind the stalled circuit"
    );
    // ...and works: a message sent now is delivered and acknowledged.
    sim.send_message(c, d, b"after the stall").unwrap();
    sim.run_for(Duration::from_secs(10));
    assert!(sim
        .node(d)
        .delivered
        .iter()
        .any(|m| m.bytes == b"after the stall"));
    assert_eq!(
        sim.node(c)
            .events
            .iter()
            .filter(|(_, e)| matches!(e, Event::MessageAcknowledged { .. }))
            .count(),
        2,
        "both of C's messages were acknowledged"
    );
    sim.run_for(Duration::from_secs(180));
    assert_eq!(link_closes(&sim, r, sim.node_id(b)), vec![]);
    assert_eq!(link_closes(&sim, b, sim.node_id(r)), vec![]);
}

#[test]
fn a_stall_longer_than_the_idle_timeout_is_not_taken_for_the_peers_silence() {
    // Circuits are not destroyed for stalling here, so R holds B's next
    // cell, unread keepalives behind it, for as long as A keeps its own
    // link to R alive (A writes a padding cell every 10 s and never reads).
    let patient = NodeConfig {
        cell_hold_timeout: Duration::from_secs(3600),
        ..NodeConfig::default()
    };
    // A does not mind hearing nothing: it sends no pings whose answers it
    // would miss, and has no idle timeout to speak of.
    let mut deaf = client_config();
    deaf.link.keepalive_interval = Duration::from_secs(3000);
    deaf.link.idle_timeout = Duration::from_secs(3600);
    let Stall {
        mut sim,
        r,
        b,
        a,
        a_link,
        ..
    } = stall(61, patient, deaf);
    let padding = [0u8; CELL_LEN];
    for _ in 0..18 {
        sim.send_cell(a, a_link, &padding).unwrap();
        sim.run_for(Duration::from_secs(10));
    }
    assert_eq!(
        link_closes(&sim, a, sim.node_id(r)),
        vec![],
        "A kept its links"
    );
    assert_eq!(sim.node(r).core.circuit_counts().0, 2, "A's circuit stalls");
    assert_eq!(link_closes(&sim, r, sim.node_id(b)), vec![]);
    assert_eq!(link_closes(&sim, b, sim.node_id(r)), vec![]);
}
