//! The engine's receiving side: what each circuit cell does, as a relay
//! (`CREATE`, relaying, `EXTEND`, `DESTROY`) and as a client (`CREATED`,
//! relay messages from its hops).

use heapless::Vec;

use crate::capacity::VecStore;
use crate::cell::{
    emit_create, emit_created, parse_create, parse_created, CellCommand, CellRepr, DestroyReason,
    ExtendRepr, RelayCommand, RelayMessage, MAX_RELAY_EARLY, RELAY_DATA_LEN,
};
use crate::cgo::{CellBody, ForwardOutcome, BODY_LEN};
use crate::identity::NodeId;
use crate::link::{Cell, LinkId};
use crate::noise::StaticKeypair;

use super::super::client_table::{CircuitHandle, ClientCircuit};
use super::super::relay_table::{AwaitingLink, CircuitEnd, RelayCircuit, RelayDirection};
use super::super::{respond_with, HOP_MESSAGE_LEN};
use super::*;

/// Reports a relay message from hop `hop` of own circuit `circuit`.
fn data_event(
    ctx: &mut impl CircuitContext,
    circuit: CircuitHandle,
    hop: usize,
    command: RelayCommand,
    data: &[u8],
) {
    if let Ok(data) = Vec::from_slice(data) {
        ctx.event(CircuitEvent::Data {
            circuit,
            hop,
            command,
            data,
        });
    }
}

impl<R: VecStore<RelayCircuit>, O: VecStore<ClientCircuit>> CircuitEngine<R, O> {
    /// Handles a circuit cell received on `link`. `onion_keys` are this
    /// node's onion keys, newest first. An error means the peer broke the
    /// protocol and the link should close.
    pub fn handle_cell(
        &mut self,
        ctx: &mut impl CircuitContext,
        link: LinkId,
        cell_bytes: &Cell,
        onion_keys: &[&StaticKeypair],
    ) -> Result<(), CircuitProtocolViolation> {
        let repr = CellRepr::parse(cell_bytes).map_err(|_| CircuitProtocolViolation)?;
        let end = (link, repr.circuit_id);
        match repr.command {
            CellCommand::Create => self.on_create(ctx, end, &repr.body, onion_keys),
            CellCommand::Created => {
                self.on_created(ctx, end, &repr.body);
                Ok(())
            }
            CellCommand::Relay | CellCommand::RelayEarly => {
                self.on_relay(ctx, end, repr.command, &repr.body);
                Ok(())
            }
            CellCommand::Destroy => {
                let reason = DestroyReason::from_code(repr.body.first().copied().unwrap_or(1));
                self.on_destroy(ctx, end, reason);
                Ok(())
            }
            CellCommand::Padding
            | CellCommand::Descriptor
            | CellCommand::DialBack
            | CellCommand::DescriptorRequest
            | CellCommand::PaddingNegotiate => Err(CircuitProtocolViolation),
        }
    }

    fn on_create(
        &mut self,
        ctx: &mut impl CircuitContext,
        end: CircuitEnd,
        body: &[u8; BODY_LEN],
        onion_keys: &[&StaticKeypair],
    ) -> Result<(), CircuitProtocolViolation> {
        let role = ctx.role_on(end.0).ok_or(CircuitProtocolViolation)?;
        // The peer allocates ids from its own half of the space.
        if !end.1.allocated_by(other_role(role)) || self.in_use(end) {
            return Err(CircuitProtocolViolation);
        }
        // Room and quotas first: they cost a few comparisons, the hop
        // handshake two X25519 operations.
        if let Err(reason) = self.admit_create(ctx, end.0) {
            ctx.send(end.0, &destroy_cell(end, reason));
            return Ok(());
        }
        match respond_with(onion_keys, ctx.hop_ephemeral(), body) {
            Ok((layer, created)) => {
                let circuit = RelayCircuit {
                    inbound: end,
                    outbound: None,
                    layer,
                    early_cells: 0,
                    extending: false,
                    awaiting_link: None,
                    flow: Flow::new(),
                    last_active: ctx.now(),
                };
                if self.relays.insert(circuit).is_err() {
                    ctx.send(end.0, &destroy_cell(end, DestroyReason::ResourceLimit));
                } else {
                    ctx.send(end.0, &cell(end, CellCommand::Created, created));
                }
            }
            Err(_) => {
                ctx.send(end.0, &destroy_cell(end, DestroyReason::Protocol));
            }
        }
        Ok(())
    }

    fn on_created(
        &mut self,
        ctx: &mut impl CircuitContext,
        end: CircuitEnd,
        body: &[u8; BODY_LEN],
    ) {
        // Our own circuit's first hop answered.
        if let Some(circuit) = self.clients.by_end(end) {
            if circuit.layers.is_empty() {
                if let Some(pending) = circuit.pending.take() {
                    let handle = circuit.handle;
                    let added = pending
                        .finish(body)
                        .ok()
                        .is_some_and(|hop| circuit.layers.push(hop).is_ok());
                    if added {
                        self.advance(ctx, handle);
                    } else {
                        self.fail_client(ctx, end, DestroyReason::Protocol);
                    }
                    return;
                }
            }
            self.fail_client(ctx, end, DestroyReason::Protocol);
            return;
        }
        // The next hop answered an EXTEND we made: send EXTENDED back.
        if let Some((circuit, RelayDirection::Backward)) = self.relays.find(end) {
            if circuit.extending {
                circuit.extending = false;
                let inbound = circuit.inbound;
                let message = parse_created(body).ok();
                let payload = message
                    .as_deref()
                    .and_then(|m| relay_payload(RelayCommand::Extended, m));
                if let Some(payload) = payload {
                    let reply = circuit
                        .layer
                        .originate_backward(CellCommand::Relay.code(), &payload);
                    ctx.send(
                        inbound.0,
                        &cell(inbound, CellCommand::Relay, reply.to_bytes()),
                    );
                    return;
                }
            }
        }
        self.destroy_relay(ctx, end, DestroyReason::Protocol);
    }

    /// Builds the next hop of a client circuit, or reports it ready.
    pub(super) fn advance(&mut self, ctx: &mut impl CircuitContext, handle: CircuitHandle) {
        let Some(circuit) = self.clients.by_handle(handle) else {
            return;
        };
        let built = circuit.layers.len();
        if built == circuit.path.hops().len() {
            let built_in = ctx.now().saturating_since(circuit.opened_at);
            // The last hop's handshake crossed the whole path.
            let last_step = ctx.now().saturating_since(circuit.step_sent_at);
            circuit.liveness.on_sample(last_step);
            if circuit.path.destination().is_some() {
                ctx.event(CircuitEvent::Ready {
                    circuit: handle,
                    path: circuit.path.clone(),
                    built_in,
                });
            }
            return;
        }
        let end = circuit.end;
        #[cfg(feature = "rendezvous")]
        if self.rendezvous.to_service(handle)
            && built.saturating_add(1) == circuit.path.hops().len()
        {
            // At the rendezvous point: the service's hop is added by its
            // answer, which the node's introduction brings about.
            circuit.step_sent_at = ctx.now();
            ctx.event(CircuitEvent::AtRendezvousPoint { circuit: handle });
            return;
        }
        let (Some(target), Some(onion)) = (
            circuit.path.hops().get(built).copied(),
            circuit.onion_keys.get(built).copied(),
        ) else {
            return;
        };
        let ephemeral = ctx.hop_ephemeral();
        let Some(circuit) = self.clients.by_handle(handle) else {
            return;
        };
        let Ok((pending, create)) = HopHandshakeClient::start_with(&onion, ephemeral) else {
            self.fail_client(ctx, end, DestroyReason::Protocol);
            return;
        };
        // EXTEND data: target id, the CREATE body's handshake, and where
        // the client knows the target to be (relay spec §6).
        let extend = parse_create(&create).ok().map(|handshake| ExtendRepr {
            target,
            handshake,
            addresses: ctx.extend_addresses(&target),
        });
        let mut data = [0u8; RELAY_DATA_LEN];
        let data = extend
            .and_then(|extend| extend.emit(&mut data))
            .and_then(|len| data.get(..len));
        let ad = CellCommand::RelayEarly.code();
        let last = built.saturating_sub(1);
        let body = data
            .and_then(|data| relay_payload(RelayCommand::Extend, data))
            .and_then(|payload| circuit.layers.originate_forward(last, ad, &payload).ok());
        circuit.pending = Some(pending);
        circuit.step_sent_at = ctx.now();
        match body {
            Some(body) if ctx.send(end.0, &cell(end, CellCommand::RelayEarly, body.to_bytes())) => {
                circuit.early_left = circuit.early_left.saturating_sub(1);
            }
            _ => self.fail_client(ctx, end, DestroyReason::ResourceLimit),
        }
    }

    fn on_relay(
        &mut self,
        ctx: &mut impl CircuitContext,
        end: CircuitEnd,
        command: CellCommand,
        body: &[u8; BODY_LEN],
    ) {
        let ad = command.code();
        let mut cgo = CellBody::from_bytes(body);
        if let Some((circuit, direction)) = self.relays.find(end) {
            circuit.last_active = ctx.now();
            match direction {
                RelayDirection::Backward => {
                    // Towards the client: add our layer. Always plain RELAY.
                    if command != CellCommand::Relay {
                        self.destroy_relay(ctx, end, DestroyReason::Protocol);
                        return;
                    }
                    circuit.layer.forward_backward(ad, &mut cgo);
                    let inbound = circuit.inbound;
                    ctx.send(
                        inbound.0,
                        &cell(inbound, CellCommand::Relay, cgo.to_bytes()),
                    );
                }
                RelayDirection::Forward => {
                    if command == CellCommand::RelayEarly {
                        circuit.early_cells = circuit.early_cells.saturating_add(1);
                        if circuit.early_cells > MAX_RELAY_EARLY {
                            self.destroy_relay(ctx, end, DestroyReason::TooLong);
                            return;
                        }
                    }
                    match circuit.layer.receive_forward(ad, &mut cgo) {
                        ForwardOutcome::Recognised => self.at_this_hop(ctx, end, command, &cgo),
                        ForwardOutcome::Forward => match circuit.outbound {
                            Some(out) if !circuit.extending => {
                                ctx.send(out.0, &cell(out, command, cgo.to_bytes()));
                            }
                            // A rendezvous point passes it to the circuit
                            // it joined; otherwise nobody is further on:
                            // the cell was altered.
                            #[cfg(feature = "rendezvous")]
                            _ => {
                                if !self.forward_joined(ctx, end, command, &mut cgo) {
                                    self.destroy_relay(ctx, end, DestroyReason::Unrecognised);
                                }
                            }
                            #[cfg(not(feature = "rendezvous"))]
                            _ => self.destroy_relay(ctx, end, DestroyReason::Unrecognised),
                        },
                    }
                }
            }
            return;
        }
        let Some(circuit) = self.clients.by_end(end) else {
            // A late cell for a circuit already gone.
            return;
        };
        if command != CellCommand::Relay {
            self.fail_client(ctx, end, DestroyReason::Protocol);
            return;
        }
        let Some(hop) = circuit.layers.receive_backward(ad, &mut cgo) else {
            // From a sender beyond the rendezvous point, if this circuit
            // carries a service hop.
            #[cfg(feature = "rendezvous")]
            self.at_service_hop(ctx, end, ad, &mut cgo);
            #[cfg(not(feature = "rendezvous"))]
            self.fail_client(ctx, end, DestroyReason::Unrecognised);
            return;
        };
        let handle = circuit.handle;
        let message = RelayMessage::parse(&cgo.payload);
        match message {
            Ok(RelayMessage {
                command:
                    command @ (RelayCommand::Data
                    | RelayCommand::Ack
                    | RelayCommand::Credit
                    | RelayCommand::ProbeReply
                    | RelayCommand::LookupAnswer),
                data,
            }) => data_event(ctx, handle, hop, command, data),
            // Answers of introduction and rendezvous points, and
            // introductions: for the node (relay spec §13).
            #[cfg(feature = "rendezvous")]
            Ok(RelayMessage {
                command:
                    command @ (RelayCommand::IntroEstablished
                    | RelayCommand::Introduce2
                    | RelayCommand::IntroduceAck
                    | RelayCommand::RendezvousEstablished),
                data,
            }) => data_event(ctx, handle, hop, command, data),
            Ok(RelayMessage {
                command: RelayCommand::Extended,
                data,
            }) if hop.saturating_add(1) == circuit.layers.len() && circuit.pending.is_some() => {
                let created = emit_created(data);
                let finished = circuit
                    .pending
                    .take()
                    .zip(created)
                    .and_then(|(pending, created)| pending.finish(&created).ok());
                let added = finished.is_some_and(|layer| circuit.layers.push(layer).is_ok());
                if added {
                    self.advance(ctx, handle);
                } else {
                    self.fail_client(ctx, end, DestroyReason::ExtendFailed);
                }
            }
            // The service's answer through the rendezvous point: its layer
            // becomes the circuit's last.
            Ok(RelayMessage {
                command: RelayCommand::Rendezvous2,
                data,
            }) if self.rendezvous.to_service(handle)
                && hop.saturating_add(1) == circuit.layers.len()
                && circuit.pending.is_some() =>
            {
                let finished = circuit
                    .pending
                    .take()
                    .and_then(|pending| pending.finish_message(data.get(..HOP_MESSAGE_LEN)?).ok());
                let added = finished.is_some_and(|layer| circuit.layers.push(layer).is_ok());
                if added {
                    self.advance(ctx, handle);
                } else {
                    self.fail_client(ctx, end, DestroyReason::Protocol);
                }
            }
            Ok(RelayMessage {
                command: RelayCommand::Padding,
                ..
            }) => {}
            _ => self.fail_client(ctx, end, DestroyReason::Protocol),
        }
    }

    /// Starts the end-to-end handshake of rendezvous circuit `circuit`,
    /// which has reached its rendezvous point: NK message 1 to the
    /// service's onion key carrying `payload`, written to `out` for the
    /// node's `INTRODUCE1`. Returns its length.
    pub fn start_introduction(
        &mut self,
        ctx: &mut impl CircuitContext,
        circuit: CircuitHandle,
        payload: &[u8],
        out: &mut [u8],
    ) -> Result<usize, CircuitError> {
        let ephemeral = Self::ephemeral(ctx);
        let c = self
            .clients
            .by_handle(circuit)
            .ok_or(CircuitError::UnknownCircuit)?;
        let waiting = self.rendezvous.to_service(circuit)
            && c.pending.is_none()
            && c.layers.len().saturating_add(1) == c.path.hops().len();
        let service_key = c.onion_keys.last().copied();
        let (true, Some(service_key)) = (waiting, service_key) else {
            return Err(CircuitError::NotReady);
        };
        let (pending, len) =
            HopHandshakeClient::start_introduction(&service_key, *ephemeral, payload, out)
                .map_err(|_| CircuitError::TooLong)?;
        c.pending = Some(pending);
        Ok(len)
    }

    /// A forward cell recognised at this hop.
    fn at_this_hop(
        &mut self,
        ctx: &mut impl CircuitContext,
        end: CircuitEnd,
        command: CellCommand,
        cgo: &CellBody,
    ) {
        match RelayMessage::parse(&cgo.payload) {
            Ok(RelayMessage {
                command: RelayCommand::Extend,
                data,
            }) if command == CellCommand::RelayEarly && !self.rendezvous.has_role(end) => {
                self.extend(ctx, end, data);
            }
            #[cfg(feature = "rendezvous")]
            Ok(RelayMessage { command, data }) if self.role_request(ctx, end, command, data) => {}
            Ok(message) if self.end_to_end(ctx, end, message) => {}
            _ => self.destroy_relay(ctx, end, DestroyReason::Protocol),
        }
    }

    /// What every last hop does alike, a relay's or a service's
    /// (`at_service_hop`): end-to-end commands are delivered, a probe is
    /// answered by the hop itself with the same data (relay spec §6; if its
    /// way back is full the client hears nothing, which is what a probe is
    /// for), padding is dropped. `false` if `message` is none of those.
    pub(super) fn end_to_end(
        &mut self,
        ctx: &mut impl CircuitContext,
        end: CircuitEnd,
        message: RelayMessage<'_>,
    ) -> bool {
        match message {
            RelayMessage {
                command:
                    relay @ (RelayCommand::Data
                    | RelayCommand::Ack
                    | RelayCommand::Credit
                    | RelayCommand::Lookup),
                data,
            } => {
                if let Ok(data) = Vec::from_slice(data) {
                    ctx.event(CircuitEvent::Delivered {
                        at: end,
                        command: relay,
                        data,
                    });
                }
            }
            RelayMessage {
                command: RelayCommand::Probe,
                data,
            } => {
                let _ = self.reply_relay(ctx, end, RelayCommand::ProbeReply, data);
            }
            RelayMessage {
                command: RelayCommand::Padding,
                ..
            } => {}
            _ => return false,
        }
        true
    }

    /// Extends a relayed circuit to the node named in `data`.
    fn extend(&mut self, ctx: &mut impl CircuitContext, inbound: CircuitEnd, data: &[u8]) {
        let extend = ExtendRepr::parse(data).ok().and_then(|extend| {
            let message = <[u8; HOP_MESSAGE_LEN]>::try_from(extend.handshake.as_slice()).ok()?;
            Some((extend.target, message, extend.addresses))
        });
        let already = self
            .relays
            .find(inbound)
            .is_some_and(|(c, _)| c.outbound.is_some() || c.extending);
        let (Some((target, message, addresses)), false) = (extend, already) else {
            self.destroy_relay(ctx, inbound, DestroyReason::Protocol);
            return;
        };
        if ctx.link_to(&target).is_none() {
            // Park the EXTEND until the node has connected to the target,
            // within the bounds on parked EXTENDs.
            let parked = self.relays.iter().filter(|c| c.awaiting_link.is_some());
            let (all, from_link) = parked.fold((0usize, 0usize), |(all, mine), c| {
                let same = usize::from(c.inbound.0 == inbound.0);
                (all.saturating_add(1), mine.saturating_add(same))
            });
            if all >= MAX_PARKED_EXTENDS || from_link >= MAX_PARKED_EXTENDS_PER_LINK {
                self.destroy_relay(ctx, inbound, DestroyReason::ResourceLimit);
                return;
            }
            let now = ctx.now();
            if !ctx.dial_for_extend(&target, &addresses) {
                self.destroy_relay(ctx, inbound, DestroyReason::ExtendFailed);
                return;
            }
            if let Some((circuit, _)) = self.relays.find(inbound) {
                circuit.extending = true;
                circuit.awaiting_link = Some(AwaitingLink {
                    target,
                    message,
                    since: now,
                });
            }
            return;
        }
        self.send_create(ctx, inbound, target, &message);
    }

    /// Sends the `CREATE` of an `EXTEND` to `target` over an established link.
    pub(super) fn send_create(
        &mut self,
        ctx: &mut impl CircuitContext,
        inbound: CircuitEnd,
        target: NodeId,
        message: &[u8; HOP_MESSAGE_LEN],
    ) {
        let Some(create) = emit_create(message) else {
            self.destroy_relay(ctx, inbound, DestroyReason::Protocol);
            return;
        };
        let Some((link, role)) = ctx.link_to(&target) else {
            self.destroy_relay(ctx, inbound, DestroyReason::ExtendFailed);
            return;
        };
        let Some(id) = self.allocate(ctx, link, role) else {
            self.destroy_relay(ctx, inbound, DestroyReason::ResourceLimit);
            return;
        };
        let out = (link, id);
        if !ctx.send(link, &cell(out, CellCommand::Create, create)) {
            self.destroy_relay(ctx, inbound, DestroyReason::ResourceLimit);
            return;
        }
        if let Some((circuit, _)) = self.relays.find(inbound) {
            circuit.outbound = Some(out);
            circuit.extending = true;
            circuit.awaiting_link = None;
        }
    }

    fn on_destroy(
        &mut self,
        ctx: &mut impl CircuitContext,
        end: CircuitEnd,
        reason: DestroyReason,
    ) {
        if let Some(other) = self.relays.remove(end) {
            if let Some(other) = other {
                ctx.send(other.0, &destroy_cell(other, reason));
            }
            #[cfg(feature = "rendezvous")]
            self.relay_gone(ctx, end, reason);
            return;
        }
        if let Some(c) = self.clients.remove(end) {
            #[cfg(feature = "rendezvous")]
            self.rendezvous.drop_service_hop(end);
            ctx.event(closed_event(c, reason));
        }
    }

    /// Destroys a relayed circuit in both directions.
    pub(super) fn destroy_relay(
        &mut self,
        ctx: &mut impl CircuitContext,
        end: CircuitEnd,
        reason: DestroyReason,
    ) {
        ctx.send(end.0, &destroy_cell(end, reason));
        if let Some(Some(other)) = self.relays.remove(end) {
            ctx.send(other.0, &destroy_cell(other, reason));
        }
        #[cfg(feature = "rendezvous")]
        self.relay_gone(ctx, end, reason);
    }

    /// Destroys a client circuit: tells the first hop and reports it.
    pub(super) fn fail_client(
        &mut self,
        ctx: &mut impl CircuitContext,
        end: CircuitEnd,
        reason: DestroyReason,
    ) {
        ctx.send(end.0, &destroy_cell(end, reason));
        #[cfg(feature = "rendezvous")]
        self.rendezvous.drop_service_hop(end);
        if let Some(c) = self.clients.remove(end) {
            ctx.event(closed_event(c, reason));
        }
    }
}
