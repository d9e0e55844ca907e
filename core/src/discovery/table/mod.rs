//! The bounded, eclipse-resistant table of nodes this node knows.
//!
//! Capacity is fixed by the storage type `S` and divided into a *new* and
//! a *tried* table of buckets ([`Layout`], after Bitcoin Core's address
//! manager; the design and why each rule exists are in
//! `docs/node_table.md`):
//!
//! - a descriptor learned by gossip goes into the new table, in a bucket
//!   chosen under a secret key by the network of the link it came over and
//!   the network of its first address. A full bucket keeps its entries: a
//!   newcomer only replaces one that has expired or keeps failing. Nothing
//!   a descriptor says about itself (its issue time, its addresses) buys it
//!   a place;
//! - a node this node dialled and that proved its identity moves to the
//!   tried table, in a bucket chosen by the network it was reached in. A
//!   full tried bucket does not evict its incumbent on the spot: the
//!   incumbent is tested first (a feeler dial), and kept if it answers;
//! - a descriptor for a known node replaces the stored one only if it was
//!   issued later (anti-rollback); the same bytes again only refresh
//!   `last_seen`.
//!
//! Every rule that can refuse a descriptor is cheap and runs before its
//! signature is checked ([`NodeTable::precheck`], [`NodeTable::admits`]).

mod buckets;
mod draw;
mod entry;
mod new;
#[cfg(test)]
mod tests;
mod tried;

use core::fmt;

use heapless::Vec;

use crate::capacity::VecStore;
use crate::identity::{NodeId, Transport, VerifiedDescriptor};
use crate::time::Instant;

use super::NetworkPrefix;
use buckets::BucketKey;

pub use buckets::{Layout, BUCKET_LEN};
pub use draw::{Tables, TRIED_PERCENT};
pub use entry::{PeerEntry, Place, Source, MAX_HEALTHY_FAILURES};
pub use tried::{Collision, MAX_COLLISIONS};

/// What an insertion did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum InsertOutcome {
    /// A node we did not know.
    Added,
    /// A newer descriptor for a node we knew.
    Updated,
    /// The same descriptor again: only `last_seen` moved.
    Refreshed,
    /// Added in place of the evicted node.
    Replaced {
        /// The node that was dropped.
        evicted: NodeId,
    },
}

/// Why a descriptor was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum InsertError {
    /// We hold a newer descriptor for this node (a replay of an old one).
    OlderThanKnown,
    /// We hold a different descriptor with the same issue time: a node
    /// never signs two, so this one is forged or altered.
    NotNewer,
    /// The descriptor is our own node's.
    OwnDescriptor,
    /// Its bucket is full of healthy entries, which a newcomer does not
    /// displace.
    BucketFull,
    /// The table is full and no entry may give way.
    TableFull,
}

impl fmt::Display for InsertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InsertError::OlderThanKnown => {
                "a newer descriptor for this node is already known; the old one is a replay"
            }
            InsertError::NotNewer => {
                "a different descriptor with the same issue time is known; this one is forged"
            }
            InsertError::OwnDescriptor => "this is our own descriptor",
            InsertError::BucketFull => {
                "its bucket is full of healthy nodes; it is kept out until one fails or expires"
            }
            InsertError::TableFull => "node table full and no entry may give way",
        })
    }
}

impl core::error::Error for InsertError {}

/// What the table knows of a descriptor, judged before its signature
/// is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    /// The exact bytes stored for this node: nothing to verify.
    Identical,
    /// A later descriptor of a known node: verify, then it replaces.
    Newer,
    /// A node we do not know.
    Unknown,
}

/// The table of known nodes, holding as many as its storage `S` does.
#[derive(Clone)]
pub struct NodeTable<S> {
    own_id: NodeId,
    key: BucketKey,
    layout: Layout,
    entries: S,
    collisions: Vec<Collision, MAX_COLLISIONS>,
}

impl<S: VecStore<PeerEntry>> fmt::Debug for NodeTable<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeTable")
            .field("own_id", &self.own_id)
            .field("layout", &self.layout)
            .field("entries", &self.entries.view().len())
            .finish_non_exhaustive()
    }
}

impl<S: VecStore<PeerEntry>> NodeTable<S> {
    /// An empty table for the node `own_id` (which it never stores), its
    /// buckets chosen under `key` (secret, drawn from the node's CSPRNG).
    pub fn new(own_id: NodeId, key: [u8; 32]) -> Self {
        NodeTable {
            own_id,
            key: BucketKey::new(key),
            layout: Layout::for_capacity(S::CAPACITY),
            entries: S::EMPTY,
            collisions: Vec::new(),
        }
    }

    /// How the capacity is divided.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Known nodes.
    pub fn len(&self) -> usize {
        self.entries.view().len()
    }

    /// Whether no node is known.
    pub fn is_empty(&self) -> bool {
        self.entries.view().is_empty()
    }

    /// Every entry, in no particular order.
    pub fn entries(&self) -> &[PeerEntry] {
        self.entries.view()
    }

    /// The entry for `id`.
    pub fn get(&self, id: &NodeId) -> Option<&PeerEntry> {
        self.entries.view().iter().find(|e| e.id == *id)
    }

    fn get_mut(&mut self, id: &NodeId) -> Option<&mut PeerEntry> {
        self.entries.view_mut().iter_mut().find(|e| e.id == *id)
    }

    fn index_of(&self, id: &NodeId) -> Option<usize> {
        self.entries.view().iter().position(|e| e.id == *id)
    }

    /// Entries in `place`'s bucket (of the same table).
    fn bucket_len(&self, place: Place) -> usize {
        self.entries
            .view()
            .iter()
            .filter(|e| same_bucket(e.place, place))
            .count()
    }

    /// The table's rules for a known node, from the fields of a descriptor
    /// not yet verified: anti-rollback, and identical bytes.
    pub fn precheck(
        &self,
        id: &NodeId,
        issued_at: u64,
        bytes: &[u8],
    ) -> Result<Known, InsertError> {
        if *id == self.own_id {
            return Err(InsertError::OwnDescriptor);
        }
        let Some(entry) = self.get(id) else {
            return Ok(Known::Unknown);
        };
        let known = entry.descriptor.repr().issued_at;
        match issued_at.cmp(&known) {
            core::cmp::Ordering::Less => Err(InsertError::OlderThanKnown),
            core::cmp::Ordering::Greater => Ok(Known::Newer),
            core::cmp::Ordering::Equal if entry.descriptor.as_bytes() == bytes => {
                Ok(Known::Identical)
            }
            core::cmp::Ordering::Equal => Err(InsertError::NotNewer),
        }
    }

    /// Stores a verified descriptor from `source`, learned at `now` (wall
    /// clock `now_unix_secs`), by the rules in the module docs.
    pub fn insert(
        &mut self,
        descriptor: VerifiedDescriptor,
        source: Source,
        now: Instant,
        now_unix_secs: u64,
    ) -> Result<InsertOutcome, InsertError> {
        let id = descriptor.node_id();
        let issued = descriptor.repr().issued_at;
        match self.precheck(&id, issued, descriptor.as_bytes())? {
            Known::Unknown => self.insert_new(descriptor, source, now, now_unix_secs),
            Known::Identical => {
                self.refresh(&id, now);
                Ok(InsertOutcome::Refreshed)
            }
            Known::Newer => {
                if let Some(entry) = self.get_mut(&id) {
                    entry.descriptor = descriptor;
                    entry.last_seen = now;
                }
                Ok(InsertOutcome::Updated)
            }
        }
    }

    /// The same descriptor arrived again: only `last_seen` moves.
    pub fn refresh(&mut self, id: &NodeId, now: Instant) {
        if let Some(entry) = self.get_mut(id) {
            entry.last_seen = now;
        }
    }

    /// Drops every expired entry; returns how many.
    pub fn remove_expired(&mut self, now_unix_secs: u64) -> usize {
        let before = self.entries.view().len();
        self.entries
            .view_mut()
            .retain(|e| e.descriptor.repr().expires_at > now_unix_secs);
        before.saturating_sub(self.entries.view().len())
    }

    /// Records a failure to reach or use `id`. An entry with
    /// [`MAX_HEALTHY_FAILURES`] is left out of paths and may be replaced by
    /// any newcomer of its bucket.
    pub fn record_failure(&mut self, id: &NodeId) {
        if let Some(entry) = self.get_mut(id) {
            entry.failures = entry.failures.saturating_add(1);
        }
    }

    /// Records a success with `id`: its failures are forgiven.
    pub fn record_success(&mut self, id: &NodeId, now: Instant) {
        if let Some(entry) = self.get_mut(id) {
            entry.failures = 0;
            entry.last_seen = now;
            entry.health.on_reached();
        }
    }

    /// Marks the entries `wanted` says the node has messages waiting for,
    /// and only those, as in use: until marked otherwise, no newcomer takes
    /// their place (an entry still goes when its descriptor expires).
    /// Otherwise gossip could push out a destination while its messages
    /// wait, and they could never leave.
    pub fn mark_in_use(&mut self, wanted: impl Fn(&NodeId) -> bool) {
        for entry in self.entries.view_mut().iter_mut() {
            entry.in_use = wanted(&entry.id);
        }
    }

    /// The node this table belongs to.
    pub fn own_id(&self) -> NodeId {
        self.own_id
    }

    /// The health record of `id`, to count what its circuits did.
    pub fn health_mut(&mut self, id: &NodeId) -> Option<&mut super::RelayHealth> {
        self.get_mut(id).map(|e| &mut e.health)
    }

    /// Records that a link to `id` came up over `transport`.
    pub fn record_transport(&mut self, id: &NodeId, transport: Transport) {
        if let Some(entry) = self.get_mut(id) {
            entry.transport = Some(transport);
        }
    }

    /// Nodes path selection may draw as relays: healthy, relaying, with an
    /// address ([`PeerEntry::is_path_relay`]).
    pub fn healthy_relays(&self, now_unix_secs: u64) -> impl Iterator<Item = &PeerEntry> + Clone {
        self.entries
            .view()
            .iter()
            .filter(move |e| e.is_path_relay(now_unix_secs))
    }
}

/// Whether two places are the same bucket of the same table.
fn same_bucket(a: Place, b: Place) -> bool {
    match (a, b) {
        (Place::New { bucket: x }, Place::New { bucket: y }) => x == y,
        (Place::Tried { bucket: x, .. }, Place::Tried { bucket: y, .. }) => x == y,
        _ => false,
    }
}

/// The network of a descriptor's first address, which picks its new
/// bucket among those its source reaches.
fn first_network(descriptor: &VerifiedDescriptor) -> Option<NetworkPrefix> {
    descriptor
        .repr()
        .addresses
        .first()
        .map(|a| NetworkPrefix::of(a.socket.ip()))
}
