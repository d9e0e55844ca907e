//! Idle-link padding (transport spec §4.3): an established link that has
//! been silent for a wait drawn from its range sends one padding cell, in
//! a message sized as any one-cell message is; traffic either way
//! restarts the wait; a peer's request can lower the rate, never raise it.
#![cfg(feature = "link-padding")]

use std::vec::Vec;

use super::padding_tests::{deliver, established_pair_with, Session};
use crate::link::{
    LinkConfig, LinkPadding, PaddingRange, PaddingRequest, CELLS_HEADER_LEN, CELL_LEN,
    LENGTH_PREFIX_LEN, MAX_CELLS_PADDING, TAG_LEN,
};
use crate::time::{Duration, Instant};

const ONE_CELL: usize = LENGTH_PREFIX_LEN + CELLS_HEADER_LEN + CELL_LEN + TAG_LEN;

/// Padding as given, and pings and rekeys kept out of what is measured.
fn config(padding: LinkPadding) -> LinkConfig {
    LinkConfig {
        padding,
        keepalive_interval: Duration::from_secs(3_600),
        idle_timeout: Duration::from_secs(7_200),
        rekey_after: Duration::from_secs(7_200),
        ..LinkConfig::default()
    }
}

/// An initiator padding with `padding` and a responder that does not pad.
fn established_pair(padding: LinkPadding) -> (std::boxed::Box<Session>, std::boxed::Box<Session>) {
    established_pair_with(config(padding), config(LinkPadding::NONE))
}

/// Runs the padding side alone (the peer silent) for `secs`, following its
/// deadlines; returns the times of the messages it sent and checks each
/// carried one all-zero cell, sized as a padded one-cell message.
fn idle_run(i: &mut Session, r: &mut Session, secs: u64) -> Vec<Instant> {
    let mut sent = Vec::new();
    let mut buf = [0u8; 4096];
    let end = Instant::from_millis(secs * 1_000);
    let mut now = Instant::ZERO;
    while let Some(at) = i.next_deadline() {
        if at > end {
            break;
        }
        now = now.max(at);
        i.handle_timeout(now);
        while let Some(n) = i.poll_transmit(now, &mut buf) {
            assert!(
                (ONE_CELL..=ONE_CELL + MAX_CELLS_PADDING).contains(&n),
                "{n} bytes"
            );
            let cells = deliver(r, now, &buf[..n]);
            assert_eq!(cells, [[0u8; CELL_LEN]], "one PADDING cell (all zeros)");
            sent.push(now);
        }
    }
    sent
}

#[test]
fn an_idle_link_sends_padding_cells_at_waits_within_the_range() {
    let (mut i, mut r) = established_pair(LinkPadding::FULL);
    let sent = idle_run(&mut i, &mut r, 600);
    // About one cell per 6.8 s (the mean of max(X, X) on 1.5-9.5 s).
    assert!(
        (70..=110).contains(&sent.len()),
        "{} cells in 600 s",
        sent.len()
    );
    let mut previous = Instant::ZERO;
    let mut total = 0u64;
    for at in &sent {
        let gap = at.saturating_since(previous).as_micros();
        assert!((1_500_000..=9_500_000).contains(&gap), "gap {gap} µs");
        total += gap;
        previous = *at;
    }
    let mean_ms = total / sent.len() as u64 / 1_000;
    assert!((5_800..=7_300).contains(&mean_ms), "mean gap {mean_ms} ms");
    assert_eq!(i.stats().padding_cells_sent, sent.len() as u64);
    assert_eq!(i.stats().cells_sent, 0, "padding is not counted as traffic");
}

#[test]
fn a_link_without_padding_stays_silent() {
    let (mut i, mut r) = established_pair(LinkPadding::NONE);
    assert!(idle_run(&mut i, &mut r, 600).is_empty());
    let (mut i, mut r) = established_pair(LinkPadding::OFF);
    assert!(idle_run(&mut i, &mut r, 600).is_empty());
}

#[test]
fn traffic_from_the_peer_restarts_the_wait() {
    let (mut i, mut r) = established_pair(LinkPadding::FULL);
    let mut buf = [0u8; 4096];
    // The peer sends a cell every second for a minute: nothing is idle.
    let mut sent = 0;
    for second in 1..=60u64 {
        let now = Instant::from_millis(second * 1_000);
        r.queue_cell(&[7u8; CELL_LEN]).unwrap();
        while let Some(n) = r.poll_transmit(now, &mut buf) {
            deliver(&mut i, now, &buf[..n]);
        }
        i.handle_timeout(now);
        while i.poll_transmit(now, &mut buf).is_some() {
            sent += 1;
        }
    }
    assert_eq!(sent, 0, "no padding while the peer's cells keep coming");
}

#[test]
fn a_peer_may_ask_for_less_padding_but_not_more() {
    // Asking for a cell every millisecond changes nothing.
    let (mut i, mut r) = established_pair(LinkPadding::FULL);
    i.peer_asked_padding(PaddingRequest::Start(PaddingRange::new(0, 1).unwrap()));
    assert_eq!(i.idle_padding_range(), Some(PaddingRange::FULL));
    let greedy = idle_run(&mut i, &mut r, 600).len();
    assert!(
        greedy <= 110,
        "{greedy} cells in 600 s: the request raised the rate"
    );

    // The reduced range is granted: fewer cells, waits of 9-14 s.
    let (mut i, mut r) = established_pair(LinkPadding::FULL);
    i.peer_asked_padding(PaddingRequest::Start(PaddingRange::REDUCED));
    let reduced = idle_run(&mut i, &mut r, 600);
    assert!(
        (40..=70).contains(&reduced.len()),
        "{} cells",
        reduced.len()
    );

    // Stop is granted.
    let (mut i, mut r) = established_pair(LinkPadding::FULL);
    i.peer_asked_padding(PaddingRequest::Stop);
    assert!(idle_run(&mut i, &mut r, 600).is_empty());
}

#[test]
fn the_same_keys_give_the_same_padding_times() {
    let (mut a, mut b) = established_pair(LinkPadding::FULL);
    let (mut c, mut d) = established_pair(LinkPadding::FULL);
    assert_eq!(idle_run(&mut a, &mut b, 120), idle_run(&mut c, &mut d, 120));
}
