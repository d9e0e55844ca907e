//! Reaching a node that cannot be dialled (relay spec §2 "Introducers",
//! §7, §10 "Introducers").
//!
//! A node behind NAT or a firewall can dial out but nobody can dial it, and
//! a circuit's last relay must reach its destination. So such a node
//! ([`NodeConfig::introducers`](super::NodeConfig::introducers) > 0) lists in
//! its descriptor a few relays it holds links to, as Tor's onion services
//! list introduction points and I2P's firewalled routers list introducers.
//! A sender makes one of them the last relay of its circuit; that relay
//! extends to the node over the node's own link and never dials it.
//!
//! Three roles, one file:
//! - the introduced node picks relays its outbound links go to, in
//!   distinct networks, and replaces one whose link drops at once, re-signing
//!   and pushing its descriptor on every link;
//! - an introducer keeps the link of a node that lists it (learned from the
//!   node's own descriptor over that link) out of pruning and eviction, for
//!   at most [`max_introduced`] nodes;
//! - a sender ([`Node::introducer_for`]) picks one listed introducer that
//!   its back-offs and avoid set allow.

use heapless::Vec;

use crate::discovery::NetworkPrefix;
use crate::identity::{Introducer, NodeId, MAX_INTRODUCERS};
use crate::link::{LinkPhase, LinkRole};

use super::{Node, Profile};

/// Whether this build reaches and serves introduced nodes: the
/// `introducers` feature (default).
pub(crate) const INTRODUCERS: bool = cfg!(feature = "introducers");

/// The most nodes a relay with `slots` link slots introduces at once: an
/// eighth of its table, at least one. Each holds a slot the relay never
/// prunes; the rest stay for everyone else.
pub(crate) fn max_introduced(slots: usize) -> usize {
    (slots / 8).max(1)
}

impl<P: Profile> Node<P> {
    /// How many introducers this node lists when it cannot be dialled
    /// ([`NodeConfig::introducers`](super::NodeConfig::introducers), 1 to
    /// 3); 0 without the `introducers` feature.
    pub(crate) fn introducers_wanted_if_unreachable(&self) -> usize {
        if INTRODUCERS {
            self.config.introducers.clamp(1, MAX_INTRODUCERS)
        } else {
            0
        }
    }

    /// The introduced node's side: keeps
    /// [`introducers`](super::NodeConfig::introducers) relays listed, each
    /// one reached by an established link this node dialled under its
    /// identity, no two in one network. Drops those whose link is gone,
    /// adds peers of other such links, and re-signs and pushes the
    /// descriptor when the list changed.
    pub(crate) fn maintain_introducers(&mut self) {
        if !INTRODUCERS {
            return;
        }
        let wanted = if self.is_introduced() {
            self.introducers_wanted_if_unreachable()
        } else {
            0
        };
        if wanted == 0 {
            if !self.discovery.introducers().is_empty() {
                // Reachable again: nobody needs to be listed.
                self.discovery.set_introducers(&[]);
                self.discovery.sign(&self.identity, &self.config, self.now);
                self.reintroduce();
            }
            return;
        }
        let unix = super::discovery::unix_now(&self.config, self.now);
        let mut chosen: Vec<(NodeId, Option<NetworkPrefix>), MAX_INTRODUCERS> = Vec::new();
        let listed: Vec<NodeId, MAX_INTRODUCERS> =
            self.discovery.introducers().iter().copied().collect();
        // Those still linked first, so that a working introducer stays.
        for keep_listed in [true, false] {
            for slot in self.links.as_ref() {
                let Some(session) = slot.session.as_ref() else {
                    continue;
                };
                let Some(peer) = session.peer() else {
                    continue;
                };
                let usable = !slot.anonymous
                    && !slot.bootstrap
                    && session.role() == LinkRole::Initiator
                    && session.phase() == LinkPhase::Established
                    && listed.contains(&peer) == keep_listed
                    && self
                        .discovery
                        .table()
                        .get(&peer)
                        .is_some_and(|e| e.is_path_relay(unix))
                    && chosen
                        .iter()
                        .all(|(id, prefix)| *id != peer && *prefix != slot.prefix);
                if usable && chosen.len() < wanted {
                    let _ = chosen.push((peer, slot.prefix));
                }
            }
        }
        let ids: Vec<NodeId, MAX_INTRODUCERS> = chosen.iter().map(|(id, _)| *id).collect();
        let same = ids.len() == listed.len() && ids.iter().all(|id| listed.contains(id));
        if same {
            return;
        }
        if ids.len() < wanted {
            // One was lost and no spare link is up: dial a relay now, not
            // at the next outbound round (once per change, so no loop).
            self.discovery.feelers.wake_outbound(self.now);
        }
        self.discovery.set_introducers(&ids);
        self.discovery.sign(&self.identity, &self.config, self.now);
        self.reintroduce();
    }

    /// Whether this node keeps the link to `peer` because `peer` is reached
    /// through it, or because it is reached through `peer`: such a link is
    /// never pruned or evicted for room.
    pub(crate) fn introduction_link(&self, index: usize) -> bool {
        let Some(slot) = self.links.as_ref().get(index) else {
            return false;
        };
        slot.introduces_peer
            || slot
                .session
                .as_ref()
                .and_then(|s| s.peer())
                .is_some_and(|p| self.discovery.introducers().contains(&p))
    }

    /// The introducer's side: the peer of the link in slot `index` sent its
    /// own descriptor, which does (`lists_us`) or does not list this node.
    /// The link is kept for it while there is room among the
    /// [`max_introduced`] links kept so.
    pub(crate) fn peer_listed_us(&mut self, index: usize, lists_us: bool) {
        if !INTRODUCERS {
            return;
        }
        let slots = self.links.as_ref();
        let kept = slots.iter().filter(|s| s.introduces_peer).count();
        let already = slots.get(index).is_some_and(|s| s.introduces_peer);
        let room = already || kept < max_introduced(slots.len());
        if let Some(slot) = self.links.as_mut().get_mut(index) {
            slot.introduces_peer = lists_us && room;
        }
    }

    /// The sender's side: for a destination reached through introducers,
    /// one of them drawn at random, leaving out this node, the relays in
    /// `avoid`, and relays this node's table has backed off or marked
    /// failing. `None` for a destination that lists none (or none usable).
    pub(crate) fn introducer_for(&mut self, dest: &NodeId, avoid: &[NodeId]) -> Option<Introducer> {
        if !INTRODUCERS {
            return None;
        }
        let unix = super::discovery::unix_now(&self.config, self.now);
        let table = self.discovery.table();
        let entry = table.get(dest)?;
        if !entry.descriptor.is_introduced() {
            return None;
        }
        let own = self.identity.node_id();
        let now = self.now;
        let listed: Vec<Introducer, MAX_INTRODUCERS> = entry
            .descriptor
            .introducers()
            .filter(|i| i.node_id != own && !avoid.contains(&i.node_id))
            .collect();
        let mut usable: Vec<Introducer, MAX_INTRODUCERS> = listed
            .iter()
            .copied()
            .filter(|i| {
                table
                    .get(&i.node_id)
                    .is_none_or(|e| e.is_healthy(unix) && e.health.available(now))
            })
            .collect();
        // None the table vouches for: one it marked failing or backed off
        // beats none. An introducer the table does not hold always passes
        // the filter, failures and all (nothing records them), so without
        // this a dead one it does not hold would be drawn every time, and
        // a current one it does hold, failing as a relay, never.
        if usable.is_empty() {
            usable = listed;
        }
        // Not one of this node's guards if it can be helped: a guard is
        // the first hop, and the same relay cannot be the last one too.
        let guards = &self.circuits.guards;
        if usable.iter().any(|i| !guards.contains(&i.node_id)) {
            usable.retain(|i| !guards.contains(&i.node_id));
        }
        let pick = crate::discovery::random_index(&mut self.rng, usable.len())?;
        usable.get(pick).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::circuit::{CircuitContext, CircuitEvent, CircuitHandle};
    use crate::discovery::{Path, MAX_HEALTHY_FAILURES};
    use crate::identity::{Address, Identity, Transport};
    use crate::node::small_node_tests::{signed_descriptor, small_node, Small};
    use crate::node::{LearnDescriptor, RecordPeerFailure};
    use crate::time::Instant;

    fn node() -> Node<Small> {
        small_node(1)
    }

    fn address(seed: u8) -> Address {
        Address {
            transport: Transport::Tcp,
            socket: ([10, seed, 0, 1], 7000).into(),
        }
    }

    /// A descriptor of node `seed`: a relay at an address, or (with
    /// `introducers`) a node reached through them.
    fn descriptor(seed: u8, introducers: &[Introducer]) -> (NodeId, std::vec::Vec<u8>) {
        if introducers.is_empty() {
            signed_descriptor(seed, true, &[address(seed)], &[])
        } else {
            signed_descriptor(seed, false, &[], introducers)
        }
    }

    fn introducer(seed: u8) -> Introducer {
        Introducer {
            node_id: Identity::from_secret_bytes([seed; 32]).node_id(),
            onion_key: [seed; 32],
            address: address(seed),
        }
    }

    /// The destination lists two introducers: `unknown`, which the sender's
    /// table does not hold, and `failing`, which it holds marked failing
    /// (as a relay on other circuits). The sender's copy of the list is
    /// older than the destination's, which has dropped `unknown` since.
    fn sender() -> (Node<Small>, NodeId, Introducer, Introducer) {
        let mut n = node();
        let (unknown, failing) = (introducer(20), introducer(21));
        let (failing_id, failing_desc) = descriptor(21, &[]);
        assert_eq!(failing_id, failing.node_id);
        let (dest, dest_desc) = descriptor(30, &[unknown, failing]);
        for d in [&failing_desc, &dest_desc] {
            n.handle(Instant::ZERO, LearnDescriptor { descriptor: d })
                .unwrap();
        }
        for _ in 0..MAX_HEALTHY_FAILURES {
            n.handle(Instant::ZERO, RecordPeerFailure { peer: failing_id });
        }
        assert!(n.discovery.table().get(&unknown.node_id).is_none());
        (n, dest, unknown, failing)
    }

    #[test]
    fn an_introducer_the_table_marks_failing_is_drawn_when_the_other_is_avoided() {
        let (mut n, dest, unknown, failing) = sender();
        // The table vouches for neither; the one it does not hold passes.
        for _ in 0..8 {
            assert_eq!(n.introducer_for(&dest, &[]), Some(unknown));
        }
        // Once that one is avoided, the failing one beats none.
        assert_eq!(n.introducer_for(&dest, &[unknown.node_id]), Some(failing));
    }

    #[test]
    fn a_build_that_fails_at_an_introducer_makes_the_next_path_avoid_it() {
        let (mut n, dest, unknown, failing) = sender();
        let guard = introducer(40).node_id;
        let middle = introducer(41).node_id;
        let path = Path::from_hops(&[guard, middle, unknown.node_id, dest]).unwrap();
        // The build timed out adding the introducer, which the node table
        // does not hold, so nothing in the table records it.
        n.with_engine(|_, ctx, _| {
            ctx.event(CircuitEvent::Closed {
                circuit: CircuitHandle(7),
                path,
                reason: crate::cell::DestroyReason::Timeout,
                failed_hop: Some(unknown.node_id),
            })
        });
        assert_eq!(n.circuits.avoid_for(dest), &[unknown.node_id]);
        // Our copy may be stale: the destination is looked up too.
        assert!(n.circuits.lookups.is_wanted(&dest));
        let avoid: heapless::Vec<NodeId, 4> = n.circuits.avoid_for(dest).iter().copied().collect();
        assert_eq!(n.introducer_for(&dest, &avoid), Some(failing));
    }
}
