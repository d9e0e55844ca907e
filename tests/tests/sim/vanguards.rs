//! Layer-2 guards, vanguards-lite style (relay spec §11): with
//! `second_layer_guards = 4` the second hop of every circuit a client
//! builds is one of its 4 layer-2 guards, so over many circuits to many
//! destinations at most 4 relays are ever its second hop; without them
//! the second hop is drawn afresh for every circuit.

use crate::common;

use std::collections::BTreeSet;

use veil_core::identity::{NodeId, ServiceKeys, MAX_SERVICE_DESCRIPTOR_LEN};
use veil_core::node::{AddBootstrap, LearnService, NodeConfig, Reachability, SendMessage};
use veil_core::time::Duration;
use veil_sim::{NodeIndex, Sim};

const NODES: usize = 14;
const CLIENT: usize = 1;

/// Sends messages from the client to every other node but the bootstrap,
/// over three rounds of fresh circuits: the second hops of every circuit
/// the client built, how many circuits, and its layer-2 guards at the end.
fn second_hops(seed: u64, layer_two: usize) -> (BTreeSet<NodeId>, usize, Vec<NodeId>) {
    let relay_config = NodeConfig {
        unix_time_at_zero: 1_800_000_000,
        gossip_interval: Duration::from_secs(2),
        ..NodeConfig::default()
    };
    let client_config = NodeConfig {
        second_layer_guards: layer_two,
        ..relay_config
    };
    let mut sim = common::joined_network(seed, NODES, 24, |i| {
        if i == CLIENT {
            client_config
        } else {
            relay_config
        }
    });
    let mut seconds = BTreeSet::new();
    let mut counted = BTreeSet::new();
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
                    assert_eq!(c.path.relays().len(), 3);
                    seconds.insert(c.path.hops()[1]);
                }
            }
        }
        // Circuits are used for a while; close them so the next round
        // draws new ones.
        sim.run_for(Duration::from_secs(900));
    }
    let guards = sim.node(CLIENT).core.second_layer_guards().to_vec();
    (seconds, counted.len(), guards)
}

#[test]
fn with_four_layer_2_guards_at_most_four_relays_are_ever_a_second_hop() {
    let (seconds, circuits, guards) = second_hops(1, 4);
    assert!(circuits >= 24, "only {circuits} circuits");
    assert_eq!(guards.len(), 4);
    assert!(
        seconds.len() <= 4 && seconds.iter().all(|s| guards.contains(s)),
        "second hops {seconds:?} over {circuits} circuits; layer-2 guards {guards:?}"
    );
}

#[test]
fn without_layer_2_guards_second_hops_are_drawn_afresh() {
    let (seconds, circuits, guards) = second_hops(1, 0);
    assert!(circuits >= 24, "only {circuits} circuits");
    assert!(guards.is_empty());
    assert!(
        seconds.len() > 4,
        "{} distinct second hops over {circuits} circuits",
        seconds.len()
    );
}

/// Records the second hop of every ready circuit of `node` with two relays
/// or more before its last hop, and checks it against the node's layer-2
/// guards at that moment.
fn check_second_hops(sim: &Sim, node: NodeIndex, seen: &mut BTreeSet<(u64, NodeId)>) {
    let core = &sim.node(node).core;
    let guards = core.second_layer_guards();
    assert_eq!(guards.len(), 4, "node {node}");
    for c in core.own_circuits() {
        if c.ready && c.path.relays().len() >= 2 {
            let second = c.path.hops()[1];
            assert!(
                guards.contains(&second),
                "node {node}: circuit {:?} has second hop {second:?}, not among {guards:?}",
                c.path
            );
            seen.insert((c.opened_at.as_micros(), second));
        }
    }
}

/// Rendezvous (relay spec §13) draws its paths through `path_ending_at`:
/// the sender's rendezvous and introduction circuits and the service's
/// introduction and rendezvous circuits take their second hop from the
/// layer-2 guards too.
#[test]
fn rendezvous_and_introduction_circuits_take_their_second_hop_from_the_layer_2_guards() {
    let config = NodeConfig {
        unix_time_at_zero: 1_800_000_000,
        gossip_interval: Duration::from_secs(5),
        ..NodeConfig::default()
    };
    let hidden = NodeConfig {
        reachability: Reachability::Private,
        second_layer_guards: 4,
        ..config
    };
    let mut sim = Sim::new(5);
    let first = sim.add_addressed_node(config, 32);
    for _ in 1..10 {
        let relay = sim.add_addressed_node(config, 32);
        sim.handle(relay, AddBootstrap::address(Sim::address_of(first)))
            .unwrap();
    }
    sim.run_for(Duration::from_secs(30));
    let [service, sender] = [(); 2].map(|_| {
        let node = sim.add_node(hidden, 16);
        sim.handle(node, AddBootstrap::address(Sim::address_of(first)))
            .unwrap();
        node
    });
    sim.run_for(Duration::from_secs(20));
    let keys = ServiceKeys::from_secrets([0x51; 32], [0x52; 32]);
    let service_id = sim.with_node(service, |node| node.offer_service(keys));
    assert!(sim.run_until_true(Duration::from_secs(60), |sim| {
        sim.node(service).core.service_intro_points().count() == 2
    }));
    let mut buf = [0u8; MAX_SERVICE_DESCRIPTOR_LEN];
    let len = sim.node(service).core.service_descriptor(&mut buf).unwrap();
    sim.handle(
        sender,
        LearnService {
            descriptor: &buf[..len],
        },
    )
    .unwrap();
    let (mut at_service, mut at_sender) = (BTreeSet::new(), BTreeSet::new());
    for round in 0..4u8 {
        let before = sim.node(service).delivered.len();
        sim.handle(
            sender,
            SendMessage {
                destination: service_id,
                message: &[round],
            },
        )
        .unwrap();
        let arrived = sim.run_until_true(Duration::from_secs(60), |sim| {
            check_second_hops(sim, service, &mut at_service);
            check_second_hops(sim, sender, &mut at_sender);
            sim.node(service).delivered.len() > before
        });
        assert!(arrived, "round {round}: the message reached the service");
        // Let the circuits age out, so that the next round builds anew.
        sim.run_for(Duration::from_secs(900));
    }
    // Enough circuits that, drawn freely among the 9 other relays, their
    // second hops would not all have fallen among 4 of them.
    assert!(
        at_service.len() >= 6 && at_sender.len() >= 6,
        "circuits checked: service {}, sender {}",
        at_service.len(),
        at_sender.len()
    );
}
