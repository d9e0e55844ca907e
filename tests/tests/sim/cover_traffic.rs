//! Cover traffic (relay spec §8.2): loop and drop cover at Poisson times,
//! FRONT padding at the start of a burst, all under the node's budget in
//! bytes a second; loop cover as the liveness probe of idle circuits.
//!
//! Times are simulated, so the counts are exact for a seed; the bounds
//! below are those of the distributions, not of one run.

use crate::common;

use veil_core::node::{CoverTraffic, Event, NodeConfig, BUDGET_BURST_SECS, COVER_CELL_CHARGE};
use veil_core::time::Duration;
use veil_sim::{NodeIndex, Sim};

const NODES: usize = 8;
const CLIENT: usize = 1;
const DESTINATION: usize = 2;

fn network(seed: u64, cover: CoverTraffic) -> Sim {
    let plain = NodeConfig {
        unix_time_at_zero: 1_800_000_000,
        gossip_interval: Duration::from_secs(2),
        ..NodeConfig::default()
    };
    common::joined_network(seed, NODES, 16, |i| {
        if i == CLIENT {
            NodeConfig { cover, ..plain }
        } else {
            plain
        }
    })
}

/// Sends one message from the client to the destination and waits for it:
/// the client then has a ready circuit.
fn send(sim: &mut Sim, bytes: usize) {
    let message = vec![7u8; bytes];
    let before = sim.node(DESTINATION).delivered.len();
    while sim.send_message(CLIENT, DESTINATION, &message).is_err() {
        sim.run_for(Duration::from_millis(50));
    }
    assert!(sim.run_until_true(Duration::from_secs(60), |sim| {
        sim.node(DESTINATION).delivered.len() > before
    }));
}

fn cover(budget: u32, loop_ms: u64, drop_ms: u64) -> CoverTraffic {
    CoverTraffic {
        budget,
        loop_interval: Duration::from_millis(loop_ms),
        drop_interval: Duration::from_millis(drop_ms),
        ..CoverTraffic::OFF
    }
}

fn link_messages_out(sim: &mut Sim, node: NodeIndex, over: Duration) -> usize {
    sim.tap(&[node]);
    sim.run_for(over);
    sim.take_tapped().iter().filter(|t| t.outgoing).count()
}

#[test]
fn loop_and_drop_cover_go_at_their_poisson_rates_and_loops_come_back() {
    let mut sim = network(1, cover(1_000_000, 200, 500));
    send(&mut sim, 100);
    let before = sim.node(CLIENT).core.stats();
    let out = link_messages_out(&mut sim, CLIENT, Duration::from_secs(60));
    let after = sim.node(CLIENT).core.stats();
    let loops = after.loop_cover_cells_sent - before.loop_cover_cells_sent;
    let drops = after.drop_cover_cells_sent - before.drop_cover_cells_sent;
    let returned = after.loop_cover_cells_returned - before.loop_cover_cells_returned;
    eprintln!("60 s: {loops} loop, {drops} drop, {returned} returned, {out} link messages out");
    // Poisson counts: 300 ± 3σ (σ ≈ 17) and 120 ± 3σ (σ ≈ 11).
    assert!((248..=352).contains(&loops), "{loops} loop cells");
    assert!((87..=153).contains(&drops), "{drops} drop cells");
    assert!(
        returned + 8 >= loops,
        "{returned} of {loops} loops came back"
    );
    assert_eq!(after.cover_cells_over_budget, 0);
    assert_eq!(
        after.cover_bytes_charged - before.cover_bytes_charged,
        u64::from(COVER_CELL_CHARGE) * (2 * loops + drops)
    );
    // On the wire: the same network without cover sends that many link
    // messages fewer (gossip and keep-alives go in both).
    let mut plain = network(1, CoverTraffic::OFF);
    send(&mut plain, 100);
    let plain_out = link_messages_out(&mut plain, CLIENT, Duration::from_secs(60));
    eprintln!("without cover: {plain_out} link messages out");
    let extra = out.saturating_sub(plain_out) as u64;
    assert!(
        extra * 10 >= (loops + drops) * 9,
        "{extra} more link messages for {} cover cells",
        loops + drops
    );
}

#[test]
fn the_budget_caps_cover_whatever_the_rates_ask() {
    // One loop a second fits the budget; the rate asks for fifty.
    let budget = 2 * COVER_CELL_CHARGE;
    let mut sim = network(2, cover(budget, 20, 0));
    send(&mut sim, 100);
    // The saved burst goes first.
    sim.run_for(Duration::from_secs(60));
    let before = sim.node(CLIENT).core.stats();
    sim.run_for(Duration::from_secs(60));
    let after = sim.node(CLIENT).core.stats();
    let charged = after.cover_bytes_charged;
    // Since cover began (at the node's first timer, at boot): at most the budget a second plus the saved burst.
    let seconds = sim.now().as_micros().div_ceil(1_000_000);
    let cap = u64::from(budget) * (seconds + u64::from(BUDGET_BURST_SECS));
    assert!(charged <= cap, "{charged} B charged, cap {cap} B");
    let loops = after.loop_cover_cells_sent - before.loop_cover_cells_sent;
    // Over the minute: one a second, within one cell of it.
    assert!((59..=61).contains(&loops), "{loops} loops in 60 s");
    assert!(
        after.cover_cells_over_budget - before.cover_cells_over_budget > 2000,
        "the rest were held back"
    );
}

#[test]
fn loop_cover_finds_a_silent_relay_on_an_idle_circuit() {
    for (cover, found) in [(cover(1_000_000, 500, 0), true), (CoverTraffic::OFF, false)] {
        let mut sim = network(3, cover);
        send(&mut sim, 100);
        sim.run_for(Duration::from_secs(2));
        let circuit = sim
            .node(CLIENT)
            .core
            .own_circuits()
            .find(|c| c.ready && c.path.destination().is_some())
            .expect("a ready circuit");
        let middle_id = circuit.path.hops()[1];
        let middle = (0..NODES)
            .find(|&i| sim.node(i).core.node_id() == middle_id)
            .unwrap();
        sim.freeze(middle);
        let frozen_at = sim.now();
        sim.run_for(Duration::from_secs(15));
        let suspected = sim.node(CLIENT).events.iter().find_map(|(at, e)| match e {
            Event::RelaySuspected { relay, .. } if *relay == middle_id => Some(*at),
            _ => None,
        });
        assert_eq!(suspected.is_some(), found, "cover {cover:?}");
        if let Some(at) = suspected {
            eprintln!(
                "found {:?} after the freeze",
                at.saturating_since(frozen_at)
            );
        }
    }
}

#[test]
fn front_pads_each_burst_once_with_at_most_its_cells() {
    let front = CoverTraffic {
        budget: 1_000_000,
        front_cells: 40,
        front_window_min: Duration::from_millis(500),
        front_window_max: Duration::from_secs(2),
        ..CoverTraffic::OFF
    };
    let mut sim = network(4, front);
    let mut last = 0;
    for burst in 1..=3u64 {
        // Two messages half a second apart: one burst.
        send(&mut sim, 3000);
        send(&mut sim, 3000);
        sim.run_for(Duration::from_secs(30));
        let stats = sim.node(CLIENT).core.stats();
        assert_eq!(stats.front_bursts, burst);
        let cells = stats.front_cells_sent - last;
        assert!((1..=40).contains(&cells), "burst {burst}: {cells} cells");
        assert_eq!(stats.loop_cover_cells_returned, stats.front_cells_sent);
        assert_eq!(stats.loop_cover_cells_sent + stats.drop_cover_cells_sent, 0);
        last = stats.front_cells_sent;
    }
}

#[test]
fn no_circuit_no_cover() {
    let mut sim = network(5, cover(1_000_000, 200, 200));
    sim.run_for(Duration::from_secs(20));
    let stats = sim.node(CLIENT).core.stats();
    assert_eq!(stats.loop_cover_cells_sent + stats.drop_cover_cells_sent, 0);
    assert!(stats.cover_cells_without_circuit > 100);
    assert_eq!(stats.cover_bytes_charged, 0);
}
