//! Milliseconds since boot, counted by SysTick interrupts: smoltcp needs a
//! clock for ARP, TCP retransmissions and timeouts.

use core::sync::atomic::{AtomicU32, Ordering};
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::SYST;
use cortex_m_rt::exception;

/// The MPS2 AN386's processor clock (QEMU models the board's 25 MHz).
const CORE_CLOCK_HZ: u32 = 25_000_000;

static MILLIS: AtomicU32 = AtomicU32::new(0);

/// Starts SysTick at one interrupt per millisecond.
pub fn start(mut systick: SYST) {
    systick.set_clock_source(SystClkSource::Core);
    systick.set_reload(CORE_CLOCK_HZ / 1_000 - 1);
    systick.clear_current();
    systick.enable_interrupt();
    systick.enable_counter();
}

/// Milliseconds since [`start`].
pub fn millis() -> u32 {
    MILLIS.load(Ordering::Relaxed)
}

/// The smoltcp instant of now.
pub fn now() -> smoltcp::time::Instant {
    smoltcp::time::Instant::from_millis(i64::from(millis()))
}

#[exception]
fn SysTick() {
    MILLIS.fetch_add(1, Ordering::Relaxed);
}
