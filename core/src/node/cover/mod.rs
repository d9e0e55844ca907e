//! Cover traffic (relay spec §8.2): loop and drop cover at Poisson times
//! and FRONT padding at the start of a burst, over the node's own ready
//! circuits, under one budget in bytes a second.
//!
//! A node with no ready circuit to a destination sends no cover: there is
//! no traffic of its own to hide, and building circuits only to carry
//! cover would cost every relay on them more than it hides (Loopix's
//! clients are always connected to their provider; a veil node is not).
//! The budget's tokens are not spent while there is nothing to send.

mod config;
mod schedule;
#[cfg(test)]
mod schedule_tests;

pub use config::CoverTraffic;

use heapless::Vec;
use rand_core::Rng;

use crate::cell::RelayCommand;
use crate::circuit::{CircuitHandle, PROBE_NONCE_LEN};
use crate::link::{LENGTH_PREFIX_LEN, MAX_CELLS_PADDING, MIN_MAX_MESSAGE_LEN};
use crate::rate::{RateLimit, TokenBucket};
use crate::time::{Duration, Instant};

use super::circuits::Back;
use super::{Node, Profile};
use schedule::{exponential, Front};

/// Bytes one cover cell is charged per link message it can take: a
/// `CELLS` frame of one cell with the most padding (transport spec §4.2),
/// 1,562 bytes, the most it can add to the wire. A cell that shares a
/// frame with others adds only its 514 bytes, so the bytes on the wire are
/// at most the budget, and on average about two thirds of it.
// 1,562 fits a u32; `u32::try_from` is not available in a `const`.
#[allow(clippy::as_conversions)]
pub const COVER_CELL_CHARGE: u32 =
    (LENGTH_PREFIX_LEN + MIN_MAX_MESSAGE_LEN + MAX_CELLS_PADDING) as u32;
/// Seconds of budget that may be saved up for a burst (FRONT's cells come
/// in one).
pub const BUDGET_BURST_SECS: u32 = 30;
/// A node that has neither sent nor received a message's cell on its own
/// circuits for this long starts a new burst with its next one, and FRONT
/// pads that burst. Longer than the gaps inside one page load, shorter
/// than those between two.
pub const FRONT_QUIET: Duration = Duration::from_secs(2);
/// Loop cells awaited at once; the oldest is forgotten for a newer one.
pub const LOOPS_AWAITED: usize = 8;

/// A loop cell on its way.
#[derive(Debug, Clone, Copy)]
struct LoopCell {
    circuit: CircuitHandle,
    nonce: [u8; PROBE_NONCE_LEN],
    sent_at: Instant,
}

/// What kind of cover a cell is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Loop,
    Drop,
    Front,
}

/// A node's cover traffic state: its budget, the next times, the burst
/// being padded, the loops awaited.
#[derive(Debug, Clone)]
pub(crate) struct Cover {
    /// Whether the budget was filled (when cover first ran).
    started: bool,
    budget: TokenBucket,
    next_loop: Option<Instant>,
    next_drop: Option<Instant>,
    front: Option<(CircuitHandle, Front)>,
    /// The last cell of a message sent or received on an own circuit.
    last_activity: Option<Instant>,
    loops: Vec<LoopCell, LOOPS_AWAITED>,
}

impl Cover {
    pub(crate) const fn new() -> Self {
        Cover {
            started: false,
            budget: TokenBucket::EMPTY,
            next_loop: None,
            next_drop: None,
            front: None,
            last_activity: None,
            loops: Vec::new(),
        }
    }

    /// When [`Node::run_cover`] next has work.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        [
            self.next_loop,
            self.next_drop,
            self.front.map(|(_, f)| f.next_at()),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

/// A uniform draw in `0..n` (0 if `n` is 0); the bias of a 64-bit draw
/// reduced modulo a small `n` is below 2⁻⁵⁰.
fn below(rng: &mut impl Rng, n: u64) -> u64 {
    rng.next_u64().checked_rem(n).unwrap_or(0)
}

fn count_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

fn limit(cover: &CoverTraffic) -> RateLimit {
    RateLimit {
        burst: cover.budget.saturating_mul(BUDGET_BURST_SECS),
        per_second: cover.budget,
    }
}

impl<P: Profile> Node<P> {
    /// The cover traffic this node sends, and its budget.
    pub fn cover_traffic(&self) -> &CoverTraffic {
        &self.config.cover
    }

    /// Sends the cover cells that are due, and draws the next times.
    pub(crate) fn run_cover(&mut self) {
        let config = self.config.cover;
        if !config.is_on() {
            return;
        }
        let now = self.now;
        self.start_cover();
        if self.cover.next_loop.is_none() && config.loop_interval > Duration::ZERO {
            self.cover.next_loop =
                Some(now.saturating_add(exponential(&mut self.rng, config.loop_interval)));
        }
        if self.cover.next_drop.is_none() && config.drop_interval > Duration::ZERO {
            self.cover.next_drop =
                Some(now.saturating_add(exponential(&mut self.rng, config.drop_interval)));
        }
        while let Some(at) = self.cover.next_loop.filter(|at| *at <= now) {
            self.send_cover(Kind::Loop, None);
            let gap = exponential(&mut self.rng, config.loop_interval);
            self.cover.next_loop = Some(at.saturating_add(gap).max(now));
            if gap == Duration::ZERO {
                break;
            }
        }
        while let Some(at) = self.cover.next_drop.filter(|at| *at <= now) {
            self.send_cover(Kind::Drop, None);
            let gap = exponential(&mut self.rng, config.drop_interval);
            self.cover.next_drop = Some(at.saturating_add(gap).max(now));
            if gap == Duration::ZERO {
                break;
            }
        }
        while let Some((circuit, mut front)) = self.cover.front.filter(|(_, f)| f.next_at() <= now)
        {
            self.send_cover(Kind::Front, Some(circuit));
            self.cover.front = front.advance(&mut self.rng).then_some((circuit, front));
        }
    }

    /// Fills the budget the first time cover runs: a node saves up its
    /// burst from the start.
    fn start_cover(&mut self) {
        if !self.cover.started {
            self.cover.started = true;
            self.cover.budget = TokenBucket::full(limit(&self.config.cover), self.now);
        }
    }

    /// A cell of a message went or came on own circuit `circuit` at `now`:
    /// if it is the first after a quiet spell, a burst begins, and FRONT
    /// pads it.
    pub(crate) fn cover_on_activity(&mut self, circuit: CircuitHandle) {
        let config = self.config.cover;
        let now = self.now;
        let quiet = self
            .cover
            .last_activity
            .is_none_or(|at| now.saturating_since(at) >= FRONT_QUIET);
        self.cover.last_activity = Some(now);
        if !quiet || !config.is_on() || config.front_cells == 0 {
            return;
        }
        self.start_cover();
        let cells = below(&mut self.rng, u64::from(config.front_cells));
        let cells = u16::try_from(cells).unwrap_or(0).saturating_add(1);
        let low = config.front_window_min.as_micros();
        let high = config.front_window_max.as_micros().max(low);
        let spread = below(&mut self.rng, high.saturating_sub(low).saturating_add(1));
        let window = low.saturating_add(spread);
        let front = Front::new(&mut self.rng, now, cells, Duration::from_micros(window));
        self.cover.front = front.map(|f| (circuit, f));
        self.stats.front_bursts = self.stats.front_bursts.saturating_add(1);
    }

    /// Sends one cover cell of `kind`, on `circuit` if given and still
    /// ready, else on a random ready own circuit; nothing if there is none
    /// or the budget is spent.
    fn send_cover(&mut self, kind: Kind, circuit: Option<CircuitHandle>) {
        let ready =
            |c: &&crate::circuit::ClientCircuit| c.is_ready() && c.path.destination().is_some();
        let count = self.engine.clients().filter(ready).count();
        let chosen = match circuit {
            Some(handle) => self
                .engine
                .clients()
                .filter(ready)
                .find(|c| c.handle == handle),
            None if count == 0 => None,
            None => {
                let pick = below(&mut self.rng, count_u64(count));
                let pick = usize::try_from(pick).unwrap_or(0);
                self.engine.clients().filter(ready).nth(pick)
            }
        };
        let Some((handle, hops)) = chosen.map(|c| (c.handle, c.path.hops().len())) else {
            self.stats.cover_cells_without_circuit =
                self.stats.cover_cells_without_circuit.saturating_add(1);
            return;
        };
        let crossings = if kind == Kind::Drop { 1 } else { 2 };
        let charge = COVER_CELL_CHARGE.saturating_mul(crossings);
        if !self
            .cover
            .budget
            .take_many(limit(&self.config.cover), self.now, charge)
        {
            self.stats.cover_cells_over_budget =
                self.stats.cover_cells_over_budget.saturating_add(1);
            return;
        }
        let last = hops.saturating_sub(1);
        let sent = match kind {
            Kind::Drop => {
                let hop = below(&mut self.rng, count_u64(hops));
                let hop = usize::try_from(hop).unwrap_or(0);
                self.send_back(Back::Own(handle, hop), RelayCommand::Padding, &[])
            }
            Kind::Loop | Kind::Front => {
                let mut nonce = [0u8; PROBE_NONCE_LEN];
                self.rng.fill_bytes(&mut nonce);
                let sent = self.send_back(Back::Own(handle, last), RelayCommand::Probe, &nonce);
                if sent {
                    self.await_loop(LoopCell {
                        circuit: handle,
                        nonce,
                        sent_at: self.now,
                    });
                }
                sent
            }
        };
        if !sent {
            // No room on the first link: the budget taken is returned by
            // not counting it; the next cell tries again.
            self.stats.cover_cells_without_circuit =
                self.stats.cover_cells_without_circuit.saturating_add(1);
            return;
        }
        self.stats.cover_bytes_charged = self
            .stats
            .cover_bytes_charged
            .saturating_add(u64::from(charge));
        match kind {
            Kind::Loop => {
                self.stats.loop_cover_cells_sent =
                    self.stats.loop_cover_cells_sent.saturating_add(1)
            }
            Kind::Drop => {
                self.stats.drop_cover_cells_sent =
                    self.stats.drop_cover_cells_sent.saturating_add(1)
            }
            Kind::Front => {
                self.stats.front_cells_sent = self.stats.front_cells_sent.saturating_add(1)
            }
        }
    }

    fn await_loop(&mut self, cell: LoopCell) {
        if self.cover.loops.is_full() {
            self.cover.loops.remove(0);
        }
        let _ = self.cover.loops.push(cell);
        // The loop calls for an answer: an idle circuit whose loop goes
        // unanswered is probed hop by hop after the RTO, as a busy one is.
        if let Some(liveness) = self.engine.client_liveness(cell.circuit) {
            liveness.on_sent(self.now);
        }
    }

    /// A `PROBE_REPLY` from the last hop of own circuit `circuit`: if it
    /// answers a loop cell, the round trip is a sample of the circuit's
    /// RTT, and the circuit made progress. `outstanding`: messages on it
    /// still await answers. Whether it was a loop's answer.
    pub(crate) fn on_loop_reply(
        &mut self,
        circuit: CircuitHandle,
        data: &[u8],
        outstanding: bool,
    ) -> bool {
        let Some(index) = self
            .cover
            .loops
            .iter()
            .position(|l| l.circuit == circuit && l.nonce.as_slice() == data)
        else {
            return false;
        };
        let cell = self.cover.loops.remove(index);
        self.stats.loop_cover_cells_returned =
            self.stats.loop_cover_cells_returned.saturating_add(1);
        let now = self.now;
        if let Some(liveness) = self.engine.client_liveness(circuit) {
            liveness.on_sample(now.saturating_since(cell.sent_at));
            liveness.on_progress(now, outstanding);
        }
        true
    }
}
