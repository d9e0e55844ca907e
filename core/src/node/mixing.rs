//! Mixing delays (relay spec §9.1, `docs/anonymity.md` "Mixing delays"):
//! with [`NodeConfig::mixing_delay_mean`](super::NodeConfig::mixing_delay_mean)
//! set, a relay holds every `RELAY` cell it passes on, either way, for an
//! exponentially distributed time with that mean (Loopix's per-hop
//! delays), then handles it as if it had just arrived.
//!
//! A cell is held *before* it is handled: its layer is taken off (or put
//! on) when it leaves the queue, so a hop's cipher state sees the cells
//! in the order they are sent on, and the cells this relay answers with
//! (`EXTENDED`, probe replies) come after the held cells that preceded
//! them. Cells of one circuit end stay in order: each is held until its
//! own release time or that of the cell before it on the same end,
//! whichever is later (veil's cells are in order on a circuit, which a
//! cipher chained from cell to cell requires). A control cell (a
//! `DESTROY`) on an end with held cells waits behind them, without a
//! draw of its own.
//!
//! The queue is this node's "hold a cell until a time" hook: one array of
//! [`MIXING_QUEUE`] cells, fixed when the node is built. One link may hold
//! [`MIXING_SHARE`] of them. When a cell finds no place (the queue full,
//! or its link's share used up):
//!
//! - if its circuit end has no cell held, it is handled at once, unmixed,
//!   and counted ([`NodeStats::mixing_queue_full`](super::NodeStats)):
//!   the circuit keeps working, only this cell goes without its delay;
//! - if its end has cells held, it cannot go before them, so it stays
//!   in its link's receive buffer, as a cell that finds no room on its
//!   next link does, and the link is read again once they have left.
//!
//! Either way a peer that floods the node fills its own share: other
//! links' cells keep their places and their own delays.

use crate::capacity::VecStore;
use crate::cell::{CellCommand, CircuitId};
use crate::circuit::CircuitEnd;
use crate::link::{Cell, LinkId, LinkPhase};
use crate::random_delay::exponential_delay;
use crate::time::{Duration, Instant};

use super::{HeldCell, Node, Profile};

/// The held-cell capacity the std node's and the simulator's profiles
/// give (`mixed_cells` in [`node_profile!`](crate::node_profile); 0 when
/// not given): about 68 KiB of cells. Sized for a std relay: by Little's
/// law a queue of `n` cells with a mean delay `d` mixes up to `n / d`
/// cells a second, 6,400 (about 3 MB/s) at 20 ms; beyond that some cells
/// go unmixed, counted.
pub const MIXING_QUEUE: usize = 128;

/// Cells of one link a queue of `capacity` holds at most, a quarter of
/// it, so that no single peer can fill the queue and strip the others'
/// cells of their delays. A link's own busy circuit then waits for its
/// own cells to leave: it is mixed at `share / mean` cells a second at
/// most.
pub const fn mixing_share(capacity: usize) -> usize {
    capacity / 4
}

/// Bytes of mixing state a node of profile `P` carries, whatever its
/// configuration (docs/memory.md).
pub const fn mixing_state_size<P: Profile>() -> usize {
    core::mem::size_of::<P::MixedCells>()
}

/// What to do with a cell that has just arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Handle it now: it is not passed on, and nothing of its circuit end
    /// is held.
    Now,
    /// Handle it now, unmixed: it would be held but found no place.
    Unmixed,
    /// Hold it: `draw` says whether it gets a delay of its own (a `RELAY`
    /// cell passed on) or only waits behind its end's held cells; it may
    /// not leave before `behind`.
    Hold {
        /// Whether to draw a delay for it.
        draw: bool,
        /// The release of the last held cell of its end.
        behind: Option<Instant>,
    },
    /// Leave it in its link: its end has cells held and no place is left.
    Wait,
}

/// The held cells, in the order they arrived, in a profile's storage.
#[derive(Debug, Clone)]
pub(crate) struct MixQueue<S> {
    held: S,
}

impl<S: VecStore<HeldCell>> MixQueue<S> {
    /// An empty queue.
    pub(crate) const fn new() -> Self {
        MixQueue { held: S::EMPTY }
    }

    /// Cells held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.held.view().len()
    }

    /// When the last cell of `end` held leaves, if one is.
    pub(crate) fn last_release(&self, end: CircuitEnd) -> Option<Instant> {
        self.held
            .view()
            .iter()
            .rev()
            .find(|h| h.end() == end)
            .map(|h| h.release)
    }

    /// Cells from `link` held.
    pub(crate) fn held_from(&self, link: LinkId) -> usize {
        self.held.view().iter().filter(|h| h.link == link).count()
    }

    /// Whether a cell from `link` finds a place.
    fn has_place(&self, link: LinkId) -> bool {
        !self.held.view().is_full() && self.held_from(link) < mixing_share(S::CAPACITY)
    }

    /// What to do with a cell arriving on `end`; `passed_on`: it is a
    /// `RELAY` cell of a circuit this node passes on.
    pub(crate) fn admit(&self, end: CircuitEnd, passed_on: bool) -> Admit {
        let behind = self.last_release(end);
        if behind.is_none() && !passed_on {
            return Admit::Now;
        }
        if self.has_place(end.0) {
            Admit::Hold {
                draw: passed_on,
                behind,
            }
        } else if behind.is_some() {
            Admit::Wait
        } else {
            Admit::Unmixed
        }
    }

    /// Holds `cell`, from `link`, until `own` or until the last cell of
    /// its end held leaves, whichever is later. `false` if there is no
    /// place ([`admit`](Self::admit) said there was).
    pub(crate) fn hold(&mut self, link: LinkId, cell: &Cell, own: Instant) -> bool {
        if !self.has_place(link) {
            return false;
        }
        let end = (link, CircuitId::of(cell));
        let release = self.last_release(end).map_or(own, |last| last.max(own));
        self.held
            .view_mut()
            .push(HeldCell {
                release,
                link,
                cell: *cell,
                blocked: false,
            })
            .is_ok()
    }

    /// Starts a release pass: every cell is tried again.
    pub(crate) fn unblock(&mut self) {
        for h in self.held.view_mut().iter_mut() {
            h.blocked = false;
        }
    }

    /// Whether some due cell waits for room.
    pub(crate) fn any_blocked(&self) -> bool {
        self.held.view().iter().any(|h| h.blocked)
    }

    /// The first cell from index `from` on that is due at `now` and first
    /// of its end; due cells behind an earlier one of their end are
    /// marked blocked on the way.
    pub(crate) fn next_due(&mut self, now: Instant, from: usize) -> Option<usize> {
        let mut i = from;
        while i < self.held.view().len() {
            let (before, rest) = self.held.view_mut().split_at_mut(i);
            let h = rest.first_mut()?;
            if h.release <= now {
                let end = h.end();
                if before.iter().any(|b| b.end() == end) {
                    h.blocked = true;
                } else {
                    return Some(i);
                }
            }
            i = i.saturating_add(1);
        }
        None
    }

    /// The cell at `index` and the link it came over.
    pub(crate) fn get(&self, index: usize) -> Option<(LinkId, Cell)> {
        self.held.view().get(index).map(|h| (h.link, h.cell))
    }

    /// Marks the cell at `index` as waiting for room.
    pub(crate) fn block(&mut self, index: usize) {
        if let Some(h) = self.held.view_mut().get_mut(index) {
            h.blocked = true;
        }
    }

    /// Takes the cell at `index` out, keeping the others in order.
    pub(crate) fn remove(&mut self, index: usize) {
        if index < self.held.view().len() {
            self.held.view_mut().remove(index);
        }
    }

    /// When the next cell not waiting for room is due.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.held
            .view()
            .iter()
            .filter(|h| !h.blocked)
            .map(|h| h.release)
            .min()
    }
}

impl<P: Profile> Node<P> {
    /// What to do with `cell`, the next cell of `link`.
    pub(crate) fn mixing_admit(&self, link: LinkId, cell: &Cell) -> Admit {
        if self.config.mixing_delay_mean == Duration::ZERO || self.link_only() {
            return Admit::Now;
        }
        let end = (link, CircuitId::of(cell));
        let relay = matches!(
            CellCommand::of(cell),
            Some(CellCommand::Relay | CellCommand::RelayEarly)
        );
        self.mixing.admit(end, relay && self.engine.passes_on(end))
    }

    /// Holds `cell`, taken from `link`, as `admit` said.
    pub(crate) fn mixing_hold(&mut self, link: LinkId, cell: &Cell, draw: bool) {
        let now = self.now;
        let own = if draw {
            let bits = rand_core::Rng::next_u64(&mut *self.rng);
            now.saturating_add(exponential_delay(self.config.mixing_delay_mean, bits))
        } else {
            now
        };
        // `admit` found a place, and nothing was held since.
        if self.mixing.hold(link, cell, own) {
            self.stats.cells_mixed = self.stats.cells_mixed.saturating_add(u64::from(draw));
        }
    }

    /// A cell found no place and goes unmixed.
    pub(crate) fn mixing_unmixed(&mut self) {
        self.stats.mixing_queue_full = self.stats.mixing_queue_full.saturating_add(1);
    }

    /// Handles the held cells that are due, in order, while there is room
    /// for what they cause; those that find none wait for the next pass
    /// (after a transmit or an event taken). Cells of a link that has
    /// closed go with it. Whether any was handled.
    pub(crate) fn release_mixed(&mut self) -> bool {
        let now = self.now;
        self.mixing.unblock();
        let mut handled = false;
        let mut at = 0;
        while let Some(i) = self.mixing.next_due(now, at) {
            let Some((link, mut cell)) = self.mixing.get(i) else {
                break;
            };
            let open = self.slot_index(link).filter(|&index| {
                self.links
                    .as_ref()
                    .get(index)
                    .and_then(|s| s.session.as_ref())
                    .is_some_and(|s| s.phase() == LinkPhase::Established)
            });
            let Some(index) = open else {
                // Its link, and so its circuit, is gone.
                self.mixing.remove(i);
                self.stats.mixed_cells_orphaned = self.stats.mixed_cells_orphaned.saturating_add(1);
                at = i;
                continue;
            };
            if !self.cell_fits(link, &cell) {
                self.mixing.block(i);
                at = i.saturating_add(1);
                continue;
            }
            self.mixing.remove(i);
            handled = true;
            self.inspect_cell(link, &mut cell);
            if !self.on_cell(link, &cell) {
                if let Some(session) = self.session_mut(index) {
                    session.close(crate::link::CloseReason::ProtocolViolation);
                }
            }
            self.sync_slot(index);
            at = i;
        }
        if handled {
            // Cells left in their links behind these may go now.
            self.cells_held = true;
        }
        handled
    }

    /// When the next held cell is due, unless it waits for room.
    pub(crate) fn mixing_deadline(&self) -> Option<Instant> {
        self.mixing.deadline()
    }
}
