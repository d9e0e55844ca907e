//! Idle-link padding between nodes (transport spec §4.3): links configured
//! to pad send padding cells while idle, the peer counts them, and a
//! `PADDING_NEGOTIATE` (relay spec §3) lowers a peer's padding but cannot
//! raise it.

use crate::common;

use common::*;
use veil_core::link::{LinkConfig, LinkPadding, PaddingRange, PaddingRequest};
use veil_core::node::NodeConfig;
use veil_core::time::Duration;
use veil_sim::{Sim, StreamConditions};

const MINUTES: u64 = 10;

fn config(padding: LinkPadding) -> NodeConfig {
    NodeConfig {
        link_only: true,
        link: LinkConfig {
            padding,
            ..LinkConfig::default()
        },
        ..NodeConfig::default()
    }
}

/// `a` (configured `pa`) dials `b` (configured `pb`); both run for
/// [`MINUTES`]. Returns the padding cells each sent on the link and each
/// received.
fn run(seed: u64, pa: LinkPadding, pb: LinkPadding) -> ([u64; 2], [u64; 2]) {
    let mut sim = Sim::new(seed);
    let a = sim.add_node(config(pa), 4);
    let b = sim.add_node(config(pb), 4);
    let wire = sim.connect(a, b, StreamConditions::default());
    let (_, la) = sim.end(wire, veil_sim::Direction::Forward);
    let (_, lb) = sim.end(wire, veil_sim::Direction::Backward);
    sim.run_for(Duration::from_secs(MINUTES * 60));
    assert_eq!(established_peer(&sim, a, la), Some(sim.node_id(b)));
    let sent = |node, link| {
        sim.node(node)
            .core
            .link_info(link)
            .unwrap()
            .stats
            .padding_cells_sent
    };
    let received = |node| sim.node(node).core.stats().padding_cells_received;
    ([sent(a, la), sent(b, lb)], [received(a), received(b)])
}

/// The most padding cells a side may send in [`MINUTES`] with waits of at
/// least `low_ms`.
fn at_most(low_ms: u64) -> u64 {
    MINUTES * 60_000 / low_ms
}

#[test]
fn idle_links_carry_padding_cells_that_the_peer_counts() {
    let (sent, received) = run(1, LinkPadding::FULL, LinkPadding::FULL);
    assert!(sent[0] > 0 && sent[1] > 0, "sent {sent:?}");
    assert_eq!(
        received,
        [sent[1], sent[0]],
        "every padding cell arrives and is counted"
    );
    // Each side's wait restarts at the other's cells: together no more
    // than one cell per 1.5 s.
    assert!(sent[0] + sent[1] <= at_most(1_500), "sent {sent:?}");
}

#[test]
fn nodes_configured_without_padding_send_none() {
    let (sent, received) = run(2, LinkPadding::NONE, LinkPadding::NONE);
    assert_eq!((sent, received), ([0, 0], [0, 0]));
}

#[test]
fn a_node_that_asks_for_no_padding_gets_none() {
    // `a` sends none and asks `b` to stop; `b` would pad by its own
    // configuration.
    let (sent, received) = run(3, LinkPadding::OFF, LinkPadding::FULL);
    assert_eq!(sent, [0, 0], "b honoured the stop");
    assert_eq!(received, [0, 0]);
}

#[test]
fn a_node_that_asks_for_reduced_padding_gets_waits_of_at_least_nine_seconds() {
    // `a` asks for the reduced range and pads with it; `b` (full) pads
    // towards it with waits of 9 s or more.
    let (sent, _) = run(4, LinkPadding::REDUCED, LinkPadding::FULL);
    assert!(sent[1] > 0, "sent {sent:?}");
    assert!(sent[1] <= at_most(9_000), "b sent {} cells", sent[1]);
    // Without the request `b` pads more: the same run with `a` silent.
    let (unasked, _) = run(4, LinkPadding::NONE, LinkPadding::FULL);
    assert!(unasked[1] > sent[1], "{unasked:?} against {sent:?}");
}

#[test]
fn a_peer_asking_for_more_padding_does_not_get_it() {
    // A hostile peer asks for a padding cell every millisecond: `b` keeps
    // its own range (1.5 s or more between cells).
    let greedy = LinkPadding {
        range: None,
        request: Some(PaddingRequest::Start(PaddingRange::new(0, 1).unwrap())),
    };
    let (sent, received) = run(5, greedy, LinkPadding::FULL);
    assert!(sent[1] > 0, "sent {sent:?}");
    assert!(
        sent[1] <= at_most(1_500),
        "b sent {} cells in {MINUTES} min",
        sent[1]
    );
    assert_eq!(received[0], sent[1]);
}
