//! Randomized path length (relay spec §7): with `extra_path_relays` a
//! client's circuits take `path_relays` to `path_relays + extra` relays,
//! each length drawn per circuit; without it every circuit has the one
//! length configured.

use crate::common;

use std::collections::BTreeMap;

use veil_core::node::NodeConfig;
use veil_core::time::Duration;

const NODES: usize = 14;
const CLIENT: usize = 1;

/// Sends a message from the client to every other node but the
/// bootstrap, one after another, and counts the relays of every circuit
/// the client built: relay count → circuits.
fn lengths(seed: u64, extra: usize) -> BTreeMap<usize, usize> {
    let relay_config = NodeConfig {
        unix_time_at_zero: 1_800_000_000,
        gossip_interval: Duration::from_secs(2),
        ..NodeConfig::default()
    };
    let client_config = NodeConfig {
        path_relays: 2,
        extra_path_relays: extra,
        ..relay_config
    };
    let mut sim = common::joined_network(seed, NODES, 24, |i| {
        if i == CLIENT {
            client_config
        } else {
            relay_config
        }
    });
    let mut seen = BTreeMap::new();
    let mut counted = std::collections::BTreeSet::new();
    for round in 0..3 {
        for to in 2..NODES {
            let before = sim.node(to).delivered.len();
            let body = format!("round {round} to {to}");
            while sim.send_message(CLIENT, to, body.as_bytes()).is_err() {
                sim.run_for(Duration::from_millis(50));
            }
            assert!(
                sim.run_until_true(Duration::from_secs(60), |sim| {
                    sim.node(to).delivered.len() > before
                }),
                "message to {to} not delivered"
            );
            for c in sim.node(CLIENT).core.own_circuits() {
                if c.ready && counted.insert(c.circuit) {
                    *seen.entry(c.path.relays().len()).or_insert(0) += 1;
                }
            }
        }
        // Circuits are used for a while; close them so the next round
        // draws new ones.
        sim.run_for(Duration::from_secs(900));
    }
    seen
}

#[test]
fn circuits_take_every_length_from_path_relays_to_path_relays_plus_extra() {
    let seen = lengths(1, 3);
    let total: usize = seen.values().sum();
    assert!(total >= 24, "only {total} circuits: {seen:?}");
    assert_eq!(
        seen.keys().copied().collect::<Vec<_>>(),
        [2, 3, 4, 5],
        "every length from 2 to 5 relays and no other: {seen:?}"
    );
    // Uniform: each length is a quarter of the circuits, give or take.
    for (&length, &count) in &seen {
        assert!(count * 10 >= total, "length {length}: {count} of {total}");
    }
}

#[test]
fn without_extra_relays_every_circuit_has_the_configured_length() {
    let seen = lengths(2, 0);
    assert_eq!(seen.keys().copied().collect::<Vec<_>>(), [2], "{seen:?}");
}
