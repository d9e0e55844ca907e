//! When cover cells go: the exponential gaps of Poisson cover, and FRONT's
//! front-loaded times at the start of a burst of traffic.
//!
//! Both come from the node's CSPRNG, so an observer cannot predict them and
//! the same seed gives the same times.

use rand_core::Rng;

use crate::time::{Duration, Instant};

/// A uniform draw in (0, 1]: never 0, so that its logarithm is finite.
fn unit_open(rng: &mut impl Rng) -> f64 {
    (to_f64(rng.next_u64() >> 11) + 1.0) / to_f64(1 << 53)
}

/// `n` as a float; exact below 2⁵³, which is all this file converts.
// core has no `From<u64> for f64`.
#[allow(clippy::as_conversions)]
fn to_f64(n: u64) -> f64 {
    n as f64
}

/// `x` microseconds as a whole count; a float-to-int `as` saturates
/// (negative and NaN give 0), and core has no `TryFrom<f64>`.
#[allow(clippy::as_conversions)]
fn to_micros(x: f64) -> u64 {
    x as u64
}

/// An exponentially distributed gap of mean `mean` (`-ln U · mean`): the
/// time to the next event of a Poisson process. At most about 37 means
/// (the smallest `U` is 2⁻⁵³).
pub fn exponential(rng: &mut impl Rng, mean: Duration) -> Duration {
    let micros = -libm::log(unit_open(rng)) * to_f64(mean.as_micros());
    Duration::from_micros(to_micros(micros))
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
            scale_micros: to_f64(window.as_micros()),
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
        let step = 1.0 - libm::pow(unit_open(rng), 1.0 / k);
        self.last += (1.0 - self.last) * step;
        let tail = (1.0 - self.last).max(1e-15);
        let micros = self.scale_micros * libm::sqrt(-2.0 * libm::log(tail));
        let at = self
            .start
            .saturating_add(Duration::from_micros(to_micros(micros)));
        self.next_at = at.max(self.next_at);
        true
    }
}
