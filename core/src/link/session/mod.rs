//! The sans-IO link session: a Noise `XX` handshake with identity binding,
//! then encrypted, length-delimited frames over an ordered byte stream.
//!
//! A session never sees a socket. The owner feeds it received bytes in any
//! chunking ([`LinkSession::receive`], then [`LinkSession::take_cell`]),
//! asks it for the next message to write ([`LinkSession::poll_transmit`])
//! and calls [`LinkSession::handle_timeout`] at
//! [`LinkSession::next_deadline`]. This file holds the session's state and
//! its life; `receive.rs` and `transmit.rs` the two directions.
//!
//! Replay and reordering protection come from Noise's implicit nonces: the
//! stream is ordered, so the receiver always knows the next nonce, and any
//! replayed, reordered, dropped or forged message fails authentication and
//! closes the link.

use crate::capacity::{ByteStore, DequeStore};

use crate::identity::NodeId;
use zeroize::Zeroizing;

use crate::noise::{CipherState, HandshakePattern, HandshakeState, Role, StaticKeypair};
use crate::time::Instant;

use super::close::CloseReason;
use super::config::LinkConfig;
use super::frame::{
    Cell, CELLS_HEADER_LEN, CELL_LEN, LENGTH_PREFIX_LEN, MAX_MESSAGE_LEN, MIN_MAX_MESSAGE_LEN,
    TAG_LEN,
};
use super::hello::HELLO_LEN;
use super::idle_padding::IdleTimer;
use super::obfs::{mark_epoch, refusal_draw, HiddenEphemeral, LengthMask, REPRESENTATIVE_LEN};
use super::rtt::RttEstimator;
use super::stats::LinkStats;
use super::PROLOGUE;

#[cfg(test)]
mod idle_padding_tests;
#[cfg(test)]
mod padding_tests;
mod receive;
mod transmit;

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

/// Everything a session needs from its node to start. Its `Debug` leaves
/// out the ephemeral secret and the channel binding.
pub struct LinkParams<'a> {
    /// Our end.
    pub role: LinkRole,
    /// The identity the peer must prove, when we dialled a known node.
    pub expected_peer: Option<NodeId>,
    /// The node's Noise static key pair (signed by its identity in `hello`).
    pub static_keypair: &'a StaticKeypair,
    /// 32 fresh bytes from the node's CSPRNG: the seed of the Noise
    /// ephemeral key (drawn until it has an Elligator2 representative) and
    /// of the handshake's padding (link spec §2).
    pub handshake_seed: [u8; 32],
    /// This node's id, when it may answer as a responder: a dialler marks
    /// its first message with it (link spec §2). A responder without one
    /// takes only first messages marked with the all-zero key.
    pub local_id: Option<NodeId>,
    /// Whether this responder also answers a first message marked with the
    /// all-zero key: one from a dialler that knew only its address (a
    /// bootstrap address without a node id). A node that must not be
    /// confirmable by a prober who knows its address sets this `false`
    /// (link spec §2.2).
    pub answer_unkeyed: bool,
    /// Wall-clock Unix seconds now: the mark of the first message covers
    /// its ten-minute epoch (link spec §2.2).
    pub unix_time: u64,
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

impl core::fmt::Debug for LinkParams<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LinkParams")
            .field("role", &self.role)
            .field("expected_peer", &self.expected_peer)
            .field("static_keypair", self.static_keypair)
            .field("handshake_seed", &"<redacted>")
            .field("local_id", &self.local_id)
            .field("answer_unkeyed", &self.answer_unkeyed)
            .field("unix_time", &self.unix_time)
            .field("local_max_message_len", &self.local_max_message_len)
            .field("config", &self.config)
            .field(
                "channel_binding",
                &self.channel_binding.map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}

/// Bytes of a transport's channel binding ([`LinkParams::channel_binding`]).
pub const CHANNEL_BINDING_LEN: usize = 32;

#[cfg_attr(feature = "testing", derive(Clone))]
struct Handshake {
    noise: HandshakeState,
    hello: [u8; HELLO_LEN],
    /// How many of the three `XX` messages have been written or read.
    step: u8,
    /// Set once the peer's hello has verified.
    peer_max_message_len: usize,
    /// This side's representative as sent, from which (with the peer's)
    /// the length keys are derived. The initiator needs it no more once
    /// it has them (message 2's header), and the field then holds the `ee`
    /// value until message 2 is read whole, so that Noise does not compute
    /// it a second time: a field of its own would grow every link slot by
    /// 32 bytes.
    representative_then_ee: Zeroizing<[u8; REPRESENTATIVE_LEN]>,
    /// The peer's representative; zero until it arrives.
    peer_representative: [u8; REPRESENTATIVE_LEN],
    /// Padding of this side's handshake messages (see `HiddenEphemeral`).
    padding: [u16; 2],
    padding_key: Zeroizing<[u8; 32]>,
    /// The length masks (send, receive), from the `ee` value on.
    masks: Option<(LengthMask, LengthMask)>,
    /// The responder's own id, the key of the mark it accepts.
    local_id: Option<NodeId>,
    /// Whether a responder takes marks under the all-zero key too.
    answer_unkeyed: bool,
    /// The mark epoch at the session's start (`obfs::mark_epoch`).
    epoch: u64,
    /// The mark of an accepted first message, until the node has checked
    /// it against its replay filter ([`LinkSession::take_first_mark`]).
    #[cfg(feature = "replay-filter")]
    first_mark: Option<[u8; super::obfs::MARK_LEN]>,
}

impl Handshake {
    /// Noise payload bytes of the next message this side writes: none in
    /// message 1 (Noise would send it in clear), the hello and padding in
    /// messages 2 and 3.
    fn payload_len(&self) -> usize {
        if self.step == 0 {
            0
        } else {
            HELLO_LEN.saturating_add(usize::from(self.own_padding()))
        }
    }

    /// Padding of the message this side writes next.
    fn own_padding(&self) -> u16 {
        let index = usize::from(self.step >= 2);
        self.padding.get(index).copied().unwrap_or(0)
    }
}

/// What is left of a refused first message's read-on (see
/// [`State::Refusing`]).
#[derive(Clone, Copy)]
struct Refusal {
    bytes_left: usize,
    until: Instant,
}

#[cfg_attr(feature = "testing", derive(Clone))]
struct Transport {
    send: CipherState,
    receive: CipherState,
    send_mask: LengthMask,
    receive_mask: LengthMask,
}

// The handshake variant is the largest; the state lives inline in a fixed
// link slot either way, so boxing (impossible without alloc) would save nothing.
#[allow(clippy::large_enum_variant)]
#[cfg_attr(feature = "testing", derive(Clone))]
enum State {
    Handshaking(Handshake),
    /// The first message carried no mark this responder knows (a prober,
    /// or a dialler of another node): read on, discarding, until a random
    /// number of bytes or a random moment, then close without a byte sent
    /// (link spec §2.2).
    Refusing(Refusal),
    Established(Transport),
    Closing(Transport, CloseReason),
    Closed(CloseReason, ClosedBy),
}

/// How long a closing link waits for its `Close` frame to be taken by the
/// transport. A peer that stops reading cannot keep a closing link (and its
/// slot and connection) alive.
pub const CLOSE_GRACE: crate::time::Duration = crate::time::Duration::from_secs(5);

/// The shortest time a ping may go unanswered, with nothing else heard from
/// the peer, before the link is declared silent (transport spec §6). A floor
/// well above what a loaded but live host takes to answer (a scheduler
/// hiccup, a pause of its process), so that load is never taken for death.
pub const PING_TIMEOUT_FLOOR: crate::time::Duration = crate::time::Duration::from_secs(5);
/// A ping is given this many RTOs (`srtt + 4·rttvar`) before the peer is
/// declared silent, if that is longer than the floor: on a slow path the
/// timeout follows the path.
pub const PING_TIMEOUT_RTOS: u64 = 4;
/// How often a side that has stopped reading (received cells wait for the
/// owner) pings: its peer's pings cannot be read, so are not answered, and
/// the peer must go on hearing something well within
/// [`PING_TIMEOUT_FLOOR`].
pub const STALLED_PING_INTERVAL: crate::time::Duration = crate::time::Duration::from_secs(1);

/// One link's protocol state. `B` is the receive buffer (the largest
/// message accepted plus its prefix); `Q` the queue of cells that can wait
/// to be sent.
#[cfg_attr(feature = "testing", derive(Clone))]
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
    /// The length of the message being received, prefix included, once its
    /// header has been read and unmasked (0 before): a mask is used once.
    rx_target: usize,
    /// Cells of the last message not yet taken: `rx_buf[next..end]`.
    rx_cell_next: usize,
    rx_cell_end: usize,
    /// When the session was first seen closing by a call that knows the
    /// time; the `Close` frame must be out by `CLOSE_GRACE` after it.
    closing_since: Option<Instant>,
    tx_cells: Q,
    created_at: Instant,
    last_received: Instant,
    next_ping_at: Instant,
    /// When the last ping went out (paces pings while this end is stalled).
    last_ping_at: Instant,
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
    /// When an idle link sends its next padding cell (transport spec §4.3).
    idle: IdleTimer,
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
        let hidden = HiddenEphemeral::generate(params.handshake_seed);
        let noise = hidden.as_ref().map(|hidden| {
            HandshakeState::with_ephemeral(
                HandshakePattern::XX,
                role,
                prologue.get(..prologue_len).unwrap_or(PROLOGUE),
                Some(params.static_keypair),
                hidden.keypair.clone(),
                None,
            )
        });
        let local_max_message_len = params
            .local_max_message_len
            .min(B::LEN.saturating_sub(LENGTH_PREFIX_LEN))
            .min(MAX_MESSAGE_LEN);
        let state = match (noise, hidden) {
            (Some(Ok(noise)), Some(hidden)) => State::Handshaking(Handshake {
                noise,
                hello: params.hello,
                step: 0,
                peer_max_message_len: MIN_MAX_MESSAGE_LEN,
                representative_then_ee: Zeroizing::new(hidden.representative),
                peer_representative: [0; REPRESENTATIVE_LEN],
                padding: hidden.padding,
                padding_key: hidden.padding_key,
                masks: None,
                local_id: params.local_id,
                answer_unkeyed: params.answer_unkeyed,
                epoch: mark_epoch(params.unix_time),
                #[cfg(feature = "replay-filter")]
                first_mark: None,
            }),
            // Only reachable if the node passed inconsistent keys, or a seed
            // that gave 64 unrepresentable keys in a row (a broken CSPRNG);
            // refuse the link.
            _ => State::Closed(CloseReason::ProtocolViolation, ClosedBy::Local),
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
            rx_target: 0,
            rx_cell_next: 0,
            rx_cell_end: 0,
            closing_since: None,
            tx_cells: Q::EMPTY,
            created_at: now,
            last_received: now,
            next_ping_at: now,
            last_ping_at: now,
            ping_sequence: 0,
            outstanding_ping: None,
            pong_owed: None,
            sent_since_rekey: 0,
            last_send_rekey: now,
            rtt: RttEstimator::default(),
            stats: LinkStats::default(),
            was_established: false,
            circuit_streams: params.channel_binding.is_some(),
            #[cfg(feature = "link-padding")]
            idle: IdleTimer::new(params.config.padding.range, now),
            #[cfg(not(feature = "link-padding"))]
            idle: IdleTimer::new(None, now),
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

    /// The mask the next received message's length will be unmasked
    /// with, when the length keys are known: for tests that write a
    /// message by hand (only with the `testing` feature).
    #[cfg(feature = "testing")]
    pub fn peek_receive_length_mask(&self) -> Option<[u8; 2]> {
        let mut mask = match &self.state {
            State::Established(t) | State::Closing(t, _) => t.receive_mask.clone(),
            State::Handshaking(h) => h.masks.as_ref()?.1.clone(),
            State::Refusing(_) | State::Closed(..) => return None,
        };
        mask.next_mask()
    }

    /// Our end of the link.
    pub fn role(&self) -> LinkRole {
        self.role
    }

    /// The phase the session is in.
    pub fn phase(&self) -> LinkPhase {
        match self.state {
            State::Handshaking(_) | State::Refusing(_) => LinkPhase::Handshaking,
            State::Established(_) => LinkPhase::Established,
            State::Closing(..) => LinkPhase::Closing,
            State::Closed(..) => LinkPhase::Closed,
        }
    }

    /// The authenticated peer, once its hello has verified.
    pub fn peer(&self) -> Option<NodeId> {
        self.peer
    }

    /// The node this initiator dialled, if it named one: who the peer must
    /// turn out to be.
    pub fn expected_peer(&self) -> Option<NodeId> {
        self.expected_peer
    }

    /// How many of the three handshake messages have been written or read
    /// (3 once established). A peer that has sent nothing is the cheapest
    /// kind of half-open connection, and the first to give way.
    pub fn handshake_progress(&self) -> u8 {
        match &self.state {
            State::Handshaking(h) => h.step,
            State::Refusing(_) => 0,
            _ => 3,
        }
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
            State::Handshaking(_) | State::Refusing(_) => State::Closed(reason, ClosedBy::Local),
        };
        self.tx_cells.view_mut().clear();
    }

    /// The next instant at which [`handle_timeout`](Self::handle_timeout) must run.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.next_deadline_while(true)
    }

    /// [`next_deadline`](Self::next_deadline) when the transport can take
    /// bytes (`writable`) or not: a ping or rekey that is due cannot go out
    /// while the transport is full, so then only the timers that end the
    /// session count (asking to be woken for a due ping would wake the
    /// owner at once, again and again).
    pub fn next_deadline_while(&self, writable: bool) -> Option<Instant> {
        match self.state {
            State::Handshaking(_) => Some(
                self.created_at
                    .saturating_add(self.config.handshake_timeout),
            ),
            State::Refusing(refusal) => Some(refusal.until),
            State::Established(_) => {
                let idle = self.last_received.saturating_add(self.config.idle_timeout);
                let silent = self.silent_at().map_or(idle, |at| at.min(idle));
                let rekey = self.last_send_rekey.saturating_add(self.config.rekey_after);
                // While a ping is unanswered no new one is due; the silence
                // timer covers a peer that never answers. Reporting the
                // past ping time here would make the owner spin.
                let ping = if self.pending_cells() > 0 {
                    self.stalled_ping_at()
                } else if self.outstanding_ping.is_some() {
                    silent
                } else {
                    self.next_ping_at
                };
                if !writable {
                    return Some(silent);
                }
                let deadline = silent.min(rekey).min(ping);
                if !cfg!(feature = "link-padding") {
                    return Some(deadline);
                }
                Some(deadline.min(self.idle_padding_at().unwrap_or(silent)))
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

    /// How long the outstanding ping may go unanswered, with nothing else
    /// heard, before the peer counts as silent: [`PING_TIMEOUT_RTOS`] RTOs
    /// of this link, at least [`PING_TIMEOUT_FLOOR`], at most the idle
    /// timeout.
    pub fn ping_timeout(&self) -> crate::time::Duration {
        let rtos = crate::time::Duration::from_micros(
            self.rtt.rto().as_micros().saturating_mul(PING_TIMEOUT_RTOS),
        );
        rtos.max(PING_TIMEOUT_FLOOR).min(self.config.idle_timeout)
    }

    /// When the peer counts as silent: the outstanding ping's timeout,
    /// counted from the later of the ping and the last message heard (a
    /// peer that is heard from is alive, even if its answer is late).
    /// `None` without a ping outstanding.
    fn silent_at(&self) -> Option<Instant> {
        let (_, sent_at) = self.outstanding_ping?;
        Some(
            sent_at
                .max(self.last_received)
                .saturating_add(self.ping_timeout()),
        )
    }

    /// When this side sends its next idle-padding cell, if it pads: not
    /// while cells wait to go out or to be taken (they are traffic, and a
    /// stalled end pings instead).
    fn idle_padding_at(&self) -> Option<Instant> {
        let at = self.idle.due_at(self.last_received)?;
        (self.framed_cells() == 0 && self.pending_cells() == 0).then_some(at)
    }

    /// The range this side's idle padding uses now: its own, or what the
    /// peer asked for if that is less; `None` if it sends none.
    pub fn idle_padding_range(&self) -> Option<super::PaddingRange> {
        self.idle.range()
    }

    /// The peer asked for less padding, or none (a `PADDING_NEGOTIATE`
    /// cell, relay spec §3): granted as far as it means less than this
    /// side's own configuration.
    pub fn peer_asked_padding(&mut self, request: super::PaddingRequest) {
        self.idle.peer_asked(request);
    }

    /// When this end, stalled, sends its next ping.
    fn stalled_ping_at(&self) -> Instant {
        self.next_ping_at
            .min(self.last_ping_at.saturating_add(STALLED_PING_INTERVAL))
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
            State::Refusing(refusal) => {
                if now >= refusal.until {
                    self.fail(CloseReason::ProtocolViolation);
                }
            }
            State::Established(_) => {
                // While received cells wait for the owner (it has no room
                // for them), this end is not reading, so the peer's frames
                // behind them, keepalives included, cannot arrive: the
                // silence is ours, not the peer's.
                if self.pending_cells() > 0 {
                    self.last_received = now;
                }
                let silent = self.silent_at().is_some_and(|at| now >= at);
                if silent || now.saturating_since(self.last_received) >= self.config.idle_timeout {
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
}

impl<B: ByteStore, Q: DequeStore<Cell>> LinkSession<B, Q> {
    /// The mark of the first message this responder just accepted, once:
    /// the node checks it against its replay filter before anything is
    /// answered (message 2 is written only by
    /// [`poll_transmit`](Self::poll_transmit)), and calls
    /// [`refuse_replayed`](Self::refuse_replayed) if it saw the mark before.
    #[cfg(feature = "replay-filter")]
    pub fn take_first_mark(&mut self) -> Option<[u8; super::obfs::MARK_LEN]> {
        match &mut self.state {
            State::Handshaking(h) => h.first_mark.take(),
            _ => None,
        }
    }

    /// Refuses a first message whose mark the node has seen before (a
    /// replay, link spec §2.2) exactly as an unmarked one: nothing is
    /// answered, the peer's bytes are read on and the link ends at a random
    /// point. Does nothing once message 2 has been written (step 2).
    #[cfg(feature = "replay-filter")]
    pub fn refuse_replayed(&mut self, now: Instant) {
        if self.role == LinkRole::Responder
            && matches!(&self.state, State::Handshaking(h) if h.step <= 1)
        {
            self.refuse(now);
        }
    }

    /// Refuses an unmarked first message: from now on every byte is read
    /// and dropped until a random number of them (256 to 16 KiB) or a
    /// random moment (1 s to the handshake timeout after the link opened)
    /// is reached, and the link closes having sent nothing. A prober learns
    /// nothing from when the connection ends or how much it could write
    /// (link spec §2.2).
    pub(super) fn refuse(&mut self, now: Instant) {
        let State::Handshaking(h) = &self.state else {
            return;
        };
        let [a, b, c, d, e, f, g, k] = refusal_draw(&h.padding_key);
        let bytes_draw = usize::from(u16::from_be_bytes([a, b]));
        let span = REFUSAL_MAX_BYTES.saturating_sub(REFUSAL_MIN_BYTES);
        let bytes_left = REFUSAL_MIN_BYTES
            .saturating_add(bytes_draw.checked_rem(span.saturating_add(1)).unwrap_or(0));
        let latest = self
            .created_at
            .saturating_add(self.config.handshake_timeout);
        let earliest = self.created_at.saturating_add(REFUSAL_MIN_TIME);
        let window = latest.saturating_since(earliest).as_micros().max(1);
        let offset = u64::from_be_bytes([0, 0, c, d, e, f, g, k])
            .checked_rem(window)
            .unwrap_or(0);
        let until = earliest
            .saturating_add(crate::time::Duration::from_micros(offset))
            .max(now);
        self.rx_len = 0;
        self.rx_target = 0;
        self.state = State::Refusing(Refusal { bytes_left, until });
    }
}

/// Bounds of a refusal's read-on (see `LinkSession::refuse`).
const REFUSAL_MIN_BYTES: usize = 256;
const REFUSAL_MAX_BYTES: usize = 16 * 1024;
const REFUSAL_MIN_TIME: crate::time::Duration = crate::time::Duration::from_secs(1);

/// Whether a cell belongs to the link itself rather than to a circuit: its
/// first four bytes (the circuit id the cell layer reads) are zero (link
/// spec §10). The link layer owns this one rule about the cells it carries.
pub fn is_link_level(cell: &Cell) -> bool {
    cell.first_chunk::<4>().is_some_and(|id| *id == [0; 4])
}

/// How many whole cells fit in a message of `message_len` bytes.
fn cells_fitting(message_len: usize) -> usize {
    message_len
        .saturating_sub(CELLS_HEADER_LEN.saturating_add(TAG_LEN))
        .checked_div(CELL_LEN)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_of_link_params_leaves_out_the_seed_and_binding() {
        let keypair = StaticKeypair::from_secret_bytes([1; 32]);
        let params = LinkParams {
            role: LinkRole::Initiator,
            expected_peer: None,
            static_keypair: &keypair,
            handshake_seed: [0x5a; 32],
            local_id: None,
            answer_unkeyed: true,
            unix_time: 0,
            hello: [0; HELLO_LEN],
            local_max_message_len: MIN_MAX_MESSAGE_LEN,
            config: LinkConfig::default(),
            channel_binding: Some([0x6b; CHANNEL_BINDING_LEN]),
        };
        let text = std::format!("{params:?}");
        // 0x5a and 0x6b in decimal, as a derived Debug prints arrays.
        assert!(!text.contains("90"), "{text}");
        assert!(!text.contains("107"), "{text}");
        assert!(text.contains("handshake_seed: \"<redacted>\""), "{text}");
        assert!(text.contains("role: Initiator"), "{text}");
    }
}
