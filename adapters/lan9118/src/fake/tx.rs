//! The TX data FIFO's consumer: command A, command B, data words, one frame
//! per first-to-last segment run, as the datasheet describes it.

use crate::tx::TxCommand;

/// The longest frame the model assembles (the chip's limit is 2 KiB).
pub(crate) const MAX_ASSEMBLED: usize = 2048;

const FIRST_SEGMENT: u32 = 1 << 13;
const LAST_SEGMENT: u32 = 1 << 12;

/// A frame the model has put on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentFrame {
    /// The command words it came with (of its last segment's A, and B).
    pub command: TxCommand,
    /// Its length in bytes.
    pub len: usize,
}

#[derive(Debug, Clone, Copy)]
enum Expect {
    CommandA,
    CommandB {
        a: u32,
    },
    Data {
        a: u32,
        b: u32,
        buffer_left: usize,
        words_left: usize,
    },
}

/// What a word written to the TX data FIFO led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Taken, nothing more to do.
    Taken,
    /// The last word of a frame: it goes on the wire.
    Frame(SentFrame),
    /// Against the datasheet's rules (a frame not starting with a first
    /// segment, a data offset or alignment this model does not do, a packet
    /// length that disagrees with the data).
    ProtocolError,
}

#[derive(Debug, Clone)]
pub(crate) struct Assembler {
    expect: Expect,
    bytes: [u8; MAX_ASSEMBLED],
    len: usize,
    /// Bytes of the TX data FIFO the frame being written occupies.
    pub(crate) fifo_bytes: usize,
}

impl Assembler {
    pub(crate) const fn new() -> Self {
        Assembler {
            expect: Expect::CommandA,
            bytes: [0; MAX_ASSEMBLED],
            len: 0,
            fifo_bytes: 0,
        }
    }

    pub(crate) fn reset(&mut self) {
        self.expect = Expect::CommandA;
        self.len = 0;
        self.fifo_bytes = 0;
    }

    /// The frame last completed (valid after `Pushed::Frame`).
    pub(crate) fn frame(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&[])
    }

    pub(crate) fn push(&mut self, word: u32) -> Pushed {
        self.fifo_bytes += 4;
        match self.expect {
            Expect::CommandA => {
                // Only what the driver uses: no data start offset, 4-byte end
                // alignment.
                if (word >> 16) & 0x1f != 0 || (word >> 24) & 0x3 != 0 {
                    self.reset();
                    return Pushed::ProtocolError;
                }
                self.expect = Expect::CommandB { a: word };
                Pushed::Taken
            }
            Expect::CommandB { a } => {
                if a & FIRST_SEGMENT != 0 {
                    self.len = 0;
                }
                let buffer = (a & 0x7ff) as usize;
                self.expect = Expect::Data {
                    a,
                    b: word,
                    buffer_left: buffer,
                    words_left: buffer.div_ceil(4),
                };
                if buffer == 0 {
                    return self.end_of_buffer(a, word);
                }
                Pushed::Taken
            }
            Expect::Data {
                a,
                b,
                buffer_left,
                words_left,
            } => {
                for byte in word.to_le_bytes().into_iter().take(buffer_left) {
                    match self.bytes.get_mut(self.len) {
                        Some(slot) => *slot = byte,
                        None => {
                            self.reset();
                            return Pushed::ProtocolError;
                        }
                    }
                    self.len += 1;
                }
                let buffer_left = buffer_left.saturating_sub(4);
                if words_left > 1 {
                    self.expect = Expect::Data {
                        a,
                        b,
                        buffer_left,
                        words_left: words_left - 1,
                    };
                    return Pushed::Taken;
                }
                self.end_of_buffer(a, b)
            }
        }
    }

    fn end_of_buffer(&mut self, a: u32, b: u32) -> Pushed {
        self.expect = Expect::CommandA;
        if a & LAST_SEGMENT == 0 {
            return Pushed::Taken;
        }
        self.fifo_bytes = 0;
        if (b & 0x7ff) as usize != self.len {
            return Pushed::ProtocolError;
        }
        Pushed::Frame(SentFrame {
            command: TxCommand { a, b },
            len: self.len,
        })
    }
}
