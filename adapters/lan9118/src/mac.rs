//! The MAC's own registers, reached indirectly through MAC_CSR_CMD and
//! MAC_CSR_DATA.

use crate::chip::Chip;
use crate::error::{Error, Wait};
use crate::register::{Register, Registers};

/// A MAC control and status register, by its MAC_CSR_CMD index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum MacRegister {
    /// MAC_CR: receiver, transmitter, duplex, address filtering.
    Control = 1,
    /// ADDRH: MAC address bytes 4 and 5.
    AddressHigh = 2,
    /// ADDRL: MAC address bytes 0 to 3.
    AddressLow = 3,
    /// MII_ACC: the PHY management command.
    MiiAccess = 6,
    /// MII_DATA: the PHY management data.
    MiiData = 7,
}

/// MAC_CSR_CMD fields.
mod csr_cmd {
    /// Set to start a command; the MAC clears it when done.
    pub const BUSY: u32 = 1 << 31;
    /// Read (set) or write (clear).
    pub const READ: u32 = 1 << 30;
}

/// MAC_CR fields.
pub(crate) mod control {
    /// Receiver enable.
    pub const RXEN: u32 = 1 << 2;
    /// Transmitter enable.
    pub const TXEN: u32 = 1 << 3;
    /// Broadcast frames are dropped when set (so the driver clears it: ARP
    /// needs broadcasts).
    pub const BCAST: u32 = 1 << 11;
    /// Hash-only filtering of unicast frames.
    pub const HO: u32 = 1 << 15;
    /// Inverse filtering.
    pub const INVFILT: u32 = 1 << 17;
    /// Promiscuous: set at reset; cleared so that only frames for the
    /// station's own address (and broadcasts) reach the RX FIFO.
    pub const PRMS: u32 = 1 << 18;
    /// Full duplex; must match what the PHY negotiated.
    pub const FDPX: u32 = 1 << 20;
    /// Receive all frames, even those failing the address filter.
    pub const RXALL: u32 = 1 << 31;
}

impl<R: Registers> Chip<R> {
    /// Reads a MAC register.
    pub(crate) fn mac_read(&self, register: MacRegister) -> Result<u32, Error> {
        self.wait_clear(Register::MacCsrCmd, csr_cmd::BUSY, Wait::MacCsr)?;
        self.write(
            Register::MacCsrCmd,
            csr_cmd::BUSY | csr_cmd::READ | register as u32,
        );
        self.wait_clear(Register::MacCsrCmd, csr_cmd::BUSY, Wait::MacCsr)?;
        Ok(self.read(Register::MacCsrData))
    }

    /// Writes a MAC register, and waits until the MAC has taken it.
    pub(crate) fn mac_write(&self, register: MacRegister, value: u32) -> Result<(), Error> {
        self.wait_clear(Register::MacCsrCmd, csr_cmd::BUSY, Wait::MacCsr)?;
        self.write(Register::MacCsrData, value);
        self.write(Register::MacCsrCmd, csr_cmd::BUSY | register as u32);
        self.wait_clear(Register::MacCsrCmd, csr_cmd::BUSY, Wait::MacCsr)
    }

    /// Sets, then clears, bits of MAC_CR (read-modify-write).
    pub(crate) fn mac_control_update(&self, set: u32, clear: u32) -> Result<(), Error> {
        let value = self.mac_read(MacRegister::Control)?;
        self.mac_write(MacRegister::Control, (value | set) & !clear)
    }

    /// Sets the station address the MAC filters on and sends from
    /// (`address[0]` is the first byte on the wire).
    pub(crate) fn set_mac_address(&self, address: [u8; 6]) -> Result<(), Error> {
        let [a0, a1, a2, a3, a4, a5] = address;
        self.mac_write(
            MacRegister::AddressLow,
            u32::from_le_bytes([a0, a1, a2, a3]),
        )?;
        self.mac_write(
            MacRegister::AddressHigh,
            u32::from(u16::from_le_bytes([a4, a5])),
        )
    }

    /// The station address the MAC holds.
    pub(crate) fn mac_address(&self) -> Result<[u8; 6], Error> {
        let [a0, a1, a2, a3] = self.mac_read(MacRegister::AddressLow)?.to_le_bytes();
        let [a4, a5, _, _] = self.mac_read(MacRegister::AddressHigh)?.to_le_bytes();
        Ok([a0, a1, a2, a3, a4, a5])
    }
}
