//! The panic handler of both images: the panic's location on the console,
//! then QEMU exits with a failure.

use cortex_m_semihosting::debug;

use crate::console::{line, Piece::Number as N, Piece::Text as T};

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    match info.location() {
        Some(at) => line(&[
            T("FAIL: panic at "),
            T(at.file()),
            T(":"),
            N(at.line().into()),
        ]),
        None => line(&[T("FAIL: panic")]),
    }
    debug::exit(debug::EXIT_FAILURE);
    halt()
}

/// Stops here for good (after QEMU was asked to exit, or on a board).
pub fn halt() -> ! {
    #[allow(clippy::empty_loop)]
    loop {}
}
