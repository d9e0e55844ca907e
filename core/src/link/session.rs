//! The sans-IO link session: a Noise `XX` handshake with identity binding,
//! then encrypted, length-delimited frames over an ordered byte stream.
//!
//! A session never sees a socket. The owner feeds it received bytes in any
//! chunking ([`LinkSession::handle_data`]), asks it for the next message to
//! write ([`LinkSession::poll_transmit`]) and calls
//! [`LinkSession::handle_timeout`] at [`LinkSession::next_deadline`].
//!
//! Replay and reordering protection come from Noise's implicit nonces: the
//! stream is ordered, so the receiver always knows the next nonce, and any
//! replayed, reordered, dropped or forged message fails authentication and
//! closes the link.

use crate::capacity::{ByteStore, DequeStore};

use crate::identity::NodeId;
use crate::noise::{CipherState, HandshakePattern, HandshakeState, Role, StaticKeypair};
use crate::time::Instant;

use super::close::CloseReason;
use super::config::LinkConfig;
use super::frame::{
    read_length_prefix, write_length_prefix, Cell, Frame, CELL_LEN, KIND_LEN, LENGTH_PREFIX_LEN,
    MAX_MESSAGE_LEN, MIN_MAX_MESSAGE_LEN, TAG_LEN,
};
use super::hello::{LinkHello, HELLO_LEN};
use super::rtt::RttEstimator;
use super::stats::LinkStats;
use super::PROLOGUE;

/// Which end of the link this session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum LinkRole {
    /// We dialled; we send the first handshake message.
    Initiator,
    /// We accepted.
    Responder,
}

/// Where the session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum LinkPhase {
    /// Handshake under way.
    Handshaking,
    /// Keys established; frames flow.
    Established,
    /// A `Close` frame is waiting to be sent.
    Closing,
    /// Finished; nothing more is sent or accepted.
    Closed,
}

/// Who ended a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ClosedBy {
    /// This node (a local request, a timeout, or a protocol error by the peer).
    Local,
    /// The peer sent a `Close` frame.
    Peer,
}

/// Why a cell could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum QueueCellError {
    /// The link is not established yet, or is closing.
    NotEstablished,
    /// The link's send queue is full: wait for transmits to drain it.
    QueueFull,
}

impl core::fmt::Display for QueueCellError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            QueueCellError::NotEstablished => {
                write!(
                    f,
                    "link is not established; wait for the LinkEstablished event"
                )
            }
            QueueCellError::QueueFull => {
                write!(
                    f,
                    "link send queue is full; poll transmits before queueing more"
                )
            }
        }
    }
}

impl core::error::Error for QueueCellError {}

/// Everything a session needs from its node to start.
#[derive(Debug)]
pub struct LinkParams<'a> {
    /// Our end.
    pub role: LinkRole,
    /// The identity the peer must prove, when we dialled a known node.
    pub expected_peer: Option<NodeId>,
    /// The node's Noise static key pair (signed by its identity in `hello`).
    pub static_keypair: &'a StaticKeypair,
    /// 32 fresh bytes from the node's CSPRNG for the Noise ephemeral key.
    pub ephemeral_secret: [u8; 32],
    /// The node's encoded hello.
    pub hello: [u8; HELLO_LEN],
    /// The largest message we accept (advertised in `hello`).
    pub local_max_message_len: usize,
    /// Timers and rekey limits.
    pub config: LinkConfig,
    /// Set when the transport carries each circuit on a stream of its own
    /// (QUIC): the transport's channel binding (a TLS exporter value, link
    /// spec §10), mixed into the handshake after [`PROLOGUE`]. Circuit cells
    /// then leave the session with
    /// [`take_stream_cell`](LinkSession::take_stream_cell) and arrive with
    /// [`note_stream_cell`](LinkSession::note_stream_cell); only link-level
    /// cells and the session's own frames use the link's byte stream.
    pub channel_binding: Option<[u8; CHANNEL_BINDING_LEN]>,
}

/// Bytes of a transport's channel binding ([`LinkParams::channel_binding`]).
pub const CHANNEL_BINDING_LEN: usize = 32;

struct Handshake {
    noise: HandshakeState,
    hello: [u8; HELLO_LEN],
    /// How many of the three `XX` messages have been written or read.
    step: u8,
    /// Set once the peer's hello has verified.
    peer_max_message_len: usize,
}

impl Handshake {
    /// Message 1 carries no payload (Noise would send it in clear); messages
    /// 2 and 3 carry the sender's hello, encrypted.
    fn payload_len(&self) -> usize {
        if self.step == 0 {
            0
        } else {
            HELLO_LEN
        }
    }
}

struct Transport {
    send: CipherState,
    receive: CipherState,
}

// The handshake variant is the largest; the state lives inline in a fixed
// link slot either way, so boxing (impossible without alloc) would save nothing.
#[allow(clippy::large_enum_variant)]
enum State {
    Handshaking(Handshake),
    Established(Transport),
    Closing(Transport, CloseReason),
    Closed(CloseReason, ClosedBy),
}

/// One link's protocol state. `B` is the receive buffer (the largest
/// message accepted plus its prefix); `Q` the queue of cells that can wait
/// How long a closing link waits for its `Close` frame to be taken by the
/// transport. A peer that stops reading cannot keep a closing link (and its
/// slot and connection) alive.
pub const CLOSE_GRACE: crate::time::Duration = crate::time::Duration::from_secs(5);

/// to be sent.
pub struct LinkSession<B, Q> {
    role: LinkRole,
    state: State,
    config: LinkConfig,
    expected_peer: Option<NodeId>,
    peer: Option<NodeId>,
    peer_max_message_len: usize,
    local_max_message_len: usize,
    rx_buf: B,
    rx_len: usize,
    /// Cells of the last message not yet taken (pull mode): `rx_buf[next..end]`.
    rx_cell_next: usize,
    rx_cell_end: usize,
    /// When the session was first seen closing by a call that knows the
    /// time; the `Close` frame must be out by `CLOSE_GRACE` after it.
    closing_since: Option<Instant>,
    tx_cells: Q,
    created_at: Instant,
    last_received: Instant,
    next_ping_at: Instant,
    ping_sequence: u64,
    outstanding_ping: Option<(u64, Instant)>,
    pong_owed: Option<u64>,
    sent_since_rekey: u64,
    last_send_rekey: Instant,
    rtt: RttEstimator,
    stats: LinkStats,
    was_established: bool,
    /// Circuit cells go over streams of their own (see
    /// [`LinkParams::channel_binding`]).
    circuit_streams: bool,
}

impl<B: ByteStore, Q: DequeStore<Cell>> core::fmt::Debug for LinkSession<B, Q> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LinkSession")
            .field("role", &self.role)
            .field("phase", &self.phase())
            .field("peer", &self.peer)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<B: ByteStore, Q: DequeStore<Cell>> LinkSession<B, Q> {
    /// Starts a session. The receive limit is clamped to what `B` can hold.
    pub fn new(now: Instant, params: LinkParams<'_>) -> Self {
        let role = match params.role {
            LinkRole::Initiator => Role::Initiator,
            LinkRole::Responder => Role::Responder,
        };
        // A bound link mixes the binding in after the prologue, so two ends
        // that disagree on it (a man in the middle of TLS, or a TCP and a
        // QUIC end) fail the handshake at message 2.
        let mut prologue = [0u8; PROLOGUE.len() + CHANNEL_BINDING_LEN];
        let (head, tail) = prologue.split_at_mut(PROLOGUE.len());
        head.copy_from_slice(PROLOGUE);
        let prologue_len = match &params.channel_binding {
            Some(binding) => {
                tail.copy_from_slice(binding);
                prologue.len()
            }
            None => PROLOGUE.len(),
        };
        let noise = HandshakeState::new(
            HandshakePattern::XX,
            role,
            prologue.get(..prologue_len).unwrap_or(PROLOGUE),
            Some(params.static_keypair),
            params.ephemeral_secret,
            None,
        );
        let local_max_message_len = params
            .local_max_message_len
            .min(B::LEN.saturating_sub(LENGTH_PREFIX_LEN))
            .min(MAX_MESSAGE_LEN);
        let state = match noise {
            Ok(noise) => State::Handshaking(Handshake {
                noise,
                hello: params.hello,
                step: 0,
                peer_max_message_len: MIN_MAX_MESSAGE_LEN,
            }),
            // Only reachable if the node passed inconsistent keys; refuse the link.
            Err(_) => State::Closed(CloseReason::ProtocolViolation, ClosedBy::Local),
        };
        LinkSession {
            role: params.role,
            state,
            config: params.config,
            expected_peer: params.expected_peer,
            peer: None,
            peer_max_message_len: MIN_MAX_MESSAGE_LEN,
            local_max_message_len,
            rx_buf: B::ZEROED,
            rx_len: 0,
            rx_cell_next: 0,
            rx_cell_end: 0,
            closing_since: None,
            tx_cells: Q::EMPTY,
            created_at: now,
            last_received: now,
            next_ping_at: now,
            ping_sequence: 0,
            outstanding_ping: None,
            pong_owed: None,
            sent_since_rekey: 0,
            last_send_rekey: now,
            rtt: RttEstimator::default(),
            stats: LinkStats::default(),
            was_established: false,
            circuit_streams: params.channel_binding.is_some(),
        }
    }

    /// Whether circuit cells travel on streams of their own rather than in
    /// the link's frames ([`LinkParams::channel_binding`]).
    pub fn circuit_streams(&self) -> bool {
        self.circuit_streams
    }

    /// The next queued circuit cell, for its circuit's stream; `None` if the
    /// link does not use circuit streams, is not established, or the next
    /// queued cell is a link-level one (it goes out in a frame first: the
    /// queue keeps its order).
    pub fn take_stream_cell(&mut self) -> Option<Cell> {
        if !self.circuit_streams
            || !matches!(self.state, State::Established(_))
            || self.tx_cells.view().front().is_none_or(is_link_level)
        {
            return None;
        }
        let cell = self.tx_cells.view_mut().pop_front()?;
        self.stats.cells_sent = self.stats.cells_sent.saturating_add(1);
        self.stats.bytes_sent = self
            .stats
            .bytes_sent
            .saturating_add(u64::try_from(CELL_LEN).unwrap_or(u64::MAX));
        Some(cell)
    }

    /// Whether [`take_stream_cell`](Self::take_stream_cell) would give a cell.
    pub fn has_stream_cell(&self) -> bool {
        self.circuit_streams
            && matches!(self.state, State::Established(_))
            && self
                .tx_cells
                .view()
                .front()
                .is_some_and(|c| !is_link_level(c))
    }

    /// A circuit cell arrived on one of the link's circuit streams: counts
    /// it, and it proves the peer alive as any message does.
    pub fn note_stream_cell(&mut self, now: Instant) {
        self.last_received = now;
        self.stats.cells_received = self.stats.cells_received.saturating_add(1);
        self.stats.bytes_received = self
            .stats
            .bytes_received
            .saturating_add(u64::try_from(CELL_LEN).unwrap_or(u64::MAX));
    }

    /// Our end of the link.
    pub fn role(&self) -> LinkRole {
        self.role
    }

    /// The phase the session is in.
    pub fn phase(&self) -> LinkPhase {
        match self.state {
            State::Handshaking(_) => LinkPhase::Handshaking,
            State::Established(_) => LinkPhase::Established,
            State::Closing(..) => LinkPhase::Closing,
            State::Closed(..) => LinkPhase::Closed,
        }
    }

    /// The authenticated peer, once its hello has verified.
    pub fn peer(&self) -> Option<NodeId> {
        self.peer
    }

    /// Whether the handshake ever completed (stays true after a close).
    pub fn was_established(&self) -> bool {
        self.was_established
    }

    /// Why and by whom the session closed, once it has.
    pub fn closed(&self) -> Option<(CloseReason, ClosedBy)> {
        match self.state {
            State::Closed(reason, by) => Some((reason, by)),
            _ => None,
        }
    }

    /// Round-trip time measured by keepalives.
    pub fn rtt(&self) -> &RttEstimator {
        &self.rtt
    }

    /// Traffic counters.
    pub fn stats(&self) -> &LinkStats {
        &self.stats
    }

    /// Cells waiting to be sent.
    pub fn queued_cells(&self) -> usize {
        self.tx_cells.len()
    }

    /// Room left in the send queue.
    pub fn queue_room(&self) -> usize {
        self.tx_cells.room()
    }

    /// The largest number of cells one received message can carry, given our
    /// advertised limit. The owner must have this much room before feeding data.
    pub fn max_cells_per_message(&self) -> usize {
        cells_fitting(self.local_max_message_len)
    }

    /// Queues a cell for sending.
    pub fn queue_cell(&mut self, cell: &Cell) -> Result<(), QueueCellError> {
        if !matches!(self.state, State::Established(_)) {
            return Err(QueueCellError::NotEstablished);
        }
        self.tx_cells
            .view_mut()
            .push_back(*cell)
            .map_err(|_| QueueCellError::QueueFull)
    }

    /// Closes the link: an established link sends a `Close` frame first.
    pub fn close(&mut self, reason: CloseReason) {
        self.fail(reason);
    }

    /// The transport under the link went away; nothing more can be sent.
    pub fn transport_closed(&mut self) {
        if !matches!(self.state, State::Closed(..)) {
            self.state = State::Closed(CloseReason::TransportClosed, ClosedBy::Local);
        }
    }

    /// Ends the session for `reason`, sending a `Close` frame if keys exist.
    fn fail(&mut self, reason: CloseReason) {
        let state = core::mem::replace(&mut self.state, State::Closed(reason, ClosedBy::Local));
        self.state = match state {
            State::Established(t) => State::Closing(t, reason),
            State::Closing(t, r) => State::Closing(t, r),
            State::Closed(r, by) => State::Closed(r, by),
            State::Handshaking(_) => State::Closed(reason, ClosedBy::Local),
        };
        self.tx_cells.view_mut().clear();
    }

    /// The next instant at which [`handle_timeout`](Self::handle_timeout) must run.
    pub fn next_deadline(&self) -> Option<Instant> {
        match self.state {
            State::Handshaking(_) => Some(
                self.created_at
                    .saturating_add(self.config.handshake_timeout),
            ),
            State::Established(_) => {
                let idle = self.last_received.saturating_add(self.config.idle_timeout);
                let rekey = self.last_send_rekey.saturating_add(self.config.rekey_after);
                // While a ping is unanswered no new one is due; the idle
                // timeout covers a peer that never answers. Reporting the
                // past ping time here would make the owner spin.
                let ping = match self.outstanding_ping {
                    None => self.next_ping_at,
                    Some(_) => idle,
                };
                Some(idle.min(rekey).min(ping))
            }
            // Until a timed call has noted when closing began, ask for one
            // at once; then allow the grace period for the `Close` frame.
            State::Closing(..) => Some(
                self.closing_since
                    .map_or(Instant::ZERO, |since| since.saturating_add(CLOSE_GRACE)),
            ),
            State::Closed(..) => None,
        }
    }

    /// Runs timers: handshake timeout and idle detection. Pings and
    /// time-based rekeys are due from here on and go out with the next
    /// [`poll_transmit`](Self::poll_transmit).
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            State::Handshaking(_) => {
                if now.saturating_since(self.created_at) >= self.config.handshake_timeout {
                    self.fail(CloseReason::HandshakeTimeout);
                }
            }
            State::Established(_) => {
                if now.saturating_since(self.last_received) >= self.config.idle_timeout {
                    self.fail(CloseReason::PeerSilent);
                }
            }
            State::Closing(_, reason) => {
                let since = *self.closing_since.get_or_insert(now);
                if now.saturating_since(since) >= CLOSE_GRACE {
                    // The peer never took the `Close` frame: give up on it.
                    self.state = State::Closed(reason, ClosedBy::Local);
                    self.tx_cells.view_mut().clear();
                }
            }
            State::Closed(..) => {}
        }
    }

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

    fn ping_due(&self, now: Instant) -> bool {
        self.outstanding_ping.is_none() && now >= self.next_ping_at
    }

    fn rekey_due(&self, now: Instant) -> bool {
        self.sent_since_rekey >= self.config.rekey_after_messages
            || now.saturating_since(self.last_send_rekey) >= self.config.rekey_after
    }

    /// Writes the next message for the peer (length prefix included) into
    /// `buf` and returns its length, or `None` if there is nothing to send or
    /// `buf` cannot hold the next message. A buffer of
    /// [`MIN_TRANSMIT_BUFFER`](super::MIN_TRANSMIT_BUFFER) bytes always suffices.
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
    fn establish(&mut self, now: Instant) {
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
            self.outstanding_ping = Some((id, now));
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
        *kind = super::frame::FrameKind::Cells.to_byte();
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

/// Whether a cell belongs to the link itself rather than to a circuit: its
/// first four bytes (the circuit id the cell layer reads) are zero (link
/// spec §10). The link layer owns this one rule about the cells it carries.
pub fn is_link_level(cell: &Cell) -> bool {
    cell.first_chunk::<4>().is_some_and(|id| *id == [0; 4])
}

/// How many whole cells fit in a message of `message_len` bytes.
fn cells_fitting(message_len: usize) -> usize {
    message_len
        .saturating_sub(KIND_LEN.saturating_add(TAG_LEN))
        .checked_div(CELL_LEN)
        .unwrap_or(0)
}

enum Fill {
    NeedMore(usize),
    Complete(usize),
    Invalid(CloseReason),
}
