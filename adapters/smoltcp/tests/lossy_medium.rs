//! Three veil nodes, each on its own smoltcp interface, on one simulated IP
//! medium that drops, duplicates and reorders packets (deterministically).
//! Nodes A and C know only B's address. Over smoltcp TCP they complete link
//! handshakes, exchange descriptors, and A sends a message to C over a
//! circuit through B (one relay); C answers over the same circuit.

use core::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use smoltcp::iface::{Config, Interface, SocketSet, SocketStorage};
use smoltcp::socket::tcp;
use smoltcp::wire::{HardwareAddress, IpCidr, Ipv4Address};
use veil_core::identity::{Identity, NodeId};
use veil_core::link::{CloseReason, LinkRole};
use veil_core::message::{MessageSlot, Sender};
use veil_core::node::{
    AddBootstrap, CloseLink, Event, LinkSlot, Node, NodeConfig, Output, Reply, SendMessage,
    SetAddresses,
};
use veil_core::time::{Duration, Instant};
use veil_smoltcp::medium::{Faults, Hub};
use veil_smoltcp::{
    tcp_address, to_smoltcp_instant, DialError, Driver, DriverConfig, EmbeddedProfile, Slot,
    SocketState,
};

/// The embedded profile's largest message.
const MSG: usize = veil_smoltcp::EMBEDDED_MESSAGE;
const LINKS: usize = 4;
/// Sockets per node: one per link and a spare (all listen while idle).
const SOCKETS: usize = LINKS + 1;
const PORT: u16 = 7_000;
const IPS: [Ipv4Addr; 3] = [
    Ipv4Addr::new(10, 1, 0, 2),
    Ipv4Addr::new(10, 2, 0, 2),
    Ipv4Addr::new(10, 3, 0, 2),
];
const UNIX_AT_ZERO: u64 = 1_800_000_000;

type TestNode = Node<EmbeddedProfile>;
/// Small packets (576-byte MTU), so a link message spans several and the
/// faults hit more of them.
type TestHub = Hub<3, 32, 576>;

struct Station {
    node: Box<TestNode>,
    iface: Interface,
    sockets: SocketSet<'static>,
    driver: Driver<'static>,
    events: Vec<Event>,
    received: Vec<(Vec<u8>, Sender)>,
}

fn leak<T: Clone>(value: T, n: usize) -> &'static mut [T] {
    Box::leak(vec![value; n].into_boxed_slice())
}

fn station(hub: &mut TestHub, index: usize, ip: Ipv4Addr, now: Instant) -> Station {
    let mut config = Config::new(HardwareAddress::Ip);
    config.random_seed = 0x5eed_0000 + index as u64;
    let mut iface = Interface::new(config, &mut hub.port(index), to_smoltcp_instant(now));
    iface.update_ip_addrs(|addrs| {
        addrs.push(IpCidr::new(ip.into(), 16)).unwrap();
    });
    let [a, b, ..] = ip.octets();
    iface
        .routes_mut()
        .add_default_ipv4_route(Ipv4Address::new(a, b, 0, 1))
        .unwrap();
    let mut sockets =
        SocketSet::new(Box::leak(Box::new([SocketStorage::EMPTY; SOCKETS])) as &mut [_]);
    let handles: Vec<Slot> = (0..SOCKETS)
        .map(|_| {
            Slot::new(sockets.add(tcp::Socket::new(
                tcp::SocketBuffer::new(leak(0u8, 2_048)),
                tcp::SocketBuffer::new(leak(0u8, 2_048)),
            )))
        })
        .collect();
    let driver = Driver::new(
        DriverConfig {
            listen_port: Some(PORT),
            first_local_port: 50_000 + 100 * index as u16,
            ..DriverConfig::default()
        },
        handles.leak(),
    );
    let node_config = NodeConfig {
        unix_time_at_zero: UNIX_AT_ZERO,
        path_relays: 1,
        gossip_interval: Duration::from_secs(1),
        extend_to_private_addresses: true,
        // With 4 link slots a station admits one inbound link per network
        // (half of its 3 inbound slots, rounded down): a client's anonymous
        // second link to a guard it already links to is refused, so its
        // circuits start over its one link, as on the firmware (relay spec
        // §11). Whether that guard was linked already depends on the draw.
        anonymous_first_hops: false,
        ..NodeConfig::default()
    };
    let identity = Identity::from_secret_bytes([index as u8 + 1; 32]);
    let links = Box::leak((0..LINKS).map(|_| LinkSlot::new()).collect::<Box<[_]>>());
    let messages = Box::leak((0..4).map(|_| MessageSlot::new()).collect::<Box<[_]>>());
    let mut node = Box::new(Node::new(
        node_config,
        identity,
        [0x40 + index as u8; 32],
        links,
        messages,
    ));
    node.handle(now, SetAddresses::from_slice(&[tcp_address(ip, PORT)]));
    Station {
        node,
        iface,
        sockets,
        driver,
        events: Vec::new(),
        received: Vec::new(),
    }
}

struct Net {
    hub: TestHub,
    stations: Vec<Station>,
    now: Instant,
}

impl Net {
    /// A and C bootstrap from B (the nodes dial by themselves).
    fn new(faults: Faults) -> Net {
        let mut net = Net::unlinked(faults);
        for i in [0, 2] {
            let b = net.addr(1);
            let now = net.now;
            net.stations[i]
                .node
                .handle(now, AddBootstrap::address(b))
                .unwrap();
        }
        net
    }

    fn addr(&self, i: usize) -> veil_core::identity::Address {
        tcp_address(IPS[i], PORT)
    }

    /// Three nodes that know nobody: links come only from program dials.
    fn unlinked(faults: Faults) -> Net {
        let mut hub = TestHub::new(IPS, faults, 0x1234_5678);
        let now = Instant::ZERO;
        let stations: Vec<Station> = (0..3).map(|i| station(&mut hub, i, IPS[i], now)).collect();
        Net { hub, stations, now }
    }

    /// `Driver::dial` from station `i` to `addr`, expecting `expected`.
    fn dial(
        &mut self,
        i: usize,
        addr: SocketAddr,
        expected: Option<NodeId>,
    ) -> Result<(), DialError> {
        let st = &mut self.stations[i];
        st.driver
            .dial(&mut st.iface, &mut st.sockets, addr, expected)
    }

    fn id(&self, i: usize) -> NodeId {
        self.stations[i].node.node_id()
    }

    /// Polls every station once, then moves the clock: a little if packets
    /// are in flight, else to the earliest deadline.
    fn step(&mut self) {
        let now = self.now;
        for (i, st) in self.stations.iter_mut().enumerate() {
            let Station {
                node,
                iface,
                sockets,
                driver,
                events,
                received,
            } = st;
            let mut buf = vec![0u8; MSG];
            driver
                .poll(
                    now,
                    &mut **node,
                    iface,
                    &mut self.hub.port(i),
                    sockets,
                    &mut buf,
                    |_, output| match output {
                        Output::Message { message, bytes } => {
                            received.push((bytes.to_vec(), message.sender))
                        }
                        Output::Event(event) => events.push(event),
                        _ => {}
                    },
                )
                .unwrap();
        }
        let soon = now.saturating_add(Duration::from_micros(200));
        if self.hub.in_flight() > 0 {
            self.now = soon;
            return;
        }
        let next = self
            .stations
            .iter_mut()
            .map(|st| st.driver.poll_at(now, &mut st.iface, &st.sockets))
            .min()
            .unwrap_or(now.saturating_add(Duration::from_secs(1)));
        self.now = next.clamp(soon, now.saturating_add(Duration::from_secs(1)));
    }

    fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Net) -> bool) -> bool {
        let end = self.now.saturating_add(limit);
        while self.now < end {
            if done(self) {
                return true;
            }
            self.step();
        }
        done(self)
    }
}

fn linked(st: &Station, peer: NodeId) -> bool {
    st.events
        .iter()
        .any(|e| matches!(e, Event::LinkEstablished { peer: p, .. } if *p == peer))
}

fn run(faults: Faults) -> Net {
    let mut net = Net::new(faults);
    let (a, b, c) = (net.id(0), net.id(1), net.id(2));

    // Link handshakes over smoltcp TCP, dialled by the nodes themselves.
    assert!(
        net.run_until(Duration::from_secs(30), |n| {
            linked(&n.stations[0], b)
                && linked(&n.stations[2], b)
                && linked(&n.stations[1], a)
                && linked(&n.stations[1], c)
        }),
        "A-B and C-B links established within 30 s"
    );
    // Descriptor exchange: B learns both; A learns C through B.
    assert!(
        net.run_until(Duration::from_secs(30), |n| {
            n.stations[0].node.node_table().get(&c).is_some()
                && n.stations[1].node.node_table().get(&a).is_some()
                && n.stations[1].node.node_table().get(&c).is_some()
        }),
        "descriptors exchanged within 30 s"
    );
    assert!(net.stations[0]
        .events
        .iter()
        .any(|e| matches!(e, Event::PeerLearned { peer, .. } if *peer == c)));

    // A message over a circuit A -> B -> C, and C's answer back.
    let body = b"hello C, from A, through B, over smoltcp".repeat(20);
    let now = net.now;
    let send = SendMessage {
        destination: c,
        message: &body,
    };
    let id = net.stations[0].node.handle(now, send).unwrap();
    let ok = net.run_until(Duration::from_secs(60), |n| {
        !n.stations[2].received.is_empty()
    });
    if !ok {
        for (i, st) in net.stations.iter().enumerate() {
            eprintln!("station {i}: {:#?}", st.events);
            eprintln!("links {:?}", st.node.links().collect::<Vec<_>>());
            eprintln!("sockets {:?}", st.driver.sockets().collect::<Vec<_>>());
            eprintln!(
                "stats {:?} circuits {:?}",
                st.node.stats(),
                st.node.circuit_counts()
            );
        }
    }
    assert!(ok, "message delivered within 60 s");
    let (got, sender) = net.stations[2].received[0].clone();
    assert_eq!(got, body);
    let Sender::Anonymous(reply_to) = sender else {
        panic!("the destination does not learn the sender: {sender:?}");
    };
    assert!(
        net.run_until(Duration::from_secs(30), |n| n.stations[0]
            .events
            .iter()
            .any(
                |e| matches!(e, Event::MessageAcknowledged { id: x } if *x == id)
            )),
        "acknowledged within 30 s"
    );
    assert!(net.stations[0]
        .events
        .iter()
        .any(|e| matches!(e, Event::CircuitReady { destination, .. } if *destination == c)));
    let now = net.now;
    let reply = Reply {
        to: reply_to,
        message: b"pong",
    };
    net.stations[2].node.handle(now, reply).unwrap();
    assert!(
        net.run_until(Duration::from_secs(30), |n| !n.stations[0]
            .received
            .is_empty()),
        "reply delivered within 30 s"
    );
    let (got, sender) = net.stations[0].received[0].clone();
    assert_eq!(got, b"pong");
    assert_eq!(sender, Sender::Node(c));
    // Exactly once, despite duplicated packets.
    assert_eq!(net.stations[2].received.len(), 1);
    // B relayed; it did not receive anything itself.
    assert!(net.stations[1].received.is_empty());
    assert_eq!(net.stations[1].node.circuit_counts().0, 1);
    net
}

#[test]
fn three_nodes_build_a_circuit_over_a_clean_medium() {
    let net = run(Faults::default());
    assert_eq!(net.hub.stats().dropped, 0);
}

#[test]
fn three_nodes_build_a_circuit_over_a_lossy_medium() {
    let net = run(Faults {
        drop_per_mille: 50,
        duplicate_per_mille: 50,
        reorder_per_mille: 100,
    });
    let stats = net.hub.stats();
    eprintln!(
        "{stats:?} after {} ms simulated",
        net.now.as_micros() / 1_000
    );
    assert!(stats.dropped > 0, "{stats:?}");
    assert!(stats.duplicated > 0, "{stats:?}");
    assert!(stats.reordered > 0, "{stats:?}");
}

#[test]
fn a_closed_link_closes_its_socket_and_the_peer_sees_it() {
    let mut net = run(Faults::default());
    let b = net.id(1);
    let link = net.stations[0]
        .node
        .links()
        .find(|l| l.peer == Some(b))
        .unwrap()
        .link;
    let now = net.now;
    let close = CloseLink {
        link,
        reason: veil_core::link::CloseReason::Shutdown,
    };
    net.stations[0].node.handle(now, close).unwrap();
    let a = net.id(0);
    assert!(
        net.run_until(Duration::from_secs(10), |n| n.stations[1]
            .events
            .iter()
            .any(
                |e| matches!(e, Event::LinkClosed { peer: Some(p), .. } if *p == a)
            )),
        "B sees A's link close"
    );
    assert!(net.stations[0].driver.socket_of(link).is_none());
}

fn linked_as(st: &Station, peer: NodeId, role: LinkRole) -> bool {
    st.events.iter().any(
        |e| matches!(e, Event::LinkEstablished { peer: p, role: r, .. } if *p == peer && *r == role),
    )
}

#[test]
fn a_program_dial_opens_an_initiator_link_and_carries_a_circuit() {
    // Nobody bootstraps: every link here is one the program dialled.
    let mut net = Net::unlinked(Faults::default());
    let (a, b, c) = (net.id(0), net.id(1), net.id(2));
    let to_b = SocketAddr::V4(SocketAddrV4::new(IPS[1], PORT));
    // One poll first, so that B listens (every idle socket of B does; see
    // tests/simultaneous_connects.rs). A's connection, then C's.
    net.step();
    net.dial(0, to_b, Some(b)).unwrap();
    assert!(net.stations[0].driver.sockets().any(
        |(_, s)| matches!(s, SocketState::Connecting { expected: Some(p), request: None } if p == b)
    ));
    assert!(
        net.run_until(Duration::from_secs(10), |n| {
            linked_as(&n.stations[0], b, LinkRole::Initiator)
                && linked_as(&n.stations[1], a, LinkRole::Responder)
        }),
        "A's program-dialled link established within 10 s"
    );
    net.dial(2, to_b, Some(b)).unwrap();
    assert!(
        net.run_until(Duration::from_secs(10), |n| {
            linked_as(&n.stations[2], b, LinkRole::Initiator)
                && linked_as(&n.stations[1], c, LinkRole::Responder)
        }),
        "C's program-dialled link established within 10 s"
    );
    let link = net.stations[0]
        .node
        .links()
        .find(|l| l.peer == Some(b))
        .unwrap()
        .link;
    assert!(net.stations[0].driver.socket_of(link).is_some());
    // The links carry the protocol: descriptors, then a circuit A -> B -> C.
    assert!(
        net.run_until(Duration::from_secs(30), |n| {
            n.stations[0].node.node_table().get(&c).is_some()
        }),
        "A learned C through B"
    );
    let now = net.now;
    let send = SendMessage {
        destination: c,
        message: b"dialled",
    };
    net.stations[0].node.handle(now, send).unwrap();
    assert!(
        net.run_until(Duration::from_secs(30), |n| !n.stations[2]
            .received
            .is_empty()),
        "message delivered over the program-dialled links"
    );
    assert_eq!(net.stations[2].received[0].0, b"dialled");
}

#[test]
fn a_program_dial_to_the_wrong_node_is_refused_by_the_handshake() {
    let mut net = Net::unlinked(Faults::default());
    let c = net.id(2);
    // B answers at this address, but A expects C there.
    let to_b = SocketAddr::V4(SocketAddrV4::new(IPS[1], PORT));
    net.step();
    net.dial(0, to_b, Some(c)).unwrap();
    assert!(
        net.run_until(Duration::from_secs(10), |n| n.stations[0]
            .events
            .iter()
            .any(|e| matches!(
                e,
                Event::LinkClosed {
                    reason: CloseReason::TransportClosed,
                    ..
                }
            ))),
        // A marks its first message with C's id (link spec §2): B finds no
        // mark it knows, answers nothing and closes the connection.
        "B closes the connection without an answer: {:#?}",
        net.stations[0].events
    );
    assert!(!net.stations[0]
        .events
        .iter()
        .any(|e| matches!(e, Event::LinkEstablished { .. })));
    // The socket is given back once TCP has closed.
    assert!(
        net.run_until(Duration::from_secs(10), |n| n.stations[0]
            .driver
            .sockets()
            .all(|(_, s)| matches!(s, SocketState::Idle | SocketState::Listening))),
        "{:?}",
        net.stations[0].driver.sockets().collect::<Vec<_>>()
    );
}

#[test]
fn a_program_dial_that_tcp_refuses_frees_its_socket() {
    let mut net = Net::unlinked(Faults::default());
    // Nothing listens on B's port 7001: B answers the SYN with a reset.
    let closed_port = SocketAddr::V4(SocketAddrV4::new(IPS[1], PORT + 1));
    net.step();
    net.dial(0, closed_port, None).unwrap();
    assert!(
        net.run_until(Duration::from_secs(10), |n| {
            !n.stations[0]
                .driver
                .sockets()
                .any(|(_, s)| matches!(s, SocketState::Connecting { .. }))
        }),
        "the connect ended"
    );
    assert!(
        net.run_until(Duration::from_secs(5), |n| n.stations[0]
            .driver
            .sockets()
            .all(|(_, s)| matches!(s, SocketState::Idle | SocketState::Listening))),
        "the socket is free again"
    );
    assert!(
        net.stations[0].events.is_empty(),
        "{:?}",
        net.stations[0].events
    );
}

#[test]
fn program_dials_report_why_they_cannot_start() {
    let mut net = Net::unlinked(Faults::default());
    let v6 = SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::LOCALHOST, PORT, 0, 0));
    assert_eq!(net.dial(0, v6, None), Err(DialError::Unaddressable));
    // Before the first poll no socket listens: all SOCKETS can dial, the
    // next finds none free.
    let to_b = SocketAddr::V4(SocketAddrV4::new(IPS[1], PORT));
    for _ in 0..SOCKETS {
        net.dial(0, to_b, None).unwrap();
    }
    assert_eq!(net.dial(0, to_b, None), Err(DialError::NoFreeSocket));
}
