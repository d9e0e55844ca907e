//! Properties of the receive path over generated input: any mix of good
//! and bad frames arrives as exactly the good ones, byte-exact and in
//! order; and arbitrary status words and FIFO contents (the fuzz entry)
//! never make the driver panic, read an empty FIFO or hand on a frame
//! outside 14..=1514 bytes.

mod common;

use common::{assert_no_misuse, driver, receive, MAC};
use proptest::prelude::*;
use veil_lan9118::{fuzzing, DiscardReason, RxStatus, RxVerdict, MAX_FRAME_LEN};

/// A frame to our address: `len` bytes from `fill`.
fn frame(len: usize, fill: &[u8]) -> Vec<u8> {
    let mut frame: Vec<u8> = fill.iter().copied().cycle().take(len).collect();
    frame[..6].copy_from_slice(&MAC);
    frame
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn good_frames_arrive_exactly_and_bad_ones_never(
        frames in prop::collection::vec(
            (14usize..=MAX_FRAME_LEN, prop::collection::vec(any::<u8>(), 1..64), any::<bool>()),
            0..12,
        )
    ) {
        let mut driver = driver();
        let mut expected = Vec::new();
        for (len, fill, good) in &frames {
            let frame = frame(*len, fill);
            let stored = if *good {
                driver.registers().receive_frame(&frame)
            } else {
                driver.registers().receive_bad_frame(&frame)
            };
            if stored && *good {
                expected.push(frame);
            }
        }
        let mut received = Vec::new();
        for _ in 0..64 {
            if let Some(frame) = receive(&mut driver) {
                received.push(frame);
            }
        }
        prop_assert_eq!(received, expected);
        prop_assert_eq!(driver.registers().rx_waiting(), (0, 0));
        assert_no_misuse(&driver);
    }

    #[test]
    fn arbitrary_fifo_contents_are_survived(
        data in prop::collection::vec(any::<u8>(), 0..4096)
    ) {
        fuzzing::rx_fifos(&data);
    }

    #[test]
    fn arbitrary_status_words_over_plausible_data_are_survived(
        statuses in prop::collection::vec(any::<u32>(), 0..8),
        data_words in 0usize..2000,
    ) {
        let mut input = vec![statuses.len() as u8];
        for status in &statuses {
            input.extend_from_slice(&status.to_le_bytes());
        }
        input.extend((0..data_words * 4).map(|i| i as u8));
        fuzzing::rx_fifos(&input);
    }

    #[test]
    fn a_verdict_never_reads_more_than_the_fifo_holds(
        status in any::<u32>(),
        data_bytes in 0usize..0x1_0000,
    ) {
        let words = match RxVerdict::of(RxStatus(status), data_bytes) {
            RxVerdict::Deliver { len, words } => {
                prop_assert!((14..=MAX_FRAME_LEN).contains(&len));
                prop_assert_eq!(words, (len + 4).div_ceil(4));
                words
            }
            RxVerdict::Discard { words, .. } => words,
            RxVerdict::OutOfStep => 0,
        };
        prop_assert!(words * 4 <= data_bytes);
    }
}

#[test]
fn verdicts_of_hand_picked_status_words() {
    let of = |status: u32, data: usize| RxVerdict::of(RxStatus(status), data);
    assert_eq!(of(64 << 16, 64), RxVerdict::Deliver { len: 60, words: 16 });
    assert_eq!(of(65 << 16, 68), RxVerdict::Deliver { len: 61, words: 17 });
    assert_eq!(of(65 << 16, 64), RxVerdict::OutOfStep);
    assert_eq!(of(0, 64), RxVerdict::OutOfStep);
    assert_eq!(
        of(64 << 16 | 1 << 15, 64),
        RxVerdict::Discard {
            words: 16,
            reason: DiscardReason::Error
        }
    );
    assert_eq!(
        of(1519 << 16, 1520),
        RxVerdict::Discard {
            words: 380,
            reason: DiscardReason::TooLong
        }
    );
    assert_eq!(
        of(1518 << 16, 1520),
        RxVerdict::Deliver {
            len: 1514,
            words: 380
        }
    );
    assert_eq!(
        of(17 << 16, 20),
        RxVerdict::Discard {
            words: 5,
            reason: DiscardReason::TooShort
        }
    );
}
