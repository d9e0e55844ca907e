//! Feeler dials: every `feeler_interval` the node dials one node it has
//! only heard of (at public addresses only, unless
//! `extend_to_private_addresses`), to learn whether it is really there, and promotes it to
//! the tried table if it proves its identity. The link closes again soon
//! after the handshake unless a circuit took it up. When a promotion waits
//! for a full tried bucket, the bucket's incumbent is tested first
//! (test-before-evict): if it answers it stays.
//!
//! Promotion itself happens for every link this node dials
//! ([`Node::on_peer_reached`]): a bootstrap, an anchor, a circuit's first
//! hop, the next hop of an `EXTEND`, or a feeler.

use crate::discovery::Tables;
use crate::identity::{Address, NodeId};
use crate::link::{CloseReason, LinkRole};
use crate::time::{Duration, Instant};

use super::circuit_ctx::link_to;
use super::dial::DialPolicy;
use super::discovery::unix_now;
use super::{CloseLink, LinkId, Node, NodeConfig, Profile};

/// How long a feeler link stays up after its handshake: long enough for
/// both descriptors and a gossip sample to cross.
pub const FEELER_LINGER: Duration = Duration::from_secs(2);

/// The feeler timer and the test in progress.
#[derive(Debug, Clone)]
pub(crate) struct Feelers {
    next_at: Instant,
    /// The node being tested: a new entry, or a collision's incumbent.
    target: Option<NodeId>,
    /// A feeler link that came up, and when to close it.
    close: Option<(LinkId, Instant)>,
    /// When to look at the outbound links next (`outbound.rs`).
    pub(crate) outbound_at: Option<Instant>,
}

impl Feelers {
    pub(crate) fn new(config: &NodeConfig) -> Self {
        Feelers {
            next_at: Instant::ZERO.saturating_add(config.feeler_interval),
            target: None,
            close: None,
            outbound_at: Some(Instant::ZERO),
        }
    }

    /// Looks at the outbound links at `now` (a link came or went, a node
    /// was learned), or sooner if that was due already.
    pub(crate) fn wake_outbound(&mut self, now: Instant) {
        self.outbound_at = Some(self.outbound_at.map_or(now, |at| at.min(now)));
    }

    /// The feeler link about to close, which is no anchor.
    pub(crate) fn closing(&self) -> Option<LinkId> {
        self.close.map(|(link, _)| link)
    }
}

impl<P: Profile> Node<P> {
    /// A link to `peer` (slot `index`) came up. An incumbent being tested
    /// answered; a node this node dialled is promoted to the tried table,
    /// charged to the network it was dialled in; a feeler link is set to
    /// close.
    pub(crate) fn on_peer_reached(&mut self, index: usize, peer: NodeId) {
        let Some(slot) = self.links.as_ref().get(index) else {
            return;
        };
        let dialled = slot
            .session
            .as_ref()
            .is_some_and(|s| s.role() == LinkRole::Initiator);
        let network = slot.prefix;
        let link = self.link_at(index);
        let unix = unix_now(&self.config, self.now);
        let table = self.discovery.table_mut();
        table.tested(&peer, true, unix);
        if !dialled {
            return;
        }
        table.promote(&peer, network, unix);
        let feelers = &mut self.discovery.feelers;
        if feelers.target == Some(peer) {
            feelers.target = None;
            feelers.close = link.map(|l| (l, self.now.saturating_add(FEELER_LINGER)));
        }
    }

    /// Runs the feeler timer: closes a feeler link whose time is up, judges
    /// the last test, and starts the next.
    /// Whether this node dials feelers: not a client that hides behind
    /// its guards (no relaying, anonymous first hops), whose links to
    /// random relays would show its address to many of them (relay spec
    /// §11).
    /// Without the `feelers` feature (default on; the firmware image,
    /// whose node has 8 table entries and 4 link slots, leaves it out for
    /// flash: docs/firmware.md) never: entries reach the tried table only
    /// by the node's other dials.
    pub(crate) fn feels(&self) -> bool {
        cfg!(feature = "feelers")
            && !self.link_only()
            && (self.config.relay || !self.config.anonymous_first_hops)
    }

    pub(crate) fn run_feelers(&mut self, now: Instant) {
        if !self.feels() {
            return;
        }
        if let Some((link, at)) = self.discovery.feelers.close {
            if now >= at {
                self.discovery.feelers.close = None;
                if !self.carries_circuits(link) {
                    let reason = CloseReason::Normal;
                    let _ = self.on_close_link(now, CloseLink { link, reason });
                }
            }
        }
        if now < self.discovery.feelers.next_at {
            return;
        }
        self.discovery.feelers.next_at = now.saturating_add(self.config.feeler_interval);
        let unix = unix_now(&self.config, now);
        let Node {
            discovery,
            links,
            dialer,
            rng,
            config,
            ..
        } = self;
        let busy =
            |id: &NodeId| link_to(links.as_ref(), id).is_some() || dialer.is_pending(id, false);
        // Feeler targets come from gossip, as an `EXTEND`'s do from a
        // stranger: the same policy keeps them off private addresses.
        let dialable = |a: &Address| config.may_dial_for_strangers(a);
        if let Some(target) = discovery.feelers.target {
            if dialer.is_pending(&target, false) {
                return;
            }
            discovery.feelers.target = None;
            if link_to(links.as_ref(), &target).is_none() {
                // No link came up: the test failed.
                let table = discovery.table_mut();
                table.tested(&target, false, unix);
                table.feeler_failed(&target);
            }
        }
        let table = discovery.table();
        let target = match table.collision_to_test() {
            Some(incumbent) if link_to(links.as_ref(), &incumbent).is_some() => {
                // It is linked: it answers.
                discovery.table_mut().tested(&incumbent, true, unix);
                return;
            }
            // A dial to it is out already: judge it at a later run.
            Some(incumbent) if dialer.is_pending(&incumbent, false) => return,
            Some(incumbent) => incumbent,
            None => match table.draw(Tables::New, rng, |e| {
                e.descriptor.repr().addresses.iter().any(dialable)
                    && e.is_healthy(unix)
                    && !busy(&e.node_id())
            }) {
                Some(entry) => entry.node_id(),
                None => return,
            },
        };
        let Some(entry) = table.get(&target) else {
            return;
        };
        let addresses = entry.descriptor.repr().addresses.clone();
        let addresses = addresses.into_iter().filter(dialable);
        let policy = DialPolicy::for_peer(config, table, &target);
        if dialer.request(now, target, false, addresses, policy) {
            discovery.feelers.target = Some(target);
        } else if table.collision_to_test() == Some(target) {
            // Nothing to dial it at (or no room for a dial): it keeps its
            // place, and the newcomer can be reached again later.
            discovery.table_mut().tested(&target, true, unix);
        }
    }

    /// When the feeler timer next has work.
    pub(crate) fn feeler_deadline(&self) -> Option<Instant> {
        if !self.feels() {
            return None;
        }
        let feelers = &self.discovery.feelers;
        let close = feelers.close.map(|(_, at)| at);
        Some(close.map_or(feelers.next_at, |c| c.min(feelers.next_at)))
    }

    /// Whether any circuit runs over `link`.
    pub(crate) fn carries_circuits(&mut self, link: LinkId) -> bool {
        let mut used = self.engine.clients().any(|c| c.end.0 == link);
        self.engine.linked_links(link, |_| used = true);
        used || self.engine.ends_mut().any(|(end, _)| end.0 == link)
    }
}
