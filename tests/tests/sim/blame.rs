//! Blame that cannot be steered (issue 16, attack 8): a hop that wrecks
//! circuits cannot pin failures on the honest relays of their paths, and a
//! destination that tears down every circuit to it gets a bounded number of
//! rebuilds over fresh paths.

use std::cell::Cell as StdCell;

use veil_core::identity::NodeId;
use veil_core::link::{Cell, CloseReason};
use veil_core::node::{
    AddBootstrap, Event, LinkId, NodeConfig, SetGuards, FORCED_REBUILD_INTERVAL,
    MAX_FORCED_REBUILDS,
};
use veil_core::time::Duration;
use veil_sim::{NodeIndex, Sim};

const UNIX_AT_ZERO: u64 = 1_800_000_000;

fn config() -> NodeConfig {
    NodeConfig {
        unix_time_at_zero: UNIX_AT_ZERO,
        gossip_interval: Duration::from_secs(1),
        ..NodeConfig::default()
    }
}

fn unix_now(sim: &Sim) -> u64 {
    UNIX_AT_ZERO + sim.now().as_micros() / 1_000_000
}

/// `n` addressed nodes booted from nodes 0 and 1, every node knowing at
/// least 8 healthy relays.
fn booted(seed: u64, n: usize) -> Sim {
    let mut sim = Sim::new(seed);
    for _ in 0..n {
        sim.add_addressed_node(config(), 40);
    }
    for i in 1..n {
        for b in [0, 1] {
            if b != i {
                sim.handle(i, AddBootstrap::address(Sim::address_of(b)))
                    .unwrap();
            }
        }
    }
    let ready = sim.run_until_true(Duration::from_secs(120), |sim| {
        (0..n).all(|i| {
            let now = unix_now(sim);
            sim.node(i).core.node_table().healthy_relays(now).count() >= 8
        })
    });
    assert!(ready, "every node learned 8 relays");
    sim
}

thread_local! {
    static WRECKER: StdCell<Option<NodeId>> = const { StdCell::new(None) };
}

/// A malicious guard: garbles every relay cell it is given, so every
/// circuit through it dies while it is being built.
fn garble_relay_cells(me: &NodeId, _: LinkId, cell: &mut Cell) {
    let relay_command = cell[4] == 3 || cell[4] == 4;
    if WRECKER.with(|w| w.get()) == Some(*me) && relay_command {
        cell[200] ^= 0x10;
    }
}

#[test]
fn a_guard_that_wrecks_every_circuit_pins_nothing_on_honest_relays() {
    let mut sim = booted(22, 12);
    let (client, dest, bad) = (5, 9, 3);
    let bad_id = sim.node_id(bad);
    WRECKER.with(|w| w.set(Some(bad_id)));
    sim.with_node(bad, |node| node.set_cell_hook(Some(garble_relay_cells)));
    sim.handle(client, SetGuards::from_slice(&[bad_id]));
    let healthy_before = sim
        .node(client)
        .core
        .node_table()
        .healthy_relays(unix_now(&sim))
        .count();
    for i in 0..10 {
        let _ = sim.send_message(client, dest, format!("attempt {i}").as_bytes());
        sim.run_for(Duration::from_secs(20));
    }
    let failed = sim
        .node(client)
        .events
        .iter()
        .filter(|(_, e)| matches!(e, Event::CircuitClosed { .. }))
        .count();
    let table = sim.node(client).core.node_table();
    let blamed: Vec<_> = table
        .entries()
        .iter()
        .filter(|e| e.descriptor.node_id() != bad_id && e.failures > 0)
        .map(|e| e.failures)
        .collect();
    assert!(blamed.is_empty(), "honest relays blamed: {blamed:?}");
    assert!(failed >= 3, "the attack ran: {failed} circuits failed");
    let healthy_after = table.healthy_relays(unix_now(&sim)).count();
    assert!(
        healthy_after + 1 >= healthy_before,
        "healthy relays {healthy_before} -> {healthy_after}"
    );
}

/// Closes every link of `node`: the destination's way of tearing down the
/// circuits that end at it.
fn drop_all_links(sim: &mut Sim, node: NodeIndex) {
    let links: Vec<LinkId> = sim.node(node).core.links().map(|l| l.link).collect();
    for link in links {
        sim.close_link(node, link, CloseReason::Normal);
    }
}

fn circuits_ready_to(sim: &Sim, client: NodeIndex, dest: NodeId) -> usize {
    sim.node(client)
        .events
        .iter()
        .filter(
            |(_, e)| matches!(e, Event::CircuitReady { destination, .. } if *destination == dest),
        )
        .count()
}

/// A destination that tears down every circuit to it as soon as it is
/// ready (or restarts that often) gets a burst of `MAX_FORCED_REBUILDS`
/// fresh circuits, then one per `FORCED_REBUILD_INTERVAL`: bounded, so it
/// cannot make the client sample path after path, and never cut off for
/// longer than an interval.
#[test]
fn a_destination_that_tears_down_every_circuit_gets_bounded_rebuilds() {
    let mut sim = booted(23, 12);
    let (client, dest) = (5, 9);
    let dest_id = sim.node_id(dest);
    let mut ready_at = Vec::new();
    // Twenty minutes of a message every 10 s, each circuit torn down by
    // the destination as soon as it is ready.
    let interval = FORCED_REBUILD_INTERVAL.as_micros() / 1_000_000;
    let run_secs = 12 * interval;
    for i in 0..run_secs / 10 {
        let _ = sim.send_message(client, dest, format!("message {i}").as_bytes());
        for _ in 0..10 {
            sim.run_for(Duration::from_secs(1));
            if circuits_ready_to(&sim, client, dest_id) > ready_at.len() {
                ready_at.push(sim.now().as_micros() / 1_000_000);
                drop_all_links(&mut sim, dest);
            }
        }
    }
    let seen = ready_at.len();
    let burst = usize::from(MAX_FORCED_REBUILDS);
    // The first circuit, the burst, then one per interval drained.
    let bound = 1 + burst + usize::try_from(run_secs / interval).unwrap();
    println!("circuits ready at (s): {ready_at:?}");
    assert!(
        seen <= bound,
        "{seen} circuits in {run_secs} s, at most {bound}"
    );
    assert!(
        seen >= burst + 6,
        "rebuilds go on after the burst, one per interval: {seen} circuits"
    );
    let gaps: Vec<u64> = ready_at.windows(2).map(|w| w[1] - w[0]).collect();
    let longest = gaps.iter().copied().max().unwrap_or(0);
    assert!(
        longest <= interval + 20,
        "the destination was cut off for {longest} s, more than one interval: {gaps:?}"
    );
}
