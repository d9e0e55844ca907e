//! How a relay has done on this node's own circuits: decaying counters, and
//! a back-off that keeps a relay found failing out of new paths for a
//! while (relay spec §10, "Health and blame").
//!
//! Counters halve every [`HALF_LIFE`], so what a relay did an hour ago
//! weighs half what it did now, and a relay that failed during an outage
//! is trusted again once it works. They are kept in sixteenths, so a
//! single event fades over several half-lives instead of vanishing at the
//! first.
//!
//! Only a failure the client can pin on the relay (a build that stopped at
//! it, a probe it did not answer while the hop before it did) starts or
//! grows a back-off. The back-off follows Tor's proposal 336: the next delay
//! is drawn uniformly between [`BACKOFF_BASE`] and three times the last one
//! ("decorrelated jitter"), at most [`BACKOFF_MAX`], so nodes that all saw
//! the same relay fail do not all retry it at the same moment, and a relay
//! that stays down is retried ever more rarely. A circuit lost in use for
//! a reason nobody can be pinned with (a `DESTROY` any hop could have
//! written, a link that dropped) is counted against every relay of it, but
//! starts no back-off: a hop could otherwise kill circuits to push the
//! honest relays it shares them with out of paths, and raise its own share
//! (selective denial of service, Borisov et al., CCS 2007). It shares every
//! circuit it kills, so its own loss count is the highest.

use rand_core::Rng;

use crate::time::{Duration, Instant};

/// Whether records are kept: the `relay-health` feature (default). Without
/// it (the firmware image, docs/firmware.md) every method below does
/// nothing, every relay is available, and a relay leaves paths only by the
/// node table's consecutive-failure count.
const KEPT: bool = cfg!(feature = "relay-health");

/// Counters halve this often.
pub const HALF_LIFE: Duration = Duration::from_secs(30 * 60);
/// The shortest back-off, and the low end of every draw.
pub const BACKOFF_BASE: Duration = Duration::from_secs(10);
/// The longest back-off.
pub const BACKOFF_MAX: Duration = Duration::from_secs(60 * 60);
/// Fixed-point scale of the counters: sixteenths.
const SCALE: u32 = 16;

/// A relay's record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RelayHealth {
    /// Own circuits through it (as a relay) that were started, in sixteenths.
    tried: u32,
    /// ... that became ready.
    built: u32,
    /// ... that were lost after they were ready, for any reason.
    lost: u32,
    /// Failures pinned on it: builds that stopped at it, probes it left
    /// unanswered.
    failed: u32,
    /// When the counters were last decayed.
    decayed_at: Instant,
    /// The last back-off drawn (zero: none since the last success).
    backoff: Duration,
    /// Kept out of new paths until then.
    retry_at: Instant,
}

/// A relay's record as whole (rounded) counts, for display and persistence.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct HealthCounts {
    /// Circuits started through it, decayed, in sixteenths.
    pub tried: u32,
    /// Circuits through it that became ready, in sixteenths.
    pub built: u32,
    /// Ready circuits through it lost, in sixteenths.
    pub lost: u32,
    /// Failures pinned on it, in sixteenths.
    pub failed: u32,
    /// The last back-off in milliseconds (0: none).
    pub backoff_ms: u64,
}

impl RelayHealth {
    /// A relay nothing is known about.
    pub const fn new() -> Self {
        RelayHealth {
            tried: 0,
            built: 0,
            lost: 0,
            failed: 0,
            decayed_at: Instant::ZERO,
            backoff: Duration::ZERO,
            retry_at: Instant::ZERO,
        }
    }

    /// Halves the counters once per whole [`HALF_LIFE`] since the last time.
    fn decay(&mut self, now: Instant) {
        let half = HALF_LIFE.as_micros().max(1);
        let halvings = now
            .saturating_since(self.decayed_at)
            .as_micros()
            .checked_div(half)
            .unwrap_or(0);
        if halvings == 0 {
            return;
        }
        let shift = u32::try_from(halvings).unwrap_or(u32::MAX).min(31);
        for counter in [
            &mut self.tried,
            &mut self.built,
            &mut self.lost,
            &mut self.failed,
        ] {
            *counter = counter.checked_shr(shift).unwrap_or(0);
        }
        self.decayed_at = self
            .decayed_at
            .saturating_add(Duration::from_micros(halvings.saturating_mul(half)));
    }

    fn bump(counter: &mut u32) {
        *counter = counter.saturating_add(SCALE);
    }

    /// A circuit through it was started.
    pub fn on_tried(&mut self, now: Instant) {
        if !KEPT {
            return;
        }
        self.decay(now);
        Self::bump(&mut self.tried);
    }

    /// A circuit through it became ready: it works, whatever was pinned on
    /// it before (perhaps by a lying hop) is forgiven.
    pub fn on_built(&mut self, now: Instant) {
        if !KEPT {
            return;
        }
        self.decay(now);
        Self::bump(&mut self.built);
        self.backoff = Duration::ZERO;
        self.retry_at = Instant::ZERO;
    }

    /// A link with it came up: it is there. Its back-off ends (the counters
    /// stay).
    pub fn on_reached(&mut self) {
        if !KEPT {
            return;
        }
        self.backoff = Duration::ZERO;
        self.retry_at = Instant::ZERO;
    }

    /// A ready circuit through it was lost, blame unknown.
    pub fn on_lost(&mut self, now: Instant) {
        if !KEPT {
            return;
        }
        self.decay(now);
        Self::bump(&mut self.lost);
    }

    /// A failure was pinned on it: count it and back off, with
    /// decorrelated jitter. Returns the back-off drawn.
    pub fn on_failed(&mut self, now: Instant, rng: &mut dyn Rng) -> Duration {
        if !KEPT {
            return Duration::ZERO;
        }
        self.decay(now);
        Self::bump(&mut self.failed);
        let base = BACKOFF_BASE.as_micros();
        let high = self.backoff.as_micros().saturating_mul(3).max(base);
        let span = high.saturating_sub(base).saturating_add(1);
        let draw = rng.next_u64().checked_rem(span).unwrap_or(0);
        let delay = Duration::from_micros(base.saturating_add(draw)).min(BACKOFF_MAX);
        self.backoff = delay;
        self.retry_at = now.saturating_add(delay);
        delay
    }

    /// Whether new paths may use it at `now`.
    pub fn available(&self, now: Instant) -> bool {
        !KEPT || now >= self.retry_at
    }

    /// When its back-off ends (`Instant::ZERO`: none).
    pub fn retry_at(&self) -> Instant {
        self.retry_at
    }

    /// Circuits through it that became ready, of those started, in percent,
    /// once at least `min_tried` were started (decayed); `None` before.
    pub fn success_percent(&self, min_tried: u32) -> Option<u32> {
        if !KEPT {
            return None;
        }
        if self.tried < min_tried.saturating_mul(SCALE) || self.tried == 0 {
            return None;
        }
        let built = self.built.min(self.tried);
        Some(
            built
                .saturating_mul(100)
                .checked_div(self.tried)
                .unwrap_or(0),
        )
    }

    /// Its counters (as of the last update; decay applies on the next one).
    pub fn counts(&self) -> HealthCounts {
        HealthCounts {
            tried: self.tried,
            built: self.built,
            lost: self.lost,
            failed: self.failed,
            backoff_ms: self.backoff.as_micros() / 1000,
        }
    }

    /// A record restored from saved counts, as of `now` (a back-off is not
    /// restored: a relay that was failing before a restart gets a fresh
    /// chance, and its counters still say how it did).
    pub fn from_counts(counts: &HealthCounts, now: Instant) -> Self {
        RelayHealth {
            tried: counts.tried,
            built: counts.built,
            lost: counts.lost,
            failed: counts.failed,
            decayed_at: now,
            backoff: Duration::from_micros(counts.backoff_ms.saturating_mul(1000)),
            retry_at: Instant::ZERO,
        }
    }
}

#[cfg(test)]
#[cfg(feature = "relay-health")]
mod tests {
    use super::*;
    use chacha20::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn at_secs(s: u64) -> Instant {
        Instant::from_micros(s * 1_000_000)
    }

    #[test]
    fn counters_halve_every_half_life() {
        let mut h = RelayHealth::new();
        for _ in 0..4 {
            h.on_lost(at_secs(0));
        }
        assert_eq!(h.counts().lost, 4 * SCALE);
        h.on_tried(at_secs(HALF_LIFE.as_micros() / 1_000_000));
        assert_eq!(h.counts().lost, 2 * SCALE);
        h.on_tried(at_secs(3 * HALF_LIFE.as_micros() / 1_000_000));
        assert_eq!(h.counts().lost, SCALE / 2);
        // Far later, all gone.
        h.on_tried(at_secs(100 * HALF_LIFE.as_micros() / 1_000_000));
        assert_eq!(h.counts().lost, 0);
    }

    #[test]
    fn a_pinned_failure_backs_off_with_growing_jitter_and_a_success_ends_it() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let mut h = RelayHealth::new();
        let now = at_secs(100);
        let first = h.on_failed(now, &mut rng);
        assert!(first >= BACKOFF_BASE && first <= BACKOFF_BASE.saturating_mul(3));
        assert!(!h.available(now));
        assert!(h.available(now.saturating_add(first)));
        let mut last = first;
        let mut grew = false;
        for _ in 0..20 {
            let next = h.on_failed(now, &mut rng);
            assert!(next >= BACKOFF_BASE);
            assert!(next <= last.saturating_mul(3).min(BACKOFF_MAX));
            grew |= next > first.saturating_mul(3);
            last = next;
        }
        assert!(grew, "repeated failures must back off further");
        h.on_built(now);
        assert!(h.available(now));
    }

    #[test]
    fn a_loss_nobody_can_be_blamed_for_is_counted_but_backs_nothing_off() {
        let mut h = RelayHealth::new();
        h.on_lost(at_secs(5));
        assert!(h.available(at_secs(5)));
        assert_eq!(h.counts().lost, SCALE);
    }

    #[test]
    fn success_rate_needs_enough_tries() {
        let mut h = RelayHealth::new();
        for i in 0..10 {
            h.on_tried(at_secs(1));
            if i < 6 {
                h.on_built(at_secs(1));
            }
        }
        assert_eq!(h.success_percent(20), None);
        assert_eq!(h.success_percent(10), Some(60));
    }
}
