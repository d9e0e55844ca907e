#![cfg(feature = "shaping")]

use super::shaping::*;
use crate::time::{Duration, Instant};

const SHAPING: Shaping = Shaping {
    interval: Duration::from_millis(10),
    bucket: 8,
    linger: Duration::ZERO,
};

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

#[test]
fn one_cell_per_interval_while_a_burst_lasts() {
    let mut s = ShapeState::IDLE;
    assert!(s.slot_open(at(100)));
    s.on_sent(at(100), &SHAPING);
    assert!(!s.slot_open(at(109)));
    assert!(s.slot_open(at(110)));
    assert_eq!(
        s.slot_at().saturating_since(at(104)),
        Duration::from_millis(6)
    );
    // A late send keeps the rate from the send, not from the missed slot.
    s.on_sent(at(150), &SHAPING);
    assert_eq!(s.next_slot(), Some(at(160)));
}

#[test]
fn a_burst_is_padded_to_a_multiple_of_the_bucket_then_rests() {
    let mut s = ShapeState::IDLE;
    let mut now = 0;
    // Three fragments, then none: five paddings make eight.
    for _ in 0..3 {
        s.on_fragment(at(now), &SHAPING);
        now += 10;
    }
    let mut padded = 0;
    while s.idle_slot(at(now), &SHAPING) == IdleSlot::Pad {
        s.on_sent(at(now), &SHAPING);
        now += 10;
        padded += 1;
    }
    assert_eq!(padded, 5);
    assert_eq!(s.next_slot(), None, "idle after the burst");
    assert_eq!(
        s.idle_slot(at(now), &SHAPING),
        IdleSlot::Rest,
        "an idle end never pads"
    );
    // Nine fragments pad to sixteen.
    for _ in 0..9 {
        s.on_fragment(at(now), &SHAPING);
        now += 10;
    }
    let mut padded = 0;
    while s.idle_slot(at(now), &SHAPING) == IdleSlot::Pad {
        s.on_sent(at(now), &SHAPING);
        now += 10;
        padded += 1;
    }
    assert_eq!(padded, 7);
}

#[test]
fn off_means_off() {
    assert!(!Shaping::OFF.is_on());
    assert!(!Shaping::default().is_on());
    assert!(SHAPING.is_on());
}

#[test]
fn a_burst_lingers_through_short_gaps() {
    let lingering = Shaping {
        linger: Duration::from_millis(100),
        ..SHAPING
    };
    let mut s = ShapeState::IDLE;
    s.on_fragment(at(0), &lingering);
    // Padding for 100 ms after the fragment, whatever the bucket says.
    let mut now = 10;
    let mut padded = 0;
    while s.idle_slot(at(now), &lingering) == IdleSlot::Pad {
        s.on_sent(at(now), &lingering);
        now += 10;
        padded += 1;
    }
    // Cells 2..=10 fill the 100 ms, then up to 16, the next multiple of 8.
    assert_eq!(padded, 15);
    assert_eq!(now, 160);
}
