//! Joining at any size (relay spec §10, "Outbound links, hand-off and
//! pruning").
//!
//! A bootstrap node that kept a link to every node that ever joined
//! through it would fill its table with links nobody uses, held open by
//! keepalives, and refuse the next node to join. So a node treats its
//! bootstrap links as Bitcoin Core treats its seed connections: it takes
//! the descriptors that come over one, dials [`OUTBOUND_LINKS`] relays it
//! learned of, and once one of those is up it closes the bootstrap link
//! (`Pruned`). The other end keeps room the same way: a node whose inbound
//! share is full closes an idle inbound link for a newcomer
//! ([`Node::prune_inbound`]) rather than refuse it, as libp2p's connection
//! manager prunes idle connections past their grace period.
//!
//! Links that carry a circuit (relayed, ending here, or our own), links to
//! guards, anchor links and introduction links (`introducers.rs`) are never
//! closed for room.

use crate::discovery::Tables;
use crate::identity::{Address, NodeId};
use crate::link::{CloseReason, LinkPhase, LinkRole};
use crate::time::{Duration, Instant};

use super::admission::is_protected;
use super::circuit_ctx::link_to;
use super::dial::DialPolicy;
use super::discovery::unix_now;
use super::{Node, Profile};

/// The default of [`NodeConfig::outbound_links`](super::NodeConfig::outbound_links):
/// half of Bitcoin Core's 8, as veil's circuits dial what they need and
/// these only keep the node in the network and its table fresh.
pub const OUTBOUND_LINKS: usize = 4;

/// How long an inbound link is safe from pruning after it opened: long
/// enough for both descriptors and a gossip sample to cross and for its
/// dialler to link elsewhere (a dial may take `dial_timeout`, 10 s).
pub const PRUNE_GRACE: Duration = Duration::from_secs(15);

/// While a node is short of outbound links, how often it looks again.
const OUTBOUND_RETRY: Duration = Duration::from_secs(5);

/// Whether this build keeps outbound links and prunes idle inbound ones:
/// the `outbound-links` feature (default). The firmware image, whose node
/// has 4 link slots and joins a network it is configured into, leaves it
/// out for about 3.5 KiB of flash (docs/firmware.md).
const KEPT: bool = cfg!(feature = "outbound-links");

impl<P: Profile> Node<P> {
    /// Whether this node keeps outbound links of its own: one that joins
    /// by itself (it has bootstrap addresses; a seed, or a node its owner
    /// links by hand, dials only what its circuits need) and either may
    /// show its address to random relays, as a feeler does, or may have to
    /// be reached through introducers. A client that hides its identity
    /// from its first hops (`anonymous_first_hops`) still needs the latter:
    /// behind NAT its introducers are the relays of these links, and its
    /// circuits keep starting on anonymous links.
    fn keeps_outbound(&self) -> bool {
        KEPT && self.dialer.has_bootstrap()
            && self.config.outbound_links > 0
            && (self.feels() || self.may_be_introduced())
    }

    /// Whether this node may turn out not to be dialled, and then lists
    /// introducers (the `introducers` feature, reachability not `Public`).
    fn may_be_introduced(&self) -> bool {
        super::introducers::INTRODUCERS && self.config.reachability != super::Reachability::Public
    }

    /// The outbound links this node keeps: an eighth of its table, at
    /// least one, at most [`NodeConfig::outbound_links`](super::NodeConfig::outbound_links);
    /// and for a node that is (or may be) reached through introducers, one per introducer and
    /// a spare, so that a lost introducer is replaced at once.
    fn outbound_target(&self) -> usize {
        // A node that may turn out not to be dialled keeps them too.
        let introducers = if self.may_be_introduced() {
            self.introducers_wanted_if_unreachable().saturating_add(1)
        } else {
            0
        };
        (self.links.as_ref().len() / 8)
            .max(1)
            .min(self.config.outbound_links)
            .max(introducers)
    }

    /// Dials relays while this node has fewer outbound links (established
    /// or being dialled, not to a bootstrap address, not anonymous, not a
    /// closing feeler) than its target, and hands its bootstrap links off
    /// once one of them is up.
    pub(crate) fn run_outbound(&mut self, now: Instant) {
        if !self.keeps_outbound() || self.discovery.feelers.outbound_at.is_none_or(|at| now < at) {
            return;
        }
        let feeler = self.discovery.feelers.closing();
        let outbound = self
            .links
            .as_ref()
            .iter()
            .enumerate()
            .filter(|(i, s)| {
                !s.anonymous
                    && !s.bootstrap
                    && self.link_at(*i) != feeler
                    && s.session.as_ref().is_some_and(|x| {
                        x.role() == LinkRole::Initiator && x.phase() == LinkPhase::Established
                    })
            })
            .count();
        let target = self.outbound_target();
        let mut short = target.saturating_sub(outbound.saturating_add(self.dialer.pending_named()));
        // Only into a free slot: a node with one slot keeps its bootstrap
        // link rather than dial past a full table.
        while short > 0 && self.free_slot().is_some() && self.dial_outbound(now) {
            short = short.saturating_sub(1);
        }
        let mut kept = false;
        for index in 0..self.links.as_ref().len() {
            let Some(link) = self.link_at(index) else {
                continue;
            };
            let bootstrap = self.links.as_ref().get(index).is_some_and(|s| {
                s.bootstrap
                    && s.session
                        .as_ref()
                        .is_some_and(|x| x.phase() == LinkPhase::Established)
            });
            if !bootstrap {
                continue;
            }
            if outbound > 0 && !self.carries_circuits(link) {
                self.close_for_room(index);
            } else {
                kept = true;
            }
        }
        self.discovery.feelers.outbound_at =
            (short > 0 || kept || outbound < target).then(|| now.saturating_add(OUTBOUND_RETRY));
    }

    /// Dials one healthy relay that is not linked, not being dialled and
    /// not at a bootstrap address; whether one was found.
    fn dial_outbound(&mut self, now: Instant) -> bool {
        let unix = unix_now(&self.config, now);
        let Node {
            discovery,
            links,
            dialer,
            rng,
            config,
            ..
        } = self;
        // As for a feeler: the node was named by gossip. A bootstrap node
        // is dialled as one, not kept as an outbound link.
        let dialable = |a: &Address| config.may_dial_for_strangers(a);
        let free =
            |id: &NodeId| link_to(links.as_ref(), id).is_none() && !dialer.is_pending(id, false);
        let table = discovery.table();
        let Some(entry) = table.draw(Tables::Both, rng, |e| {
            let addresses = &e.descriptor.repr().addresses;
            e.is_path_relay(unix)
                && addresses.iter().any(dialable)
                && !addresses.iter().any(|a| dialer.is_bootstrap(a))
                && free(&e.node_id())
        }) else {
            return false;
        };
        let id = entry.node_id();
        let addresses = entry.descriptor.repr().addresses.clone();
        let addresses = addresses.into_iter().filter(dialable);
        let policy = DialPolicy::for_peer(config, table, &id);
        dialer.request(now, id, false, addresses, policy)
    }

    /// When [`run_outbound`](Self::run_outbound) next has work.
    pub(crate) fn outbound_deadline(&self) -> Option<Instant> {
        self.keeps_outbound()
            .then_some(self.discovery.feelers.outbound_at)
            .flatten()
    }

    /// Closes the link in slot `index` as `Pruned`.
    fn close_for_room(&mut self, index: usize) {
        if let Some(session) = self.session_mut(index) {
            session.close(CloseReason::Pruned);
        }
        self.sync_slot(index);
    }

    /// Keeps one link slot free for a newcomer, as far as idle links allow:
    /// when the table is full, closes one idle link as
    /// [`prune_for_dial`](Self::prune_for_dial) picks it. An established
    /// link closes only once its `Close` frame is out, so a slot freed while
    /// a newcomer's connection waits comes too late for it: the node that
    /// wanted to reach this one (a relay extending a circuit to it) would be
    /// refused once, and its client would have to build again.
    pub(crate) fn keep_room_for_newcomers(&mut self) {
        self.prune_for_dial();
    }

    /// Makes room for a dial this node is about to hand its adapter, when
    /// no slot is free (a relay's `EXTEND` to a node it has no link to, a
    /// circuit's first hop): closes an idle inbound link as
    /// [`prune_inbound`](Self::prune_inbound) picks it, else the youngest
    /// outbound link that has been open for [`PRUNE_GRACE`], carries no
    /// circuit, does not lead to a guard, and is not needed for the
    /// outbound links this node keeps. Without it, links dialled for
    /// circuits long gone, held open by keepalives, fill a relay's table
    /// and every later dial fails. Whether one was closed.
    pub(crate) fn prune_for_dial(&mut self) -> bool {
        if !KEPT || self.free_slot().is_some() {
            return false;
        }
        self.prune_inbound() || self.prune_idle_outbound()
    }

    /// Closes the youngest outbound link that has been open for
    /// [`PRUNE_GRACE`], carries no circuit, does not lead to a guard, and
    /// is not needed for the outbound links this node keeps. Whether one
    /// was closed.
    pub(crate) fn prune_idle_outbound(&mut self) -> bool {
        if !KEPT {
            return false;
        }
        let now = self.now;
        let mut outbound = 0usize;
        let mut youngest: Option<(Instant, usize)> = None;
        for index in 0..self.links.as_ref().len() {
            let Some(slot) = self.links.as_ref().get(index) else {
                continue;
            };
            let Some(session) = slot.session.as_ref() else {
                continue;
            };
            if slot.anonymous
                || session.role() != LinkRole::Initiator
                || session.phase() != LinkPhase::Established
            {
                continue;
            }
            outbound = outbound.saturating_add(1);
            let opened_at = slot.opened_at;
            let candidate = now.saturating_since(opened_at) >= PRUNE_GRACE
                && youngest.is_none_or(|(at, _)| opened_at > at)
                && session
                    .peer()
                    .is_none_or(|p| !self.circuits.guards.contains(&p));
            if candidate
                && !self.introduction_link(index)
                && self
                    .link_at(index)
                    .is_some_and(|l| !self.carries_circuits(l))
            {
                youngest = Some((opened_at, index));
            }
        }
        match youngest {
            Some((_, index)) if outbound > self.outbound_target() => {
                self.close_for_room(index);
                true
            }
            _ => false,
        }
    }

    /// Makes room for a newcomer in a full inbound share: closes the
    /// youngest inbound link that has been open for [`PRUNE_GRACE`], carries
    /// no circuit, does not lead to a guard, and is not among the
    /// longest-standing quarter of inbound links (admission's protected
    /// ones). Whether one was closed.
    pub(crate) fn prune_inbound(&mut self) -> bool {
        if !KEPT {
            return false;
        }
        let now = self.now;
        let mut youngest: Option<(Instant, usize)> = None;
        for index in 0..self.links.as_ref().len() {
            let slots = self.links.as_ref();
            let Some(slot) = slots.get(index) else {
                continue;
            };
            let Some(session) = slot.session.as_ref() else {
                continue;
            };
            let candidate = session.role() == LinkRole::Responder
                && session.phase() == LinkPhase::Established
                && now.saturating_since(slot.opened_at) >= PRUNE_GRACE
                && youngest.is_none_or(|(at, _)| slot.opened_at > at)
                && session
                    .peer()
                    .is_none_or(|p| !self.circuits.guards.contains(&p))
                && !is_protected(slots, slot)
                && !slot.introduces_peer;
            let opened_at = slot.opened_at;
            if candidate
                && self
                    .link_at(index)
                    .is_some_and(|l| !self.carries_circuits(l))
            {
                youngest = Some((opened_at, index));
            }
        }
        match youngest {
            Some((_, index)) => {
                self.close_for_room(index);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
#[cfg(feature = "outbound-links")]
mod tests {
    use super::*;
    use crate::identity::{DescriptorRepr, Identity, Transport};
    use crate::node::{
        drain, AddBootstrap, LearnDescriptor, LinkSlot, NodeConfig, Output, Timeout,
    };

    crate::node_profile! {
        struct Small {
            link_receive: 2 + 4096, link_send_queue: 8, events: 8, peers: 16,
            relayed: 4, own: 2, message: 1024,
            links: [LinkSlot<Small>; 16],
            messages: [crate::message::MessageSlot<[u8; 1024]>; 2],
        }
    }

    const UNIX: u64 = 1_800_000_000;

    fn node() -> Node<Small> {
        let config = NodeConfig {
            unix_time_at_zero: UNIX,
            ..NodeConfig::default()
        };
        let links = core::array::from_fn(|_| LinkSlot::new());
        let messages = core::array::from_fn(|_| crate::message::MessageSlot::new());
        Node::new(
            config,
            Identity::from_secret_bytes([1; 32]),
            [1; 32],
            links,
            messages,
        )
    }

    fn address(i: u8) -> Address {
        Address {
            transport: Transport::Tcp,
            socket: ([101, i, 0, 1], 7000).into(),
        }
    }

    /// Learns a relay listening at [`address`]`(i)`; returns its id.
    fn learn_relay(node: &mut Node<Small>, i: u8) -> NodeId {
        let identity = Identity::from_secret_bytes([i; 32]);
        let repr = DescriptorRepr {
            identity: identity.public(),
            onion_key: [i; 32],
            relay: true,
            issued_at: UNIX,
            expires_at: UNIX + 3600,
            addresses: [address(i)].into_iter().collect(),
        };
        let mut buf = [0u8; crate::identity::MAX_DESCRIPTOR_LEN];
        let n = repr.emit_signed(&identity, &mut buf).unwrap();
        let descriptor = &buf[..n];
        node.handle(Instant::ZERO, LearnDescriptor { descriptor })
            .unwrap();
        identity.node_id()
    }

    /// The peers the node asks to dial after a timeout (`None`: whoever
    /// answers at a bootstrap address).
    fn dials(node: &mut Node<Small>) -> std::vec::Vec<Option<NodeId>> {
        node.handle(Instant::ZERO, Timeout);
        let mut buf = [0u8; 8192];
        let mut peers = std::vec::Vec::new();
        drain(node, Instant::ZERO, &mut buf, |_, output| {
            if let Output::Dial(request) = output {
                peers.push(request.peer);
            }
        })
        .unwrap();
        peers
    }

    #[test]
    fn a_joining_node_dials_relays_up_to_its_target_and_not_its_bootstrap_node() {
        let mut n = node();
        let bootstrap = learn_relay(&mut n, 10);
        n.handle(Instant::ZERO, AddBootstrap::address(address(10)))
            .unwrap();
        let relays: std::vec::Vec<NodeId> = (11..15).map(|i| learn_relay(&mut n, i)).collect();
        let peers = dials(&mut n);
        assert_eq!(n.outbound_target(), 2, "an eighth of 16 slots");
        assert!(peers.contains(&None), "the bootstrap address");
        let named: std::vec::Vec<NodeId> = peers.into_iter().flatten().collect();
        assert_eq!(named.len(), 2);
        assert!(named.iter().all(|p| relays.contains(p) && *p != bootstrap));
        // Both are being dialled: nothing more until one ends.
        assert!(dials(&mut n).is_empty());
    }

    #[test]
    fn a_node_without_bootstrap_addresses_dials_only_what_it_needs() {
        let mut n = node();
        for i in 11..15 {
            learn_relay(&mut n, i);
        }
        assert!(dials(&mut n).is_empty());
        assert_eq!(n.outbound_deadline(), None);
    }
}
