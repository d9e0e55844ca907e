//! The fuzz entry point for the receive path (feature `fake`): arbitrary
//! RX FIFO contents, status words and data words alike, read through the
//! driver's smoltcp interface. `fuzz/fuzz_targets/lan9118_rx.rs` runs it
//! under libFuzzer, and this crate's proptests run it over random inputs.
#![allow(clippy::expect_used)]

use crate::fake::FakeLan9118;
use crate::rx::MAX_FRAME_LEN;
use crate::{Config, Lan9118};
use smoltcp::phy::{Device, RxToken};
use smoltcp::time::Instant;

/// `receive` calls the entry makes: enough to see every frame the FIFOs
/// can hold through (each call discards at most 16 bad ones).
const RECEIVE_CALLS: usize = 256;

/// Reads `data` as FIFO contents and receives until the driver has nothing
/// more. The first byte is how many of the following little-endian words
/// (up to 64) go to the RX status FIFO; the rest go to the RX data FIFO.
///
/// Panics if the driver reads an empty FIFO (it would read past a frame),
/// breaks another rule of the chip, or hands smoltcp a frame shorter than
/// an Ethernet header or longer than the MTU.
pub fn rx_fifos(data: &[u8]) {
    let (statuses, data_words) = match data.split_first() {
        Some((count, rest)) => rest.split_at((usize::from(*count) % 65 * 4).min(rest.len())),
        None => (&[][..], &[][..]),
    };
    let mut driver = Lan9118::new(
        FakeLan9118::default(),
        Config {
            mac_address: [0x02, 0, 0, 0, 0, 1],
        },
    )
    .expect("the register model comes up");
    let fake = driver.registers();
    for word in statuses.chunks(4) {
        fake.push_rx_status(word_of(word));
    }
    for word in data_words.chunks(4) {
        fake.push_rx_data(word_of(word));
    }
    for _ in 0..RECEIVE_CALLS {
        if let Some((frame, _)) = driver.receive(Instant::ZERO) {
            frame.consume(|bytes| {
                assert!(
                    (14..=MAX_FRAME_LEN).contains(&bytes.len()),
                    "a {}-byte frame was handed on",
                    bytes.len()
                );
            });
        }
    }
    let misuse = driver.registers().misuse();
    assert_eq!(misuse, Default::default(), "the driver misused the chip");
}

fn word_of(bytes: &[u8]) -> u32 {
    let mut word = [0u8; 4];
    for (to, from) in word.iter_mut().zip(bytes) {
        *to = *from;
    }
    u32::from_le_bytes(word)
}
