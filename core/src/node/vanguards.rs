//! Layer-2 guards, vanguards-lite style (relay spec §11; Tor proposal 333):
//! the few relays the hop after the guard of every path this node draws is
//! taken from.
//!
//! With fresh middle relays for every circuit, an adversary who runs some
//! relays is soon the second hop of one of this node's circuits, and the
//! second hop's link peer is the guard: it learns the guard, and can then
//! watch or attack it (guard discovery). With
//! [`NodeConfig::second_layer_guards`](super::NodeConfig::second_layer_guards)
//! `= n > 0` the node keeps `n` *layer-2 guards* (at most
//! [`MAX_SECOND_LAYER_GUARDS`]) and draws the second hop of every path from
//! them only:
//!
//! - each is drawn as a path position is (by bucket, relay spec §7) among
//!   the healthy relays of the node table that advertise an address and
//!   are out of back-off, not already a layer-2 guard and sharing no
//!   network prefix with one (as Tor keeps them out of each other's
//!   family). They may be first-layer guards too;
//! - each gets a lifetime of `max(X₁, X₂)` seconds, `X₁` and `X₂` uniform
//!   integers from [`MIN_LIFETIME_SECS`] to [`MAX_LIFETIME_SECS`]
//!   inclusive (1 to 12 days): a mean of 8.33 days, not the 6.5 of one draw, stored as an
//!   expiry in unix seconds (`unix_time_at_zero` plus the node's time);
//! - before each path is drawn, those expired (expiry at or before now) or
//!   no longer healthy relays of the table (gone, descriptor expired, 3
//!   failures in a row) leave the set, as do the newest beyond `n` (the
//!   setting was lowered), and fresh ones are drawn up to `n`.
//!   One in back-off stays, and is not used until the back-off ends;
//! - the second hop is drawn by bucket among the layer-2 guards that the
//!   path's rules allow (not the destination, not the first hop, no
//!   prefix shared with either, out of back-off; the relays a replacement
//!   circuit avoids only if another is left, as for guards). If none is
//!   allowed, the path fails (`PathError::NoUsableSecondLayerGuard`) and
//!   the build is retried later, as Tor does: no unrestricted relay is
//!   taken in its place, and no extra layer-2 guard is drawn for it, or an
//!   adversary who makes them fail would get fresh draws. (A rendezvous
//!   or introduction circuit whose last hop is not in the table runs
//!   through one more drawn relay before it, `path_ending_at`; when that
//!   relay is the second hop it is drawn among the layer-2 guards.)
//!
//! Paths of one relay have no second hop and are unaffected; so is a
//! second hop the destination dictates (the introducer of an introduced
//! destination with `path_relays` 2, §7), which the node does not draw.
//! The set is kept in memory only, as C Tor does: a restart draws a new one.

use heapless::Vec;
use rand_core::Rng;

use crate::discovery::{prefixes, NetworkPrefix, Tables};
use crate::identity::{NodeId, MAX_ADDRESSES};

use super::{Node, Profile};

/// The most layer-2 guards a node keeps (and the most
/// [`NodeConfig::second_layer_guards`](super::NodeConfig::second_layer_guards)
/// allows).
pub const MAX_SECOND_LAYER_GUARDS: usize = 8;
/// The shortest lifetime one draw gives a layer-2 guard: 1 day.
pub const MIN_LIFETIME_SECS: u64 = 24 * 3600;
/// The longest lifetime one draw gives a layer-2 guard: 12 days.
pub const MAX_LIFETIME_SECS: u64 = 12 * 24 * 3600;

/// The layer-2 guards and their expiries (unix seconds), index for index.
#[derive(Debug, Clone, Default)]
pub(crate) struct SecondLayer {
    ids: Vec<NodeId, MAX_SECOND_LAYER_GUARDS>,
    expiries: Vec<u64, MAX_SECOND_LAYER_GUARDS>,
}

impl SecondLayer {
    pub(crate) const fn new() -> Self {
        SecondLayer {
            ids: Vec::new(),
            expiries: Vec::new(),
        }
    }

    /// The layer-2 guards, oldest first.
    pub(crate) fn ids(&self) -> &[NodeId] {
        &self.ids
    }
}

/// One uniform draw on [`MIN_LIFETIME_SECS`]`..=`[`MAX_LIFETIME_SECS`]
/// (the modulo's bias is below 2⁻⁴⁴).
fn uniform_lifetime(rng: &mut impl Rng) -> u64 {
    let span = MAX_LIFETIME_SECS
        .saturating_sub(MIN_LIFETIME_SECS)
        .saturating_add(1);
    MIN_LIFETIME_SECS.saturating_add(rng.next_u64().checked_rem(span).unwrap_or(0))
}

/// A layer-2 guard's lifetime in seconds: the longer of two uniform draws
/// on 1 to 12 days (Tor's `max(X, X)`).
pub(crate) fn draw_lifetime(rng: &mut impl Rng) -> u64 {
    let a = uniform_lifetime(rng);
    let b = uniform_lifetime(rng);
    a.max(b)
}

impl<P: Profile> Node<P> {
    /// The layer-2 guards, oldest first: the second hop of every path this
    /// node draws is one of them (module doc). Empty while
    /// [`NodeConfig::second_layer_guards`](super::NodeConfig::second_layer_guards)
    /// is 0, and until the node first builds a circuit.
    pub fn second_layer_guards(&self) -> &[NodeId] {
        self.circuits.second_layer.ids()
    }

    /// When each layer-2 guard expires, in unix seconds, in the order of
    /// [`second_layer_guards`](Self::second_layer_guards).
    pub fn second_layer_guard_expiries(&self) -> &[u64] {
        &self.circuits.second_layer.expiries
    }

    /// Drops layer-2 guards that expired or are no longer healthy relays,
    /// and draws fresh ones up to the configured count. Called before each
    /// path is drawn.
    pub(crate) fn maintain_second_layer_guards(&mut self) {
        let wanted = self.config.second_layer_guards.min(MAX_SECOND_LAYER_GUARDS);
        let set = &mut self.circuits.second_layer;
        let unix = super::discovery::unix_now(&self.config, self.now);
        let table = self.discovery.table();
        let mut at = 0;
        while let (Some(id), Some(&expiry)) = (set.ids.get(at), set.expiries.get(at)) {
            let healthy = table.get(id).is_some_and(|e| e.is_path_relay(unix));
            if healthy && expiry > unix && at < wanted {
                at = at.saturating_add(1);
            } else {
                set.ids.remove(at);
                set.expiries.remove(at);
            }
        }
        let now = self.now;
        while set.ids.len() < wanted {
            let mut taken: Vec<NetworkPrefix, { MAX_SECOND_LAYER_GUARDS * (MAX_ADDRESSES + 1) }> =
                Vec::new();
            for prefix in set
                .ids
                .iter()
                .filter_map(|g| table.get(g))
                .flat_map(prefixes)
            {
                if taken.push(prefix).is_err() {
                    break;
                }
            }
            let ids = &set.ids;
            let Some(entry) = table.draw(Tables::Both, &mut self.rng, |e| {
                e.is_path_relay(unix)
                    && e.health.available(now)
                    && !ids.contains(&e.node_id())
                    && !prefixes(e).iter().any(|p| taken.contains(p))
            }) else {
                break;
            };
            let id = entry.node_id();
            let expiry = unix.saturating_add(draw_lifetime(&mut self.rng));
            if set.ids.push(id).is_err() || set.expiries.push(expiry).is_err() {
                break;
            }
        }
    }
}
