//! The receiving direction of a link session: whole messages out of an
//! ordered byte stream, decrypted and parsed, their cells kept in the
//! receive buffer until the owner takes them.

use crate::capacity::{ByteStore, DequeStore};
use crate::identity::NodeId;
use crate::time::Instant;

use super::super::close::CloseReason;
use subtle::{Choice, ConstantTimeEq};
use zeroize::{Zeroize, Zeroizing};

use super::super::frame::{
    Cell, Frame, CELLS_HEADER_LEN, CELL_LEN, KIND_LEN, LENGTH_PREFIX_LEN, TAG_LEN,
};
use super::super::hello::{LinkHello, HELLO_LEN};
use super::super::obfs::{
    first_message_mark, length_keys, masked, point_of, LengthMask, FIRST_HEADER_LEN, MARK_LEN,
    MAX_HANDSHAKE_PADDING, REPRESENTATIVE_LEN,
};
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
            if let State::Refusing(refusal) = &mut self.state {
                let rest = data.len().saturating_sub(consumed);
                let taken = rest.min(refusal.bytes_left);
                refusal.bytes_left = refusal.bytes_left.saturating_sub(taken);
                if refusal.bytes_left == 0 {
                    self.fail(CloseReason::ProtocolViolation);
                }
                return consumed.saturating_add(taken);
            }
            if matches!(self.state, State::Closing(..) | State::Closed(..)) {
                self.rx_len = 0;
                self.rx_target = 0;
                return data.len();
            }
            let rest = data.get(consumed..).unwrap_or(&[]);
            match self.fill_message(rest) {
                Fill::NeedMore(taken) => return consumed.saturating_add(taken),
                Fill::Invalid(reason) => {
                    if self.reading_first_message() {
                        // What was buffered counts as read; the loop reads
                        // on through the refusal.
                        self.refuse(now);
                        continue;
                    }
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
                        self.rx_target = 0;
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
            self.rx_target = 0;
        }
        cell
    }

    /// Copies bytes from `data` until the receive buffer holds one whole
    /// message, reading (and unmasking) its header as soon as it is in, so
    /// that a wrong length is refused before the body is buffered.
    fn fill_message(&mut self, data: &[u8]) -> Fill {
        let mut taken = 0usize;
        loop {
            let target = if self.rx_target > 0 {
                self.rx_target
            } else {
                let header = self.header_len();
                if self.rx_len >= header {
                    match self.read_header() {
                        Ok(target) => {
                            self.rx_target = target;
                            target
                        }
                        Err(reason) => return Fill::Invalid(reason),
                    }
                } else {
                    header
                }
            };
            if self.rx_target > 0 && self.rx_len >= target {
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

    /// Whether this responder is still reading the first message: a
    /// refusal then answers nothing (link spec §2.2).
    fn reading_first_message(&self) -> bool {
        matches!(&self.state, State::Handshaking(h) if h.step == 0 && !h.noise.is_my_turn())
    }

    /// Bytes of the next message's header: what must be in before its
    /// length is known (link spec §2).
    fn header_len(&self) -> usize {
        match &self.state {
            State::Handshaking(h) if !h.noise.is_my_turn() => match h.step {
                0 => FIRST_HEADER_LEN,
                1 => REPRESENTATIVE_LEN.saturating_add(LENGTH_PREFIX_LEN),
                _ => LENGTH_PREFIX_LEN,
            },
            _ => LENGTH_PREFIX_LEN,
        }
    }

    /// Reads the header in the receive buffer: checks the first message's
    /// mark, derives the length keys from the responder's representative,
    /// unmasks the length and checks it. Returns the whole message's
    /// length, header included.
    fn read_header(&mut self) -> Result<usize, CloseReason> {
        let local_max = self.local_max_message_len;
        let header = self.rx_buf.bytes().get(..self.rx_len).unwrap_or(&[]);
        match &mut self.state {
            State::Handshaking(h) => {
                if h.noise.is_my_turn() {
                    return Err(CloseReason::ProtocolViolation);
                }
                match h.step {
                    0 => read_first_header(h, header),
                    1 => {
                        let (target, point) = read_second_header(h, header)?;
                        // Noise's message 2 starts with the responder's
                        // point, where the wire has its representative and
                        // the masked length (read now): the point goes in
                        // their place, decoded once.
                        if let Some(dst) = self
                            .rx_buf
                            .bytes_mut()
                            .get_mut(LENGTH_PREFIX_LEN..)
                            .and_then(|b| b.first_chunk_mut::<32>())
                        {
                            *dst = point;
                        }
                        Ok(target)
                    }
                    _ => {
                        let (_, receive) =
                            h.masks.as_mut().ok_or(CloseReason::ProtocolViolation)?;
                        let len = unmask_length(header, receive)?;
                        check_hello_message_len(h, len)?;
                        Ok(LENGTH_PREFIX_LEN.saturating_add(len))
                    }
                }
            }
            State::Established(t) | State::Closing(t, _) => {
                let len = unmask_length(header, &mut t.receive_mask)?;
                if len > local_max {
                    Err(CloseReason::MessageTooLarge)
                } else if len < KIND_LEN.saturating_add(TAG_LEN) {
                    Err(CloseReason::ProtocolViolation)
                } else {
                    Ok(LENGTH_PREFIX_LEN.saturating_add(len))
                }
            }
            State::Refusing(_) | State::Closed(..) => Err(CloseReason::ProtocolViolation),
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
                // Message 1 is, to Noise, the initiator's point alone.
                let first_point = if h.step == 0 {
                    point_of(&h.peer_representative)
                } else {
                    [0; 32]
                };
                let message: &[u8] = if h.step == 0 { &first_point } else { message };
                // Noise decrypts in place, so the buffer also holds the tag.
                let mut payload = [0u8; HELLO_LEN + MAX_HANDSHAKE_PADDING + TAG_LEN];
                // Only the initiator reads at step 1 (message 2): its `ee`
                // is already computed (`read_second_header`).
                let ee = (h.step == 1).then_some(&*h.representative_then_ee);
                let read = h.noise.read_message_with_ee(message, &mut payload, ee);
                if h.step == 1 {
                    h.representative_then_ee.zeroize();
                }
                let outcome = match read {
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
                    Ok(Frame::Cells { cells, .. }) => {
                        // The cells follow the kind byte and the count; the
                        // padding after them is left in the buffer.
                        let start = LENGTH_PREFIX_LEN.saturating_add(CELLS_HEADER_LEN);
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
            State::Refusing(_) | State::Closing(..) | State::Closed(..) => {}
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
    // The hello, then padding to ignore.
    let hello = payload
        .get(..HELLO_LEN)
        .ok_or(CloseReason::ProtocolViolation)?;
    let hello = LinkHello::parse(hello).map_err(|_| CloseReason::ProtocolViolation)?;
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

/// Unmasks the 2-byte length at the start of `header`.
fn unmask_length(header: &[u8], mask: &mut LengthMask) -> Result<usize, CloseReason> {
    let wire = header
        .first_chunk::<LENGTH_PREFIX_LEN>()
        .ok_or(CloseReason::ProtocolViolation)?;
    let mask = mask.next_mask().ok_or(CloseReason::NonceExhausted)?;
    Ok(usize::from(u16::from_be_bytes(masked(*wire, mask))))
}

/// Message 1's header: the initiator's representative, then a mark under
/// this node's id or under the all-zero key (a dialler that knew only the
/// address), then the masked padding length.
fn read_first_header(h: &mut Handshake, header: &[u8]) -> Result<usize, CloseReason> {
    let (representative, rest) = header
        .split_first_chunk::<REPRESENTATIVE_LEN>()
        .ok_or(CloseReason::ProtocolViolation)?;
    let (mark, rest) = rest
        .split_first_chunk::<MARK_LEN>()
        .ok_or(CloseReason::ProtocolViolation)?;
    let wire_len = rest
        .first_chunk::<LENGTH_PREFIX_LEN>()
        .ok_or(CloseReason::ProtocolViolation)?;
    let own_key = h.local_id.map_or([0; 32], |id| *id.as_bytes());
    // Every candidate (both keys, three epochs) is computed and compared
    // whatever the outcome, so the time taken says nothing about which
    // matched.
    let mut found: Option<[u8; 2]> = None;
    for candidate in 0..6u8 {
        let unkeyed = candidate & 1 == 1;
        let key = if unkeyed { [0; 32] } else { own_key };
        // Epochs e − 1, e, e + 1 (at e = 0, epoch 0 twice).
        let epoch = h
            .epoch
            .saturating_add(u64::from(candidate >> 1))
            .saturating_sub(1)
            .max(h.epoch.saturating_sub(1));
        let (candidate_mark, candidate_mask) = first_message_mark(&key, representative, epoch);
        let allowed = Choice::from(u8::from(!unkeyed || h.answer_unkeyed));
        if bool::from(candidate_mark.ct_eq(mark) & allowed) {
            found = Some(candidate_mask);
        }
    }
    let mask = found.ok_or(CloseReason::ProtocolViolation)?;
    let padding = usize::from(u16::from_be_bytes(masked(*wire_len, mask)));
    if padding > MAX_HANDSHAKE_PADDING {
        return Err(CloseReason::ProtocolViolation);
    }
    h.peer_representative = *representative;
    #[cfg(feature = "replay-filter")]
    {
        h.first_mark = Some(*mark);
    }
    Ok(FIRST_HEADER_LEN.saturating_add(padding))
}

/// Message 2's header: the responder's representative, from which (with
/// this side's ephemeral key) the length keys follow, then the masked
/// length of the rest. Returns the message's whole length and the point
/// the representative decodes to.
fn read_second_header(h: &mut Handshake, header: &[u8]) -> Result<(usize, [u8; 32]), CloseReason> {
    let (representative, rest) = header
        .split_first_chunk::<REPRESENTATIVE_LEN>()
        .ok_or(CloseReason::ProtocolViolation)?;
    let point = point_of(representative);
    let ee = Zeroizing::new(
        h.noise
            .ephemeral_agreement(&point)
            .map_err(|_| CloseReason::AuthenticationFailed)?,
    );
    let (i2r, mut r2i) = length_keys(&ee, &h.representative_then_ee, representative);
    // The representative is spent; keep `ee` for reading the message.
    *h.representative_then_ee = *ee;
    let rest_len = unmask_length(rest, &mut r2i)?;
    // To Noise the message is the point followed by the rest.
    check_hello_message_len(h, rest_len.saturating_add(REPRESENTATIVE_LEN))?;
    h.peer_representative = *representative;
    h.masks = Some((i2r, r2i));
    let target = REPRESENTATIVE_LEN
        .saturating_add(LENGTH_PREFIX_LEN)
        .saturating_add(rest_len);
    Ok((target, point))
}

/// A Noise message carrying a hello and at most `MAX_HANDSHAKE_PADDING`
/// bytes of padding has a length in a known range; anything else is
/// refused before it is buffered.
fn check_hello_message_len(h: &Handshake, noise_len: usize) -> Result<(), CloseReason> {
    let shortest = h.noise.next_message_len(HELLO_LEN);
    let longest = h
        .noise
        .next_message_len(HELLO_LEN.saturating_add(MAX_HANDSHAKE_PADDING));
    match (shortest, longest) {
        (Some(low), Some(high)) if (low..=high).contains(&noise_len) => Ok(()),
        _ => Err(CloseReason::ProtocolViolation),
    }
}
