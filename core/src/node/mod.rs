//! The top-level sans-IO state machine.
//!
//! A [`Node`] owns an identity, a CSPRNG and a fixed table of links. The
//! owner (an adapter, a simulator, a trace replayer) drives it:
//!
//! - inputs: [`open_link`](Node::open_link), [`handle_data`](Node::handle_data),
//!   [`handle_transport_closed`](Node::handle_transport_closed),
//!   [`dial_failed`](Node::dial_failed), [`handle_timeout`](Node::handle_timeout),
//!   and commands: [`send_message`](Node::send_message),
//!   [`reply`](Node::reply), [`close_link`](Node::close_link);
//! - outputs, pulled until empty: [`poll_transmit`](Node::poll_transmit),
//!   [`poll_event`](Node::poll_event), [`poll_message`](Node::poll_message),
//!   [`poll_dial`](Node::poll_dial), [`poll_timeout`](Node::poll_timeout).
//!
//! Every input takes the current time; the node never reads a clock. The
//! same seed and the same inputs give the same output bytes.

mod circuit_ctx;
mod circuits;
mod config;
mod dial;
mod discovery;
mod error;
mod event;
mod link_id;
mod messaging;
mod slot;
mod stats;
mod streams;

pub use config::NodeConfig;
pub use dial::{DialRequest, MAX_BOOTSTRAP, MAX_PENDING_DIALS};
pub use discovery::DescriptorRefusal;
pub use error::{LinkInputError, OpenLinkError, SendCellError, SendMessageError, StreamCellError};
pub use event::{Event, MessageFailure};
pub use link_id::LinkId;
pub use slot::LinkSlot;
pub use stats::NodeStats;

use heapless::Deque;
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

use crate::circuit::CircuitEngine;
use crate::discovery::{InsertOutcome, NodeTable};
use crate::identity::{Address, Identity, NodeId, Transport};
use crate::link::{
    Cell, CloseReason, LinkHello, LinkParams, LinkPhase, LinkRole, LinkSession, LinkStats,
    QueueCellError, RttEstimator, CHANNEL_BINDING_LEN, MAX_MESSAGE_LEN,
};
use crate::message::{MessagePool, MessageSlot};
use crate::noise::StaticKeypair;
use crate::time::Instant;

/// Bytes written by [`Node::poll_transmit`] for one link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// The link to write them to.
    pub link: LinkId,
    /// How many bytes at the start of the caller's buffer.
    pub len: usize,
}

/// A snapshot of one link, for status output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkInfo {
    /// The link.
    pub link: LinkId,
    /// Dialled or accepted.
    pub role: LinkRole,
    /// Where it is in its life.
    pub phase: LinkPhase,
    /// The authenticated peer, once known.
    pub peer: Option<NodeId>,
    /// Round-trip time from keepalives.
    pub rtt: RttEstimator,
    /// Traffic counters.
    pub stats: LinkStats,
    /// Cells waiting to be sent.
    pub queued_cells: usize,
    /// What the link runs over, if the adapter said
    /// ([`open_link_over`](Node::open_link_over)).
    pub transport: Option<Transport>,
}

/// A veil node.
///
/// - `S`: the link table storage, a fixed-length slice of [`LinkSlot`]s
///   (`[LinkSlot<RX, TXQ>; N]` on firmware, `Box<[LinkSlot<RX, TXQ>]>` on std).
/// - `MB`: the message pool storage, a fixed-length slice of
///   [`MessageSlot`]s of `MSG` bytes, shared by outgoing and incoming
///   messages (each direction may use half).
/// - `RX`: receive buffer bytes per link (the largest message accepted, plus 2).
/// - `TXQ`: cells that can wait to be sent per link.
/// - `EVENTS`: events that can wait to be polled.
/// - `PEERS`: nodes the node table can hold.
/// - `RELAYED`: circuits this node can be a hop of (destination included).
/// - `OWN`: circuits this node can build.
/// - `MSG`: the largest message, in bytes (at most 119 296).
pub struct Node<
    S,
    MB,
    const RX: usize,
    const TXQ: usize,
    const EVENTS: usize,
    const PEERS: usize,
    const RELAYED: usize,
    const OWN: usize,
    const MSG: usize,
> {
    identity: Identity,
    static_keypair: StaticKeypair,
    hello: [u8; crate::link::HELLO_LEN],
    max_message_len: usize,
    rng: ChaCha20Rng,
    config: NodeConfig,
    links: S,
    events: Deque<Event, EVENTS>,
    /// Some slot owes an event that did not fit; sweep when room appears.
    events_deferred: bool,
    /// Some link holds received cells that found no room; retry them when
    /// room may have appeared ([`retry_held_cells`](Self::retry_held_cells)).
    cells_held: bool,
    next_transmit_index: usize,
    now: Instant,
    discovery: discovery::Discovery<PEERS>,
    engine: CircuitEngine<RELAYED, OWN>,
    messages: MessagePool<MB, MSG>,
    dialer: dial::Dialer,
    stats: NodeStats,
    circuits: circuits::CircuitState,
    cell_hook: Option<CellHook>,
}

/// A function that sees (and may change) every cell a node takes from a
/// link, before the node handles it. See [`Node::set_cell_hook`].
pub type CellHook = fn(&NodeId, LinkId, &mut Cell);

impl<
        S,
        MB,
        const RX: usize,
        const TXQ: usize,
        const EVENTS: usize,
        const PEERS: usize,
        const RELAYED: usize,
        const OWN: usize,
        const MSG: usize,
    > core::fmt::Debug for Node<S, MB, RX, TXQ, EVENTS, PEERS, RELAYED, OWN, MSG>
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.identity.node_id())
            .field("queued_events", &self.events.len())
            .finish_non_exhaustive()
    }
}

impl<
        S,
        MB,
        const RX: usize,
        const TXQ: usize,
        const EVENTS: usize,
        const PEERS: usize,
        const RELAYED: usize,
        const OWN: usize,
        const MSG: usize,
    > Node<S, MB, RX, TXQ, EVENTS, PEERS, RELAYED, OWN, MSG>
where
    S: AsRef<[LinkSlot<RX, TXQ>]> + AsMut<[LinkSlot<RX, TXQ>]>,
    MB: AsRef<[MessageSlot<MSG>]> + AsMut<[MessageSlot<MSG>]>,
{
    /// Builds a node. `seed` seeds the node's CSPRNG (OS entropy on Linux, a
    /// hardware RNG on a chip); every random choice the node makes comes from
    /// it. `links` fixes how many links the node can hold, `messages` how
    /// many messages it can have in flight (half each way).
    pub fn new(
        config: NodeConfig,
        identity: Identity,
        seed: [u8; 32],
        links: S,
        messages: MB,
    ) -> Self {
        const {
            assert!(
                RX >= crate::link::MIN_TRANSMIT_BUFFER,
                "RX must hold at least one one-cell message and its prefix"
            );
            assert!(EVENTS >= 1, "the event queue needs room for one event");
        }
        let mut rng = ChaCha20Rng::from_seed(seed);
        let mut static_secret = [0u8; 32];
        rng.fill_bytes(&mut static_secret);
        let static_keypair = StaticKeypair::from_secret_bytes(static_secret);
        zeroize::Zeroize::zeroize(&mut static_secret);
        let discovery = discovery::Discovery::new(&identity, &config, &mut rng);
        // Cells are taken from a link one at a time, so the event queue
        // does not bound the link message size; the receive buffer does.
        let upper = RX
            .saturating_sub(crate::link::LENGTH_PREFIX_LEN)
            .min(MAX_MESSAGE_LEN);
        // `upper >= MIN_MAX_MESSAGE_LEN` by the compile-time checks above.
        let max_message_len = config
            .max_message_len
            .clamp(crate::link::MIN_MAX_MESSAGE_LEN, upper);
        let hello = LinkHello::new(
            &identity,
            &static_keypair.public(),
            u16::try_from(max_message_len).unwrap_or(u16::MAX),
        )
        .emit();
        Node {
            identity,
            static_keypair,
            hello,
            max_message_len,
            rng,
            config,
            links,
            events: Deque::new(),
            events_deferred: false,
            cells_held: false,
            next_transmit_index: 0,
            now: Instant::ZERO,
            discovery,
            engine: CircuitEngine::new(),
            messages: MessagePool::new(messages),
            dialer: dial::Dialer::new(),
            stats: NodeStats::default(),
            circuits: circuits::CircuitState::new(),
            cell_hook: None,
        }
    }

    /// Installs a hook called with every cell this node takes from a link,
    /// after link decryption and before anything else. It is for testers:
    /// to check what a relay can see (no plaintext), and to make a node
    /// misbehave (a relay that flips bits). `None` removes it.
    pub fn set_cell_hook(&mut self, hook: Option<CellHook>) {
        self.cell_hook = hook;
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.identity.node_id()
    }

    /// This node's identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The settings the node was built with.
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// How many link slots the node has.
    pub fn link_capacity(&self) -> usize {
        self.links.as_ref().len()
    }

    /// The largest message this node accepts (advertised to peers).
    pub fn max_message_len(&self) -> usize {
        self.max_message_len
    }

    /// Time never runs backwards inside the node, whatever the caller passes.
    fn advance(&mut self, now: Instant) -> Instant {
        if now > self.now {
            self.now = now;
        }
        self.now
    }

    /// The adapter has a new transport connection. `Initiator` if we dialled
    /// it (optionally knowing whom we expect), `Responder` if we accepted it.
    pub fn open_link(
        &mut self,
        now: Instant,
        role: LinkRole,
        expected_peer: Option<NodeId>,
    ) -> Result<LinkId, OpenLinkError> {
        self.open_link_inner(now, role, expected_peer, None, None)
    }

    /// As [`open_link`](Self::open_link), saying which transport the
    /// connection runs over: the node then remembers per peer what worked
    /// (transport selection, relay spec §10) and reports it in
    /// [`LinkInfo`].
    pub fn open_link_over(
        &mut self,
        now: Instant,
        role: LinkRole,
        expected_peer: Option<NodeId>,
        transport: Transport,
    ) -> Result<LinkId, OpenLinkError> {
        self.open_link_inner(now, role, expected_peer, Some(transport), None)
    }

    fn open_link_inner(
        &mut self,
        now: Instant,
        role: LinkRole,
        expected_peer: Option<NodeId>,
        transport: Option<Transport>,
        channel_binding: Option<[u8; CHANNEL_BINDING_LEN]>,
    ) -> Result<LinkId, OpenLinkError> {
        let now = self.advance(now);
        if role == LinkRole::Responder && self.half_open_inbound() >= self.config.max_half_open {
            self.evict_oldest_half_open();
        }
        let index = match self.free_slot() {
            Some(i) => i,
            None if role == LinkRole::Responder => {
                self.evict_oldest_half_open();
                self.free_slot().ok_or(OpenLinkError::TableFull)?
            }
            None => {
                crate::logging::log_warn!("link table full: outbound link refused");
                return Err(OpenLinkError::TableFull);
            }
        };
        let mut ephemeral = [0u8; 32];
        self.rng.fill_bytes(&mut ephemeral);
        let session = LinkSession::new(
            now,
            LinkParams {
                role,
                expected_peer,
                static_keypair: &self.static_keypair,
                ephemeral_secret: ephemeral,
                hello: self.hello,
                local_max_message_len: self.max_message_len,
                config: self.config.link,
                channel_binding,
            },
        );
        zeroize::Zeroize::zeroize(&mut ephemeral);
        let slot = self
            .links
            .as_mut()
            .get_mut(index)
            .ok_or(OpenLinkError::TableFull)?;
        slot.session = Some(session);
        slot.opened_at = now;
        slot.announced = false;
        slot.introduced = false;
        slot.transport = transport;
        let id = LinkId::new(u16::try_from(index).unwrap_or(u16::MAX), slot.generation);
        Ok(id)
    }

    fn free_slot(&self) -> Option<usize> {
        self.links
            .as_ref()
            .iter()
            .take(usize::from(u16::MAX))
            .position(|s| s.session.is_none())
    }

    fn half_open_inbound(&self) -> usize {
        self.links
            .as_ref()
            .iter()
            .filter(|s| is_half_open_inbound(s))
            .count()
    }

    fn evict_oldest_half_open(&mut self) {
        let oldest = self
            .links
            .as_ref()
            .iter()
            .enumerate()
            .filter(|(_, s)| is_half_open_inbound(s))
            .min_by_key(|(_, s)| s.opened_at)
            .map(|(i, _)| i);
        if let Some(i) = oldest {
            if let Some(session) = self
                .links
                .as_mut()
                .get_mut(i)
                .and_then(|s| s.session.as_mut())
            {
                session.close(CloseReason::Evicted);
            }
            self.sync_slot(i);
        }
    }

    fn slot_index(&self, link: LinkId) -> Option<usize> {
        let index = usize::from(link.index());
        let slot = self.links.as_ref().get(index)?;
        (slot.generation == link.generation() && slot.session.is_some()).then_some(index)
    }

    fn session_mut(&mut self, index: usize) -> Option<&mut LinkSession<RX, TXQ>> {
        self.links.as_mut().get_mut(index)?.session.as_mut()
    }

    /// Bytes arrived from the peer on `link`, in any chunking.
    ///
    /// Returns how many were consumed. Fewer than `data.len()` means the
    /// node cannot take more from this link right now — its event queue is
    /// full, or a link its circuits lead to has a full send queue. Poll
    /// events and transmits, then call again with the rest (an empty slice
    /// is fine). Not reading the rest is the backpressure: the peer's
    /// transport fills up and its circuits stall, and no queue grows. A
    /// protocol error closes the link (see `LinkClosed`) and consumes all.
    pub fn handle_data(
        &mut self,
        now: Instant,
        link: LinkId,
        data: &[u8],
    ) -> Result<usize, LinkInputError> {
        let now = self.advance(now);
        let index = self
            .slot_index(link)
            .ok_or(LinkInputError::UnknownLink(link))?;
        let mut consumed = 0usize;
        loop {
            if !self.take_cells(index, link) {
                self.cells_held = true;
                break;
            }
            let Some(session) = self.session_mut(index) else {
                break;
            };
            let rest = data.get(consumed..).unwrap_or(&[]);
            consumed = consumed.saturating_add(session.receive(now, rest));
            if session.pending_cells() == 0 {
                break;
            }
        }
        self.sync_slot(index);
        self.pump();
        Ok(consumed)
    }

    /// Handles the cells a link holds while there is room for what they
    /// may cause. Returns `false` if some are left for lack of room.
    fn take_cells(&mut self, index: usize, link: LinkId) -> bool {
        loop {
            let pending = self.session_mut(index).map_or(0, |s| s.pending_cells());
            if pending == 0 {
                return true;
            }
            if self.cell_room(link) == 0 {
                return false;
            }
            let Some(mut cell) = self.session_mut(index).and_then(|s| s.take_cell()) else {
                return true;
            };
            if let Some(hook) = self.cell_hook {
                hook(&self.identity.node_id(), link, &mut cell);
            }
            let streams = self.session_mut(index).is_some_and(|s| s.circuit_streams());
            if (streams && !streams::is_link_level(&cell)) || !self.on_cell(link, &cell) {
                // A circuit cell in the frames of a link with circuit
                // streams is out of place (link spec §10).
                if let Some(session) = self.session_mut(index) {
                    session.close(CloseReason::ProtocolViolation);
                }
                return true;
            }
        }
    }

    /// Whether one more cell from `link` can be handled now: each cell may
    /// raise one event, and may put cells on `link` itself and on every
    /// link its circuits lead to.
    fn cell_room(&mut self, link: LinkId) -> usize {
        let mut room = EVENTS.saturating_sub(self.events.len());
        if self.config.link_only {
            return room;
        }
        let links = self.links.as_mut();
        room = room.min(circuit_ctx::queue_room(links, link));
        self.engine.linked_links(link, |other| {
            room = room.min(circuit_ctx::queue_room(links, other));
        });
        room
    }

    /// One received cell. Returns `false` if it breaks the protocol and the
    /// link must close.
    fn on_cell(&mut self, link: LinkId, cell: &Cell) -> bool {
        let now = self.now;
        let kind = self
            .discovery
            .on_cell(&self.config, now, link, cell, &mut self.events);
        match kind {
            discovery::LinkCell::Handled => true,
            discovery::LinkCell::Violation => false,
            discovery::LinkCell::Circuit if self.config.link_only => {
                let _ = self
                    .events
                    .push_back(Event::CellReceived { link, cell: *cell });
                true
            }
            discovery::LinkCell::Circuit => self
                .with_engine(|engine, ctx, onion| engine.handle_cell(ctx, link, cell, onion))
                .is_ok(),
        }
    }

    /// The transport connection under `link` closed or failed.
    pub fn handle_transport_closed(
        &mut self,
        now: Instant,
        link: LinkId,
    ) -> Result<(), LinkInputError> {
        self.with_session(now, link, |session| session.transport_closed())
    }

    /// Applies `f` to a link's session and publishes what it changed.
    fn with_session(
        &mut self,
        now: Instant,
        link: LinkId,
        f: impl FnOnce(&mut LinkSession<RX, TXQ>),
    ) -> Result<(), LinkInputError> {
        self.advance(now);
        let index = self
            .slot_index(link)
            .ok_or(LinkInputError::UnknownLink(link))?;
        if let Some(session) = self.session_mut(index) {
            f(session);
        }
        self.sync_slot(index);
        Ok(())
    }

    /// Runs every timer that is due. Call at [`poll_timeout`](Self::poll_timeout).
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.advance(now);
        if !self.config.link_only {
            self.circuit_timeout();
        }
        let timers = self
            .discovery
            .on_timeout(&self.identity, &self.config, now, &mut self.rng);
        if timers.resigned {
            self.reintroduce();
        }
        if timers.gossip {
            self.gossip();
        }
        for index in 0..self.links.as_ref().len() {
            if let Some(session) = self.session_mut(index) {
                session.handle_timeout(now);
            }
            self.sync_slot(index);
        }
        self.pump();
    }

    /// Queues a cell on an established link.
    pub fn send_cell(
        &mut self,
        now: Instant,
        link: LinkId,
        cell: &Cell,
    ) -> Result<(), SendCellError> {
        self.advance(now);
        let index = self
            .slot_index(link)
            .ok_or(SendCellError::UnknownLink(link))?;
        let session = self
            .session_mut(index)
            .ok_or(SendCellError::UnknownLink(link))?;
        session.queue_cell(cell).map_err(|e| match e {
            QueueCellError::NotEstablished => SendCellError::NotEstablished(link),
            QueueCellError::QueueFull => SendCellError::QueueFull(link),
        })
    }

    /// Closes a link; an established link tells the peer why first.
    pub fn close_link(
        &mut self,
        now: Instant,
        link: LinkId,
        reason: CloseReason,
    ) -> Result<(), LinkInputError> {
        self.with_session(now, link, |session| session.close(reason))
    }

    /// Writes the next message of some link into `buf`, serving links in
    /// turn so one busy link cannot starve the others. `buf` should be at
    /// least [`MIN_TRANSMIT_BUFFER`](crate::link::MIN_TRANSMIT_BUFFER) bytes;
    /// a larger one lets many cells go out in one message.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        let now = self.advance(now);
        let count = self.links.as_ref().len();
        for step in 0..count {
            let index = self
                .next_transmit_index
                .wrapping_add(step)
                .checked_rem(count)?;
            let Some(session) = self.session_mut(index) else {
                continue;
            };
            if !session.wants_transmit(now) {
                continue;
            }
            let written = session.poll_transmit(now, buf);
            let generation = self.links.as_ref().get(index).map(|s| s.generation);
            self.sync_slot(index);
            if let (Some(len), Some(generation)) = (written, generation) {
                self.next_transmit_index = index.wrapping_add(1);
                self.refill_after_transmit();
                let link = LinkId::new(u16::try_from(index).unwrap_or(u16::MAX), generation);
                return Some(Transmit { link, len });
            }
        }
        None
    }

    /// Writes the next message of one link into `buf`. Use it when only some
    /// transports can take bytes right now.
    pub fn poll_link_transmit(
        &mut self,
        now: Instant,
        link: LinkId,
        buf: &mut [u8],
    ) -> Option<usize> {
        let now = self.advance(now);
        let index = self.slot_index(link)?;
        let written = self.session_mut(index)?.poll_transmit(now, buf);
        self.sync_slot(index);
        if written.is_some() {
            self.refill_after_transmit();
        }
        written
    }

    /// A transport took a message, so link queues have room again: offer
    /// waiting message fragments now, round-robin over circuits, rather than
    /// at the next input. Originated cells are kept few in each queue (relay
    /// spec §9), so without this a busy link would idle until a `CREDIT` or
    /// a timer arrived.
    fn refill_after_transmit(&mut self) {
        self.retry_held_cells();
        if !self.config.link_only {
            self.send_fragments();
        }
    }

    /// Handles cells that links hold decrypted but could not hand on for
    /// lack of room, now that room may have appeared (a transmit emptied a
    /// queue, an event was taken). Without this they would wait for the
    /// link's next bytes, which never come if the peer is itself waiting
    /// for this node to move: two relays with each other's cells in full
    /// queues, say, or a destination whose acknowledgements fill its queue.
    fn retry_held_cells(&mut self) {
        if !self.cells_held {
            return;
        }
        self.cells_held = false;
        let mut taken = false;
        for index in 0..self.links.as_ref().len() {
            let Some(slot) = self.links.as_ref().get(index) else {
                continue;
            };
            let pending = slot.session.as_ref().map_or(0, |s| s.pending_cells());
            if pending == 0 {
                continue;
            }
            let link = LinkId::new(u16::try_from(index).unwrap_or(u16::MAX), slot.generation);
            if !self.take_cells(index, link) {
                self.cells_held = true;
            }
            let after = self.session_mut(index).map_or(0, |s| s.pending_cells());
            taken |= after < pending;
            self.sync_slot(index);
        }
        if taken {
            self.pump();
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        let event = self.events.pop_front();
        if event.is_some() && self.events_deferred {
            // Room was made: publish link events that were waiting for it.
            self.events_deferred = false;
            for index in 0..self.links.as_ref().len() {
                self.sync_slot(index);
            }
        }
        if event.is_some() {
            self.retry_held_cells();
        }
        event
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let links = self
            .links
            .as_ref()
            .iter()
            .filter_map(|s| s.session.as_ref()?.next_deadline())
            .min();
        let discovery = self.discovery.deadline(&self.config);
        let circuits = if self.config.link_only {
            None
        } else {
            self.circuit_deadline()
        };
        [links, circuits]
            .into_iter()
            .flatten()
            .fold(discovery, Instant::min)
            .into()
    }

    /// Sends our (re-signed) descriptor again on every link, at the next sync.
    fn reintroduce(&mut self) {
        for index in 0..self.links.as_ref().len() {
            if let Some(slot) = self.links.as_mut().get_mut(index) {
                slot.introduced = false;
            }
            self.sync_slot(index);
        }
    }

    /// Sends a random sample of known descriptors over a random established link.
    fn gossip(&mut self) {
        for _ in 0..discovery::GOSSIP_FANOUT {
            self.gossip_once();
        }
    }

    /// Sends a random sample of known descriptors over one random
    /// established link.
    fn gossip_once(&mut self) {
        let established = self
            .links
            .as_ref()
            .iter()
            .filter(|s| {
                s.session
                    .as_ref()
                    .is_some_and(|x| x.phase() == LinkPhase::Established)
            })
            .count();
        if established == 0 || self.discovery.table().is_empty() {
            return;
        }
        let pick = crate::discovery::random_index(&mut self.rng, established).unwrap_or(0);
        let session = self
            .links
            .as_mut()
            .iter_mut()
            .filter_map(|s| s.session.as_mut())
            .filter(|x| x.phase() == LinkPhase::Established)
            .nth(pick);
        if let Some(session) = session {
            let cells = self.discovery.gossip_cells(&mut self.rng, session.peer());
            for cell in &cells {
                // A full queue means the link is busy; gossip can wait.
                if session.queue_cell(cell).is_err() {
                    break;
                }
            }
        }
    }

    /// This node's current signed descriptor.
    pub fn descriptor(&self) -> &[u8] {
        self.discovery.descriptor()
    }

    /// This node's onion key (X25519 public), for circuit-hop handshakes.
    pub fn onion_public_key(&self) -> [u8; 32] {
        self.discovery.onion().public()
    }

    /// The onion keys this node answers hop handshakes with, newest first:
    /// the current one and, after a rotation, the previous one.
    pub fn onion_keys(&self) -> heapless::Vec<&StaticKeypair, 2> {
        self.discovery.onion_keys()
    }

    /// The nodes this node knows.
    pub fn node_table(&self) -> &NodeTable<PEERS> {
        self.discovery.table()
    }

    /// Sets the addresses advertised in this node's descriptor (the adapter
    /// knows them once it has bound its listeners) and re-signs it.
    pub fn set_advertised_addresses(&mut self, now: Instant, addresses: &[Address]) {
        let now = self.advance(now);
        self.discovery.set_addresses(addresses);
        self.discovery.sign(&self.identity, &self.config, now);
        self.reintroduce();
    }

    /// Learns a descriptor from outside the network: a bootstrap list, or
    /// the node table persisted before a restart.
    pub fn learn_descriptor(
        &mut self,
        now: Instant,
        descriptor: &[u8],
    ) -> Result<InsertOutcome, DescriptorRefusal> {
        let now = self.advance(now);
        self.discovery
            .learn(&self.config, now, descriptor)
            .map(|(outcome, ..)| outcome)
    }

    /// Records that `peer` failed (an unreachable address, a failed
    /// circuit); failing nodes are left out of paths and evicted first.
    pub fn record_peer_failure(&mut self, peer: &NodeId) {
        self.discovery.table_mut().record_failure(peer);
    }

    /// A snapshot of one link.
    pub fn link_info(&self, link: LinkId) -> Option<LinkInfo> {
        let index = self.slot_index(link)?;
        let slot = self.links.as_ref().get(index)?;
        Some(info(link, slot.session.as_ref()?, slot.transport))
    }

    /// Snapshots of every open link.
    pub fn links(&self) -> impl Iterator<Item = LinkInfo> + '_ {
        self.links
            .as_ref()
            .iter()
            .enumerate()
            .filter_map(|(index, slot)| {
                let session = slot.session.as_ref()?;
                let link = LinkId::new(u16::try_from(index).ok()?, slot.generation);
                Some(info(link, session, slot.transport))
            })
    }

    /// Queues the link events a slot owes, if the event queue has room, and
    /// frees a closed slot once its `LinkClosed` is queued. Events are never
    /// dropped: a closed link keeps its slot until its event fits.
    fn sync_slot(&mut self, index: usize) {
        let mut up = None;
        let gone = self.sync_slot_events(index, &mut up);
        if self.config.link_only {
            return;
        }
        if let Some(peer) = up {
            if let Some(transport) = self.links.as_ref().get(index).and_then(|s| s.transport) {
                self.discovery
                    .table_mut()
                    .record_transport(&peer, transport);
            }
            self.on_link_up(peer);
        }
        if let Some(link) = gone {
            self.on_link_gone(link);
        }
    }

    /// Whether the link in slot `index`, which we dialled and which just
    /// came up, duplicates an announced link we dialled to the same peer.
    fn is_duplicate(&self, index: usize) -> bool {
        let links = self.links.as_ref();
        let Some(peer) = links
            .get(index)
            .and_then(|s| s.session.as_ref())
            .filter(|s| s.was_established() && s.role() == LinkRole::Initiator)
            .and_then(|s| s.peer())
        else {
            return false;
        };
        links.iter().enumerate().any(|(i, s)| {
            i != index
                && s.announced
                && s.session.as_ref().is_some_and(|x| {
                    x.role() == LinkRole::Initiator
                        && x.phase() == LinkPhase::Established
                        && x.peer() == Some(peer)
                })
        })
    }

    /// Publishes a slot's link events; returns the link if its slot was
    /// freed, and sets `up` to the peer of a link that just came up.
    fn sync_slot_events(&mut self, index: usize, up: &mut Option<NodeId>) -> Option<LinkId> {
        let slot = self.links.as_mut().get_mut(index)?;
        let session = slot.session.as_ref()?;
        let link = LinkId::new(u16::try_from(index).unwrap_or(u16::MAX), slot.generation);
        if !slot.introduced && session.phase() == LinkPhase::Established {
            if let (Some(cell), Some(session)) =
                (self.discovery.own_descriptor_cell(), slot.session.as_mut())
            {
                // A fresh link's queue is empty, so this fits.
                let _ = session.queue_cell(&cell);
                if !slot.announced {
                    // A new peer also gets a sample of what we know, so a
                    // node that just joined through a bootstrap node can
                    // build paths without waiting for gossip rounds.
                    for cell in &self.discovery.gossip_cells(&mut self.rng, session.peer()) {
                        if session.queue_cell(cell).is_err() {
                            break;
                        }
                    }
                }
            }
            slot.introduced = true;
        }
        let own_id = self.identity.node_id();
        let duplicate = !slot.announced && self.is_duplicate(index);
        let slot = self.links.as_mut().get_mut(index)?;
        if duplicate {
            // A transport race: another link we dialled to this peer came
            // up first. Keep that one.
            if let Some(session) = slot.session.as_mut() {
                session.close(CloseReason::Duplicate);
            }
            slot.announced = true;
        }
        if !slot.announced
            && slot
                .session
                .as_ref()
                .is_some_and(|s| s.was_established() && s.peer() == Some(own_id))
        {
            // A link to ourselves (our own address in a bootstrap list, or
            // an address that leads back here) is useless and would loop
            // circuits: close it and never announce it.
            if let Some(session) = slot.session.as_mut() {
                session.close(CloseReason::IdentityMismatch);
            }
            slot.announced = true;
        }
        let session = slot.session.as_ref()?;
        if !slot.announced && session.was_established() {
            if let Some(peer) = session.peer() {
                crate::logging::log_info!("{} established with {}", link, peer);
                let event = Event::LinkEstablished {
                    link,
                    peer,
                    role: session.role(),
                };
                if self.events.push_back(event).is_err() {
                    self.events_deferred = true;
                    return None;
                }
                *up = Some(peer);
            }
            slot.announced = true;
        }
        if let Some((reason, by)) = session.closed() {
            let event = Event::LinkClosed {
                link,
                peer: session.peer(),
                reason,
                by,
            };
            if self.events.push_back(event).is_err() {
                self.events_deferred = true;
            } else {
                if reason.is_peer_fault() {
                    crate::logging::log_warn!("{} closed: {}", link, reason);
                } else {
                    crate::logging::log_info!("{} closed: {}", link, reason);
                }
                self.stats.links_closed = self.stats.links_closed.saturating_add(1);
                self.stats.closed_link_traffic =
                    self.stats.closed_link_traffic.plus(session.stats());
                slot.session = None;
                slot.announced = false;
                slot.introduced = false;
                slot.generation = slot.generation.wrapping_add(1);
                return Some(link);
            }
        }
        None
    }
}

fn is_half_open_inbound<const RX: usize, const TXQ: usize>(slot: &LinkSlot<RX, TXQ>) -> bool {
    slot.session
        .as_ref()
        .is_some_and(|s| s.role() == LinkRole::Responder && s.phase() == LinkPhase::Handshaking)
}

fn info<const RX: usize, const TXQ: usize>(
    link: LinkId,
    session: &LinkSession<RX, TXQ>,
    transport: Option<Transport>,
) -> LinkInfo {
    LinkInfo {
        link,
        role: session.role(),
        phase: session.phase(),
        peer: session.peer(),
        rtt: *session.rtt(),
        stats: *session.stats(),
        queued_cells: session.queued_cells(),
        transport,
    }
}
