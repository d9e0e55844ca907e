//! Messages on their way out: split into fragments, kept until the
//! destination acknowledges them, and resent whole over a new circuit if
//! the old one dies.

use core::fmt;

use heapless::Vec;

use crate::cell::RELAY_DATA_LEN;

use super::fragment::{expected_len, Fragment, MessageId, FRAGMENT_LEN, MAX_FRAGMENTS};

struct Outgoing<const M: usize> {
    id: MessageId,
    len: usize,
    next_offset: usize,
    buf: [u8; M],
}

/// Why a message could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum OutboxError {
    /// Every slot holds an unacknowledged message; wait for acknowledgements.
    Full,
    /// Longer than this node's message limit.
    TooLarge(usize),
}

impl fmt::Display for OutboxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutboxError::Full => write!(f, "too many unacknowledged messages; wait for acks"),
            OutboxError::TooLarge(n) => {
                write!(f, "a {n}-byte message exceeds the node's message limit")
            }
        }
    }
}

impl core::error::Error for OutboxError {}

/// Up to `MSGS` unacknowledged messages of at most `M` bytes each.
pub struct Outbox<const MSGS: usize, const M: usize> {
    messages: Vec<Outgoing<M>, MSGS>,
}

impl<const MSGS: usize, const M: usize> fmt::Debug for Outbox<MSGS, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outbox")
            .field("pending", &self.messages.len())
            .finish()
    }
}

impl<const MSGS: usize, const M: usize> Default for Outbox<MSGS, M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const MSGS: usize, const M: usize> Outbox<MSGS, M> {
    /// The largest message: the buffer size, and at most 256 fragments.
    pub const MAX_MESSAGE_LEN: usize = if M < FRAGMENT_LEN * MAX_FRAGMENTS {
        M
    } else {
        FRAGMENT_LEN * MAX_FRAGMENTS
    };

    /// Empty.
    pub const fn new() -> Self {
        Outbox {
            messages: Vec::new(),
        }
    }

    /// Unacknowledged messages.
    pub fn pending(&self) -> usize {
        self.messages.len()
    }

    /// Queues a message under a fresh random `id`.
    pub fn push(&mut self, id: MessageId, message: &[u8]) -> Result<(), OutboxError> {
        if message.len() > Self::MAX_MESSAGE_LEN {
            return Err(OutboxError::TooLarge(message.len()));
        }
        if self.messages.is_full() {
            return Err(OutboxError::Full);
        }
        let mut outgoing = Outgoing {
            id,
            len: message.len(),
            next_offset: 0,
            buf: [0; M],
        };
        if let Some(dst) = outgoing.buf.get_mut(..message.len()) {
            dst.copy_from_slice(message);
        }
        self.messages.push(outgoing).map_err(|_| OutboxError::Full)
    }

    /// Writes the next unsent fragment into `out` (oldest message first);
    /// returns its length, or `None` when everything is sent.
    pub fn next_fragment(&mut self, out: &mut [u8; RELAY_DATA_LEN]) -> Option<usize> {
        let message = self
            .messages
            .iter_mut()
            .find(|m| m.next_offset < m.len || (m.len == 0 && m.next_offset == 0))?;
        let offset = message.next_offset;
        let end = offset.saturating_add(expected_len(message.len, offset));
        let fragment = Fragment {
            id: message.id,
            total_len: u32::try_from(message.len).ok()?,
            offset: u32::try_from(offset).ok()?,
            bytes: message.buf.get(offset..end)?,
        };
        // An empty message is one empty fragment; mark it sent.
        message.next_offset = end.max(1);
        fragment.emit(out)
    }

    /// The destination acknowledged `id`: forget it. Returns whether it was pending.
    pub fn ack(&mut self, id: &MessageId) -> bool {
        match self.messages.iter().position(|m| m.id == *id) {
            Some(i) => {
                self.messages.swap_remove(i);
                true
            }
            None => false,
        }
    }

    /// The circuit died: every unacknowledged message goes again, whole.
    pub fn resend_all(&mut self) {
        for message in self.messages.iter_mut() {
            message.next_offset = 0;
        }
    }
}
