//! The receive side's state: the frame whose status word has been popped
//! but whose data is still in the FIFO, the buffer it is read into, and
//! what happened to the frames so far.

use crate::chip::Chip;
use crate::error::{Error, Wait};
use crate::fields::{int_sts, rx_cfg};
use crate::mac::control;
use crate::register::{Register, Registers};
use crate::rx::{DiscardReason, RxStatus, RxVerdict, RX_BUFFER_LEN};

/// Bad frames one call may discard before it returns, so that a flood of
/// them cannot hold the caller's poll for long.
const DISCARDS_PER_CALL: usize = 16;

/// A good frame whose status word was popped and whose data words wait in
/// the RX data FIFO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PendingFrame {
    /// Bytes, CRC excluded.
    len: usize,
    /// Data words, CRC and padding included.
    words: usize,
}

/// What the receive side has seen since the driver started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RxCounters {
    /// Frames handed to smoltcp.
    pub frames: u32,
    /// Frames the chip flagged with the error summary bit, discarded.
    pub errors: u32,
    /// Frames discarded for another reason: too short, too long for the
    /// MTU, or failed the address filter.
    pub discarded: u32,
    /// Status words that could not describe the FIFO's data (length 0 or
    /// more than the FIFO holds); each flushed both RX FIFOs.
    pub flushes: u32,
    /// Flushes that timed out (the receiver did not stop, or the dump did
    /// not finish); the receiver was re-enabled all the same.
    pub flush_failures: u32,
}

pub(crate) struct Receiver {
    buffer: [u8; RX_BUFFER_LEN],
    pending: Option<PendingFrame>,
    pub(crate) counters: RxCounters,
}

impl core::fmt::Debug for Receiver {
    /// Without the frame buffer's 1.5 KiB.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Receiver")
            .field("pending", &self.pending)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl Receiver {
    pub(crate) const fn new() -> Self {
        Receiver {
            buffer: [0; RX_BUFFER_LEN],
            pending: None,
            counters: RxCounters {
                frames: 0,
                errors: 0,
                discarded: 0,
                flushes: 0,
                flush_failures: 0,
            },
        }
    }

    /// The next good frame, if one is waiting: the one already pending (a
    /// receive token that was dropped unused leaves its frame in the FIFO),
    /// else the first good one behind the status FIFO's head. Bad frames on
    /// the way are discarded; a status word that is out of step with the
    /// data flushes both FIFOs.
    pub(crate) fn next_frame<R: Registers>(&mut self, chip: &Chip<R>) -> Option<PendingFrame> {
        if self.pending.is_some() {
            return self.pending;
        }
        for _ in 0..DISCARDS_PER_CALL {
            if chip.rx_levels().status_words == 0 {
                return None;
            }
            let status = RxStatus(chip.pop_status(Register::RxStatusFifo));
            let data_bytes = chip.rx_levels().data_bytes as usize;
            match RxVerdict::of(status, data_bytes) {
                RxVerdict::Deliver { len, words } => {
                    self.pending = Some(PendingFrame { len, words });
                    return self.pending;
                }
                RxVerdict::Discard { words, reason } => {
                    chip.drain_frame(words);
                    let counter = match reason {
                        DiscardReason::Error => &mut self.counters.errors,
                        _ => &mut self.counters.discarded,
                    };
                    *counter = counter.wrapping_add(1);
                }
                RxVerdict::OutOfStep => {
                    self.counters.flushes = self.counters.flushes.wrapping_add(1);
                    if flush(chip).is_err() {
                        self.counters.flush_failures = self.counters.flush_failures.wrapping_add(1);
                    }
                    return None;
                }
            }
        }
        None
    }

    /// Reads the pending `frame` out of the FIFO: from here on it is
    /// consumed. Returns its bytes, CRC excluded.
    pub(crate) fn take<R: Registers>(&mut self, chip: &Chip<R>, frame: PendingFrame) -> &[u8] {
        chip.read_frame(frame.words, &mut self.buffer);
        self.pending = None;
        self.counters.frames = self.counters.frames.wrapping_add(1);
        // `len` is at most MAX_FRAME_LEN < RX_BUFFER_LEN (RxVerdict::of).
        self.buffer.get(..frame.len).unwrap_or(&[])
    }
}

/// Empties both RX FIFOs, the way the datasheet allows it: stop the
/// receiver, wait until it has stopped, dump, start it again. The receiver
/// is started again even if a step timed out.
fn flush<R: Registers>(chip: &Chip<R>) -> Result<(), Error> {
    let dumped = stop_and_dump(chip);
    let restarted = chip.mac_control_update(control::RXEN, 0);
    dumped.and(restarted)
}

fn stop_and_dump<R: Registers>(chip: &Chip<R>) -> Result<(), Error> {
    chip.mac_control_update(0, control::RXEN)?;
    chip.wait_set(Register::IntSts, int_sts::RXSTOP, Wait::ReceiverStop)?;
    chip.write(Register::RxCfg, rx_cfg::RX_DUMP);
    chip.wait_clear(Register::RxCfg, rx_cfg::RX_DUMP, Wait::RxDump)?;
    chip.write(Register::IntSts, int_sts::RXSTOP);
    Ok(())
}
