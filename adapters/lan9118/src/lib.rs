//! `veil-lan9118`: a driver for the SMSC/Microchip LAN9118 Ethernet
//! controller (and its register-compatible relatives, such as the LAN9220
//! on ARM's MPS2 boards), as a smoltcp [`phy::Device`](smoltcp::phy::Device)
//! with [`Medium::Ethernet`](smoltcp::phy::Medium).
//!
//! `no_std`, no `alloc`. The driver is generic over [`Registers`] (read or
//! write one 32-bit register), so the same code runs on the memory-mapped
//! chip ([`Mmio`], the only `unsafe` code in the crate) and, with the
//! `fake` feature, against a register model on the host
//! (`fake::FakeLan9118`).
//!
//! What it does ([`Lan9118::new`]): checks BYTE_TEST and ID_REV,
//! soft-resets the chip, sets the MAC address through the MAC CSR interface,
//! resets the PHY and starts auto-negotiation over MII, filters on its own
//! address and broadcasts, and enables the transmitter and receiver. It
//! polls (no interrupts), reads frames out of the RX FIFOs (discarding
//! frames with the error summary bit, flushing both FIFOs when a status
//! word cannot describe the data) and writes frames with TX command words
//! into the TX data FIFO, reading TX status words back so that the chip
//! never stalls on a full TX status FIFO.
//!
//! What it leaves out: interrupts, DMA, checksum offload (the LAN9118 has
//! none), multicast filtering (IPv4 over Ethernet needs only broadcasts),
//! flow control (AFC_CFG stays at its reset value), the EEPROM, the LEDs'
//! GPIO setup (board-specific), VLAN-tagged frames longer than 1514 bytes,
//! and power management. See `docs/firmware.md` for what a board provides.
#![no_std]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented,
    )
)]

mod chip;
mod device;
mod driver;
mod error;
mod fields;
mod mac;
#[allow(unsafe_code)]
mod mmio;
mod phy;
mod receiver;
mod register;
mod rx;
mod transmitter;
mod tx;

#[cfg(feature = "fake")]
pub mod fake;
#[cfg(feature = "fake")]
pub mod fuzzing;

pub use device::{RxToken, TxToken};
pub use driver::{Config, Counters, Lan9118};
pub use error::{Error, Wait};
pub use mmio::{Mmio, MPS2_BASE_ADDRESS};
pub use phy::Link;
pub use receiver::RxCounters;
pub use register::{Register, Registers};
pub use rx::{DiscardReason, RxStatus, RxVerdict, MAX_FRAME_LEN};
pub use transmitter::TxCounters;
pub use tx::{TxCommand, TxStatus};

pub use smoltcp;
