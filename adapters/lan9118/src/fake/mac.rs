//! The model's MAC: its CSR interface (MAC_CSR_CMD/DATA with the busy
//! bit), its registers, and MII access to the PHY.

use super::*;

impl State {
    pub(super) fn start_csr(&mut self, command: u32) {
        if self.csr_busy_reads > 0 {
            self.misuse.protocol_errors += 1;
            return;
        }
        self.csr_cmd = command & !CSR_BUSY;
        if command & CSR_BUSY == 0 {
            return;
        }
        let index = command & 0xff;
        if command & CSR_READ != 0 {
            self.csr_result = Some(self.mac_read(index));
        } else {
            self.mac_write(index, self.csr_data);
        }
        self.csr_busy_reads = self.options.busy_reads;
        if self.csr_busy_reads == 0 {
            self.finish_csr();
        }
    }

    pub(super) fn finish_csr(&mut self) {
        if let Some(value) = self.csr_result.take() {
            self.csr_data = value;
        }
    }

    fn mac_read(&mut self, index: u32) -> u32 {
        match index {
            1 => self.mac_cr,
            2 => self.addr_high,
            3 => self.addr_low,
            6 if self.mii_busy_reads > 0 => {
                self.mii_busy_reads -= 1;
                if self.mii_busy_reads == 0 {
                    if let Some(value) = self.mii_result.take() {
                        self.mii_data = u32::from(value);
                    }
                }
                self.mii_acc | MII_BUSY
            }
            6 => self.mii_acc,
            7 => self.mii_data,
            _ => 0,
        }
    }

    fn mac_write(&mut self, index: u32, value: u32) {
        match index {
            1 => {
                if self.mac_cr & MAC_CR_RXEN != 0 && value & MAC_CR_RXEN == 0 {
                    self.int_sts |= INT_RXSTOP;
                }
                self.mac_cr = value;
            }
            2 => self.addr_high = value & 0xffff,
            3 => self.addr_low = value,
            6 => self.start_mii(value),
            7 if self.mii_busy_reads > 0 => self.misuse.protocol_errors += 1,
            7 => self.mii_data = value & 0xffff,
            _ => {}
        }
    }

    fn start_mii(&mut self, command: u32) {
        if self.mii_busy_reads > 0 || command & MII_BUSY == 0 {
            self.misuse.protocol_errors += 1;
            return;
        }
        self.mii_acc = command & !MII_BUSY;
        let phy = (command >> 11) & 0x1f;
        let register = (command >> 6) & 0x1f;
        if command & MII_WRITE != 0 {
            if phy == INTERNAL_PHY {
                self.phy.write(register, (self.mii_data & 0xffff) as u16);
            }
        } else {
            // No PHY at another address: the bus floats high.
            self.mii_result = Some(if phy == INTERNAL_PHY {
                self.phy.read(register)
            } else {
                0xffff
            });
        }
        self.mii_busy_reads = self.options.busy_reads;
        if self.mii_busy_reads == 0 {
            if let Some(value) = self.mii_result.take() {
                self.mii_data = u32::from(value);
            }
        }
    }
}
