//! After a ready circuit is lost, its replacement avoids the lost circuit's
//! relays even when it must first dial a link to its guard. The path drawn
//! before that dial used to be dropped together with the relays to avoid,
//! so the draw made once the link was up could pick the relay that had
//! just died: its `EXTEND` failed at once and the next build waited out
//! the 500 ms pacing (the one slow `SIGKILL` run in four of
//! `targets/node/tests/node/hung_relay.rs`, docs/performance.md).

use veil_core::cell::DestroyReason;
use veil_core::node::{AddBootstrap, Event, NodeConfig, SetGuards};
use veil_core::time::Duration;
use veil_sim::{NodeIndex, Sim};

const UNIX_AT_ZERO: u64 = 1_800_000_000;
const NODES: usize = 9;
const CLIENT: NodeIndex = 7;
const DESTINATION: NodeIndex = 8;
/// The client's two guards; it has linked to neither when the test starts.
const GUARDS: [NodeIndex; 2] = [2, 3];

fn config() -> NodeConfig {
    NodeConfig {
        unix_time_at_zero: UNIX_AT_ZERO,
        gossip_interval: Duration::from_secs(1),
        ..NodeConfig::default()
    }
}

/// Nodes booted from node 0, the client knowing every other node.
fn booted(seed: u64) -> Sim {
    let mut sim = Sim::new(seed);
    for _ in 0..NODES {
        sim.add_addressed_node(config(), 40);
    }
    for i in 1..NODES {
        sim.handle(i, AddBootstrap::address(Sim::address_of(0)))
            .expect("bootstrap");
    }
    let ready = sim.run_until_true(Duration::from_secs(120), |sim| {
        (0..NODES).filter(|&i| i != CLIENT).all(|i| {
            sim.node(CLIENT)
                .core
                .node_table()
                .get(&sim.node_id(i))
                .is_some()
        })
    });
    assert!(ready, "the client learned every node");
    let guards: Vec<_> = GUARDS.iter().map(|&g| sim.node_id(g)).collect();
    sim.handle(CLIENT, SetGuards::from_slice(&guards));
    sim
}

fn delivered(sim: &mut Sim, text: &[u8]) -> bool {
    let before = sim.node(DESTINATION).delivered.len();
    sim.send_message(CLIENT, DESTINATION, text).expect("sent");
    sim.run_until_true(Duration::from_secs(60), |sim| {
        sim.node(DESTINATION).delivered.len() > before
    })
}

/// Builds through the relay that died, once the replacement was under way.
fn extend_failures_after_a_kill(seed: u64) -> usize {
    let mut sim = booted(seed);
    assert!(delivered(&mut sim, b"first"), "seed {seed}: first message");
    let path = sim
        .node(CLIENT)
        .core
        .own_circuits()
        .find(|c| c.ready)
        .expect("a ready circuit")
        .path;
    let middle_id = path.relays()[1];
    let middle = (0..NODES)
        .find(|&i| sim.node_id(i) == middle_id)
        .expect("a node");
    let events_before = sim.node(CLIENT).events.len();
    sim.kill(middle);
    assert!(
        delivered(&mut sim, b"second"),
        "seed {seed}: second message"
    );
    sim.node(CLIENT).events[events_before..]
        .iter()
        .filter(|(_, e)| {
            matches!(
                e,
                Event::CircuitClosed {
                    reason: DestroyReason::ExtendFailed,
                    ..
                }
            )
        })
        .count()
}

#[test]
fn a_replacement_that_first_dials_its_guard_still_avoids_the_dead_relay() {
    let failures: Vec<usize> = (0..12).map(extend_failures_after_a_kill).collect();
    assert!(
        failures.iter().all(|&f| f == 0),
        "a replacement was built through the relay that died (ExtendFailed per seed: {failures:?})"
    );
}
