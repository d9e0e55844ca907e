//! The circuit engine: builds circuits hop by hop, relays cells through
//! the circuits this node is a hop of, and tears circuits down in both
//! directions. Sans-IO: it sees cells and a [`CircuitContext`] that knows the
//! links; the node owns it and routes every non-link-level cell to it.

use core::fmt;

use heapless::Vec;
use rand_core::Rng;
use zeroize::Zeroizing;

use crate::capacity::VecStore;
use crate::cell::{
    CellCommand, CellRepr, CircuitId, DestroyReason, ExtendAddresses, RelayCommand, RelayMessage,
    RELAY_DATA_LEN,
};
use crate::cgo::BODY_LEN;
use crate::discovery::{NetworkPrefix, Path};
use crate::identity::{Address, NodeId};
use crate::link::{Cell, LinkId, LinkRole};
use crate::noise::StaticKeypair;
use crate::time::{Duration, Instant};

use super::client_table::{CircuitHandle, ClientCircuit, ClientTable};
use super::relay_table::{CircuitEnd, RelayCircuit, RelayDirection, RelayTable};
use super::{Flow, HopHandshakeClient, Liveness};

mod cells;
mod rendezvous;

pub use rendezvous::{
    RendezvousTables, MAX_INTRO_ROLES, MAX_RENDEZVOUS_ROLES, MAX_SERVICE_HOPS, STATUS_OK,
    STATUS_REFUSED,
};

/// `EXTEND`s that may wait for a dial at once: half of the node's dial
/// slots (the rest stay free for its own circuits), and two per link they
/// came over, so one peer cannot hold the dialler.
pub const MAX_PARKED_EXTENDS: usize = 4;
/// `EXTEND`s from one link that may wait for a dial at once.
pub const MAX_PARKED_EXTENDS_PER_LINK: usize = 2;

/// What the engine needs from the node around it.
pub trait CircuitContext {
    /// The established link to `peer`, and our role on it: the link an
    /// `EXTEND` to `peer` continues over.
    fn link_to(&self, peer: &NodeId) -> Option<(LinkId, LinkRole)>;
    /// The established link to `peer` that a circuit this node opens with
    /// `peer` as its first hop starts over. The node answers with its
    /// anonymous link (relay spec §11); by default, [`link_to`](Self::link_to).
    fn first_hop_link(&self, peer: &NodeId) -> Option<(LinkId, LinkRole)> {
        self.link_to(peer)
    }
    /// Whether the peer of `link` may create circuits through us; a
    /// `CREATE` over a link that may not is answered `DESTROY(Protocol)`.
    fn accepts_create(&self, _link: LinkId) -> bool {
        true
    }
    /// Our role on `link`, if it is established.
    fn role_on(&self, link: LinkId) -> Option<LinkRole>;
    /// Queues `cell` on `link`; `false` if it could not be queued.
    fn send(&mut self, link: LinkId, cell: &Cell) -> bool;
    /// The node's CSPRNG.
    fn rng(&mut self) -> &mut dyn Rng;
    /// An ephemeral key pair for one hop handshake: drawn ahead of need if
    /// the node keeps some ([`ReadyEphemerals`](crate::circuit::ReadyEphemerals)),
    /// otherwise drawn now from [`rng`](Self::rng).
    fn hop_ephemeral(&mut self) -> StaticKeypair {
        StaticKeypair::generate(self.rng())
    }
    /// Reports something that happened.
    fn event(&mut self, event: CircuitEvent);
    /// The current time.
    fn now(&self) -> Instant;
    /// The network the peer of `link` is in, as far as the node knows
    /// (`None`: unknown, and all unknown ones count as one network).
    fn network_of(&self, link: LinkId) -> Option<NetworkPrefix>;
    /// Takes one `CREATE` from `link`'s rate budget; `false` if it is spent.
    fn take_create_token(&mut self, link: LinkId) -> bool;
    /// Asks the node to connect to `peer` for an `EXTEND` that gave
    /// `addresses` for it; `false` if it will not (no address it may dial
    /// on a stranger's behalf, no room). The engine is told how it went
    /// through [`CircuitEngine::link_up`] or
    /// [`CircuitEngine::peer_unreachable`].
    fn dial_for_extend(&mut self, peer: &NodeId, addresses: &[Address]) -> bool;
    /// Where this node knows `peer` to listen: the addresses its `EXTEND`
    /// to `peer` carries, so that a relay that does not know `peer` can
    /// still reach it. By default none.
    fn extend_addresses(&self, _peer: &NodeId) -> ExtendAddresses {
        ExtendAddresses::new()
    }
    /// This node's id: what a service's `ESTABLISH_INTRO` is signed for
    /// (relay spec §13.2).
    fn own_id(&self) -> NodeId;
}

/// The event for client circuit `c`, gone for `reason`.
fn closed_event(c: ClientCircuit, reason: DestroyReason) -> CircuitEvent {
    CircuitEvent::Closed {
        circuit: c.handle,
        failed_hop: c.hop_being_added(),
        path: c.path,
        reason,
    }
}

/// Data carried by one relay cell.
pub type RelayData = Vec<u8, RELAY_DATA_LEN>;

/// What the engine reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CircuitEvent {
    /// A circuit this node opened has every hop built.
    Ready {
        /// The circuit.
        circuit: CircuitHandle,
        /// Its hops, destination last: each of them did its part.
        path: Path,
        /// From `CREATE` to the last hop's answer.
        built_in: Duration,
    },
    /// A circuit this node opened is gone.
    Closed {
        /// The circuit.
        circuit: CircuitHandle,
        /// The hops it had, destination last.
        path: Path,
        /// Why. Any hop can make up a `DESTROY` reason, so the reason alone
        /// never blames a relay.
        reason: DestroyReason,
        /// The hop being added when a circuit still being built failed
        /// ([`ClientCircuit::hop_being_added`]); `None` once it was ready.
        failed_hop: Option<NodeId>,
    },
    /// A `DATA`, `ACK` or `CREDIT` relay message arrived from hop `hop`
    /// (0-based) of a circuit this node opened.
    Data {
        /// The circuit.
        circuit: CircuitHandle,
        /// Which hop sent it.
        hop: usize,
        /// `Data`, `Ack` or `Credit`.
        command: RelayCommand,
        /// The data.
        data: RelayData,
    },
    /// A rendezvous circuit reached its rendezvous point: the node sends
    /// `ESTABLISH_RENDEZVOUS` and then its introduction.
    AtRendezvousPoint {
        /// The circuit.
        circuit: CircuitHandle,
    },
    /// A `DATA`, `ACK` or `CREDIT` relay message for this node arrived over
    /// a circuit it is a hop of. Answer with [`CircuitEngine::reply`] to
    /// `at`; the sender stays unknown.
    Delivered {
        /// The circuit, as seen from this hop.
        at: CircuitEnd,
        /// `Data`, `Ack` or `Credit`.
        command: RelayCommand,
        /// The data.
        data: RelayData,
    },
}

/// Why a circuit could not be opened or used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CircuitError {
    /// No established link to the first hop; connect to it first.
    NoLinkToFirstHop,
    /// One onion key per hop is needed.
    OnionKeysMismatch,
    /// The table of own circuits, or the circuit-id space, is full.
    Full,
    /// No such circuit (closed, or never opened).
    UnknownCircuit,
    /// The circuit is still being built.
    NotReady,
    /// The data is longer than one cell carries.
    TooLong,
    /// The link would not take the cell (its queue is full); retry later.
    LinkBusy,
}

impl fmt::Display for CircuitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CircuitError::NoLinkToFirstHop => "no link to the first hop; connect to it first",
            CircuitError::OnionKeysMismatch => "give exactly one onion key per hop",
            CircuitError::Full => "no room for another circuit",
            CircuitError::UnknownCircuit => "no such circuit; it closed or never existed",
            CircuitError::NotReady => "the circuit is still being built; wait for Ready",
            CircuitError::TooLong => "data longer than one relay cell",
            CircuitError::LinkBusy => "the link's queue is full; poll transmits and retry",
        })
    }
}

impl core::error::Error for CircuitError {}

/// How long circuits may take or sit idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircuitTimeouts {
    /// A circuit this node opens that is not ready after this long is
    /// given up.
    pub build: Duration,
    /// An `EXTEND` still waiting for a link after this long is refused.
    pub extend_wait: Duration,
    /// A circuit this node relays (or ends) that carried no cell either way
    /// for this long is destroyed: a hostile client cannot hold relay slots
    /// with circuits it never uses.
    pub relay_idle: Duration,
}

/// How many relayed circuits one source may hold in a table of `capacity`:
/// one link an eighth, one network prefix a quarter (at least 2 each). A
/// `CREATE` over quota is refused with `DESTROY(ResourceLimit)` before any
/// public-key work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayQuotas {
    /// Circuits whose client side is one link.
    pub per_link: usize,
    /// Circuits whose client side is a link from one network prefix.
    pub per_network: usize,
}

impl RelayQuotas {
    /// The quotas of a relay table holding `capacity` circuits.
    pub const fn for_capacity(capacity: usize) -> Self {
        let per_link = capacity / 8;
        let per_network = capacity / 4;
        RelayQuotas {
            per_link: if per_link < 2 { 2 } else { per_link },
            per_network: if per_network < 2 { 2 } else { per_network },
        }
    }
}

/// A cell the engine refuses outright: the link must close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CircuitProtocolViolation;

/// The circuits of one node: those in `R` as a hop, those in `O` as a
/// client.
#[derive(Debug)]
#[cfg_attr(feature = "testing", derive(Clone))]
pub struct CircuitEngine<R, O> {
    relays: RelayTable<R>,
    clients: ClientTable<O>,
    rendezvous: RendezvousTables,
}

fn cell(end: CircuitEnd, command: CellCommand, body: [u8; BODY_LEN]) -> Cell {
    CellRepr {
        circuit_id: end.1,
        command,
        body,
    }
    .emit()
}

fn destroy_cell(end: CircuitEnd, reason: DestroyReason) -> Cell {
    let mut body = [0u8; BODY_LEN];
    if let Some(first) = body.first_mut() {
        *first = reason.code();
    }
    cell(end, CellCommand::Destroy, body)
}

fn other_role(role: LinkRole) -> LinkRole {
    match role {
        LinkRole::Initiator => LinkRole::Responder,
        LinkRole::Responder => LinkRole::Initiator,
    }
}

fn relay_payload(command: RelayCommand, data: &[u8]) -> Option<[u8; crate::cgo::PAYLOAD_LEN]> {
    RelayMessage { command, data }.emit()
}

impl<R: VecStore<RelayCircuit>, O: VecStore<ClientCircuit>> Default for CircuitEngine<R, O> {
    fn default() -> Self {
        Self::new()
    }
}

impl<R: VecStore<RelayCircuit>, O: VecStore<ClientCircuit>> CircuitEngine<R, O> {
    /// No circuits.
    pub fn new() -> Self {
        CircuitEngine {
            relays: RelayTable::new(),
            clients: ClientTable::new(),
            rendezvous: RendezvousTables::default(),
        }
    }

    /// Circuits this node relays.
    pub fn relayed(&self) -> usize {
        self.relays.len()
    }

    /// The quotas `CREATE`s are held to.
    pub fn quotas(&self) -> RelayQuotas {
        RelayQuotas::for_capacity(R::CAPACITY)
    }

    /// Whether a `CREATE` from `link` fits the table and the quotas of its
    /// link and its network; the reason to refuse it if not. Cheap: counts
    /// and a token, no public-key work.
    fn admit_create(
        &self,
        ctx: &mut impl CircuitContext,
        link: LinkId,
    ) -> Result<(), DestroyReason> {
        if !ctx.accepts_create(link) {
            return Err(DestroyReason::Protocol);
        }
        let quotas = self.quotas();
        if self.relays.is_full() || self.relays.from_link(link) >= quotas.per_link {
            return Err(DestroyReason::ResourceLimit);
        }
        let network = ctx.network_of(link);
        let from_network = self
            .relays
            .iter()
            .filter(|c| ctx.network_of(c.inbound.0) == network)
            .count();
        if from_network >= quotas.per_network || !ctx.take_create_token(link) {
            return Err(DestroyReason::ResourceLimit);
        }
        Ok(())
    }

    /// Circuits this node opened.
    pub fn own(&self) -> usize {
        self.clients.len()
    }

    fn in_use(&self, end: CircuitEnd) -> bool {
        self.relays.uses(end) || self.clients.uses(end)
    }

    fn allocate(
        &self,
        ctx: &mut impl CircuitContext,
        link: LinkId,
        role: LinkRole,
    ) -> Option<CircuitId> {
        let mut rng = ctx.rng();
        CircuitId::allocate(role, &mut rng, |id| self.in_use((link, id)))
    }

    /// A fresh hop handshake ephemeral secret, wiped when dropped.
    fn ephemeral(ctx: &mut impl CircuitContext) -> Zeroizing<[u8; 32]> {
        let mut e = Zeroizing::new([0u8; 32]);
        ctx.rng().fill_bytes(e.as_mut_slice());
        e
    }

    /// Opens a circuit along `path`, with `onion_keys[i]` the onion key of
    /// `path.hops()[i]`. `Ready` (or `Closed`) follows as an event.
    pub fn open(
        &mut self,
        ctx: &mut impl CircuitContext,
        path: Path,
        onion_keys: &[[u8; 32]],
    ) -> Result<CircuitHandle, CircuitError> {
        self.open_with(ctx, path, onion_keys)
    }

    /// Opens a circuit to a rendezvous service: `path` ends with the
    /// rendezvous point and then the service's id, `onion_keys` with the
    /// rendezvous point's key and the service's onion key. The circuit is
    /// built to the rendezvous point, then
    /// [`CircuitEvent::AtRendezvousPoint`] tells the node to introduce
    /// itself ([`start_introduction`](Self::start_introduction)); `Ready`
    /// follows the service's `RENDEZVOUS2`.
    pub fn open_rendezvous(
        &mut self,
        ctx: &mut impl CircuitContext,
        path: Path,
        onion_keys: &[[u8; 32]],
    ) -> Result<CircuitHandle, CircuitError> {
        if path.hops().len() < 2 {
            return Err(CircuitError::OnionKeysMismatch);
        }
        let clients = &self.clients;
        if !self
            .rendezvous
            .room_for_service_circuit(|c| clients.iter().any(|o| o.handle == c))
        {
            return Err(CircuitError::Full);
        }
        let circuit = self.open_with(ctx, path, onion_keys)?;
        self.rendezvous.add_service_circuit(circuit);
        Ok(circuit)
    }

    fn open_with(
        &mut self,
        ctx: &mut impl CircuitContext,
        path: Path,
        onion_keys: &[[u8; 32]],
    ) -> Result<CircuitHandle, CircuitError> {
        if onion_keys.len() != path.hops().len() {
            return Err(CircuitError::OnionKeysMismatch);
        }
        if self.clients.is_full() {
            return Err(CircuitError::Full);
        }
        let first = path.hops().first().ok_or(CircuitError::OnionKeysMismatch)?;
        let (link, role) = ctx
            .first_hop_link(first)
            .ok_or(CircuitError::NoLinkToFirstHop)?;
        let id = self.allocate(ctx, link, role).ok_or(CircuitError::Full)?;
        let onion = onion_keys.first().ok_or(CircuitError::OnionKeysMismatch)?;
        let (pending, create) = HopHandshakeClient::start_with(onion, ctx.hop_ephemeral())
            .map_err(|_| CircuitError::OnionKeysMismatch)?;
        let end = (link, id);
        if !ctx.send(link, &cell(end, CellCommand::Create, create)) {
            return Err(CircuitError::LinkBusy);
        }
        let handle = self.clients.next_handle();
        let circuit = ClientCircuit {
            handle,
            end,
            path,
            onion_keys: Vec::from_slice(onion_keys).map_err(|_| CircuitError::OnionKeysMismatch)?,
            layers: crate::cgo::ClientLayers::new(),
            pending: Some(pending),
            opened_at: ctx.now(),
            step_sent_at: ctx.now(),
            flow: Flow::new(),
            liveness: Liveness::new(),
            early_left: crate::cell::MAX_RELAY_EARLY,
        };
        self.clients.insert(circuit)?;
        Ok(handle)
    }

    /// Sends `data` to hop `hop` (0-based; the destination is the last) of
    /// a ready circuit.
    pub fn send(
        &mut self,
        ctx: &mut impl CircuitContext,
        circuit: CircuitHandle,
        hop: usize,
        data: &[u8],
    ) -> Result<(), CircuitError> {
        self.send_relay(ctx, circuit, hop, RelayCommand::Data, data)
    }

    /// Sends a relay message to hop `hop` of a ready circuit.
    pub fn send_relay(
        &mut self,
        ctx: &mut impl CircuitContext,
        circuit: CircuitHandle,
        hop: usize,
        command: RelayCommand,
        data: &[u8],
    ) -> Result<(), CircuitError> {
        let c = self
            .clients
            .by_handle(circuit)
            .ok_or(CircuitError::UnknownCircuit)?;
        // A built hop may be addressed before the circuit is ready: a
        // rendezvous circuit talks to its rendezvous point first.
        if hop >= c.layers.len() {
            return Err(CircuitError::NotReady);
        }
        let payload = relay_payload(command, data).ok_or(CircuitError::TooLong)?;
        // Past a rendezvous point the cell goes on down the service's
        // circuit, where only `RELAY` is joined (§13.4).
        let joined =
            self.rendezvous.to_service(circuit) && hop.saturating_add(1) >= c.path.hops().len();
        let command = if c.early_left > 0 && !joined {
            CellCommand::RelayEarly
        } else {
            CellCommand::Relay
        };
        let body = c
            .layers
            .originate_forward(hop, command.code(), &payload)
            .map_err(|_| CircuitError::UnknownCircuit)?;
        let end = c.end;
        if ctx.send(end.0, &cell(end, command, body.to_bytes())) {
            if command == CellCommand::RelayEarly {
                c.early_left = c.early_left.saturating_sub(1);
            }
            Ok(())
        } else {
            Err(CircuitError::LinkBusy)
        }
    }

    /// Answers over a circuit this node is a hop of (see `Delivered`).
    pub fn reply(
        &mut self,
        ctx: &mut impl CircuitContext,
        at: CircuitEnd,
        data: &[u8],
    ) -> Result<(), CircuitError> {
        self.reply_relay(ctx, at, RelayCommand::Data, data)
    }

    /// Sends a relay message back towards the client of a circuit this
    /// node is a hop of.
    pub fn reply_relay(
        &mut self,
        ctx: &mut impl CircuitContext,
        at: CircuitEnd,
        command: RelayCommand,
        data: &[u8],
    ) -> Result<(), CircuitError> {
        #[cfg(feature = "rendezvous")]
        if self.rendezvous.serves(at) {
            return self.reply_from_service_hop(ctx, at, command, data);
        }
        let payload = relay_payload(command, data).ok_or(CircuitError::TooLong)?;
        let (circuit, direction) = self.relays.find(at).ok_or(CircuitError::UnknownCircuit)?;
        if direction != RelayDirection::Forward {
            return Err(CircuitError::UnknownCircuit);
        }
        let body = circuit
            .layer
            .originate_backward(CellCommand::Relay.code(), &payload);
        if ctx.send(at.0, &cell(at, CellCommand::Relay, body.to_bytes())) {
            Ok(())
        } else {
            Err(CircuitError::LinkBusy)
        }
    }

    /// A circuit this node opened.
    pub fn client(&self, circuit: CircuitHandle) -> Option<&ClientCircuit> {
        self.clients.iter().find(|c| c.handle == circuit)
    }

    /// Every circuit this node opened.
    pub fn clients(&self) -> impl Iterator<Item = &ClientCircuit> {
        self.clients.iter()
    }

    /// Flow control of a circuit this node opened.
    pub fn client_flow(&mut self, circuit: CircuitHandle) -> Option<&mut Flow> {
        self.clients.by_handle(circuit).map(|c| &mut c.flow)
    }

    /// Flow control of a circuit this node is the last hop of.
    pub fn relay_flow(&mut self, at: CircuitEnd) -> Option<&mut Flow> {
        #[cfg(feature = "rendezvous")]
        if self.rendezvous.serves(at) {
            return self.rendezvous.service_flow(at);
        }
        match self.relays.find(at) {
            Some((c, RelayDirection::Forward)) if c.outbound.is_none() && !c.extending => {
                Some(&mut c.flow)
            }
            _ => None,
        }
    }

    /// Circuits this node is the last hop of, and their flow control.
    pub fn ends_mut(&mut self) -> impl Iterator<Item = (CircuitEnd, &mut Flow)> {
        let ends = self
            .relays
            .iter_mut()
            .filter(|c| c.outbound.is_none() && !c.extending)
            .map(|c| (c.inbound, &mut c.flow));
        #[cfg(feature = "rendezvous")]
        let ends = ends.chain(self.rendezvous.service_flows());
        ends
    }

    /// Calls `f` with every link that a cell arriving on `link` may be
    /// relayed to: the far side of each relayed circuit with an end on it.
    pub fn linked_links(&self, link: LinkId, mut f: impl FnMut(LinkId)) {
        for c in self.relays.iter() {
            match c.outbound {
                Some(out) if c.inbound.0 == link => f(out.0),
                Some(out) if out.0 == link => f(c.inbound.0),
                _ => {}
            }
        }
    }

    /// The link a cell arriving on `end` is relayed to, if `end` belongs to
    /// a relayed circuit with both ends open.
    pub fn far_link(&self, end: CircuitEnd) -> Option<LinkId> {
        self.relays.iter().find_map(|c| match c.outbound {
            Some(out) if c.inbound == end => Some(out.0),
            Some(out) if out == end => Some(c.inbound.0),
            _ => None,
        })
    }

    /// Whether a relay cell arriving on `end` may be passed on to another
    /// link: `end` belongs to a relayed circuit with both ends open, or
    /// (at a rendezvous point) to one joined to another circuit.
    pub fn passes_on(&self, end: CircuitEnd) -> bool {
        #[cfg(feature = "rendezvous")]
        if self.rendezvous.partner(end).is_some() {
            return true;
        }
        self.far_link(end).is_some()
    }

    /// A link to `peer` came up: `EXTEND`s waiting for it go on.
    pub fn link_up(&mut self, ctx: &mut impl CircuitContext, peer: &NodeId) {
        loop {
            let next = self.relays.iter_mut().find_map(|c| {
                let waiting = c.awaiting_link.as_ref().filter(|w| w.target == *peer)?;
                let message = waiting.message;
                c.awaiting_link = None;
                c.extending = false;
                Some((c.inbound, message))
            });
            let Some((inbound, message)) = next else {
                break;
            };
            self.send_create(ctx, inbound, *peer, &message);
        }
    }

    /// `peer` could not be reached: `EXTEND`s waiting for it fail.
    pub fn peer_unreachable(&mut self, ctx: &mut impl CircuitContext, peer: &NodeId) {
        loop {
            let next = self
                .relays
                .iter()
                .find(|c| c.awaiting_link.as_ref().is_some_and(|w| w.target == *peer))
                .map(|c| c.inbound);
            let Some(inbound) = next else {
                break;
            };
            self.destroy_relay(ctx, inbound, DestroyReason::ExtendFailed);
        }
    }

    /// Fails circuits still being built, and `EXTEND`s still waiting for a
    /// link, that started `timeouts.build` or more ago, and destroys relayed
    /// circuits idle for `timeouts.relay_idle`.
    pub fn handle_timeout(&mut self, ctx: &mut impl CircuitContext, timeouts: CircuitTimeouts) {
        let now = ctx.now();
        let timeout = timeouts.build;
        loop {
            let next = self
                .clients
                .iter()
                .find(|c| {
                    // A rendezvous takes three builds: the sender's, its
                    // introduction circuit's and the service's.
                    let allowed = if self.rendezvous.to_service(c.handle) {
                        timeout.saturating_mul(3)
                    } else {
                        timeout
                    };
                    !c.is_ready() && now.saturating_since(c.opened_at) >= allowed
                })
                .map(|c| c.end);
            let Some(end) = next else {
                break;
            };
            self.fail_client(ctx, end, DestroyReason::Timeout);
        }
        let extend_wait = timeouts.extend_wait;
        loop {
            let next = self
                .relays
                .iter()
                .find(|c| {
                    c.awaiting_link
                        .as_ref()
                        .is_some_and(|w| now.saturating_since(w.since) >= extend_wait)
                })
                .map(|c| c.inbound);
            let Some(inbound) = next else {
                break;
            };
            self.destroy_relay(ctx, inbound, DestroyReason::ExtendFailed);
        }
        loop {
            let idle = self
                .relays
                .iter()
                .find(|c| now.saturating_since(c.last_active) >= timeouts.relay_idle)
                .map(|c| c.inbound);
            let Some(inbound) = idle else {
                break;
            };
            self.destroy_relay(ctx, inbound, DestroyReason::Idle);
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) next has work.
    pub fn next_deadline(&self, timeouts: CircuitTimeouts) -> Option<Instant> {
        let timeout = timeouts.build;
        let building = self.clients.iter().filter(|c| !c.is_ready()).map(|c| {
            let allowed = if self.rendezvous.to_service(c.handle) {
                timeout.saturating_mul(3)
            } else {
                timeout
            };
            c.opened_at.saturating_add(allowed)
        });
        let waiting = self
            .relays
            .iter()
            .filter_map(|c| c.awaiting_link.as_ref())
            .map(|w| w.since.saturating_add(timeouts.extend_wait));
        let idle = self
            .relays
            .iter()
            .map(|c| c.last_active.saturating_add(timeouts.relay_idle));
        building.chain(waiting).chain(idle).min()
    }

    /// Destroys the relayed circuit `end` belongs to, both ways, with
    /// `reason`; `false` if no relayed circuit has that end.
    pub fn destroy_relayed(
        &mut self,
        ctx: &mut impl CircuitContext,
        end: CircuitEnd,
        reason: DestroyReason,
    ) -> bool {
        let Some(inbound) = self.relays.find(end).map(|(c, _)| c.inbound) else {
            return false;
        };
        self.destroy_relay(ctx, inbound, reason);
        true
    }

    /// Closes a circuit this node opened.
    pub fn close(
        &mut self,
        ctx: &mut impl CircuitContext,
        circuit: CircuitHandle,
    ) -> Result<(), CircuitError> {
        self.end_own(ctx, circuit, DestroyReason::Requested)
    }

    /// Gives up on an own circuit that stopped answering ([`Liveness`]):
    /// `DESTROY(Timeout)` to the first hop, and `Closed` with that reason.
    pub fn abandon(
        &mut self,
        ctx: &mut impl CircuitContext,
        circuit: CircuitHandle,
    ) -> Result<(), CircuitError> {
        self.end_own(ctx, circuit, DestroyReason::Timeout)
    }

    /// Ends own circuit `circuit` with `reason`: `DESTROY` to its first hop
    /// and `Closed`.
    fn end_own(
        &mut self,
        ctx: &mut impl CircuitContext,
        circuit: CircuitHandle,
        reason: DestroyReason,
    ) -> Result<(), CircuitError> {
        let end = self
            .clients
            .by_handle(circuit)
            .map(|c| c.end)
            .ok_or(CircuitError::UnknownCircuit)?;
        self.fail_client(ctx, end, reason);
        Ok(())
    }

    /// The liveness state of own circuit `circuit`.
    pub fn client_liveness(&mut self, circuit: CircuitHandle) -> Option<&mut Liveness> {
        self.clients.by_handle(circuit).map(|c| &mut c.liveness)
    }

    /// A link closed: every circuit over it is destroyed, and the other
    /// side of each relayed one is told.
    pub fn link_closed(&mut self, ctx: &mut impl CircuitContext, link: LinkId) {
        // Circuits joined at a rendezvous to one over this link go too.
        #[cfg(feature = "rendezvous")]
        loop {
            let on_link = self
                .relays
                .iter()
                .map(|c| c.inbound)
                .find(|end| end.0 == link && self.rendezvous.has_role(*end));
            let Some(end) = on_link else {
                break;
            };
            self.relay_gone(ctx, end, DestroyReason::LinkClosed);
            let _ = self.relays.remove(end);
        }
        while let Some(other) = self.relays.remove_one_on_link(link) {
            if let Some(end) = other {
                ctx.send(end.0, &destroy_cell(end, DestroyReason::LinkClosed));
            }
        }
        while let Some(c) = self.clients.remove_one_on_link(link) {
            #[cfg(feature = "rendezvous")]
            self.rendezvous.drop_service_hop(c.end);
            ctx.event(closed_event(c, DestroyReason::LinkClosed));
        }
    }
}
