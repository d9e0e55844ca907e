//! What can go wrong talking to the chip.

use core::fmt;

/// Why the driver could not bring the chip up or finish an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// BYTE_TEST did not read 0x8765_4321: no chip at this address, or a
    /// bus that is set up wrongly (0x4321_8765 means swapped 16-bit halves).
    NoChip {
        /// What BYTE_TEST read.
        byte_test: u32,
    },
    /// ID_REV names a chip outside the LAN911x/LAN921x/LAN9220 family whose
    /// register map this driver follows.
    UnsupportedChip {
        /// What ID_REV read.
        id_rev: u32,
    },
    /// A busy or ready bit did not change within the driver's poll limit.
    Timeout(Wait),
}

/// The bit the driver was polling when it gave up (the driver has no clock,
/// so its limits count register reads).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// HW_CFG SRST: the soft reset did not finish.
    SoftReset,
    /// PMT_CTRL READY: the chip did not become ready after reset.
    DeviceReady,
    /// MAC_CSR_CMD busy: the MAC did not take or answer a command.
    MacCsr,
    /// MII_ACC busy: the PHY's management interface did not finish.
    Mii,
    /// The PHY's basic control reset bit did not clear.
    PhyReset,
    /// INT_STS RXSTOP: the receiver did not stop (before an RX FIFO flush).
    ReceiverStop,
    /// RX_CFG RX_DUMP: the RX FIFO flush did not finish.
    RxDump,
}

impl fmt::Display for Wait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Wait::SoftReset => "the soft reset (HW_CFG SRST)",
            Wait::DeviceReady => "the chip to become ready (PMT_CTRL READY)",
            Wait::MacCsr => "the MAC CSR interface (MAC_CSR_CMD busy)",
            Wait::Mii => "the PHY management interface (MII_ACC busy)",
            Wait::PhyReset => "the PHY reset (basic control bit 15)",
            Wait::ReceiverStop => "the receiver to stop (INT_STS RXSTOP)",
            Wait::RxDump => "the RX FIFO flush (RX_CFG RX_DUMP)",
        })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoChip { byte_test } => write!(
                f,
                "no LAN9118 answers: BYTE_TEST reads {byte_test:#010x}, not 0x87654321"
            ),
            Error::UnsupportedChip { id_rev } => {
                write!(f, "unsupported chip: ID_REV reads {id_rev:#010x}")
            }
            Error::Timeout(wait) => write!(f, "timed out waiting for {wait}"),
        }
    }
}

impl core::error::Error for Error {}
