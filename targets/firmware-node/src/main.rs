//! veil firmware image for a Cortex-M4F (`thumbv7em-none-eabihf`): one veil
//! node on a LAN9118 Ethernet controller, as a device runs it. Built and
//! run under QEMU's `mps2-an386` (`-nic tap,…,model=lan9118`).
//!
//! At boot it brings up the LAN9118 (`veil-lan9118`), a smoltcp interface
//! with a static address ([`ADDRESS`], default route via [`GATEWAY`]) and
//! its TCP sockets, and one node (`veil-core`, an endpoint: it relays for
//! nobody). The node dials its bootstrap node ([`BOOTSTRAP`], a Linux
//! `veil node`), learns descriptors, builds 3-relay circuits and sends and
//! receives messages (`src/app.rs` says what it sends). Other nodes reach
//! it on [`PORT`] to end their circuits at it.
//!
//! Time is the board's SysTick; wall-clock time, entropy and the identity
//! key come through the [`Board`](board::Board) trait (`src/qemu.rs`: from
//! the host, for testing only). The console (semihosting) reports what
//! happens in plain text; the core and the adapter log through defmt to
//! the host file `veil-firmware.defmt`.
#![no_std]
#![no_main]

mod app;
mod board;
#[path = "../../firmware/src/console.rs"]
mod console;
#[path = "../../firmware/src/logger.rs"]
mod logger;
#[path = "../../firmware/src/panic.rs"]
mod panic;
mod profile;
mod qemu;
#[path = "../../firmware/src/stack.rs"]
mod stack;
#[path = "../../firmware/src/statics.rs"]
mod statics;
#[path = "../../firmware/src/vectors.rs"]
mod vectors;

use core::convert::Infallible;
use core::net::Ipv4Addr;

use cortex_m_rt::entry;
use cortex_m_semihosting::debug;
use heapless::Vec;
use smoltcp::iface::{
    Config as InterfaceConfig, Interface, SocketHandle, SocketSet, SocketStorage,
};
use smoltcp::socket::tcp;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr};
use static_cell::{ConstStaticCell, StaticCell};
use veil_core::identity::Identity;
use veil_core::message::MessageSlot;
use veil_core::node::{AddBootstrap, LinkSlot, Node, NodeConfig, Reachability, SetAddresses};
use veil_lan9118::{Config as ChipConfig, Lan9118, Mmio, MPS2_BASE_ADDRESS};
use veil_smoltcp::{tcp_address, to_smoltcp_instant, Driver, DriverConfig, Slot};
use zeroize::Zeroize;

use app::App;
use board::Board;
use console::{line, Piece::Number as N, Piece::Text as T};
use profile::*;
use qemu::QemuBoard;
use statics::{fill, place};

// The device's network settings: what a device's provisioning sets. The
// addresses are those `targets/node/tests/node/firmware_interop.rs` builds
// around the TAP device.
/// The MAC address (locally administered, unicast).
const MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x53, 0x12];
/// The node's IPv4 address and prefix length.
const ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 202, 0, 2);
const PREFIX_LEN: u8 = 24;
/// The router: the Linux host's end of the TAP device.
const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 202, 0, 1);
/// The TCP port links are accepted on.
const PORT: u16 = 7_000;
/// The bootstrap node: a Linux `veil node`.
const BOOTSTRAP: (Ipv4Addr, u16) = (Ipv4Addr::new(10, 1, 0, 1), 7_000);

// Everything big lives in static RAM (.bss), built at boot (`statics.rs`).
static LINK_SLOTS: ConstStaticCell<Vec<LinkSlot<DeviceProfile>, LINKS>> =
    ConstStaticCell::new(Vec::new());
static MESSAGE_POOL: ConstStaticCell<[MessageSlot<[u8; MSG]>; MESSAGES]> =
    ConstStaticCell::new([const { MessageSlot::new() }; MESSAGES]);
static DRAIN: ConstStaticCell<[u8; DRAIN_BUFFER]> = ConstStaticCell::new([0; DRAIN_BUFFER]);
static NODE: StaticCell<DeviceNode> = StaticCell::new();
static SOCKET_STORAGE: ConstStaticCell<Vec<SocketStorage<'static>, SOCKETS>> =
    ConstStaticCell::new(Vec::new());
static SLOTS: ConstStaticCell<Vec<Slot, SOCKETS>> = ConstStaticCell::new(Vec::new());
static TCP_RX_BUFFERS: ConstStaticCell<[[u8; TCP_RX]; SOCKETS]> =
    ConstStaticCell::new([[0; TCP_RX]; SOCKETS]);
static TCP_TX_BUFFERS: ConstStaticCell<[[u8; TCP_TX]; SOCKETS]> =
    ConstStaticCell::new([[0; TCP_TX]; SOCKETS]);
static ETHERNET: StaticCell<Lan9118<Mmio>> = StaticCell::new();

#[entry]
fn main() -> ! {
    let why = match boot() {
        Err(why) => why,
        Ok(never) => match never {},
    };
    line(&[T("FAIL: "), T(why)]);
    debug::exit(debug::EXIT_FAILURE);
    panic::halt()
}

/// Brings up the QEMU board and runs the node on it.
fn boot() -> Result<Infallible, &'static str> {
    let core = cortex_m::Peripherals::take().ok_or("the core peripherals were taken twice")?;
    let chip = Lan9118::new(chip()?, ChipConfig { mac_address: MAC })
        .map_err(|_| "the LAN9118 did not come up (is QEMU run with -nic …,model=lan9118?)")?;
    let mut board = QemuBoard::new(core.SYST, ETHERNET.init(chip), MAC);
    run(&mut board)
}

/// Builds the node and its network stack on `board`, and runs them.
fn run<B: Board>(board: &mut B) -> Result<Infallible, &'static str> {
    let unix_time = board.unix_time().map_err(|e| e.as_str())?;
    // The node's CSPRNG seed, the interface's seed (TCP initial sequence
    // numbers) and the first local port, from the board's RNG.
    let mut seeds = [0u8; 32 + 8 + 2];
    board.fill_entropy(&mut seeds).map_err(|e| e.as_str())?;
    let (node_seed, rest) = seeds.split_at(32);
    let (iface_seed, port_seed) = rest.split_at(8);
    let mut secret = identity_secret(board)?;
    let identity = Identity::from_secret_bytes(secret);
    secret.zeroize();

    let now = board.now();
    let boot_secs = now.as_micros() / 1_000_000;
    let config = NodeConfig {
        unix_time_at_zero: unix_time.saturating_sub(boot_secs),
        path_relays: app::PATH_RELAYS,
        // An endpoint, as a device is: other nodes never route through it.
        relay: false,
        // The test network (and many a LAN) uses private addresses.
        extend_to_private_addresses: true,
        // Peers dial its address back: on a LAN it is advertised; behind
        // NAT nobody gets through and it is reached through introducers.
        reachability: Reachability::Detect,
        // One relay of its own choosing to keep a link to (the bootstrap
        // link is handed off to it), and to be introduced by behind NAT:
        // a link slot each is what the device can spare.
        outbound_links: 1,
        introducers: 1,
        ..NodeConfig::default()
    };
    let mut node_seed_bytes = [0u8; 32];
    node_seed_bytes.copy_from_slice(node_seed);
    let links = fill(LINK_SLOTS.take(), LinkSlot::new);
    let node = place(&NODE, || {
        let pool: &mut [MessageSlot<[u8; MSG]>] = MESSAGE_POOL.take();
        Node::new(config, identity, node_seed_bytes, links, pool)
    });
    node_seed_bytes.zeroize();
    node.handle(now, SetAddresses::from_slice(&[tcp_address(ADDRESS, PORT)]));
    node.handle(
        now,
        AddBootstrap::address(tcp_address(BOOTSTRAP.0, BOOTSTRAP.1)),
    )
    .map_err(|_| "the bootstrap list has no room")?;

    let mut iface = interface(board, iface_seed);
    let mut sockets = SocketSet::new(fill(SOCKET_STORAGE.take(), || SocketStorage::EMPTY));
    let slots = fill(SLOTS.take(), || Slot::new(SocketHandle::default()));
    add_sockets(&mut sockets, slots)?;
    let port = u16::from_le_bytes([
        port_seed.first().copied().unwrap_or(0),
        port_seed.get(1).copied().unwrap_or(0),
    ]);
    let mut driver = Driver::new(
        DriverConfig {
            listen_port: Some(PORT),
            first_local_port: 49_152 + port % 16_000,
            ..DriverConfig::default()
        },
        slots,
    );
    seeds.zeroize();

    let mut id_hex = [0u8; 64];
    let ([a, b, c, d], [e, f, g, h]) = (ADDRESS.octets(), BOOTSTRAP.0.octets());
    line(&[
        T("veil-firmware-node "),
        T(app::hex_id(&node.node_id(), &mut id_hex)),
        T(" on "),
        N(a.into()),
        T("."),
        N(b.into()),
        T("."),
        N(c.into()),
        T("."),
        N(d.into()),
        T(":"),
        N(PORT.into()),
        T(", bootstrap "),
        N(e.into()),
        T("."),
        N(f.into()),
        T("."),
        N(g.into()),
        T("."),
        N(h.into()),
        T(":"),
        N(BOOTSTRAP.1.into()),
    ]);
    logger::set_node(b'N');
    defmt::info!("node up; dialling the bootstrap node");

    let drain = DRAIN.take();
    let mut app = App::new();
    loop {
        let now = board.now();
        logger::set_time_ms(u32::try_from(now.as_micros() / 1_000).unwrap_or(u32::MAX));
        driver
            .poll(
                now,
                &mut *node,
                &mut iface,
                board.ethernet(),
                &mut sockets,
                drain,
                |node, output| app.on_output(now, node, output),
            )
            .map_err(|_| "the drain buffer is smaller than the node's outputs")?;
        app.tick(now, node);
        let next = driver
            .poll_at(now, &mut iface, &sockets)
            .min(app.deadline());
        board.wait(next);
    }
}

/// The identity secret from the board's storage, or a new one (kept for
/// the next boot).
fn identity_secret<B: Board>(board: &mut B) -> Result<[u8; 32], &'static str> {
    if let Some(secret) = board.load_identity() {
        return Ok(secret);
    }
    let mut secret = [0u8; 32];
    board.fill_entropy(&mut secret).map_err(|e| e.as_str())?;
    board.store_identity(&secret).map_err(|e| e.as_str())?;
    Ok(secret)
}

/// The smoltcp interface on the board's Ethernet device.
fn interface<B: Board>(board: &mut B, seed: &[u8]) -> Interface {
    let mut config = InterfaceConfig::new(HardwareAddress::Ethernet(EthernetAddress(
        board.mac_address(),
    )));
    let mut seed_bytes = [0u8; 8];
    for (dst, src) in seed_bytes.iter_mut().zip(seed) {
        *dst = *src;
    }
    config.random_seed = u64::from_le_bytes(seed_bytes);
    let now = to_smoltcp_instant(board.now());
    let mut iface = Interface::new(config, board.ethernet(), now);
    iface.update_ip_addrs(|addresses| {
        let _ = addresses.push(IpCidr::new(ADDRESS.into(), PREFIX_LEN));
    });
    let _ = iface.routes_mut().add_default_ipv4_route(GATEWAY);
    iface
}

/// Adds one TCP socket per slot, each with its own buffers.
fn add_sockets(sockets: &mut SocketSet<'static>, slots: &mut [Slot]) -> Result<(), &'static str> {
    let mut rx = TCP_RX_BUFFERS.take().iter_mut();
    let mut tx = TCP_TX_BUFFERS.take().iter_mut();
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

/// The board's LAN9118.
#[allow(unsafe_code)]
fn chip() -> Result<Mmio, &'static str> {
    // SAFETY: on QEMU's mps2-an386 the LAN9118's registers are mapped at
    // MPS2_BASE_ADDRESS as device memory, for as long as the machine runs,
    // and this is the only place the image reaches them.
    unsafe { Mmio::new(MPS2_BASE_ADDRESS) }.ok_or("the LAN9118 base address is not aligned")
}
