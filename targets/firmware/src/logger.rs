//! The defmt global logger. defmt frames (encoded by defmt's own `Encoder`)
//! go through semihosting to a binary file on the host, [`FILE`] in the
//! debugger's (QEMU's) working directory, so that they never mix with the
//! plain-text console on standard output. Decode it on the host with
//! `defmt-print -e <the ELF> < veil-firmware.defmt`.
//!
//! Output is best effort: if the host cannot open the file, frames are
//! dropped. A frame's timestamp is the self-test's simulated clock (in ms)
//! and the node being polled when it was logged (A, B or C).

use core::cell::RefCell;
use core::sync::atomic::{AtomicU32, AtomicU8, Ordering};

use cortex_m::interrupt::{self, Mutex};
use cortex_m_semihosting::nr;

/// The host file the frames go to (NUL-terminated for SYS_OPEN).
pub const FILE: &str = "veil-firmware.defmt\0";

/// Simulated milliseconds since boot, for the frames' timestamps.
static NOW_MS: AtomicU32 = AtomicU32::new(0);
/// The node being polled (an ASCII letter), or `-`.
static NODE: AtomicU8 = AtomicU8::new(b'-');

defmt::timestamp!(
    "{=u32:ms} {=char}",
    NOW_MS.load(Ordering::Relaxed),
    char::from(NODE.load(Ordering::Relaxed))
);

/// Sets the time that the next frames carry.
pub fn set_time_ms(ms: u32) {
    NOW_MS.store(ms, Ordering::Relaxed);
}

/// Sets the node that the next frames come from (`b'-'`: none).
pub fn set_node(name: u8) {
    NODE.store(name, Ordering::Relaxed);
}

/// Encoded bytes wait here until a frame ends or the buffer is full, so a
/// frame costs one or two semihosting calls rather than one per field.
const BUFFER: usize = 64;

struct State {
    /// A frame is being written (between `acquire` and `release`).
    taken: bool,
    encoder: defmt::Encoder,
    sink: Sink,
}

struct Sink {
    /// `None` until the first frame; then the host's handle, or `Err` if
    /// the host refused the file.
    file: Option<Result<usize, ()>>,
    buffer: [u8; BUFFER],
    len: usize,
}

static STATE: Mutex<RefCell<State>> = Mutex::new(RefCell::new(State {
    taken: false,
    encoder: defmt::Encoder::new(),
    sink: Sink {
        file: None,
        buffer: [0; BUFFER],
        len: 0,
    },
}));

impl Sink {
    fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.len == BUFFER {
                self.flush();
            }
            if let Some(slot) = self.buffer.get_mut(self.len) {
                *slot = b;
                self.len += 1;
            }
        }
    }

    fn flush(&mut self) {
        let file = *self.file.get_or_insert_with(open);
        if let (Ok(handle), Some(bytes)) = (file, self.buffer.get(..self.len)) {
            host_write(handle, bytes);
        }
        self.len = 0;
    }
}

/// Opens [`FILE`] on the host for writing, truncated, in binary mode.
#[allow(unsafe_code)]
fn open() -> Result<usize, ()> {
    let name = FILE.as_bytes();
    let args = [
        name.as_ptr() as usize,
        nr::open::W_TRUNC_BINARY,
        name.len() - 1,
    ];
    // SAFETY: SYS_OPEN reads a NUL-terminated name of the given length
    // (without the NUL) from `args[0]`, which points into a `'static` str;
    // it touches no other memory of ours.
    match unsafe { cortex_m_semihosting::syscall(nr::OPEN, &args) } as isize {
        -1 => Err(()),
        handle => Ok(handle as usize),
    }
}

/// Writes `bytes` to the host file `handle`; what the host does not take
/// is dropped (logging must not fail).
#[allow(unsafe_code)]
fn host_write(handle: usize, bytes: &[u8]) {
    let args = [handle, bytes.as_ptr() as usize, bytes.len()];
    // SAFETY: SYS_WRITE reads `args[2]` bytes from `args[1]`, a live slice,
    // and writes nothing of ours.
    let _ = unsafe { cortex_m_semihosting::syscall(nr::WRITE, &args) };
}

/// Runs `f` on the logger's state, in a critical section.
fn with_state(f: impl FnOnce(&mut State)) {
    interrupt::free(|cs| f(&mut STATE.borrow(cs).borrow_mut()));
}

#[defmt::global_logger]
struct Logger;

// SAFETY: `acquire` is safe to call from any context: all state is behind
// a critical section, and a second `acquire` before `release` panics, so
// no frame is interleaved with another. `write`, `flush` and `release`
// are called by defmt only between `acquire` and `release`.
#[allow(unsafe_code)]
unsafe impl defmt::Logger for Logger {
    fn acquire() {
        with_state(|state| {
            assert!(!state.taken, "defmt logger acquired twice");
            state.taken = true;
            let State { encoder, sink, .. } = state;
            encoder.start_frame(|b| sink.push(b));
        });
    }

    unsafe fn flush() {
        with_state(|state| state.sink.flush());
    }

    unsafe fn release() {
        with_state(|state| {
            let State { encoder, sink, .. } = state;
            encoder.end_frame(|b| sink.push(b));
            sink.flush();
            state.taken = false;
        });
    }

    unsafe fn write(bytes: &[u8]) {
        with_state(|state| {
            let State { encoder, sink, .. } = state;
            encoder.write(bytes, |b| sink.push(b));
        });
    }
}
