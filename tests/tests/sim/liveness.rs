//! A relay that goes silent on a live circuit (issue 11): found within
//! seconds by the client's progress timer and probes, not at the link idle
//! timeout; the circuit's messages go again on a path without it, none lost
//! and none delivered twice. A relay that is slow but alive is never taken
//! for dead.
//!
//! Times here are simulated, so they are exact and the same on every run.

use veil_core::identity::NodeId;
use veil_core::message::MessageId;
use veil_core::node::{AddBootstrap, Event, NodeConfig};
use veil_core::time::{Duration, Instant};
use veil_sim::{NodeIndex, Sim, StreamConditions};

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

/// `n` addressed nodes over wires with `conditions`, booted from nodes 0
/// and 1, every node knowing at least 8 healthy relays.
fn booted(seed: u64, n: usize, conditions: StreamConditions) -> Sim {
    let mut sim = Sim::new(seed);
    sim.set_dial_conditions(conditions);
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

/// A destination `client` knows (its table need not hold every node).
fn known_destination(sim: &Sim, client: NodeIndex) -> NodeIndex {
    (0..N)
        .rev()
        .find(|&i| {
            i != client
                && sim
                    .node(client)
                    .core
                    .node_table()
                    .get(&sim.node_id(i))
                    .is_some()
        })
        .expect("the client knows some node")
}

fn index_of(sim: &Sim, n: usize, id: NodeId) -> NodeIndex {
    (0..n)
        .find(|&i| sim.node_id(i) == id)
        .expect("a node of the network")
}

/// The relays of `client`'s ready circuit to `dest`.
fn live_relays(sim: &Sim, client: NodeIndex, dest: NodeIndex) -> Vec<NodeId> {
    let dest_id = sim.node_id(dest);
    sim.node(client)
        .core
        .own_circuits()
        .filter(|c| c.ready && c.path.destination() == Some(dest_id))
        .last()
        .map(|c| c.path.relays().to_vec())
        .unwrap_or_default()
}

fn acked_at(sim: &Sim, node: NodeIndex, id: MessageId) -> Option<Instant> {
    sim.node(node).events.iter().find_map(|(at, e)| match e {
        Event::MessageAcknowledged { id: acked } if *acked == id => Some(*at),
        _ => None,
    })
}

/// What a run of messages sent one after another saw.
struct Run {
    /// When each message was acknowledged.
    acked: Vec<Instant>,
    /// Messages the destination took, by content.
    delivered: Vec<Vec<u8>>,
    failed: usize,
}

impl Run {
    fn longest_gap(&self) -> Duration {
        self.acked
            .windows(2)
            .map(|w| w[1].saturating_since(w[0]))
            .max()
            .unwrap_or(Duration::ZERO)
    }
}

/// Sends `count` messages from `client` to `dest`, each once the one
/// before is acknowledged, calling `before(sim, i)` ahead of message `i`.
fn send_in_turn(
    sim: &mut Sim,
    client: NodeIndex,
    dest: NodeIndex,
    count: usize,
    mut before: impl FnMut(&mut Sim, usize),
) -> Run {
    let mut acked = Vec::new();
    for i in 0..count {
        before(sim, i);
        let id = sim
            .send_message(client, dest, format!("message {i}").as_bytes())
            .expect("queued");
        let done = sim.run_until_true(Duration::from_secs(120), |sim| {
            acked_at(sim, client, id).is_some()
        });
        assert!(done, "message {i} was never acknowledged");
        acked.push(acked_at(sim, client, id).unwrap());
        // Pace the stream a little, as an application would.
        sim.run_for(Duration::from_millis(20));
    }
    // Late duplicates would arrive in this time.
    sim.run_for(Duration::from_secs(10));
    let delivered = sim
        .node(dest)
        .delivered
        .iter()
        .map(|d| d.bytes.clone())
        .collect();
    let failed = sim
        .node(client)
        .events
        .iter()
        .filter(|(_, e)| matches!(e, Event::MessageFailed { .. }))
        .count();
    Run {
        acked,
        delivered,
        failed,
    }
}

fn assert_exactly_once(run: &Run, count: usize) {
    assert_eq!(run.failed, 0, "messages failed");
    for i in 0..count {
        let copies = run
            .delivered
            .iter()
            .filter(|d| d.as_slice() == format!("message {i}").as_bytes())
            .count();
        assert_eq!(copies, 1, "message {i} delivered {copies} times");
    }
    assert_eq!(run.delivered.len(), count);
}

const N: usize = 12;
const MESSAGES: usize = 60;
const FREEZE_BEFORE: usize = 20;

#[test]
fn a_relay_that_goes_silent_is_found_in_seconds_and_routed_around() {
    let mut sim = booted(41, N, StreamConditions::LAN);
    let client = 5;
    let dest = known_destination(&sim, client);
    let mut frozen = None;
    let run = send_in_turn(&mut sim, client, dest, MESSAGES, |sim, i| {
        if i == FREEZE_BEFORE {
            // The middle relay of the live circuit hangs: its connections
            // stay open and nothing answers.
            let relays = live_relays(sim, client, dest);
            assert_eq!(relays.len(), 3, "a 3-relay circuit is live");
            let middle = index_of(sim, N, relays[1]);
            sim.freeze(middle);
            frozen = Some((relays[1], sim.now()));
        }
    });
    let (frozen_id, frozen_at) = frozen.expect("the relay was frozen");
    assert_exactly_once(&run, MESSAGES);
    let gap = run.longest_gap();
    eprintln!("longest gap between acknowledgements: {gap:?}");
    assert!(
        gap <= Duration::from_secs(2),
        "the stream stalled for {gap:?} (goal: at most 2 s)"
    );
    let suspected: Vec<(Instant, NodeId)> = sim
        .node(client)
        .events
        .iter()
        .filter_map(|(at, e)| match e {
            Event::RelaySuspected { relay, .. } => Some((*at, *relay)),
            _ => None,
        })
        .collect();
    assert_eq!(
        suspected.iter().map(|(_, r)| *r).collect::<Vec<_>>(),
        vec![frozen_id],
        "the frozen relay, and only it, is suspected"
    );
    eprintln!(
        "detected {:?} after the freeze",
        suspected[0].0.saturating_since(frozen_at)
    );
    // No later circuit goes through it.
    for c in sim.node(client).core.own_circuits() {
        assert!(
            !c.path.hops().contains(&frozen_id),
            "the frozen relay was chosen again"
        );
    }
}

#[test]
fn the_same_seed_gives_the_same_recovery() {
    let digest = || {
        let mut sim = booted(43, N, StreamConditions::LAN);
        let dest = known_destination(&sim, 5);
        let run = send_in_turn(&mut sim, 5, dest, 30, |sim, i| {
            if i == 10 {
                let relays = live_relays(sim, 5, dest);
                let middle = index_of(sim, N, relays[1]);
                sim.freeze(middle);
            }
        });
        assert_exactly_once(&run, 30);
        sim.transcript_digest()
    };
    assert_eq!(digest(), digest());
}

#[test]
fn a_relay_that_is_slow_but_alive_is_never_declared_dead() {
    // 20 ms ± 10 ms per wire: a 3-relay circuit's round trip is about
    // 200 ms. One relay of the live circuit then delays everything it sends
    // by 100 ms plus up to 400 ms more, each way: a round trip through it
    // takes up to 1 s longer, five times the circuit's own, jittered, and
    // never silent. Its answers (and its probe answers) come late; a
    // detector that gave up at the first RTO, without probing, takes it
    // for dead.
    let conditions = StreamConditions {
        latency: Duration::from_millis(20),
        jitter: Duration::from_millis(10),
        ..StreamConditions::LAN
    };
    let mut sim = booted(47, N, conditions);
    let client = 5;
    let dest = known_destination(&sim, client);
    let run = send_in_turn(&mut sim, client, dest, MESSAGES, |sim, i| {
        if i == 5 {
            let relays = live_relays(sim, client, dest);
            let slow = index_of(sim, N, relays[1]);
            sim.set_node_delay(slow, Duration::from_millis(100), Duration::from_millis(400));
        }
    });
    assert_exactly_once(&run, MESSAGES);
    let suspicions = sim
        .node(client)
        .events
        .iter()
        .filter(|(_, e)| {
            matches!(
                e,
                Event::RelaySuspected { .. } | Event::DestinationSilent { .. }
            )
        })
        .count();
    let probes = sim.node(client).core.stats().probe_rounds;
    eprintln!("probe rounds {probes}, suspicions {suspicions}");
    assert_eq!(suspicions, 0, "a slow relay was taken for dead");
    assert_eq!(sim.node(client).core.stats().circuits_abandoned, 0);
}
