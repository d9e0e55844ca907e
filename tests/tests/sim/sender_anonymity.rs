//! Sender anonymity (relay spec §11): the circuits a node originates start
//! at its guards over anonymous links (link spec §3.1), so no first hop
//! ever learns the client's long-term node id.

use std::collections::HashSet;

use veil_core::identity::NodeId;
use veil_core::link::LinkRole;
use veil_core::message::MessageId;
use veil_core::node::{AddBootstrap, Event, NodeConfig, AUTO_GUARDS};
use veil_core::time::Duration;
use veil_sim::{NodeIndex, Sim, StreamConditions};

const UNIX_AT_ZERO: u64 = 1_800_000_000;

fn config(relay: bool) -> NodeConfig {
    NodeConfig {
        unix_time_at_zero: UNIX_AT_ZERO,
        gossip_interval: Duration::from_secs(1),
        relay,
        ..NodeConfig::default()
    }
}

/// Node 0 is a bootstrap node that relays for nobody; nodes 1..=`relays`
/// are relays that boot from it; the last node is the client: no relay, no
/// address (nobody can dial it), booting from node 0. The only node that
/// ever links to the client under its identity is node 0, so a relay that
/// sees the client's id can only have seen it on a link the client dialled
/// to it.
fn network(seed: u64, relays: usize) -> (Sim, NodeIndex) {
    let mut sim = Sim::new(seed);
    sim.add_addressed_node(config(false), 40);
    for _ in 0..relays {
        sim.add_addressed_node(config(true), 40);
    }
    let client_config = NodeConfig {
        // Rotate circuits often, so the guards carry many of them.
        circuit_lifetime: Duration::from_secs(20),
        ..config(false)
    };
    let client = sim.add_node(client_config, 16);
    let boot = Sim::address_of(0);
    for i in 1..=client {
        sim.handle(i, AddBootstrap::address(boot)).unwrap();
    }
    let unix = |sim: &Sim| UNIX_AT_ZERO + sim.now().as_micros() / 1_000_000;
    // Every node knows enough relays before the client builds circuits:
    // a relay asked to extend to a relay it does not know yet fails the
    // circuit, and failures count against guards too.
    let ready = sim.run_until_true(Duration::from_secs(120), |sim| {
        (1..=client).all(|i| {
            sim.node(i)
                .core
                .node_table()
                .healthy_relays(unix(sim))
                .count()
                >= 8
        })
    });
    assert!(ready, "every node learned 8 relays within 120 s");
    (sim, client)
}

fn acknowledged(sim: &Sim, node: NodeIndex) -> HashSet<MessageId> {
    sim.node(node)
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::MessageAcknowledged { id } => Some(*id),
            _ => None,
        })
        .collect()
}

/// Every peer `node` saw a link come up with.
fn link_peers(sim: &Sim, node: NodeIndex) -> Vec<NodeId> {
    sim.node(node)
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::LinkEstablished { peer, .. } => Some(*peer),
            _ => None,
        })
        .collect()
}

#[test]
fn no_first_hop_learns_the_long_term_id_of_a_client_that_sends_over_circuits() {
    let relays = 12;
    let (mut sim, client) = network(61, relays);
    let client_id = sim.node_id(client);
    // Several destinations, several rounds: circuits are built, rotated
    // and built again.
    // Three relays the client knows: gossip over its one bootstrap link
    // fills only an eighth of its new table, and a client does no feelers.
    let known = |sim: &Sim, i: NodeIndex| {
        let table = sim.node(client).core.node_table();
        table.get(&sim.node_id(i)).is_some()
    };
    let dests: Vec<NodeIndex> = (1..=relays)
        .rev()
        .filter(|&i| known(&sim, i))
        .take(3)
        .collect();
    assert_eq!(dests.len(), 3);
    let mut sent = Vec::new();
    for round in 0..6 {
        for &dest in &dests {
            let body = format!("round {round} to {dest}").into_bytes();
            sent.push(sim.send_message(client, dest, &body).expect("queued"));
        }
        sim.run_for(Duration::from_secs(15));
    }
    let done = sim.run_until_true(Duration::from_secs(60), |sim| {
        sent.iter().all(|id| acknowledged(sim, client).contains(id))
    });
    assert!(done, "every message was acknowledged");

    // No relay ever had a link to the client under the client's id: not
    // its first hops, not anyone.
    for relay in 1..=relays {
        assert!(
            !link_peers(&sim, relay).contains(&client_id),
            "relay {relay} saw a link from the client's long-term id"
        );
        assert!(
            sim.node(relay)
                .core
                .links()
                .all(|l| l.peer != Some(client_id)),
            "relay {relay} holds a link to the client's long-term id"
        );
    }

    // The circuits went over the client's guards, which it chose itself:
    // two relays, and every link the client dialled to a relay goes to one.
    let guards = sim.node(client).core.guards().to_vec();
    assert_eq!(guards.len(), AUTO_GUARDS);
    assert_ne!(guards[0], guards[1]);
    let ids: Vec<NodeId> = (0..=client).map(|i| sim.node_id(i)).collect();
    let boot = ids[0];
    let first_hops: HashSet<NodeId> = sim
        .node(client)
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::LinkEstablished {
                peer,
                role: LinkRole::Initiator,
                ..
            } if *peer != boot => Some(*peer),
            _ => None,
        })
        .collect();
    assert!(!first_hops.is_empty());
    assert!(
        first_hops.iter().all(|p| guards.contains(p)),
        "every first hop is a guard"
    );

    // What the guards saw instead: identities that are nobody's, a fresh one
    // per link (two guards, or two links to one guard, cannot link the
    // client by it).
    let mut throwaways = Vec::new();
    for guard in &guards {
        let index = ids.iter().position(|id| id == guard).unwrap();
        let strangers: Vec<NodeId> = link_peers(&sim, index)
            .into_iter()
            .filter(|p| !ids.contains(p))
            .collect();
        assert!(
            !strangers.is_empty(),
            "guard {index} carried the client's circuits"
        );
        throwaways.extend(strangers);
    }
    let distinct: HashSet<&NodeId> = throwaways.iter().collect();
    assert_eq!(
        distinct.len(),
        throwaways.len(),
        "a fresh identity per link"
    );
}

#[test]
fn an_anonymous_link_shows_a_throwaway_identity_and_no_descriptor() {
    let mut sim = Sim::new(62);
    let a = sim.add_addressed_node(config(true), 8);
    let b = sim.add_addressed_node(config(true), 8);
    let wire = sim.connect_anonymously(a, b, StreamConditions::LAN);
    sim.run_for(Duration::from_secs(5));
    let (a_id, b_id) = (sim.node_id(a), sim.node_id(b));
    // The dialler knows whom it reached; the responder does not.
    assert_eq!(link_peers(&sim, a), [b_id]);
    let seen = link_peers(&sim, b);
    assert_eq!(seen.len(), 1);
    assert_ne!(seen[0], a_id);
    // The responder introduced itself; the dialler did not, and learned
    // nothing over the link.
    assert!(sim.node(b).core.node_table().get(&a_id).is_none());
    assert!(sim.node(a).core.node_table().get(&b_id).is_none());
    // A second anonymous link to the same relay shows another identity.
    let _ = wire;
    sim.connect_anonymously(a, b, StreamConditions::LAN);
    sim.run_for(Duration::from_secs(5));
    let seen = link_peers(&sim, b);
    assert_eq!(seen.len(), 2);
    assert_ne!(seen[0], seen[1]);
    assert!(!seen.contains(&a_id));
}
