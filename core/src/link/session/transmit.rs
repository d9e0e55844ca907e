//! The sending direction of a link session: handshake messages, then
//! sealed frames (cells packed as many as fit, keepalives, rekeys, the
//! close), each with its length prefix.

use crate::capacity::{ByteStore, DequeStore};
use crate::time::Instant;

use super::super::close::CloseReason;
use super::super::frame::{
    write_length_prefix, Cell, Frame, FrameKind, CELL_LEN, KIND_LEN, LENGTH_PREFIX_LEN,
};
use super::{cells_fitting, is_link_level, ClosedBy, LinkRole, LinkSession, State, Transport};

impl<B: ByteStore, Q: DequeStore<Cell>> LinkSession<B, Q> {
    /// Whether [`poll_transmit`](Self::poll_transmit) would write something now.
    pub fn wants_transmit(&self, now: Instant) -> bool {
        match &self.state {
            State::Handshaking(h) => h.noise.is_my_turn(),
            State::Established(_) => {
                self.pong_owed.is_some()
                    || self.rekey_due(now)
                    || self.ping_due(now)
                    || self.framed_cells() > 0
            }
            State::Closing(..) => true,
            State::Closed(..) => false,
        }
    }

    /// One ping is in flight at a time, except while received cells wait
    /// for the owner: then this end reads nothing, the peer's pings go
    /// unanswered, and pings go out every `STALLED_PING_INTERVAL`
    /// regardless, so that the peer keeps hearing from us well within its
    /// ping timeout (it must not take our stalled reading for death).
    fn ping_due(&self, now: Instant) -> bool {
        if self.pending_cells() > 0 {
            return now >= self.stalled_ping_at();
        }
        self.outstanding_ping.is_none() && now >= self.next_ping_at
    }

    fn rekey_due(&self, now: Instant) -> bool {
        self.sent_since_rekey >= self.config.rekey_after_messages
            || now.saturating_since(self.last_send_rekey) >= self.config.rekey_after
    }

    /// Writes the next message for the peer (length prefix included) into
    /// `buf` and returns its length, or `None` if there is nothing to send or
    /// `buf` cannot hold the next message. A buffer of
    /// [`MIN_TRANSMIT_BUFFER`](crate::link::MIN_TRANSMIT_BUFFER) bytes always suffices.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        let written = match &mut self.state {
            State::Handshaking(_) => self.transmit_handshake(now, buf),
            State::Established(_) => self.transmit_established(now, buf),
            State::Closing(..) => self.transmit_close(buf),
            State::Closed(..) => None,
        }?;
        self.stats.messages_sent = self.stats.messages_sent.saturating_add(1);
        self.stats.bytes_sent = self
            .stats
            .bytes_sent
            .saturating_add(u64::try_from(written).unwrap_or(u64::MAX));
        Some(written)
    }

    fn transmit_handshake(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        let State::Handshaking(h) = &mut self.state else {
            return None;
        };
        if !h.noise.is_my_turn() {
            return None;
        }
        let payload: &[u8] = if h.step == 0 { &[] } else { &h.hello };
        let (prefix, body) = buf.split_at_mut_checked(LENGTH_PREFIX_LEN)?;
        let len = h.noise.next_message_len(payload.len())?;
        if body.len() < len {
            return None;
        }
        let written = match h.noise.write_message(payload, body) {
            Ok(n) => n,
            Err(_) => {
                self.fail(CloseReason::ProtocolViolation);
                return None;
            }
        };
        write_length_prefix(prefix, written)?;
        h.step = h.step.saturating_add(1);
        if h.noise.is_complete() {
            self.establish(now);
        }
        LENGTH_PREFIX_LEN.checked_add(written)
    }

    /// Moves a finished handshake into the transport phase.
    pub(super) fn establish(&mut self, now: Instant) {
        let state = core::mem::replace(
            &mut self.state,
            State::Closed(CloseReason::ProtocolViolation, ClosedBy::Local),
        );
        let State::Handshaking(h) = state else {
            self.state = state;
            return;
        };
        let peer_max = h.peer_max_message_len;
        let Ok(keys) = h.noise.split() else {
            return;
        };
        let (send, receive) = match self.role {
            LinkRole::Initiator => (keys.initiator_to_responder, keys.responder_to_initiator),
            LinkRole::Responder => (keys.responder_to_initiator, keys.initiator_to_responder),
        };
        self.peer_max_message_len = peer_max;
        self.state = State::Established(Transport { send, receive });
        self.was_established = true;
        // The handshake took at least one round trip (the initiator's
        // first message to the second, the responder's accept to the
        // third): the first RTT sample, an overestimate, so that the ping
        // timeout fits a slow path before the first pong.
        self.rtt.update(now.saturating_since(self.created_at));
        self.last_received = now;
        self.last_send_rekey = now;
        self.next_ping_at = now.saturating_add(self.config.keepalive_interval);
    }

    fn transmit_established(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        if let Some(id) = self.pong_owed {
            let n = self.seal(buf, &Frame::Pong(id))?;
            self.pong_owed = None;
            return Some(n);
        }
        if self.rekey_due(now) {
            let n = self.seal(buf, &Frame::KeyUpdate)?;
            if let State::Established(t) = &mut self.state {
                t.send.rekey();
            }
            self.sent_since_rekey = 0;
            self.last_send_rekey = now;
            self.stats.rekeys_sent = self.stats.rekeys_sent.saturating_add(1);
            return Some(n);
        }
        if self.ping_due(now) {
            let id = self.ping_sequence;
            let n = self.seal(buf, &Frame::Ping(id))?;
            self.ping_sequence = self.ping_sequence.wrapping_add(1);
            // While stalled, a ping goes out every STALLED_PING_INTERVAL,
            // but the one whose answer is awaited stays the first: the
            // answers to the later ones cannot be read before it.
            if self.outstanding_ping.is_none() || self.pending_cells() == 0 {
                self.outstanding_ping = Some((id, now));
            }
            self.last_ping_at = now;
            self.next_ping_at = now.saturating_add(self.config.keepalive_interval);
            return Some(n);
        }
        if self.framed_cells() == 0 {
            return None;
        }
        self.transmit_cells(buf)
    }

    /// How many queued cells, from the front, go out in the link's frames:
    /// all of them, or on a link with circuit streams the link-level ones
    /// before the first circuit cell.
    fn framed_cells(&self) -> usize {
        if self.circuit_streams {
            self.tx_cells
                .view()
                .iter()
                .take_while(|c| is_link_level(c))
                .count()
        } else {
            self.tx_cells.len()
        }
    }

    /// Packs as many queued cells as the peer's limit and `buf` allow into one message.
    fn transmit_cells(&mut self, buf: &mut [u8]) -> Option<usize> {
        let room = buf
            .len()
            .saturating_sub(LENGTH_PREFIX_LEN)
            .min(self.peer_max_message_len);
        let count = cells_fitting(room).min(self.framed_cells());
        if count == 0 {
            return None;
        }
        let plaintext_len = count.checked_mul(CELL_LEN)?.checked_add(KIND_LEN)?;
        let body = buf.get_mut(LENGTH_PREFIX_LEN..)?;
        let (kind, cells) = body.split_first_mut()?;
        *kind = FrameKind::Cells.to_byte();
        for slot in cells.chunks_exact_mut(CELL_LEN).take(count) {
            let cell = self.tx_cells.view_mut().pop_front()?;
            slot.copy_from_slice(&cell);
        }
        let n = self.encrypt_prefixed(buf, plaintext_len)?;
        self.stats.cells_sent = self
            .stats
            .cells_sent
            .saturating_add(u64::try_from(count).unwrap_or(u64::MAX));
        Some(n)
    }

    fn transmit_close(&mut self, buf: &mut [u8]) -> Option<usize> {
        let State::Closing(_, reason) = self.state else {
            return None;
        };
        let n = self.seal(buf, &Frame::Close(reason))?;
        self.state = State::Closed(reason, ClosedBy::Local);
        Some(n)
    }

    /// Emits `frame` after the length prefix and encrypts it.
    fn seal(&mut self, buf: &mut [u8], frame: &Frame<'_>) -> Option<usize> {
        let body = buf.get_mut(LENGTH_PREFIX_LEN..)?;
        let plaintext_len = frame.emit(body).ok()?;
        self.encrypt_prefixed(buf, plaintext_len)
    }

    /// Encrypts the plaintext at `buf[2..2 + plaintext_len]` in place and
    /// writes the length prefix. Returns the whole message length.
    fn encrypt_prefixed(&mut self, buf: &mut [u8], plaintext_len: usize) -> Option<usize> {
        let send = match &mut self.state {
            State::Established(t) | State::Closing(t, _) => &mut t.send,
            _ => return None,
        };
        let (prefix, body) = buf.split_at_mut_checked(LENGTH_PREFIX_LEN)?;
        let sealed = match send.encrypt_in_place(&[], body, plaintext_len) {
            Ok(n) => n,
            Err(_) => {
                // Either `buf` is too short (the caller retries with a larger
                // one) or the nonce space is spent, which ends the link.
                if send.nonce() == u64::MAX {
                    self.state = State::Closed(CloseReason::NonceExhausted, ClosedBy::Local);
                }
                return None;
            }
        };
        write_length_prefix(prefix, sealed)?;
        self.sent_since_rekey = self.sent_since_rekey.saturating_add(1);
        LENGTH_PREFIX_LEN.checked_add(sealed)
    }
}
