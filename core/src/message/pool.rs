//! One pool of message buffers for both directions: messages on their way
//! out (kept until acknowledged, resent whole when their circuit dies) and
//! messages coming in (reassembled from fragments, held until the
//! application takes them).
//!
//! The pool is caller storage, like the link table: a fixed slice of
//! [`MessageSlot`]s (an array on firmware, a boxed slice on std), so its size
//! is fixed when the node is built. Each direction may hold at most half of
//! the slots (rounded up), so a flood of incoming messages can never take the
//! room the node needs to send, nor the other way round.
//!
//! Incoming rules (spec §8): fragments may arrive in any order and more than
//! once. A message completes when its last missing fragment arrives; it then
//! waits in its slot until polled, and its id goes into a bounded ring of
//! recently completed ids, so a late or resent copy is recognised as a
//! duplicate (and acknowledged again) instead of being delivered twice.
//!
//! Unfinished messages are charged to their sender (the circuit they came
//! over, or the replying destination): one sender may hold at most a quarter
//! of the incoming half unfinished ([`MessagePool::per_sender`]); past that,
//! its new message takes the slot of its own weakest unfinished one. When
//! the incoming half is full, a new message takes the slot of the weakest
//! unfinished message of the sender holding the most — weakest meaning the
//! fewest fragments received, then the most recently started — and its
//! sender resends. So a sender that opens message after message with one
//! fragment each only ever displaces its own, and a message that is
//! arriving is not pushed out by ones that never will. Complete messages are
//! never evicted: the fragment is refused instead, which is how a stalled
//! application stalls its senders.

use core::fmt;

use heapless::Deque;

use crate::capacity::{BufferTooSmall, ByteStore};
use crate::cell::RELAY_DATA_LEN;
use crate::circuit::{CircuitEnd, CircuitHandle};
use crate::identity::NodeId;
use crate::time::{Duration, Instant};

use super::fragment::{
    expected_len, Fragment, FragmentError, MessageId, FRAGMENT_LEN, MAX_FRAGMENTS,
};

const BITMAP_WORDS: usize = MAX_FRAGMENTS / 64;

/// Completed message ids remembered for duplicate suppression.
pub const REMEMBERED_IDS: usize = 64;

/// Where an outgoing message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// To a node, over a circuit this node builds (the circuit is chosen
    /// when the first fragment goes out).
    Node(NodeId),
    /// Back over a circuit this node is the last hop of (a reply).
    Reply(CircuitEnd),
}

/// Whom an incoming message came from, and how to answer it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Sender {
    /// Someone who built a circuit to this node. Their identity is not
    /// known; answer with a `Reply` input of the node.
    Anonymous(ReplyTo),
    /// The destination of one of this node's circuits, replying.
    Node(NodeId),
}

/// Names the circuit a message arrived on, so that the destination can
/// answer without learning who sent it. Valid while that circuit lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ReplyTo(pub(crate) CircuitEnd);

/// A complete message taken with [`MessagePool::take`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ReceivedMessage {
    /// The sender's random message id.
    pub id: MessageId,
    /// Bytes written at the start of the caller's buffer.
    pub len: usize,
    /// Who sent it.
    pub sender: Sender,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Outgoing {
    /// The id the application knows the message by.
    id: MessageId,
    /// The id its fragments carry: `id` until a circuit dies with the
    /// message partly sent, then a fresh one (see [`MessagePool::circuit_closed`]).
    wire_id: MessageId,
    target: Target,
    len: usize,
    next_offset: usize,
    /// The circuit carrying it (for `Target::Node`), once chosen.
    circuit: Option<CircuitHandle>,
    queued_at: Instant,
    /// When the last fragment went out, if it has.
    completed_at: Option<Instant>,
}

impl Outgoing {
    fn all_sent(&self) -> bool {
        self.next_offset >= self.len && !(self.len == 0 && self.next_offset == 0)
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Incoming {
    id: MessageId,
    total: usize,
    received: [u64; BITMAP_WORDS],
    missing: usize,
    started: Instant,
    sender: Sender,
}

impl Incoming {
    /// Fragments received so far.
    fn received_count(&self) -> u32 {
        self.received.iter().map(|w| w.count_ones()).sum()
    }

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

#[derive(Debug, Clone, Copy)]
pub(crate) enum SlotState {
    Free,
    Outgoing(Outgoing),
    Incoming(Incoming),
}

/// Storage for one message of at most `B::LEN` bytes, in either direction.
#[cfg_attr(feature = "testing", derive(Clone))]
pub struct MessageSlot<B> {
    pub(crate) state: SlotState,
    pub(crate) bytes: B,
}

impl<B: ByteStore> MessageSlot<B> {
    /// An empty slot.
    pub const fn new() -> Self {
        MessageSlot {
            state: SlotState::Free,
            bytes: B::ZEROED,
        }
    }
}

impl<B: ByteStore> Default for MessageSlot<B> {
    fn default() -> Self {
        Self::new()
    }
}

impl<B> fmt::Debug for MessageSlot<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageSlot")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// Why a message could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum QueueError {
    /// The outgoing half of the pool holds unacknowledged messages only;
    /// wait for acknowledgements (`MessageAcked` events) and retry.
    Full,
    /// Longer than the node's largest message.
    TooLarge {
        /// The message's length.
        len: usize,
        /// The largest this node sends.
        max: usize,
    },
}

impl fmt::Display for QueueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueueError::Full => write!(
                f,
                "too many unacknowledged messages; wait for acknowledgements and retry"
            ),
            QueueError::TooLarge { len, max } => write!(
                f,
                "a {len}-byte message exceeds this node's {max}-byte limit; split it"
            ),
        }
    }
}

impl core::error::Error for QueueError {}

/// What an incoming fragment led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// Stored; the message is not complete yet (or the fragment repeated
    /// one already held).
    Partial,
    /// The message completed and waits to be taken.
    Complete {
        /// Its id.
        id: MessageId,
        /// Its length.
        len: usize,
    },
    /// The message completed before; acknowledge it again.
    Duplicate(MessageId),
}

/// Why an incoming fragment was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ReassemblyError {
    /// The fragment is malformed, or its message too large for this node.
    Fragment(FragmentError),
    /// A fragment gives a different total length than earlier ones.
    Inconsistent,
    /// Every incoming slot holds a complete message the application has
    /// not taken yet. The sender will resend; take messages to make room.
    NoRoom,
}

impl fmt::Display for ReassemblyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReassemblyError::Fragment(e) => write!(f, "{e}"),
            ReassemblyError::Inconsistent => {
                write!(f, "fragments of one message disagree on its length")
            }
            ReassemblyError::NoRoom => write!(
                f,
                "every incoming message slot holds an untaken message; poll messages"
            ),
        }
    }
}

impl core::error::Error for ReassemblyError {}

/// Which outgoing messages a circuit may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// An own circuit to `destination`: messages already on it, then
    /// messages to `destination` on no circuit yet (they join it).
    Circuit {
        /// The circuit.
        circuit: CircuitHandle,
        /// Its last hop.
        destination: NodeId,
    },
    /// Replies over a circuit this node ends.
    Reply(CircuitEnd),
}

/// The message pool over caller storage `MB` of slots of `B::LEN` bytes.
#[cfg_attr(feature = "testing", derive(Clone))]
pub struct MessagePool<MB, B> {
    slots: MB,
    remembered: Deque<MessageId, REMEMBERED_IDS>,
    slot: core::marker::PhantomData<B>,
}

impl<MB, B: ByteStore> fmt::Debug for MessagePool<MB, B>
where
    MB: AsRef<[MessageSlot<B>]> + AsMut<[MessageSlot<B>]>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessagePool")
            .field("slots", &self.capacity())
            .field("outgoing", &self.outgoing())
            .field("incoming", &self.incoming())
            .finish()
    }
}

impl<MB, B: ByteStore> MessagePool<MB, B>
where
    MB: AsRef<[MessageSlot<B>]> + AsMut<[MessageSlot<B>]>,
{
    /// The largest message: the slot size, and at most 256 fragments.
    pub const MAX_MESSAGE_LEN: usize = if B::LEN < FRAGMENT_LEN * MAX_FRAGMENTS {
        B::LEN
    } else {
        FRAGMENT_LEN * MAX_FRAGMENTS
    };

    /// A pool over `slots` (all of them are reset to free).
    pub fn new(mut slots: MB) -> Self {
        for slot in slots.as_mut() {
            slot.state = SlotState::Free;
        }
        MessagePool {
            slots,
            remembered: Deque::new(),
            slot: core::marker::PhantomData,
        }
    }

    /// Slots in the pool.
    pub fn capacity(&self) -> usize {
        self.slots.as_ref().len()
    }

    /// The most slots one direction may hold.
    pub fn per_direction(&self) -> usize {
        self.capacity().div_ceil(2)
    }

    /// Unacknowledged outgoing messages.
    pub fn outgoing(&self) -> usize {
        self.count(|s| matches!(s, SlotState::Outgoing(_)))
    }

    /// Incoming messages, partial or waiting to be taken.
    pub fn incoming(&self) -> usize {
        self.count(|s| matches!(s, SlotState::Incoming(_)))
    }

    /// Complete incoming messages waiting to be taken.
    pub fn ready(&self) -> usize {
        self.count(|s| matches!(s, SlotState::Incoming(m) if m.missing == 0))
    }

    fn count(&self, f: impl Fn(&SlotState) -> bool) -> usize {
        self.slots.as_ref().iter().filter(|s| f(&s.state)).count()
    }

    fn free_slot(&self) -> Option<usize> {
        self.slots
            .as_ref()
            .iter()
            .position(|s| matches!(s.state, SlotState::Free))
    }

    /// Queues `message` to `target` under `id`.
    pub fn queue(
        &mut self,
        now: Instant,
        id: MessageId,
        target: Target,
        message: &[u8],
    ) -> Result<(), QueueError> {
        if message.len() > Self::MAX_MESSAGE_LEN {
            return Err(QueueError::TooLarge {
                len: message.len(),
                max: Self::MAX_MESSAGE_LEN,
            });
        }
        if self.outgoing() >= self.per_direction() {
            return Err(QueueError::Full);
        }
        let index = self.free_slot().ok_or(QueueError::Full)?;
        let slot = self.slots.as_mut().get_mut(index).ok_or(QueueError::Full)?;
        if let Some(dst) = slot.bytes.bytes_mut().get_mut(..message.len()) {
            dst.copy_from_slice(message);
        }
        slot.state = SlotState::Outgoing(Outgoing {
            id,
            wire_id: id,
            target,
            len: message.len(),
            next_offset: 0,
            circuit: None,
            queued_at: now,
            completed_at: None,
        });
        Ok(())
    }

    /// Whether a message may go over `route` now: one already on it with
    /// fragments left, or (for an own circuit) one waiting for a circuit.
    fn carries(message: &Outgoing, route: Route) -> bool {
        match route {
            Route::Circuit {
                circuit,
                destination,
            } => {
                message.target == Target::Node(destination)
                    && (message.circuit == Some(circuit) || message.circuit.is_none())
            }
            Route::Reply(end) => message.target == Target::Reply(end),
        }
    }

    /// Bit `i` is set if the `i`th of `routes` (up to 32) has a fragment
    /// waiting ([`next_fragment`](Self::next_fragment) would write one).
    /// One pass over the pool for all the routes: a node with many ready
    /// circuits asked each of them, per fragment, with a pass of its own
    /// (about 5 % of a sending node's CPU with 32 circuits and a busy pool).
    pub fn routes_with_unsent(&self, routes: impl Iterator<Item = Route> + Clone) -> u32 {
        let mut waiting = 0u32;
        for slot in self.slots.as_ref() {
            let SlotState::Outgoing(message) = &slot.state else {
                continue;
            };
            if message.all_sent() {
                continue;
            }
            for (i, route) in routes.clone().enumerate().take(32) {
                if Self::carries(message, route) {
                    waiting |= 1 << i;
                }
            }
        }
        waiting
    }

    /// Writes the next unsent fragment for `route` into `out` (the oldest
    /// queued message first) and returns its length; `None` when nothing
    /// for this route is left to send.
    pub fn next_fragment(
        &mut self,
        now: Instant,
        route: Route,
        out: &mut [u8; RELAY_DATA_LEN],
    ) -> Option<usize> {
        let slot = self
            .slots
            .as_mut()
            .iter_mut()
            .filter(|s| match &s.state {
                SlotState::Outgoing(m) => !m.all_sent() && Self::carries(m, route),
                _ => false,
            })
            .min_by_key(|s| match &s.state {
                SlotState::Outgoing(m) => m.queued_at,
                _ => Instant::ZERO,
            })?;
        let SlotState::Outgoing(message) = &mut slot.state else {
            return None;
        };
        if let Route::Circuit { circuit, .. } = route {
            message.circuit = Some(circuit);
        }
        let offset = message.next_offset;
        let end = offset.saturating_add(expected_len(message.len, offset));
        let fragment = Fragment {
            id: message.wire_id,
            total_len: u32::try_from(message.len).ok()?,
            offset: u32::try_from(offset).ok()?,
            bytes: slot.bytes.bytes().get(offset..end)?,
        };
        // An empty message is one empty fragment; mark it sent.
        message.next_offset = end.max(1);
        if message.all_sent() {
            message.completed_at = Some(now);
        }
        fragment.emit(out)
    }

    /// When the outgoing message whose fragments carry `wire_id` had its
    /// last fragment sent, if it has (for a round-trip sample at its `ACK`).
    pub fn sent_whole_at(&self, wire_id: &MessageId) -> Option<Instant> {
        self.slots.as_ref().iter().find_map(|s| match &s.state {
            SlotState::Outgoing(m) if m.wire_id == *wire_id => m.completed_at,
            _ => None,
        })
    }

    /// The destination acknowledged the message whose fragments carried
    /// `wire_id`: forget it. Returns the id the application knows it by, if
    /// an outgoing message had that wire id.
    pub fn acknowledge(&mut self, wire_id: &MessageId) -> Option<MessageId> {
        for slot in self.slots.as_mut() {
            if let SlotState::Outgoing(m) = &slot.state {
                if m.wire_id == *wire_id {
                    let id = m.id;
                    slot.state = SlotState::Free;
                    return Some(id);
                }
            }
        }
        None
    }

    /// An own circuit died: its messages go again, whole, on whatever
    /// circuit to their destination comes next.
    ///
    /// A message not yet fully sent goes under a fresh wire id from
    /// `fresh_id`, so the destination cannot link the new circuit to the
    /// old one by it: it never held the message whole, so it cannot deliver
    /// it twice (its part under the old id is abandoned). A message sent
    /// whole but not acknowledged keeps its wire id: the destination may
    /// have delivered it, and only the same id lets it recognise the copy
    /// as a duplicate, which exactly-once delivery needs.
    pub fn circuit_closed(
        &mut self,
        circuit: CircuitHandle,
        mut fresh_id: impl FnMut() -> MessageId,
    ) {
        for slot in self.slots.as_mut() {
            if let SlotState::Outgoing(m) = &mut slot.state {
                if m.circuit == Some(circuit) {
                    if m.next_offset > 0 && !m.all_sent() {
                        m.wire_id = fresh_id();
                    }
                    m.circuit = None;
                    m.next_offset = 0;
                    m.completed_at = None;
                }
            }
        }
    }

    /// Drops outgoing messages for which `lost` holds, calling `report`
    /// with each id.
    fn drop_outgoing(
        &mut self,
        lost: impl Fn(&Outgoing) -> bool,
        mut report: impl FnMut(MessageId),
    ) {
        for slot in self.slots.as_mut() {
            if let SlotState::Outgoing(m) = &slot.state {
                if lost(m) {
                    report(m.id);
                    slot.state = SlotState::Free;
                }
            }
        }
    }

    /// A circuit this node ends died: replies queued on it cannot go
    /// anywhere else. Each lost id is passed to `report`.
    pub fn reply_circuit_closed(&mut self, end: CircuitEnd, report: impl FnMut(MessageId)) {
        self.drop_outgoing(|m| m.target == Target::Reply(end), report);
    }

    /// Whether `circuit` carries any unacknowledged message.
    pub fn circuit_busy(&self, circuit: CircuitHandle) -> bool {
        self.slots
            .as_ref()
            .iter()
            .any(|s| matches!(&s.state, SlotState::Outgoing(m) if m.circuit == Some(circuit)))
    }

    /// Circuit ends with replies queued; `f` returns `false` to stop.
    pub fn reply_ends(&self, mut f: impl FnMut(CircuitEnd) -> bool) {
        for slot in self.slots.as_ref() {
            if let SlotState::Outgoing(Outgoing {
                target: Target::Reply(end),
                ..
            }) = slot.state
            {
                if !f(end) {
                    return;
                }
            }
        }
    }

    /// Destinations of messages that wait for a circuit, oldest first;
    /// `f` returns `false` to stop.
    pub fn waiting_destinations(&self, mut f: impl FnMut(NodeId) -> bool) {
        for slot in self.slots.as_ref() {
            if let SlotState::Outgoing(Outgoing {
                target: Target::Node(dest),
                circuit: None,
                ..
            }) = slot.state
            {
                if !f(dest) {
                    return;
                }
            }
        }
    }

    /// Timers: messages queued longer than `give_up_after` are dropped
    /// (each id goes to `expired`); messages sent whole but not
    /// acknowledged within `resend_after` are rewound to go again on the
    /// same circuit (the destination drops what it already has).
    pub fn on_timeout(
        &mut self,
        now: Instant,
        resend_after: Duration,
        give_up_after: Duration,
        expired: impl FnMut(MessageId),
    ) {
        self.drop_outgoing(
            |m| now.saturating_since(m.queued_at) >= give_up_after,
            expired,
        );
        for slot in self.slots.as_mut() {
            if let SlotState::Outgoing(m) = &mut slot.state {
                if m.completed_at
                    .is_some_and(|t| now.saturating_since(t) >= resend_after)
                {
                    m.next_offset = 0;
                    m.completed_at = None;
                }
            }
        }
    }

    /// When [`on_timeout`](Self::on_timeout) next has work.
    pub fn next_deadline(
        &self,
        resend_after: Duration,
        give_up_after: Duration,
    ) -> Option<Instant> {
        self.slots
            .as_ref()
            .iter()
            .filter_map(|s| match &s.state {
                SlotState::Outgoing(m) => {
                    let give_up = m.queued_at.saturating_add(give_up_after);
                    Some(match m.completed_at {
                        Some(t) => give_up.min(t.saturating_add(resend_after)),
                        None => give_up,
                    })
                }
                _ => None,
            })
            .min()
    }

    fn remember(&mut self, id: MessageId) {
        if self.remembered.is_full() {
            self.remembered.pop_front();
        }
        // Cannot fail: room was just made.
        let _ = self.remembered.push_back(id);
    }

    /// How many unfinished incoming messages one sender may hold.
    pub fn per_sender(&self) -> usize {
        (self.per_direction() / 4).max(1)
    }

    /// Unfinished incoming messages from `sender`.
    fn unfinished_from(&self, sender: Sender) -> usize {
        self.count(|s| matches!(s, SlotState::Incoming(m) if m.missing > 0 && m.sender == sender))
    }

    /// The slot of the unfinished message to give way: `sender`'s weakest
    /// when given, else the weakest of the senders holding the most. The
    /// weakest has the fewest fragments received, then the latest start.
    fn weakest_unfinished(&self, sender: Option<Sender>) -> Option<usize> {
        self.slots
            .as_ref()
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match &s.state {
                SlotState::Incoming(m) if m.missing > 0 && sender.is_none_or(|x| x == m.sender) => {
                    Some((i, m))
                }
                _ => None,
            })
            .min_by_key(|(_, m)| {
                (
                    core::cmp::Reverse(self.unfinished_from(m.sender)),
                    m.received_count(),
                    core::cmp::Reverse(m.started),
                )
            })
            .map(|(i, _)| i)
    }

    /// Whether a fragment of a new message would find a slot now.
    pub fn has_incoming_room(&self) -> bool {
        let incoming = self.incoming();
        let free = self.free_slot().is_some();
        let evictable = self
            .slots
            .as_ref()
            .iter()
            .any(|s| matches!(&s.state, SlotState::Incoming(m) if m.missing > 0));
        (incoming < self.per_direction() && free) || evictable
    }

    /// Takes one fragment (the data of a relay `DATA` message) received at
    /// `now` from `sender`.
    pub fn accept(
        &mut self,
        now: Instant,
        data: &[u8],
        sender: Sender,
    ) -> Result<Received, ReassemblyError> {
        let fragment = Fragment::parse(data, Self::MAX_MESSAGE_LEN.min(B::LEN))
            .map_err(ReassemblyError::Fragment)?;
        if self.remembered.iter().any(|id| *id == fragment.id) {
            return Ok(Received::Duplicate(fragment.id));
        }
        let total =
            usize::try_from(fragment.total_len).map_err(|_| ReassemblyError::Inconsistent)?;
        let offset = usize::try_from(fragment.offset).map_err(|_| ReassemblyError::Inconsistent)?;
        let existing = self
            .slots
            .as_ref()
            .iter()
            .position(|s| matches!(&s.state, SlotState::Incoming(m) if m.id == fragment.id));
        let index = match existing {
            Some(i) => i,
            None => self.open_incoming(fragment.id, total, now, sender)?,
        };
        let slot = self
            .slots
            .as_mut()
            .get_mut(index)
            .ok_or(ReassemblyError::NoRoom)?;
        let SlotState::Incoming(message) = &mut slot.state else {
            return Err(ReassemblyError::NoRoom);
        };
        if message.total != total {
            return Err(ReassemblyError::Inconsistent);
        }
        if message.missing == 0 {
            // Complete and not yet taken: this is a resent copy.
            return Ok(Received::Duplicate(message.id));
        }
        let fragment_index = offset / FRAGMENT_LEN;
        if !message.has(fragment_index) {
            let end = offset.saturating_add(expected_len(total, offset));
            if let Some(dst) = slot.bytes.bytes_mut().get_mut(offset..end) {
                dst.copy_from_slice(fragment.bytes);
            }
            message.mark(fragment_index);
            message.missing = message.missing.saturating_sub(1);
        }
        if message.missing > 0 {
            return Ok(Received::Partial);
        }
        let id = message.id;
        self.remember(id);
        Ok(Received::Complete { id, len: total })
    }

    /// A slot for a new incoming message from `sender`, by the rules in the
    /// [module docs](self).
    fn open_incoming(
        &mut self,
        id: MessageId,
        total: usize,
        now: Instant,
        sender: Sender,
    ) -> Result<usize, ReassemblyError> {
        let index = if self.unfinished_from(sender) >= self.per_sender() {
            self.weakest_unfinished(Some(sender))
        } else if self.incoming() < self.per_direction() {
            self.free_slot()
        } else {
            self.weakest_unfinished(None)
        }
        .ok_or(ReassemblyError::NoRoom)?;
        let slot = self
            .slots
            .as_mut()
            .get_mut(index)
            .ok_or(ReassemblyError::NoRoom)?;
        slot.state = SlotState::Incoming(Incoming {
            id,
            total,
            received: [0; BITMAP_WORDS],
            missing: total.div_ceil(FRAGMENT_LEN).max(1),
            started: now,
            sender,
        });
        Ok(index)
    }

    /// Copies the complete message that finished longest ago into `buf`
    /// and frees its slot. A `buf` shorter than the message takes nothing:
    /// the message stays, and the error says how many bytes it needs.
    pub fn take(&mut self, buf: &mut [u8]) -> Result<Option<ReceivedMessage>, BufferTooSmall> {
        let Some(slot) = self
            .slots
            .as_mut()
            .iter_mut()
            .filter(|s| matches!(&s.state, SlotState::Incoming(m) if m.missing == 0))
            .min_by_key(|s| match &s.state {
                SlotState::Incoming(m) => m.started,
                _ => Instant::ZERO,
            })
        else {
            return Ok(None);
        };
        let SlotState::Incoming(message) = slot.state else {
            return Ok(None);
        };
        let len = message.total;
        let (Some(dst), Some(src)) = (buf.get_mut(..len), slot.bytes.bytes().get(..len)) else {
            return Err(BufferTooSmall { needed: len });
        };
        dst.copy_from_slice(src);
        slot.state = SlotState::Free;
        Ok(Some(ReceivedMessage {
            id: message.id,
            len,
            sender: message.sender,
        }))
    }

    /// Drops unfinished incoming messages that started before `cutoff`.
    pub fn expire_incoming(&mut self, cutoff: Instant) -> usize {
        let mut dropped = 0usize;
        for slot in self.slots.as_mut() {
            if matches!(&slot.state, SlotState::Incoming(m) if m.missing > 0 && m.started < cutoff)
            {
                slot.state = SlotState::Free;
                dropped = dropped.saturating_add(1);
            }
        }
        dropped
    }
}
