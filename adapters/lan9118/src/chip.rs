//! The chip's registers with the timing rules the datasheet asks for:
//! bounded polling of busy and ready bits, and settling reads after writes.

use crate::error::{Error, Wait};
use crate::fields::{rx_fifo_inf, tx_fifo_inf};
use crate::register::{Register, Registers};

/// Polls of a busy or ready bit before the driver gives up. The driver has
/// no clock; a register read takes at least tens of nanoseconds on real
/// hardware, so this is milliseconds at least, beyond the microseconds a
/// reset or a MAC/MII command take.
const POLL_LIMIT: u32 = 100_000;

/// Polls for the PHY's own reset, which 802.3 allows up to 0.5 s.
pub(crate) const PHY_RESET_POLL_LIMIT: u32 = 1_000_000;

/// BYTE_TEST reads after a write to a control register or a pop of a status
/// FIFO. The datasheet's read-after-write and read-after-read rules ask for
/// up to about 165 ns before a dependent register shows the change, and
/// names dummy reads of BYTE_TEST (at least 45 ns each) as the way to wait.
const SETTLE_READS: usize = 4;

/// How full the RX FIFOs are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RxLevels {
    /// Frames whose status word waits in the RX status FIFO.
    pub status_words: u32,
    /// Bytes in the RX data FIFO.
    pub data_bytes: u32,
}

/// How full the TX FIFOs are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TxLevels {
    /// Sent frames whose status word waits in the TX status FIFO.
    pub status_words: u32,
    /// Bytes free in the TX data FIFO.
    pub free_bytes: u32,
}

/// The registers, and the access rules every operation follows.
#[derive(Debug)]
pub(crate) struct Chip<R> {
    registers: R,
}

impl<R: Registers> Chip<R> {
    pub(crate) fn new(registers: R) -> Self {
        Chip { registers }
    }

    pub(crate) fn registers(&self) -> &R {
        &self.registers
    }

    pub(crate) fn into_registers(self) -> R {
        self.registers
    }

    pub(crate) fn read(&self, register: Register) -> u32 {
        self.registers.read(register)
    }

    /// Writes a FIFO port: no settling, the next word may follow at once.
    pub(crate) fn push(&self, register: Register, value: u32) {
        self.registers.write(register, value);
    }

    /// Writes a control register, then waits until the change shows.
    pub(crate) fn write(&self, register: Register, value: u32) {
        self.registers.write(register, value);
        self.settle();
    }

    /// Pops a status FIFO, then waits until the FIFO levels show it.
    pub(crate) fn pop_status(&self, register: Register) -> u32 {
        let value = self.registers.read(register);
        self.settle();
        value
    }

    fn settle(&self) {
        for _ in 0..SETTLE_READS {
            self.registers.read(Register::ByteTest);
        }
    }

    /// Reads `register` until `done` says yes, at most `limit` times.
    pub(crate) fn poll(
        &self,
        register: Register,
        limit: u32,
        wait: Wait,
        done: impl Fn(u32) -> bool,
    ) -> Result<u32, Error> {
        for _ in 0..limit {
            let value = self.registers.read(register);
            if done(value) {
                return Ok(value);
            }
        }
        Err(Error::Timeout(wait))
    }

    /// Reads `register` until the bits of `mask` are clear.
    pub(crate) fn wait_clear(
        &self,
        register: Register,
        mask: u32,
        wait: Wait,
    ) -> Result<(), Error> {
        self.poll(register, POLL_LIMIT, wait, |v| v & mask == 0)
            .map(|_| ())
    }

    /// Reads `register` until the bits of `mask` are set.
    pub(crate) fn wait_set(&self, register: Register, mask: u32, wait: Wait) -> Result<(), Error> {
        self.poll(register, POLL_LIMIT, wait, |v| v & mask == mask)
            .map(|_| ())
    }

    pub(crate) fn rx_levels(&self) -> RxLevels {
        let value = self.read(Register::RxFifoInf);
        RxLevels {
            status_words: rx_fifo_inf::status_used(value),
            data_bytes: rx_fifo_inf::data_used(value),
        }
    }

    pub(crate) fn tx_levels(&self) -> TxLevels {
        let value = self.read(Register::TxFifoInf);
        TxLevels {
            status_words: tx_fifo_inf::status_used(value),
            free_bytes: tx_fifo_inf::data_free(value),
        }
    }
}
