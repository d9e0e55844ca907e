//! Looking up a node's current descriptor among peers (relay spec §2.3).
//!
//! A node reached through introducers re-signs its descriptor whenever an
//! introducer is replaced, and pushes it over its own links; gossip then
//! carries it on, slowly, and only into tables that already hold the node
//! or have room. A sender whose copy lists introducers that have all gone
//! can build no circuit to the node from it. So when a build to such a
//! destination fails at its last relay, the sender sends a `LOOKUP` relay
//! message to the middle relay of [`LOOKUP_FANOUT`] of its own circuits
//! (building one if it has none): the guard, which knows the sender, sees
//! a relay cell, and the middle relay, which sees what is looked up, does
//! not know who asks. A relay that holds a newer descriptor answers with
//! a `LOOKUP_ANSWER`; one that does not passes the request on once, as a
//! `DESCRIPTOR_REQUEST`, to all of its peers and relays their answer back.
//! Peers answer or pass on such requests the same way. The node's
//! introducers always hold its current descriptor (`circuits.rs` keeps it
//! in their tables), so the more of the network a lookup reaches, the
//! likelier it finds one of them or a node gossip reached.
//!
//! What it costs, and what bounds it: a lookup is at most
//! `LOOKUP_FANOUT × (1 + links of a middle relay)` cells in the whole
//! network; a sender looks a destination up at most once per
//! [`LOOKUP_INTERVAL`], and any destination at most once per
//! [`LOOKUP_SPACING`]; a relay passes on at most one request per
//! [`FORWARD_SPACING`] and remembers at most a few for
//! [`FORWARD_LIFETIME`]; and every `DESCRIPTOR_REQUEST` costs its sender a
//! token of the link's descriptor quota (`descriptor_cells.rs`), like a
//! descriptor, which the spacing keeps every honest link under
//! ([`FORWARD_SPACING`] has the sum).
//!
//! Part of the `introducers` feature: without it (`lookup_disabled.rs`)
//! requests are ignored, none are sent, and the node holds no lookup
//! state.

use heapless::Vec;

use crate::cell::{
    parse_descriptor_body, CellRepr, DescriptorRequest, RelayCommand, MAX_LOOKUP_HOPS,
    RELAY_DATA_LEN,
};
use crate::circuit::{CircuitEnd, CircuitHandle};
use crate::discovery::{Source, Tables};
use crate::identity::{verify_descriptor, NodeId, MAX_DESCRIPTOR_LEN};
use crate::link::{Cell, LinkPhase};
use crate::time::{Duration, Instant};

use super::circuits::Back;
use super::descriptor_cells::Arrival;
use super::discovery::Discovery;
use super::{LinkId, Node, Profile};

/// Circuits a node sends one lookup over (to each one's middle relay,
/// which passes it on to all its peers).
pub const LOOKUP_FANOUT: usize = 4;
/// A `LOOKUP` relay message's data: node id and known issue time.
const LOOKUP_LEN: usize = 32 + 8;
// A `LOOKUP_ANSWER` carries any descriptor in one relay message.
const _: () = assert!(MAX_DESCRIPTOR_LEN <= RELAY_DATA_LEN);
/// The least time between two lookups of one destination: a build to it
/// that fails again in the meantime would ask the same peers the same.
pub const LOOKUP_INTERVAL: Duration = Duration::from_secs(10);
/// How long a peer relays answers to a request it passed on.
pub const FORWARD_LIFETIME: Duration = Duration::from_secs(5);
/// The least time between two requests a relay passes on: bounds the
/// cells anyone's lookups make it send to others, and the answers they
/// bring back. What one peer sends over a link in 30 s (the default
/// `gossip_interval`) is then at most `30 / 3 = 10` requests, at most 10
/// answers (one per request this node sent it), and gossip's
/// `GOSSIP_FANOUT × GOSSIP_SAMPLE = 24` descriptors: 44, under the 48 a
/// peer's descriptor quota allows (`descriptor_cells.rs`), so nobody's
/// lookups, honest or not, can get an honest node's link struck.
pub const FORWARD_SPACING: Duration = Duration::from_secs(3);
/// The least time between two of a node's own lookups, of any
/// destinations: each may cost a circuit build and a few hundred cells
/// network-wide.
pub const LOOKUP_SPACING: Duration = Duration::from_secs(5);
/// Destinations waiting for a lookup, and remembered as looked up.
const LOOKED_UP: usize = 4;
/// Requests passed on whose answers are awaited.
const FORWARDED: usize = 8;

/// Who asked for a lookup this node passed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Asker {
    /// A peer, over this link (`DESCRIPTOR_REQUEST`).
    Link(LinkId),
    /// Somebody at the client end of a circuit this node relays (a
    /// `LOOKUP` relay message): it does not know who.
    Circuit(CircuitEnd),
}

/// A request this node passed on: who asked, for what, until when.
#[derive(Debug, Clone, Copy)]
struct Forwarded {
    node_id: NodeId,
    known_issued_at: u64,
    asker: Asker,
    until: Instant,
}

/// The node's lookup state: fixed-size, cleared of stale entries as it
/// is used.
#[derive(Debug, Default, Clone)]
pub(crate) struct Lookups {
    /// Destinations whose copy proved stale at their last relay.
    wanted: Vec<NodeId, LOOKED_UP>,
    /// When each destination was last looked up.
    asked: Vec<(NodeId, Instant), LOOKED_UP>,
    forwarded: Vec<Forwarded, FORWARDED>,
    last_forward: Option<Instant>,
    /// When this node last sent a lookup of its own.
    last_own: Option<Instant>,
}

impl Lookups {
    pub(crate) const fn new() -> Self {
        Lookups {
            wanted: Vec::new(),
            asked: Vec::new(),
            forwarded: Vec::new(),
            last_forward: None,
            last_own: None,
        }
    }

    /// A build to `dest`, reached through introducers, failed at its last
    /// relay: look it up at the next pump. (Full: the others first.)
    pub(crate) fn want(&mut self, dest: NodeId) {
        if !self.wanted.contains(&dest) {
            let _ = self.wanted.push(dest);
        }
    }

    /// Whether a lookup of `dest` waits for the next pump.
    #[cfg(test)]
    pub(crate) fn is_wanted(&self, dest: &NodeId) -> bool {
        self.wanted.contains(dest)
    }

    /// Whether `dest` may be looked up at `now`; records it if so.
    fn may_ask(&mut self, dest: NodeId, now: Instant) -> bool {
        if let Some(at) = self.asked.iter_mut().find(|(d, _)| *d == dest) {
            if now.saturating_since(at.1) < LOOKUP_INTERVAL {
                return false;
            }
            at.1 = now;
            return true;
        }
        if self.asked.is_full() {
            // The lookup asked longest ago gives way.
            if let Some(oldest) = self
                .asked
                .iter()
                .enumerate()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(i, _)| i)
            {
                self.asked.swap_remove(oldest);
            }
        }
        let _ = self.asked.push((dest, now));
        true
    }
}

/// Bytes of lookup state every node carries whatever its profile
/// (docs/memory.md).
pub const fn lookup_state_size() -> usize {
    core::mem::size_of::<Lookups>()
}

impl<P: Profile> Node<P> {
    /// Sends the lookups builds asked for since the last pump, each as a
    /// `LOOKUP` relay message to the middle relay of up to
    /// [`LOOKUP_FANOUT`] of this node's ready circuits (three relays or
    /// more, distinct middles): that relay learns what is looked up but
    /// not who asks, and the guard, which knows who, sees only a relay
    /// cell. Without such a circuit the lookup waits.
    pub(crate) fn run_lookups(&mut self) {
        let now = self.now;
        self.circuits.lookups.forwarded.retain(|f| f.until > now);
        let spaced =
            |at: Option<Instant>| at.is_none_or(|at| now.saturating_since(at) >= LOOKUP_SPACING);
        // One lookup per pump at most; the rest wait their turn.
        while spaced(self.circuits.lookups.last_own) {
            let Some(dest) = self.circuits.lookups.wanted.last().copied() else {
                break;
            };
            let circuits = self.lookup_circuits(dest);
            if circuits.is_empty() {
                self.open_lookup_circuit(dest);
                break;
            }
            self.circuits.lookups.wanted.pop();
            if !self.circuits.lookups.may_ask(dest, now) {
                continue;
            }
            self.circuits.lookups.last_own = Some(now);
            let known_issued_at = self
                .discovery
                .table()
                .get(&dest)
                .map_or(0, |e| e.descriptor.repr().issued_at);
            let mut data = [0u8; LOOKUP_LEN];
            let (id, issued) = data.split_at_mut(32);
            id.copy_from_slice(&dest.0);
            issued.copy_from_slice(&known_issued_at.to_be_bytes());
            for circuit in circuits {
                if self.send_back(Back::Own(circuit, 1), RelayCommand::Lookup, &data) {
                    self.stats.lookups_sent = self.stats.lookups_sent.saturating_add(1);
                }
            }
        }
    }

    /// Up to [`LOOKUP_FANOUT`] ready circuits of three relays or more, with
    /// distinct middle relays, none of them `dest` (whose lookup it is),
    /// drawn from a random start.
    fn lookup_circuits(&mut self, dest: NodeId) -> Vec<CircuitHandle, LOOKUP_FANOUT> {
        let usable = |c: &crate::circuit::ClientCircuit| {
            c.is_ready()
                && c.path.relays().len() >= 3
                && c.path.relays().get(1).is_some_and(|m| *m != dest)
        };
        let count = self.engine.clients().filter(|c| usable(c)).count();
        let start = crate::discovery::random_index(&mut self.rng, count).unwrap_or(0);
        let mut chosen: Vec<CircuitHandle, LOOKUP_FANOUT> = Vec::new();
        let mut middles: Vec<NodeId, LOOKUP_FANOUT> = Vec::new();
        // From `start` to the end, then from the first to `start`.
        for from_start in [true, false] {
            let circuits = self.engine.clients().filter(|c| usable(c)).enumerate();
            for (index, c) in circuits {
                let Some(middle) = c.path.relays().get(1).copied() else {
                    continue;
                };
                if (index >= start) == from_start
                    && !middles.contains(&middle)
                    && chosen.push(c.handle).is_ok()
                {
                    let _ = middles.push(middle);
                }
            }
        }
        chosen
    }

    /// No circuit can carry a lookup of `dest`: builds one to a relay
    /// drawn at random (not `dest`), whose middle relay the lookup then
    /// goes to, unless a circuit is being built already (it may serve,
    /// and one at a time bounds what a lookup costs).
    fn open_lookup_circuit(&mut self, dest: NodeId) {
        if self.engine.clients().any(|c| !c.is_ready()) {
            return;
        }
        let unix = super::discovery::unix_now(&self.config, self.now);
        let (now, own) = (self.now, self.identity.node_id());
        let relay = self
            .discovery
            .table()
            .draw(Tables::Both, &mut self.rng, |e| {
                let id = e.node_id();
                id != dest && id != own && e.is_path_relay(unix) && e.health.available(now)
            })
            .map(|e| e.node_id());
        if let Some(relay) = relay {
            if self.circuits.may_attempt(relay, now) {
                self.open_circuit(relay);
            }
        }
    }

    /// A `LOOKUP` relay message reached this node at circuit end `at`:
    /// answered with a `LOOKUP_ANSWER` if this node holds a newer
    /// descriptor, else passed on to its peers (as a request with no hops
    /// left) and answered when one of them answers.
    pub(crate) fn on_circuit_lookup(&mut self, at: CircuitEnd, data: &[u8]) {
        let Some((id, rest)) = data.split_first_chunk::<32>() else {
            return;
        };
        let Some(issued) = rest.first_chunk::<8>() else {
            return;
        };
        let request = DescriptorRequest {
            node_id: NodeId(*id),
            known_issued_at: u64::from_be_bytes(*issued),
            hops: MAX_LOOKUP_HOPS,
        };
        self.stats.lookups_over_circuits = self.stats.lookups_over_circuits.saturating_add(1);
        self.take_request(Asker::Circuit(at), &request);
    }

    /// A `LOOKUP_ANSWER` came back over one of this node's circuits: the
    /// descriptor is learned as any other (checked, stored if newer).
    pub(crate) fn on_lookup_answer(&mut self, data: &[u8]) {
        let _ = self.discovery.learn(
            &self.config,
            self.now,
            data,
            Arrival::From(Source::Local),
            &mut self.stats,
        );
    }

    /// Queues `request` on up to `fanout` established links that
    /// are not anonymous (a lookup names its destination), starting at a
    /// random one, other than `except`; a link to the wanted node itself
    /// comes first. Returns how many took it.
    fn send_request(
        &mut self,
        request: &DescriptorRequest,
        except: Option<LinkId>,
        wanted: Option<NodeId>,
        fanout: usize,
    ) -> usize {
        let cell = request.emit();
        let count = self.links.as_ref().len();
        let start = crate::discovery::random_index(&mut self.rng, count).unwrap_or(0);
        let mut sent = 0;
        for step in 0..count {
            if sent >= fanout {
                break;
            }
            let index = start.wrapping_add(step).checked_rem(count).unwrap_or(0);
            // The wanted node itself answers for itself: ask it first.
            let index = match wanted.and_then(|w| self.slot_of_peer(w)) {
                Some(own) if step == 0 => own,
                Some(own) if index == own => continue,
                _ => index,
            };
            let link = self.link_at(index);
            let Some(slot) = self.links.as_mut().get_mut(index) else {
                continue;
            };
            if slot.anonymous || link.is_none() || link == except {
                continue;
            }
            let Some(session) = slot.session.as_mut() else {
                continue;
            };
            if session.phase() == LinkPhase::Established && session.queue_cell(&cell).is_ok() {
                sent = sent.saturating_add(1);
            }
        }
        sent
    }

    /// The slot of an established, non-anonymous link to `peer`.
    fn slot_of_peer(&self, peer: NodeId) -> Option<usize> {
        self.links.as_ref().iter().position(|s| {
            !s.anonymous
                && s.session
                    .as_ref()
                    .is_some_and(|x| x.phase() == LinkPhase::Established && x.peer() == Some(peer))
        })
    }

    /// A `DESCRIPTOR_REQUEST` arrived over `link` (its quota token already
    /// taken): answers it, passes it on, or drops it. False if the cell is
    /// malformed, which no honest peer sends: the link must close.
    pub(crate) fn on_descriptor_request(&mut self, link: LinkId, cell: &Cell) -> bool {
        let Ok(repr) = CellRepr::parse(cell) else {
            return false;
        };
        let Ok(request) = DescriptorRequest::parse(&repr.body) else {
            return false;
        };
        self.take_request(Asker::Link(link), &request);
        true
    }

    /// Answers `request` from `asker`, passes it on to every peer, or
    /// drops it (no hops left, or over the spacing or the memory).
    fn take_request(&mut self, asker: Asker, request: &DescriptorRequest) {
        if let Some(answer) = self.answer_for(request) {
            if self.deliver_answer(asker, &answer) {
                self.stats.lookups_answered = self.stats.lookups_answered.saturating_add(1);
            }
            return;
        }
        let Some(hops) = request.hops.checked_sub(1) else {
            return;
        };
        let now = self.now;
        self.circuits.lookups.forwarded.retain(|f| f.until > now);
        let spaced = self
            .circuits
            .lookups
            .last_forward
            .is_none_or(|at| now.saturating_since(at) >= FORWARD_SPACING);
        if !spaced || self.circuits.lookups.forwarded.is_full() {
            return;
        }
        let forwarded = Forwarded {
            node_id: request.node_id,
            known_issued_at: request.known_issued_at,
            asker,
            until: now.saturating_add(FORWARD_LIFETIME),
        };
        let _ = self.circuits.lookups.forwarded.push(forwarded);
        self.circuits.lookups.last_forward = Some(now);
        let onward = DescriptorRequest { hops, ..*request };
        // To every peer: the node's current descriptor is surely held only
        // by its introducers and the few its gossip reached, and the
        // introducers, being relays, are linked to many. Bounded by the
        // spacing above.
        let except = match asker {
            Asker::Link(link) => Some(link),
            Asker::Circuit(_) => None,
        };
        self.send_request(&onward, except, Some(request.node_id), usize::MAX);
        self.stats.lookups_passed_on = self.stats.lookups_passed_on.saturating_add(1);
    }

    /// Sends a descriptor to `asker`: a `DESCRIPTOR` cell over its link,
    /// or a `LOOKUP_ANSWER` back down its circuit. False if it did not go
    /// (a full queue: the asker asks again later).
    fn deliver_answer(&mut self, asker: Asker, descriptor: &[u8]) -> bool {
        match asker {
            Asker::Link(link) => {
                let cell = Discovery::<P::Peers>::descriptor_cell(descriptor);
                let session = self.slot_index(link).and_then(|i| self.session_mut(i));
                match (cell, session) {
                    (Some(cell), Some(session)) => session.queue_cell(&cell).is_ok(),
                    _ => false,
                }
            }
            Asker::Circuit(at) => {
                self.send_back(Back::Reply(at), RelayCommand::LookupAnswer, descriptor)
            }
        }
    }

    /// The descriptor that answers `request`: the node's own if it is the
    /// one wanted (unless it withholds it), else the table's copy if newer
    /// than the asker's.
    fn answer_for(&self, request: &DescriptorRequest) -> Option<Vec<u8, MAX_DESCRIPTOR_LEN>> {
        if request.node_id == self.identity.node_id() {
            if self.withholds_descriptor() {
                return None;
            }
            return Vec::from_slice(self.discovery.descriptor()).ok();
        }
        let entry = self.discovery.table().get(&request.node_id)?;
        if entry.descriptor.repr().issued_at <= request.known_issued_at {
            return None;
        }
        Vec::from_slice(entry.descriptor.as_bytes()).ok()
    }

    /// A `DESCRIPTOR` cell of `id` arrived (`cell`), stored in the table
    /// or, if `stored` is false, refused for want of room: relays it to
    /// the peers whose requests for it this node passed on and whose copy
    /// it beats. An unstored one is verified first (an asker would count a
    /// forgery against this node), and only when someone waits for it.
    pub(crate) fn relay_lookup_answers(&mut self, id: NodeId, stored: bool, cell: &Cell) {
        if !self
            .circuits
            .lookups
            .forwarded
            .iter()
            .any(|f| f.node_id == id)
        {
            return;
        }
        let unix = super::discovery::unix_now(&self.config, self.now);
        let body = CellRepr::parse(cell).ok();
        let Some(bytes) = body.and_then(|r| parse_descriptor_body(&r.body).ok()) else {
            return;
        };
        let issued_at = if stored {
            self.discovery
                .table()
                .get(&id)
                .map(|e| e.descriptor.repr().issued_at)
        } else {
            self.stats.descriptors_verified = self.stats.descriptors_verified.saturating_add(1);
            verify_descriptor(&bytes, unix)
                .ok()
                .map(|d| d.repr().issued_at)
        };
        let Some(issued_at) = issued_at else {
            return;
        };
        let now = self.now;
        let mut index = 0;
        while let Some(f) = self.circuits.lookups.forwarded.get(index).copied() {
            if f.node_id != id || f.until <= now || issued_at <= f.known_issued_at {
                index = index.saturating_add(1);
                continue;
            }
            let _ = self.deliver_answer(f.asker, &bytes);
            self.circuits.lookups.forwarded.swap_remove(index);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_is_fixed_and_small() {
        let size = lookup_state_size();
        std::println!("lookup state: {size} bytes");
        assert!(size <= 900, "lookup state is {size} bytes");
    }

    #[test]
    fn a_destination_is_looked_up_at_most_once_an_interval_and_the_oldest_gives_way() {
        let mut lookups = Lookups::new();
        let t0 = Instant::ZERO;
        let dest = NodeId([1; 32]);
        assert!(lookups.may_ask(dest, t0));
        assert!(!lookups.may_ask(dest, t0.saturating_add(Duration::from_secs(9))));
        assert!(lookups.may_ask(dest, t0.saturating_add(LOOKUP_INTERVAL)));
        // Four others fill the memory; the first, asked longest ago, goes,
        // and may be asked again at once.
        for n in 2..6u8 {
            assert!(lookups.may_ask(NodeId([n; 32]), t0.saturating_add(LOOKUP_INTERVAL)));
        }
        assert!(lookups.may_ask(dest, t0.saturating_add(LOOKUP_INTERVAL)));
    }
}
