//! A Cortex-M4 image (`thumbv7em-none-eabihf`) for QEMU's `mps2-an386`
//! machine that checks `veil-lan9118` on QEMU's emulated LAN9118.
//!
//! It brings the chip up through the driver, puts a smoltcp interface on
//! it (Ethernet, 10.201.0.2/24, MAC 02:00:5e:00:53:02) and serves ICMP echo
//! (smoltcp answers pings by itself) and a TCP echo on port 7. When a TCP
//! client has been echoed and has closed, it prints the driver's counters
//! and `PASS`, and QEMU exits with 0; on any error, or after 90 s without
//! such a session, it prints `FAIL: …` and QEMU exits with 1.
//! `.ci/nic-check` runs it with a TAP device in a network namespace.
#![no_std]
#![no_main]

mod clock;
mod echo;

use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};
use smoltcp::iface::{Config as InterfaceConfig, Interface, SocketSet, SocketStorage};
use smoltcp::socket::tcp;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr};
use static_cell::StaticCell;
use veil_lan9118::{Config, Lan9118, Mmio, MPS2_BASE_ADDRESS};

const MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x53, 0x02];
const ADDRESS: [u8; 4] = [10, 201, 0, 2];
const PREFIX_LEN: u8 = 24;
/// The image gives up if no TCP echo session has ended by then.
const DEADLINE_MS: u32 = 90_000;

static DRIVER: StaticCell<Lan9118<Mmio>> = StaticCell::new();
static SOCKET_BUFFERS: StaticCell<([u8; 1024], [u8; 1024])> = StaticCell::new();

#[entry]
fn main() -> ! {
    let Some(core) = cortex_m::Peripherals::take() else {
        fail("the core peripherals were taken twice");
    };
    clock::start(core.SYST);

    let driver = match Lan9118::new(chip(), Config { mac_address: MAC }) {
        Ok(driver) => DRIVER.init(driver),
        Err(error) => {
            hprintln!("FAIL: the LAN9118 did not come up: {}", error);
            debug::exit(debug::EXIT_FAILURE);
            halt()
        }
    };
    hprintln!(
        "lan9118: ID_REV {:#010x}, MAC {:02x?} (read back), link {:?}",
        driver.id_rev(),
        driver.mac_address(),
        driver.poll_link()
    );

    let mut config = InterfaceConfig::new(HardwareAddress::Ethernet(EthernetAddress(MAC)));
    // A board seeds this from its hardware RNG.
    config.random_seed = 0x5eed_0000_0000_9118;
    let mut interface = Interface::new(config, driver, clock::now());
    interface.update_ip_addrs(|addresses| {
        let [a, b, c, d] = ADDRESS;
        let _ = addresses.push(IpCidr::new(IpAddress::v4(a, b, c, d), PREFIX_LEN));
    });

    let (rx_buffer, tx_buffer) = SOCKET_BUFFERS.init(([0; 1024], [0; 1024]));
    let socket = tcp::Socket::new(
        tcp::SocketBuffer::new(&mut rx_buffer[..]),
        tcp::SocketBuffer::new(&mut tx_buffer[..]),
    );
    let mut storage = [SocketStorage::EMPTY; 1];
    let mut sockets = SocketSet::new(&mut storage[..]);
    let mut echo = echo::Echo::new(sockets.add(socket));
    hprintln!(
        "nic-check: 10.201.0.2/{} up; answering ping and TCP echo on port {}",
        PREFIX_LEN,
        echo::PORT
    );

    loop {
        interface.poll(clock::now(), driver, &mut sockets);
        if let Some(bytes) = echo.poll(&mut sockets) {
            // Let the last ACK of the close go out before stopping.
            interface.poll(clock::now(), driver, &mut sockets);
            let counters = driver.counters();
            hprintln!("nic-check: TCP echo session ended, {} bytes echoed", bytes);
            hprintln!("nic-check: driver counters {:?}", counters);
            if bytes == 0 {
                fail("the TCP session echoed nothing");
            }
            hprintln!("PASS");
            debug::exit(debug::EXIT_SUCCESS);
            halt();
        }
        if clock::millis() > DEADLINE_MS {
            hprintln!("nic-check: driver counters {:?}", driver.counters());
            fail("no TCP echo session ended within 90 s");
        }
    }
}

/// The board's LAN9118.
#[allow(unsafe_code)]
fn chip() -> Mmio {
    // SAFETY: on QEMU's mps2-an386 the LAN9118's registers are mapped at
    // MPS2_BASE_ADDRESS as device memory, for as long as the machine runs,
    // and this is the only place the image reaches them.
    match unsafe { Mmio::new(MPS2_BASE_ADDRESS) } {
        Some(chip) => chip,
        None => fail("the LAN9118 base address is not aligned"),
    }
}

fn fail(why: &str) -> ! {
    hprintln!("FAIL: {}", why);
    debug::exit(debug::EXIT_FAILURE);
    halt()
}

fn halt() -> ! {
    #[allow(clippy::empty_loop)]
    loop {}
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    hprintln!("FAIL: {}", info);
    debug::exit(debug::EXIT_FAILURE);
    halt()
}
