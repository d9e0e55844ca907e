//! The held-cell queue of mixing delays: the draw, the order within a
//! circuit end, a full queue and a flooding link.
#![cfg(feature = "mixing-delays")]

use chacha20::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

use super::mixing::{mixing_share, Admit, MIXING_QUEUE};
use super::HeldCell;

/// A queue of the std node's capacity.
type MixQueue = super::mixing::MixQueue<heapless::Vec<HeldCell, MIXING_QUEUE>>;
const MIXING_SHARE: usize = mixing_share(MIXING_QUEUE);
use crate::cell::CellCommand;
use crate::link::{Cell, LinkId, CELL_LEN};
use crate::random_delay::exponential_delay;
use crate::time::{Duration, Instant};

const MEAN: Duration = Duration::from_millis(20);

/// A `RELAY` cell of circuit `circuit`, marked `mark` in its body.
fn cell(circuit: u32, mark: u8) -> Cell {
    let mut cell = [0u8; CELL_LEN];
    cell[..4].copy_from_slice(&circuit.to_be_bytes());
    cell[4] = CellCommand::Relay.code();
    cell[5] = mark;
    cell
}

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

/// Handles every due cell the way the node does, none blocked; returns
/// their (link, circuit, mark) in the order handled.
fn release(queue: &mut MixQueue, now: Instant) -> Vec<(LinkId, u32, u8)> {
    queue.unblock();
    let mut out = Vec::new();
    while let Some(i) = queue.next_due(now, 0) {
        let (link, c) = queue.get(i).unwrap();
        out.push((link, u32::from_be_bytes(c[..4].try_into().unwrap()), c[5]));
        queue.remove(i);
    }
    out
}

#[test]
fn delays_follow_the_exponential_distribution_with_the_configured_mean() {
    let mut rng = ChaCha20Rng::from_seed([3; 32]);
    const DRAWS: u32 = 20_000;
    let (mut sum, mut over_mean, mut over_3) = (0u64, 0u32, 0u32);
    for _ in 0..DRAWS {
        let d = exponential_delay(MEAN, rng.next_u64()).as_micros();
        sum += d;
        over_mean += u32::from(d > MEAN.as_micros());
        over_3 += u32::from(d > 3 * MEAN.as_micros());
    }
    let mean = sum as f64 / f64::from(DRAWS);
    // The standard error of the mean is 20 ms / √20000 ≈ 0.14 ms.
    assert!(
        (mean - 20_000.0).abs() < 600.0,
        "sample mean {mean} µs, not 20 ms"
    );
    // P(X > m) = e⁻¹ ≈ 0.368 and P(X > 3m) = e⁻³ ≈ 0.050: a uniform or a
    // constant delay with the same mean fails these.
    let p1 = f64::from(over_mean) / f64::from(DRAWS);
    let p3 = f64::from(over_3) / f64::from(DRAWS);
    assert!((p1 - 0.368).abs() < 0.015, "P(X > mean) = {p1}");
    assert!((p3 - 0.050).abs() < 0.008, "P(X > 3 mean) = {p3}");
}

#[test]
fn the_draw_is_bounded_and_zero_mean_is_no_delay() {
    assert_eq!(exponential_delay(Duration::ZERO, u64::MAX), Duration::ZERO);
    assert_eq!(exponential_delay(Duration::ZERO, 0), Duration::ZERO);
    // u = 1: no delay; u = 2⁻⁵³: the longest, about 36.7 means.
    assert_eq!(exponential_delay(MEAN, u64::MAX), Duration::ZERO);
    let longest = exponential_delay(MEAN, 0).as_micros();
    assert!((734_000..=735_000).contains(&longest), "{longest}");
    let mut rng = ChaCha20Rng::from_seed([9; 32]);
    let a: Vec<_> = (0..8)
        .map(|_| exponential_delay(MEAN, rng.next_u64()))
        .collect();
    let mut rng = ChaCha20Rng::from_seed([9; 32]);
    let b: Vec<_> = (0..8)
        .map(|_| exponential_delay(MEAN, rng.next_u64()))
        .collect();
    assert_eq!(a, b, "the same seed gives the same delays");
}

#[test]
fn a_circuits_cells_leave_in_the_order_they_came_whatever_their_draws() {
    let link = LinkId::new(0, 1);
    let mut queue = MixQueue::new();
    // Draws that would reverse the order: 50, 40, 30, 20, 10 ms.
    for mark in 0..5u8 {
        assert_eq!(
            queue.admit((link, crate::cell::CircuitId(7)), true),
            if mark == 0 {
                Admit::Hold {
                    draw: true,
                    behind: None,
                }
            } else {
                Admit::Hold {
                    draw: true,
                    behind: Some(at(50)),
                }
            }
        );
        assert!(queue.hold(link, &cell(7, mark), at(50 - 10 * u64::from(mark))));
    }
    // Another circuit's cell, due at 15 ms, is not held up by circuit 7.
    assert!(queue.hold(link, &cell(8, 99), at(15)));
    assert_eq!(queue.deadline(), Some(at(15)));
    assert_eq!(release(&mut queue, at(15)), vec![(link, 8, 99)]);
    assert_eq!(queue.deadline(), Some(at(50)));
    assert!(release(&mut queue, at(49)).is_empty());
    let out: Vec<u8> = release(&mut queue, at(50)).iter().map(|c| c.2).collect();
    assert_eq!(out, [0, 1, 2, 3, 4]);
    assert_eq!(queue.deadline(), None);
}

#[test]
fn a_due_cell_without_room_holds_back_its_circuit_only_and_is_no_deadline() {
    let link = LinkId::new(0, 1);
    let mut queue = MixQueue::new();
    assert!(queue.hold(link, &cell(7, 0), at(10)));
    assert!(queue.hold(link, &cell(7, 1), at(11)));
    assert!(queue.hold(link, &cell(8, 0), at(12)));
    queue.unblock();
    // The node finds no room for circuit 7's first cell.
    let first = queue.next_due(at(20), 0).unwrap();
    assert_eq!(queue.get(first).unwrap().1[5], 0);
    queue.block(first);
    // Its second cell may not overtake it; circuit 8's goes.
    let next = queue.next_due(at(20), first + 1).unwrap();
    assert_eq!(queue.get(next).unwrap().1[..4], 8u32.to_be_bytes());
    queue.remove(next);
    assert_eq!(queue.next_due(at(20), next), None);
    assert!(queue.any_blocked());
    // Blocked cells are not a deadline (the node would spin): room comes
    // with a transmit, which starts a new pass.
    assert_eq!(queue.deadline(), None);
    assert_eq!(
        release(&mut queue, at(20)),
        vec![(link, 7, 0), (link, 7, 1)]
    );
}

#[test]
fn a_full_share_sends_a_new_circuits_cell_at_once_and_holds_back_a_held_ones() {
    let flood = LinkId::new(0, 1);
    let mut queue = MixQueue::new();
    for c in 0..MIXING_SHARE as u32 {
        assert!(matches!(
            queue.admit((flood, crate::cell::CircuitId(100 + c)), true),
            Admit::Hold { .. }
        ));
        assert!(queue.hold(flood, &cell(100 + c, 0), at(1_000)));
    }
    assert_eq!(queue.held_from(flood), MIXING_SHARE);
    // A cell of a circuit with nothing held goes unmixed (counted) rather
    // than be dropped: its circuit keeps working.
    assert_eq!(
        queue.admit((flood, crate::cell::CircuitId(999)), true),
        Admit::Unmixed
    );
    // One of a circuit with cells held may not overtake them: it waits in
    // its link.
    assert_eq!(
        queue.admit((flood, crate::cell::CircuitId(100)), true),
        Admit::Wait
    );
    assert!(!queue.hold(flood, &cell(100, 1), at(1)));
    assert_eq!(queue.held_from(flood), MIXING_SHARE);
    // A cell that is not passed on and has nothing held is not touched.
    assert_eq!(
        queue.admit((flood, crate::cell::CircuitId(999)), false),
        Admit::Now
    );
}

#[test]
fn a_flooding_peer_does_not_delay_other_links_cells() {
    let mut rng = ChaCha20Rng::from_seed([5; 32]);
    let mut queue = MixQueue::new();
    // Three flooding links fill their shares with cells due late (and,
    // when due, find no room: they are blocked).
    for l in 0..3u16 {
        let flood = LinkId::new(l, 1);
        for c in 0..MIXING_SHARE as u32 {
            assert!(queue.hold(flood, &cell(1_000 * u32::from(l) + c, 0), at(10)));
        }
    }
    let honest = LinkId::new(3, 1);
    let mut expected = Vec::new();
    for c in 0..MIXING_SHARE as u32 {
        let end = (honest, crate::cell::CircuitId(c));
        assert_eq!(
            queue.admit(end, true),
            Admit::Hold {
                draw: true,
                behind: None
            },
            "the honest link keeps its share"
        );
        let release = at(20).saturating_add(exponential_delay(MEAN, rng.next_u64()));
        assert!(queue.hold(honest, &cell(c, 1), release));
        expected.push(release);
    }
    assert_eq!(
        queue.admit((LinkId::new(4, 1), crate::cell::CircuitId(1)), true),
        Admit::Unmixed,
        "the queue is full: a fifth link's cell goes at once, not later"
    );
    assert_eq!(MIXING_QUEUE, 4 * MIXING_SHARE);
    // Every honest cell leaves at its own release time, however many
    // flooding cells are due before it and stuck.
    expected.sort();
    let mut left = Vec::new();
    for release_at in expected.iter().copied() {
        queue.unblock();
        let mut i = 0;
        while let Some(due) = queue.next_due(release_at, i) {
            let (link, _) = queue.get(due).unwrap();
            if link == honest {
                queue.remove(due);
                left.push(release_at);
                i = due;
            } else {
                queue.block(due);
                i = due + 1;
            }
        }
    }
    assert_eq!(left, expected);
    assert_eq!(queue.len(), 3 * MIXING_SHARE);
}

#[test]
fn mean_zero_holds_nothing() {
    let mut node = super::small_node_tests::small_node(1);
    assert_eq!(node.config.mixing_delay_mean, Duration::ZERO);
    let link = LinkId::new(0, 0);
    // Even a cell whose circuit end had cells held is handled at once.
    assert!(node.mixing.hold(link, &cell(7, 0), at(5)));
    assert_eq!(node.mixing_admit(link, &cell(7, 1)), Admit::Now);
    node.mixing = super::mixing::MixQueue::new();
    node.config.mixing_delay_mean = MEAN;
    assert_eq!(
        node.mixing_admit(link, &cell(7, 1)),
        Admit::Now,
        "a cell of no circuit this node passes on is not held"
    );
    assert!(node.mixing.hold(link, &cell(7, 0), at(5)));
    assert_eq!(
        node.mixing_admit(link, &cell(7, 1)),
        Admit::Hold {
            draw: false,
            behind: Some(at(5))
        },
        "with a mean, a cell behind held cells of its end waits behind them"
    );
}

#[test]
fn the_queue_is_fixed_and_bounded() {
    let size = core::mem::size_of::<MixQueue>();
    println!("mixing state: {size} bytes");
    assert!(size >= MIXING_QUEUE * CELL_LEN);
    assert!(size <= MIXING_QUEUE * (CELL_LEN + 16) + 16, "{size}");
}
