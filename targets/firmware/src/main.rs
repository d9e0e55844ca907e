//! veil firmware image for a Cortex-M4F (`thumbv7em-none-eabihf`), run
//! under QEMU (`-machine mps2-an386`).
//!
//! At boot it runs a self-test that does real protocol work in the image:
//! three veil nodes (A, B, C), each with its own smoltcp interface and TCP
//! sockets, on an IP medium in RAM (`veil_smoltcp::medium`). A and C know
//! only B's address. They complete Noise link handshakes over smoltcp TCP,
//! exchange signed descriptors, A builds a circuit A → B → C (one relay)
//! and sends C a message; C answers over the same circuit. The result goes
//! out on the semihosting console as plain text (`PASS` / `FAIL: …`) and as
//! QEMU's exit code; the core, the adapter and the self-test log through
//! defmt to a host file (`logger`).
//!
//! Entropy: the self-test uses fixed identities and counter-based seeds
//! (a real board seeds from its hardware RNG), so every run is identical.
//! Time: a simulated clock that jumps to the next deadline, so the test
//! takes only the CPU time its work needs.
#![no_std]
#![no_main]

mod console;
mod logger;
mod panic;
mod profile;
mod selftest;
mod stack;
mod statics;
mod vectors;

use console::{line, Piece::Number as N, Piece::Text as T};
use cortex_m_rt::entry;
use cortex_m_semihosting::debug;

#[entry]
fn main() -> ! {
    let outcome = selftest::run();
    let stack = stack::high_water_mark();
    line(&[T("stack high-water mark: "), N(stack as u64), T(" bytes")]);
    match outcome {
        Ok(report) => {
            line(&[
                T("links up after "),
                N(report.links_ms),
                T(" ms, circuit ready after "),
                N(report.circuit_ms),
                T(" ms, message and reply after "),
                N(report.done_ms),
                T(" ms (simulated); "),
                N(report.polls.into()),
                T(" polls"),
            ]);
            line(&[T("PASS")]);
            debug::exit(debug::EXIT_SUCCESS);
        }
        Err(why) => {
            line(&[T("FAIL: "), T(why)]);
            debug::exit(debug::EXIT_FAILURE);
        }
    }
    panic::halt()
}
