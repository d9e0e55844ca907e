//! Path selection: which relays a circuit to a destination goes through.
//!
//! Rules (`docs/relay_protocol_spec.md` §7):
//! - relays are drawn one position at a time from the healthy relays *with
//!   an address* in the node table, by bucket ([`NodeTable::draw`]): a
//!   table (tried or new), a bucket holding a candidate, a candidate in it.
//!   An attacker's share of draws is its share of buckets, which the table
//!   bounds by the networks it gossips from, not by how much it gossips;
//! - all hops are distinct nodes, and the destination is only ever last;
//! - no two hops, destination included, share a network prefix (IPv4 /16,
//!   IPv6 /32) of any advertised address, or of the address a tried entry
//!   was reached at, so one network operator cannot see both ends of a
//!   path from its own address space;
//! - a relay with no address is never drawn: it could not be dialled, and
//!   would pass the prefix rule for free. It may still be a destination;
//! - with guards, the first hop is drawn from the usable guards only;
//! - with layer-2 guards (`vanguards` feature), the second hop is drawn
//!   from the usable layer-2 guards only, and the path fails if none is
//!   (`core/src/node/vanguards.rs`);
//! - a relay in back-off after a failure pinned on it, or one the caller
//!   asks to avoid (the relays of a circuit just lost), is not drawn;
//!   except that a guard to avoid is still drawn for the first hop when no
//!   other guard is usable: guards are few on purpose, and a node with one
//!   usable guard would otherwise give up the avoid set whole and draw the
//!   lost circuit's other relays again (the dead one among them). The same
//!   holds for a layer-2 guard as the second hop.

use core::fmt;
use heapless::Vec;
use rand_core::Rng;

use crate::capacity::VecStore;
use crate::cgo::MAX_HOPS;
use crate::identity::{NodeId, MAX_ADDRESSES};
use crate::time::Instant;

use super::{NetworkPrefix, NodeTable, PeerEntry, Place, Tables};

/// Relays before the destination unless configured otherwise.
pub const DEFAULT_PATH_RELAYS: usize = 3;
/// The most relays a path may have (one CGO layer per hop, the destination
/// included).
pub const MAX_PATH_RELAYS: usize = MAX_HOPS - 1;

/// The networks of an entry: of every advertised address, and the one a
/// tried entry was reached in.
pub fn prefixes(entry: &PeerEntry) -> Vec<NetworkPrefix, { MAX_ADDRESSES + 1 }> {
    let mut networks: Vec<NetworkPrefix, { MAX_ADDRESSES + 1 }> = entry
        .descriptor
        .repr()
        .addresses
        .iter()
        .map(|a| NetworkPrefix::of(a.socket.ip()))
        .collect();
    if let Place::Tried {
        network: Some(reached),
        ..
    } = entry.place()
    {
        let _ = networks.push(reached);
    }
    networks
}

/// A chosen path: relays in order from the client, then the destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    hops: Vec<NodeId, MAX_HOPS>,
}

impl Path {
    /// A path through exactly `hops` (destination last), for callers that
    /// choose paths themselves. `None` if empty, too long, or a node repeats.
    pub fn from_hops(hops: &[NodeId]) -> Option<Self> {
        if hops.is_empty() {
            return None;
        }
        let hops: Vec<NodeId, MAX_HOPS> = Vec::from_slice(hops).ok()?;
        let distinct = hops
            .iter()
            .enumerate()
            .all(|(i, h)| hops.iter().skip(i.saturating_add(1)).all(|o| o != h));
        distinct.then_some(Path { hops })
    }

    /// This path with `relay` inserted before the destination: the path to
    /// a destination reached through an introducer (relay spec §7). `None`
    /// if too long or `relay` is already on it.
    pub fn through_last_relay(&self, relay: NodeId) -> Option<Self> {
        let mut hops = self.hops.clone();
        let before_destination = hops.len().checked_sub(1)?;
        hops.insert(before_destination, relay).ok()?;
        Path::from_hops(&hops)
    }

    /// Every hop, the destination last.
    pub fn hops(&self) -> &[NodeId] {
        &self.hops
    }

    /// The relays before the destination.
    pub fn relays(&self) -> &[NodeId] {
        self.hops.split_last().map(|(_, r)| r).unwrap_or(&[])
    }

    /// The destination.
    pub fn destination(&self) -> Option<NodeId> {
        self.hops.last().copied()
    }
}

/// What a path must look like.
#[derive(Debug, Clone, Copy)]
pub struct PathRules<'a> {
    /// Relays before the destination.
    pub relays: usize,
    /// If not empty, the first hop must be one of these.
    pub guards: &'a [NodeId],
    /// If not empty, the second hop (of a path of at least two relays)
    /// must be one of these: the layer-2 guards (`vanguards` feature).
    #[cfg(feature = "vanguards")]
    pub second_layer: &'a [NodeId],
    /// Relays not to use (the relays of a circuit just lost, which the
    /// replacement avoids).
    pub avoid: &'a [NodeId],
    /// Now, for relays' back-offs ([`RelayHealth`](super::RelayHealth)).
    pub now: Instant,
}

impl Default for PathRules<'_> {
    fn default() -> Self {
        PathRules {
            relays: DEFAULT_PATH_RELAYS,
            guards: &[],
            #[cfg(feature = "vanguards")]
            second_layer: &[],
            avoid: &[],
            now: Instant::ZERO,
        }
    }
}

/// Why no path could be chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PathError {
    /// The destination is not in the node table (its onion key is needed).
    UnknownDestination,
    /// More relays were asked for than a circuit can have.
    TooLong(usize),
    /// Guards were given but none is a usable first hop.
    NoUsableGuard,
    /// Layer-2 guards were given but none is a usable second hop for this
    /// path (relay spec §11).
    #[cfg(feature = "vanguards")]
    NoUsableSecondLayerGuard,
    /// Not enough healthy relays satisfy the rules.
    NotEnoughRelays {
        /// Relays asked for.
        wanted: usize,
        /// Relays found before running out.
        found: usize,
    },
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathError::UnknownDestination => {
                write!(f, "destination unknown; learn its descriptor first")
            }
            PathError::TooLong(n) => {
                write!(
                    f,
                    "{n} relays asked for, a circuit allows {MAX_PATH_RELAYS}"
                )
            }
            PathError::NoUsableGuard => write!(f, "no guard is a healthy relay; pick new guards"),
            #[cfg(feature = "vanguards")]
            PathError::NoUsableSecondLayerGuard => write!(
                f,
                "no layer-2 guard fits this path; it is retried as they recover or expire"
            ),
            PathError::NotEnoughRelays { wanted, found } => write!(
                f,
                "only {found} of {wanted} relays fit the path rules; learn more nodes"
            ),
        }
    }
}

impl core::error::Error for PathError {}

/// Whether `candidate` may join a path that already has `chosen` hops.
fn compatible(candidate: &PeerEntry, chosen: &[&PeerEntry]) -> bool {
    let mine = prefixes(candidate);
    chosen.iter().all(|other| {
        other.node_id() != candidate.node_id() && !prefixes(other).iter().any(|p| mine.contains(p))
    })
}

/// Chooses a path to `destination` from the node table.
pub fn select_path<S: VecStore<PeerEntry>>(
    table: &NodeTable<S>,
    destination: NodeId,
    rules: &PathRules<'_>,
    now_unix_secs: u64,
    rng: &mut impl Rng,
) -> Result<Path, PathError> {
    if rules.relays > MAX_PATH_RELAYS {
        return Err(PathError::TooLong(rules.relays));
    }
    let dest = table
        .get(&destination)
        .ok_or(PathError::UnknownDestination)?;
    let mut chosen: Vec<&PeerEntry, MAX_HOPS> = Vec::new();
    // The destination's prefixes are off limits to relays too.
    chosen
        .push(dest)
        .map_err(|_| PathError::TooLong(rules.relays))?;
    for position in 0..rules.relays {
        let guard_only = position == 0 && !rules.guards.is_empty();
        // The avoid set holds on the first pass; a guard (of either layer)
        // gets a second pass without it. (Without the `vanguards` feature
        // the code is as it was before it: the firmware image must not
        // grow, and a constant `false` in the filter cost it 96 bytes.)
        #[cfg(feature = "vanguards")]
        let layer_two = position == 1 && !rules.second_layer.is_empty();
        #[cfg(feature = "vanguards")]
        let passes = if guard_only || layer_two { 2 } else { 1 };
        #[cfg(not(feature = "vanguards"))]
        let passes = if guard_only { 2 } else { 1 };
        let next = (0..passes).find_map(|pass| {
            table.draw(Tables::Both, rng, |e| {
                let ok = e.is_path_relay(now_unix_secs)
                    && e.health.available(rules.now)
                    && (pass > 0 || !rules.avoid.contains(&e.node_id()))
                    && compatible(e, &chosen)
                    && (!guard_only || rules.guards.contains(&e.node_id()));
                #[cfg(feature = "vanguards")]
                let ok = ok && (!layer_two || rules.second_layer.contains(&e.node_id()));
                ok
            })
        });
        match next {
            Some(entry) => {
                chosen
                    .push(entry)
                    .map_err(|_| PathError::TooLong(rules.relays))?;
            }
            None if guard_only => return Err(PathError::NoUsableGuard),
            #[cfg(feature = "vanguards")]
            None if layer_two => return Err(PathError::NoUsableSecondLayerGuard),
            None => {
                return Err(PathError::NotEnoughRelays {
                    wanted: rules.relays,
                    found: position,
                })
            }
        }
    }
    let mut hops: Vec<NodeId, MAX_HOPS> = chosen.iter().skip(1).map(|e| e.node_id()).collect();
    hops.push(destination)
        .map_err(|_| PathError::TooLong(rules.relays))?;
    Ok(Path { hops })
}
