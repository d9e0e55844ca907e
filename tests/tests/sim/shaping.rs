//! Constant-rate shaping (relay spec §8.3): a shaping node sends one cell
//! per interval on each circuit end while a burst lasts, pads each burst
//! to a multiple of its bucket, and its messages still arrive intact, once.

use crate::common;

use veil_core::circuit::Shaping;
use veil_core::message::{Sender, FRAGMENT_LEN};
use veil_core::node::{NodeConfig, Reply};
use veil_core::time::Duration;
use veil_sim::Sim;

const NODES: usize = 8;
const CLIENT: usize = 1;
const DESTINATION: usize = 2;

const SHAPING: Shaping = Shaping {
    interval: Duration::from_millis(10),
    bucket: 8,
    linger: Duration::ZERO,
};

fn network(seed: u64, shaping: Shaping) -> Sim {
    let config = NodeConfig {
        unix_time_at_zero: 1_800_000_000,
        gossip_interval: Duration::from_secs(2),
        shaping,
        ..NodeConfig::default()
    };
    common::joined_network(seed, NODES, 16, |_| config)
}

/// Sends a message of `fragments` fragments from the client and waits for
/// it; returns how long it took in simulated time.
fn send(sim: &mut Sim, fragments: usize, fill: u8) -> Duration {
    let message = vec![fill; fragments * FRAGMENT_LEN - 3];
    let before = sim.node(DESTINATION).delivered.len();
    while sim.send_message(CLIENT, DESTINATION, &message).is_err() {
        sim.run_for(Duration::from_millis(50));
    }
    let sent = sim.now();
    assert!(sim.run_until_true(Duration::from_secs(60), |sim| {
        sim.node(DESTINATION).delivered.len() > before
    }));
    let took = sim.now().saturating_since(sent);
    let delivered = &sim.node(DESTINATION).delivered;
    assert_eq!(delivered.len(), before + 1, "delivered once");
    assert_eq!(delivered[before].bytes, message, "delivered intact");
    took
}

fn shaping_padding(sim: &Sim, node: usize) -> u64 {
    sim.node(node).core.stats().shaping_padding_cells_sent
}

#[test]
fn bursts_go_at_the_rate_and_are_padded_to_the_bucket() {
    let mut sim = network(1, SHAPING);
    // A first message builds the circuit; its burst pads to 8.
    send(&mut sim, 1, 1);
    sim.run_for(Duration::from_secs(1));
    assert_eq!(shaping_padding(&sim, CLIENT), 7);
    // Three fragments: one per 10 ms, so the last leaves 20 ms after the
    // first; then five paddings make eight.
    let took = send(&mut sim, 3, 2);
    assert!(took >= Duration::from_millis(20), "took {took:?}");
    sim.tap(&[CLIENT]);
    sim.run_for(Duration::from_secs(1));
    assert_eq!(shaping_padding(&sim, CLIENT), 7 + 5);
    // The paddings left one per interval, each in a link message of its own.
    let out: Vec<_> = sim
        .take_tapped()
        .into_iter()
        .filter(|t| t.outgoing)
        .map(|t| t.at)
        .collect();
    let spaced = out
        .windows(2)
        .filter(|w| w[1].saturating_since(w[0]) >= Duration::from_millis(10))
        .count();
    assert!(spaced >= 4, "{} link messages, {spaced} spaced", out.len());
    // The destination shapes its reply too: 9 fragments pad to 16.
    let Sender::Anonymous(to) = sim.node(DESTINATION).delivered[1].sender else {
        panic!("an anonymous sender");
    };
    let reply = vec![9u8; 9 * FRAGMENT_LEN];
    sim.handle(
        DESTINATION,
        Reply {
            to,
            message: &reply,
        },
    )
    .unwrap();
    assert!(sim.run_until_true(Duration::from_secs(30), |sim| {
        sim.node(CLIENT).delivered.iter().any(|d| d.bytes == reply)
    }));
    sim.run_for(Duration::from_secs(1));
    assert_eq!(shaping_padding(&sim, DESTINATION), 7);
}

#[test]
fn without_shaping_nothing_is_padded_or_held() {
    let mut sim = network(1, Shaping::OFF);
    send(&mut sim, 1, 1);
    let took = send(&mut sim, 3, 2);
    sim.run_for(Duration::from_secs(1));
    assert_eq!(shaping_padding(&sim, CLIENT), 0);
    assert!(took < Duration::from_millis(20), "took {took:?}");
}

#[test]
fn a_lingering_burst_fills_the_gaps_between_messages() {
    let lingering = Shaping {
        linger: Duration::from_millis(500),
        ..SHAPING
    };
    let mut sim = network(2, lingering);
    send(&mut sim, 1, 1);
    sim.run_for(Duration::from_secs(2));
    let before = shaping_padding(&sim, CLIENT);
    send(&mut sim, 1, 2);
    sim.run_for(Duration::from_millis(200));
    send(&mut sim, 1, 3);
    sim.run_for(Duration::from_secs(2));
    let padded = shaping_padding(&sim, CLIENT) - before;
    // About 700 ms of 10 ms slots after the first message, less the two
    // fragments, rounded up to a multiple of 8 cells.
    assert!((60..=80).contains(&padded), "{padded} paddings");
    assert_eq!((padded + 2) % 8, 0, "the burst ends on the bucket");
}
