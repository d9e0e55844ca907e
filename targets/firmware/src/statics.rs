//! Building big values in static RAM at boot, shared by both images.
//!
//! A value that is not all zero bytes would need a flash image of itself in
//! `.data`, and a whole array built on the stack and then moved would need
//! as much stack. So arrays start as empty `heapless::Vec`s (all zero,
//! `.bss`) filled one element at a time by [`fill`], and a node is built
//! by [`place`], whose frame is gone before the main loop runs.

use heapless::Vec;
use static_cell::StaticCell;

/// Writes `make()` into `cell`. LLVM builds the value in a temporary and
/// copies it (11 KiB for a node); not inlined, so that temporary lives in
/// this short-lived frame, not in the frame of the caller's main loop.
#[inline(never)]
pub fn place<T>(cell: &'static StaticCell<T>, make: impl FnOnce() -> T) -> &'static mut T {
    cell.uninit().write(make())
}

/// Fills `storage` with `make()` and hands out its elements.
#[inline(never)]
pub fn fill<T, const N: usize>(
    storage: &'static mut Vec<T, N>,
    mut make: impl FnMut() -> T,
) -> &'static mut [T] {
    while !storage.is_full() {
        if storage.push(make()).is_err() {
            break;
        }
    }
    storage.as_mut_slice()
}
