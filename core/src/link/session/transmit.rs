//! The sending direction of a link session: handshake messages, then
//! sealed frames (cells packed as many as fit, keepalives, rekeys, the
//! close), each with its length prefix.

use crate::capacity::{ByteStore, DequeStore};
use crate::time::Instant;

use super::super::close::CloseReason;
use zeroize::Zeroizing;

use crate::identity::NodeId;

use super::super::frame::{
    Cell, Frame, FrameKind, CELLS_HEADER_LEN, CELL_LEN, LENGTH_PREFIX_LEN, TAG_LEN,
};
use super::super::hello::HELLO_LEN;
use super::super::obfs::{
    fill_padding, first_message_header, length_keys, masked, LengthMask, FIRST_HEADER_LEN,
    MAX_HANDSHAKE_PADDING, REPRESENTATIVE_LEN,
};
use super::{
    cells_fitting, is_link_level, ClosedBy, Handshake, LinkRole, LinkSession, State, Transport,
};

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
                    || (cfg!(feature = "link-padding") && self.idle_padding_due(now))
            }
            State::Closing(..) => true,
            State::Refusing(_) | State::Closed(..) => false,
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

    fn idle_padding_due(&self, now: Instant) -> bool {
        self.idle_padding_at().is_some_and(|at| now >= at)
    }

    fn rekey_due(&self, now: Instant) -> bool {
        self.sent_since_rekey >= self.config.rekey_after_messages
            || now.saturating_since(self.last_send_rekey) >= self.config.rekey_after
    }

    /// The random padding in the handshake message this side writes next,
    /// if it is in its handshake and it is its turn to write (link spec
    /// §2): what the next [`poll_transmit`](Self::poll_transmit) spends on
    /// hiding the message's length, for the owner to count.
    pub fn handshake_padding_due(&self) -> Option<u16> {
        match &self.state {
            State::Handshaking(h) if h.noise.is_my_turn() => Some(h.own_padding()),
            _ => None,
        }
    }

    /// Writes the next message for the peer (length prefix included) into
    /// `buf` and returns its length, or `None` if there is nothing to send or
    /// `buf` cannot hold the next message. A buffer of
    /// [`MIN_TRANSMIT_BUFFER`](crate::link::MIN_TRANSMIT_BUFFER) bytes always suffices.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        let written = match &mut self.state {
            State::Handshaking(_) => self.transmit_handshake(now, buf),
            State::Established(_) => self.transmit_established(now, buf),
            State::Closing(..) => self.transmit_close(now, buf),
            State::Refusing(_) | State::Closed(..) => None,
        }?;
        self.stats.messages_sent = self.stats.messages_sent.saturating_add(1);
        self.stats.bytes_sent = self
            .stats
            .bytes_sent
            .saturating_add(u64::try_from(written).unwrap_or(u64::MAX));
        Some(written)
    }

    fn transmit_handshake(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        let expected_peer = self.expected_peer;
        let State::Handshaking(h) = &mut self.state else {
            return None;
        };
        if !h.noise.is_my_turn() {
            return None;
        }
        let written = match h.step {
            0 => write_first(h, expected_peer, buf),
            1 => write_second(h, buf),
            _ => write_third(h, buf),
        };
        let Ok(written) = written else {
            // `Err(false)`: `buf` is too small, try again with a larger one.
            if written == Err(true) {
                self.fail(CloseReason::ProtocolViolation);
            }
            return None;
        };
        h.step = h.step.saturating_add(1);
        if h.noise.is_complete() {
            self.establish(now);
        }
        Some(written)
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
        let Some((send_mask, receive_mask)) = h.masks else {
            return;
        };
        let Ok(keys) = h.noise.split() else {
            return;
        };
        let (send, receive) = match self.role {
            LinkRole::Initiator => (keys.initiator_to_responder, keys.responder_to_initiator),
            LinkRole::Responder => (keys.responder_to_initiator, keys.initiator_to_responder),
        };
        self.peer_max_message_len = peer_max;
        self.state = State::Established(Transport {
            send,
            receive,
            send_mask,
            receive_mask,
        });
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
            let n = self.seal(now, buf, &Frame::Pong(id))?;
            self.pong_owed = None;
            return Some(n);
        }
        if self.rekey_due(now) {
            let n = self.seal(now, buf, &Frame::KeyUpdate)?;
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
            let n = self.seal(now, buf, &Frame::Ping(id))?;
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
        if self.framed_cells() > 0 {
            return self.transmit_cells(now, buf, false);
        }
        if cfg!(feature = "link-padding") && self.idle_padding_due(now) {
            return self.transmit_cells(now, buf, true);
        }
        None
    }

    /// How many queued cells, from the front, go out in the link's frames:
    /// all of them, or on a link with circuit streams the link-level ones
    /// before the first circuit cell.
    pub(super) fn framed_cells(&self) -> usize {
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

    /// Packs as many queued cells as the peer's limit and `buf` allow into
    /// one message; or, for `idle_padding`, one padding cell (all zeros: a
    /// link-level `PADDING` cell, link spec §10) in a message padded as any
    /// one-cell message is, so that the two look alike.
    fn transmit_cells(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        idle_padding: bool,
    ) -> Option<usize> {
        let room = buf
            .len()
            .saturating_sub(LENGTH_PREFIX_LEN)
            .min(self.peer_max_message_len);
        let fitting = cells_fitting(room);
        let idle_padding = cfg!(feature = "link-padding") && idle_padding;
        let queued = if idle_padding { 1 } else { self.framed_cells() };
        let count = fitting.min(queued);
        if count == 0 {
            return None;
        }
        let cells_len = count.checked_mul(CELL_LEN)?;
        let unpadded = cells_len.checked_add(CELLS_HEADER_LEN)?;
        // A message as full as the room allows is not padded (link spec
        // §4.2): it is within a cell of the limit, so its size says "full"
        // with or without padding, and bulk transfer pays nothing.
        let drawn = match &self.state {
            State::Established(t) if count < fitting => t.send_mask.cells_padding(),
            _ => 0,
        };
        let padding = drawn.min(room.saturating_sub(unpadded.saturating_add(TAG_LEN)));
        let plaintext_len = unpadded.checked_add(padding)?;
        let body = buf.get_mut(LENGTH_PREFIX_LEN..)?;
        let (header, rest) = body.split_first_chunk_mut::<CELLS_HEADER_LEN>()?;
        *header = [FrameKind::Cells.to_byte(), u8::try_from(count).ok()?];
        let (cells, padding_out) = rest.split_at_mut_checked(cells_len)?;
        if idle_padding {
            cells.fill(0);
        } else {
            for slot in cells.chunks_exact_mut(CELL_LEN) {
                let cell = self.tx_cells.view_mut().pop_front()?;
                slot.copy_from_slice(&cell);
            }
        }
        // The padding is encrypted with the rest: its bytes need not be random.
        padding_out.get_mut(..padding)?.fill(0);
        let n = self.encrypt_prefixed(now, buf, plaintext_len)?;
        if idle_padding {
            #[cfg(feature = "link-padding")]
            {
                self.stats.padding_cells_sent = self.stats.padding_cells_sent.saturating_add(1);
            }
        } else {
            self.stats.cells_sent = self
                .stats
                .cells_sent
                .saturating_add(u64::try_from(count).unwrap_or(u64::MAX));
        }
        Some(n)
    }

    fn transmit_close(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        let State::Closing(_, reason) = self.state else {
            return None;
        };
        let n = self.seal(now, buf, &Frame::Close(reason))?;
        self.state = State::Closed(reason, ClosedBy::Local);
        Some(n)
    }

    /// Emits `frame` after the length prefix and encrypts it.
    fn seal(&mut self, now: Instant, buf: &mut [u8], frame: &Frame<'_>) -> Option<usize> {
        let body = buf.get_mut(LENGTH_PREFIX_LEN..)?;
        let plaintext_len = frame.emit(body).ok()?;
        self.encrypt_prefixed(now, buf, plaintext_len)
    }

    /// Encrypts the plaintext at `buf[2..2 + plaintext_len]` in place and
    /// writes the length prefix; restarts the idle-padding timer with a
    /// wait drawn from the mask's block. Returns the whole message length.
    fn encrypt_prefixed(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        plaintext_len: usize,
    ) -> Option<usize> {
        let (send, send_mask) = match &mut self.state {
            State::Established(t) | State::Closing(t, _) => (&mut t.send, &mut t.send_mask),
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
        // With idle padding the block that masks the length also draws the
        // next wait. Without it the plain mask is written as before: one
        // shared helper returning the draw made the firmware image, which
        // has no padding, 100 B larger through its inlining.
        #[cfg(feature = "link-padding")]
        {
            let (mask, draw) = send_mask.next_mask_and_draw()?;
            let clear = u16::try_from(sealed).ok()?.to_be_bytes();
            *prefix.first_chunk_mut::<LENGTH_PREFIX_LEN>()? = masked(clear, mask);
            self.idle.sent(now, &draw);
        }
        #[cfg(not(feature = "link-padding"))]
        {
            let _ = now;
            write_masked_length(prefix, sealed, send_mask)?;
        }
        self.sent_since_rekey = self.sent_since_rekey.saturating_add(1);
        LENGTH_PREFIX_LEN.checked_add(sealed)
    }
}

/// Writes `len` as a masked length prefix (link spec §2).
fn write_masked_length(prefix: &mut [u8], len: usize, mask: &mut LengthMask) -> Option<()> {
    let clear = u16::try_from(len).ok()?.to_be_bytes();
    let out = prefix.first_chunk_mut::<LENGTH_PREFIX_LEN>()?;
    *out = masked(clear, mask.next_mask()?);
    Some(())
}

/// Message 1: the initiator's representative, the mark keyed by the node
/// it dials (or zeros), the masked padding length, the padding. Noise's
/// message 1 (the ephemeral point, no payload) is written only to advance
/// the handshake: the representative goes on the wire in its place.
/// `Err(true)` ends the link, `Err(false)` asks for a larger buffer.
fn write_first(
    h: &mut Handshake,
    expected_peer: Option<NodeId>,
    buf: &mut [u8],
) -> Result<usize, bool> {
    let padding = h.own_padding();
    let total = FIRST_HEADER_LEN
        .checked_add(usize::from(padding))
        .ok_or(true)?;
    let out = buf.get_mut(..total).ok_or(false)?;
    let mut point = [0u8; 32];
    h.noise.write_message(&[], &mut point).map_err(|_| true)?;
    let key = expected_peer.map_or([0; 32], |id| *id.as_bytes());
    let (header_out, pad_out) = out
        .split_first_chunk_mut::<FIRST_HEADER_LEN>()
        .ok_or(true)?;
    *header_out = first_message_header(&key, &h.representative_then_ee, h.epoch, padding);
    fill_padding(&h.padding_key, pad_out);
    Ok(total)
}

/// Message 2: the responder's representative, the masked length of the
/// rest, then the rest of Noise's message 2 (its encrypted static key and
/// the encrypted hello and padding). Derives the length keys first: `ee`
/// is known once the responder has its own ephemeral key and the
/// initiator's.
fn write_second(h: &mut Handshake, buf: &mut [u8]) -> Result<usize, bool> {
    // Noise holds the point message 1 decoded to.
    let peer_point = h.noise.remote_ephemeral().ok_or(true)?;
    let ee = Zeroizing::new(h.noise.ephemeral_agreement(&peer_point).map_err(|_| true)?);
    let (i2r, mut r2i) = length_keys(&ee, &h.peer_representative, &h.representative_then_ee);
    let noise_len = h.noise.next_message_len(h.payload_len()).ok_or(true)?;
    // The Noise message goes after a 2-byte gap; its first 32 bytes (the
    // point) are then overwritten by the representative and the length.
    let total = LENGTH_PREFIX_LEN.checked_add(noise_len).ok_or(true)?;
    let out = buf.get_mut(..total).ok_or(false)?;
    let n = write_noise_with_hello(h, out.get_mut(LENGTH_PREFIX_LEN..).ok_or(true)?, Some(&ee))?;
    let rest_len = n.checked_sub(REPRESENTATIVE_LEN).ok_or(true)?;
    let clear = u16::try_from(rest_len).map_err(|_| true)?.to_be_bytes();
    let mask = r2i.next_mask().ok_or(true)?;
    let (repr_out, rest) = out
        .split_first_chunk_mut::<REPRESENTATIVE_LEN>()
        .ok_or(true)?;
    *repr_out = *h.representative_then_ee;
    let len_out = rest.first_chunk_mut::<LENGTH_PREFIX_LEN>().ok_or(true)?;
    *len_out = masked(clear, mask);
    h.masks = Some((r2i, i2r));
    Ok(total)
}

/// Message 3: the masked length, then Noise's message 3 (the encrypted
/// static key, the encrypted hello and padding).
fn write_third(h: &mut Handshake, buf: &mut [u8]) -> Result<usize, bool> {
    let noise_len = h.noise.next_message_len(h.payload_len()).ok_or(true)?;
    let total = LENGTH_PREFIX_LEN.checked_add(noise_len).ok_or(true)?;
    let out = buf.get_mut(..total).ok_or(false)?;
    let (prefix, body) = out
        .split_first_chunk_mut::<LENGTH_PREFIX_LEN>()
        .ok_or(true)?;
    let n = write_noise_with_hello(h, body, None)?;
    let (send, _) = h.masks.as_mut().ok_or(true)?;
    write_masked_length(prefix, n, send).ok_or(true)?;
    Ok(total)
}

/// Writes Noise's next message with the hello and this side's padding
/// (zeros: they travel encrypted) as its payload.
fn write_noise_with_hello(
    h: &mut Handshake,
    out: &mut [u8],
    ee: Option<&[u8; 32]>,
) -> Result<usize, bool> {
    let mut payload = [0u8; HELLO_LEN + MAX_HANDSHAKE_PADDING];
    let payload_len = h.payload_len();
    let hello_out = payload.first_chunk_mut::<HELLO_LEN>().ok_or(true)?;
    *hello_out = h.hello;
    let payload = payload.get(..payload_len).ok_or(true)?;
    match ee {
        Some(ee) => h.noise.write_message_with_ee(payload, out, ee),
        None => h.noise.write_message(payload, out),
    }
    .map_err(|_| true)
}
