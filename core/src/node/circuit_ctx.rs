//! What the circuit engine sees of the node: its links, CSPRNG, clock and
//! dialer. Circuit lifecycle events are handled here on the spot (they only
//! touch the message pool, the node table and the event queue); relay
//! messages that need an answer through the engine are kept for the node
//! to handle once the engine call returns.

use chacha20::ChaCha20Rng;
use heapless::Vec;
use rand_core::Rng;

use crate::capacity::DequeStore;
use crate::cell::{CellCommand, DestroyReason, ExtendAddresses, MAX_EXTEND_ADDRESSES};
use crate::circuit::{CircuitContext, CircuitEvent, ReadyEphemerals};
use crate::identity::{Address, NodeId};
use crate::link::{Cell, LinkPhase, LinkRole};
use crate::message::MessagePool;
use crate::noise::StaticKeypair;
use crate::time::Instant;

use super::dial::Dialer;
use super::{Event, LinkId, LinkSlot, NodeStats, Profile};
use crate::discovery::{NetworkPrefix, NodeTable};

/// Relay messages one engine call can hand back: one per cell.
pub(crate) type Deliveries = Vec<CircuitEvent, 2>;

/// The established link to `peer` under our identity, and our role on it.
/// Anonymous links are not: they carry only circuits this node originates.
pub(crate) fn link_to<P: Profile>(
    links: &[LinkSlot<P>],
    peer: &NodeId,
) -> Option<(LinkId, LinkRole)> {
    established_to(links, peer, false)
}

/// The established anonymous link we dialled to `peer`: the only kind a
/// circuit this node originates starts over (relay spec §11).
pub(crate) fn anonymous_link_to<P: Profile>(
    links: &[LinkSlot<P>],
    peer: &NodeId,
) -> Option<(LinkId, LinkRole)> {
    established_to(links, peer, true)
}

/// The link our own circuits to first hop `peer` start over: the
/// anonymous one, unless `config` turned those off.
pub(crate) fn first_hop_link<P: Profile>(
    links: &[LinkSlot<P>],
    config: &super::NodeConfig,
    peer: &NodeId,
) -> Option<(LinkId, LinkRole)> {
    established_to(links, peer, config.anonymous_first_hops)
}

fn established_to<P: Profile>(
    links: &[LinkSlot<P>],
    peer: &NodeId,
    anonymous: bool,
) -> Option<(LinkId, LinkRole)> {
    links.iter().enumerate().find_map(|(i, slot)| {
        let session = slot.session.as_ref()?;
        let index = u16::try_from(i).ok()?;
        (slot.anonymous == anonymous
            && !(super::introducers::INTRODUCERS && slot.dial_back)
            && session.phase() == LinkPhase::Established
            && session.peer().as_ref() == Some(peer))
        .then(|| (LinkId::new(index, slot.generation), session.role()))
    })
}

/// The slot of a live link.
pub(crate) fn slot_of<P: Profile>(
    links: &mut [LinkSlot<P>],
    link: LinkId,
) -> Option<&mut LinkSlot<P>> {
    let slot = links.get_mut(usize::from(link.index()))?;
    (slot.generation == link.generation() && slot.session.is_some()).then_some(slot)
}

/// Free room in an established link's send queue (0 if not established).
pub(crate) fn queue_room<P: Profile>(links: &mut [LinkSlot<P>], link: LinkId) -> usize {
    slot_of(links, link)
        .and_then(|s| s.session.as_ref())
        .filter(|s| s.phase() == LinkPhase::Established)
        .map_or(0, |s| s.queue_room())
}

/// Cells of every link's send queue that `RELAY` cells may not take, kept
/// for control cells (`DESTROY`, `CREATE`, `CREATED`): an eighth of the
/// queue, 1 to 4 cells. However full relayed traffic keeps a link, the
/// cell that tears a circuit down still fits.
pub(crate) fn control_reserve<P: Profile>() -> usize {
    (<P::LinkSendQueue as DequeStore<Cell>>::CAPACITY / 8).clamp(1, 4)
}

/// Room in `link`'s send queue for one more cell with `command`.
pub(crate) fn room_for<P: Profile>(
    links: &mut [LinkSlot<P>],
    link: LinkId,
    command: Option<CellCommand>,
) -> bool {
    let room = queue_room(links, link);
    if command.is_some_and(CellCommand::is_relay) {
        room > control_reserve::<P>()
    } else {
        room > 0
    }
}

pub(crate) struct NodeCtx<'a, P: Profile> {
    pub(crate) links: &'a mut [LinkSlot<P>],
    pub(crate) rng: &'a mut ChaCha20Rng,
    pub(crate) now: Instant,
    pub(crate) events: &'a mut P::Events,
    pub(crate) stats: &'a mut NodeStats,
    pub(crate) messages: &'a mut MessagePool<P::Messages, P::MessageBuffer>,
    pub(crate) table: &'a mut NodeTable<P::Peers>,
    pub(crate) dialer: &'a mut Dialer,
    pub(crate) deliveries: &'a mut Deliveries,
    pub(crate) config: &'a super::NodeConfig,
    pub(crate) circuits: &'a mut super::circuits::CircuitState,
    /// Where the relays of rendezvous this node takes part in listen, for
    /// `EXTEND`s to those it does not hold descriptors of.
    pub(crate) senders: &'a super::rendezvous::Senders,
    pub(crate) services: &'a super::service::Services,
    pub(crate) ready_ephemerals: &'a mut ReadyEphemerals<P::ReadyEphemerals>,
}

/// A guard whose circuits succeed less often than this, in percent, is
/// reported ([`Event::GuardUnreliable`]); Tor's path-bias warning uses 70%.
pub(crate) const GUARD_SUCCESS_WARN_PERCENT: u32 = 70;
/// Circuits through a guard (decayed) before its success rate counts.
pub(crate) const GUARD_SUCCESS_MIN_TRIED: u32 = 10;

/// The addresses an `EXTEND` to the node of `entry` carries: the first
/// [`MAX_EXTEND_ADDRESSES`] its descriptor lists (relay spec §6.1).
pub(crate) fn extend_addresses_of(entry: &crate::discovery::PeerEntry) -> ExtendAddresses {
    entry
        .descriptor
        .repr()
        .addresses
        .iter()
        .copied()
        .take(MAX_EXTEND_ADDRESSES)
        .collect()
}

impl<P: Profile> NodeCtx<'_, P> {
    fn push_event(&mut self, event: Event) {
        if self.events.view_mut().push_back(event).is_err() {
            self.stats.events_dropped = self.stats.events_dropped.saturating_add(1);
        }
    }

    /// After a failed build: warns if its first hop is a guard whose
    /// circuits now succeed less than [`GUARD_SUCCESS_WARN_PERCENT`] of
    /// the time.
    fn warn_if_guard_unreliable(&mut self, path: &crate::discovery::Path) {
        let Some(first) = path.relays().first().copied() else {
            return;
        };
        if !self.circuits.guards.contains(&first) {
            return;
        }
        let rate = self
            .table
            .get(&first)
            .and_then(|e| e.health.success_percent(GUARD_SUCCESS_MIN_TRIED));
        if let Some(success_percent) = rate.filter(|r| *r < GUARD_SUCCESS_WARN_PERCENT) {
            self.push_event(Event::GuardUnreliable {
                guard: first,
                success_percent,
            });
        }
    }
}

impl<P: Profile> CircuitContext for NodeCtx<'_, P> {
    fn own_id(&self) -> NodeId {
        self.table.own_id()
    }

    fn link_to(&self, peer: &NodeId) -> Option<(LinkId, LinkRole)> {
        link_to(self.links, peer)
    }

    fn first_hop_link(&self, peer: &NodeId) -> Option<(LinkId, LinkRole)> {
        first_hop_link(self.links, self.config, peer)
    }

    fn accepts_create(&self, link: LinkId) -> bool {
        // Our anonymous links are client links: relaying over one would
        // make us a relay the peer can probe and extend through.
        self.links
            .get(usize::from(link.index()))
            .is_some_and(|s| s.generation == link.generation() && !s.anonymous)
    }

    fn role_on(&self, link: LinkId) -> Option<LinkRole> {
        let slot = self.links.get(usize::from(link.index()))?;
        let session = slot.session.as_ref()?;
        (slot.generation == link.generation() && session.phase() == LinkPhase::Established)
            .then(|| session.role())
    }

    fn send(&mut self, link: LinkId, cell: &Cell) -> bool {
        let sent = room_for(self.links, link, CellCommand::of(cell))
            && slot_of(self.links, link)
                .and_then(|s| s.session.as_mut())
                .is_some_and(|s| s.queue_cell(cell).is_ok());
        if !sent {
            let by = &mut self.stats.cells_dropped;
            by.link_queue_full = by.link_queue_full.saturating_add(1);
        }
        sent
    }

    fn rng(&mut self) -> &mut dyn Rng {
        self.rng
    }

    fn hop_ephemeral(&mut self) -> StaticKeypair {
        self.ready_ephemerals.take(self.rng)
    }

    fn event(&mut self, event: CircuitEvent) {
        match event {
            CircuitEvent::Ready {
                circuit,
                path,
                built_in,
            } => {
                self.stats.circuits_built = self.stats.circuits_built.saturating_add(1);
                // A rendezvous took the service's build as well as ours.
                if cfg!(feature = "learned-build-timeout") && !self.senders.is_rendezvous(circuit) {
                    self.circuits.build_times.record_built(built_in);
                }
                // Every relay of a working circuit did its part: earlier
                // failures pinned on it (perhaps by a lying hop) are
                // forgiven, so no relay is kept out of paths for good.
                for relay in path.relays() {
                    self.table.record_success(relay, self.now);
                    if let Some(health) = self.table.health_mut(relay) {
                        health.on_built(self.now);
                    }
                }
                if let Some(destination) = path.destination() {
                    self.push_event(Event::CircuitReady {
                        circuit,
                        destination,
                        built_in,
                    });
                }
            }
            CircuitEvent::Closed {
                circuit,
                path,
                reason,
                failed_hop,
            } => {
                let rng = &mut *self.rng;
                self.messages.circuit_closed(circuit, || {
                    let mut id = [0u8; crate::message::MESSAGE_ID_LEN];
                    rng.fill_bytes(&mut id);
                    crate::message::MessageId(id)
                });
                // Blame only what can be pinned: a build that could not
                // reach, or got no answer from, the hop being added. A
                // DESTROY's reason is whatever some hop wrote: a lying hop
                // can pin a failure on the one relay being added (which a
                // working circuit or link through it forgives), never on the
                // whole path. Garbled cells (Unrecognised, Protocol) and
                // circuits lost after they were ready blame nobody; a dead
                // link to the first hop is counted by the link.
                //
                // A circuit lost after it was ready counts against each of
                // its relays (`RelayHealth::on_lost`, no back-off), and the
                // replacement avoids them all once; a relay the client's
                // probes found silent was blamed before it was torn down.
                //
                // A destination that could not be reached is not marked
                // failing in the table: a busy one refuses links while its
                // slots are taken, and a failing entry is the first any
                // newcomer displaces, which would strand the messages
                // waiting for it (its health record still backs it off as
                // a relay).
                let build_failure =
                    matches!(reason, DestroyReason::ExtendFailed | DestroyReason::Timeout);
                let now = self.now;
                match (failed_hop, path.destination()) {
                    (Some(hop), destination) if build_failure => {
                        if destination != Some(hop) {
                            self.table.record_failure(&hop);
                            // The last relay failed: for a destination
                            // reached through introducers, one of them,
                            // which the node table may not hold (then
                            // nothing records the failure, and the next
                            // draw could pick it again and again). The next
                            // path avoids it once, as after a lost circuit.
                            if let Some(dest) = destination.filter(|_| {
                                super::introducers::INTRODUCERS
                                    && path.relays().last() == Some(&hop)
                            }) {
                                self.circuits.avoid_next(dest, &[hop]);
                            }
                        } else if let Some(last) = path.relays().last() {
                            // The last relay could not reach the
                            // destination: for one reached through
                            // introducers, most likely an introducer it has
                            // since replaced (our copy of its descriptor is
                            // older than its own). The next path ends at
                            // another one, if it lists another.
                            self.circuits.avoid_next(hop, &[*last]);
                        }
                        // At the last relay or beyond, for a destination
                        // reached through introducers: our copy of its
                        // descriptor may list introducers it no longer has.
                        if let Some(dest) = destination.filter(|d| {
                            path.relays().last().is_some_and(|l| *l == hop || *d == hop)
                                && self
                                    .table
                                    .get(d)
                                    .is_some_and(|e| e.descriptor.is_introduced())
                        }) {
                            self.circuits.lookups.want(dest);
                        }
                        if let Some(health) = self.table.health_mut(&hop) {
                            let _ = health.on_failed(now, &mut *self.rng);
                        }
                        self.warn_if_guard_unreliable(&path);
                    }
                    (None, Some(destination)) if reason != DestroyReason::Requested => {
                        for relay in path.relays() {
                            if let Some(health) = self.table.health_mut(relay) {
                                health.on_lost(now);
                            }
                        }
                        self.circuits.circuit_lost(destination, now, path.relays());
                    }
                    _ => {}
                }
                self.push_event(Event::CircuitClosed {
                    circuit,
                    destination: path.destination(),
                    reason,
                });
            }
            delivery => {
                if self.deliveries.push(delivery).is_err() {
                    let by = &mut self.stats.cells_dropped;
                    by.delivery_queue_full = by.delivery_queue_full.saturating_add(1);
                }
            }
        }
    }

    fn now(&self) -> Instant {
        self.now
    }

    fn network_of(&self, link: LinkId) -> Option<NetworkPrefix> {
        let slot = self.links.get(usize::from(link.index()))?;
        (slot.generation == link.generation())
            .then_some(slot.prefix)
            .flatten()
    }

    fn take_create_token(&mut self, link: LinkId) -> bool {
        let (limit, now) = (self.config.creates_per_link, self.now);
        slot_of(self.links, link).is_some_and(|s| s.creates.take(limit, now))
    }

    fn dial_for_extend(&mut self, peer: &NodeId, given: &[Address]) -> bool {
        // The target's signed descriptor, when this node holds it, comes
        // first; the client's addresses let it reach a node it has never
        // heard of (relay spec §6.1). Either way only addresses it may dial
        // for a stranger, and the link handshake checks the target's id.
        let known = self
            .table
            .get(peer)
            .map(|entry| entry.descriptor.repr().addresses.clone())
            .unwrap_or_default();
        let config = self.config;
        let addresses = known
            .into_iter()
            .chain(given.iter().copied())
            .filter(move |a| config.may_dial_for_strangers(a));
        let policy = super::dial::DialPolicy::for_peer(self.config, self.table, peer);
        self.dialer
            .request(self.now, *peer, false, addresses, policy)
    }

    fn extend_addresses(&self, peer: &NodeId) -> ExtendAddresses {
        if let Some(entry) = self.table.get(peer) {
            return extend_addresses_of(entry);
        }
        // A service's introduction point, known from its descriptor, or the
        // rendezvous point a sender named (relay spec §13).
        if let Some(addresses) = self
            .senders
            .intro_addresses(peer)
            .or_else(|| self.services.rendezvous_addresses(peer))
        {
            return addresses;
        }
        // An introducer this node knows only from the descriptor of the
        // node it introduces (relay spec §7).
        if !super::introducers::INTRODUCERS {
            return ExtendAddresses::new();
        }
        self.table
            .entries()
            .iter()
            .filter(|e| e.descriptor.is_introduced())
            .find_map(|e| e.descriptor.introducers().find(|i| i.node_id == *peer))
            .map(|i| i.address)
            .into_iter()
            .collect()
    }
}
