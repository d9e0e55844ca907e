//! The receiving direction of a link session: whole messages out of an
//! ordered byte stream, decrypted and parsed, their cells kept in the
//! receive buffer until the owner takes them.

use crate::capacity::{ByteStore, DequeStore};
use crate::identity::NodeId;
use crate::time::Instant;

use super::super::close::CloseReason;
use super::super::frame::{
    read_length_prefix, Cell, Frame, CELL_LEN, KIND_LEN, LENGTH_PREFIX_LEN, TAG_LEN,
};
use super::super::hello::{LinkHello, HELLO_LEN};
use super::{ClosedBy, Handshake, LinkSession, State};

impl<B: ByteStore, Q: DequeStore<Cell>> LinkSession<B, Q> {
    /// Feeds bytes received from the peer, in any chunking, leaving the
    /// cells of each message in the session to be taken one at a time with
    /// [`take_cell`](Self::take_cell).
    ///
    /// Returns how many bytes were consumed. It stops after each message
    /// that carries cells: take them all, then call again with the rest (or
    /// with an empty slice). Holding cells here, not in a buffer of the
    /// owner, is what lets the owner stop reading a link (and so push back
    /// on its peer) when the cells have nowhere to go.
    pub fn receive(&mut self, now: Instant, data: &[u8]) -> usize {
        let mut consumed = 0usize;
        loop {
            if self.pending_cells() > 0 {
                return consumed;
            }
            if matches!(self.state, State::Closing(..) | State::Closed(..)) {
                self.rx_len = 0;
                return data.len();
            }
            let rest = data.get(consumed..).unwrap_or(&[]);
            match self.fill_message(rest) {
                Fill::NeedMore(taken) => return consumed.saturating_add(taken),
                Fill::Invalid(reason) => {
                    self.fail(reason);
                    return data.len();
                }
                Fill::Complete(taken) => {
                    consumed = consumed.saturating_add(taken);
                    self.stats.messages_received = self.stats.messages_received.saturating_add(1);
                    self.stats.bytes_received = self
                        .stats
                        .bytes_received
                        .saturating_add(u64::try_from(self.rx_len).unwrap_or(u64::MAX));
                    self.process_message(now);
                    if self.pending_cells() == 0 {
                        self.rx_len = 0;
                    }
                }
            }
        }
    }

    /// Cells received and not yet taken.
    pub fn pending_cells(&self) -> usize {
        self.rx_cell_end
            .saturating_sub(self.rx_cell_next)
            .checked_div(CELL_LEN)
            .unwrap_or(0)
    }

    /// The next received cell, left in place: what the owner checks for
    /// room before it takes the cell.
    pub fn peek_cell(&self) -> Option<Cell> {
        if self.pending_cells() == 0 {
            return None;
        }
        let start = self.rx_cell_next;
        let end = start.checked_add(CELL_LEN)?;
        self.rx_buf
            .bytes()
            .get(start..end)
            .and_then(|c| <Cell>::try_from(c).ok())
    }

    /// The next received cell, in order (see [`receive`](Self::receive)).
    pub fn take_cell(&mut self) -> Option<Cell> {
        if self.pending_cells() == 0 {
            return None;
        }
        let start = self.rx_cell_next;
        let end = start.checked_add(CELL_LEN)?;
        let cell = self
            .rx_buf
            .bytes()
            .get(start..end)
            .and_then(|c| <Cell>::try_from(c).ok());
        self.rx_cell_next = end;
        if self.pending_cells() == 0 {
            self.rx_cell_next = 0;
            self.rx_cell_end = 0;
            self.rx_len = 0;
        }
        cell
    }

    /// Copies bytes from `data` until the receive buffer holds one whole
    /// message, checking its announced length as soon as the prefix is in.
    fn fill_message(&mut self, data: &[u8]) -> Fill {
        let mut taken = 0usize;
        loop {
            let target =
                match read_length_prefix(self.rx_buf.bytes().get(..self.rx_len).unwrap_or(&[])) {
                    None => LENGTH_PREFIX_LEN,
                    Some(len) => {
                        if let Err(reason) = self.check_announced_len(len) {
                            return Fill::Invalid(reason);
                        }
                        match LENGTH_PREFIX_LEN.checked_add(len) {
                            Some(t) => t,
                            None => return Fill::Invalid(CloseReason::MessageTooLarge),
                        }
                    }
                };
            if self.rx_len >= target {
                return Fill::Complete(taken);
            }
            let want = target.saturating_sub(self.rx_len);
            let available = data.get(taken..).unwrap_or(&[]);
            let n = want.min(available.len());
            if n == 0 {
                return Fill::NeedMore(taken);
            }
            let end = self.rx_len.saturating_add(n);
            let (Some(dst), Some(src)) = (
                self.rx_buf.bytes_mut().get_mut(self.rx_len..end),
                available.get(..n),
            ) else {
                return Fill::Invalid(CloseReason::MessageTooLarge);
            };
            dst.copy_from_slice(src);
            self.rx_len = end;
            taken = taken.saturating_add(n);
        }
    }

    fn check_announced_len(&self, len: usize) -> Result<(), CloseReason> {
        match &self.state {
            State::Handshaking(h) => {
                // Handshake messages have exactly one valid length each, so a
                // wrong length is refused before any of its bytes are buffered.
                if h.noise.is_my_turn() {
                    return Err(CloseReason::ProtocolViolation);
                }
                match h.noise.next_message_len(h.payload_len()) {
                    Some(expected) if expected == len => Ok(()),
                    _ => Err(CloseReason::ProtocolViolation),
                }
            }
            _ => {
                if len > self.local_max_message_len {
                    Err(CloseReason::MessageTooLarge)
                } else if len < KIND_LEN.saturating_add(TAG_LEN) {
                    Err(CloseReason::ProtocolViolation)
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Handles one whole received message. Its cells stay in the receive
    /// buffer for [`take_cell`](Self::take_cell).
    fn process_message(&mut self, now: Instant) {
        let end = self.rx_len;
        let Some(message) = self.rx_buf.bytes_mut().get_mut(LENGTH_PREFIX_LEN..end) else {
            return;
        };
        match &mut self.state {
            State::Handshaking(h) => {
                // Noise decrypts in place, so the buffer also holds the tag.
                let mut payload = [0u8; HELLO_LEN + TAG_LEN];
                let outcome = match h.noise.read_message(message, &mut payload) {
                    Ok(n) => payload.get(..n).map(|p| read_hello(h, p)),
                    Err(_) => Some(Err(CloseReason::AuthenticationFailed)),
                };
                let result = match outcome {
                    Some(Ok(hello)) => Ok(hello),
                    Some(Err(reason)) => Err(reason),
                    None => Err(CloseReason::ProtocolViolation),
                };
                self.last_received = now;
                match result {
                    Err(reason) => self.fail(reason),
                    Ok(None) => {}
                    Ok(Some((peer, max))) => {
                        if self.expected_peer.is_some_and(|expected| expected != peer) {
                            self.fail(CloseReason::IdentityMismatch);
                            return;
                        }
                        self.peer = Some(peer);
                        h.peer_max_message_len = max;
                        if h.noise.is_complete() {
                            self.establish(now);
                        }
                    }
                }
            }
            State::Established(t) => {
                let plaintext_len = match t.receive.decrypt_in_place(&[], message) {
                    Ok(n) => n,
                    Err(_) => {
                        self.fail(CloseReason::AuthenticationFailed);
                        return;
                    }
                };
                self.last_received = now;
                let Some(plaintext) = message.get(..plaintext_len) else {
                    self.fail(CloseReason::ProtocolViolation);
                    return;
                };
                match Frame::parse(plaintext) {
                    Err(_) => self.fail(CloseReason::ProtocolViolation),
                    Ok(Frame::Cells(cells)) => {
                        // The cells follow the frame's kind byte.
                        let start = LENGTH_PREFIX_LEN.saturating_add(KIND_LEN);
                        let count = cells.len().checked_div(CELL_LEN).unwrap_or(0);
                        self.rx_cell_next = start;
                        self.rx_cell_end = start.saturating_add(count.saturating_mul(CELL_LEN));
                        self.stats.cells_received = self
                            .stats
                            .cells_received
                            .saturating_add(u64::try_from(count).unwrap_or(u64::MAX));
                    }
                    Ok(Frame::Ping(id)) => self.pong_owed = Some(id),
                    Ok(Frame::Pong(id)) => {
                        if let Some((expected, sent_at)) = self.outstanding_ping {
                            if expected == id {
                                self.rtt.update(now.saturating_since(sent_at));
                                self.outstanding_ping = None;
                            }
                        }
                    }
                    Ok(Frame::KeyUpdate) => {
                        t.receive.rekey();
                        self.stats.rekeys_received = self.stats.rekeys_received.saturating_add(1);
                    }
                    Ok(Frame::Close(reason)) => {
                        self.state = State::Closed(reason, ClosedBy::Peer);
                        self.tx_cells.view_mut().clear();
                    }
                    Ok(Frame::Padding(_)) => {}
                }
            }
            State::Closing(..) | State::Closed(..) => {}
        }
    }
}

/// Handles a decrypted handshake payload. Returns the verified peer and its
/// receive limit when the payload was a hello, `None` for message 1.
fn read_hello(h: &mut Handshake, payload: &[u8]) -> Result<Option<(NodeId, usize)>, CloseReason> {
    let step = h.step;
    h.step = h.step.saturating_add(1);
    if step == 0 {
        return if payload.is_empty() {
            Ok(None)
        } else {
            Err(CloseReason::ProtocolViolation)
        };
    }
    let hello = LinkHello::parse(payload).map_err(|_| CloseReason::ProtocolViolation)?;
    let remote_static = h
        .noise
        .remote_static()
        .ok_or(CloseReason::ProtocolViolation)?;
    let peer = hello
        .verify(&remote_static)
        .map_err(|_| CloseReason::IdentityMismatch)?;
    Ok(Some((peer, usize::from(hello.max_message_len))))
}

enum Fill {
    NeedMore(usize),
    Complete(usize),
    Invalid(CloseReason),
}
