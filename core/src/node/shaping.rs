//! Constant-rate shaping of the circuit ends this node sends on (relay
//! spec §8.3): the node's side of [`Shaping`](crate::circuit::Shaping).
//! `send_fragments` asks [`Node::shaping_holds`] before each fragment, and
//! [`Node::shaping_idle_slot`] when a circuit end has none; the shaping
//! state lives in each end's [`Flow`](crate::circuit::Flow).
//!
//! Reply ends in a burst are remembered here after their messages are
//! gone, so that the burst is still padded to its bucket.

use heapless::Vec;

use crate::cell::RelayCommand;
use crate::circuit::{CircuitEnd, IdleSlot};
use crate::time::Instant;

use super::circuits::{flow_of, Back};
use super::{Node, Profile};

/// Reply ends whose burst is padded after their messages are gone. One
/// more is not padded to its bucket (it stops with its messages).
pub const SHAPED_REPLIES: usize = 8;

/// The node's shaping bookkeeping.
#[derive(Debug, Clone, Default)]
pub(crate) struct ShapingState {
    /// Reply ends in a burst.
    pub(crate) replies: Vec<CircuitEnd, SHAPED_REPLIES>,
    /// The earliest slot an end waits for: a held fragment or a burst's
    /// next padding.
    pub(crate) deadline: Option<Instant>,
}

impl<P: Profile> Node<P> {
    /// Whether a fragment for `back` must wait for its slot; notes the
    /// slot as a deadline if so.
    pub(super) fn shaping_holds(&mut self, back: Back) -> bool {
        let shaping = self.config.shaping;
        if !shaping.is_on() {
            return false;
        }
        let now = self.now;
        let Some(slot) = flow_of(&mut self.engine, back).map(|f| f.shape.slot_at()) else {
            return false;
        };
        if slot <= now {
            return false;
        }
        self.note_shaping_deadline(slot);
        true
    }

    /// A fragment went on `back`.
    pub(super) fn shaping_fragment_sent(&mut self, back: Back) {
        let (shaping, now) = (self.config.shaping, self.now);
        if !shaping.is_on() {
            return;
        }
        if let Some(flow) = flow_of(&mut self.engine, back) {
            flow.shape.on_fragment(now, &shaping);
        }
        self.shaping_burst_goes_on(back);
    }

    /// A cell went on `back`: its next slot, and the burst's count.
    fn shaping_sent(&mut self, back: Back) {
        let shaping = self.config.shaping;
        if !shaping.is_on() {
            return;
        }
        let now = self.now;
        let Some(flow) = flow_of(&mut self.engine, back) else {
            return;
        };
        flow.shape.on_sent(now, &shaping);
        self.shaping_burst_goes_on(back);
    }

    /// `back` is in a burst: its next slot is a deadline, and a reply end
    /// is remembered.
    fn shaping_burst_goes_on(&mut self, back: Back) {
        if !self.config.shaping.is_on() {
            return;
        }
        if let Some(next) = flow_of(&mut self.engine, back).map(|f| f.shape.slot_at()) {
            self.note_shaping_deadline(next);
        }
        if let Back::Reply(end) = back {
            if !self.shaping.replies.contains(&end) {
                let _ = self.shaping.replies.push(end);
            }
        }
    }

    /// `back`'s slot is open and it has no fragment: a `PADDING` if its
    /// burst goes on. Whether one went.
    pub(super) fn shaping_idle_slot(&mut self, back: Back) -> bool {
        let shaping = self.config.shaping;
        if !shaping.is_on() {
            return false;
        }
        let now = self.now;
        let pad = flow_of(&mut self.engine, back)
            .is_some_and(|f| f.shape.idle_slot(now, &shaping) == IdleSlot::Pad);
        if !pad || !self.send_back(back, RelayCommand::Padding, &[]) {
            return false;
        }
        self.stats.shaping_padding_cells_sent =
            self.stats.shaping_padding_cells_sent.saturating_add(1);
        self.shaping_sent(back);
        true
    }

    /// The reply ends in a burst, to be offered their slots.
    pub(crate) fn shaped_replies(&self) -> Vec<CircuitEnd, SHAPED_REPLIES> {
        self.shaping.replies.clone()
    }

    /// After a round of sending over `backs`: the earliest next slot of
    /// an end in a burst is a deadline, and reply ends that are idle or
    /// gone are forgotten. Nothing when the node does not shape.
    pub(super) fn after_shaped_round(&mut self, backs: impl Iterator<Item = Back>) {
        if !self.config.shaping.is_on() {
            return;
        }
        let now = self.now;
        for back in backs {
            let slot = flow_of(&mut self.engine, back).and_then(|f| f.shape.next_slot());
            if let Some(slot) = slot.filter(|at| *at > now) {
                self.note_shaping_deadline(slot);
            }
        }
        self.prune_shaped_replies();
    }

    /// Forgets reply ends that are idle or gone.
    fn prune_shaped_replies(&mut self) {
        let mut kept: Vec<CircuitEnd, SHAPED_REPLIES> = Vec::new();
        for end in self.shaping.replies.clone() {
            let in_burst = self
                .engine
                .relay_flow(end)
                .is_some_and(|f| f.shape.next_slot().is_some());
            if in_burst {
                let _ = kept.push(end);
            }
        }
        self.shaping.replies = kept;
    }

    fn note_shaping_deadline(&mut self, at: Instant) {
        self.shaping.deadline = Some(self.shaping.deadline.map_or(at, |d| d.min(at)));
    }
}
