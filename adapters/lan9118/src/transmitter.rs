//! The transmit side's state: the buffer smoltcp builds a frame in, the
//! next packet tag, and what happened to the frames so far.

use crate::chip::Chip;
use crate::register::{Register, Registers};
use crate::rx::MAX_FRAME_LEN;
use crate::tx::{TxStatus, MAX_FRAME_SPACE};

/// What the transmit side has seen since the driver started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TxCounters {
    /// Frames written into the TX data FIFO.
    pub frames: u32,
    /// TX status words read back (frames the chip has finished with).
    pub completed: u32,
    /// Of those, frames the chip reported failed (error summary bit).
    pub errors: u32,
    /// Frames longer than the MTU that smoltcp asked for; not sent.
    pub too_long: u32,
}

pub(crate) struct Transmitter {
    buffer: [u8; MAX_FRAME_LEN],
    next_tag: u16,
    pub(crate) counters: TxCounters,
}

impl core::fmt::Debug for Transmitter {
    /// Without the frame buffer's 1.5 KiB.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Transmitter")
            .field("next_tag", &self.next_tag)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl Transmitter {
    pub(crate) const fn new() -> Self {
        Transmitter {
            buffer: [0; MAX_FRAME_LEN],
            next_tag: 0,
            counters: TxCounters {
                frames: 0,
                completed: 0,
                errors: 0,
                too_long: 0,
            },
        }
    }

    /// Reads every waiting TX status word. The chip stops transmitting when
    /// its TX status FIFO is full, so this runs before every transmit.
    pub(crate) fn collect_statuses<R: Registers>(&mut self, chip: &Chip<R>) {
        for _ in 0..chip.tx_levels().status_words {
            let status = TxStatus(chip.pop_status(Register::TxStatusFifo));
            self.counters.completed = self.counters.completed.wrapping_add(1);
            if status.has_error() {
                self.counters.errors = self.counters.errors.wrapping_add(1);
            }
        }
    }

    /// Whether the TX data FIFO has room for a frame of any length up to
    /// the MTU.
    pub(crate) fn has_room<R: Registers>(&self, chip: &Chip<R>) -> bool {
        chip.tx_levels().free_bytes >= MAX_FRAME_SPACE
    }

    /// Lets `fill` build a `len`-byte frame, then queues it. The caller has
    /// checked [`has_room`](Self::has_room). A frame longer than the MTU is
    /// built (smoltcp's closure must run) in a buffer cut to the MTU and
    /// not sent.
    pub(crate) fn send<R: Registers, T>(
        &mut self,
        chip: &Chip<R>,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> T,
    ) -> T {
        let Some(frame) = self.buffer.get_mut(..len) else {
            self.counters.too_long = self.counters.too_long.wrapping_add(1);
            return fill(&mut self.buffer);
        };
        let result = fill(frame);
        chip.write_frame(frame, self.next_tag);
        self.next_tag = self.next_tag.wrapping_add(1);
        self.counters.frames = self.counters.frames.wrapping_add(1);
        result
    }
}
