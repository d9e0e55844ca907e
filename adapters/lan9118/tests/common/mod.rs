//! What every test of the driver against the register model starts from.
#![allow(dead_code)]

use veil_lan9118::fake::{FakeLan9118, FakeOptions, Misuse};
use veil_lan9118::smoltcp::phy::{Device, RxToken, TxToken};
use veil_lan9118::smoltcp::time::Instant;
use veil_lan9118::{Config, Lan9118};

pub const MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x53, 0x07];

/// A driver brought up on a fresh register model.
pub fn driver() -> Lan9118<FakeLan9118> {
    driver_with(FakeOptions::default())
}

pub fn driver_with(options: FakeOptions) -> Lan9118<FakeLan9118> {
    Lan9118::new(FakeLan9118::new(options), Config { mac_address: MAC })
        .expect("the driver brings the model up")
}

/// A frame of `len` bytes to the driver's address, with a recognisable
/// payload.
pub fn frame_to_us(len: usize, seed: u8) -> Vec<u8> {
    let mut frame: Vec<u8> = (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect();
    frame[..6].copy_from_slice(&MAC);
    frame
}

/// The next frame smoltcp would get, if any.
pub fn receive(driver: &mut Lan9118<FakeLan9118>) -> Option<Vec<u8>> {
    let (rx, _tx) = driver.receive(Instant::ZERO)?;
    Some(rx.consume(|bytes| bytes.to_vec()))
}

/// Sends `frame` through a transmit token; false if none was handed out.
pub fn transmit(driver: &mut Lan9118<FakeLan9118>, frame: &[u8]) -> bool {
    let Some(tx) = driver.transmit(Instant::ZERO) else {
        return false;
    };
    tx.consume(frame.len(), |buffer| buffer.copy_from_slice(frame));
    true
}

/// Fails the test if the driver did anything the chip forbids.
pub fn assert_no_misuse(driver: &Lan9118<FakeLan9118>) {
    assert_eq!(driver.registers().misuse(), Misuse::default());
}
