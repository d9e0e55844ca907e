//! What a board gives the node. The node itself (`veil-core`) takes time
//! as a parameter and randomness as a seed; this trait is where a board
//! port says where they come from, with its Ethernet device and the
//! storage of the node's identity key. `src/qemu.rs` implements it for
//! QEMU's `mps2-an386`; a port to a real board implements it with its
//! timer, RTC, TRNG, flash and MAC.

use core::fmt;

use smoltcp::phy::Device;
use veil_core::time::Instant;

/// The services a board provides to the node image.
pub trait Board {
    /// The Ethernet controller, as a smoltcp device
    /// ([`Medium::Ethernet`](smoltcp::phy::Medium)).
    type Ethernet: Device;

    /// Monotonic time since boot, from a timer of the board (SysTick or a
    /// hardware timer), never from the wall clock: the node's timers
    /// must not jump when the wall clock is set.
    fn now(&self) -> Instant;

    /// Seconds since the Unix epoch, now: from a battery-backed RTC or the
    /// network (SNTP). Descriptors carry wall-clock times that other nodes
    /// check, so a node without it cannot join a network.
    fn unix_time(&mut self) -> Result<u64, BoardError>;

    /// Fills `dest` with secret random bytes from a hardware RNG (a TRNG,
    /// conditioned as its datasheet asks). Every key and every random
    /// choice of the node grows from these bytes.
    fn fill_entropy(&mut self, dest: &mut [u8]) -> Result<(), BoardError>;

    /// The node's identity secret from persistent storage (flash, a
    /// secure element), or `None` on the first boot.
    fn load_identity(&mut self) -> Option<[u8; 32]>;

    /// Keeps a new identity secret for the next boots.
    fn store_identity(&mut self, secret: &[u8; 32]) -> Result<(), BoardError>;

    /// The Ethernet device.
    fn ethernet(&mut self) -> &mut Self::Ethernet;

    /// The Ethernet MAC address the device uses.
    fn mac_address(&self) -> [u8; 6];

    /// Waits for something to do: at least until the next clock tick,
    /// at most until `until` (a board with interrupts sleeps until a
    /// frame or a timer wakes it).
    fn wait(&mut self, until: Instant);
}

/// A service of the board failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoardError {
    /// No wall-clock time: the RTC is not set or the host gave none.
    NoTime,
    /// The RNG gave no (or too few) bytes.
    NoEntropy,
    /// The identity secret could not be stored.
    #[allow(dead_code)] // a board with storage returns it; QEMU has none
    Storage,
}

impl fmt::Display for BoardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::error::Error for BoardError {}

impl BoardError {
    /// The message, for the console (which does not use `core::fmt`).
    pub fn as_str(&self) -> &'static str {
        match self {
            BoardError::NoTime => {
                "the board has no wall-clock time: set its RTC or reach an SNTP server"
            }
            BoardError::NoEntropy => {
                "the board's RNG gave no bytes: check the RNG's clock and its health test"
            }
            BoardError::Storage => {
                "the identity secret could not be stored: check the storage's free space"
            }
        }
    }
}
