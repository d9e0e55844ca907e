//! A frame arriving from the wire: the address filter, and the frame and
//! its CRC packed into the RX FIFOs with a status word.

use super::*;

impl State {
    fn accepts(&self, destination: [u8; 6]) -> bool {
        let [a0, a1, a2, a3, a4, a5] = destination;
        let own = u32::from_le_bytes([a0, a1, a2, a3]) == self.addr_low
            && u32::from(u16::from_le_bytes([a4, a5])) == self.addr_high;
        let broadcast = destination == [0xff; 6];
        self.mac_cr & MAC_CR_PRMS != 0 || own || (broadcast && self.mac_cr & MAC_CR_BCAST == 0)
    }

    pub(super) fn receive(&mut self, frame: &[u8], error_bits: u32) -> bool {
        if self.mac_cr & MAC_CR_RXEN == 0 || frame.len() > MAX_ASSEMBLED {
            return false;
        }
        let mut destination = [0u8; 6];
        for (to, from) in destination.iter_mut().zip(frame) {
            *to = *from;
        }
        let mut status = error_bits;
        if !self.accepts(destination) {
            if self.mac_cr & MAC_CR_RXALL == 0 {
                return false;
            }
            status |= RX_STATUS_FILTER_FAIL;
        }
        let [first, ..] = destination;
        if destination == [0xff; 6] {
            status |= RX_STATUS_BROADCAST;
        } else if first & 1 != 0 {
            status |= RX_STATUS_MULTICAST;
        }
        let with_crc = frame.len() + 4;
        if self.rx_data.free() < with_crc.div_ceil(4) || self.rx_status.free() == 0 {
            return false;
        }
        let crc = crc32(frame).to_le_bytes();
        let mut bytes = frame.iter().chain(crc.iter()).copied();
        for _ in 0..with_crc.div_ceil(4) {
            let mut word = [0u8; 4];
            for (to, from) in word.iter_mut().zip(bytes.by_ref()) {
                *to = from;
            }
            self.rx_data.push(u32::from_le_bytes(word));
        }
        self.rx_status.push((with_crc as u32) << 16 | status);
        true
    }
}

/// The Ethernet frame check sequence (CRC-32, reflected, as sent: the
/// first byte on the wire is the low byte).
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = u32::MAX;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
