//! A relay whose link table is full of idle links it dialled still
//! extends circuits: before it hands its adapter a dial, it closes an idle
//! link (`Pruned`) to make room (relay spec §10, "Outbound links, hand-off
//! and pruning"). Without that, links dialled for circuits long gone, held
//! open by keepalives, filled relays' tables at 1,000 nodes and 41,658
//! dials failed for want of a slot in a 30-minute churn run
//! (docs/churn.md).

use veil_core::link::CloseReason;
use veil_core::node::{Event, NodeConfig};
use veil_core::time::Duration;
use veil_sim::{NodeIndex, Sim, StreamConditions};

const UNIX_AT_ZERO: u64 = 1_800_000_000;
/// The relay's link slots: its idle links and the client's.
const RELAY_SLOTS: usize = 6;

fn config() -> NodeConfig {
    NodeConfig {
        unix_time_at_zero: UNIX_AT_ZERO,
        gossip_interval: Duration::from_secs(24 * 3600),
        outbound_links: 0,
        ..NodeConfig::default()
    }
}

struct Net {
    sim: Sim,
    client: NodeIndex,
    relay: NodeIndex,
    destination: NodeIndex,
}

/// A client with one-relay circuits, linked to the relay and the
/// destination; the relay has dialled five idle peers, so its table (the
/// client's link included) is full, and it has no link to the destination.
fn network() -> Net {
    let mut sim = Sim::new(31);
    let client = sim.add_addressed_node(
        NodeConfig {
            path_relays: 1,
            anonymous_first_hops: false,
            ..config()
        },
        8,
    );
    let relay = sim.add_addressed_node(config(), RELAY_SLOTS);
    let destination = sim.add_addressed_node(config(), 8);
    sim.connect(client, relay, StreamConditions::default());
    sim.connect(client, destination, StreamConditions::default());
    for _ in 1..RELAY_SLOTS {
        let idle = sim.add_addressed_node(config(), 8);
        sim.connect(relay, idle, StreamConditions::default());
    }
    // Past the grace period in which a new link is never pruned.
    sim.run_for(Duration::from_secs(20));
    assert_eq!(
        sim.node(relay).core.links().count(),
        RELAY_SLOTS,
        "the relay's table is full"
    );
    Net {
        sim,
        client,
        relay,
        destination,
    }
}

#[test]
fn a_relay_with_a_full_table_prunes_an_idle_link_to_extend() {
    let Net {
        mut sim,
        client,
        relay,
        destination,
    } = network();
    sim.send_message(client, destination, b"through a full relay")
        .expect("sent");
    let delivered = sim.run_until_true(Duration::from_secs(60), |sim| {
        !sim.node(destination).delivered.is_empty()
    });
    assert!(delivered, "the message arrived through the relay");
    let pruned = sim
        .node(relay)
        .events
        .iter()
        .filter(|(_, e)| {
            matches!(
                e,
                Event::LinkClosed {
                    reason: CloseReason::Pruned,
                    ..
                }
            )
        })
        .count();
    assert_eq!(pruned, 1, "one idle link made room, and only one");
    assert!(sim.node(relay).core.links().count() <= RELAY_SLOTS);
}
