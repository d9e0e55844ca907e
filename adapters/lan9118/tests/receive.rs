//! Receiving: frames byte-exact out of the RX FIFOs, bad frames dropped,
//! malformed status words survived, and no frame lost to a token smoltcp
//! did not use.

mod common;

use common::{assert_no_misuse, driver, frame_to_us, receive, transmit, MAC};
use veil_lan9118::smoltcp::phy::Device;
use veil_lan9118::smoltcp::time::Instant;

#[test]
fn frames_of_every_word_alignment_arrive_byte_exact() {
    let mut driver = driver();
    for len in [14, 42, 60, 61, 62, 63, 64, 65, 1001, 1513, 1514] {
        let frame = frame_to_us(len, len as u8);
        assert!(driver.registers().receive_frame(&frame));
        assert_eq!(
            receive(&mut driver).as_deref(),
            Some(&frame[..]),
            "{len} bytes"
        );
        assert_eq!(
            driver.registers().rx_waiting(),
            (0, 0),
            "all words read, CRC too"
        );
    }
    assert_eq!(receive(&mut driver), None);
    assert_eq!(driver.counters().rx.frames, 11);
    assert_no_misuse(&driver);
}

#[test]
fn queued_frames_arrive_in_order() {
    let mut driver = driver();
    let frames: Vec<Vec<u8>> = (0..5).map(|i| frame_to_us(60 + i * 7, i as u8)).collect();
    for frame in &frames {
        assert!(driver.registers().receive_frame(frame));
    }
    for frame in &frames {
        assert_eq!(receive(&mut driver).as_ref(), Some(frame));
    }
    assert_eq!(receive(&mut driver), None);
}

#[test]
fn broadcasts_arrive_and_frames_for_others_do_not() {
    let mut driver = driver();
    let mut broadcast = frame_to_us(42, 1);
    broadcast[..6].fill(0xff);
    let mut other = frame_to_us(60, 2);
    other[5] ^= 1;
    assert!(driver.registers().receive_frame(&broadcast));
    assert!(
        !driver.registers().receive_frame(&other),
        "the chip filters on our address"
    );
    assert_eq!(receive(&mut driver), Some(broadcast));
}

#[test]
fn a_frame_with_the_error_bit_is_dropped_and_the_next_still_arrives() {
    let mut driver = driver();
    let bad = frame_to_us(333, 9);
    let good = frame_to_us(61, 10);
    assert!(driver.registers().receive_bad_frame(&bad));
    assert!(driver.registers().receive_frame(&good));
    assert_eq!(receive(&mut driver), Some(good));
    assert_eq!(driver.registers().rx_waiting(), (0, 0));
    let counters = driver.counters().rx;
    assert_eq!((counters.frames, counters.errors), (1, 1));
    assert_no_misuse(&driver);
}

#[test]
fn a_token_dropped_unused_leaves_its_frame_for_the_next_receive() {
    let mut driver = driver();
    let first = frame_to_us(100, 1);
    let second = frame_to_us(101, 2);
    assert!(driver.registers().receive_frame(&first));
    assert!(driver.registers().receive_frame(&second));
    for _ in 0..3 {
        // smoltcp may take the tokens and not consume them.
        assert!(driver.receive(Instant::ZERO).is_some());
    }
    // 104 and 105 bytes with their CRCs: 26 and 27 words.
    assert_eq!(
        driver.registers().rx_waiting(),
        (1, 26 + 27),
        "no data word read yet"
    );
    assert_eq!(receive(&mut driver), Some(first));
    assert_eq!(receive(&mut driver), Some(second));
    assert_no_misuse(&driver);
}

#[test]
fn a_full_tx_fifo_holds_received_frames_back_rather_than_losing_the_answer() {
    let mut driver = driver();
    let frame = frame_to_us(60, 3);
    assert!(driver.registers().receive_frame(&frame));
    driver.registers().pin_tx_free(Some(1_000));
    assert!(driver.receive(Instant::ZERO).is_none());
    assert_eq!(driver.registers().rx_waiting(), (1, 16), "the frame waits");
    driver.registers().pin_tx_free(None);
    assert_eq!(receive(&mut driver), Some(frame));
}

#[test]
fn the_answer_token_of_a_receive_transmits() {
    let mut driver = driver();
    assert!(driver.registers().receive_frame(&frame_to_us(60, 3)));
    let (rx, tx) = driver.receive(Instant::ZERO).expect("a frame");
    use veil_lan9118::smoltcp::phy::{RxToken, TxToken};
    let answer = rx.consume(|bytes| {
        let mut answer = bytes.to_vec();
        answer.reverse();
        answer
    });
    tx.consume(answer.len(), |buffer| buffer.copy_from_slice(&answer));
    let mut sent = [0u8; 64];
    let frame = driver.registers().take_sent(&mut sent).expect("sent");
    assert_eq!(&sent[..frame.len], &answer[..]);
    assert!(transmit(&mut driver, &answer));
}

/// A status word for a frame of `packet_len` bytes (CRC included).
fn status(packet_len: u32) -> u32 {
    packet_len << 16
}

/// After a malformed status word the driver must not have read past the
/// FIFO, and a good frame that follows must arrive.
fn recovers_from(push_malformed: impl Fn(&veil_lan9118::fake::FakeLan9118)) {
    let mut driver = driver();
    push_malformed(driver.registers());
    let _ = receive(&mut driver);
    let _ = receive(&mut driver);
    assert_no_misuse(&driver);
    let good = frame_to_us(77, 5);
    assert!(driver.registers().receive_frame(&good));
    assert_eq!(receive(&mut driver), Some(good));
    assert_no_misuse(&driver);
}

#[test]
fn a_status_word_of_length_zero_flushes_the_fifos() {
    recovers_from(|fake| {
        fake.push_rx_status(status(0));
        for word in 0..10 {
            fake.push_rx_data(word);
        }
    });
    let mut driver = driver();
    driver.registers().push_rx_status(status(0));
    driver.registers().push_rx_data(7);
    assert_eq!(receive(&mut driver), None);
    assert_eq!(driver.registers().rx_dumps(), 1);
    assert_eq!(driver.registers().rx_waiting(), (0, 0));
    assert_eq!(driver.counters().rx.flushes, 1);
    assert_eq!(driver.counters().rx.flush_failures, 0);
}

#[test]
fn a_status_word_longer_than_the_fifo_holds_flushes_the_fifos() {
    recovers_from(|fake| {
        fake.push_rx_status(status(64));
        for word in 0..15 {
            fake.push_rx_data(word);
        }
    });
    recovers_from(|fake| {
        // The largest length field there is, and no data at all.
        fake.push_rx_status(0x3fff << 16);
    });
}

#[test]
fn a_frame_longer_than_the_mtu_is_drained_and_the_next_arrives() {
    let mut driver = driver();
    // 1600 bytes + CRC, its words all there: consistent, just too long.
    driver.registers().push_rx_status(status(1604));
    for word in 0..401 {
        driver.registers().push_rx_data(word);
    }
    let good = frame_to_us(1514, 4);
    assert!(driver.registers().receive_frame(&good));
    assert_eq!(receive(&mut driver), Some(good));
    assert_eq!(driver.counters().rx.discarded, 1);
    assert_eq!(driver.registers().rx_dumps(), 0, "drained, not flushed");
    assert_no_misuse(&driver);
}

#[test]
fn a_frame_shorter_than_an_ethernet_header_is_drained() {
    recovers_from(|fake| {
        fake.push_rx_status(status(10));
        fake.push_rx_data(1);
        fake.push_rx_data(2);
        fake.push_rx_data(3);
    });
}

#[test]
fn a_frame_that_failed_the_address_filter_is_drained() {
    recovers_from(|fake| {
        fake.push_rx_status(status(64) | 1 << 30);
        for word in 0..16 {
            fake.push_rx_data(word);
        }
    });
}

#[test]
fn a_flood_of_bad_frames_is_worked_off_a_slice_per_call() {
    let mut driver = driver();
    for i in 0..40 {
        assert!(driver.registers().receive_bad_frame(&frame_to_us(60, i)));
    }
    let good = frame_to_us(60, 99);
    assert!(driver.registers().receive_frame(&good));
    let mut calls = 0;
    let received = loop {
        calls += 1;
        if let Some(frame) = receive(&mut driver) {
            break frame;
        }
        assert!(calls < 10);
    };
    assert_eq!(received, good);
    assert!(calls > 1, "one call discards at most 16");
    assert_eq!(driver.counters().rx.errors, 40);
    assert_eq!(driver.registers().mac_address(), MAC);
}
