//! Stack high-water mark: cortex-m-rt (feature `paint-stack`) fills the
//! whole stack region with `0xCCCC_CCCC` before `main`; the lowest word
//! that no longer holds the paint is as deep as the stack ever went.

use cortex_m_rt::STACK_PAINT_VALUE;

extern "C" {
    // Both from cortex-m-rt's link.x: the stack grows down from
    // `_stack_start` (the end of RAM) towards `_stack_end` (just past .bss).
    static _stack_start: u32;
    static _stack_end: u32;
}

/// Bytes of stack used so far (the deepest point), in bytes.
pub fn high_water_mark() -> usize {
    let top = (&raw const _stack_start) as usize;
    let bottom = (&raw const _stack_end) as usize;
    let mut addr = bottom;
    while addr < top && read_word(addr) == STACK_PAINT_VALUE {
        addr += 4;
    }
    top - addr
}

/// Reads one word of the stack region.
#[allow(unsafe_code)]
fn read_word(addr: usize) -> u32 {
    // SAFETY: `addr` is 4-aligned (both linker symbols are) and lies in
    // `[_stack_end, _stack_start)`, RAM that cortex-m-rt painted at reset and
    // that stays mapped; a volatile read of a `u32` there has no side effect.
    unsafe { core::ptr::read_volatile(addr as *const u32) }
}
