//! The memory-mapped chip: [`Registers`] as volatile 32-bit loads and
//! stores. The only `unsafe` code of the crate is here (`lib.rs` allows it
//! for this module alone).

use crate::register::{Register, Registers};
use core::ptr::NonNull;

/// Where QEMU's `mps2-an385`/`mps2-an386` machines (and ARM's MPS2 boards,
/// which carry a LAN9220, software-compatible) put the chip.
pub const MPS2_BASE_ADDRESS: usize = 0x4020_0000;

/// A LAN9118 whose registers are mapped at a fixed address.
///
/// `Send` but not `Sync`: the one owner may move it (into a static, an
/// interrupt handler's or a task's state), but the chip's FIFOs and its
/// indirect MAC interface are sequences of accesses that must not
/// interleave, so it is never shared between contexts.
#[derive(Debug)]
pub struct Mmio {
    base: NonNull<u32>,
}

impl Mmio {
    /// The chip at `base_address`.
    ///
    /// # Safety
    ///
    /// `base_address` must be the base of a LAN9118-compatible chip's
    /// 256-byte register window, mapped as device memory (not cached, not
    /// reordered), for as long as the returned value lives; and nothing else
    /// may access that window meanwhile (no second `Mmio` for it).
    pub unsafe fn new(base_address: usize) -> Option<Self> {
        if !base_address.is_multiple_of(4) {
            return None;
        }
        NonNull::new(base_address as *mut u32).map(|base| Mmio { base })
    }

    /// A pointer to `register`: inside the window, since a [`Register`]'s
    /// offset is below 256.
    fn at(&self, register: Register) -> *mut u32 {
        self.base.as_ptr().wrapping_byte_add(register.offset())
    }
}

// SAFETY: `Mmio` is the only handle to its register window (the contract of
// `Mmio::new`) and holds nothing tied to the context that made it, so moving
// it to another context moves that exclusive access along. It stays `!Sync`
// (from the raw pointer), so two contexts never reach the window at once.
unsafe impl Send for Mmio {}

impl Registers for Mmio {
    fn read(&self, register: Register) -> u32 {
        // SAFETY: `Mmio::new`'s caller promised a mapped, exclusively owned
        // register window at `base`; `at` stays inside it (offsets are the
        // `Register` values, all below 0x100) and is 4-byte aligned (base
        // checked in `new`, offsets are multiples of 4). A volatile read is
        // exactly one 32-bit bus access, which the FIFO ports need.
        unsafe { self.at(register).read_volatile() }
    }

    fn write(&self, register: Register, value: u32) {
        // SAFETY: as for `read`: an aligned address inside the exclusively
        // owned, mapped window, written with exactly one 32-bit access.
        unsafe { self.at(register).write_volatile(value) }
    }
}
