//! Who gets a link slot.
//!
//! Addresses inside one network prefix (IPv4 /16, IPv6 /32) are cheap for
//! one party to get, and identities are free, so the only thing an inbound
//! link is charged against is the prefix it comes from:
//!
//! - a prefix may hold at most [`max_inbound_per_prefix`] inbound links,
//!   half-open or established, and at most half of the inbound share;
//! - inbound links together leave a quarter of the table to links this node
//!   dials, so a full table never stops it reaching its guards and relays;
//! - at most [`max_half_open`] inbound handshakes run at once, at most
//!   [`max_half_open_per_prefix`] of them from one prefix. When one must
//!   give way it is the weakest half-open link of the most crowded prefix:
//!   one whose peer has sent nothing before one that has, then the oldest.
//!   A connect flood from one network therefore only ever displaces its own
//!   connections, and a real peer's handshake from elsewhere completes;
//! - when the inbound share is full of established links, the youngest link
//!   of the prefix holding the most inbound links gives way, if that prefix
//!   holds at least two more than the newcomer's (so the swap lowers the
//!   largest share); the longest-standing quarter of inbound links is never
//!   evicted;
//! - when the table is full but the inbound share is not, the links this
//!   node dialled hold more than their quarter: the youngest idle one
//!   (open for `PRUNE_GRACE`, carrying no circuit, not to a guard, not one
//!   of the outbound links the node keeps) gives way. An established link
//!   frees its slot only once its `Close` frame is out, so this makes room
//!   for the connections that follow, not for the one refused now (the
//!   node's timer keeps a slot free ahead of them, `outbound.rs`).
//!
//! [`max_inbound_per_prefix`]: super::NodeConfig::max_inbound_per_prefix
//! [`max_half_open`]: super::NodeConfig::max_half_open
//! [`max_half_open_per_prefix`]: super::NodeConfig::max_half_open_per_prefix

use crate::discovery::NetworkPrefix;
use crate::link::{CloseReason, LinkPhase, LinkRole};

use super::{LinkSlot, Node, OpenLinkError, Profile};

/// The inbound limits of a table of `slots` links under `config`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InboundLimits {
    /// Inbound links of all prefixes together.
    pub(crate) total: usize,
    /// Inbound links of one prefix.
    pub(crate) per_prefix: usize,
}

impl InboundLimits {
    pub(crate) fn new(slots: usize, config: &super::NodeConfig) -> Self {
        let total = slots.saturating_sub(slots / 4).max(1);
        // At least 2 (where the inbound share allows): one peer may hold
        // two links, one under its identity and one anonymous for its own
        // circuits (link spec §3.1), from the same address.
        let per_prefix = config
            .max_inbound_per_prefix
            .min((total / 2).max(2))
            .min(total)
            .max(1);
        InboundLimits { total, per_prefix }
    }
}

/// A live inbound link (handshaking or established, not closing).
fn is_inbound<P: Profile>(slot: &LinkSlot<P>) -> bool {
    slot.session.as_ref().is_some_and(|s| {
        s.role() == LinkRole::Responder
            && matches!(s.phase(), LinkPhase::Handshaking | LinkPhase::Established)
    })
}

fn is_half_open_inbound<P: Profile>(slot: &LinkSlot<P>) -> bool {
    slot.session
        .as_ref()
        .is_some_and(|s| s.role() == LinkRole::Responder && s.phase() == LinkPhase::Handshaking)
}

fn is_established_inbound<P: Profile>(slot: &LinkSlot<P>) -> bool {
    slot.session
        .as_ref()
        .is_some_and(|s| s.role() == LinkRole::Responder && s.phase() == LinkPhase::Established)
}

/// How many slots satisfy `keep` and come from `prefix`.
fn count<P: Profile>(
    slots: &[LinkSlot<P>],
    prefix: Option<NetworkPrefix>,
    keep: impl Fn(&LinkSlot<P>) -> bool,
) -> usize {
    slots
        .iter()
        .filter(|s| keep(s) && s.prefix == prefix)
        .count()
}

/// Whether `slot` is among the longest-standing quarter (at least one) of
/// the established inbound links in `slots`, which are never evicted nor
/// pruned: an attacker cannot make its links old.
pub(crate) fn is_protected<P: Profile>(slots: &[LinkSlot<P>], slot: &LinkSlot<P>) -> bool {
    let established = slots.iter().filter(|s| is_established_inbound(s)).count();
    let older = slots
        .iter()
        .filter(|o| is_established_inbound(o) && o.opened_at < slot.opened_at)
        .count();
    older < (established / 4).max(1)
}

/// Of the prefixes of slots satisfying `candidate`, the one with the most
/// slots satisfying `counted`, and that count. Ties go to the prefix seen
/// first in the table, which is as good as any: the count, not the order,
/// is what an attacker controls.
fn most_crowded<P: Profile>(
    slots: &[LinkSlot<P>],
    candidate: impl Fn(&LinkSlot<P>) -> bool,
    counted: impl Fn(&LinkSlot<P>) -> bool + Copy,
) -> Option<(Option<NetworkPrefix>, usize)> {
    let mut best: Option<(Option<NetworkPrefix>, usize)> = None;
    for slot in slots.iter().filter(|s| candidate(s)) {
        let n = count(slots, slot.prefix, counted);
        if best.is_none_or(|(_, m)| n > m) {
            best = Some((slot.prefix, n));
        }
    }
    best
}

impl<P: Profile> Node<P> {
    /// Makes room for an inbound link from `prefix` (evicting what the
    /// rules in the [module docs](self) say), or refuses it.
    pub(crate) fn admit_inbound(
        &mut self,
        prefix: Option<NetworkPrefix>,
    ) -> Result<(), OpenLinkError> {
        let limits = InboundLimits::new(self.links.as_ref().len(), &self.config);
        let slots = self.links.as_ref();
        let from_prefix = count(slots, prefix, is_inbound);
        let half_open_from_prefix = count(slots, prefix, is_half_open_inbound);
        if from_prefix >= limits.per_prefix
            || half_open_from_prefix >= self.config.max_half_open_per_prefix
        {
            // The prefix makes room for itself, out of its own half-open
            // links, or not at all.
            if !self.evict_half_open(prefix) {
                let by = &mut self.stats.inbound_refused;
                by.network_full = by.network_full.saturating_add(1);
                return Err(OpenLinkError::NetworkFull);
            }
        }
        let slots = self.links.as_ref();
        let half_open = slots.iter().filter(|s| is_half_open_inbound(s)).count();
        if half_open >= self.config.max_half_open {
            self.evict_crowded_half_open();
        }
        let slots = self.links.as_ref();
        let inbound = slots.iter().filter(|s| is_inbound(s)).count();
        let free = slots.iter().any(|s| s.session.is_none());
        // Links this node dialled beyond their quarter (for `EXTEND`s
        // long served, held open by keepalives) give way before the
        // inbound share is full: otherwise a busy relay's table fills with
        // them and it refuses every node that wants to reach it. The slot
        // frees once the link's `Close` frame is out, for the next comer.
        let share_full = inbound >= limits.total;
        if (share_full || !free)
            && !self.evict_crowded_half_open()
            && !self.evict_established_inbound(prefix)
            && !self.prune_inbound()
            && (share_full || !self.prune_idle_outbound())
        {
            let by = &mut self.stats.inbound_refused;
            by.table_full = by.table_full.saturating_add(1);
            return Err(OpenLinkError::TableFull);
        }
        Ok(())
    }

    /// Evicts the weakest half-open inbound link of `prefix`.
    fn evict_half_open(&mut self, prefix: Option<NetworkPrefix>) -> bool {
        let weakest = self
            .links
            .as_ref()
            .iter()
            .enumerate()
            .filter(|(_, s)| is_half_open_inbound(s) && s.prefix == prefix)
            .min_by_key(|(_, s)| {
                let progress = s.session.as_ref().map_or(0, |x| x.handshake_progress());
                (progress, s.opened_at)
            })
            .map(|(i, _)| i);
        weakest.is_some_and(|i| self.evict(i))
    }

    /// Evicts the weakest half-open inbound link of the prefix with the most
    /// of them.
    fn evict_crowded_half_open(&mut self) -> bool {
        match most_crowded(
            self.links.as_ref(),
            is_half_open_inbound,
            is_half_open_inbound,
        ) {
            Some((prefix, _)) => self.evict_half_open(prefix),
            None => false,
        }
    }

    /// Evicts the youngest established inbound link of the prefix with the
    /// most inbound links, if it holds more than `arriving`'s prefix does.
    /// The longest-standing quarter of established inbound links is exempt.
    fn evict_established_inbound(&mut self, arriving: Option<NetworkPrefix>) -> bool {
        let slots = self.links.as_ref();
        let evictable = |s: &LinkSlot<P>| {
            is_established_inbound(s) && !is_protected(slots, s) && !s.introduces_peer
        };
        let Some((crowded, n)) = most_crowded(slots, evictable, is_inbound) else {
            return false;
        };
        // Only a swap that lowers the largest share is worth a live link:
        // in a table where every network holds one link, newcomers wait.
        if n < 2 || n <= count(slots, arriving, is_inbound).saturating_add(1) {
            return false;
        }
        let youngest = slots
            .iter()
            .enumerate()
            .filter(|(_, s)| evictable(s) && s.prefix == crowded)
            .max_by_key(|(_, s)| s.opened_at)
            .map(|(i, _)| i);
        youngest.is_some_and(|i| self.evict(i))
    }

    fn evict(&mut self, index: usize) -> bool {
        let Some(session) = self.session_mut(index) else {
            return false;
        };
        session.close(CloseReason::Evicted);
        self.sync_slot(index);
        true
    }
}
