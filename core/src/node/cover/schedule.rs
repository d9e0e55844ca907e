//! When cover cells go: the exponential gaps of Poisson cover, and FRONT's
//! front-loaded times at the start of a burst of traffic.
//!
//! Both come from the node's CSPRNG, so an observer cannot predict them and
//! the same seed gives the same times.

use rand_core::Rng;

use crate::random_delay::{exponential_delay, micros_from_f64, u64_to_f64, unit_open};
use crate::time::{Duration, Instant};

/// An exponentially distributed gap of mean `mean`: the time to the next
/// event of a Poisson process.
pub fn exponential(rng: &mut impl Rng, mean: Duration) -> Duration {
    exponential_delay(mean, rng.next_u64())
}

/// One FRONT schedule (Gong and Wang, USENIX Security 2020): `n` padding
/// cells at times drawn independently from a Rayleigh distribution of
/// scale `w` after the burst began, most of them early, where a page
/// load's telling first seconds are. `n` and `w` are themselves drawn per
/// burst, so neither the padding's volume nor its shape is the same twice.
///
/// The `n` times are produced in increasing order without storing them:
/// the next of `k` remaining uniform draws on `(last, 1)` is their minimum,
/// `last + (1 − last)·(1 − V^(1/k))`, mapped through the Rayleigh quantile
/// `w·√(−2 ln(1 − u))`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Front {
    start: Instant,
    scale_micros: f64,
    remaining: u16,
    /// The last uniform order statistic drawn, in [0, 1).
    last: f64,
    next_at: Instant,
}

impl Front {
    /// A schedule of `cells` padding cells (none if 0) over a Rayleigh
    /// window of scale `window`, starting at `now`.
    pub fn new(rng: &mut impl Rng, now: Instant, cells: u16, window: Duration) -> Option<Self> {
        let mut front = Front {
            start: now,
            scale_micros: u64_to_f64(window.as_micros()),
            remaining: cells.checked_add(1)?,
            last: 0.0,
            next_at: now,
        };
        front.advance(rng).then_some(front)
    }

    /// When the next padding cell is due.
    pub fn next_at(&self) -> Instant {
        self.next_at
    }

    /// The cell due went (or was given up): moves to the next; `false`
    /// when there is none.
    pub fn advance(&mut self, rng: &mut impl Rng) -> bool {
        self.remaining = self.remaining.saturating_sub(1);
        if self.remaining == 0 {
            return false;
        }
        let k = f64::from(self.remaining);
        let step = 1.0 - libm::pow(unit_open(rng.next_u64()), 1.0 / k);
        self.last += (1.0 - self.last) * step;
        let tail = (1.0 - self.last).max(1e-15);
        let micros = self.scale_micros * libm::sqrt(-2.0 * libm::log(tail));
        let at = self.start.saturating_add(micros_from_f64(micros));
        self.next_at = at.max(self.next_at);
        true
    }
}
