//! What cover traffic a node sends, and its budget ([`CoverTraffic`]).

use crate::time::Duration;

/// Cover traffic a node sends over its own circuits (relay spec §8.2), all
/// of it under one budget in bytes a second. Off by default (budget 0).
///
/// - *Loop cover*: a `PROBE` to the last hop of one of the node's ready
///   circuits, drawn at random, which the last hop answers with a
///   `PROBE_REPLY`: one cell out and one back, the two directions alike.
///   The answer is also a liveness probe of that circuit: an idle circuit
///   whose loop goes unanswered is probed hop by hop and replaced, as one
///   carrying messages is (relay spec §10).
/// - *Drop cover*: a `PADDING` to a random hop of a random ready circuit,
///   dropped there. An observer of the link cannot tell it from a cell of
///   traffic, nor a relay before that hop.
/// - *FRONT*: when the node starts sending after a quiet spell (a burst,
///   such as a page load), up to `front_cells` loop cells at times drawn
///   from a Rayleigh distribution whose scale is drawn from the window
///   range: padding that hides the start of a burst, where
///   website-fingerprinting features are densest.
///
/// Loop and drop cover are Poisson processes (exponential gaps), so their
/// times say nothing about traffic; all three take their cells from the
/// budget and send nothing when it is spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default))]
pub struct CoverTraffic {
    /// Bytes a second cover may put on this node's links: each cover cell
    /// is charged [`COVER_CELL_CHARGE`](super::COVER_CELL_CHARGE) per link
    /// message it can take (two for a loop: out and back over the first
    /// link), the most it can add to the wire. Up to
    /// [`BUDGET_BURST_SECS`](super::BUDGET_BURST_SECS) seconds of budget
    /// may be saved for a burst. 0: no cover at all.
    pub budget: u32,
    /// Mean gap between loop cover cells; zero: none.
    pub loop_interval: Duration,
    /// Mean gap between drop cover cells; zero: none.
    pub drop_interval: Duration,
    /// The most FRONT cells for one burst (each burst draws 1 to this
    /// many, uniformly); 0: no FRONT padding.
    pub front_cells: u16,
    /// The least scale of a burst's Rayleigh window.
    pub front_window_min: Duration,
    /// The most scale of a burst's Rayleigh window.
    pub front_window_max: Duration,
}

impl CoverTraffic {
    /// No cover traffic.
    pub const OFF: CoverTraffic = CoverTraffic {
        budget: 0,
        loop_interval: Duration::ZERO,
        drop_interval: Duration::ZERO,
        front_cells: 0,
        front_window_min: Duration::ZERO,
        front_window_max: Duration::ZERO,
    };

    /// Whether any cover can be sent.
    pub fn is_on(&self) -> bool {
        self.budget > 0
            && (self.loop_interval > Duration::ZERO
                || self.drop_interval > Duration::ZERO
                || self.front_cells > 0)
    }
}

impl Default for CoverTraffic {
    fn default() -> Self {
        CoverTraffic::OFF
    }
}
