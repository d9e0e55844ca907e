//! The internal PHY's registers as the MII interface sees them.

/// Basic control after reset: auto-negotiation on, 100 Mbit/s, full duplex.
const CONTROL_RESET: u16 = 0x3100;
const CONTROL_RESET_BIT: u16 = 1 << 15;
const CONTROL_AUTONEG: u16 = 1 << 12;
const CONTROL_RESTART: u16 = 1 << 9;
/// Basic status: 10/100 half/full capable, can auto-negotiate, extended
/// registers.
const STATUS_CAPABILITIES: u16 = 0x7809;
const STATUS_AUTONEG_COMPLETE: u16 = 1 << 5;
const STATUS_LINK: u16 = 1 << 2;
const ADVERTISEMENT_RESET: u16 = 0x01e1;

#[derive(Debug, Clone)]
pub(crate) struct Phy {
    control: u16,
    negotiated: bool,
    advertisement: u16,
    /// What the link partner offers; `None`: no cable.
    partner: Option<u16>,
    /// Reads of the control register that still show the reset bit.
    reset_reads: u32,
    busy_reads: u32,
}

impl Phy {
    pub(crate) fn new(partner: Option<u16>, busy_reads: u32) -> Self {
        let mut phy = Phy {
            control: CONTROL_RESET,
            negotiated: false,
            advertisement: ADVERTISEMENT_RESET,
            partner,
            reset_reads: 0,
            busy_reads,
        };
        phy.reset();
        phy
    }

    fn reset(&mut self) {
        self.control = CONTROL_RESET;
        self.advertisement = ADVERTISEMENT_RESET;
        self.negotiated = false;
        self.reset_reads = self.busy_reads;
    }

    pub(crate) fn read(&mut self, register: u32) -> u16 {
        match register {
            0 if self.reset_reads > 0 => {
                self.reset_reads -= 1;
                self.control | CONTROL_RESET_BIT
            }
            0 => self.control,
            1 if self.negotiated && self.partner.is_some() => {
                STATUS_CAPABILITIES | STATUS_AUTONEG_COMPLETE | STATUS_LINK
            }
            1 => STATUS_CAPABILITIES,
            2 => 0x0007,
            3 => 0xc0d1,
            4 => self.advertisement,
            5 if self.negotiated => self.partner.unwrap_or(0),
            _ => 0,
        }
    }

    pub(crate) fn write(&mut self, register: u32, value: u16) {
        match register {
            0 if value & CONTROL_RESET_BIT != 0 => self.reset(),
            0 => {
                self.control = value & !(CONTROL_RESET_BIT | CONTROL_RESTART);
                // Negotiation completes at once, as in QEMU.
                self.negotiated = value & CONTROL_AUTONEG != 0;
            }
            4 => self.advertisement = value,
            _ => {}
        }
    }

    pub(crate) fn advertisement(&self) -> u16 {
        self.advertisement
    }
}
