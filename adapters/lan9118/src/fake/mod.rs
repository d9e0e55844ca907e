//! `FakeLan9118`: a register-level model of the chip for host tests and
//! fuzzing (feature `fake`). `no_std` and allocation-free, like the driver.
//!
//! It follows the datasheet where the driver depends on it, with the
//! chip's FIFO sizes at the reset FIFO split (TX_FIF_SZ = 5: 10 560 B of
//! RX data, 176 RX status words, 4 608 B of TX data, 128 TX status words):
//!
//! - BYTE_TEST, ID_REV, soft reset (SRST reads set, and READY clear, for a
//!   few reads), interrupt status (write 1 to clear; RXSTOP when the
//!   receiver is turned off);
//! - the MAC CSR interface with its busy bit: a command shows busy for a
//!   few reads of MAC_CSR_CMD, and a read's result reaches MAC_CSR_DATA only
//!   when busy clears; a command or a data write while busy is a protocol
//!   error;
//! - MII access through MII_ACC/MII_DATA with its own busy bit, and a PHY
//!   whose reset and auto-negotiation complete after a few reads;
//! - the RX FIFOs: a received frame is its bytes and CRC packed into
//!   little-endian words, with a status word (length including the CRC);
//!   RX_FIFO_INF levels; RX_DUMP; address filtering on the MAC address
//!   (own address and broadcast, or everything while promiscuous);
//! - the TX data FIFO: command A, command B and data words assembled into a
//!   frame, a TX status word (the tag) per sent frame, TX_FIFO_INF levels
//!   (the free space can be pinned to fake a full FIFO).
//!
//! Malformed input can be pushed straight into the RX FIFOs. The model
//! never panics; it counts what a correct driver never does: reads of an
//! empty FIFO (underflows) and protocol errors.

mod fifo;
mod mac;
mod phy;
mod rx;
mod tx;

use crate::register::{Register, Registers};
use crate::tx::TxCommand;
use core::cell::RefCell;
use fifo::Fifo;
use phy::Phy;
pub use tx::SentFrame;
use tx::{Assembler, Pushed, MAX_ASSEMBLED};

const BYTE_TEST: u32 = 0x8765_4321;
const RX_DATA_WORDS: usize = 10_560 / 4;
const RX_STATUS_WORDS: usize = 704 / 4;
const TX_DATA_BYTES: usize = 4_608;
const TX_STATUS_WORDS: usize = 512 / 4;
/// Frames the model keeps for the test to look at.
const SENT_KEPT: usize = 8;

const HW_CFG_SRST: u32 = 1;
const HW_CFG_RESET: u32 = 0x0005_0000;
const RX_CFG_DUMP: u32 = 1 << 15;
const TX_CFG_TX_ON: u32 = 1 << 1;
const TX_CFG_STATUS_DUMP: u32 = 1 << 15;
const TX_CFG_DATA_DUMP: u32 = 1 << 14;
const INT_RXSTOP: u32 = 1 << 24;
const CSR_BUSY: u32 = 1 << 31;
const CSR_READ: u32 = 1 << 30;
const MAC_CR_RESET: u32 = 1 << 18;
const MAC_CR_RXEN: u32 = 1 << 2;
const MAC_CR_TXEN: u32 = 1 << 3;
const MAC_CR_PRMS: u32 = 1 << 18;
const MAC_CR_BCAST: u32 = 1 << 11;
const MAC_CR_RXALL: u32 = 1 << 31;
const MII_BUSY: u32 = 1;
const MII_WRITE: u32 = 1 << 1;
const INTERNAL_PHY: u32 = 1;
const RX_STATUS_ERROR: u32 = 1 << 15;
const RX_STATUS_CRC_ERROR: u32 = 1 << 1;
const RX_STATUS_FILTER_FAIL: u32 = 1 << 30;
const RX_STATUS_BROADCAST: u32 = 1 << 13;
const RX_STATUS_MULTICAST: u32 = 1 << 10;

/// How the model behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FakeOptions {
    /// What ID_REV reads.
    pub id_rev: u32,
    /// Reads for which a busy bit stays set (and READY clear) after the
    /// operation that set it.
    pub busy_reads: u32,
    /// The link partner's abilities (PHY register 5); `None`: no cable, so
    /// no link.
    pub partner: Option<u16>,
}

impl Default for FakeOptions {
    fn default() -> Self {
        FakeOptions {
            id_rev: 0x0118_0001,
            busy_reads: 2,
            // 10/100 half/full, pause, acknowledge.
            partner: Some(0x45e1),
        }
    }
}

/// What a correct driver never makes the model do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Misuse {
    /// Reads of the RX data FIFO while it was empty.
    pub rx_data_underflows: u32,
    /// Reads of the RX status FIFO while it was empty.
    pub rx_status_underflows: u32,
    /// Reads of the TX status FIFO while it was empty.
    pub tx_status_underflows: u32,
    /// Writes to the TX data FIFO beyond its free space.
    pub tx_data_overflows: u32,
    /// Anything else against the datasheet: a MAC CSR or MII command while
    /// busy, a write to a read-only register, an RX_DUMP with the receiver
    /// on, a malformed TX command sequence, a frame sent while the
    /// transmitter is off.
    pub protocol_errors: u32,
}

/// The register model. Its state sits in a `RefCell` because the driver
/// accesses registers through `&self`.
#[derive(Debug)]
pub struct FakeLan9118 {
    state: RefCell<State>,
}

#[derive(Debug, Clone)]
struct State {
    options: FakeOptions,
    hw_cfg: u32,
    srst_reads: u32,
    not_ready_reads: u32,
    int_sts: u32,
    int_en: u32,
    rx_cfg: u32,
    tx_cfg: u32,
    csr_cmd: u32,
    csr_data: u32,
    csr_busy_reads: u32,
    csr_result: Option<u32>,
    mac_cr: u32,
    addr_high: u32,
    addr_low: u32,
    mii_acc: u32,
    mii_data: u32,
    mii_busy_reads: u32,
    mii_result: Option<u16>,
    phy: Phy,
    rx_status: Fifo<RX_STATUS_WORDS>,
    rx_data: Fifo<RX_DATA_WORDS>,
    tx_status: Fifo<TX_STATUS_WORDS>,
    assembler: Assembler,
    tx_free_pinned: Option<u32>,
    sent: [(SentFrame, [u8; MAX_ASSEMBLED]); SENT_KEPT],
    sent_head: usize,
    sent_len: usize,
    misuse: Misuse,
    rx_dumps: u32,
    resets: u32,
}

impl Default for FakeLan9118 {
    fn default() -> Self {
        FakeLan9118::new(FakeOptions::default())
    }
}

impl FakeLan9118 {
    /// A chip as at power-up (its address unset, all ones).
    pub fn new(options: FakeOptions) -> Self {
        let empty = SentFrame {
            command: TxCommand { a: 0, b: 0 },
            len: 0,
        };
        let mut state = State {
            options,
            hw_cfg: HW_CFG_RESET,
            srst_reads: 0,
            not_ready_reads: 0,
            int_sts: 0,
            int_en: 0,
            rx_cfg: 0,
            tx_cfg: 0,
            csr_cmd: 0,
            csr_data: 0,
            csr_busy_reads: 0,
            csr_result: None,
            mac_cr: MAC_CR_RESET,
            addr_high: 0xffff,
            addr_low: 0xffff_ffff,
            mii_acc: 0,
            mii_data: 0,
            mii_busy_reads: 0,
            mii_result: None,
            phy: Phy::new(options.partner, options.busy_reads),
            rx_status: Fifo::new(),
            rx_data: Fifo::new(),
            tx_status: Fifo::new(),
            assembler: Assembler::new(),
            tx_free_pinned: None,
            sent: [(empty, [0; MAX_ASSEMBLED]); SENT_KEPT],
            sent_head: 0,
            sent_len: 0,
            misuse: Misuse::default(),
            rx_dumps: 0,
            resets: 0,
        };
        state.reset();
        state.resets = 0;
        FakeLan9118 {
            state: RefCell::new(state),
        }
    }

    /// A frame arriving from the wire: filtered as the chip does (own
    /// address and broadcast, everything while promiscuous), stored with
    /// its CRC and a status word. False if the receiver is off, the filter
    /// rejects it, or the FIFOs have no room (the chip drops it then too).
    pub fn receive_frame(&self, frame: &[u8]) -> bool {
        self.state.borrow_mut().receive(frame, 0)
    }

    /// A frame arriving with a CRC error: stored (the chip stores bad
    /// frames too) with the error summary and CRC error bits set.
    pub fn receive_bad_frame(&self, frame: &[u8]) -> bool {
        self.state
            .borrow_mut()
            .receive(frame, RX_STATUS_ERROR | RX_STATUS_CRC_ERROR)
    }

    /// Pushes a raw word into the RX status FIFO, however wrong (false if
    /// full).
    pub fn push_rx_status(&self, status: u32) -> bool {
        self.state.borrow_mut().rx_status.push(status)
    }

    /// Pushes a raw word into the RX data FIFO (false if full).
    pub fn push_rx_data(&self, word: u32) -> bool {
        self.state.borrow_mut().rx_data.push(word)
    }

    /// RX status words and RX data words waiting.
    pub fn rx_waiting(&self) -> (usize, usize) {
        let state = self.state.borrow();
        (state.rx_status.len(), state.rx_data.len())
    }

    /// Pins TX_FIFO_INF's free space to `free` bytes (`None`: the real
    /// free space).
    pub fn pin_tx_free(&self, free: Option<u32>) {
        self.state.borrow_mut().tx_free_pinned = free;
    }

    /// Takes the oldest sent frame the model still keeps, copying its bytes
    /// into `out` (as many as fit).
    pub fn take_sent(&self, out: &mut [u8]) -> Option<SentFrame> {
        let mut state = self.state.borrow_mut();
        if state.sent_len == 0 {
            return None;
        }
        let head = state.sent_head;
        let (frame, bytes) = state.sent.get(head)?;
        for (to, from) in out.iter_mut().zip(bytes.iter().take(frame.len)) {
            *to = *from;
        }
        let frame = *frame;
        state.sent_head = (head + 1) % SENT_KEPT;
        state.sent_len -= 1;
        Some(frame)
    }

    /// The station address the MAC holds (ADDRL, ADDRH).
    pub fn mac_address(&self) -> [u8; 6] {
        let state = self.state.borrow();
        let [a0, a1, a2, a3] = state.addr_low.to_le_bytes();
        let [a4, a5, _, _] = state.addr_high.to_le_bytes();
        [a0, a1, a2, a3, a4, a5]
    }

    /// MAC_CR.
    pub fn mac_control(&self) -> u32 {
        self.state.borrow().mac_cr
    }

    /// HW_CFG.
    pub fn hw_config(&self) -> u32 {
        self.state.borrow().hw_cfg
    }

    /// TX_CFG.
    pub fn tx_config(&self) -> u32 {
        self.state.borrow().tx_cfg
    }

    /// INT_EN.
    pub fn interrupt_enable(&self) -> u32 {
        self.state.borrow().int_en
    }

    /// The PHY's advertisement register.
    pub fn phy_advertisement(&self) -> u16 {
        self.state.borrow().phy.advertisement()
    }

    /// Soft resets done (through HW_CFG).
    pub fn resets(&self) -> u32 {
        self.state.borrow().resets
    }

    /// RX FIFO flushes done (through RX_CFG's RX_DUMP).
    pub fn rx_dumps(&self) -> u32 {
        self.state.borrow().rx_dumps
    }

    /// What the driver has done that it should not.
    pub fn misuse(&self) -> Misuse {
        self.state.borrow().misuse
    }
}

impl Registers for FakeLan9118 {
    fn read(&self, register: Register) -> u32 {
        self.state.borrow_mut().read(register)
    }

    fn write(&self, register: Register, value: u32) {
        self.state.borrow_mut().write(register, value);
    }
}

impl State {
    fn reset(&mut self) {
        self.resets += 1;
        self.hw_cfg = HW_CFG_RESET;
        self.srst_reads = self.options.busy_reads;
        self.not_ready_reads = self.options.busy_reads;
        self.int_sts = 0;
        self.int_en = 0;
        self.rx_cfg = 0;
        self.tx_cfg = 0;
        self.csr_cmd = 0;
        self.csr_data = 0;
        self.csr_busy_reads = 0;
        self.csr_result = None;
        self.mac_cr = MAC_CR_RESET;
        self.mii_acc = 0;
        self.mii_data = 0;
        self.mii_busy_reads = 0;
        self.mii_result = None;
        self.phy = Phy::new(self.options.partner, self.options.busy_reads);
        self.rx_status.clear();
        self.rx_data.clear();
        self.tx_status.clear();
        self.assembler.reset();
    }

    fn read(&mut self, register: Register) -> u32 {
        match register {
            Register::RxDataFifo => self.rx_data.pop().unwrap_or_else(|| {
                self.misuse.rx_data_underflows += 1;
                0
            }),
            Register::RxStatusFifo => self.rx_status.pop().unwrap_or_else(|| {
                self.misuse.rx_status_underflows += 1;
                0
            }),
            Register::TxStatusFifo => self.tx_status.pop().unwrap_or_else(|| {
                self.misuse.tx_status_underflows += 1;
                0
            }),
            Register::TxDataFifo => {
                self.misuse.protocol_errors += 1;
                0
            }
            Register::IdRev => self.options.id_rev,
            Register::IntSts => self.int_sts,
            Register::IntEn => self.int_en,
            Register::ByteTest => BYTE_TEST,
            Register::RxCfg => self.rx_cfg,
            Register::TxCfg => self.tx_cfg,
            Register::HwCfg if self.srst_reads > 0 => {
                self.srst_reads -= 1;
                self.hw_cfg | HW_CFG_SRST
            }
            Register::HwCfg => self.hw_cfg,
            Register::RxFifoInf => {
                let status = self.rx_status.len().min(0xff) as u32;
                let data = (self.rx_data.len() * 4).min(0xffff) as u32;
                status << 16 | data
            }
            Register::TxFifoInf => {
                let status = self.tx_status.len().min(0xff) as u32;
                status << 16 | self.tx_free()
            }
            Register::PmtCtrl if self.srst_reads > 0 || self.not_ready_reads > 0 => {
                self.not_ready_reads = self.not_ready_reads.saturating_sub(1);
                0
            }
            Register::PmtCtrl => 1,
            Register::MacCsrCmd if self.csr_busy_reads > 0 => {
                self.csr_busy_reads -= 1;
                if self.csr_busy_reads == 0 {
                    self.finish_csr();
                }
                self.csr_cmd | CSR_BUSY
            }
            Register::MacCsrCmd => self.csr_cmd,
            Register::MacCsrData => self.csr_data,
        }
    }

    fn tx_free(&self) -> u32 {
        self.tx_free_pinned
            .unwrap_or_else(|| TX_DATA_BYTES.saturating_sub(self.assembler.fifo_bytes) as u32)
    }

    fn write(&mut self, register: Register, value: u32) {
        match register {
            Register::TxDataFifo => self.push_tx(value),
            Register::IntSts => self.int_sts &= !value,
            Register::IntEn => self.int_en = value,
            Register::RxCfg => {
                if value & RX_CFG_DUMP != 0 {
                    if self.mac_cr & MAC_CR_RXEN != 0 {
                        self.misuse.protocol_errors += 1;
                    }
                    self.rx_status.clear();
                    self.rx_data.clear();
                    self.rx_dumps += 1;
                }
                self.rx_cfg = value & !RX_CFG_DUMP;
            }
            Register::TxCfg => {
                if value & TX_CFG_STATUS_DUMP != 0 {
                    self.tx_status.clear();
                }
                if value & TX_CFG_DATA_DUMP != 0 {
                    self.assembler.reset();
                }
                self.tx_cfg = value & !(TX_CFG_STATUS_DUMP | TX_CFG_DATA_DUMP);
            }
            Register::HwCfg if value & HW_CFG_SRST != 0 => self.reset(),
            Register::HwCfg => self.hw_cfg = value,
            Register::PmtCtrl => {}
            Register::MacCsrCmd => self.start_csr(value),
            Register::MacCsrData if self.csr_busy_reads > 0 => self.misuse.protocol_errors += 1,
            Register::MacCsrData => self.csr_data = value,
            Register::RxDataFifo
            | Register::RxStatusFifo
            | Register::TxStatusFifo
            | Register::IdRev
            | Register::ByteTest
            | Register::RxFifoInf
            | Register::TxFifoInf => self.misuse.protocol_errors += 1,
        }
    }

    fn push_tx(&mut self, word: u32) {
        if self.tx_free() < 4 {
            self.misuse.tx_data_overflows += 1;
            return;
        }
        match self.assembler.push(word) {
            Pushed::Taken => {}
            Pushed::ProtocolError => self.misuse.protocol_errors += 1,
            Pushed::Frame(frame) => self.send(frame),
        }
    }

    fn send(&mut self, frame: SentFrame) {
        if self.tx_cfg & TX_CFG_TX_ON == 0 || self.mac_cr & MAC_CR_TXEN == 0 {
            self.misuse.protocol_errors += 1;
            return;
        }
        let slot = (self.sent_head + self.sent_len) % SENT_KEPT;
        if let Some((kept, bytes)) = self.sent.get_mut(slot) {
            *kept = frame;
            for (to, from) in bytes.iter_mut().zip(self.assembler.frame()) {
                *to = *from;
            }
        }
        if self.sent_len == SENT_KEPT {
            self.sent_head = (self.sent_head + 1) % SENT_KEPT;
        } else {
            self.sent_len += 1;
        }
        // The tag, no error bits. A full status FIFO stalls the real chip;
        // here the status is lost and the driver's count will show it.
        self.tx_status.push(frame.command.b & 0xffff_0000);
    }
}
