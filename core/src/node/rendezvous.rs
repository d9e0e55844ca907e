//! Reaching a rendezvous service (relay spec §13), the sender's side.
//!
//! A service is known by its signed descriptor ([`LearnService`]), which
//! lists its introduction points. A message to the service's id makes the
//! node:
//!
//! 1. build a circuit to a rendezvous point of its own choosing and leave a
//!    one-time cookie there (`ESTABLISH_RENDEZVOUS`);
//! 2. build a second circuit to one of the service's introduction points
//!    and send the introduction (`INTRODUCE1`): the start of the
//!    end-to-end handshake, carrying the cookie and where the rendezvous
//!    point is, encrypted to the service;
//! 3. wait for the service's answer (`RENDEZVOUS2`), which adds the
//!    service's layer to the first circuit.
//!
//! The circuit's path then ends with the service's id, so messages,
//! acknowledgements and credit flow over it as over any circuit.

// Without the feature the tables hold nothing and the paths that use them
// are compiled out (the firmware image's flash): what is left is unused.
#![cfg_attr(not(feature = "rendezvous"), allow(dead_code, unused_imports))]

use heapless::Vec;
use rand_core::Rng;

use crate::cell::{
    Cookie, ExtendAddresses, IntroductionPayload, RelayCommand, MAX_EXTEND_ADDRESSES,
    MAX_INTRODUCTION_PAYLOAD, RELAY_DATA_LEN,
};
use crate::circuit::{CircuitHandle, STATUS_OK};
use crate::discovery::{select_path, Path, PathRules, Tables};
use crate::identity::{NodeId, ServiceDescriptor, ServiceDescriptorError, MAX_INTRO_POINTS};
use crate::time::Instant;

use super::{Node, Profile};

const ENABLED: bool = cfg!(feature = "rendezvous");
/// Services a node knows the descriptor of.
pub const MAX_KNOWN_SERVICES: usize = if ENABLED { 4 } else { 0 };
/// Rendezvous a node is setting up at once.
const MAX_ATTEMPTS: usize = if ENABLED { 2 } else { 0 };
/// Bytes of an introduction: NK message 1 around the payload.
const MAX_INTRODUCTION: usize = 32 + MAX_INTRODUCTION_PAYLOAD + 16;

/// Learn a rendezvous service from its signed descriptor, handed over by
/// the service's owner (as a Tor onion address is), so that messages can
/// be sent to its id ([`ServiceDescriptor::service_id`]).
///
/// Returns the service's id. A newer descriptor of a known service replaces
/// the older one; with no room, the oldest known service is forgotten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LearnService<'a> {
    /// The descriptor's bytes.
    pub descriptor: &'a [u8],
}

/// Why a service descriptor was not learnt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum LearnServiceError {
    /// The descriptor does not parse or verify.
    Invalid(#[cfg_attr(feature = "serde", serde(skip))] ServiceDescriptorError),
    /// An equally new or newer descriptor of this service is known.
    Stale,
    /// This node was built without rendezvous support.
    Unsupported,
}

impl core::fmt::Display for LearnServiceError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            LearnServiceError::Invalid(e) => write!(f, "service descriptor refused: {e}"),
            LearnServiceError::Stale => write!(
                f,
                "a descriptor of this service at least as new is known; get the current one"
            ),
            LearnServiceError::Unsupported => write!(
                f,
                "this node was built without the `rendezvous` feature; rebuild with it"
            ),
        }
    }
}

impl core::error::Error for LearnServiceError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// The circuit to the rendezvous point is being built.
    Building,
    /// `ESTABLISH_RENDEZVOUS` sent.
    Establishing,
    /// The cookie waits at the rendezvous point; the introduction circuit
    /// is being built.
    Introducing,
    /// `INTRODUCE1` sent.
    Introduced,
    /// The introduction point passed it on: the service's answer is due.
    Waiting,
}

#[derive(Debug, Clone)]
struct Attempt {
    service: NodeId,
    circuit: CircuitHandle,
    rendezvous: NodeId,
    cookie: Cookie,
    stage: Stage,
    /// Which of the service's introduction points is being tried.
    intro_index: usize,
    intro_circuit: Option<CircuitHandle>,
    introduction: Vec<u8, MAX_INTRODUCTION>,
}

/// The services this node knows and the rendezvous it is setting up.
#[derive(Debug, Clone, Default)]
pub(crate) struct Senders {
    services: Vec<ServiceDescriptor, MAX_KNOWN_SERVICES>,
    attempts: Vec<Attempt, MAX_ATTEMPTS>,
}

impl Senders {
    /// The descriptor of service `id`, if known.
    pub(crate) fn service(&self, id: &NodeId) -> Option<&ServiceDescriptor> {
        if !ENABLED {
            return None;
        }
        self.services.iter().find(|s| s.service_id() == *id)
    }

    /// Whether own circuit `circuit` is one of the rendezvous being set up.
    pub(crate) fn is_rendezvous(&self, circuit: CircuitHandle) -> bool {
        ENABLED && self.attempts.iter().any(|a| a.circuit == circuit)
    }

    /// Where an introduction point of a known service listens, for an
    /// `EXTEND` through a relay that does not know it.
    pub(crate) fn intro_addresses(&self, relay: &NodeId) -> Option<ExtendAddresses> {
        if !ENABLED {
            return None;
        }
        self.services
            .iter()
            .flat_map(|s| s.intro_points.iter())
            .find(|i| i.node_id == *relay)
            .map(|i| {
                i.addresses
                    .iter()
                    .copied()
                    .take(MAX_EXTEND_ADDRESSES)
                    .collect()
            })
    }
}

impl<P: Profile> Node<P> {
    pub(crate) fn on_learn_service(
        &mut self,
        _now: Instant,
        input: LearnService<'_>,
    ) -> Result<NodeId, LearnServiceError> {
        if !ENABLED {
            return Err(LearnServiceError::Unsupported);
        }
        let descriptor = ServiceDescriptor::parse_verified(input.descriptor)
            .map_err(LearnServiceError::Invalid)?;
        let id = descriptor.service_id();
        let services = &mut self.senders.services;
        if let Some(known) = services.iter_mut().find(|s| s.service_id() == id) {
            if known.issued_at >= descriptor.issued_at {
                return Err(LearnServiceError::Stale);
            }
            *known = descriptor;
        } else {
            if services.is_full() && !services.is_empty() {
                services.remove(0);
            }
            let _ = services.push(descriptor);
        }
        self.pump();
        Ok(id)
    }

    /// Whether messages to `id` go through rendezvous.
    pub(crate) fn is_known_service(&self, id: &NodeId) -> bool {
        self.senders.service(id).is_some()
    }

    /// A circuit from this node whose last hop is `last`, with
    /// `relays_before` relays before it: drawn from the node table, or, when
    /// `last` is not in it, through a drawn relay and then `last` (whose
    /// onion key the caller has). `None` if no path fits or the first hop
    /// has no link yet (it is dialled, and the caller tries again later).
    pub(crate) fn path_ending_at(&mut self, last: NodeId, relays_before: usize) -> Option<Path> {
        self.maintain_guards(Some(last));
        #[cfg(feature = "vanguards")]
        self.maintain_second_layer_guards();
        let unix_now = super::discovery::unix_now(&self.config, self.now);
        let rules = PathRules {
            relays: relays_before,
            guards: &self.circuits.guards,
            #[cfg(feature = "vanguards")]
            second_layer: self.circuits.second_layer.ids(),
            avoid: &[],
            now: self.now,
        };
        let table = self.discovery.table();
        let path = if table.get(&last).is_some() {
            select_path(table, last, &rules, unix_now, &mut self.rng).ok()?
        } else {
            // Through a relay drawn as the "destination", then `last`.
            // When that relay is the second hop, it is a layer-2 guard
            // (relay spec §11).
            let own = self.node_id();
            let now = self.now;
            #[cfg(feature = "vanguards")]
            let second: &[NodeId] = if relays_before == 2 {
                rules.second_layer
            } else {
                &[]
            };
            #[cfg(not(feature = "vanguards"))]
            let second: &[NodeId] = &[];
            let anchor = table
                .draw(Tables::Both, &mut self.rng, |e| {
                    e.node_id() != last
                        && e.node_id() != own
                        && e.is_path_relay(unix_now)
                        && e.health.available(now)
                        && (second.is_empty() || second.contains(&e.node_id()))
                })?
                .node_id();
            let rules = PathRules {
                relays: relays_before.saturating_sub(1),
                ..rules
            };
            let mut hops: Vec<NodeId, { crate::cgo::MAX_HOPS }> =
                select_path(table, anchor, &rules, unix_now, &mut self.rng)
                    .ok()?
                    .hops()
                    .iter()
                    .copied()
                    .collect();
            hops.push(last).ok()?;
            Path::from_hops(&hops)?
        };
        let first = path.hops().first().copied()?;
        self.first_hop_linked_or(first, None).then_some(path)
    }

    /// The onion keys of `path`'s hops from the node table, with `extra`
    /// for hops it does not hold.
    pub(crate) fn onion_keys_of(
        &self,
        path: &Path,
        extra: &[(NodeId, [u8; 32])],
    ) -> Option<Vec<[u8; 32], { crate::cgo::MAX_HOPS }>> {
        let table = self.discovery.table();
        path.hops()
            .iter()
            .map(|hop| match table.get(hop) {
                Some(e) => Some(e.descriptor.repr().onion_key),
                None => extra.iter().find(|(id, _)| id == hop).map(|(_, k)| *k),
            })
            .collect()
    }

    /// Starts a rendezvous with service `service` for the messages waiting
    /// for it.
    pub(crate) fn open_rendezvous(&mut self, service: NodeId) {
        if self.senders.attempts.is_full()
            || self.senders.attempts.iter().any(|a| a.service == service)
        {
            return;
        }
        let Some(descriptor) = self.senders.service(&service).cloned() else {
            return;
        };
        // A rendezvous point that is none of the service's introduction
        // points: the sender's choice, in a network of its own.
        let unix_now = super::discovery::unix_now(&self.config, self.now);
        let (own, now) = (self.node_id(), self.now);
        let point = self
            .discovery
            .table()
            .draw(Tables::Both, &mut self.rng, |e| {
                e.node_id() != own
                    && e.is_path_relay(unix_now)
                    && e.health.available(now)
                    && descriptor
                        .intro_points
                        .iter()
                        .all(|i| i.node_id != e.node_id())
            })
            .map(|e| e.node_id());
        let Some(point) = point else {
            return;
        };
        let relays = self.config.path_relays.saturating_sub(1).max(1);
        let Some(path) = self.path_ending_at(point, relays) else {
            return;
        };
        let mut hops: Vec<NodeId, { crate::cgo::MAX_HOPS }> = path.hops().iter().copied().collect();
        if hops.push(service).is_err() {
            return;
        }
        let Some(path) = Path::from_hops(&hops) else {
            return;
        };
        let Some(keys) = self.onion_keys_of(&path, &[(service, descriptor.onion_key)]) else {
            return;
        };
        self.circuits.avoided(service);
        let Ok(circuit) =
            self.with_engine(|engine, ctx, _| engine.open_rendezvous(ctx, path, &keys))
        else {
            return;
        };
        let mut cookie = [0u8; crate::cell::COOKIE_LEN];
        self.rng.fill_bytes(&mut cookie);
        let _ = self.senders.attempts.push(Attempt {
            service,
            circuit,
            rendezvous: point,
            cookie,
            stage: Stage::Building,
            intro_index: 0,
            intro_circuit: None,
            introduction: Vec::new(),
        });
    }

    /// Moves every rendezvous on as far as it can go: run from `pump`.
    pub(crate) fn run_rendezvous(&mut self) {
        if !ENABLED {
            return;
        }
        let mut index = 0;
        while let Some(attempt) = self.senders.attempts.get(index).cloned() {
            if self.step_attempt(attempt) {
                index = index.saturating_add(1);
            } else {
                self.abandon_attempt(index);
            }
        }
    }

    /// One attempt's next step; `false` if it failed.
    fn step_attempt(&mut self, attempt: Attempt) -> bool {
        let Some(circuit) = self.engine.client(attempt.circuit) else {
            return false;
        };
        if circuit.is_ready() {
            // The service answered: the attempt is done, the circuit is
            // an ordinary one now.
            if let Some(intro) = attempt.intro_circuit {
                self.close_own_circuit(intro);
            }
            self.senders
                .attempts
                .retain(|a| a.circuit != attempt.circuit);
            return true;
        }
        let at_point = circuit.layers.len().saturating_add(1) == circuit.path.hops().len();
        let point_hop = circuit.layers.len().saturating_sub(1);
        match attempt.stage {
            Stage::Building if at_point => {
                let sent = self.with_engine(|engine, ctx, _| {
                    engine.send_relay(
                        ctx,
                        attempt.circuit,
                        point_hop,
                        RelayCommand::EstablishRendezvous,
                        &attempt.cookie,
                    )
                });
                if sent.is_ok() {
                    self.set_stage(attempt.circuit, Stage::Establishing);
                }
                true
            }
            Stage::Introducing => self.send_introduction(attempt),
            Stage::Introduced | Stage::Waiting => {
                // A lost introduction circuit before the point answered:
                // try the next introduction point.
                let lost = attempt
                    .intro_circuit
                    .is_none_or(|c| self.engine.client(c).is_none());
                if attempt.stage == Stage::Introduced && lost {
                    return self.next_intro_point(attempt.circuit);
                }
                true
            }
            _ => true,
        }
    }

    fn set_stage(&mut self, circuit: CircuitHandle, stage: Stage) {
        if let Some(a) = self
            .senders
            .attempts
            .iter_mut()
            .find(|a| a.circuit == circuit)
        {
            a.stage = stage;
        }
    }

    /// Builds the introduction circuit, and sends `INTRODUCE1` once it is
    /// ready. `false` if no introduction point is left to try.
    fn send_introduction(&mut self, attempt: Attempt) -> bool {
        let Some(descriptor) = self.senders.service(&attempt.service).cloned() else {
            return false;
        };
        let Some(point) = descriptor.intro_points.get(attempt.intro_index).cloned() else {
            return false;
        };
        match attempt.intro_circuit.and_then(|c| self.engine.client(c)) {
            Some(c) if c.is_ready() => {
                let mut data: Vec<u8, RELAY_DATA_LEN> = Vec::new();
                let built = data.extend_from_slice(&attempt.service.0).is_ok()
                    && data.extend_from_slice(&attempt.introduction).is_ok();
                let last = c.path.hops().len().saturating_sub(1);
                let intro = c.handle;
                let sent = built
                    && self
                        .with_engine(|engine, ctx, _| {
                            engine.send_relay(ctx, intro, last, RelayCommand::Introduce1, &data)
                        })
                        .is_ok();
                if sent {
                    self.set_stage(attempt.circuit, Stage::Introduced);
                }
                true
            }
            Some(_) => true,
            None if attempt.intro_circuit.is_some() => self.next_intro_point(attempt.circuit),
            None => {
                let relays = self.config.path_relays.saturating_sub(1).max(1);
                let Some(path) = self.path_ending_at(point.node_id, relays) else {
                    return true;
                };
                let Some(keys) = self.onion_keys_of(&path, &[(point.node_id, point.onion_key)])
                else {
                    return self.next_intro_point(attempt.circuit);
                };
                let opened = self.with_engine(|engine, ctx, _| engine.open(ctx, path, &keys));
                if let (Ok(intro), Some(a)) = (
                    opened,
                    self.senders
                        .attempts
                        .iter_mut()
                        .find(|a| a.circuit == attempt.circuit),
                ) {
                    a.intro_circuit = Some(intro);
                }
                true
            }
        }
    }

    /// Moves attempt `circuit` to the service's next introduction point;
    /// `false` if there is none.
    fn next_intro_point(&mut self, circuit: CircuitHandle) -> bool {
        let Some(a) = self
            .senders
            .attempts
            .iter_mut()
            .find(|a| a.circuit == circuit)
        else {
            return false;
        };
        let old = a.intro_circuit.take();
        a.intro_index = a.intro_index.saturating_add(1);
        a.stage = Stage::Introducing;
        let left = a.intro_index < MAX_INTRO_POINTS;
        if let Some(old) = old {
            self.close_own_circuit(old);
        }
        left
    }

    /// Gives up attempt `index`: its circuits close, and the messages
    /// waiting for the service get a new attempt after the usual pause.
    fn abandon_attempt(&mut self, index: usize) {
        if index >= self.senders.attempts.len() {
            return;
        }
        let attempt = self.senders.attempts.swap_remove(index);
        for circuit in [Some(attempt.circuit), attempt.intro_circuit]
            .into_iter()
            .flatten()
        {
            if self.engine.client(circuit).is_some() {
                self.close_own_circuit(circuit);
            }
        }
    }

    /// A relay message for the sender's side of a rendezvous, from hop `hop`
    /// of own circuit `circuit`. `false` if it is not one.
    pub(crate) fn on_rendezvous_answer(
        &mut self,
        circuit: CircuitHandle,
        command: RelayCommand,
        data: &[u8],
    ) -> bool {
        if !ENABLED {
            return false;
        }
        let status = data.first().copied();
        let by_circuit = self
            .senders
            .attempts
            .iter()
            .position(|a| a.circuit == circuit);
        let by_intro = self
            .senders
            .attempts
            .iter()
            .position(|a| a.intro_circuit == Some(circuit));
        match (command, by_circuit, by_intro) {
            (RelayCommand::RendezvousEstablished, Some(index), _) => {
                if status != Some(STATUS_OK) {
                    self.abandon_attempt(index);
                    return true;
                }
                self.prepare_introduction(index);
                true
            }
            (RelayCommand::IntroduceAck, _, Some(index)) => {
                let Some(attempt) = self.senders.attempts.get(index).cloned() else {
                    return true;
                };
                if status == Some(STATUS_OK) {
                    self.set_stage(attempt.circuit, Stage::Waiting);
                    if let Some(intro) = attempt.intro_circuit {
                        self.close_own_circuit(intro);
                    }
                } else if !self.next_intro_point(attempt.circuit) {
                    if let Some(index) = self
                        .senders
                        .attempts
                        .iter()
                        .position(|a| a.circuit == attempt.circuit)
                    {
                        self.abandon_attempt(index);
                    }
                }
                true
            }
            _ => false,
        }
    }

    /// The cookie waits at the rendezvous point: write the introduction.
    fn prepare_introduction(&mut self, index: usize) {
        let Some(attempt) = self.senders.attempts.get(index).cloned() else {
            return;
        };
        let table = self.discovery.table();
        let Some(point) = table.get(&attempt.rendezvous) else {
            self.abandon_attempt(index);
            return;
        };
        let payload = IntroductionPayload {
            cookie: attempt.cookie,
            rendezvous: attempt.rendezvous,
            onion_key: point.descriptor.repr().onion_key,
            addresses: super::circuit_ctx::extend_addresses_of(point),
        };
        let mut plain = [0u8; MAX_INTRODUCTION_PAYLOAD];
        let mut out = [0u8; MAX_INTRODUCTION];
        let written = payload.emit(&mut plain).and_then(|len| plain.get(..len));
        let introduction = written.and_then(|plain| {
            let len = self
                .with_engine(|engine, ctx, _| {
                    engine.start_introduction(ctx, attempt.circuit, plain, &mut out)
                })
                .ok()?;
            Vec::from_slice(out.get(..len)?).ok()
        });
        match (introduction, self.senders.attempts.get_mut(index)) {
            (Some(introduction), Some(a)) => {
                a.introduction = introduction;
                a.stage = Stage::Introducing;
            }
            _ => self.abandon_attempt(index),
        }
    }
}
