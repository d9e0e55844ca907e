//! The board under QEMU's `mps2-an386` (Cortex-M4, LAN9118 Ethernet).
//!
//! - **Clock**: SysTick, one interrupt per millisecond of the board's
//!   25 MHz core clock, counted in 64 bits (no wrap in a device's life).
//! - **Ethernet**: the LAN9118 at [`MPS2_BASE_ADDRESS`], through
//!   `veil-lan9118`.
//! - **Wall-clock time and entropy: from the host, for testing only.**
//!   The emulated board has neither an RTC that QEMU sets nor a hardware
//!   RNG. The image asks the host through semihosting, the debugger's
//!   channel: `SYS_TIME` for the Unix time and the host's `/dev/urandom`
//!   (`SYS_OPEN`/`SYS_READ`) for the seed. A device has no debugger
//!   attached and must never do this: anyone who controls the debug port
//!   would choose its keys. A board port takes both from its RTC and TRNG.
//! - **Identity storage**: none (QEMU's flash is the image). The node makes
//!   a new identity at every boot, and prints its id.

use core::cell::Cell;

use cortex_m::interrupt::{self, Mutex};
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::SYST;
use cortex_m_rt::exception;
use cortex_m_semihosting::nr;
use veil_core::time::Instant;
use veil_lan9118::{Lan9118, Mmio};

use crate::board::{Board, BoardError};

/// The MPS2 AN386's processor clock (QEMU models the board's 25 MHz).
const CORE_CLOCK_HZ: u32 = 25_000_000;

/// Milliseconds since [`QemuBoard::new`] started SysTick.
static MILLIS: Mutex<Cell<u64>> = Mutex::new(Cell::new(0));

#[exception]
fn SysTick() {
    interrupt::free(|cs| {
        let millis = MILLIS.borrow(cs);
        millis.set(millis.get().wrapping_add(1));
    });
}

/// QEMU's `mps2-an386` as a [`Board`].
#[derive(Debug)]
pub struct QemuBoard {
    ethernet: &'static mut Lan9118<Mmio>,
    mac: [u8; 6],
}

impl QemuBoard {
    /// Starts SysTick and takes the brought-up LAN9118.
    pub fn new(systick: SYST, ethernet: &'static mut Lan9118<Mmio>, mac: [u8; 6]) -> Self {
        let mut systick = systick;
        systick.set_clock_source(SystClkSource::Core);
        systick.set_reload(CORE_CLOCK_HZ / 1_000 - 1);
        systick.clear_current();
        systick.enable_interrupt();
        systick.enable_counter();
        QemuBoard { ethernet, mac }
    }
}

impl Board for QemuBoard {
    type Ethernet = Lan9118<Mmio>;

    fn now(&self) -> Instant {
        let millis = interrupt::free(|cs| MILLIS.borrow(cs).get());
        Instant::from_micros(millis.saturating_mul(1_000))
    }

    fn unix_time(&mut self) -> Result<u64, BoardError> {
        match host_time() {
            0 => Err(BoardError::NoTime),
            secs => Ok(secs),
        }
    }

    fn fill_entropy(&mut self, dest: &mut [u8]) -> Result<(), BoardError> {
        host_random(dest)
    }

    fn load_identity(&mut self) -> Option<[u8; 32]> {
        None
    }

    fn store_identity(&mut self, _secret: &[u8; 32]) -> Result<(), BoardError> {
        // Nowhere to keep it: the next boot makes a new identity.
        Ok(())
    }

    fn ethernet(&mut self) -> &mut Self::Ethernet {
        self.ethernet
    }

    fn mac_address(&self) -> [u8; 6] {
        self.mac
    }

    fn wait(&mut self, until: Instant) {
        if self.now() < until {
            // SysTick wakes the core within a millisecond; the LAN9118 is
            // polled (its interrupt line is not wired up here).
            cortex_m::asm::wfi();
        }
    }
}

/// The host's Unix time in seconds (`SYS_TIME`), 0 if it gives none.
#[allow(unsafe_code)]
fn host_time() -> u64 {
    // SAFETY: SYS_TIME takes no argument block and touches no memory of ours.
    let secs = unsafe { cortex_m_semihosting::syscall1(nr::TIME, 0) };
    u64::try_from(secs).unwrap_or(0)
}

/// The host file entropy comes from, NUL-terminated for `SYS_OPEN`.
const RANDOM_FILE: &str = "/dev/urandom\0";

/// Fills `dest` from the host's `/dev/urandom` (testing only: see the
/// module docs).
#[allow(unsafe_code)]
fn host_random(dest: &mut [u8]) -> Result<(), BoardError> {
    let name = RANDOM_FILE.as_bytes();
    let open = [
        name.as_ptr() as usize,
        nr::open::R_BINARY,
        name.len().saturating_sub(1),
    ];
    // SAFETY: SYS_OPEN reads a NUL-terminated name of the given length
    // (without the NUL) from a `'static` str and writes nothing of ours.
    let handle = unsafe { cortex_m_semihosting::syscall(nr::OPEN, &open) };
    if handle as isize == -1 {
        return Err(BoardError::NoEntropy);
    }
    let read = [handle, dest.as_mut_ptr() as usize, dest.len()];
    // SAFETY: SYS_READ writes at most `dest.len()` bytes into `dest`, a live
    // exclusive slice, and returns how many it did not write.
    let missing = unsafe { cortex_m_semihosting::syscall(nr::READ, &read) };
    // SAFETY: SYS_CLOSE takes the handle SYS_OPEN gave.
    let _ = unsafe { cortex_m_semihosting::syscall(nr::CLOSE, &[handle]) };
    if missing == 0 {
        Ok(())
    } else {
        dest.fill(0);
        Err(BoardError::NoEntropy)
    }
}
