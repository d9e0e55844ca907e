//! Rendezvous (issue 19, point 3; relay spec §13): a sender reaches a
//! service it knows only by a service key, through the service's
//! introduction points and a rendezvous point of the sender's choosing.
//! Both ends sit behind NAT (no address, nobody can dial them), and
//! neither learns the other's node id.

use veil_core::cell::DestroyReason;
use veil_core::identity::{NodeId, ServiceDescriptor, ServiceKeys, MAX_SERVICE_DESCRIPTOR_LEN};
use veil_core::message::Sender;
use veil_core::node::{
    AddBootstrap, Event, LearnService, NodeConfig, Reachability, Reply, SendMessage, Timeout,
};
use veil_core::time::Duration;
use veil_sim::{NodeIndex, Sim, StreamConditions};

const UNIX_AT_ZERO: u64 = 1_800_000_000;
const RELAYS: usize = 10;

fn config() -> NodeConfig {
    NodeConfig {
        unix_time_at_zero: UNIX_AT_ZERO,
        gossip_interval: Duration::from_secs(5),
        ..NodeConfig::default()
    }
}

struct Net {
    sim: Sim,
    relays: Vec<NodeIndex>,
    service: NodeIndex,
    sender: NodeIndex,
    service_id: NodeId,
}

fn behind_nat(sim: &mut Sim, first: NodeIndex) -> NodeIndex {
    let node = sim.add_node(
        NodeConfig {
            reachability: Reachability::Private,
            ..config()
        },
        16,
    );
    let address = Sim::address_of(first);
    sim.handle(node, AddBootstrap::address(address)).unwrap();
    node
}

fn descriptor(sim: &Sim, service: NodeIndex) -> Option<Vec<u8>> {
    let mut buf = [0u8; MAX_SERVICE_DESCRIPTOR_LEN];
    let len = sim.node(service).core.service_descriptor(&mut buf).ok()?;
    Some(buf[..len].to_vec())
}

fn intro_points(sim: &Sim, service: NodeIndex) -> Vec<NodeId> {
    sim.node(service)
        .core
        .service_intro_points()
        .map(|p| p.node_id)
        .collect()
}

/// Relays, then a service and a sender behind NAT. The service sets up
/// its introduction points; the sender learns its descriptor.
fn network(seed: u64) -> Net {
    let mut sim = Sim::new(seed);
    sim.set_dial_conditions(StreamConditions {
        latency: Duration::from_millis(5),
        ..StreamConditions::LAN
    });
    let first = sim.add_addressed_node(config(), 32);
    let mut relays = vec![first];
    for _ in 1..RELAYS {
        let relay = sim.add_addressed_node(config(), 32);
        let address = Sim::address_of(first);
        sim.handle(relay, AddBootstrap::address(address)).unwrap();
        relays.push(relay);
    }
    sim.run_for(Duration::from_secs(30));
    let service = behind_nat(&mut sim, first);
    let sender = behind_nat(&mut sim, first);
    sim.run_for(Duration::from_secs(20));
    let keys = ServiceKeys::from_secrets([0x51; 32], [0x52; 32]);
    let service_id = sim.with_node(service, |node| node.offer_service(keys));
    let ready = sim.run_until_true(Duration::from_secs(60), |sim| {
        intro_points(sim, service).len() == 2
    });
    assert!(ready, "the service established two introduction points");
    let bytes = descriptor(&sim, service).unwrap();
    let learnt = sim
        .handle(sender, LearnService { descriptor: &bytes })
        .unwrap();
    assert_eq!(learnt, service_id);
    Net {
        sim,
        relays,
        service,
        sender,
        service_id,
    }
}

fn deliveries(sim: &Sim, node: NodeIndex, text: &[u8]) -> usize {
    sim.node(node)
        .delivered
        .iter()
        .filter(|d| d.bytes == text)
        .count()
}

fn send(sim: &mut Sim, from: NodeIndex, to: NodeId, text: &[u8]) {
    sim.handle(
        from,
        SendMessage {
            destination: to,
            message: text,
        },
    )
    .unwrap();
}

#[test]
fn a_sender_reaches_a_service_through_rendezvous_and_neither_learns_the_other() {
    let Net {
        mut sim,
        relays,
        service,
        sender,
        service_id,
    } = network(71);
    // The yardstick: the first message over an ordinary circuit, from the
    // same sender to a relay.
    let relay = sim.node_id(relays[4]);
    let sent = sim.now();
    send(&mut sim, sender, relay, b"ordinary");
    assert!(sim.run_until_true(Duration::from_secs(30), |sim| {
        deliveries(sim, relays[4], b"ordinary") > 0
    }));
    let ordinary = sim.now().saturating_since(sent);
    let sent = sim.now();
    send(&mut sim, sender, service_id, b"hello service");
    let arrived = sim.run_until_true(Duration::from_secs(60), |sim| {
        deliveries(sim, service, b"hello service") > 0
    });
    assert!(arrived, "the first message arrived through rendezvous");
    let rendezvous = sim.now().saturating_since(sent);
    println!(
        "first message: rendezvous {} ms, ordinary circuit {} ms",
        rendezvous.as_micros() / 1000,
        ordinary.as_micros() / 1000
    );
    let delivery = sim.node(service).delivered[0].clone();
    let Sender::Anonymous(reply_to) = delivery.sender else {
        panic!("the service learned who sent it: {:?}", delivery.sender);
    };
    sim.handle(
        service,
        Reply {
            to: reply_to,
            message: b"hello sender",
        },
    )
    .unwrap();
    let answered = sim.run_until_true(Duration::from_secs(30), |sim| {
        deliveries(sim, sender, b"hello sender") > 0
    });
    assert!(answered, "the reply came back over the joined circuits");
    assert_eq!(
        sim.node(sender).delivered[0].sender,
        Sender::Node(service_id),
        "the sender knows the service by its service id only"
    );

    // Twenty messages each way, each delivered exactly once.
    for n in 0..20u8 {
        send(&mut sim, sender, service_id, &[b's', n]);
        sim.handle(
            service,
            Reply {
                to: reply_to,
                message: &[b'r', n],
            },
        )
        .unwrap();
        sim.run_for(Duration::from_secs(1));
    }
    sim.run_for(Duration::from_secs(30));
    for n in 0..20u8 {
        assert_eq!(
            deliveries(&sim, service, &[b's', n]),
            1,
            "to the service, {n}"
        );
        assert_eq!(
            deliveries(&sim, sender, &[b'r', n]),
            1,
            "to the sender, {n}"
        );
    }

    // Who learnt what: no circuit of the sender's names the service's
    // node, and no circuit of the service's names the sender's.
    let service_node = sim.node_id(service);
    let sender_node = sim.node_id(sender);
    for c in sim.node(sender).core.own_circuits() {
        assert!(!c.path.hops().contains(&service_node), "{:?}", c.path);
    }
    for c in sim.node(service).core.own_circuits() {
        assert!(!c.path.hops().contains(&sender_node), "{:?}", c.path);
    }
    // The rendezvous point joined one pair of circuits, and holds no link
    // to either end for them: both came through relays.
    let joined: Vec<NodeIndex> = relays
        .iter()
        .copied()
        .filter(|&r| sim.node(r).core.rendezvous_roles().1 > 0)
        .collect();
    assert_eq!(joined.len(), 1, "one rendezvous point");
}

#[test]
fn when_an_introduction_point_dies_the_service_replaces_it_and_stays_reachable() {
    let Net {
        mut sim,
        relays,
        service,
        sender,
        service_id,
    } = network(72);
    let before = intro_points(&sim, service);
    let old = ServiceDescriptor::parse_verified(&descriptor(&sim, service).unwrap()).unwrap();
    let dead = *relays
        .iter()
        .find(|&&r| sim.node_id(r) == before[0])
        .unwrap();
    sim.kill(dead);
    let killed_at = sim.now();
    let replaced = sim.run_until_true(Duration::from_secs(30), |sim| {
        let now = intro_points(sim, service);
        now.len() == 2 && !now.contains(&before[0])
    });
    assert!(replaced, "the dead introduction point was replaced");
    println!(
        "introduction point replaced after {} ms",
        sim.now().saturating_since(killed_at).as_micros() / 1000
    );
    let bytes = descriptor(&sim, service).unwrap();
    let new = ServiceDescriptor::parse_verified(&bytes).unwrap();
    assert!(new.issued_at >= old.issued_at);
    assert!(new.intro_points.iter().all(|p| p.node_id != before[0]));
    let _ = sim.handle(sender, LearnService { descriptor: &bytes });
    send(&mut sim, sender, service_id, b"after the loss");
    let arrived = sim.run_until_true(Duration::from_secs(60), |sim| {
        deliveries(sim, service, b"after the loss") > 0
    });
    if !arrived {
        for (at, e) in &sim.node(sender).events {
            if at.saturating_since(killed_at) > Duration::ZERO {
                println!("{} {:?}", at.as_micros() / 1000, e);
            }
        }
        for c in sim.node(sender).core.own_circuits() {
            println!("{:?}", c);
        }
        println!("service:");
        for (at, e) in &sim.node(service).events {
            if at.saturating_since(killed_at) > Duration::ZERO {
                println!("{} {:?}", at.as_micros() / 1000, e);
            }
        }
        for c in sim.node(service).core.own_circuits() {
            println!("{:?}", c);
        }
        println!("intro points now {:?}", intro_points(&sim, service));
    }
    assert!(arrived);
    sim.run_for(Duration::from_secs(10));
    assert_eq!(deliveries(&sim, service, b"after the loss"), 1);
}

#[test]
fn a_forged_descriptor_is_refused() {
    let Net {
        mut sim,
        service,
        sender,
        ..
    } = network(73);
    let mut bytes = descriptor(&sim, service).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    assert!(sim
        .handle(sender, LearnService { descriptor: &bytes })
        .is_err());
}

/// A service that never answers (frozen after its introduction points were
/// set up) costs the sender three build timeouts per rendezvous, not the
/// message's whole life: the circuit waiting at the rendezvous point is
/// given up and a new rendezvous is tried. Once the service runs again it
/// rebuilds its circuits to the introduction points it published, so the
/// descriptor the sender holds still works, and the message arrives, once,
/// long before it would expire.
#[test]
fn a_rendezvous_the_service_never_answers_is_given_up_and_tried_again() {
    let Net {
        mut sim,
        service,
        sender,
        service_id,
        ..
    } = network(73);
    let published = intro_points(&sim, service);
    sim.freeze(service);
    let sent = sim.now();
    send(&mut sim, sender, service_id, b"while frozen");
    let timed_out = |sim: &Sim| {
        sim.node(sender)
            .events
            .iter()
            .filter(|(at, _)| at.saturating_since(sent) > Duration::ZERO)
            .filter_map(|(at, e)| match e {
                Event::CircuitClosed {
                    destination: Some(d),
                    reason: DestroyReason::Timeout,
                    ..
                } if *d == service_id => Some(at.saturating_since(sent)),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    // Three build timeouts at most, whatever the estimator has learnt.
    let limit = config().circuit_build_timeout.saturating_mul(3);
    // The sender's timer runs often, as a busy node's does (a timeout
    // input every 100 ms): each run must not count the waiting rendezvous
    // as one more timed-out build, which would soon have the estimator
    // double its timeout (and the rendezvous deadline with it) up to 60 s.
    let timeout_before = sim.node(sender).core.build_timeout();
    let mut waited = Duration::ZERO;
    while timed_out(&sim).is_empty() && waited < limit.saturating_mul(2) {
        sim.run_for(Duration::from_millis(100));
        sim.handle(sender, Timeout);
        waited = waited.saturating_add(Duration::from_millis(100));
    }
    let waits = timed_out(&sim);
    let timeout_after = sim.node(sender).core.build_timeout();
    println!(
        "rendezvous given up after {waits:?}; build timeout {timeout_before:?} before, {timeout_after:?} after"
    );
    let slack = Duration::from_secs(1);
    assert!(
        waits
            .first()
            .is_some_and(|w| *w <= limit.saturating_add(slack)),
        "the rendezvous was given up within three build timeouts ({limit:?}): {waits:?}, \
         build timeout {timeout_before:?} -> {timeout_after:?}"
    );
    assert!(
        timeout_after <= timeout_before,
        "{timeout_before:?} -> {timeout_after:?}"
    );
    // It tries again while the service is away.
    let again = sim.run_until_true(limit, |sim| {
        sim.node(sender)
            .core
            .own_circuits()
            .any(|c| c.path.destination() == Some(service_id))
    });
    assert!(again, "a new rendezvous was started");
    sim.thaw(service);
    let thawed = sim.now();
    let arrived = sim.run_until_true(Duration::from_secs(60), |sim| {
        deliveries(sim, service, b"while frozen") > 0
    });
    assert!(
        arrived,
        "the message arrived once the service answered again (sent {:?} before the thaw)",
        thawed.saturating_since(sent)
    );
    println!(
        "delivered {} ms after the thaw",
        sim.now().saturating_since(thawed).as_micros() / 1000
    );
    assert_eq!(
        intro_points(&sim, service),
        published,
        "the service came back at the introduction points it published"
    );
    sim.run_for(Duration::from_secs(20));
    assert_eq!(deliveries(&sim, service, b"while frozen"), 1);
}

/// A descriptor re-signed within the second of the last (here: the second
/// introduction point accepted just after the first) is dated later all
/// the same, so a sender holding the first takes the second instead of
/// refusing it as stale.
#[test]
fn a_descriptor_re_signed_within_a_second_still_replaces_the_last() {
    let mut sim = Sim::new(74);
    sim.set_dial_conditions(StreamConditions {
        latency: Duration::from_millis(5),
        ..StreamConditions::LAN
    });
    let first = sim.add_addressed_node(config(), 32);
    for _ in 1..RELAYS {
        let relay = sim.add_addressed_node(config(), 32);
        let address = Sim::address_of(first);
        sim.handle(relay, AddBootstrap::address(address)).unwrap();
    }
    sim.run_for(Duration::from_secs(30));
    let service = behind_nat(&mut sim, first);
    let sender = behind_nat(&mut sim, first);
    sim.run_for(Duration::from_secs(20));
    let keys = ServiceKeys::from_secrets([0x61; 32], [0x62; 32]);
    sim.with_node(service, |node| node.offer_service(keys));
    let mut versions: Vec<(usize, Vec<u8>)> = Vec::new();
    let both = sim.run_until_true(Duration::from_secs(60), |sim| {
        let listed = intro_points(sim, service).len();
        if listed > versions.last().map_or(0, |v| v.0) {
            versions.push((listed, descriptor(sim, service).unwrap()));
        }
        listed == 2
    });
    assert!(both);
    assert_eq!(versions.len(), 2, "one descriptor per established point");
    let dated: Vec<u64> = versions
        .iter()
        .map(|(_, bytes)| ServiceDescriptor::parse_verified(bytes).unwrap().issued_at)
        .collect();
    println!("issued_at of the two descriptors: {dated:?}");
    assert!(dated[1] > dated[0], "{dated:?}");
    for (_, bytes) in &versions {
        sim.handle(sender, LearnService { descriptor: bytes })
            .expect("each descriptor is news to the sender");
    }
}
