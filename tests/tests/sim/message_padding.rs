//! Message-size padding (relay spec §8.1): a node configured with
//! power-of-two buckets follows the last fragment of each message it sends
//! with `PADDING` relay messages up to the bucket, messages and replies
//! alike; the destination drops them and delivers the message intact.

use crate::common;

use veil_core::message::{Sender, FRAGMENT_LEN};
use veil_core::node::{MessagePadding, NodeConfig, Reply};
use veil_core::time::Duration;
use veil_sim::Sim;

const NODES: usize = 8;
const CLIENT: usize = 1;
const DESTINATION: usize = 2;

fn network(seed: u64, padding: MessagePadding) -> Sim {
    let config = NodeConfig {
        unix_time_at_zero: 1_800_000_000,
        gossip_interval: Duration::from_secs(2),
        message_padding: padding,
        ..NodeConfig::default()
    };
    common::joined_network(seed, NODES, 16, |_| config)
}

/// Sends one message of `fragments` fragments from the client and waits
/// for it; returns it as delivered.
fn send(sim: &mut Sim, fragments: usize) -> Vec<u8> {
    let message: Vec<u8> = (0..fragments * FRAGMENT_LEN - 7).map(|i| i as u8).collect();
    let before = sim.node(DESTINATION).delivered.len();
    while sim.send_message(CLIENT, DESTINATION, &message).is_err() {
        sim.run_for(Duration::from_millis(50));
    }
    assert!(sim.run_until_true(Duration::from_secs(60), |sim| {
        sim.node(DESTINATION).delivered.len() > before
    }));
    let got = sim.node(DESTINATION).delivered[before].bytes.clone();
    assert_eq!(got, message, "delivered intact");
    got
}

fn padding_sent(sim: &Sim, node: usize) -> u64 {
    sim.node(node).core.stats().message_padding_cells_sent
}

#[test]
fn messages_are_rounded_up_to_powers_of_two_cells() {
    let mut sim = network(1, MessagePadding::PowersOfTwo);
    let mut owed = 0;
    for fragments in [1usize, 3, 5, 17] {
        send(&mut sim, fragments);
        owed += fragments.next_power_of_two() - fragments;
        // The padding follows the last fragment on the same circuit.
        sim.run_for(Duration::from_secs(1));
        assert_eq!(
            padding_sent(&sim, CLIENT),
            owed as u64,
            "after {fragments} fragments"
        );
    }
    assert_eq!(owed, 1 + 3 + 15);
    // A reply of 3 fragments is padded by its sender, the destination.
    let Sender::Anonymous(to) = sim.node(DESTINATION).delivered[0].sender else {
        panic!("an anonymous sender");
    };
    let reply = vec![9u8; 3 * FRAGMENT_LEN];
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
    assert_eq!(padding_sent(&sim, DESTINATION), 1);
}

#[test]
fn without_padding_messages_take_their_own_cell_count() {
    let mut sim = network(2, MessagePadding::None);
    for fragments in [3usize, 5] {
        send(&mut sim, fragments);
    }
    sim.run_for(Duration::from_secs(1));
    assert_eq!(padding_sent(&sim, CLIENT), 0);
}

#[test]
fn the_bucket_rule_is_the_specs() {
    let p = MessagePadding::PowersOfTwo;
    let owed: Vec<usize> = [0usize, 1, 2, 3, 4, 5, 8, 9, 129, 256]
        .iter()
        .map(|&n| p.padding_cells(n))
        .collect();
    assert_eq!(owed, [0, 0, 0, 1, 0, 3, 0, 7, 127, 0]);
    assert_eq!(MessagePadding::None.padding_cells(5), 0);
}
