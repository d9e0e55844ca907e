//! Reassembly of messages from fragments, in fixed buffers, delivering
//! each message exactly once.
//!
//! Fragments may arrive in any order and more than once (a sender resends a
//! whole message over a new circuit when the old one dies). Each message is
//! delivered when its last missing fragment arrives; its id then goes into a
//! bounded ring of recently delivered ids, so a late or resent copy is
//! recognised as a duplicate (and acknowledged again) instead of being
//! delivered twice.
//!
//! When every slot holds an incomplete message, a fragment of a new message
//! takes the slot of the incomplete message that started longest ago; that
//! sender will resend. So a peer that starts messages and never finishes
//! them cannot block the node for long.

use core::fmt;

use heapless::{Deque, Vec};

use crate::time::Instant;

use super::fragment::{
    expected_len, Fragment, FragmentError, MessageId, FRAGMENT_LEN, MAX_FRAGMENTS,
};

const BITMAP_WORDS: usize = MAX_FRAGMENTS / 64;

struct Slot<const M: usize> {
    id: MessageId,
    total: usize,
    received: [u64; BITMAP_WORDS],
    missing: usize,
    started: Instant,
    buf: [u8; M],
}

impl<const M: usize> Slot<M> {
    fn has(&self, index: usize) -> bool {
        let (word, bit) = (index / 64, index % 64);
        self.received
            .get(word)
            .is_some_and(|w| w & (1u64 << bit) != 0)
    }

    fn mark(&mut self, index: usize) {
        let (word, bit) = (index / 64, index % 64);
        if let Some(w) = self.received.get_mut(word) {
            *w |= 1u64 << bit;
        }
    }
}

/// What a fragment led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// Stored; the message is not complete yet (or the fragment was a
    /// duplicate of one already held).
    Partial,
    /// The message completed and was delivered.
    Delivered(MessageId),
    /// The message was delivered before; acknowledge it again.
    Duplicate(MessageId),
}

/// Why a fragment was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ReassemblyError {
    /// The fragment is malformed or too large.
    Fragment(FragmentError),
    /// A fragment gives a different total length than earlier ones.
    Inconsistent,
}

impl fmt::Display for ReassemblyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReassemblyError::Fragment(e) => write!(f, "{e}"),
            ReassemblyError::Inconsistent => {
                write!(f, "fragments of one message disagree on its length")
            }
        }
    }
}

impl core::error::Error for ReassemblyError {}

/// Reassembles up to `SLOTS` messages at once, each at most `M` bytes,
/// remembering the last `DONE` delivered ids.
pub struct Reassembler<const SLOTS: usize, const M: usize, const DONE: usize> {
    slots: Vec<Slot<M>, SLOTS>,
    done: Deque<MessageId, DONE>,
}

impl<const SLOTS: usize, const M: usize, const DONE: usize> fmt::Debug
    for Reassembler<SLOTS, M, DONE>
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reassembler")
            .field("in_progress", &self.slots.len())
            .field("remembered", &self.done.len())
            .finish()
    }
}

impl<const SLOTS: usize, const M: usize, const DONE: usize> Default
    for Reassembler<SLOTS, M, DONE>
{
    fn default() -> Self {
        Self::new()
    }
}

impl<const SLOTS: usize, const M: usize, const DONE: usize> Reassembler<SLOTS, M, DONE> {
    /// Empty.
    pub const fn new() -> Self {
        Reassembler {
            slots: Vec::new(),
            done: Deque::new(),
        }
    }

    /// Messages partly received.
    pub fn in_progress(&self) -> usize {
        self.slots.len()
    }

    fn remember(&mut self, id: MessageId) {
        if self.done.is_full() {
            self.done.pop_front();
        }
        // Cannot fail: room was just made.
        let _ = self.done.push_back(id);
    }

    /// Takes one fragment (the data of a relay `DATA` message) received at
    /// `now`; calls `deliver` with the whole message when it completes.
    pub fn accept(
        &mut self,
        now: Instant,
        data: &[u8],
        deliver: impl FnOnce(MessageId, &[u8]),
    ) -> Result<Received, ReassemblyError> {
        let fragment = Fragment::parse(data, M).map_err(ReassemblyError::Fragment)?;
        if self.done.iter().any(|id| *id == fragment.id) {
            return Ok(Received::Duplicate(fragment.id));
        }
        let total =
            usize::try_from(fragment.total_len).map_err(|_| ReassemblyError::Inconsistent)?;
        let offset = usize::try_from(fragment.offset).map_err(|_| ReassemblyError::Inconsistent)?;
        let index = offset / FRAGMENT_LEN;
        let position = match self.slots.iter().position(|s| s.id == fragment.id) {
            Some(i) => i,
            None => self.open_slot(fragment.id, total, now),
        };
        let Some(slot) = self.slots.get_mut(position) else {
            return Ok(Received::Partial);
        };
        if slot.total != total {
            return Err(ReassemblyError::Inconsistent);
        }
        if !slot.has(index) {
            let end = offset.saturating_add(expected_len(total, offset));
            if let Some(dst) = slot.buf.get_mut(offset..end) {
                dst.copy_from_slice(fragment.bytes);
            }
            slot.mark(index);
            slot.missing = slot.missing.saturating_sub(1);
        }
        if slot.missing > 0 {
            return Ok(Received::Partial);
        }
        let id = slot.id;
        deliver(id, slot.buf.get(..total).unwrap_or(&[]));
        self.slots.swap_remove(position);
        self.remember(id);
        Ok(Received::Delivered(id))
    }

    /// A slot for a new message, evicting the oldest incomplete one if full.
    fn open_slot(&mut self, id: MessageId, total: usize, now: Instant) -> usize {
        let fragments = total.div_ceil(FRAGMENT_LEN).max(1);
        if self.slots.is_full() {
            if let Some(oldest) = self
                .slots
                .iter()
                .enumerate()
                .min_by_key(|(_, s)| s.started)
                .map(|(i, _)| i)
            {
                self.slots.swap_remove(oldest);
            }
        }
        let slot = Slot {
            id,
            total,
            received: [0; BITMAP_WORDS],
            missing: fragments,
            started: now,
            buf: [0; M],
        };
        match self.slots.push(slot) {
            Ok(()) => self.slots.len().saturating_sub(1),
            // Only with SLOTS = 0: nothing can be reassembled.
            Err(_) => usize::MAX,
        }
    }

    /// Drops incomplete messages that started before `cutoff`.
    pub fn expire(&mut self, cutoff: Instant) -> usize {
        let before = self.slots.len();
        self.slots.retain(|s| s.started >= cutoff);
        before.saturating_sub(self.slots.len())
    }
}
