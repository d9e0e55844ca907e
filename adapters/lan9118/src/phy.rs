//! The internal PHY, reached over the MII management interface (MII_ACC and
//! MII_DATA, themselves MAC registers): reset, auto-negotiation, link state.

use crate::chip::{Chip, PHY_RESET_POLL_LIMIT};
use crate::error::{Error, Wait};
use crate::mac::MacRegister;
use crate::register::Registers;

/// The internal PHY's address on the management bus.
const INTERNAL_PHY_ADDRESS: u32 = 1;

/// MII_ACC fields.
mod mii_acc {
    /// Set to start a management cycle; cleared when it is done.
    pub const BUSY: u32 = 1 << 0;
    /// Write (set) or read (clear).
    pub const WRITE: u32 = 1 << 1;
    pub const fn command(phy: u32, register: u32) -> u32 {
        (phy & 0x1f) << 11 | (register & 0x1f) << 6
    }
}

/// A PHY register (IEEE 802.3 clause 22 numbering).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum PhyRegister {
    BasicControl = 0,
    BasicStatus = 1,
    Advertisement = 4,
    LinkPartnerAbility = 5,
}

mod basic_control {
    pub const RESET: u16 = 1 << 15;
    pub const AUTONEG_ENABLE: u16 = 1 << 12;
    pub const AUTONEG_RESTART: u16 = 1 << 9;
}

mod basic_status {
    pub const AUTONEG_COMPLETE: u16 = 1 << 5;
    /// Latched low: the first read after a drop reads 0 once.
    pub const LINK_UP: u16 = 1 << 2;
}

/// Advertisement and link partner ability bits.
mod ability {
    pub const SELECTOR_802_3: u16 = 0x0001;
    pub const HALF_10: u16 = 1 << 5;
    pub const FULL_10: u16 = 1 << 6;
    pub const HALF_100: u16 = 1 << 7;
    pub const FULL_100: u16 = 1 << 8;
}

/// What the PHY negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    /// 100 Mbit/s (else 10).
    pub fast: bool,
    /// Full duplex (else half).
    pub full_duplex: bool,
}

impl<R: Registers> Chip<R> {
    fn mii_read(&self, register: PhyRegister) -> Result<u16, Error> {
        self.mii_idle()?;
        let command = mii_acc::command(INTERNAL_PHY_ADDRESS, register as u32) | mii_acc::BUSY;
        self.mac_write(MacRegister::MiiAccess, command)?;
        self.mii_idle()?;
        // MII_DATA's upper half is reserved.
        Ok((self.mac_read(MacRegister::MiiData)? & 0xffff) as u16)
    }

    fn mii_write(&self, register: PhyRegister, value: u16) -> Result<(), Error> {
        self.mii_idle()?;
        self.mac_write(MacRegister::MiiData, u32::from(value))?;
        let command = mii_acc::command(INTERNAL_PHY_ADDRESS, register as u32)
            | mii_acc::WRITE
            | mii_acc::BUSY;
        self.mac_write(MacRegister::MiiAccess, command)?;
        self.mii_idle()
    }

    fn mii_idle(&self) -> Result<(), Error> {
        for _ in 0..MII_POLL_LIMIT {
            if self.mac_read(MacRegister::MiiAccess)? & mii_acc::BUSY == 0 {
                return Ok(());
            }
        }
        Err(Error::Timeout(Wait::Mii))
    }

    /// Resets the PHY, advertises 10 and 100 Mbit/s at both duplexes and
    /// (re)starts auto-negotiation. Does not wait for a link: negotiation
    /// takes seconds on a cable (QEMU's model completes it at once); see
    /// [`Chip::link`].
    pub(crate) fn start_phy(&self) -> Result<(), Error> {
        self.mii_write(PhyRegister::BasicControl, basic_control::RESET)?;
        let mut reset_done = false;
        for _ in 0..PHY_RESET_POLL_LIMIT {
            if self.mii_read(PhyRegister::BasicControl)? & basic_control::RESET == 0 {
                reset_done = true;
                break;
            }
        }
        if !reset_done {
            return Err(Error::Timeout(Wait::PhyReset));
        }
        self.mii_write(
            PhyRegister::Advertisement,
            ability::SELECTOR_802_3
                | ability::HALF_10
                | ability::FULL_10
                | ability::HALF_100
                | ability::FULL_100,
        )?;
        self.mii_write(
            PhyRegister::BasicControl,
            basic_control::AUTONEG_ENABLE | basic_control::AUTONEG_RESTART,
        )
    }

    /// The negotiated link, or `None` while the link is down or
    /// auto-negotiation has not completed.
    pub(crate) fn link(&self) -> Result<Option<Link>, Error> {
        // The link bit latches low: the first read clears a past drop, the
        // second tells the present.
        self.mii_read(PhyRegister::BasicStatus)?;
        let status = self.mii_read(PhyRegister::BasicStatus)?;
        let needed = basic_status::LINK_UP | basic_status::AUTONEG_COMPLETE;
        if status & needed != needed {
            return Ok(None);
        }
        let common = self.mii_read(PhyRegister::Advertisement)?
            & self.mii_read(PhyRegister::LinkPartnerAbility)?;
        // 802.3 annex 28B priority: 100 full, 100 half, 10 full, 10 half.
        let link = if common & ability::FULL_100 != 0 {
            Link {
                fast: true,
                full_duplex: true,
            }
        } else if common & ability::HALF_100 != 0 {
            Link {
                fast: true,
                full_duplex: false,
            }
        } else if common & ability::FULL_10 != 0 {
            Link {
                fast: false,
                full_duplex: true,
            }
        } else {
            Link {
                fast: false,
                full_duplex: false,
            }
        };
        Ok(Some(link))
    }
}

/// Polls of MII_ACC's busy bit (each a MAC CSR read) before giving up.
const MII_POLL_LIMIT: u32 = 10_000;
