//! Bringing the chip up: bus and id checks, reset, MAC address, PHY,
//! transmitter and receiver on; and the errors when the chip misbehaves.

mod common;

use common::{assert_no_misuse, driver, driver_with, MAC};
use veil_lan9118::fake::{FakeLan9118, FakeOptions};
use veil_lan9118::{Config, Error, Lan9118, Link, Register, Registers, Wait};

const MAC_CR_RXEN: u32 = 1 << 2;
const MAC_CR_TXEN: u32 = 1 << 3;
const MAC_CR_BCAST: u32 = 1 << 11;
const MAC_CR_PRMS: u32 = 1 << 18;
const MAC_CR_FDPX: u32 = 1 << 20;

#[test]
fn bring_up_sets_the_mac_address_and_turns_both_directions_on() {
    let mut driver = driver();
    let fake = driver.registers();
    assert_eq!(
        fake.mac_address(),
        MAC,
        "ADDRL/ADDRH hold the configured address"
    );
    assert_eq!(fake.resets(), 1, "one soft reset");
    let control = fake.mac_control();
    assert_eq!(
        control & (MAC_CR_TXEN | MAC_CR_RXEN),
        MAC_CR_TXEN | MAC_CR_RXEN
    );
    assert_eq!(control & MAC_CR_PRMS, 0, "not promiscuous");
    assert_eq!(control & MAC_CR_BCAST, 0, "broadcasts (ARP) accepted");
    assert_eq!(
        control & MAC_CR_FDPX,
        MAC_CR_FDPX,
        "full duplex, as negotiated"
    );
    assert_eq!(fake.tx_config() & 0b10, 0b10, "TX_ON");
    assert_eq!(
        fake.hw_config() & 0x001f_0000,
        0x0015_0000,
        "MBO and a 5 KiB TX FIFO"
    );
    assert_eq!(fake.interrupt_enable(), 0, "polled: no interrupts");
    assert_eq!(fake.phy_advertisement(), 0x01e1, "10/100, half and full");
    assert_eq!(driver.id_rev(), 0x0118_0001);
    assert_eq!(
        driver.mac_address(),
        Ok(MAC),
        "read back through the MAC CSR"
    );
    assert_eq!(
        driver.poll_link(),
        Ok(Some(Link {
            fast: true,
            full_duplex: true
        }))
    );
    assert_no_misuse(&driver);
}

#[test]
fn the_mac_address_survives_slow_csr_and_mii_interfaces() {
    // Busy bits that stay set for many reads: a driver that does not wait
    // reads stale data or starts a command while busy.
    let driver = driver_with(FakeOptions {
        busy_reads: 25,
        ..FakeOptions::default()
    });
    assert_eq!(driver.registers().mac_address(), MAC);
    assert_eq!(driver.mac_address(), Ok(MAC));
    assert_no_misuse(&driver);
}

#[test]
fn a_half_duplex_partner_leaves_the_mac_half_duplex() {
    let mut driver = driver_with(FakeOptions {
        // 10/100 half duplex only.
        partner: Some(0x40a1),
        ..FakeOptions::default()
    });
    assert_eq!(
        driver.poll_link(),
        Ok(Some(Link {
            fast: true,
            full_duplex: false
        }))
    );
    assert_eq!(driver.registers().mac_control() & MAC_CR_FDPX, 0);
}

#[test]
fn no_cable_means_no_link_yet_the_driver_comes_up() {
    let mut driver = driver_with(FakeOptions {
        partner: None,
        ..FakeOptions::default()
    });
    assert_eq!(driver.poll_link(), Ok(None));
    assert_eq!(driver.registers().mac_address(), MAC);
}

#[test]
fn an_unknown_chip_id_is_refused() {
    let fake = FakeLan9118::new(FakeOptions {
        id_rev: 0x1234_0001,
        ..FakeOptions::default()
    });
    let error = Lan9118::new(fake, Config { mac_address: MAC }).unwrap_err();
    assert_eq!(
        error,
        Error::UnsupportedChip {
            id_rev: 0x1234_0001
        }
    );
    assert_eq!(
        error.to_string(),
        "unsupported chip: ID_REV reads 0x12340001"
    );
}

#[test]
fn the_lan9220_of_the_mps2_boards_is_accepted() {
    driver_with(FakeOptions {
        id_rev: 0x9220_0000,
        ..FakeOptions::default()
    });
}

/// Registers that read as an unpopulated bus.
#[derive(Debug)]
struct Nothing;

impl Registers for Nothing {
    fn read(&self, _: Register) -> u32 {
        0xffff_ffff
    }
    fn write(&self, _: Register, _: u32) {}
}

#[test]
fn no_chip_is_reported_with_what_byte_test_read() {
    let error = Lan9118::new(Nothing, Config { mac_address: MAC }).unwrap_err();
    assert_eq!(
        error,
        Error::NoChip {
            byte_test: 0xffff_ffff
        }
    );
    let _: &dyn core::error::Error = &error;
}

/// The register model, with a MAC CSR interface that never finishes.
#[derive(Debug)]
struct StuckCsr(FakeLan9118);

impl Registers for StuckCsr {
    fn read(&self, register: Register) -> u32 {
        match register {
            Register::MacCsrCmd => 1 << 31,
            _ => self.0.read(register),
        }
    }
    fn write(&self, register: Register, value: u32) {
        self.0.write(register, value);
    }
}

#[test]
fn a_busy_bit_that_never_clears_times_out() {
    let error = Lan9118::new(
        StuckCsr(FakeLan9118::default()),
        Config { mac_address: MAC },
    )
    .unwrap_err();
    assert_eq!(error, Error::Timeout(Wait::MacCsr));
    assert_eq!(
        error.to_string(),
        "timed out waiting for the MAC CSR interface (MAC_CSR_CMD busy)"
    );
}
