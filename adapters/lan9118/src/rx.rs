//! Receive: what an RX status word says, and reading a frame's words out of
//! the RX data FIFO.
//!
//! With RX_CFG at its reset value (4-byte end alignment, no data offset) a
//! frame of `n` bytes, counted with its 4-byte CRC as the status word's
//! length field does, occupies exactly `ceil(n / 4)` data words: its first
//! byte is the low byte of the first word, and the unused bytes of the last
//! word are padding. Every word of a frame must be read out (or the frame
//! fast-forwarded past) before the next frame's data begins.

use crate::chip::Chip;
use crate::register::{Register, Registers};

/// The longest frame handed to smoltcp: an Ethernet header and a 1500-byte
/// payload, without the CRC (and without a VLAN tag).
pub const MAX_FRAME_LEN: usize = 1514;

/// The frame check sequence at the end of every frame in the data FIFO.
const CRC_LEN: usize = 4;

/// The shortest frame handed on: an Ethernet header (the chip's runt
/// detection flags anything under 64 bytes on a real wire; QEMU passes
/// short frames from a TAP unpadded and unflagged).
const MIN_FRAME_LEN: usize = 14;

/// The data words of the longest frame handed on, CRC included.
pub(crate) const MAX_FRAME_WORDS: usize = (MAX_FRAME_LEN + CRC_LEN).div_ceil(4);

/// A buffer that holds every word of the longest frame handed on.
pub(crate) const RX_BUFFER_LEN: usize = MAX_FRAME_WORDS * 4;

/// An RX status word (datasheet section 3.13.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxStatus(pub u32);

impl RxStatus {
    const FILTER_FAIL: u32 = 1 << 30;
    const ERROR_SUMMARY: u32 = 1 << 15;

    /// The packet length field: the frame's bytes plus its CRC.
    pub const fn packet_len(self) -> usize {
        ((self.0 >> 16) & 0x3fff) as usize
    }

    /// The error summary bit: CRC error, runt, frame too long, late
    /// collision, MII error or receive watchdog.
    pub const fn has_error(self) -> bool {
        self.0 & Self::ERROR_SUMMARY != 0
    }

    /// The frame failed the address filter (stored only in receive-all mode).
    pub const fn filter_failed(self) -> bool {
        self.0 & Self::FILTER_FAIL != 0
    }

    /// The data words the frame occupies in the RX data FIFO.
    pub const fn words(self) -> usize {
        self.packet_len().div_ceil(4)
    }
}

/// What the driver does with the frame a status word describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxVerdict {
    /// A good frame: `len` bytes (CRC excluded) in `words` data words.
    Deliver {
        /// The frame's length without its CRC.
        len: usize,
        /// The data words to read out, CRC and padding included.
        words: usize,
    },
    /// A frame that is not handed on: its `words` data words are read and
    /// thrown away, and the next frame follows as usual.
    Discard {
        /// The data words to read out.
        words: usize,
        /// Why the frame is not handed on.
        reason: DiscardReason,
    },
    /// The status word cannot describe the data in the FIFO (a length of 0,
    /// or more words than the FIFO holds). The two FIFOs are out of step,
    /// and reading on would misread every later frame; only flushing both
    /// brings them back in step. Nothing is read from the data FIFO.
    OutOfStep,
}

/// Why a frame was discarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscardReason {
    /// The chip set the error summary bit.
    Error,
    /// The frame failed the address filter.
    FilterFail,
    /// Shorter than an Ethernet header.
    TooShort,
    /// Longer than [`MAX_FRAME_LEN`] (plus CRC).
    TooLong,
}

impl RxVerdict {
    /// The verdict on `status` when the RX data FIFO holds `data_bytes`
    /// bytes (RX_FIFO_INF's RXDUSED, read after the status word was popped;
    /// the chip writes a frame's data before its status, so a consistent
    /// status never describes more than that).
    pub fn of(status: RxStatus, data_bytes: usize) -> RxVerdict {
        let words = status.words();
        if words == 0 || words > data_bytes / 4 {
            return RxVerdict::OutOfStep;
        }
        let reason = if status.has_error() {
            DiscardReason::Error
        } else if status.filter_failed() {
            DiscardReason::FilterFail
        } else if status.packet_len() < MIN_FRAME_LEN + CRC_LEN {
            DiscardReason::TooShort
        } else if status.packet_len() > MAX_FRAME_LEN + CRC_LEN {
            DiscardReason::TooLong
        } else {
            return RxVerdict::Deliver {
                len: status.packet_len() - CRC_LEN,
                words,
            };
        };
        RxVerdict::Discard { words, reason }
    }
}

impl<R: Registers> Chip<R> {
    /// Reads `words` words of the RX data FIFO into `buffer` (little-endian:
    /// the first byte received is the low byte of the first word). Words
    /// beyond the buffer are read and dropped, so the FIFO always advances
    /// by exactly `words`.
    pub(crate) fn read_frame(&self, words: usize, buffer: &mut [u8]) {
        let mut chunks = buffer.chunks_exact_mut(4);
        for _ in 0..words {
            let word = self.read(Register::RxDataFifo);
            if let Some(chunk) = chunks.next() {
                chunk.copy_from_slice(&word.to_le_bytes());
            }
        }
    }

    /// Reads and drops `words` words of the RX data FIFO: how the driver
    /// discards a frame. (The chip can also skip a frame with RX_DP_CTRL's
    /// fast-forward, for frames of four words or more; QEMU's model of it
    /// does not advance its FIFO level or its record of the frame, so it
    /// would misread the next frame, and draining works on both.)
    pub(crate) fn drain_frame(&self, words: usize) {
        for _ in 0..words {
            self.read(Register::RxDataFifo);
        }
    }
}
