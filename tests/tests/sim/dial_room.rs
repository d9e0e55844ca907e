//! A relay whose link table is full of idle links it dialled still
//! extends circuits: before it hands its adapter a dial, it closes an idle
//! link (`Pruned`) to make room (relay spec §10, "Outbound links, hand-off
//! and pruning"). Without that, links dialled for circuits long gone, held
//! open by keepalives, filled relays' tables at 1,000 nodes and 41,658
//! dials failed for want of a slot in a 30-minute churn run
//! (docs/churn.md).
//!
//! The same links, on the accepting side: a node whose table is full of
//! idle links it dialled takes a newcomer by closing one of them, and a
//! relay whose dial the target refuses fails the `EXTEND` at once, so the
//! client hears `ExtendFailed` and tries another path rather than waiting
//! out its build timeout.

use veil_core::cell::DestroyReason;
use veil_core::link::CloseReason;
use veil_core::node::{Event, NodeConfig};
use veil_core::time::Duration;
use veil_sim::{Direction, NodeIndex, Sim, StreamConditions};

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
    assert_eq!(
        sim.node(relay).core.links().count(),
        RELAY_SLOTS,
        "the relay's table is full"
    );
    // Past the grace period in which a new link is never pruned: the relay
    // closes one idle link, to keep a slot free for a newcomer.
    sim.run_for(Duration::from_secs(20));
    assert_eq!(
        sim.node(relay).core.links().count(),
        RELAY_SLOTS - 1,
        "the relay keeps one slot free"
    );
    Net {
        sim,
        client,
        relay,
        destination,
    }
}

/// The links `node` closed to make room.
fn pruned(sim: &Sim, node: NodeIndex) -> usize {
    sim.node(node)
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
        .count()
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
    assert_eq!(
        pruned(&sim, relay),
        1,
        "one idle link made room, and only one"
    );
    assert_eq!(sim.node(relay).core.links().count(), RELAY_SLOTS);
}

/// The destination's link slots, every one of them filled by a link it
/// dialled itself.
const DESTINATION_SLOTS: usize = 4;

/// A client with one-relay circuits, linked to the relay; it knows the
/// destination (they were linked, and the client closed the link). The
/// destination has then dialled idle peers until its table is full, and
/// `settle` has passed.
fn full_destination(settle: Duration) -> Net {
    let mut sim = Sim::new(37);
    let client = sim.add_addressed_node(
        NodeConfig {
            path_relays: 1,
            anonymous_first_hops: false,
            ..config()
        },
        8,
    );
    let relay = sim.add_addressed_node(config(), 8);
    let destination = sim.add_addressed_node(config(), DESTINATION_SLOTS);
    sim.connect(client, relay, StreamConditions::default());
    let wire = sim.connect(client, destination, StreamConditions::default());
    sim.run_for(Duration::from_secs(1));
    let (_, link) = sim.end(wire, Direction::Forward);
    sim.close_link(client, link, CloseReason::Normal);
    sim.run_for(Duration::from_secs(1));
    let known = sim.node_id(destination);
    assert!(sim.node(client).core.node_table().get(&known).is_some());
    assert_eq!(sim.node(destination).core.links().count(), 0);
    for _ in 0..DESTINATION_SLOTS {
        let idle = sim.add_addressed_node(config(), 8);
        sim.connect(destination, idle, StreamConditions::default());
    }
    assert_eq!(
        sim.node(destination).core.links().count(),
        DESTINATION_SLOTS,
        "the destination's table is full"
    );
    sim.run_for(settle);
    Net {
        sim,
        client,
        relay,
        destination,
    }
}

fn closes(sim: &Sim, node: NodeIndex, reason: DestroyReason) -> usize {
    sim.node(node)
        .events
        .iter()
        .filter(|(_, e)| matches!(e, Event::CircuitClosed { reason: r, .. } if *r == reason))
        .count()
}

#[test]
fn a_node_whose_table_fills_with_idle_links_it_dialled_keeps_room_for_a_newcomer() {
    let Net {
        mut sim,
        client,
        destination,
        ..
    } = full_destination(Duration::from_secs(20));
    // Past the grace period, it closed one idle link it dialled to keep a
    // slot free, so the relay's connection is taken at once.
    assert_eq!(
        sim.node(destination).core.links().count(),
        DESTINATION_SLOTS - 1
    );
    sim.send_message(client, destination, b"to a node full of its own links")
        .expect("sent");
    let delivered = sim.run_until_true(Duration::from_secs(60), |sim| {
        !sim.node(destination).delivered.is_empty()
    });
    assert!(
        delivered,
        "the relay's link was taken, and the message arrived"
    );
    // Refused once, the client would have heard `ExtendFailed` and built
    // again.
    assert!(
        pruned(&sim, destination) >= 1,
        "idle links it dialled made room"
    );
    assert_eq!(closes(&sim, client, DestroyReason::ExtendFailed), 0);
}

#[test]
fn an_extend_to_a_node_that_refuses_the_link_fails_at_once() {
    // Its links are younger than the pruning grace period: nothing can
    // give way, and the destination refuses the relay's connection.
    let Net {
        mut sim,
        client,
        relay,
        destination,
    } = full_destination(Duration::from_secs(1));
    sim.send_message(client, destination, b"to a full node")
        .expect("sent");
    let failed = sim.run_until_true(Duration::from_secs(9), |sim| {
        closes(sim, client, DestroyReason::ExtendFailed) > 0
    });
    assert!(
        failed,
        "the client heard ExtendFailed before its build timeout (it would otherwise close the circuit as Timeout)"
    );
    assert_eq!(closes(&sim, client, DestroyReason::Timeout), 0);
    assert!(
        sim.node(relay).core.links().count() <= 2,
        "the refused link is gone from the relay"
    );
}

#[test]
fn a_destination_that_refuses_the_relays_link_is_not_counted_as_failing() {
    // A busy destination whose every slot is taken refuses the last
    // relay's link: the build fails with `ExtendFailed` at the destination.
    // That is no reason to drop it from the table (a failing entry is the
    // first any newcomer displaces, and its messages could then never
    // leave); the relays it is reached through are blamed as before.
    let Net {
        mut sim,
        client,
        destination,
        ..
    } = full_destination(Duration::from_secs(1));
    sim.send_message(client, destination, b"to a busy node")
        .expect("sent");
    let refused = sim.run_until_true(Duration::from_secs(9), |sim| {
        closes(sim, client, DestroyReason::ExtendFailed) > 0
    });
    assert!(refused, "the destination refused the relay");
    let known = sim.node_id(destination);
    let entry = sim.node(client).core.node_table().get(&known).cloned();
    assert_eq!(entry.map(|e| e.failures), Some(0));
    // Once its links are past the grace period, one gives way, and the
    // message the client kept building for arrives.
    let delivered = sim.run_until_true(Duration::from_secs(60), |sim| {
        !sim.node(destination).delivered.is_empty()
    });
    assert!(
        delivered,
        "the message arrived once the destination had room"
    );
}
