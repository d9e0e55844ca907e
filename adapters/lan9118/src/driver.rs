//! The driver: bringing the chip up, the link, and what it has counted.

use crate::chip::Chip;
use crate::error::{Error, Wait};
use crate::fields::{hw_cfg, id_rev, int_sts, pmt_ctrl, tx_cfg, BYTE_TEST_VALUE};
use crate::mac::control;
use crate::phy::Link;
use crate::receiver::{Receiver, RxCounters};
use crate::register::{Register, Registers};
use crate::transmitter::{Transmitter, TxCounters};

/// Reads of BYTE_TEST before the driver decides no chip answers.
const BYTE_TEST_TRIES: u32 = 1_000;

/// What the board decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// The station address (`[0]` is the first byte on the wire). The
    /// chip can load one from an EEPROM; this driver always sets its own,
    /// so the address smoltcp sends from is the one the chip filters on.
    pub mac_address: [u8; 6],
}

/// Counters of both directions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// The receive side.
    pub rx: RxCounters,
    /// The transmit side.
    pub tx: TxCounters,
}

/// A LAN9118 driven through `R`, with its receive and transmit buffers
/// (about 3 KiB: one frame each way, since smoltcp may hold a receive and
/// a transmit token at once). Polled: it enables no interrupt.
#[derive(Debug)]
pub struct Lan9118<R> {
    pub(crate) chip: Chip<R>,
    pub(crate) receiver: Receiver,
    pub(crate) transmitter: Transmitter,
    id_rev: u32,
    full_duplex: bool,
}

impl<R: Registers> Lan9118<R> {
    /// Brings the chip up: checks the bus (BYTE_TEST) and the chip id
    /// (ID_REV), soft-resets it, sets the FIFO sizes, turns interrupts off,
    /// sets the MAC address, resets the PHY and starts auto-negotiation,
    /// sets address filtering (own address and broadcast), and turns the
    /// transmitter and receiver on. It does not wait for the link: call
    /// [`poll_link`](Self::poll_link) until it reports one (at once under
    /// QEMU; seconds on a cable), so that the MAC's duplex matches the
    /// PHY's.
    pub fn new(registers: R, config: Config) -> Result<Self, Error> {
        let chip = Chip::new(registers);
        let id_rev = bring_up(&chip, &config)?;
        let mut driver = Lan9118 {
            chip,
            receiver: Receiver::new(),
            transmitter: Transmitter::new(),
            id_rev,
            full_duplex: false,
        };
        driver.poll_link()?;
        Ok(driver)
    }

    /// The negotiated link, or `None` while the link is down or still
    /// negotiating. When the link's duplex differs from the MAC's, sets the
    /// MAC's (MAC_CR FDPX): a half-duplex MAC on a full-duplex link sees
    /// false collisions under load. A board calls this now and then (say
    /// once a second); each call is a few MII reads.
    pub fn poll_link(&mut self) -> Result<Option<Link>, Error> {
        let link = self.chip.link()?;
        if let Some(link) = link {
            if link.full_duplex != self.full_duplex {
                let (set, clear) = if link.full_duplex {
                    (control::FDPX, 0)
                } else {
                    (0, control::FDPX)
                };
                self.chip.mac_control_update(set, clear)?;
                self.full_duplex = link.full_duplex;
            }
        }
        Ok(link)
    }

    /// ID_REV as read at start-up: chip id in the high half, revision in
    /// the low half.
    pub fn id_rev(&self) -> u32 {
        self.id_rev
    }

    /// The station address the MAC holds, read back from the chip.
    pub fn mac_address(&self) -> Result<[u8; 6], Error> {
        self.chip.mac_address()
    }

    /// What the driver has counted since it started.
    pub fn counters(&self) -> Counters {
        Counters {
            rx: self.receiver.counters,
            tx: self.transmitter.counters,
        }
    }

    /// The register access, for a look at the chip beside the driver (the
    /// tests inspect their register model through it).
    pub fn registers(&self) -> &R {
        self.chip.registers()
    }

    /// Ends the driver, handing back the register access. The chip keeps
    /// running as it was.
    pub fn release(self) -> R {
        self.chip.into_registers()
    }
}

/// The bring-up sequence of [`Lan9118::new`]; returns ID_REV.
fn bring_up<R: Registers>(chip: &Chip<R>, config: &Config) -> Result<u32, Error> {
    // BYTE_TEST answers even before the chip is ready after power-up.
    chip.poll(
        Register::ByteTest,
        BYTE_TEST_TRIES,
        Wait::DeviceReady,
        |v| v == BYTE_TEST_VALUE,
    )
    .map_err(|_| Error::NoChip {
        byte_test: chip.read(Register::ByteTest),
    })?;
    let id_rev = chip.read(Register::IdRev);
    if !id_rev::SUPPORTED_IDS.contains(&id_rev::chip_id(id_rev)) {
        return Err(Error::UnsupportedChip { id_rev });
    }

    chip.write(Register::HwCfg, hw_cfg::SRST);
    chip.wait_clear(Register::HwCfg, hw_cfg::SRST, Wait::SoftReset)?;
    chip.wait_set(Register::PmtCtrl, pmt_ctrl::READY, Wait::DeviceReady)?;
    chip.write(Register::HwCfg, hw_cfg::TX_FIFO_SIZE_5K | hw_cfg::MBO);

    // Polled driver: no interrupt sources, nothing pending.
    chip.write(Register::IntEn, 0);
    chip.write(Register::IntSts, int_sts::ALL);

    chip.set_mac_address(config.mac_address)?;
    chip.start_phy()?;

    // RX_CFG stays at its reset value (see `fields::rx_cfg`). Filtering:
    // frames for the station address, and broadcasts (ARP).
    chip.write(Register::TxCfg, tx_cfg::TX_ON);
    chip.mac_control_update(
        control::TXEN | control::RXEN,
        control::PRMS
            | control::BCAST
            | control::HO
            | control::INVFILT
            | control::RXALL
            | control::FDPX,
    )?;
    Ok(id_rev)
}
