//! Idle-link padding (transport spec §4.3), Tor's channel padding: when
//! nothing has moved over a link for a while, a side sends one padding
//! cell. A flow record (NetFlow, IPFIX) ends a connection's record after
//! some seconds of silence; a link that never falls silent that long leaves
//! one long record instead of a record per burst, whose count and times
//! would tell an observer when the node was active.
//!
//! Each wait is the later of two draws, uniform between the range's ends:
//! `max(X, X)` weighs long waits more than short ones, so the padding rate
//! stays low while the gaps stay unpredictable (Tor's padding spec §2.1).
//! The draws come from the length-mask keystream of the last message sent
//! (transport spec §2.3): bytes only the two ends know, and no generator
//! state in the link slot.
//!
//! A peer may ask for less padding towards it, never more (a
//! `PADDING_NEGOTIATE` cell, relay spec §3): a battery-powered node asks
//! for Tor's reduced range or none, and a hostile peer cannot make this
//! side spend more than its own configuration allows.

use crate::time::{Duration, Instant};

/// The ends of the range each idle wait is drawn from, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PaddingRange {
    low_ms: u16,
    high_ms: u16,
}

/// Why a [`PaddingRange`] cannot be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PaddingRangeError {
    /// The low end is above the high end.
    Inverted,
    /// Both ends are zero: a cell at every moment.
    Zero,
}

impl core::fmt::Display for PaddingRangeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PaddingRangeError::Inverted => f.write_str(
                "the padding range's low end is above its high end: give the shorter wait first",
            ),
            PaddingRangeError::Zero => f.write_str(
                "the padding range is zero: give a high end of at least one millisecond",
            ),
        }
    }
}

impl core::error::Error for PaddingRangeError {}

impl PaddingRange {
    /// Tor's default: waits of 1.5 to 9.5 s (`nf_ito_low`, `nf_ito_high`),
    /// about one cell every 6.8 s on an idle link.
    pub const FULL: PaddingRange = PaddingRange {
        low_ms: 1_500,
        high_ms: 9_500,
    };
    /// Tor's reduced padding, for nodes that pay for every byte or every
    /// radio wake-up: waits of 9 to 14 s (`nf_ito_low_reduced`,
    /// `nf_ito_high_reduced`).
    pub const REDUCED: PaddingRange = PaddingRange {
        low_ms: 9_000,
        high_ms: 14_000,
    };

    /// The range from `low_ms` to `high_ms`, both included.
    pub fn new(low_ms: u16, high_ms: u16) -> Result<Self, PaddingRangeError> {
        if low_ms > high_ms {
            return Err(PaddingRangeError::Inverted);
        }
        if high_ms == 0 {
            return Err(PaddingRangeError::Zero);
        }
        Ok(PaddingRange { low_ms, high_ms })
    }

    /// The shortest wait, in milliseconds.
    pub fn low_ms(&self) -> u16 {
        self.low_ms
    }

    /// The longest wait, in milliseconds.
    pub fn high_ms(&self) -> u16 {
        self.high_ms
    }

    /// One wait: the later of two uniform draws, each a big-endian `u64`
    /// of `draw` reduced modulo the range's width (the bias, below 2⁻⁴⁷, is
    /// far under what timing on a network can show).
    pub fn wait(&self, draw: &[u8; 16]) -> Duration {
        let (first, second) = draw.split_at(8);
        let uniform = |bytes: &[u8]| {
            let value = <[u8; 8]>::try_from(bytes).map_or(0, u64::from_be_bytes);
            let width = u64::from(self.high_ms.saturating_sub(self.low_ms)).saturating_add(1);
            u64::from(self.low_ms).saturating_add(value.checked_rem(width).unwrap_or(0))
        };
        Duration::from_millis(uniform(first).max(uniform(second)))
    }

    /// The range this side pads with when its own is `self` and the peer
    /// asked for `request`: the peer's if it asks for no more padding than
    /// this side's (each end no shorter), else this side's; `None` if the
    /// peer asked for none.
    pub fn honouring(self, request: PaddingRequest) -> Option<PaddingRange> {
        match request {
            PaddingRequest::Stop => None,
            PaddingRequest::Start(asked) => Some(PaddingRange {
                low_ms: asked.low_ms.max(self.low_ms),
                high_ms: asked.high_ms.max(self.high_ms),
            }),
        }
    }
}

/// What one side asks of its peer's padding towards it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum PaddingRequest {
    /// Pad with waits from this range (taken only as far as it means less
    /// padding than the peer's own, see [`PaddingRange::honouring`]).
    Start(PaddingRange),
    /// Send no padding.
    Stop,
}

/// How a node pads its links and what it asks of its peers: part of
/// [`LinkConfig`](super::LinkConfig).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LinkPadding {
    /// The range this side draws its idle waits from; `None`: it sends no
    /// padding.
    pub range: Option<PaddingRange>,
    /// What it asks every peer for once a link is up; `None`: it asks
    /// nothing, and the peer pads as its own configuration says.
    pub request: Option<PaddingRequest>,
}

impl LinkPadding {
    /// No padding, nothing asked: the core's default, so that simulations
    /// and tests see only the traffic they make.
    pub const NONE: LinkPadding = LinkPadding {
        range: None,
        request: None,
    };
    /// Tor's default: pad with [`PaddingRange::FULL`], ask nothing.
    pub const FULL: LinkPadding = LinkPadding {
        range: Some(PaddingRange::FULL),
        request: None,
    };
    /// Tor's reduced mode: pad with [`PaddingRange::REDUCED`], and ask
    /// peers for the same.
    pub const REDUCED: LinkPadding = LinkPadding {
        range: Some(PaddingRange::REDUCED),
        request: Some(PaddingRequest::Start(PaddingRange::REDUCED)),
    };
    /// No padding either way: send none, and ask peers to stop.
    pub const OFF: LinkPadding = LinkPadding {
        range: None,
        request: Some(PaddingRequest::Stop),
    };
}

/// One link's padding timer (compiled in with the `link-padding` feature;
/// without it a link never pads and this holds nothing).
#[cfg(feature = "link-padding")]
#[derive(Debug, Clone, Copy)]
pub(crate) struct IdleTimer {
    /// This side's own range, from its configuration.
    own: Option<PaddingRange>,
    /// The range in use: the own one, or the peer's request if it asked
    /// for less.
    range: Option<PaddingRange>,
    /// The wait drawn with the last message sent.
    wait: Duration,
    /// When the last message went out.
    last_sent: Instant,
}

#[cfg(feature = "link-padding")]
impl IdleTimer {
    pub(crate) fn new(own: Option<PaddingRange>, now: Instant) -> Self {
        IdleTimer {
            own,
            range: own,
            wait: own.map_or(Duration::ZERO, |r| {
                Duration::from_millis(u64::from(r.high_ms))
            }),
            last_sent: now,
        }
    }

    /// A message went out at `now`; `draw` is its keystream's bytes for
    /// the next wait.
    pub(crate) fn sent(&mut self, now: Instant, draw: &[u8; 16]) {
        self.last_sent = now;
        if let Some(range) = self.range {
            self.wait = range.wait(draw);
        }
    }

    /// When a padding cell is due, if this side pads: the wait after the
    /// later of the last message sent and `last_received`.
    pub(crate) fn due_at(&self, last_received: Instant) -> Option<Instant> {
        self.range?;
        Some(self.last_sent.max(last_received).saturating_add(self.wait))
    }

    /// The peer asked for `request`.
    pub(crate) fn peer_asked(&mut self, request: PaddingRequest) {
        let Some(own) = self.own else {
            return;
        };
        self.range = own.honouring(request);
        if let Some(range) = self.range {
            // The wait in force may be shorter than the new range allows.
            let floor = Duration::from_millis(u64::from(range.low_ms));
            self.wait = self.wait.max(floor);
        }
    }

    /// The range in use.
    pub(crate) fn range(&self) -> Option<PaddingRange> {
        self.range
    }
}

/// Without the `link-padding` feature: a timer that is never due.
#[cfg(not(feature = "link-padding"))]
#[derive(Debug, Clone, Copy)]
pub(crate) struct IdleTimer;

#[cfg(not(feature = "link-padding"))]
impl IdleTimer {
    pub(crate) fn new(_: Option<PaddingRange>, _: Instant) -> Self {
        IdleTimer
    }

    pub(crate) fn due_at(&self, _: Instant) -> Option<Instant> {
        None
    }

    pub(crate) fn peer_asked(&mut self, _: PaddingRequest) {}

    pub(crate) fn range(&self) -> Option<PaddingRange> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draw(first: u64, second: u64) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&first.to_be_bytes());
        out[8..].copy_from_slice(&second.to_be_bytes());
        out
    }

    #[test]
    fn a_wait_is_the_later_of_two_draws_within_the_range() {
        let range = PaddingRange::FULL;
        // 8001 values from 1500 to 9500.
        assert_eq!(range.wait(&draw(0, 0)), Duration::from_millis(1_500));
        assert_eq!(range.wait(&draw(8_000, 0)), Duration::from_millis(9_500));
        assert_eq!(range.wait(&draw(8_001, 10)), Duration::from_millis(1_510));
        assert_eq!(range.wait(&draw(3, 500)), Duration::from_millis(2_000));
        assert_eq!(
            range.wait(&draw(u64::MAX, u64::MAX)),
            Duration::from_millis(1_500 + u64::MAX % 8_001)
        );
    }

    #[test]
    fn waits_follow_the_max_of_two_uniforms() {
        // max(X, X) on [0, 1] has mean 2/3: over many keystream-like
        // draws the mean wait sits two thirds of the way up the range.
        let range = PaddingRange::new(0, 3_000).unwrap();
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            // SplitMix64, a test-only source of spread-out draws.
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        let n = 20_000u64;
        let total: u64 = (0..n)
            .map(|_| range.wait(&draw(next(), next())).as_micros() / 1_000)
            .sum();
        let mean = total / n;
        assert!((1_950..=2_050).contains(&mean), "mean wait {mean} ms");
    }

    #[test]
    fn a_range_must_be_ordered_and_not_zero() {
        assert_eq!(PaddingRange::new(10, 5), Err(PaddingRangeError::Inverted));
        assert_eq!(PaddingRange::new(0, 0), Err(PaddingRangeError::Zero));
        assert!(PaddingRange::new(0, 1).is_ok());
    }

    #[test]
    fn a_peer_can_ask_for_less_padding_never_more() {
        let own = PaddingRange::FULL;
        // Asking for cells every millisecond changes nothing.
        let greedy = PaddingRange::new(0, 1).unwrap();
        assert_eq!(own.honouring(PaddingRequest::Start(greedy)), Some(own));
        // Asking for the reduced range is granted.
        assert_eq!(
            own.honouring(PaddingRequest::Start(PaddingRange::REDUCED)),
            Some(PaddingRange::REDUCED)
        );
        assert_eq!(own.honouring(PaddingRequest::Stop), None);
    }

    #[cfg(feature = "link-padding")]
    #[test]
    fn the_timer_costs_a_link_slot_32_bytes() {
        // docs/anonymity.md gives this figure.
        assert_eq!(core::mem::size_of::<IdleTimer>(), 32);
    }

    #[cfg(feature = "link-padding")]
    #[test]
    fn the_timer_runs_from_the_last_message_either_way() {
        let start = Instant::from_millis(1_000);
        let mut timer = IdleTimer::new(Some(PaddingRange::FULL), start);
        timer.sent(start, &draw(0, 0));
        assert_eq!(timer.due_at(start), Some(Instant::from_millis(2_500)));
        // A message received later pushes the timer on.
        assert_eq!(
            timer.due_at(Instant::from_millis(2_000)),
            Some(Instant::from_millis(3_500))
        );
        timer.peer_asked(PaddingRequest::Stop);
        assert_eq!(timer.due_at(start), None);
        let mut none = IdleTimer::new(None, start);
        none.peer_asked(PaddingRequest::Start(PaddingRange::FULL));
        assert_eq!(
            none.due_at(start),
            None,
            "a side that does not pad is not made to"
        );
    }
}
