//! The chip's register map and the one trait a board implements to reach
//! it.

/// A 32-bit register of the LAN9118, named by its byte offset from the
/// chip's base address.
///
/// Only the registers this driver uses are listed. Since [`Registers`] is
/// asked for a `Register` and never for a raw number, an implementation can
/// only ever be asked for an aligned offset inside the chip's 256-byte
/// window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Register {
    /// RX data FIFO port (aliased over 0x00..0x1c): each read pops a word.
    RxDataFifo = 0x00,
    /// TX data FIFO port (aliased over 0x20..0x3c): each write pushes a word.
    TxDataFifo = 0x20,
    /// RX status FIFO port: each read pops one frame's status word.
    RxStatusFifo = 0x40,
    /// TX status FIFO port: each read pops one sent frame's status word.
    TxStatusFifo = 0x48,
    /// Chip id (high half) and revision (low half).
    IdRev = 0x50,
    /// Interrupt status (write 1 to clear).
    IntSts = 0x58,
    /// Interrupt enables.
    IntEn = 0x5c,
    /// Reads 0x8765_4321 whatever the chip's state: the bus check.
    ByteTest = 0x64,
    /// Receive configuration (alignment, offset, RX_DUMP).
    RxCfg = 0x6c,
    /// Transmit configuration (TX_ON, FIFO dumps).
    TxCfg = 0x70,
    /// Hardware configuration (soft reset, FIFO sizes).
    HwCfg = 0x74,
    /// RX FIFO levels: status words and data bytes in use.
    RxFifoInf = 0x7c,
    /// TX FIFO levels: status words in use and data bytes free.
    TxFifoInf = 0x80,
    /// Power management control (the READY bit).
    PmtCtrl = 0x84,
    /// Indirect access to the MAC's own registers: the command.
    MacCsrCmd = 0xa4,
    /// Indirect access to the MAC's own registers: the data.
    MacCsrData = 0xa8,
}

impl Register {
    /// The register's byte offset from the chip's base address.
    pub const fn offset(self) -> usize {
        self as usize
    }
}

/// Reads and writes the chip's 32-bit registers.
///
/// The driver is generic over this, so it runs against the memory-mapped
/// chip ([`Mmio`](crate::Mmio)) on a board and against a register model on
/// the host. Access is through `&self`: registers are hardware with side
/// effects, not memory the driver owns, and a smoltcp receive hands out a
/// receive and a transmit token at once, both of which need the chip.
///
/// Each call must be one 32-bit access (FIFO ports pop or push on every
/// access, so reads must never be merged, repeated or elided).
pub trait Registers {
    /// Reads `register`.
    fn read(&self, register: Register) -> u32;
    /// Writes `value` to `register`.
    fn write(&self, register: Register, value: u32);
}
