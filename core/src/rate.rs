//! Token buckets: how a node bounds what one source may make it do per
//! second (hop handshakes on one link, say) without counting events in a
//! table that could grow.
//!
//! A bucket holds at most `burst` tokens and gains `per_second` tokens a
//! second; each action takes one. Tokens are kept in millionths, so the
//! refill is exact for any rate up to a million a second and any interval
//! in microseconds.

use crate::time::Instant;

/// Millionths of a token per token.
const SCALE: u64 = 1_000_000;

/// A rate limit: a burst, then a steady rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RateLimit {
    /// Actions allowed at once, after a quiet spell.
    pub burst: u32,
    /// Actions allowed per second, sustained.
    pub per_second: u32,
}

/// The state of one source's budget under a [`RateLimit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenBucket {
    millionths: u64,
    updated: Instant,
}

impl TokenBucket {
    /// A bucket with nothing in it, as of `Instant::ZERO` (a `const`, for
    /// storage built in place).
    pub const EMPTY: TokenBucket = TokenBucket {
        millionths: 0,
        updated: Instant::ZERO,
    };

    /// A full bucket at `now`.
    pub fn full(limit: RateLimit, now: Instant) -> Self {
        TokenBucket {
            millionths: u64::from(limit.burst).saturating_mul(SCALE),
            updated: now,
        }
    }

    /// Takes a token at `now` if there is one.
    pub fn take(&mut self, limit: RateLimit, now: Instant) -> bool {
        self.take_many(limit, now, 1)
    }

    /// Takes `tokens` tokens at `now` if there are that many, else none:
    /// for a budget counted in bytes, where one action costs many.
    pub fn take_many(&mut self, limit: RateLimit, now: Instant, tokens: u32) -> bool {
        let elapsed = now.saturating_since(self.updated).as_micros();
        let cap = u64::from(limit.burst).saturating_mul(SCALE);
        let gained = elapsed.saturating_mul(u64::from(limit.per_second));
        self.millionths = self.millionths.saturating_add(gained).min(cap);
        if now > self.updated {
            self.updated = now;
        }
        match self
            .millionths
            .checked_sub(u64::from(tokens).saturating_mul(SCALE))
        {
            Some(left) => {
                self.millionths = left;
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: RateLimit = RateLimit {
        burst: 3,
        per_second: 2,
    };

    #[test]
    fn a_burst_then_the_steady_rate() {
        let t0 = Instant::from_millis(1000);
        let mut bucket = TokenBucket::full(LIMIT, t0);
        assert!((0..3).all(|_| bucket.take(LIMIT, t0)));
        assert!(!bucket.take(LIMIT, t0), "the burst is spent");
        // Two a second: one token after 500 ms, not before.
        assert!(!bucket.take(LIMIT, Instant::from_millis(1499)));
        assert!(bucket.take(LIMIT, Instant::from_millis(1500)));
        assert!(!bucket.take(LIMIT, Instant::from_millis(1500)));
    }

    #[test]
    fn a_long_quiet_spell_refills_only_the_burst() {
        let mut bucket = TokenBucket::full(LIMIT, Instant::ZERO);
        assert!((0..3).all(|_| bucket.take(LIMIT, Instant::ZERO)));
        let later = Instant::from_millis(3_600_000);
        assert_eq!((0..10).filter(|_| bucket.take(LIMIT, later)).count(), 3);
    }

    #[test]
    fn many_tokens_are_taken_whole_or_not_at_all() {
        let bytes = RateLimit {
            burst: 3000,
            per_second: 1000,
        };
        let mut bucket = TokenBucket::full(bytes, Instant::ZERO);
        assert!(bucket.take_many(bytes, Instant::ZERO, 2000));
        assert!(
            !bucket.take_many(bytes, Instant::ZERO, 1001),
            "only 1000 left"
        );
        assert!(bucket.take_many(bytes, Instant::ZERO, 1000));
        // 1000 a second: 500 after half a second.
        assert!(!bucket.take_many(bytes, Instant::from_millis(499), 500));
        assert!(bucket.take_many(bytes, Instant::from_millis(500), 500));
    }

    #[test]
    fn time_running_backwards_adds_nothing() {
        let mut bucket = TokenBucket::full(LIMIT, Instant::from_millis(10));
        assert!((0..3).all(|_| bucket.take(LIMIT, Instant::from_millis(10))));
        assert!(!bucket.take(LIMIT, Instant::from_millis(5)));
    }
}
