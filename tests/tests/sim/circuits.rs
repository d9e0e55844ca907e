//! Whole networks on the simulator: nodes boot from two bootstrap nodes,
//! learn relays by gossip, dial each other on demand, and carry messages
//! over 3-relay circuits exactly once — with a relay that tampers, a
//! receiver that stalls, and the same bytes on every run of a seed.

use std::cell::Cell as StdCell;
use std::collections::HashMap;

use veil_core::cell::DestroyReason;
use veil_core::identity::NodeId;
use veil_core::link::Cell;
use veil_core::message::{MessageId, Sender};
use veil_core::node::{
    AddBootstrap, Event, LinkId, NodeConfig, SendMessage, SendMessageError, SetGuards, SetReceiving,
};
use veil_core::time::Duration;
use veil_sim::{Direction, NodeIndex, Sim, StreamConditions, SIM_TXQ};

const UNIX_AT_ZERO: u64 = 1_800_000_000;

fn config() -> NodeConfig {
    NodeConfig {
        unix_time_at_zero: UNIX_AT_ZERO,
        gossip_interval: Duration::from_secs(1),
        ..NodeConfig::default()
    }
}

/// `n` nodes with simulated addresses; nodes 0 and 1 are the bootstrap
/// nodes, and every other node knows only their addresses.
fn network(seed: u64, n: usize) -> Sim {
    let mut sim = Sim::new(seed);
    for _ in 0..n {
        sim.add_addressed_node(config(), 40);
    }
    let boot = [Sim::address_of(0), Sim::address_of(1)];
    for i in 1..n {
        let addresses: &[_] = if i == 1 { &boot[..1] } else { &boot };
        for a in addresses {
            sim.handle(i, AddBootstrap::address(*a)).unwrap();
        }
    }
    sim
}

fn healthy_relays(sim: &Sim, node: NodeIndex) -> usize {
    sim.node(node)
        .core
        .node_table()
        .healthy_relays(UNIX_AT_ZERO + sim.now().as_micros() / 1_000_000)
        .count()
}

/// Boots a network and waits until every node can build 3-relay paths.
fn booted(seed: u64, n: usize) -> Sim {
    booted_over(seed, n, StreamConditions::LAN)
}

/// As [`booted`], with every link the nodes dial made under `conditions`.
fn booted_over(seed: u64, n: usize, conditions: StreamConditions) -> Sim {
    let mut sim = network(seed, n);
    sim.set_dial_conditions(conditions);
    let ready = sim.run_until_true(Duration::from_secs(120), |sim| {
        (0..n).all(|i| healthy_relays(sim, i) >= 8)
    });
    assert!(ready, "every node learned at least 8 relays within 120 s");
    sim
}

/// Waits (bounded) until `from` knows `to`, so that a message can go.
fn wait_until_known(sim: &mut Sim, from: NodeIndex, to: NodeIndex) {
    let id = sim.node_id(to);
    let known = sim.run_until_true(Duration::from_secs(60), |sim| {
        sim.node(from).core.node_table().get(&id).is_some()
    });
    assert!(known, "node {from} learned node {to} within 60 s");
}

fn message_body(i: usize, len: usize) -> Vec<u8> {
    let mut body = format!("message {i}:").into_bytes();
    body.extend((0..len).map(|b| (b * 31 + i * 7) as u8));
    body
}

fn acknowledged(sim: &Sim, node: NodeIndex) -> Vec<MessageId> {
    sim.node(node)
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::MessageAcknowledged { id } => Some(*id),
            _ => None,
        })
        .collect()
}

#[test]
fn thirty_nodes_boot_from_two_bootstrap_nodes_and_learn_enough_relays() {
    let sim = booted(1, 30);
    for i in 0..30 {
        let links = sim.node(i).core.links().count();
        assert!(links >= 1, "node {i} has a link");
    }
    // Nobody was connected by the test: every link came from a dial the
    // nodes asked for themselves.
    assert!(healthy_relays(&sim, 29) >= 8);
}

#[test]
fn a_thousand_messages_between_random_pairs_arrive_exactly_once_and_intact() {
    let n = 30;
    let mut sim = booted(2, n);
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    // What each destination must receive, by content.
    let mut expected: HashMap<NodeIndex, Vec<Vec<u8>>> = HashMap::new();
    let mut sent = 0usize;
    while sent < 1000 {
        let from = (next() % n as u64) as usize;
        let mut to = (next() % n as u64) as usize;
        if to == from {
            to = (to + 1) % n;
        }
        let body = message_body(sent, (next() % 2_000) as usize);
        match sim.send_message(from, to, &body) {
            Ok(_) => {
                expected.entry(to).or_default().push(body);
                sent += 1;
            }
            // Gossip has not brought the destination yet, or the pool is
            // full: let the network run, then try again.
            Err(SendMessageError::Full | SendMessageError::UnknownDestination) => {
                sim.run_for(Duration::from_millis(50))
            }
            Err(e) => panic!("send {sent}: {e}"),
        }
    }
    let total = |sim: &Sim| (0..n).map(|i| sim.node(i).delivered.len()).sum::<usize>();
    let done = sim.run_until_true(Duration::from_secs(300), |sim| total(sim) >= 1000);
    sim.run_for(Duration::from_secs(10));
    assert!(done, "only {} of 1000 delivered", total(&sim));
    for i in 0..n {
        let mut got: Vec<Vec<u8>> = sim
            .node(i)
            .delivered
            .iter()
            .map(|d| d.bytes.clone())
            .collect();
        let mut want = expected.remove(&i).unwrap_or_default();
        got.sort();
        want.sort();
        assert_eq!(got.len(), want.len(), "node {i}: each message exactly once");
        assert!(got == want, "node {i}: messages intact");
        assert!(sim
            .node(i)
            .delivered
            .iter()
            .all(|d| matches!(d.sender, Sender::Anonymous(_))));
    }
    let acks: usize = (0..n).map(|i| acknowledged(&sim, i).len()).sum();
    assert_eq!(acks, 1000, "every message acknowledged to its sender");
    let built: u64 = (0..n)
        .map(|i| sim.node(i).core.stats().circuits_built)
        .sum();
    assert!(built > 0);
}

thread_local! {
    static MARKER_SEEN: StdCell<bool> = const { StdCell::new(false) };
    static CELLS_SEEN: StdCell<u64> = const { StdCell::new(0) };
    static TAMPERER: StdCell<Option<NodeId>> = const { StdCell::new(None) };
    static TAMPERED: StdCell<u32> = const { StdCell::new(0) };
}

const MARKER: &[u8] = b"PLAINTEXT-MARKER-7f3a";

fn scan_for_marker(_: &NodeId, _: LinkId, cell: &mut Cell) {
    CELLS_SEEN.with(|c| c.set(c.get() + 1));
    if cell.windows(MARKER.len()).any(|w| w == MARKER) {
        MARKER_SEEN.with(|m| m.set(true));
    }
}

#[test]
fn no_relay_ever_sees_a_message_in_plaintext() {
    let n = 12;
    let mut sim = booted(3, n);
    for i in 0..n {
        sim.with_node(i, |node| node.set_cell_hook(Some(scan_for_marker)));
    }
    let mut body = MARKER.repeat(40);
    body.extend_from_slice(b"end");
    for i in 0..20 {
        let (from, to) = (2 + i % 10, 2 + (i + 3) % 10);
        wait_until_known(&mut sim, from, to);
        sim.send_message(from, to, &body).unwrap();
    }
    let done = sim.run_until_true(Duration::from_secs(60), |sim| {
        (0..n).map(|i| sim.node(i).delivered.len()).sum::<usize>() >= 20
    });
    assert!(done, "all 20 delivered");
    assert!(
        CELLS_SEEN.with(|c| c.get()) > 100,
        "the hook saw the traffic"
    );
    assert!(
        !MARKER_SEEN.with(|m| m.get()),
        "a node saw the marker in a cell"
    );
    let delivered = &sim.node(5).delivered;
    assert!(delivered.iter().all(|d| d.bytes == body));
}

/// A malicious relay: flips one bit in the first few relay cells it takes.
fn flip_a_bit(me: &NodeId, _: LinkId, cell: &mut Cell) {
    let target = TAMPERER.with(|t| t.get());
    let is_relay_cell = cell[4] == 3;
    if Some(*me) == target && is_relay_cell && TAMPERED.with(|t| t.get()) < 1 {
        TAMPERED.with(|t| t.set(t.get() + 1));
        cell[200] ^= 0x10;
    }
}

#[test]
fn a_relay_that_flips_a_bit_destroys_the_circuit_and_the_message_arrives_anyway() {
    let n = 12;
    let mut sim = booted(4, n);
    let (client, dest, bad) = (5, 9, 3);
    wait_until_known(&mut sim, client, dest);
    let bad_id = sim.node_id(bad);
    sim.with_node(bad, |node| node.set_cell_hook(Some(flip_a_bit)));
    // The client's circuit goes through the bad relay, which behaves
    // until the circuit is built and has carried a first message.
    sim.handle(client, SetGuards::from_slice(&[bad_id]));
    let warm_up = sim.send_message(client, dest, b"warm-up").unwrap();
    assert!(sim.run_until_true(Duration::from_secs(30), |sim| {
        acknowledged(sim, client).contains(&warm_up)
    }));
    TAMPERER.with(|t| t.set(Some(bad_id)));
    let body = message_body(1, 3_000);
    let id = sim.send_message(client, dest, &body).unwrap();
    let destroyed = sim.run_until_true(Duration::from_secs(30), |sim| {
        sim.node(client).events.iter().any(|(_, e)| {
            matches!(
                e,
                Event::CircuitClosed {
                    reason: DestroyReason::Unrecognised,
                    ..
                }
            )
        })
    });
    assert!(destroyed, "the altered cell destroyed the circuit");
    assert_eq!(TAMPERED.with(|t| t.get()), 1);
    // New paths are free to avoid the bad relay.
    sim.handle(client, SetGuards::from_slice(&[]));
    let arrived = sim.run_until_true(Duration::from_secs(60), |sim| {
        acknowledged(sim, client).contains(&id)
    });
    assert!(arrived, "the message was resent over a new circuit");
    sim.run_for(Duration::from_secs(5));
    let got: Vec<_> = sim.node(dest).delivered.iter().map(|d| &d.bytes).collect();
    assert_eq!(got[1..], [&body], "delivered exactly once, intact");
    let ready = sim
        .node(client)
        .events
        .iter()
        .filter(|(_, e)| matches!(e, Event::CircuitReady { .. }))
        .count();
    assert!(ready >= 2, "a second circuit was built");
}

fn queued_cells(sim: &Sim, n: usize) -> usize {
    (0..n)
        .map(|i| {
            sim.node(i)
                .core
                .links()
                .map(|l| l.queued_cells)
                .sum::<usize>()
        })
        .sum()
}

#[test]
fn a_stalled_receiver_stalls_its_sender_and_nothing_grows() {
    let n = 10;
    let mut sim = booted(5, n);
    let (sender, receiver) = (4, 7);
    wait_until_known(&mut sim, sender, receiver);
    sim.handle(receiver, SetReceiving { receiving: false });
    let body = message_body(0, 8_000);
    // The sender keeps offering messages: the receiver's node takes what
    // its pool holds, then refuses fragments and stops granting credit.
    let mut queued = 0;
    let mut offer = |sim: &mut Sim, seconds: u64| {
        for _ in 0..seconds * 10 {
            match sim.send_message(sender, receiver, &body) {
                Ok(_) => queued += 1,
                Err(SendMessageError::Full) => {}
                Err(e) => panic!("{e}"),
            }
            sim.run_for(Duration::from_millis(100));
        }
    };
    offer(&mut sim, 30);
    let stalled_at = sim.node(sender).core.stats().data_cells_sent;
    let queues_before = queued_cells(&sim, n);
    offer(&mut sim, 60);
    assert_eq!(
        sim.node(sender).core.stats().data_cells_sent,
        stalled_at,
        "the sender sent nothing more while the receiver was stalled"
    );
    let (outgoing, _) = sim.node(sender).core.message_counts();
    assert_eq!(outgoing, veil_sim::SIM_MESSAGES / 2, "the sender is full");
    let queued = queued;
    assert!(
        queued > veil_sim::SIM_MESSAGES / 2,
        "more was offered than the receiver holds"
    );
    let queues_after = queued_cells(&sim, n);
    assert!(
        queues_after <= queues_before.max(n * 4),
        "queues did not grow"
    );
    for i in 0..n {
        for link in sim.node(i).core.links() {
            assert!(link.queued_cells <= SIM_TXQ);
        }
    }
    let (_, incoming) = sim.node(receiver).core.message_counts();
    assert!(incoming <= veil_sim::SIM_MESSAGES / 2);
    assert_eq!(sim.node(receiver).delivered.len(), 0);
    // The application reads again: everything arrives, once.
    sim.handle(receiver, SetReceiving { receiving: true });
    let done = sim.run_until_true(Duration::from_secs(120), |sim| {
        sim.node(receiver).delivered.len() >= queued
    });
    assert!(done, "all {queued} delivered after the stall");
    sim.run_for(Duration::from_secs(10));
    assert_eq!(sim.node(receiver).delivered.len(), queued);
    assert_eq!(acknowledged(&sim, sender).len(), queued);
}

fn run_for_digest(seed: u64) -> [u8; 32] {
    let n = 10;
    let mut sim = booted(seed, n);
    for i in 0..10 {
        let (from, to) = (2 + i % 8, 2 + (i + 1) % 8);
        wait_until_known(&mut sim, from, to);
        sim.send_message(from, to, &message_body(i, 700)).unwrap();
    }
    sim.run_for(Duration::from_secs(20));
    assert_eq!(
        (0..n).map(|i| sim.node(i).delivered.len()).sum::<usize>(),
        10
    );
    sim.transcript_digest()
}

#[test]
fn the_same_seed_gives_the_same_bytes() {
    assert_eq!(run_for_digest(6), run_for_digest(6));
    assert_ne!(run_for_digest(6), run_for_digest(7));
}

fn circuit_events(sim: &Sim, node: NodeIndex) -> (usize, Vec<DestroyReason>) {
    let mut ready = 0;
    let mut closed = Vec::new();
    for (_, e) in &sim.node(node).events {
        match e {
            Event::CircuitReady { .. } => ready += 1,
            Event::CircuitClosed { reason, .. } => closed.push(*reason),
            _ => {}
        }
    }
    (ready, closed)
}

#[test]
fn circuits_are_rotated_after_their_lifetime() {
    let n = 10;
    let mut sim = Sim::new(8);
    let cfg = NodeConfig {
        circuit_lifetime: Duration::from_secs(30),
        ..config()
    };
    for _ in 0..n {
        sim.add_addressed_node(cfg, 40);
    }
    for i in 1..n {
        sim.handle(i, AddBootstrap::address(Sim::address_of(0)))
            .unwrap();
    }
    assert!(sim.run_until_true(Duration::from_secs(120), |sim| {
        (0..n).all(|i| healthy_relays(sim, i) >= 6)
    }));
    let (client, dest) = (3, 8);
    wait_until_known(&mut sim, client, dest);
    let first = sim.send_message(client, dest, b"first").unwrap();
    sim.run_for(Duration::from_secs(10));
    assert!(acknowledged(&sim, client).contains(&first));
    assert_eq!(circuit_events(&sim, client), (1, vec![]));
    // Still young: the same circuit carries the next message.
    sim.send_message(client, dest, b"second").unwrap();
    sim.run_for(Duration::from_secs(5));
    assert_eq!(circuit_events(&sim, client), (1, vec![]));
    // Past its lifetime, it is closed once idle, and new messages get a
    // fresh circuit.
    sim.run_for(Duration::from_secs(30));
    assert_eq!(
        circuit_events(&sim, client),
        (1, vec![DestroyReason::Requested])
    );
    let third = sim.send_message(client, dest, b"third").unwrap();
    sim.run_for(Duration::from_secs(10));
    assert!(acknowledged(&sim, client).contains(&third));
    assert_eq!(circuit_events(&sim, client).0, 2);
    let got: Vec<&[u8]> = sim
        .node(dest)
        .delivered
        .iter()
        .map(|d| d.bytes.as_slice())
        .collect();
    assert_eq!(got, vec![&b"first"[..], b"second", b"third"]);
}

#[test]
fn a_relay_that_dies_mid_path_loses_nothing() {
    let n = 12;
    let mut sim = booted(9, n);
    let (client, dest) = (4, 10);
    wait_until_known(&mut sim, client, dest);
    let warm_up = sim.send_message(client, dest, b"warm-up").unwrap();
    assert!(sim.run_until_true(Duration::from_secs(30), |sim| {
        acknowledged(sim, client).contains(&warm_up)
    }));
    // Find the circuit's middle relay from who relays a circuit now.
    let relaying: Vec<NodeIndex> = (0..n)
        .filter(|&i| i != client && i != dest && sim.node(i).core.circuit_counts().0 > 0)
        .collect();
    assert!(relaying.len() >= 3, "three relays carry the circuit");
    let victim = relaying[1];
    // A large message is on its way when the relay dies.
    let body = message_body(2, 60_000.min(veil_sim::SIM_MSG - 20));
    let id = sim.send_message(client, dest, &body).unwrap();
    sim.run_for(Duration::from_millis(3));
    assert_eq!(sim.node(dest).delivered.len(), 1, "still in flight");
    sim.kill(victim);
    let arrived = sim.run_until_true(Duration::from_secs(60), |sim| {
        acknowledged(sim, client).contains(&id)
    });
    assert!(arrived, "the message arrived over a new circuit");
    sim.run_for(Duration::from_secs(5));
    let got: Vec<&Vec<u8>> = sim.node(dest).delivered.iter().map(|d| &d.bytes).collect();
    assert_eq!(got.len(), 2, "warm-up and the message, each once");
    assert_eq!(got[1], &body);
    let (ready, closed) = circuit_events(&sim, client);
    assert!(ready >= 2);
    assert!(closed.contains(&DestroyReason::LinkClosed));
}

thread_local! {
    /// The shared guard, and the circuit id of every relay cell it took
    /// from the client's link, in order.
    static WATCHED: StdCell<Option<(NodeId, LinkId)>> = const { StdCell::new(None) };
    static SEQUENCE: std::cell::RefCell<Vec<u32>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn record_client_cells(me: &NodeId, link: LinkId, cell: &mut Cell) {
    let is_relay_cell = cell[4] == 3;
    if WATCHED.with(|w| w.get()) == Some((*me, link)) && is_relay_cell {
        let circuit = u32::from_be_bytes([cell[0], cell[1], cell[2], cell[3]]);
        SEQUENCE.with(|s| s.borrow_mut().push(circuit));
    }
}

/// Four circuits share one link (the client's only guard). The client
/// queues all of destination A's messages first, then B's, C's and D's:
/// a first-come scheduler would send A's cells, then B's, and so on. The
/// node serves its ready circuits round-robin, so while all four have
/// cells to send, the link carries them interleaved, in equal shares.
#[test]
fn circuits_sharing_a_link_are_served_fairly() {
    let n = 12;
    // The client's link to its guard carries 1 MB/s, every other link is
    // fast: four circuit windows hold more than the slow link carries in
    // a round trip, so the client's send queue for it stays full and the
    // node's scheduler alone decides whose cell goes next.
    let (client, guard) = (4, 2);
    let mut sim = network(6, n);
    // The client's own circuits start over an anonymous link (relay spec
    // §11): that is the slow one.
    let wire = sim.connect_anonymously(client, guard, StreamConditions::SLOW);
    assert!(sim.run_until_true(Duration::from_secs(120), |sim| {
        (0..n).all(|i| healthy_relays(sim, i) >= 8)
    }));
    let destinations = [6, 8, 10, 11];
    let guard_id = sim.node_id(guard);
    sim.handle(client, SetGuards::from_slice(&[guard_id]));
    for &d in &destinations {
        wait_until_known(&mut sim, client, d);
        let warm_up = sim.send_message(client, d, b"warm-up").unwrap();
        assert!(
            sim.run_until_true(Duration::from_secs(30), |sim| {
                acknowledged(sim, client).contains(&warm_up)
            }),
            "a circuit to node {d} through the guard carried a first message"
        );
    }
    let (_, guard_link) = sim.end(wire, Direction::Backward);
    WATCHED.with(|w| w.set(Some((guard_id, guard_link))));
    sim.with_node(guard, |node| node.set_cell_hook(Some(record_client_cells)));

    // Every message is offered in one go, destination A's first, then B's,
    // C's and D's: a first-come scheduler would fill the link's queue with
    // A's cells before B's got a turn.
    let per_destination = veil_sim::SIM_MESSAGES / 2 / destinations.len();
    let body = message_body(9, 16_000);
    let now = sim.now();
    let ids: Vec<NodeId> = destinations.iter().map(|&d| sim.node_id(d)).collect();
    sim.with_node(client, |node| {
        for id in &ids {
            for _ in 0..per_destination {
                let message = SendMessage {
                    destination: *id,
                    message: &body,
                };
                node.handle(now, message).unwrap();
            }
        }
    });
    let expected = 1 + per_destination;
    let all = sim.run_until_true(Duration::from_secs(120), |sim| {
        destinations
            .iter()
            .all(|&d| sim.node(d).delivered.len() == expected)
    });
    assert!(all, "every message arrived");

    let sequence = SEQUENCE.with(|s| s.borrow().clone());
    let mut circuits: Vec<u32> = sequence.clone();
    circuits.sort_unstable();
    circuits.dedup();
    assert_eq!(
        circuits.len(),
        destinations.len(),
        "one circuit each, all on the guard's link"
    );
    // All four had cells to send from the start, so contention lasts until
    // the first circuit to finish sends its last cell. In that span each
    // gets close to a quarter of the link.
    let last_of = |c: u32| sequence.iter().rposition(|&x| x == c).unwrap();
    let end = circuits.iter().map(|&c| last_of(c)).min().unwrap() + 1;
    let contended = &sequence[..end];
    assert!(
        contended.len() > 200,
        "a long contended span: {} cells",
        contended.len()
    );
    let fair = contended.len() / circuits.len();
    for &c in &circuits {
        let share = contended.iter().filter(|&&x| x == c).count();
        assert!(
            share * 10 >= fair * 8 && share * 10 <= fair * 12,
            "circuit {c:#x} sent {share} of {} contended cells; a fair share is {fair}",
            contended.len()
        );
    }
    // And cells are interleaved as they go: a circuit's longest run is
    // bounded by the few originated cells a link queue holds (8) and one
    // round of the others, not by its window or by how much it offered.
    let longest_run = contended
        .chunk_by(|a, b| a == b)
        .map(<[u32]>::len)
        .max()
        .unwrap();
    assert!(
        longest_run <= 8 + destinations.len(),
        "one circuit sent {longest_run} cells in a row while the others waited"
    );
}
