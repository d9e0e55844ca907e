//! Transmit: a frame goes into the TX data FIFO as command A, command B,
//! then its bytes in little-endian words; its status word comes back in the
//! TX status FIFO once it is on the wire.

use crate::chip::Chip;
use crate::register::{Register, Registers};
use crate::rx::MAX_FRAME_LEN;

/// The TX data FIFO space one frame of up to [`MAX_FRAME_LEN`] bytes needs:
/// two command words and the data words. [`Device::transmit`]
/// (smoltcp::phy::Device::transmit) hands out a token only when this much is
/// free, because the frame's length is known only when the token is used.
pub(crate) const MAX_FRAME_SPACE: u32 = (8 + MAX_FRAME_LEN.div_ceil(4) * 4) as u32;

/// The two command words that precede a frame's data (datasheet section
/// 3.12.3): the whole frame in one buffer, so first and last segment at
/// once, no data offset, 4-byte end alignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxCommand {
    /// Command A: segment flags and buffer size.
    pub a: u32,
    /// Command B: packet tag and packet length.
    pub b: u32,
}

impl TxCommand {
    const FIRST_SEGMENT: u32 = 1 << 13;
    const LAST_SEGMENT: u32 = 1 << 12;
    /// Buffer size and packet length are 11-bit fields.
    const LENGTH_MASK: u32 = 0x7ff;

    /// The command words for a `len`-byte frame (at most [`MAX_FRAME_LEN`])
    /// carrying `tag`, which the chip echoes in the frame's TX status word.
    /// The chip adds the CRC and pads short frames to 64 bytes.
    pub const fn new(len: usize, tag: u16) -> TxCommand {
        let len = len as u32 & Self::LENGTH_MASK;
        TxCommand {
            a: Self::FIRST_SEGMENT | Self::LAST_SEGMENT | len,
            b: (tag as u32) << 16 | len,
        }
    }
}

/// A TX status word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxStatus(pub u32);

impl TxStatus {
    /// The tag of the frame's command B.
    pub const fn tag(self) -> u16 {
        (self.0 >> 16) as u16
    }

    /// The error summary bit: loss of carrier, late or excessive
    /// collisions, excessive deferral, underrun.
    pub const fn has_error(self) -> bool {
        self.0 & (1 << 15) != 0
    }
}

impl<R: Registers> Chip<R> {
    /// Writes `frame` (at most [`MAX_FRAME_LEN`] bytes) into the TX data
    /// FIFO. The caller has checked that [`MAX_FRAME_SPACE`] bytes are free.
    pub(crate) fn write_frame(&self, frame: &[u8], tag: u16) {
        let command = TxCommand::new(frame.len(), tag);
        self.push(Register::TxDataFifo, command.a);
        self.push(Register::TxDataFifo, command.b);
        for chunk in frame.chunks(4) {
            let mut word = [0u8; 4];
            for (to, from) in word.iter_mut().zip(chunk) {
                *to = *from;
            }
            self.push(Register::TxDataFifo, u32::from_le_bytes(word));
        }
    }
}
