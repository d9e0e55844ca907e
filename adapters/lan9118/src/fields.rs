//! Bit fields of the system control and status registers (datasheet
//! section 5.3), one module per register. The MAC's and the PHY's own
//! registers are in `mac.rs` and `phy.rs`.

/// BYTE_TEST always reads this.
pub const BYTE_TEST_VALUE: u32 = 0x8765_4321;

/// ID_REV: chip id in the high half.
pub mod id_rev {
    /// The chip ids whose register map (as used here) is the LAN9118's:
    /// LAN9115-9118, LAN9215-9218, LAN9210/9211 and LAN9220/9221 (the
    /// LAN9220 is what ARM's MPS2 boards carry).
    pub const SUPPORTED_IDS: [u16; 13] = [
        0x0115, 0x0116, 0x0117, 0x0118, 0x115a, 0x116a, 0x117a, 0x118a, 0x218a, 0x9210, 0x9211,
        0x9220, 0x9221,
    ];

    /// The chip id of an ID_REV value.
    pub const fn chip_id(id_rev: u32) -> u16 {
        (id_rev >> 16) as u16
    }
}

/// HW_CFG.
pub mod hw_cfg {
    /// Soft reset; self-clearing when the reset is done.
    pub const SRST: u32 = 1 << 0;
    /// TX FIFO size in KiB (bits 19:16). 5 (the reset value) gives a 4608 B
    /// TX data FIFO and a 10 560 B RX data FIFO.
    pub const TX_FIFO_SIZE_5K: u32 = 5 << 16;
    /// "Must be one" (bit 20), per the datasheet.
    pub const MBO: u32 = 1 << 20;
}

/// PMT_CTRL.
pub mod pmt_ctrl {
    /// The chip is ready to be accessed after a reset.
    pub const READY: u32 = 1 << 0;
}

/// TX_CFG.
pub mod tx_cfg {
    /// Transmitter on (the MAC's TXEN must be set too).
    pub const TX_ON: u32 = 1 << 1;
}

/// RX_CFG. The driver leaves end alignment (bits 31:30) at 4 bytes and the
/// data offset (RXDOFF, bits 12:8) at 0, so a frame's first byte is the low
/// byte of its first data word and no padding precedes or follows it beyond
/// the last word.
pub mod rx_cfg {
    /// Flush both RX FIFOs (self-clearing). Only with the receiver stopped.
    pub const RX_DUMP: u32 = 1 << 15;
}

/// RX_FIFO_INF.
pub mod rx_fifo_inf {
    /// Status words waiting in the RX status FIFO (RXSUSED).
    pub const fn status_used(value: u32) -> u32 {
        (value >> 16) & 0xff
    }
    /// Bytes in use in the RX data FIFO (RXDUSED).
    pub const fn data_used(value: u32) -> u32 {
        value & 0xffff
    }
}

/// TX_FIFO_INF.
pub mod tx_fifo_inf {
    /// Status words waiting in the TX status FIFO (TXSUSED).
    pub const fn status_used(value: u32) -> u32 {
        (value >> 16) & 0xff
    }
    /// Bytes free in the TX data FIFO (TDFREE).
    pub const fn data_free(value: u32) -> u32 {
        value & 0xffff
    }
}

/// INT_STS / INT_EN.
pub mod int_sts {
    /// The receiver has stopped (after MAC_CR RXEN was cleared).
    pub const RXSTOP: u32 = 1 << 24;
    /// Every bit, for clearing all pending status at start-up.
    pub const ALL: u32 = u32::MAX;
}
