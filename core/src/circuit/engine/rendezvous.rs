//! Introduction and rendezvous (relay spec §13): the roles a relay takes
//! for a rendezvous service and its senders, and the service's own layer
//! on a sender's circuit.
//!
//! - An **introduction point** is the last hop of a service's circuit that
//!   sent `ESTABLISH_INTRO`. It passes each `INTRODUCE1` naming that
//!   service on as `INTRODUCE2`, over the service's circuit, and so never
//!   learns where the service is.
//! - A **rendezvous point** is the last hop of a sender's circuit that sent
//!   `ESTABLISH_RENDEZVOUS` with a cookie. When a service's circuit brings
//!   `RENDEZVOUS1` with that cookie, the two circuits are joined: a cell
//!   either one brings that the point does not recognise goes out on the
//!   other, under the point's backward layer of that circuit. Neither
//!   circuit tells it who is at its far end.
//! - The **service hop** is the service's end of the sender's circuit: a
//!   hop layer from the end-to-end handshake, held on the service's own
//!   circuit to the rendezvous point. Cells none of that circuit's hops
//!   recognise are peeled by it, and what it sends is wrapped in every
//!   layer of that circuit, so the rendezvous point sees only ciphertext.
//!
//! Every table is fixed at build time; without the `rendezvous` feature
//! each holds nothing, and the roles are refused.

// Without the feature the tables hold nothing and the paths that use them
// are compiled out (the firmware image's flash): what is left is unused.
#![cfg_attr(not(feature = "rendezvous"), allow(dead_code, unused_imports))]

use heapless::Vec;
use subtle::ConstantTimeEq;

use crate::capacity::VecStore;
use crate::cell::{
    parse_introduce1, parse_rendezvous1, CellCommand, Cookie, DestroyReason, RelayCommand,
    RelayMessage, COOKIE_LEN,
};
use crate::cgo::{CellBody, ForwardOutcome, RelayLayer};
use crate::identity::{verify_intro_claim, NodeId};
use crate::link::LinkId;

use super::super::client_table::{CircuitHandle, ClientCircuit};
use super::super::relay_table::{CircuitEnd, RelayCircuit, RelayDirection};
use super::Flow;
use super::{cell, destroy_cell, relay_payload, CircuitContext, CircuitEngine, CircuitError};

const ENABLED: bool = cfg!(feature = "rendezvous");
/// Services a relay introduces at once.
pub const MAX_INTRO_ROLES: usize = if ENABLED { 8 } else { 0 };
/// Rendezvous a relay holds at once, waiting or joined.
pub const MAX_RENDEZVOUS_ROLES: usize = if ENABLED { 8 } else { 0 };
/// Senders' circuits a service serves at once.
pub const MAX_SERVICE_HOPS: usize = if ENABLED { 4 } else { 0 };
/// Own circuits to rendezvous services at once.
pub const MAX_RENDEZVOUS_CIRCUITS: usize = if ENABLED { 4 } else { 0 };
/// Roles of either kind that circuits over one link may hold: half the
/// table, so one peer cannot take every slot (the circuits of many
/// senders reach a rendezvous point over a few relays' links, so a smaller
/// share would turn honest senders away).
const ROLES_PER_LINK: usize = if MAX_RENDEZVOUS_ROLES / 2 < 2 {
    2
} else {
    MAX_RENDEZVOUS_ROLES / 2
};

/// Status byte of `INTRO_ESTABLISHED`, `INTRODUCE_ACK` and
/// `RENDEZVOUS_ESTABLISHED`: done.
pub const STATUS_OK: u8 = 0;
/// The request was refused: no room, the service is already introduced
/// here, or (`INTRODUCE_ACK`) this point does not introduce that service.
pub const STATUS_REFUSED: u8 = 1;

#[derive(Debug, Clone)]
struct IntroRole {
    service: NodeId,
    end: CircuitEnd,
}

#[derive(Debug, Clone)]
struct RendezvousRole {
    cookie: Cookie,
    sender: CircuitEnd,
    service: Option<CircuitEnd>,
}

/// The service's layer on one sender's circuit.
#[derive(Debug, Clone)]
struct ServiceHop {
    /// The service's own circuit to the rendezvous point.
    end: CircuitEnd,
    layer: RelayLayer,
    flow: Flow,
}

/// The engine's introduction and rendezvous state.
#[derive(Debug, Clone, Default)]
pub struct RendezvousTables {
    intros: Vec<IntroRole, MAX_INTRO_ROLES>,
    joins: Vec<RendezvousRole, MAX_RENDEZVOUS_ROLES>,
    service_hops: Vec<ServiceHop, MAX_SERVICE_HOPS>,
    /// Own circuits whose last hop is a rendezvous service: built to the
    /// rendezvous point before it, the service's layer added by its answer,
    /// not by an `EXTEND`. Kept here, not in every circuit, so that an
    /// image without the feature pays nothing for it.
    to_services: Vec<CircuitHandle, MAX_RENDEZVOUS_CIRCUITS>,
}

impl RendezvousTables {
    /// The circuit `end` is joined to at this rendezvous point.
    pub(super) fn partner(&self, end: CircuitEnd) -> Option<CircuitEnd> {
        if !ENABLED {
            return None;
        }
        self.joins.iter().find_map(|j| match j.service {
            Some(service) if j.sender == end => Some(service),
            Some(service) if service == end => Some(j.sender),
            _ => None,
        })
    }

    /// Whether `end` holds a role here (it may then not be extended).
    pub(super) fn has_role(&self, end: CircuitEnd) -> bool {
        ENABLED
            && (self.intros.iter().any(|i| i.end == end)
                || self
                    .joins
                    .iter()
                    .any(|j| j.sender == end || j.service == Some(end)))
    }

    fn roles_on_link(&self, link: LinkId) -> usize {
        let intros = self.intros.iter().filter(|i| i.end.0 == link).count();
        let joins = self.joins.iter().filter(|j| j.sender.0 == link).count();
        intros.saturating_add(joins)
    }

    /// Drops every role of `end`; returns the circuit it was joined to.
    fn forget(&mut self, end: CircuitEnd) -> Option<CircuitEnd> {
        self.intros.retain(|i| i.end != end);
        let index = self
            .joins
            .iter()
            .position(|j| j.sender == end || j.service == Some(end))?;
        let join = self.joins.swap_remove(index);
        if join.sender == end {
            join.service
        } else {
            Some(join.sender)
        }
    }

    /// Whether own circuit `end` carries a service hop.
    pub(super) fn serves(&self, end: CircuitEnd) -> bool {
        ENABLED && self.service_hops.iter().any(|h| h.end == end)
    }

    /// Drops the service hop of own circuit `end`.
    pub(super) fn drop_service_hop(&mut self, end: CircuitEnd) {
        if !ENABLED {
            return;
        }
        self.service_hops.retain(|h| h.end != end);
    }

    pub(super) fn service_flow(&mut self, end: CircuitEnd) -> Option<&mut Flow> {
        self.service_hops
            .iter_mut()
            .find(|h| h.end == end)
            .map(|h| &mut h.flow)
    }

    pub(super) fn service_flows(&mut self) -> impl Iterator<Item = (CircuitEnd, &mut Flow)> {
        self.service_hops.iter_mut().map(|h| (h.end, &mut h.flow))
    }

    /// Whether own circuit `circuit` goes to a rendezvous service.
    pub(super) fn to_service(&self, circuit: CircuitHandle) -> bool {
        ENABLED && self.to_services.contains(&circuit)
    }

    /// Forgets own circuits to services no longer `open`; whether there
    /// is room for another.
    pub(super) fn room_for_service_circuit(
        &mut self,
        open: impl Fn(CircuitHandle) -> bool,
    ) -> bool {
        self.to_services.retain(|c| open(*c));
        !self.to_services.is_full()
    }

    /// Notes own circuit `circuit` as one to a rendezvous service.
    pub(super) fn add_service_circuit(&mut self, circuit: CircuitHandle) {
        let _ = self.to_services.push(circuit);
    }

    /// Introduction roles held (for status and tests).
    pub fn introducing(&self) -> usize {
        self.intros.len()
    }

    /// Rendezvous held, and how many of them are joined.
    pub fn rendezvous(&self) -> (usize, usize) {
        let joined = self.joins.iter().filter(|j| j.service.is_some()).count();
        (self.joins.len(), joined)
    }
}

impl<R: VecStore<RelayCircuit>, O: VecStore<ClientCircuit>> CircuitEngine<R, O> {
    /// The introduction and rendezvous roles this node holds.
    pub fn rendezvous_tables(&self) -> &RendezvousTables {
        &self.rendezvous
    }

    /// Whether own circuit `circuit` is a rendezvous with a service. Its
    /// build waits on the service's own circuit as well, so it is given
    /// three build timeouts and kept out of the build-time estimate.
    pub fn is_rendezvous(&self, circuit: CircuitHandle) -> bool {
        self.rendezvous.to_service(circuit)
    }

    /// Answers a role request on relayed circuit `end` with `status`.
    fn answer(
        &mut self,
        ctx: &mut impl CircuitContext,
        end: CircuitEnd,
        command: RelayCommand,
        status: u8,
    ) {
        let _ = self.reply_relay(ctx, end, command, &[status]);
    }

    /// Whether `end` is the last hop of a relayed circuit: only there may a
    /// circuit take a role.
    fn is_last_hop(&mut self, end: CircuitEnd) -> bool {
        matches!(
            self.relays.find(end),
            Some((c, RelayDirection::Forward)) if c.outbound.is_none() && !c.extending
        )
    }

    /// A relay message asking this hop to take or use a role. `false` if
    /// `command` is not one of them.
    pub(super) fn role_request(
        &mut self,
        ctx: &mut impl CircuitContext,
        end: CircuitEnd,
        command: RelayCommand,
        data: &[u8],
    ) -> bool {
        if !ENABLED {
            // Not spoken here: the cell is refused as any unknown one.
            return false;
        }
        let request = matches!(
            command,
            RelayCommand::EstablishIntro
                | RelayCommand::Introduce1
                | RelayCommand::EstablishRendezvous
                | RelayCommand::Rendezvous1
        );
        if !request {
            return false;
        }
        if !self.is_last_hop(end) {
            self.destroy_relay(ctx, end, DestroyReason::Protocol);
            return true;
        }
        match command {
            RelayCommand::EstablishIntro => self.establish_intro(ctx, end, data),
            RelayCommand::Introduce1 => self.introduce(ctx, end, data),
            RelayCommand::EstablishRendezvous => self.establish_rendezvous(ctx, end, data),
            _ => self.join(ctx, end, data),
        }
        true
    }

    fn establish_intro(&mut self, ctx: &mut impl CircuitContext, end: CircuitEnd, data: &[u8]) {
        // Only the holder of the service key claims its id, and a claim
        // made at another point is no good here.
        let Ok(service) = verify_intro_claim(data, &ctx.own_id()) else {
            self.answer(ctx, end, RelayCommand::IntroEstablished, STATUS_REFUSED);
            return;
        };
        // The first circuit to claim a service keeps it until it closes: a
        // later claim (a replayed or hijacking one) is refused.
        let taken = self
            .rendezvous
            .intros
            .iter()
            .any(|i| i.service == service || i.end == end);
        let status = if taken || self.rendezvous.roles_on_link(end.0) >= ROLES_PER_LINK {
            STATUS_REFUSED
        } else {
            match self.rendezvous.intros.push(IntroRole { service, end }) {
                Ok(()) => STATUS_OK,
                Err(_) => STATUS_REFUSED,
            }
        };
        self.answer(ctx, end, RelayCommand::IntroEstablished, status);
    }

    fn introduce(&mut self, ctx: &mut impl CircuitContext, end: CircuitEnd, data: &[u8]) {
        let Ok((service, introduction)) = parse_introduce1(data) else {
            self.destroy_relay(ctx, end, DestroyReason::Protocol);
            return;
        };
        let to = self
            .rendezvous
            .intros
            .iter()
            .find(|i| i.service == service)
            .map(|i| i.end);
        let passed = to.is_some_and(|to| {
            if let Some((c, _)) = self.relays.find(to) {
                c.last_active = ctx.now();
            }
            self.reply_relay(ctx, to, RelayCommand::Introduce2, introduction)
                .is_ok()
        });
        let status = if passed { STATUS_OK } else { STATUS_REFUSED };
        self.answer(ctx, end, RelayCommand::IntroduceAck, status);
    }

    fn establish_rendezvous(
        &mut self,
        ctx: &mut impl CircuitContext,
        end: CircuitEnd,
        data: &[u8],
    ) {
        let Some(cookie) = data.first_chunk::<COOKIE_LEN>().copied() else {
            self.destroy_relay(ctx, end, DestroyReason::Protocol);
            return;
        };
        let refused = self.rendezvous.has_role(end)
            || self.rendezvous.roles_on_link(end.0) >= ROLES_PER_LINK
            || self
                .rendezvous
                .joins
                .iter()
                .any(|j| bool::from(j.cookie.ct_eq(&cookie)));
        let status = if refused {
            STATUS_REFUSED
        } else {
            let role = RendezvousRole {
                cookie,
                sender: end,
                service: None,
            };
            match self.rendezvous.joins.push(role) {
                Ok(()) => STATUS_OK,
                Err(_) => STATUS_REFUSED,
            }
        };
        self.answer(ctx, end, RelayCommand::RendezvousEstablished, status);
    }

    /// `RENDEZVOUS1`: joins the service's circuit `end` to the sender's
    /// circuit waiting with the same cookie, and passes the service's
    /// handshake answer on to the sender. An unknown or used cookie
    /// destroys the service's circuit.
    fn join(&mut self, ctx: &mut impl CircuitContext, end: CircuitEnd, data: &[u8]) {
        let Ok((cookie, answer)) = parse_rendezvous1(data) else {
            self.destroy_relay(ctx, end, DestroyReason::Protocol);
            return;
        };
        let waiting = if self.rendezvous.has_role(end) {
            None
        } else {
            self.rendezvous
                .joins
                .iter_mut()
                .find(|j| j.service.is_none() && bool::from(j.cookie.ct_eq(&cookie)))
        };
        let Some(role) = waiting else {
            self.destroy_relay(ctx, end, DestroyReason::Protocol);
            return;
        };
        role.service = Some(end);
        // Single use: a replayed RENDEZVOUS1 finds nothing.
        role.cookie = [0; COOKIE_LEN];
        let sender = role.sender;
        if self
            .reply_relay(ctx, sender, RelayCommand::Rendezvous2, &answer)
            .is_err()
        {
            self.destroy_relay(ctx, end, DestroyReason::ResourceLimit);
        }
    }

    /// A forward cell on `end` that this hop did not recognise and that
    /// has no next hop: if `end` is joined, it goes to the other circuit
    /// under that circuit's backward layer. `false` if `end` is not joined.
    pub(super) fn forward_joined(
        &mut self,
        ctx: &mut impl CircuitContext,
        end: CircuitEnd,
        command: CellCommand,
        body: &mut CellBody,
    ) -> bool {
        let Some(partner) = self.rendezvous.partner(end) else {
            return false;
        };
        if command != CellCommand::Relay {
            self.destroy_relay(ctx, end, DestroyReason::Protocol);
            return true;
        }
        let now = ctx.now();
        match self.relays.find(partner) {
            Some((c, RelayDirection::Forward)) => {
                c.layer.forward_backward(command.code(), body);
                c.last_active = now;
                ctx.send(
                    partner.0,
                    &cell(partner, CellCommand::Relay, body.to_bytes()),
                );
            }
            _ => self.destroy_relay(ctx, end, DestroyReason::Protocol),
        }
        true
    }

    /// The relayed circuit `end` is gone: its roles go, and a circuit it was
    /// joined to is destroyed with `reason`.
    pub(super) fn relay_gone(
        &mut self,
        ctx: &mut impl CircuitContext,
        end: CircuitEnd,
        reason: DestroyReason,
    ) {
        if !ENABLED {
            return;
        }
        if let Some(partner) = self.rendezvous.forget(end) {
            if self.relays.remove(partner).is_some() {
                ctx.send(partner.0, &destroy_cell(partner, reason));
            }
        }
    }

    /// Gives own circuit `circuit`, which has just reached a rendezvous
    /// point, the service's layer on the sender's circuit that waits there.
    /// Relay messages to and from the sender then flow through it, as for
    /// any circuit this node is the last hop of.
    pub fn attach_service_hop(
        &mut self,
        circuit: CircuitHandle,
        layer: RelayLayer,
    ) -> Result<CircuitEnd, CircuitError> {
        let end = self
            .clients
            .by_handle(circuit)
            .filter(|c| c.is_ready())
            .map(|c| c.end)
            .ok_or(CircuitError::UnknownCircuit)?;
        self.rendezvous.drop_service_hop(end);
        self.rendezvous
            .service_hops
            .push(ServiceHop {
                end,
                layer,
                flow: Flow::new(),
            })
            .map_err(|_| CircuitError::Full)?;
        Ok(end)
    }

    /// A cell on own circuit `end` that none of its hops recognised: the
    /// service hop's, if the circuit carries one.
    pub(super) fn at_service_hop(
        &mut self,
        ctx: &mut impl CircuitContext,
        end: CircuitEnd,
        ad: u8,
        body: &mut CellBody,
    ) {
        let Some(hop) = self
            .rendezvous
            .service_hops
            .iter_mut()
            .find(|h| h.end == end)
        else {
            self.fail_client(ctx, end, DestroyReason::Unrecognised);
            return;
        };
        if hop.layer.receive_forward(ad, body) != ForwardOutcome::Recognised {
            self.fail_client(ctx, end, DestroyReason::Unrecognised);
            return;
        }
        match RelayMessage::parse(&body.payload) {
            Ok(message) if self.end_to_end(ctx, end, message) => {}
            _ => self.fail_client(ctx, end, DestroyReason::Protocol),
        }
    }

    /// Sends a relay message from the service hop of own circuit `end`
    /// towards the sender: originated under the service hop's layer, then
    /// wrapped in every layer of `end`'s circuit so that each of its hops,
    /// and the rendezvous point, passes it on without recognising it.
    pub(super) fn reply_from_service_hop(
        &mut self,
        ctx: &mut impl CircuitContext,
        end: CircuitEnd,
        command: RelayCommand,
        data: &[u8],
    ) -> Result<(), CircuitError> {
        let payload = relay_payload(command, data).ok_or(CircuitError::TooLong)?;
        let ad = CellCommand::Relay.code();
        let hop = self
            .rendezvous
            .service_hops
            .iter_mut()
            .find(|h| h.end == end)
            .ok_or(CircuitError::UnknownCircuit)?;
        let mut body = hop.layer.originate_backward(ad, &payload);
        let circuit = self
            .clients
            .by_end(end)
            .ok_or(CircuitError::UnknownCircuit)?;
        circuit.layers.wrap_forward(ad, &mut body);
        if ctx.send(end.0, &cell(end, CellCommand::Relay, body.to_bytes())) {
            Ok(())
        } else {
            Err(CircuitError::LinkBusy)
        }
    }
}
