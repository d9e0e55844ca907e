//! Constant-rate shaping of one circuit end (Tamaraw, Cai et al., CCS
//! 2014): while a burst lasts, the end sends exactly one cell per
//! interval, a fragment of a message when it has one and a `PADDING`
//! otherwise, and it pads each burst to a multiple of a fixed number of
//! cells. An observer of any link of the circuit then sees cells at one
//! rate and bursts of a few lengths, not the sizes and timing of the
//! messages inside.
//!
//! A burst begins with the first fragment sent after the end was idle and
//! ends at the first slot with no fragment to send at which the burst's
//! cell count is a multiple of the bucket. A fragment that finds its slot
//! not yet open waits for it: that is the shaping's latency, one interval
//! per cell queued before it.

use crate::time::{Duration, Instant};

/// How a node shapes the circuits it sends on (relay spec §8.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default))]
pub struct Shaping {
    /// One cell per this interval on each circuit end while a burst lasts;
    /// zero: no shaping.
    pub interval: Duration,
    /// Each burst is padded to a multiple of this many cells (at least 1).
    pub bucket: u16,
    /// A burst goes on (padding) until no fragment went for this long:
    /// the gaps inside a page load or a conversation are filled, so an
    /// observer cannot count its messages. Zero: a burst ends at its first
    /// empty slot (padded to the bucket).
    pub linger: Duration,
}

impl Shaping {
    /// No shaping.
    pub const OFF: Shaping = Shaping {
        interval: Duration::ZERO,
        bucket: 1,
        linger: Duration::ZERO,
    };

    /// Whether the node shapes at all.
    pub fn is_on(&self) -> bool {
        self.interval > Duration::ZERO
    }
}

impl Default for Shaping {
    fn default() -> Self {
        Shaping::OFF
    }
}

/// The shaping state of one circuit end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ShapeState {
    /// When the next cell may go.
    next_slot: Instant,
    /// Cells sent in the burst so far; `None` when idle.
    burst: Option<u16>,
    /// When the last fragment (not padding) went.
    last_fragment: Instant,
}

/// What a circuit end does at an open slot with no fragment to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleSlot {
    /// Send a `PADDING`: the burst goes on.
    Pad,
    /// Nothing: the end is idle.
    Rest,
}

impl ShapeState {
    /// An idle end whose first cell may go at once.
    pub const IDLE: ShapeState = ShapeState {
        next_slot: Instant::ZERO,
        burst: None,
        last_fragment: Instant::ZERO,
    };

    /// Whether a cell may go at `now`.
    pub fn slot_open(&self, now: Instant) -> bool {
        self.next_slot <= now
    }

    /// When the next slot opens, if the end is in a burst (it will pad or
    /// send then).
    pub fn next_slot(&self) -> Option<Instant> {
        self.burst.map(|_| self.next_slot)
    }

    /// When the next slot opens, whatever the burst.
    pub fn slot_at(&self) -> Instant {
        self.next_slot
    }

    /// A fragment went at `now`.
    pub fn on_fragment(&mut self, now: Instant, shaping: &Shaping) {
        self.last_fragment = now;
        self.on_sent(now, shaping);
    }

    /// A cell (fragment or padding) went at `now`.
    pub fn on_sent(&mut self, now: Instant, shaping: &Shaping) {
        let from = self.next_slot.max(now);
        self.next_slot = from.saturating_add(shaping.interval.max(Duration::from_micros(1)));
        self.burst = Some(self.burst.unwrap_or(0).saturating_add(1));
    }

    /// The slot is open at `now` and no fragment waits: pad, or end the
    /// burst (if it lingered long enough and its length is a multiple of
    /// the bucket) and rest.
    pub fn idle_slot(&mut self, now: Instant, shaping: &Shaping) -> IdleSlot {
        let lingering = now.saturating_since(self.last_fragment) < shaping.linger;
        match self.burst {
            None => IdleSlot::Rest,
            Some(cells) if !lingering && cells.is_multiple_of(shaping.bucket.max(1)) => {
                self.burst = None;
                IdleSlot::Rest
            }
            Some(_) => IdleSlot::Pad,
        }
    }
}
