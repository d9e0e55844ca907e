//! Several peers connect to one smoltcp node at the same moment: every idle
//! socket of its driver listens, so all of them are accepted at once (with
//! a single listening socket all but one got a reset, and a program dial is
//! not retried). On a clean in-RAM medium, deterministically.

use core::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use smoltcp::iface::{Config, Interface, SocketSet, SocketStorage};
use smoltcp::socket::tcp;
use smoltcp::wire::{HardwareAddress, IpCidr, Ipv4Address};
use veil_core::identity::{Identity, NodeId};
use veil_core::link::LinkRole;
use veil_core::message::MessageSlot;
use veil_core::node::{Event, LinkSlot, Node, NodeConfig, Output, SetAddresses};
use veil_core::time::{Duration, Instant};
use veil_smoltcp::medium::{Faults, Hub};
use veil_smoltcp::{
    tcp_address, to_smoltcp_instant, DialError, Driver, DriverConfig, EmbeddedProfile, Slot,
    SocketState,
};

const MSG: usize = veil_smoltcp::EMBEDDED_MESSAGE;
/// Link slots of every node: 3 inbound ones (the core keeps one of 4 for
/// its own dials), one per network, so the server admits all 3 dialers.
const LINKS: usize = 4;
/// The server's sockets: one per link, no spare beyond them.
const SOCKETS: usize = LINKS;
const PORT: u16 = 7_000;
/// Station 0 serves; 1..=3 dial it. Each in its own /16, so that the core's
/// per-network limit on inbound links admits each.
const IPS: [Ipv4Addr; 4] = [
    Ipv4Addr::new(10, 1, 0, 2),
    Ipv4Addr::new(10, 2, 0, 2),
    Ipv4Addr::new(10, 3, 0, 2),
    Ipv4Addr::new(10, 4, 0, 2),
];
const DIALERS: [usize; 3] = [1, 2, 3];

type TestHub = Hub<4, 32, 1_500>;

struct Station {
    node: Box<Node<EmbeddedProfile>>,
    iface: Interface,
    sockets: SocketSet<'static>,
    driver: Driver<'static>,
    events: Vec<Event>,
}

fn leak<T: Clone>(value: T, n: usize) -> &'static mut [T] {
    Box::leak(vec![value; n].into_boxed_slice())
}

fn station(hub: &mut TestHub, index: usize, listen: bool) -> Station {
    let ip = IPS[index];
    let mut config = Config::new(HardwareAddress::Ip);
    config.random_seed = 0xc0ff_ee00 + index as u64;
    let mut iface = Interface::new(
        config,
        &mut hub.port(index),
        to_smoltcp_instant(Instant::ZERO),
    );
    iface.update_ip_addrs(|addrs| addrs.push(IpCidr::new(ip.into(), 16)).unwrap());
    let [a, b, ..] = ip.octets();
    iface
        .routes_mut()
        .add_default_ipv4_route(Ipv4Address::new(a, b, 0, 1))
        .unwrap();
    let mut sockets =
        SocketSet::new(Box::leak(Box::new([SocketStorage::EMPTY; SOCKETS])) as &mut [_]);
    let slots: Vec<Slot> = (0..SOCKETS)
        .map(|_| {
            Slot::new(sockets.add(tcp::Socket::new(
                tcp::SocketBuffer::new(leak(0u8, 2_048)),
                tcp::SocketBuffer::new(leak(0u8, 2_048)),
            )))
        })
        .collect();
    let driver = Driver::new(
        DriverConfig {
            listen_port: listen.then_some(PORT),
            first_local_port: 50_000 + 100 * index as u16,
            ..DriverConfig::default()
        },
        slots.leak(),
    );
    let mut node = Box::new(Node::new(
        NodeConfig {
            extend_to_private_addresses: true,
            ..NodeConfig::default()
        },
        Identity::from_secret_bytes([index as u8 + 1; 32]),
        [0x60 + index as u8; 32],
        Box::leak((0..LINKS).map(|_| LinkSlot::new()).collect::<Box<[_]>>()),
        Box::leak((0..4).map(|_| MessageSlot::new()).collect::<Box<[_]>>()),
    ));
    node.handle(
        Instant::ZERO,
        SetAddresses::from_slice(&[tcp_address(ip, PORT)]),
    );
    Station {
        node,
        iface,
        sockets,
        driver,
        events: Vec::new(),
    }
}

struct Net {
    hub: TestHub,
    stations: Vec<Station>,
    now: Instant,
}

impl Net {
    /// Station 0 listens; the others only dial.
    fn new() -> Net {
        let mut hub = TestHub::new(IPS, Faults::default(), 0x0bad_cafe);
        let stations = (0..IPS.len())
            .map(|i| station(&mut hub, i, i == 0))
            .collect();
        Net {
            hub,
            stations,
            now: Instant::ZERO,
        }
    }

    fn id(&self, i: usize) -> NodeId {
        self.stations[i].node.node_id()
    }

    fn dial(&mut self, from: usize, to: usize) -> Result<(), DialError> {
        let addr = SocketAddr::V4(SocketAddrV4::new(IPS[to], PORT));
        let expected = Some(self.id(to));
        let st = &mut self.stations[from];
        st.driver
            .dial(&mut st.iface, &mut st.sockets, addr, expected)
    }

    /// Polls every station in order, then moves the clock by 1 ms: what a
    /// station sends in one step reaches the others in the next.
    fn step(&mut self) {
        let now = self.now;
        for (i, st) in self.stations.iter_mut().enumerate() {
            let Station {
                node,
                iface,
                sockets,
                driver,
                events,
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
                    |_, output| {
                        if let Output::Event(event) = output {
                            events.push(event);
                        }
                    },
                )
                .unwrap();
        }
        self.now = now.saturating_add(Duration::from_millis(1));
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

    /// The server's sockets in each driver state.
    fn server_sockets(&self, state: fn(&SocketState) -> bool) -> usize {
        self.stations[0]
            .driver
            .sockets()
            .filter(|(_, s)| state(s))
            .count()
    }
}

fn linked_as(st: &Station, peer: NodeId, role: LinkRole) -> bool {
    st.events.iter().any(
        |e| matches!(e, Event::LinkEstablished { peer: p, role: r, .. } if *p == peer && *r == role),
    )
}

#[test]
fn three_peers_connecting_at_once_are_all_accepted() {
    let mut net = Net::new();
    let server = net.id(0);
    // One poll: every socket of the server listens.
    net.step();
    assert_eq!(
        net.server_sockets(|s| matches!(s, SocketState::Listening)),
        SOCKETS
    );
    // All three connect in the same step, so their SYNs reach the server in
    // one poll of its interface.
    for d in DIALERS {
        net.dial(d, 0).unwrap();
    }
    net.step();
    assert_eq!(
        net.hub.stats().delivered,
        DIALERS.len() as u64,
        "the three SYNs, nothing else"
    );
    // The server's next poll answers all three: three sockets hold a
    // connection (with one listener, two SYNs got a reset).
    net.step();
    assert_eq!(
        net.stations[0]
            .driver
            .sockets()
            .filter(|&(h, _)| matches!(
                net.stations[0].sockets.get::<tcp::Socket>(h).state(),
                tcp::State::SynReceived | tcp::State::Established
            ))
            .count(),
        DIALERS.len()
    );
    assert!(
        net.run_until(Duration::from_secs(2), |n| {
            DIALERS.iter().all(|&d| {
                linked_as(&n.stations[d], server, LinkRole::Initiator)
                    && linked_as(&n.stations[0], n.id(d), LinkRole::Responder)
            })
        }),
        "all three links up within 2 s: server {:#?}, sockets {:?}",
        net.stations[0].events,
        net.stations[0].driver.sockets().collect::<Vec<_>>()
    );
    // Nothing was refused or reset: every connection the dialers opened is
    // the one their link runs on, and the server's fourth socket listens.
    for d in DIALERS {
        assert!(!net.stations[d]
            .events
            .iter()
            .any(|e| matches!(e, Event::LinkClosed { .. })));
    }
    assert_eq!(
        net.server_sockets(|s| matches!(s, SocketState::Linked(_))),
        3
    );
    assert_eq!(
        net.server_sockets(|s| matches!(s, SocketState::Listening)),
        1
    );
}

#[test]
fn a_dial_takes_a_listening_socket_but_not_one_answering_a_syn() {
    let mut net = Net::new();
    let server = net.id(0);
    net.step();
    // Station 1's SYN reaches the server's first listening socket, which
    // answers it (SynReceived) in the server's next poll.
    net.dial(1, 0).unwrap();
    net.step();
    net.step();
    assert_eq!(
        net.stations[0]
            .driver
            .sockets()
            .filter(|&(h, s)| s == SocketState::Listening
                && net.stations[0].sockets.get::<tcp::Socket>(h).state() == tcp::State::SynReceived)
            .count(),
        1
    );
    // The server dials from each socket still only listening, then has none.
    for to in [2, 3, 2] {
        net.dial(0, to).unwrap();
    }
    assert_eq!(net.dial(0, 3), Err(DialError::NoFreeSocket));
    assert_eq!(
        net.server_sockets(|s| matches!(s, SocketState::Connecting { .. })),
        3
    );
    // The half-open connection was left alone and becomes station 1's link.
    assert!(
        net.run_until(Duration::from_secs(2), |n| {
            linked_as(&n.stations[1], server, LinkRole::Initiator)
                && linked_as(&n.stations[0], n.id(1), LinkRole::Responder)
        }),
        "station 1's link up within 2 s"
    );
}
