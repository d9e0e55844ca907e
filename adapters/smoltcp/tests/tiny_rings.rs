//! The firmware self-test (targets/firmware/src/selftest.rs) on the host,
//! with the image's parameters: a hub with 3-packet rings and a 320-byte
//! MTU, 384-byte receive and 640-byte transmit buffers per TCP socket,
//! 2 % drop, duplicate and reorder, the image's node profile (one link per
//! endpoint, two and a spare socket for the relay B, which alone listens).
//! A sends C a message over a circuit through B; C replies.
//!
//! `VEIL_TRACE=1` prints every TCP segment the hub carries (time, ports,
//! flags, seq, ack, window, payload length).

use core::net::Ipv4Addr;

use smoltcp::iface::{Config, Interface, SocketSet, SocketStorage};
use smoltcp::phy::{self, Device, DeviceCapabilities};
use smoltcp::socket::tcp;
use smoltcp::time::Instant as NetInstant;
use smoltcp::wire::{HardwareAddress, IpCidr, Ipv4Address};
use veil_core::identity::{Identity, NodeId};
use veil_core::message::{MessageSlot, Sender};
use veil_core::node::{
    AddBootstrap, Event, LinkSlot, Node, NodeConfig, Output, Reply, SendMessage, SetAddresses,
};
use veil_core::time::{Duration, Instant};
use veil_smoltcp::medium::{Faults, Hub, Port};
use veil_smoltcp::{tcp_address, to_smoltcp_instant, Driver, DriverConfig, Slot};

// The image's profile (targets/firmware/src/profile.rs).
const RX: usize = 600;
const TXQ: usize = 4;
const MSG: usize = 256;
const MESSAGES: usize = 2;
const TCP_RX: usize = 384;
const TCP_TX: usize = 640;
const MTU: usize = 320;
const FRAMES: usize = 3;

veil_core::node_profile! {
    /// The firmware image's capacities.
    pub struct FirmwareProfile {
        link_receive: RX,
        link_send_queue: TXQ,
        events: 2,
        peers: 2,
        relayed: 1,
        own: 1,
        message: MSG,
        links: &'static mut [LinkSlot<FirmwareProfile>],
        messages: &'static mut [MessageSlot<[u8; MSG]>],
        replay_marks: 4,
    }
}

type VeilNode = Node<FirmwareProfile>;
type Medium = Hub<3, FRAMES, MTU>;

const PORT: u16 = 7_000;
const UNIX_AT_ZERO: u64 = 1_800_000_000;
const MESSAGE: &[u8] = b"hello C, this is A, through B, over smoltcp TCP in RAM";
const REPLY: &[u8] = b"pong from C";
const ADDRS: [Ipv4Addr; 3] = [
    Ipv4Addr::new(10, 1, 0, 2),
    Ipv4Addr::new(10, 2, 0, 2),
    Ipv4Addr::new(10, 3, 0, 2),
];

/// A hub port that prints the TCP segments sent through it.
struct Traced<'p, 'h> {
    port: &'p mut Port<'h, 3, FRAMES, MTU>,
    now: Instant,
    trace: bool,
}

struct TracedTx<T> {
    inner: T,
    now: Instant,
    trace: bool,
}

impl<T: phy::TxToken> phy::TxToken for TracedTx<T> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let (now, trace) = (self.now, self.trace);
        self.inner.consume(len, |buf| {
            let r = f(buf);
            if trace {
                print_segment(now, buf);
            }
            r
        })
    }
}

fn print_segment(now: Instant, p: &[u8]) {
    if p.len() < 40 || p[9] != 6 {
        return;
    }
    let ihl = usize::from(p[0] & 15) * 4;
    let total = usize::from(u16::from_be_bytes([p[2], p[3]]));
    let t = &p[ihl..];
    let be16 = |i: usize| u16::from_be_bytes([t[i], t[i + 1]]);
    let be32 = |i: usize| u32::from_be_bytes([t[i], t[i + 1], t[i + 2], t[i + 3]]);
    let off = usize::from(t[12] >> 4) * 4;
    let flags = t[13];
    let names = [(2, 'S'), (16, '.'), (1, 'F'), (4, 'R'), (8, 'P')];
    let f: String = names
        .iter()
        .filter(|(b, _)| flags & b != 0)
        .map(|(_, c)| *c)
        .collect();
    let mut opts = String::new();
    let mut i = 20;
    while i < off {
        match t[i] {
            0 => break,
            1 => i += 1,
            k => {
                let l = usize::from(t[i + 1]).max(2);
                match k {
                    2 => opts += &format!(" mss={}", be16(i + 2)),
                    3 => opts += &format!(" ws={}", t[i + 2]),
                    4 => opts += " sackok",
                    5 => opts += " sack",
                    8 => opts += " ts",
                    _ => opts += &format!(" opt{k}"),
                }
                i += l;
            }
        }
    }
    println!(
        "{:>10.3} {}.{}:{} > {}.{}:{} {:<3} seq={} ack={} win={} len={}{}",
        now.as_micros() as f64 / 1e6,
        p[14],
        p[15],
        be16(0),
        p[18],
        p[19],
        be16(2),
        f,
        be32(4),
        be32(8),
        be16(14),
        total - ihl - off,
        opts
    );
}

impl Device for Traced<'_, '_> {
    type RxToken<'a>
        = <Port<'static, 3, FRAMES, MTU> as Device>::RxToken<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = TracedTx<<Port<'a, 3, FRAMES, MTU> as Device>::TxToken<'a>>
    where
        Self: 'a;

    fn receive(&mut self, t: NetInstant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let (now, trace) = (self.now, self.trace);
        self.port
            .receive(t)
            .map(|(rx, inner)| (rx, TracedTx { inner, now, trace }))
    }

    fn transmit(&mut self, t: NetInstant) -> Option<Self::TxToken<'_>> {
        let (now, trace) = (self.now, self.trace);
        self.port
            .transmit(t)
            .map(|inner| TracedTx { inner, now, trace })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.port.capabilities()
    }
}

#[derive(Default)]
struct Log {
    links: u32,
    circuit_ready: bool,
    acknowledged: bool,
    failed: bool,
    received: Option<(Vec<u8>, Sender)>,
}

struct Station {
    node: Box<VeilNode>,
    iface: Interface,
    sockets: SocketSet<'static>,
    driver: Driver<'static>,
    log: Log,
}

fn leak<T: Clone>(value: T, n: usize) -> &'static mut [T] {
    Box::leak(vec![value; n].into_boxed_slice())
}

fn station(medium: &mut Medium, port: usize, links: usize, listen: bool) -> Station {
    let key = port as u8 + 1;
    let addr = ADDRS[port];
    let config = NodeConfig {
        unix_time_at_zero: UNIX_AT_ZERO,
        path_relays: 1,
        gossip_interval: Duration::from_secs(1),
        anonymous_first_hops: false,
        ..NodeConfig::default()
    };
    let link_slots = Box::leak((0..links).map(|_| LinkSlot::new()).collect::<Box<[_]>>());
    let pool = Box::leak(
        (0..MESSAGES)
            .map(|_| MessageSlot::new())
            .collect::<Box<[_]>>(),
    );
    let mut node = Box::new(Node::new(
        config,
        Identity::from_secret_bytes([key; 32]),
        [0x40 + key; 32],
        link_slots,
        pool,
    ));
    node.handle(
        Instant::ZERO,
        SetAddresses::from_slice(&[tcp_address(addr, PORT)]),
    );
    let sockets_n = if listen { links + 1 } else { links };
    let mut sockets = SocketSet::new(Box::leak(
        (0..sockets_n)
            .map(|_| SocketStorage::EMPTY)
            .collect::<Box<[_]>>(),
    ));
    let slots: Vec<Slot> = (0..sockets_n)
        .map(|_| {
            Slot::new(sockets.add(tcp::Socket::new(
                tcp::SocketBuffer::new(leak(0u8, TCP_RX)),
                tcp::SocketBuffer::new(leak(0u8, TCP_TX)),
            )))
        })
        .collect();
    let driver = Driver::new(
        DriverConfig {
            listen_port: listen.then_some(PORT),
            first_local_port: 50_000 + 1_000 * port as u16,
            ..DriverConfig::default()
        },
        slots.leak(),
    );
    let mut cfg = Config::new(HardwareAddress::Ip);
    cfg.random_seed = 0x1000 + port as u64;
    let mut iface = Interface::new(
        cfg,
        &mut medium.port(port),
        to_smoltcp_instant(Instant::ZERO),
    );
    iface.update_ip_addrs(|addrs| {
        addrs.push(IpCidr::new(addr.into(), 16)).unwrap();
    });
    let [a, b, ..] = addr.octets();
    iface
        .routes_mut()
        .add_default_ipv4_route(Ipv4Address::new(a, b, 0, 1))
        .unwrap();
    Station {
        node,
        iface,
        sockets,
        driver,
        log: Log::default(),
    }
}

impl Station {
    fn poll(&mut self, now: Instant, medium: &mut Medium, port: usize, trace: bool) {
        let log = &mut self.log;
        let mut buf = [0u8; 1024];
        let mut p = medium.port(port);
        let mut device = Traced {
            port: &mut p,
            now,
            trace,
        };
        self.driver
            .poll(
                now,
                &mut *self.node,
                &mut self.iface,
                &mut device,
                &mut self.sockets,
                &mut buf,
                |_, output| match output {
                    Output::Event(Event::LinkEstablished { .. }) => log.links += 1,
                    Output::Event(Event::CircuitReady { .. }) => log.circuit_ready = true,
                    Output::Event(Event::MessageAcknowledged { .. }) => log.acknowledged = true,
                    Output::Event(Event::MessageFailed { .. }) => log.failed = true,
                    Output::Message { message, bytes } => {
                        log.received = Some((bytes.to_vec(), message.sender))
                    }
                    _ => {}
                },
            )
            .unwrap();
    }
}

/// Runs the self-test; returns the simulated milliseconds it took.
fn run(faults: Faults, seed: u64, limit: Duration) -> Result<u64, String> {
    let trace = std::env::var_os("VEIL_TRACE").is_some();
    let mut medium = Box::new(Medium::new(ADDRS, faults, seed));
    let mut st = [
        station(&mut medium, 0, 1, false),
        station(&mut medium, 1, 2, true),
        station(&mut medium, 2, 1, false),
    ];
    let bootstrap = AddBootstrap::address(tcp_address(ADDRS[1], PORT));
    st[0].node.handle(Instant::ZERO, bootstrap).unwrap();
    st[2].node.handle(Instant::ZERO, bootstrap).unwrap();
    let (a_id, c_id): (NodeId, NodeId) = (st[0].node.node_id(), st[2].node.node_id());
    let mut now = Instant::ZERO;
    let (mut sent, mut replied) = (false, false);
    let mut stage = "links did not come up";
    while now < Instant::ZERO.saturating_add(limit) {
        for (i, s) in st.iter_mut().enumerate() {
            s.poll(now, &mut medium, i, trace);
        }
        let [a, b, c] = &mut st;
        if a.log.links >= 1 && b.log.links >= 2 && c.log.links >= 1 && !sent {
            stage = "A never learned C's descriptor";
        }
        if !sent && a.node.node_table().get(&c_id).is_some() {
            a.node
                .handle(
                    now,
                    SendMessage {
                        destination: c_id,
                        message: MESSAGE,
                    },
                )
                .unwrap();
            sent = true;
            stage = "the circuit was not built";
        }
        if a.log.circuit_ready {
            stage = "the message and its reply did not arrive in time";
        }
        if !replied {
            if let Some((message, sender)) = &c.log.received {
                assert_eq!(message, MESSAGE);
                let Sender::Anonymous(to) = *sender else {
                    panic!("C learned who sent the message");
                };
                c.node.handle(now, Reply { to, message: REPLY }).unwrap();
                replied = true;
            }
        }
        if a.log.failed || c.log.failed {
            for s in st.iter() {
                eprintln!(
                    "links_closed {} {:?}",
                    s.node.stats().links_closed,
                    s.node.stats().cells_dropped
                );
            }
            return Err(format!(
                "a message failed at {} ms; hub {:?}",
                now.as_micros() / 1000,
                medium.stats()
            ));
        }
        if let Some((message, sender)) = &a.log.received {
            assert_eq!(message, REPLY);
            assert_eq!(*sender, Sender::Node(c_id));
            if a.log.acknowledged && c.log.acknowledged {
                assert!(b.log.received.is_none());
                assert_eq!(b.node.circuit_counts().0, 1);
                assert!(b.node.node_table().get(&a_id).is_some());
                eprintln!("hub {:?}", medium.stats());
                return Ok(now.as_micros() / 1_000);
            }
        }
        let soon = now.saturating_add(Duration::from_micros(200));
        now = if medium.in_flight() > 0 {
            soon
        } else {
            st.iter_mut()
                .map(|s| s.driver.poll_at(now, &mut s.iface, &s.sockets))
                .min()
                .unwrap_or(now)
                .clamp(soon, now.saturating_add(Duration::from_secs(1)))
        };
    }
    for (i, s) in st.iter().enumerate() {
        eprintln!(
            "station {i}: links {:?}\n  sockets {:?}\n  stats {:?}",
            s.node.links().collect::<Vec<_>>(),
            s.driver.sockets().collect::<Vec<_>>(),
            s.node.stats()
        );
        for (h, _) in s.driver.sockets() {
            let sock = s.sockets.get::<tcp::Socket>(h);
            eprintln!(
                "  {h}: {} send_queue {} recv_queue {} window? local {:?} remote {:?}",
                sock.state(),
                sock.send_queue(),
                sock.recv_queue(),
                sock.local_endpoint(),
                sock.remote_endpoint()
            );
        }
    }
    Err(format!("{stage}; hub {:?}", medium.stats()))
}

const FAULTS: Faults = Faults {
    drop_per_mille: 20,
    duplicate_per_mille: 20,
    reorder_per_mille: 20,
};

/// The self-test exactly: the image's seed (`SEED` overrides it), 120 s
/// simulated; seeds 1..=8 pass too. With the 2-packet rings and 512-byte
/// windows the image had under smoltcp 0.12 it fails with 0.14 even with
/// the driver's bounded egress: RFC 6298's 1 s minimum RTO (0.12: 10 ms)
/// makes each packet lost to a full ring cost a second or more, with
/// exponential back-off (docs/dependencies.md).
#[test]
fn the_firmware_self_test_passes_on_tiny_rings() {
    let seed = std::env::var("SEED")
        .map(|s| s.parse().unwrap())
        .unwrap_or(0x5eed);
    let ms = run(FAULTS, seed, Duration::from_secs(120)).unwrap();
    eprintln!("done after {ms} ms simulated");
}

/// Without faults: only the small rings. With smoltcp 0.14 this needs the
/// driver's one segment per socket per interface poll (0.14's
/// `Interface::poll` sends a socket's whole window at once and overflows
/// small rings; on the 2-packet rings the image had, the run then went
/// exactly as with 0.12: 87 packets, 1 025 ms).
#[test]
fn the_firmware_self_test_passes_on_clean_tiny_rings() {
    let ms = run(Faults::default(), 0x5eed, Duration::from_secs(120)).unwrap();
    eprintln!("done after {ms} ms simulated");
}
