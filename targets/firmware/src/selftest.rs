//! The self-test: three nodes on smoltcp interfaces over a medium in RAM
//! complete link handshakes, exchange descriptors, build a circuit
//! A → B → C and carry a message and its reply.

use core::net::Ipv4Addr;

use heapless::Vec;
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet, SocketStorage};
use smoltcp::socket::tcp;
use smoltcp::wire::{HardwareAddress, IpCidr, Ipv4Address};
use static_cell::{ConstStaticCell, StaticCell};
use veil_core::identity::{Identity, NodeId};
use veil_core::message::{MessageSlot, Sender};
use veil_core::node::{
    AddBootstrap, Event, LinkSlot, Node, NodeConfig, Output, Reply, SendMessage, SetAddresses,
};
use veil_core::time::{Duration, Instant};
use veil_smoltcp::medium::{Faults, Hub};
use veil_smoltcp::{tcp_address, to_smoltcp_instant, Driver, DriverConfig, Slot};

use crate::profile::*;
use crate::statics::{fill, place};

const PORT: u16 = 7_000;
const UNIX_AT_ZERO: u64 = 1_800_000_000;
/// The whole test must finish within this much simulated time.
const LIMIT: Duration = Duration::from_secs(120);
const MESSAGE: &[u8] = b"hello C, this is A, through B, over smoltcp TCP in RAM";
const REPLY: &[u8] = b"pong from C";

type Medium = Hub<3, FRAMES, MTU>;

/// What the self-test measured.
#[derive(Debug)]
pub struct Report {
    /// Simulated time until every link was up.
    pub links_ms: u64,
    /// Simulated time until A's circuit to C was ready.
    pub circuit_ms: u64,
    /// Simulated time until A had the reply and the acknowledgement.
    pub done_ms: u64,
    /// Station polls in all.
    pub polls: u32,
}

// Everything big lives in static RAM (.bss), built at boot (`statics.rs`).
const ALL_LINKS: usize = 2 * ENDPOINT_LINKS + RELAY_LINKS;
static LINKS: ConstStaticCell<Vec<LinkSlot<FirmwareProfile>, ALL_LINKS>> =
    ConstStaticCell::new(Vec::new());
static MESSAGE_POOLS: ConstStaticCell<[MessageSlot<[u8; MSG]>; 3 * MESSAGES]> =
    ConstStaticCell::new([const { MessageSlot::new() }; 3 * MESSAGES]);
/// The one buffer every station drains its node into (they run in turn).
static DRAIN: ConstStaticCell<[u8; DRAIN_BUFFER]> = ConstStaticCell::new([0; DRAIN_BUFFER]);
static NODE_A: StaticCell<VeilNode> = StaticCell::new();
static NODE_B: StaticCell<VeilNode> = StaticCell::new();
static NODE_C: StaticCell<VeilNode> = StaticCell::new();
/// Receive and transmit buffers of every socket of the three nodes.
const ALL_SOCKETS: usize = 2 * ENDPOINT_SOCKETS + RELAY_SOCKETS;
static SOCKET_STORAGE: ConstStaticCell<Vec<SocketStorage<'static>, ALL_SOCKETS>> =
    ConstStaticCell::new(Vec::new());
static SLOTS: ConstStaticCell<Vec<Slot, ALL_SOCKETS>> = ConstStaticCell::new(Vec::new());
static TCP_RX_BUFFERS: ConstStaticCell<[[u8; TCP_RX]; ALL_SOCKETS]> =
    ConstStaticCell::new([[0; TCP_RX]; ALL_SOCKETS]);
static TCP_TX_BUFFERS: ConstStaticCell<[[u8; TCP_TX]; ALL_SOCKETS]> =
    ConstStaticCell::new([[0; TCP_TX]; ALL_SOCKETS]);
static MEDIUM: StaticCell<Medium> = StaticCell::new();

const FAULTS: Faults = Faults {
    drop_per_mille: 20,
    duplicate_per_mille: 20,
    reorder_per_mille: 20,
};

/// Distinct /16s: path selection refuses two hops in one network.
const ADDR_A: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 2);
const ADDR_B: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 2);
const ADDR_C: Ipv4Addr = Ipv4Addr::new(10, 3, 0, 2);

/// What a node told its owner, as far as the test cares.
#[derive(Debug)]
struct Log {
    links: u32,
    circuit_ready: bool,
    acknowledged: bool,
    failed: bool,
    /// The length and sender of the message taken into `message`.
    received: Option<(usize, Sender)>,
    message: [u8; MSG],
}

impl Log {
    const fn new() -> Self {
        Log {
            links: 0,
            circuit_ready: false,
            acknowledged: false,
            failed: false,
            received: None,
            message: [0; MSG],
        }
    }

    /// The message received, if any.
    fn message(&self) -> Option<(&[u8], Sender)> {
        let (len, sender) = self.received?;
        Some((self.message.get(..len)?, sender))
    }
}

struct Station {
    /// `b'A'`, `b'B'` or `b'C'`, for log lines.
    name: u8,
    node: &'static mut VeilNode,
    iface: Interface,
    sockets: SocketSet<'static>,
    driver: Driver<'static>,
    log: Log,
}

/// What makes one station (caller storage and settings).
struct Setup {
    name: u8,
    /// Its port of the medium.
    port: usize,
    addr: Ipv4Addr,
    /// Accept links on `PORT` (B), or only dial (A, C).
    listen: bool,
    cell: &'static StaticCell<VeilNode>,
    links: &'static mut [LinkSlot<FirmwareProfile>],
    pool: &'static mut [MessageSlot<[u8; MSG]>],
    storage: &'static mut [SocketStorage<'static>],
    slots: &'static mut [Slot],
}

/// The socket buffers not handed out yet.
type Buffers = (
    core::slice::IterMut<'static, [u8; TCP_RX]>,
    core::slice::IterMut<'static, [u8; TCP_TX]>,
);

impl Station {
    /// Builds the node in its cell, its interface on the medium, and its
    /// sockets with the next buffers. Not inlined: one copy for three
    /// stations.
    #[inline(never)]
    fn new(setup: Setup, medium: &mut Medium, buffers: &mut Buffers) -> Result<Self, &'static str> {
        let Setup {
            name,
            port,
            addr,
            listen,
            cell,
            links,
            pool,
            storage,
            slots,
        } = setup;
        let key = name - b'A' + 1;
        let node = place(cell, || {
            Node::new(
                node_config(),
                Identity::from_secret_bytes([key; 32]),
                [0x40 + key; 32],
                links,
                pool,
            )
        });
        node.handle(
            Instant::ZERO,
            SetAddresses::from_slice(&[tcp_address(addr, PORT)]),
        );
        let mut sockets = SocketSet::new(storage);
        add_sockets(&mut sockets, slots, &mut buffers.0, &mut buffers.1)?;
        let config = DriverConfig {
            listen_port: listen.then_some(PORT),
            // Distinct per station; a board picks it from its RNG.
            first_local_port: 50_000 + 1_000 * port as u16,
            ..DriverConfig::default()
        };
        Ok(Station {
            name,
            node,
            iface: interface(medium, port, addr),
            sockets,
            driver: Driver::new(config, slots),
            log: Log::new(),
        })
    }

    /// Drains the node into `drain` (a static buffer, not the stack,
    /// which is deepest here).
    fn poll(
        &mut self,
        now: Instant,
        medium: &mut Medium,
        port: usize,
        drain: &mut [u8],
    ) -> Result<(), &'static str> {
        crate::logger::set_node(self.name);
        let log = &mut self.log;
        let polled = self.driver.poll(
            now,
            &mut *self.node,
            &mut self.iface,
            &mut medium.port(port),
            &mut self.sockets,
            drain,
            |_, output| match output {
                Output::Event(Event::LinkEstablished { .. }) => log.links += 1,
                Output::Event(Event::CircuitReady { .. }) => log.circuit_ready = true,
                Output::Event(Event::MessageAcknowledged { .. }) => log.acknowledged = true,
                Output::Event(Event::MessageFailed { .. }) => log.failed = true,
                Output::Message { message, bytes } => {
                    if let Some(dst) = log.message.get_mut(..bytes.len()) {
                        dst.copy_from_slice(bytes);
                        log.received = Some((bytes.len(), message.sender));
                    }
                }
                _ => {}
            },
        );
        crate::logger::set_node(b'-');
        polled.map_err(|_| "the drain buffer is smaller than the node's outputs")
    }

    fn poll_at(&mut self, now: Instant) -> Instant {
        self.driver.poll_at(now, &mut self.iface, &self.sockets)
    }
}

fn node_config() -> NodeConfig {
    NodeConfig {
        unix_time_at_zero: UNIX_AT_ZERO,
        path_relays: 1,
        gossip_interval: Duration::from_secs(1),
        // A has one link slot, taken by its link to B: its circuit starts
        // over that link, under A's identity, not over a second, anonymous
        // one (relay spec §11; a board with room for two links keeps this on).
        anonymous_first_hops: false,
        ..NodeConfig::default()
    }
}

fn interface(medium: &mut Medium, port: usize, ip: Ipv4Addr) -> Interface {
    let mut config = Config::new(HardwareAddress::Ip);
    // A board takes this from its hardware RNG; the test counts.
    config.random_seed = 0x1000 + port as u64;
    let mut iface = Interface::new(
        config,
        &mut medium.port(port),
        to_smoltcp_instant(Instant::ZERO),
    );
    iface.update_ip_addrs(|addrs| {
        let _ = addrs.push(IpCidr::new(ip.into(), 16));
    });
    let [a, b, ..] = ip.octets();
    let _ = iface
        .routes_mut()
        .add_default_ipv4_route(Ipv4Address::new(a, b, 0, 1));
    iface
}

/// Adds `slots.len()` TCP sockets to `sockets`, with the next buffers.
fn add_sockets(
    sockets: &mut SocketSet<'static>,
    slots: &mut [Slot],
    rx: &mut core::slice::IterMut<'static, [u8; TCP_RX]>,
    tx: &mut core::slice::IterMut<'static, [u8; TCP_TX]>,
) -> Result<(), &'static str> {
    for slot in slots.iter_mut() {
        let (Some(r), Some(t)) = (rx.next(), tx.next()) else {
            return Err("socket buffers ran out");
        };
        *slot = Slot::new(sockets.add(tcp::Socket::new(
            tcp::SocketBuffer::new(&mut r[..]),
            tcp::SocketBuffer::new(&mut t[..]),
        )));
    }
    Ok(())
}

fn ms(t: Instant) -> u64 {
    t.as_micros() / 1_000
}

/// Runs the self-test.
pub fn run() -> Result<Report, &'static str> {
    let medium = place(&MEDIUM, || {
        Hub::new([ADDR_A, ADDR_B, ADDR_C], FAULTS, 0x5eed)
    });
    let rx = TCP_RX_BUFFERS.take().iter_mut();
    let tx = TCP_TX_BUFFERS.take().iter_mut();
    let now = Instant::ZERO;

    let links = fill(LINKS.take(), LinkSlot::new);
    let (a_links, rest) = links.split_at_mut(ENDPOINT_LINKS);
    let (b_links, c_links) = rest.split_at_mut(RELAY_LINKS);
    let pools = MESSAGE_POOLS.take();
    let (a_pool, rest) = pools.split_at_mut(MESSAGES);
    let (b_pool, c_pool) = rest.split_at_mut(MESSAGES);
    let storage = fill(SOCKET_STORAGE.take(), || SocketStorage::EMPTY);
    let (a_storage, rest) = storage.split_at_mut(ENDPOINT_SOCKETS);
    let (b_storage, c_storage) = rest.split_at_mut(RELAY_SOCKETS);
    let slots = fill(SLOTS.take(), || Slot::new(SocketHandle::default()));
    let (a_slots, rest) = slots.split_at_mut(ENDPOINT_SOCKETS);
    let (b_slots, c_slots) = rest.split_at_mut(RELAY_SOCKETS);
    let mut buffers = (rx, tx);
    // Fixed identities and counter seeds: see the crate docs.
    let mut a = Station::new(
        Setup {
            name: b'A',
            port: 0,
            addr: ADDR_A,
            listen: false,
            cell: &NODE_A,
            links: a_links,
            pool: a_pool,
            storage: a_storage,
            slots: a_slots,
        },
        medium,
        &mut buffers,
    )?;
    let mut b = Station::new(
        Setup {
            name: b'B',
            port: 1,
            addr: ADDR_B,
            listen: true,
            cell: &NODE_B,
            links: b_links,
            pool: b_pool,
            storage: b_storage,
            slots: b_slots,
        },
        medium,
        &mut buffers,
    )?;
    let mut c = Station::new(
        Setup {
            name: b'C',
            port: 2,
            addr: ADDR_C,
            listen: false,
            cell: &NODE_C,
            links: c_links,
            pool: c_pool,
            storage: c_storage,
            slots: c_slots,
        },
        medium,
        &mut buffers,
    )?;
    let bootstrap = AddBootstrap::address(tcp_address(ADDR_B, PORT));
    if a.node.handle(now, bootstrap).is_err() || c.node.handle(now, bootstrap).is_err() {
        return Err("bootstrap list refused B");
    }
    let drain = DRAIN.take();
    let (a_id, c_id): (NodeId, NodeId) = (a.node.node_id(), c.node.node_id());

    let mut now = now;
    let mut polls = 0u32;
    let mut sent = false;
    let mut replied = false;
    let (mut links_ms, mut circuit_ms) = (None, None);
    defmt::info!("three nodes built; A and C dial B");
    while now < Instant::ZERO.saturating_add(LIMIT) {
        crate::logger::set_time_ms(u32::try_from(ms(now)).unwrap_or(u32::MAX));
        a.poll(now, medium, 0, drain)?;
        b.poll(now, medium, 1, drain)?;
        c.poll(now, medium, 2, drain)?;
        polls += 3;

        if links_ms.is_none() && a.log.links >= 1 && b.log.links >= 2 && c.log.links >= 1 {
            links_ms = Some(ms(now));
            defmt::info!("links up: A-B and C-B");
        }
        if a.log.circuit_ready && circuit_ms.is_none() {
            circuit_ms = Some(ms(now));
            defmt::info!("A's circuit to C through B is ready");
        }
        if !sent && a.node.node_table().get(&c_id).is_some() {
            let send = SendMessage {
                destination: c_id,
                message: MESSAGE,
            };
            a.node
                .handle(now, send)
                .map_err(|_| "A could not queue the message")?;
            defmt::info!(
                "A learned C's descriptor and sent C {=usize} bytes",
                MESSAGE.len()
            );
            sent = true;
        }
        if !replied {
            if let Some((message, sender)) = c.log.message() {
                if message != MESSAGE {
                    return Err("C received a different message");
                }
                let Sender::Anonymous(to) = sender else {
                    return Err("C learned who sent the message");
                };
                let reply = Reply { to, message: REPLY };
                c.node
                    .handle(now, reply)
                    .map_err(|_| "C could not queue the reply")?;
                defmt::info!("C got the message from an anonymous sender and replied");
                replied = true;
            }
        }
        if a.log.failed || c.log.failed {
            return Err("a message failed");
        }
        if let Some((message, sender)) = a.log.message() {
            if message != REPLY || sender != Sender::Node(c_id) {
                return Err("A received a wrong reply");
            }
            if a.log.acknowledged && c.log.acknowledged {
                if b.log.received.is_some() || b.node.circuit_counts().0 != 1 {
                    return Err("B did not relay exactly one circuit");
                }
                if b.node.node_table().get(&a_id).is_none() {
                    return Err("B did not learn A's descriptor");
                }
                defmt::info!(
                    "A got C's reply; both ends acknowledged; B relayed; hub {}",
                    medium.stats()
                );
                return Ok(Report {
                    links_ms: links_ms.unwrap_or(0),
                    circuit_ms: circuit_ms.unwrap_or(0),
                    done_ms: ms(now),
                    polls,
                });
            }
        }

        // A little time if packets are in flight, else the next deadline.
        let soon = now.saturating_add(Duration::from_micros(200));
        let next = if medium.in_flight() > 0 {
            soon
        } else {
            [a.poll_at(now), b.poll_at(now), c.poll_at(now)]
                .into_iter()
                .min()
                .unwrap_or(now)
                .clamp(soon, now.saturating_add(Duration::from_secs(1)))
        };
        now = next;
    }
    if links_ms.is_none() {
        Err("links did not come up")
    } else if !sent {
        Err("A never learned C's descriptor")
    } else if circuit_ms.is_none() {
        Err("the circuit was not built")
    } else {
        Err("the message and its reply did not arrive in time")
    }
}
