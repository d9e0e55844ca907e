//! One known node, where it sits in the table, and where its descriptor
//! came from.

use crate::identity::{NodeId, Transport, VerifiedDescriptor};
use crate::time::Instant;

use super::super::health::RelayHealth;

use super::super::NetworkPrefix;

/// Failures after which a node no longer counts as healthy for paths, and
/// its entry may be replaced.
pub const MAX_HEALTHY_FAILURES: u8 = 3;

/// Where a descriptor came from. A gossiped descriptor's source is the
/// network of the link it arrived on: that address was proven by the
/// transport, unlike anything the descriptor says about itself, so it is
/// what the new table charges the entry to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Source {
    /// The node's owner: a bootstrap list, a saved snapshot, an anchor
    /// ([`LearnDescriptor`](crate::node::LearnDescriptor)). Trusted, and
    /// spread over the whole new table by node id.
    Local,
    /// A link whose peer is in this network (`None`: the adapter gave no
    /// address; all such links count as one network).
    Link(Option<NetworkPrefix>),
}

/// Which part of the table an entry is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Place {
    /// Learned, never reached by a link this node dialled. The bucket is
    /// chosen by the descriptor's source and the network of its first
    /// address.
    New {
        /// Its bucket in the new table.
        bucket: u16,
    },
    /// Reached: this node dialled it and it proved its identity. The bucket
    /// is chosen by the network it was reached in.
    Tried {
        /// Its bucket in the tried table.
        bucket: u16,
        /// The network of the address it was reached at.
        network: Option<NetworkPrefix>,
    },
}

/// One known node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerEntry {
    /// Its newest verified descriptor.
    pub descriptor: VerifiedDescriptor,
    /// When we first learned of it.
    pub learned_at: Instant,
    /// When we last heard of or from it.
    pub last_seen: Instant,
    /// Consecutive failures (dials, handshakes, circuits) since the last success.
    pub failures: u8,
    /// The transport of the last link to it that came up, preferred for
    /// the next dial.
    pub transport: Option<Transport>,
    /// How it did on this node's own circuits.
    pub health: RelayHealth,
    /// Its node id, kept so that lookups do not hash every key.
    pub(super) id: NodeId,
    /// Where it sits.
    pub(super) place: Place,
    /// The node has messages waiting for it ([`NodeTable::mark_in_use`]):
    /// no newcomer displaces it, or the messages could never leave.
    pub(super) in_use: bool,
}

impl PeerEntry {
    pub(super) fn new(descriptor: VerifiedDescriptor, place: Place, now: Instant) -> Self {
        PeerEntry {
            id: descriptor.node_id(),
            descriptor,
            learned_at: now,
            last_seen: now,
            failures: 0,
            transport: None,
            health: RelayHealth::new(),
            place,
            in_use: false,
        }
    }

    /// Its node id.
    pub fn node_id(&self) -> NodeId {
        self.id
    }

    /// Which part of the table it is in.
    pub fn place(&self) -> Place {
        self.place
    }

    /// Whether it was reached by a link this node dialled.
    pub fn is_tried(&self) -> bool {
        matches!(self.place, Place::Tried { .. })
    }

    /// Whether it may be used in new paths.
    pub fn is_healthy(&self, now_unix_secs: u64) -> bool {
        self.failures < MAX_HEALTHY_FAILURES && self.descriptor.repr().expires_at > now_unix_secs
    }

    /// Whether path selection may draw it as a relay: healthy, relaying,
    /// and with an address, and not reached through introducers. A relay
    /// with no address cannot be dialled, and would pass the path prefix
    /// rule for free; one reached through introducers cannot be dialled
    /// either, whatever addresses it lists (relay spec §2).
    pub fn is_path_relay(&self, now_unix_secs: u64) -> bool {
        let repr = self.descriptor.repr();
        repr.relay
            && !repr.addresses.is_empty()
            && !self.descriptor.is_introduced()
            && self.is_healthy(now_unix_secs)
    }

    /// How badly it deserves its place: `Some` for an entry any newcomer of
    /// its bucket may replace (expired, ranked by how long ago; then
    /// failing, by failures), `None` for a healthy one. Nothing the entry
    /// says about itself (its issue time) counts.
    pub(super) fn badness(&self, now_unix_secs: u64) -> Option<(u8, u64)> {
        let expires_at = self.descriptor.repr().expires_at;
        if expires_at <= now_unix_secs {
            Some((1, now_unix_secs.saturating_sub(expires_at)))
        } else if self.failures >= MAX_HEALTHY_FAILURES {
            Some((0, u64::from(self.failures)))
        } else {
            None
        }
    }
}
