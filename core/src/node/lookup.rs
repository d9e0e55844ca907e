//! Looking up a node's current descriptor among peers (relay spec §2.3).
//!
//! A node reached through introducers re-signs its descriptor whenever an
//! introducer is replaced, and pushes it over its own links; gossip then
//! carries it on, slowly, and only into tables that already hold the node
//! or have room. A sender whose copy lists introducers that have all gone
//! can build no circuit to the node from it. So when a build to such a
//! destination fails at its last relay, the sender asks
//! [`LOOKUP_FANOUT`] of its peers for a newer descriptor
//! (`DESCRIPTOR_REQUEST`); a peer that holds one answers with a
//! `DESCRIPTOR` cell, and one that does not passes the request on once to
//! all of its own peers and relays their answer back. The node's
//! introducers always hold its current descriptor (`circuits.rs` keeps it
//! in their tables), so the more of the network a lookup reaches, the
//! likelier it finds one of them or a node gossip reached.
//!
//! What it costs, and what bounds it: a lookup is at most
//! `LOOKUP_FANOUT × (1 + links per peer)` cells in the whole network; a
//! sender looks a destination up at most once per [`LOOKUP_INTERVAL`], and
//! any destination at most once per [`LOOKUP_SPACING`]; a peer passes on
//! at most one request per [`FORWARD_SPACING`] and remembers at most a few
//! for [`FORWARD_LIFETIME`]; and every request costs its sender a token of
//! the link's descriptor quota (`descriptor_cells.rs`), like a
//! descriptor, which the spacings keep every honest link under
//! ([`LOOKUP_SPACING`] has the sum).
//!
//! Part of the `introducers` feature: without it (`lookup_disabled.rs`)
//! requests are ignored, none are sent, and the node holds no lookup
//! state.

use heapless::Vec;

use crate::cell::{parse_descriptor_body, CellRepr, DescriptorRequest, MAX_LOOKUP_HOPS};
use crate::identity::verify_descriptor;
use crate::identity::NodeId;
use crate::link::{Cell, LinkPhase};
use crate::time::{Duration, Instant};

use super::discovery::Discovery;
use super::{LinkId, Node, Profile};

/// Peers a lookup is sent to, and a peer passes it on to.
pub const LOOKUP_FANOUT: usize = 8;
/// The least time between two lookups of one destination: a build to it
/// that fails again in the meantime would ask the same peers the same.
pub const LOOKUP_INTERVAL: Duration = Duration::from_secs(10);
/// How long a peer relays answers to a request it passed on.
pub const FORWARD_LIFETIME: Duration = Duration::from_secs(5);
/// The least time between two requests a peer passes on: bounds the cells
/// one asker's requests make it send to others, and the answers they bring
/// back (see [`LOOKUP_SPACING`] for the sum).
pub const FORWARD_SPACING: Duration = Duration::from_secs(2);
/// The least time between two of a node's own lookups, of any
/// destinations. With [`FORWARD_SPACING`], a link carries at most
/// `30 / 2 + 30 / 5 = 21` requests per 30 s (the default
/// `gossip_interval`), and as many answers back, and gossip at most
/// `GOSSIP_FANOUT × GOSSIP_SAMPLE = 24` descriptors: 45, under the 48 a
/// peer's descriptor quota allows (`descriptor_cells.rs`), so nobody's
/// requests, honest or not, can get an honest node's link struck.
pub const LOOKUP_SPACING: Duration = Duration::from_secs(5);
/// Destinations waiting for a lookup, and remembered as looked up.
const LOOKED_UP: usize = 4;
/// Requests passed on whose answers are awaited.
const FORWARDED: usize = 8;

/// A request this node passed on: who asked, for what, until when.
#[derive(Debug, Clone, Copy)]
struct Forwarded {
    node_id: NodeId,
    known_issued_at: u64,
    asker: LinkId,
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
    /// Sends the lookups builds asked for since the last pump.
    pub(crate) fn run_lookups(&mut self) {
        let now = self.now;
        self.circuits.lookups.forwarded.retain(|f| f.until > now);
        let spaced =
            |at: Option<Instant>| at.is_none_or(|at| now.saturating_since(at) >= LOOKUP_SPACING);
        // One lookup per pump at most; the rest wait their turn.
        while spaced(self.circuits.lookups.last_own) {
            let Some(dest) = self.circuits.lookups.wanted.pop() else {
                break;
            };
            if !self.circuits.lookups.may_ask(dest, now) {
                continue;
            }
            self.circuits.lookups.last_own = Some(now);
            let known_issued_at = self
                .discovery
                .table()
                .get(&dest)
                .map_or(0, |e| e.descriptor.repr().issued_at);
            let request = DescriptorRequest {
                node_id: dest,
                known_issued_at,
                hops: MAX_LOOKUP_HOPS,
            };
            let sent = self.send_request(&request, None, Some(dest), LOOKUP_FANOUT);
            self.stats.lookups_sent = self
                .stats
                .lookups_sent
                .saturating_add(u64::try_from(sent).unwrap_or(0));
        }
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
        if let Some(answer) = self.answer_for(&request) {
            if let Some(session) = self.slot_index(link).and_then(|i| self.session_mut(i)) {
                // A full queue: the asker asks again later.
                if session.queue_cell(&answer).is_ok() {
                    self.stats.lookups_answered = self.stats.lookups_answered.saturating_add(1);
                }
            }
            return true;
        }
        let Some(hops) = request.hops.checked_sub(1) else {
            return true;
        };
        let now = self.now;
        self.circuits.lookups.forwarded.retain(|f| f.until > now);
        let spaced = self
            .circuits
            .lookups
            .last_forward
            .is_none_or(|at| now.saturating_since(at) >= FORWARD_SPACING);
        if !spaced || self.circuits.lookups.forwarded.is_full() {
            return true;
        }
        let forwarded = Forwarded {
            node_id: request.node_id,
            known_issued_at: request.known_issued_at,
            asker: link,
            until: now.saturating_add(FORWARD_LIFETIME),
        };
        let _ = self.circuits.lookups.forwarded.push(forwarded);
        self.circuits.lookups.last_forward = Some(now);
        let onward = DescriptorRequest { hops, ..request };
        // To every peer: the node's current descriptor is surely held only
        // by its introducers and the few its gossip reached, and the
        // introducers, being relays, are linked to many. Bounded by the
        // spacing above: at most one cell a second on each link.
        self.send_request(&onward, Some(link), Some(request.node_id), usize::MAX);
        self.stats.lookups_passed_on = self.stats.lookups_passed_on.saturating_add(1);
        true
    }

    /// The `DESCRIPTOR` cell that answers `request`: the node's own
    /// descriptor if it is the one wanted (unless it withholds it), else
    /// the table's copy if newer than the asker's.
    fn answer_for(&self, request: &DescriptorRequest) -> Option<Cell> {
        if request.node_id == self.identity.node_id() {
            return (!self.withholds_descriptor())
                .then(|| self.discovery.own_descriptor_cell())
                .flatten();
        }
        let entry = self.discovery.table().get(&request.node_id)?;
        (entry.descriptor.repr().issued_at > request.known_issued_at)
            .then(|| Discovery::<P::Peers>::descriptor_cell(entry.descriptor.as_bytes()))
            .flatten()
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
        let issued_at = if stored {
            self.discovery
                .table()
                .get(&id)
                .map(|e| e.descriptor.repr().issued_at)
        } else {
            let body = CellRepr::parse(cell).ok();
            let bytes = body.and_then(|r| parse_descriptor_body(&r.body).ok());
            self.stats.descriptors_verified = self.stats.descriptors_verified.saturating_add(1);
            bytes
                .and_then(|b| verify_descriptor(&b, unix).ok())
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
            if let Some(session) = self.slot_index(f.asker).and_then(|i| self.session_mut(i)) {
                let _ = session.queue_cell(cell);
            }
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
        assert!(size <= 800, "lookup state is {size} bytes");
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
