//! Mixing delays (relay spec §9.1): relays configured with a mean delay
//! hold the cells they pass on for exponential times, so a message over a
//! three-relay circuit takes longer end to end (in simulated time) than
//! without, and still arrives exactly once and intact.

use crate::common;

use veil_core::node::NodeConfig;
use veil_core::time::Duration;
use veil_sim::Sim;

const NODES: usize = 8;
const CLIENT: usize = 1;
const DESTINATION: usize = 2;
const MESSAGES: usize = 8;

fn network(seed: u64, mean: Duration) -> Sim {
    let config = NodeConfig {
        unix_time_at_zero: 1_800_000_000,
        gossip_interval: Duration::from_secs(2),
        mixing_delay_mean: mean,
        ..NodeConfig::default()
    };
    common::joined_network(seed, NODES, 16, |_| config)
}

/// Sends `message` from the client and waits for it: its delivery time,
/// in microseconds after the send.
fn send(sim: &mut Sim, message: &[u8]) -> u64 {
    let before = sim.node(DESTINATION).delivered.len();
    while sim.send_message(CLIENT, DESTINATION, message).is_err() {
        sim.run_for(Duration::from_millis(50));
    }
    let sent = sim.now();
    assert!(sim.run_until_true(Duration::from_secs(60), |sim| {
        sim.node(DESTINATION).delivered.len() > before
    }));
    let got = &sim.node(DESTINATION).delivered[before];
    assert_eq!(got.bytes, message, "delivered intact");
    got.at.saturating_since(sent).as_micros()
}

/// The mean end-to-end time of [`MESSAGES`] messages over a circuit built
/// beforehand, in ms; and the relays' count of cells mixed.
fn latency(seed: u64, mean: Duration) -> (f64, u64) {
    let mut sim = network(seed, mean);
    // The first message builds the circuit; the others reuse it.
    send(&mut sim, b"warm-up");
    let mut total = 0;
    let mut sent = vec![b"warm-up".to_vec()];
    for i in 0..MESSAGES {
        let message: Vec<u8> = (0..3_000).map(|j| (i * 7 + j) as u8).collect();
        total += send(&mut sim, &message);
        sent.push(message);
    }
    // Long enough for any resend (after 5 s) to have arrived too.
    sim.run_for(Duration::from_secs(30));
    let delivered: Vec<Vec<u8>> = sim
        .node(DESTINATION)
        .delivered
        .iter()
        .map(|d| d.bytes.clone())
        .collect();
    assert_eq!(delivered, sent, "every message exactly once, in order");
    let stats: Vec<_> = (0..NODES).map(|i| sim.node(i).core.stats()).collect();
    let mixed = stats.iter().map(|s| s.cells_mixed).sum();
    assert_eq!(
        stats.iter().map(|s| s.mixing_queue_full).sum::<u64>(),
        0,
        "no cell found the queue full"
    );
    assert_eq!(stats.iter().map(|s| s.mixed_cells_orphaned).sum::<u64>(), 0);
    assert_eq!(
        stats.iter().map(|s| s.cells_dropped.total()).sum::<u64>(),
        0,
        "no cell dropped"
    );
    (total as f64 / MESSAGES as f64 / 1_000.0, mixed)
}

#[test]
fn mixing_delays_at_relays_slow_messages_down_and_lose_nothing() {
    for seed in [1, 2] {
        let (plain, plain_mixed) = latency(seed, Duration::ZERO);
        let (mixed, cells_mixed) = latency(seed, Duration::from_millis(20));
        println!(
            "seed {seed}: {plain:.1} ms without mixing delays, {mixed:.1} ms with a 20 ms mean \
             ({cells_mixed} cells mixed)"
        );
        assert_eq!(plain_mixed, 0, "a zero mean holds nothing");
        // Each of a message's cells waits at three relays, 20 ms on
        // average each; a message of three cells waits for its slowest.
        assert!(
            cells_mixed >= 3 * 4 * MESSAGES as u64,
            "{cells_mixed} cells mixed"
        );
        assert!(
            mixed > plain + 40.0,
            "{mixed:.1} ms with mixing delays against {plain:.1} ms without"
        );
    }
}
