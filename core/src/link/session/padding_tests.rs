//! `CELLS` frames carry padding drawn from the sending direction's length
//! keystream (link spec §4.1), so that a message's length does not give
//! away how many cells it carries.

use std::boxed::Box;
use std::vec::Vec;

use crate::identity::Identity;
use crate::link::{
    LinkConfig, LinkHello, LinkParams, LinkRole, LinkSession, CELLS_HEADER_LEN, CELL_LEN,
    LENGTH_PREFIX_LEN, MAX_CELLS_PADDING, TAG_LEN,
};
use crate::noise::StaticKeypair;
use crate::time::Instant;

const RECEIVE: usize = 16 * 1024 + 2;
pub(super) type Session = LinkSession<[u8; RECEIVE], heapless::Deque<[u8; CELL_LEN], 64>>;

/// A whole one-cell message without padding.
const ONE_CELL: usize = LENGTH_PREFIX_LEN + CELLS_HEADER_LEN + CELL_LEN + TAG_LEN;

/// A session with seeds from `seed` (shared with `idle_padding_tests.rs`).
pub(super) fn session(seed: u8, role: LinkRole, config: LinkConfig) -> Box<Session> {
    let identity = Identity::from_secret_bytes([seed; 32]);
    let keys = StaticKeypair::from_secret_bytes([seed.wrapping_add(100); 32]);
    let hello = LinkHello::new(&identity, &keys.public(), 16_384).emit();
    Box::new(Session::new(
        Instant::ZERO,
        LinkParams {
            role,
            expected_peer: None,
            static_keypair: &keys,
            handshake_seed: [seed; 32],
            local_id: None,
            answer_unkeyed: true,
            unix_time: 0,
            hello,
            local_max_message_len: 16_384,
            config,
            channel_binding: None,
        },
    ))
}

/// Feeds `bytes` to `to` at `now` and returns the cells it yields.
pub(super) fn deliver(to: &mut Session, now: Instant, bytes: &[u8]) -> Vec<[u8; CELL_LEN]> {
    let mut cells = Vec::new();
    let mut consumed = 0;
    loop {
        consumed += to.receive(now, &bytes[consumed..]);
        let before = cells.len();
        while let Some(cell) = to.take_cell() {
            cells.push(cell);
        }
        if cells.len() == before {
            assert_eq!(consumed, bytes.len(), "the receiver stopped short");
            return cells;
        }
    }
}

fn established_pair() -> (Box<Session>, Box<Session>) {
    established_pair_with(LinkConfig::default(), LinkConfig::default())
}

/// An initiator and a responder with these configurations, handshake done
/// at time zero.
pub(super) fn established_pair_with(
    initiator: LinkConfig,
    responder: LinkConfig,
) -> (Box<Session>, Box<Session>) {
    let mut i = session(1, LinkRole::Initiator, initiator);
    let mut r = session(2, LinkRole::Responder, responder);
    let mut buf = [0u8; 1024];
    for _ in 0..2 {
        while let Some(n) = i.poll_transmit(Instant::ZERO, &mut buf) {
            deliver(&mut r, Instant::ZERO, &buf[..n]);
        }
        while let Some(n) = r.poll_transmit(Instant::ZERO, &mut buf) {
            deliver(&mut i, Instant::ZERO, &buf[..n]);
        }
    }
    assert!(i.was_established() && r.was_established());
    (i, r)
}

fn numbered(n: u32) -> [u8; CELL_LEN] {
    let mut cell = [0u8; CELL_LEN];
    cell[..4].copy_from_slice(&n.to_be_bytes());
    cell
}

#[test]
fn one_cell_messages_vary_over_more_than_two_cell_counts_and_arrive_intact() {
    let (mut tx, mut rx) = established_pair();
    let mut buf = [0u8; 4096];
    let mut lengths = Vec::new();
    for n in 0..400u32 {
        tx.queue_cell(&numbered(n)).unwrap();
        let len = tx.poll_transmit(Instant::ZERO, &mut buf).unwrap();
        assert_eq!(deliver(&mut rx, Instant::ZERO, &buf[..len]), [numbered(n)]);
        lengths.push(len);
    }
    assert!(lengths
        .iter()
        .all(|&len| (ONE_CELL..=ONE_CELL + MAX_CELLS_PADDING).contains(&len)));
    // Uniform over 1,029 lengths: 400 draws cover both ends, and about half
    // are lengths a two-cell message could have too.
    assert!(*lengths.iter().min().unwrap() < ONE_CELL + 100);
    assert!(*lengths.iter().max().unwrap() > ONE_CELL + MAX_CELLS_PADDING - 100);
    let also_two_cells = lengths
        .iter()
        .filter(|&&len| len >= ONE_CELL + CELL_LEN)
        .count();
    assert!((100..300).contains(&also_two_cells), "{also_two_cells}");
    lengths.sort_unstable();
    lengths.dedup();
    assert!(lengths.len() > 250, "{} distinct lengths", lengths.len());
}

#[test]
fn a_full_message_is_not_padded_and_others_only_as_far_as_fits() {
    let (mut tx, mut rx) = established_pair();
    // A buffer of exactly one unpadded cell message: no room for padding
    // (and the message is full).
    let mut tight = [0u8; ONE_CELL];
    for n in 0..20u32 {
        tx.queue_cell(&numbered(n)).unwrap();
        assert_eq!(tx.poll_transmit(Instant::ZERO, &mut tight), Some(ONE_CELL));
        assert_eq!(deliver(&mut rx, Instant::ZERO, &tight), [numbered(n)]);
    }
    // A full message (31 cells under a 16,384-byte limit) is not padded;
    // 30 cells are, but never past the peer's limit.
    let mut buf = [0u8; 20_000];
    let mut thirty = Vec::new();
    for round in 0..40u32 {
        let cells = if round % 2 == 0 { 31 } else { 30 };
        for n in 0..cells {
            tx.queue_cell(&numbered(round * 100 + n)).unwrap();
        }
        let len = tx.poll_transmit(Instant::ZERO, &mut buf).unwrap();
        assert_eq!(
            deliver(&mut rx, Instant::ZERO, &buf[..len]).len(),
            cells as usize
        );
        let unpadded = ONE_CELL + (cells as usize - 1) * CELL_LEN;
        if cells == 31 {
            assert_eq!(len, unpadded);
        } else {
            assert!(len <= LENGTH_PREFIX_LEN + 16_384, "{len}");
            thirty.push(len - unpadded);
        }
    }
    assert!(thirty.iter().any(|&padding| padding > 0), "{thirty:?}");
}
