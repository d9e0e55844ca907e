//! Transmitting: the exact frame and command words into the TX data FIFO,
//! TX status words read back, and no token without room.

mod common;

use common::{assert_no_misuse, driver, transmit};
use veil_lan9118::smoltcp::phy::{Device, TxToken};
use veil_lan9118::smoltcp::time::Instant;
use veil_lan9118::{TxCommand, MAX_FRAME_LEN};

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + len) as u8).collect()
}

#[test]
fn a_frame_goes_out_exact_with_its_command_words() {
    let mut driver = driver();
    for (tag, len) in [14usize, 42, 60, 61, 62, 63, 1513, 1514]
        .into_iter()
        .enumerate()
    {
        let frame = payload(len);
        assert!(transmit(&mut driver, &frame));
        let mut sent = [0u8; 2048];
        let out = driver
            .registers()
            .take_sent(&mut sent)
            .expect("a frame on the wire");
        assert_eq!(&sent[..out.len], &frame[..], "{len} bytes");
        // Command A: first and last segment, buffer size; B: tag, length.
        let expected = TxCommand {
            a: 1 << 13 | 1 << 12 | len as u32,
            b: (tag as u32) << 16 | len as u32,
        };
        assert_eq!(out.command, expected);
        assert_eq!(TxCommand::new(len, tag as u16), expected);
    }
    assert_no_misuse(&driver);
}

#[test]
fn tx_status_words_are_read_back() {
    let mut driver = driver();
    for _ in 0..200 {
        assert!(transmit(&mut driver, &payload(60)));
        let mut sent = [0u8; 64];
        driver.registers().take_sent(&mut sent);
    }
    // The model's TX status FIFO holds 128 words: reading them back before
    // every transmit keeps it from filling.
    let _ = driver.transmit(Instant::ZERO);
    let counters = driver.counters().tx;
    assert_eq!(
        (counters.frames, counters.completed, counters.errors),
        (200, 200, 0)
    );
    assert_no_misuse(&driver);
}

#[test]
fn a_full_tx_fifo_yields_no_token() {
    let mut driver = driver();
    // One byte short of a maximum frame and its two command words.
    driver.registers().pin_tx_free(Some(8 + 1516 - 1));
    assert!(driver.transmit(Instant::ZERO).is_none());
    driver.registers().pin_tx_free(Some(0));
    assert!(driver.transmit(Instant::ZERO).is_none());
    driver.registers().pin_tx_free(Some(8 + 1516));
    assert!(transmit(&mut driver, &payload(MAX_FRAME_LEN)));
    assert_no_misuse(&driver);
}

#[test]
fn a_frame_longer_than_the_mtu_is_not_sent() {
    let mut driver = driver();
    let tx = driver.transmit(Instant::ZERO).expect("room");
    let seen = tx.consume(MAX_FRAME_LEN + 1, |buffer| buffer.len());
    assert_eq!(seen, MAX_FRAME_LEN, "the closure still runs, on the MTU");
    assert_eq!(driver.counters().tx.too_long, 1);
    assert!(driver.registers().take_sent(&mut [0u8; 16]).is_none());
    assert_no_misuse(&driver);
}

#[test]
fn the_capabilities_are_ethernet_with_a_1514_byte_mtu() {
    let driver = driver();
    let capabilities = driver.capabilities();
    assert_eq!(
        capabilities.medium,
        veil_lan9118::smoltcp::phy::Medium::Ethernet
    );
    assert_eq!(capabilities.max_transmission_unit, 1514);
}
