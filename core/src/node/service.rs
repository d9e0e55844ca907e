//! Offering a rendezvous service (relay spec §13), the service's side.
//!
//! A node given service keys ([`Node::offer_service`]) keeps circuits to
//! [`INTRO_POINTS`] introduction points, in distinct networks, and signs a
//! descriptor listing them ([`Node::service_descriptor`]). The descriptor
//! names the service by a key of its own, unlinkable to the node's id, and
//! the introduction points know the service only by a circuit whose far
//! end they cannot see.
//!
//! An introduction (`INTRODUCE2`) is answered by building a circuit of the
//! service's own to the rendezvous point it names, giving that circuit the
//! service's layer of the sender's circuit, and sending `RENDEZVOUS1`.
//! Messages from the sender then arrive as from any circuit this node is
//! the last hop of, and replies go back the same way.

// Without the feature the tables hold nothing and the paths that use them
// are compiled out (the firmware image's flash): what is left is unused.
#![cfg_attr(not(feature = "rendezvous"), allow(dead_code, unused_imports))]

use heapless::Vec;
use rand_core::Rng;
use zeroize::Zeroizing;

use crate::cell::{
    Cookie, ExtendAddresses, IntroductionPayload, RelayCommand, COOKIE_LEN,
    MAX_INTRODUCTION_PAYLOAD, RENDEZVOUS_HANDSHAKE_LEN,
};
use crate::cgo::RelayLayer;
use crate::circuit::{respond_introduction, CircuitHandle, MAX_SERVICE_HOPS, STATUS_OK};
use crate::discovery::{NetworkPrefix, Tables};
use crate::identity::{IntroPoint, NodeId, ServiceDescriptor, ServiceDescriptorError, ServiceKeys};
use crate::time::{Duration, Instant};

use super::{Node, Profile};

type Prefixes = Vec<NetworkPrefix, { crate::identity::MAX_ADDRESSES + 1 }>;

const ENABLED: bool = cfg!(feature = "rendezvous");
/// Introduction points a service keeps (Tor keeps three; two in distinct
/// networks survive the loss of one while its replacement is set up).
pub const INTRO_POINTS: usize = if ENABLED { 2 } else { 0 };
/// Introduction circuits carry nothing between introductions; a cell this
/// often keeps the introduction point from closing them as idle.
pub const INTRO_KEEPALIVE: Duration = Duration::from_secs(5 * 60);
/// Cookies of answered introductions remembered, so that a replayed
/// introduction costs no second circuit.
const SEEN_COOKIES: usize = if ENABLED { 16 } else { 0 };
/// Services a node offers.
const SERVICE_SLOTS: usize = if ENABLED { 1 } else { 0 };
/// Circuits built in a row to a listed introduction point that lost its
/// circuit before the point is replaced (Tor's service retries an
/// introduction point three times too). Rebuilding to the same point keeps
/// the descriptor senders hold valid: a service that was away for a while
/// (suspended, its links lost) comes back at the points it published.
const INTRO_REBUILDS: u8 = 3;
/// Circuits a service builds to one rendezvous point before it gives the
/// introduction up (the sender tries again with a new one).
const JOIN_BUILDS: u8 = 2;

#[derive(Debug, Clone)]
struct IntroSlot {
    point: IntroPoint,
    circuit: CircuitHandle,
    /// `ESTABLISH_INTRO` sent.
    requested: bool,
    /// The point accepted, over the current circuit.
    established: bool,
    /// In the descriptor: the point accepted once, and has not been
    /// given up since (its circuit may be being rebuilt).
    listed: bool,
    /// Circuits built to the point since it last accepted.
    rebuilds: u8,
    /// When its circuit was found gone, while no new one could be opened
    /// (no link to a first hop yet, say).
    lost_since: Option<Instant>,
    last_sent: Instant,
}

#[derive(Debug, Clone)]
struct PendingJoin {
    /// The circuit to the rendezvous point, once a path was drawn (its
    /// first hop may need dialling first).
    circuit: Option<CircuitHandle>,
    /// When the introduction came: a join not under way within a build
    /// timeout is dropped, as the sender will have tried again.
    since: Instant,
    /// Circuits built to the rendezvous point so far.
    builds: u8,
    rendezvous_key: [u8; 32],
    layer: RelayLayer,
    rendezvous1: [u8; COOKIE_LEN + RENDEZVOUS_HANDSHAKE_LEN],
    rendezvous: NodeId,
    addresses: ExtendAddresses,
}

/// A service this node offers.
#[derive(Debug, Clone, Default)]
pub(crate) struct Services {
    /// The service's keys: none, or one (no room at all without the
    /// feature, so the firmware image carries no key storage).
    keys: Vec<ServiceKeys, SERVICE_SLOTS>,
    intros: Vec<IntroSlot, INTRO_POINTS>,
    joins: Vec<PendingJoin, MAX_SERVICE_HOPS>,
    seen: Vec<Cookie, SEEN_COOKIES>,
    /// When the established introduction points last changed (unix
    /// seconds): the descriptor's `issued_at`.
    issued_at: u64,
}

impl Services {
    /// Whether own circuit `circuit` is one the service keeps open.
    pub(crate) fn keeps(&self, circuit: CircuitHandle) -> bool {
        ENABLED && self.intros.iter().any(|s| s.circuit == circuit)
    }

    /// Where a rendezvous point the service is building to listens.
    pub(crate) fn rendezvous_addresses(&self, relay: &NodeId) -> Option<ExtendAddresses> {
        if !ENABLED {
            return None;
        }
        self.joins
            .iter()
            .find(|j| j.rendezvous == *relay)
            .map(|j| j.addresses.clone())
    }
}

/// Why [`Node::service_descriptor`] wrote nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceDescriptorUnavailable {
    /// No service is offered.
    NoService,
    /// No introduction point is established yet: wait for the node to set
    /// them up (it needs links to a few relays).
    NoIntroPoints,
    /// Signing failed: the buffer is too small.
    Emit(ServiceDescriptorError),
}

impl core::fmt::Display for ServiceDescriptorUnavailable {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ServiceDescriptorUnavailable::NoService => {
                write!(f, "this node offers no service; call offer_service first")
            }
            ServiceDescriptorUnavailable::NoIntroPoints => write!(
                f,
                "no introduction point is established yet; wait until the node has links"
            ),
            ServiceDescriptorUnavailable::Emit(e) => write!(f, "service descriptor: {e}"),
        }
    }
}

impl core::error::Error for ServiceDescriptorUnavailable {}

/// Bytes of rendezvous state every node carries whatever its profile
/// (docs/memory.md): the engine's role tables, the sender's and the
/// service's side. A few dozen without the `rendezvous` feature.
pub const fn rendezvous_state_size() -> usize {
    core::mem::size_of::<crate::circuit::RendezvousTables>()
        .saturating_add(core::mem::size_of::<super::rendezvous::Senders>())
        .saturating_add(core::mem::size_of::<Services>())
}

impl<P: Profile> Node<P> {
    /// Offers a rendezvous service under `keys` (relay spec §13): the node
    /// sets up introduction points and answers introductions. Returns the
    /// service's id, which senders send to once they have learnt its
    /// descriptor. Replaces a service offered before.
    pub fn offer_service(&mut self, keys: ServiceKeys) -> NodeId {
        let id = keys.service_id();
        let old: Vec<CircuitHandle, INTRO_POINTS> =
            self.services.intros.iter().map(|s| s.circuit).collect();
        for circuit in old {
            self.close_own_circuit(circuit);
        }
        self.services = Services::default();
        let _ = self.services.keys.push(keys);
        self.pump();
        id
    }

    /// The service's id, if one is offered.
    pub fn service_id(&self) -> Option<NodeId> {
        self.services.keys.first().map(ServiceKeys::service_id)
    }

    /// Introduction points the offered service's descriptor lists: those
    /// that accepted it, including any whose circuit is being rebuilt.
    pub fn service_intro_points(&self) -> impl Iterator<Item = &IntroPoint> {
        self.services
            .intros
            .iter()
            .filter(|s| s.listed)
            .map(|s| &s.point)
    }

    /// Writes the offered service's signed descriptor, listing its
    /// established introduction points, into `out`; returns its length.
    /// It changes when an introduction point is replaced: hand senders the
    /// new one ([`LearnService`](super::LearnService)).
    pub fn service_descriptor(
        &self,
        out: &mut [u8],
    ) -> Result<usize, ServiceDescriptorUnavailable> {
        let keys = self
            .services
            .keys
            .first()
            .ok_or(ServiceDescriptorUnavailable::NoService)?;
        let intro_points: Vec<IntroPoint, { crate::identity::MAX_INTRO_POINTS }> =
            self.service_intro_points().cloned().collect();
        if intro_points.is_empty() {
            return Err(ServiceDescriptorUnavailable::NoIntroPoints);
        }
        let descriptor = ServiceDescriptor {
            service_key: keys.service_key(),
            onion_key: keys.onion_public(),
            issued_at: self.services.issued_at,
            intro_points,
        };
        descriptor
            .emit_signed(keys, out)
            .map_err(ServiceDescriptorUnavailable::Emit)
    }

    /// Keeps the offered service's introduction points, and finishes the
    /// rendezvous it is building to: run from `pump`.
    pub(crate) fn run_service(&mut self) {
        if !ENABLED || self.services.keys.is_empty() {
            return;
        }
        self.keep_intro_points();
        self.finish_joins();
    }

    fn keep_intro_points(&mut self) {
        self.rebuild_intro_circuits();
        // Points whose circuit is gone and not being rebuilt are replaced;
        // one waiting for a path is given a build timeout to find one.
        let (engine, now) = (&self.engine, self.now);
        let wait = self.config.circuit_build_timeout;
        let mut changed = false;
        self.services.intros.retain(|s| {
            let alive = engine.client(s.circuit).is_some();
            let waiting = s.rebuilds < INTRO_REBUILDS
                && s.lost_since
                    .is_some_and(|at| now.saturating_since(at) < wait);
            let kept = alive || (s.listed && waiting);
            changed |= !kept && s.listed;
            kept
        });
        if changed {
            self.reissue_descriptor();
        }
        if !self.services.intros.is_full() {
            self.add_intro_point();
        }
        let now = self.now;
        for index in 0..self.services.intros.len() {
            let Some(slot) = self.services.intros.get(index).cloned() else {
                continue;
            };
            let Some(c) = self.engine.client(slot.circuit) else {
                continue;
            };
            if !c.is_ready() {
                continue;
            }
            let last = c.path.hops().len().saturating_sub(1);
            // Signed only when it is sent: a claim for this point alone.
            let claim = match slot.requested {
                false => self
                    .services
                    .keys
                    .first()
                    .map(|keys| keys.intro_claim(&slot.point.node_id)),
                true => None,
            };
            let (command, data): (RelayCommand, &[u8]) = match (&claim, slot.requested) {
                (Some(claim), false) => (RelayCommand::EstablishIntro, claim),
                (_, true) if now.saturating_since(slot.last_sent) >= INTRO_KEEPALIVE => {
                    (RelayCommand::Padding, &[])
                }
                _ => continue,
            };
            let sent = self
                .with_engine(|engine, ctx, _| {
                    engine.send_relay(ctx, slot.circuit, last, command, data)
                })
                .is_ok();
            if let (true, Some(s)) = (sent, self.services.intros.get_mut(index)) {
                s.requested = true;
                s.last_sent = now;
            }
        }
    }

    /// Dates the descriptor anew: `issued_at` strictly increases, so that
    /// of two descriptors signed within one second a sender keeps the later
    /// (as the node's own descriptor does, relay spec §2).
    fn reissue_descriptor(&mut self) {
        let now = super::discovery::unix_now(&self.config, self.now);
        self.services.issued_at = now.max(self.services.issued_at.saturating_add(1));
    }

    /// Builds a new circuit to each listed introduction point whose
    /// circuit is gone, until the point has had [`INTRO_REBUILDS`]
    /// circuits since it last accepted; a point known to be down (kept
    /// out of paths by its health) is replaced at once.
    fn rebuild_intro_circuits(&mut self) {
        let now = self.now;
        for index in 0..self.services.intros.len() {
            let Some(slot) = self.services.intros.get(index).cloned() else {
                continue;
            };
            let lost = self.engine.client(slot.circuit).is_none();
            let down = self
                .discovery
                .table()
                .get(&slot.point.node_id)
                .is_none_or(|e| !e.health.available(now));
            if !lost || !slot.listed || slot.rebuilds >= INTRO_REBUILDS || down {
                continue;
            }
            let opened = self.open_intro_circuit(slot.point.node_id);
            if let Some(s) = self.services.intros.get_mut(index) {
                match opened {
                    Some(circuit) => {
                        s.circuit = circuit;
                        s.requested = false;
                        s.established = false;
                        s.rebuilds = s.rebuilds.saturating_add(1);
                        s.last_sent = now;
                        s.lost_since = None;
                    }
                    None => s.lost_since = s.lost_since.or(Some(now)),
                }
            }
        }
    }

    /// A circuit whose last hop is introduction point `point`.
    fn open_intro_circuit(&mut self, point: NodeId) -> Option<CircuitHandle> {
        let relays = self.config.path_relays.saturating_sub(1).max(1);
        let path = self.path_ending_at(point, relays)?;
        let keys = self.onion_keys_of(&path, &[])?;
        self.with_engine(|engine, ctx, _| engine.open(ctx, path, &keys))
            .ok()
    }

    /// Picks a relay for a new introduction point, in a network none of
    /// the others is in, and builds a circuit to it.
    fn add_intro_point(&mut self) {
        let unix_now = super::discovery::unix_now(&self.config, self.now);
        let (own, now) = (self.node_id(), self.now);
        let taken: Vec<(NodeId, Prefixes), INTRO_POINTS> = self
            .services
            .intros
            .iter()
            .map(|s| {
                let prefixes = self
                    .discovery
                    .table()
                    .get(&s.point.node_id)
                    .map(crate::discovery::prefixes)
                    .unwrap_or_default();
                (s.point.node_id, prefixes)
            })
            .collect();
        let choice = self
            .discovery
            .table()
            .draw(Tables::Both, &mut self.rng, |e| {
                let mine = crate::discovery::prefixes(e);
                e.node_id() != own
                    && e.is_path_relay(unix_now)
                    && e.health.available(now)
                    && taken
                        .iter()
                        .all(|(id, p)| *id != e.node_id() && !p.iter().any(|x| mine.contains(x)))
            })
            .map(|e| IntroPoint {
                node_id: e.node_id(),
                onion_key: e.descriptor.repr().onion_key,
                addresses: e
                    .descriptor
                    .repr()
                    .addresses
                    .iter()
                    .copied()
                    .take(4)
                    .collect(),
            });
        let Some(point) = choice else {
            return;
        };
        if let Some(circuit) = self.open_intro_circuit(point.node_id) {
            let _ = self.services.intros.push(IntroSlot {
                point,
                circuit,
                requested: false,
                established: false,
                listed: false,
                rebuilds: 0,
                lost_since: None,
                last_sent: now,
            });
        }
    }

    /// Builds circuits to the rendezvous points introductions named, and
    /// sends `RENDEZVOUS1` over each one that is ready, after giving it the
    /// service's layer; drops those that failed or waited too long.
    fn finish_joins(&mut self) {
        let mut index = 0;
        let give_up = self.config.circuit_build_timeout;
        while let Some(join) = self.services.joins.get(index).cloned() {
            let Some(circuit) = join.circuit else {
                if self.now.saturating_since(join.since) >= give_up {
                    self.services.joins.swap_remove(index);
                    continue;
                }
                let relays = self.config.path_relays.saturating_sub(1).max(1);
                let opened = self
                    .path_ending_at(join.rendezvous, relays)
                    .and_then(|path| {
                        let keys =
                            self.onion_keys_of(&path, &[(join.rendezvous, join.rendezvous_key)])?;
                        self.with_engine(|engine, ctx, _| engine.open(ctx, path, &keys))
                            .ok()
                    });
                if let (Some(opened), Some(j)) = (opened, self.services.joins.get_mut(index)) {
                    j.circuit = Some(opened);
                    j.builds = j.builds.saturating_add(1);
                }
                index = index.saturating_add(1);
                continue;
            };
            let state = self.engine.client(circuit).map(|c| c.is_ready());
            match state {
                // A failed circuit to the rendezvous point is built again,
                // once, over a new path, while the sender still waits.
                None if join.builds < JOIN_BUILDS
                    && self.now.saturating_since(join.since) < give_up =>
                {
                    if let Some(j) = self.services.joins.get_mut(index) {
                        j.circuit = None;
                    }
                }
                None => {
                    self.services.joins.swap_remove(index);
                }
                Some(false) => index = index.saturating_add(1),
                Some(true) => {
                    self.services.joins.swap_remove(index);
                    let attached = self.engine.attach_service_hop(circuit, join.layer);
                    let last = self
                        .engine
                        .client(circuit)
                        .map_or(0, |c| c.path.hops().len().saturating_sub(1));
                    let sent = attached.is_ok()
                        && self
                            .with_engine(|engine, ctx, _| {
                                engine.send_relay(
                                    ctx,
                                    circuit,
                                    last,
                                    RelayCommand::Rendezvous1,
                                    &join.rendezvous1,
                                )
                            })
                            .is_ok();
                    if !sent {
                        self.close_own_circuit(circuit);
                    }
                }
            }
        }
    }

    /// A relay message for the service, from the last hop of own circuit
    /// `circuit`. `false` if it is not one.
    pub(crate) fn on_service_message(
        &mut self,
        circuit: CircuitHandle,
        command: RelayCommand,
        data: &[u8],
    ) -> bool {
        if !ENABLED {
            return false;
        }
        let Some(index) = self
            .services
            .intros
            .iter()
            .position(|s| s.circuit == circuit)
        else {
            return false;
        };
        match command {
            RelayCommand::IntroEstablished => {
                let accepted = data.first() == Some(&STATUS_OK);
                let newly_listed = self.services.intros.get_mut(index).is_some_and(|slot| {
                    slot.established = accepted;
                    let newly = accepted && !slot.listed;
                    slot.listed |= accepted;
                    if accepted {
                        slot.rebuilds = 0;
                    } else {
                        // Refused (taken, or full): no use asking again;
                        // another point is picked.
                        slot.rebuilds = INTRO_REBUILDS;
                    }
                    newly
                });
                if newly_listed {
                    self.reissue_descriptor();
                }
                if !accepted {
                    self.close_own_circuit(circuit);
                }
                true
            }
            RelayCommand::Introduce2 => {
                self.answer_introduction(data);
                true
            }
            _ => false,
        }
    }

    /// Reads an introduction and starts the circuit to the rendezvous point
    /// it names. A forged, garbled or replayed one is dropped.
    fn answer_introduction(&mut self, introduction: &[u8]) {
        let Some(keys) = self.services.keys.first() else {
            return;
        };
        if self.services.joins.is_full() {
            return;
        }
        let mut ephemeral = Zeroizing::new([0u8; 32]);
        self.rng.fill_bytes(ephemeral.as_mut_slice());
        let mut plain = Zeroizing::new([0u8; crate::cell::RELAY_DATA_LEN]);
        let Ok((layer, answer, len)) = respond_introduction(
            keys.onion_keypair(),
            *ephemeral,
            introduction,
            plain.as_mut_slice(),
        ) else {
            return;
        };
        let Some(payload) = plain
            .get(..len.min(MAX_INTRODUCTION_PAYLOAD))
            .and_then(|p| IntroductionPayload::parse(p).ok())
        else {
            return;
        };
        if self.services.seen.contains(&payload.cookie) {
            return;
        }
        if self.services.seen.is_full() {
            self.services.seen.remove(0);
        }
        let _ = self.services.seen.push(payload.cookie);
        let mut rendezvous1 = [0u8; COOKIE_LEN + RENDEZVOUS_HANDSHAKE_LEN];
        let (cookie, rest) = rendezvous1.split_at_mut(COOKIE_LEN);
        cookie.copy_from_slice(&payload.cookie);
        rest.copy_from_slice(&answer);
        // The point is the sender's choice: known or not, the service
        // reaches it through relays of its own (`finish_joins`).
        let join = PendingJoin {
            circuit: None,
            since: self.now,
            builds: 0,
            rendezvous_key: payload.onion_key,
            layer,
            rendezvous1,
            rendezvous: payload.rendezvous,
            addresses: payload.addresses,
        };
        let _ = self.services.joins.push(join);
        self.finish_joins();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rendezvous state every node carries (docs/memory.md): fixed
    /// when the node is built, and nothing without the feature.
    #[test]
    fn the_rendezvous_state_is_fixed_and_bounded() {
        let engine = core::mem::size_of::<crate::circuit::RendezvousTables>();
        let senders = core::mem::size_of::<super::super::rendezvous::Senders>();
        let services = core::mem::size_of::<Services>();
        std::println!("engine {engine} B, sender {senders} B, service {services} B");
        assert_eq!(rendezvous_state_size(), engine + senders + services);
        if ENABLED {
            assert!(
                engine + senders + services <= 10_240,
                "{engine} {senders} {services}"
            );
        } else {
            assert!(
                engine + senders + services <= 256,
                "{engine} {senders} {services}"
            );
        }
    }
}
