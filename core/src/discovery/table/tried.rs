//! The tried table: nodes this node dialled and that proved their
//! identity, and test-before-evict when a tried bucket is full.

use crate::capacity::VecStore;
use crate::identity::{NodeId, VerifiedDescriptor};
use crate::time::Instant;

use super::super::NetworkPrefix;
use super::{same_bucket, InsertError, InsertOutcome, NodeTable, PeerEntry, Place, Source};

/// Promotions a table keeps waiting for the test of an incumbent.
pub const MAX_COLLISIONS: usize = 4;

/// A node that was reached while its tried bucket was full of healthy
/// entries. It stays in the new table until `incumbent` has been tested:
/// if the incumbent answers it keeps its place, otherwise the newcomer
/// takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Collision {
    /// The node reached.
    pub newcomer: NodeId,
    /// The network it was reached in.
    pub network: Option<NetworkPrefix>,
    /// The entry of its tried bucket to test.
    pub incumbent: NodeId,
}

/// Where a node reached in some network goes in the tried table.
enum TriedRoom {
    /// Its bucket has room.
    Free(Place),
    /// Its bucket's entry at this index is failing or expired: it goes back
    /// to the new table and the node takes its place.
    Replace(usize, Place),
    /// Its bucket is full of healthy entries: test this one first.
    Collide(NodeId),
    /// This table has no tried part (a capacity of one).
    None,
}

impl<S: VecStore<PeerEntry>> NodeTable<S> {
    fn tried_room(
        &self,
        id: &NodeId,
        network: Option<NetworkPrefix>,
        now_unix_secs: u64,
    ) -> TriedRoom {
        if self.layout.tried_bucket_len == 0 {
            return TriedRoom::None;
        }
        let bucket = self.key.tried_bucket(&self.layout, id, network);
        let place = Place::Tried { bucket, network };
        if self.bucket_len(place) < self.layout.tried_bucket_len {
            return TriedRoom::Free(place);
        }
        if let Some(index) = self.worst(Some(place), now_unix_secs) {
            return TriedRoom::Replace(index, place);
        }
        // The incumbent heard of least recently is the likeliest to be gone.
        self.entries
            .view()
            .iter()
            .filter(|e| same_bucket(e.place, place) && !e.in_use)
            .min_by_key(|e| e.last_seen)
            .map_or(TriedRoom::None, |e| TriedRoom::Collide(e.id))
    }

    /// `id` was reached: this node dialled it (at an address in `network`)
    /// and it proved its identity. Gossip never calls this. It moves to the
    /// tried table, or, if its tried bucket is full of healthy entries, a
    /// [`Collision`] is recorded and it stays where it is until the
    /// incumbent has been tested ([`tested`](Self::tested)).
    pub fn promote(&mut self, id: &NodeId, network: Option<NetworkPrefix>, now_unix_secs: u64) {
        if self.get(id).is_none_or(PeerEntry::is_tried) {
            return;
        }
        match self.tried_room(id, network, now_unix_secs) {
            TriedRoom::Free(place) => self.set_place(id, place),
            TriedRoom::Replace(index, place) => {
                self.demote(index);
                self.set_place(id, place);
            }
            TriedRoom::Collide(incumbent) => self.add_collision(Collision {
                newcomer: *id,
                network,
                incumbent,
            }),
            TriedRoom::None => {}
        }
    }

    /// Stores the descriptor of a node just reached (its own, over a link
    /// this node dialled): straight into the tried table when its bucket
    /// has room (a new entry gives way if the storage is full), otherwise
    /// as [`insert`](Self::insert) would from the link's network, with a
    /// collision recorded.
    pub fn insert_reached(
        &mut self,
        descriptor: VerifiedDescriptor,
        network: Option<NetworkPrefix>,
        now: Instant,
        now_unix_secs: u64,
    ) -> Result<InsertOutcome, InsertError> {
        let id = descriptor.node_id();
        let source = Source::Link(network);
        if id == self.own_id || self.get(&id).is_some() {
            let outcome = self.insert(descriptor, source, now, now_unix_secs)?;
            self.promote(&id, network, now_unix_secs);
            return Ok(outcome);
        }
        let place = match self.tried_room(&id, network, now_unix_secs) {
            TriedRoom::Free(place) => place,
            TriedRoom::Replace(index, place) => {
                self.demote(index);
                place
            }
            TriedRoom::Collide(_) | TriedRoom::None => {
                let outcome = self.insert(descriptor, source, now, now_unix_secs)?;
                self.promote(&id, network, now_unix_secs);
                return Ok(outcome);
            }
        };
        let room = self.room_in_storage(0, now_unix_secs)?;
        self.put(PeerEntry::new(descriptor, place, now), room)
    }

    fn set_place(&mut self, id: &NodeId, place: Place) {
        if let Some(entry) = self.get_mut(id) {
            entry.place = place;
        }
    }

    /// Moves the tried entry at `index` back to the new table (charged to
    /// the network it was reached in), or drops it if that bucket is full.
    fn demote(&mut self, index: usize) {
        let Some(entry) = self.entries.view().get(index) else {
            return;
        };
        let (id, network) = match entry.place {
            Place::Tried { network, .. } => (entry.id, network),
            Place::New { .. } => return,
        };
        let first = super::first_network(&entry.descriptor);
        let bucket = self
            .key
            .new_bucket(&self.layout, Source::Link(network), &id, first);
        let place = Place::New { bucket };
        if self.bucket_len(place) >= self.layout.new_bucket_len {
            self.entries.view_mut().swap_remove(index);
            self.forget_collisions(&id);
        } else {
            self.set_place(&id, place);
        }
    }

    fn add_collision(&mut self, collision: Collision) {
        if self
            .collisions
            .iter()
            .any(|c| c.newcomer == collision.newcomer)
        {
            return;
        }
        if self.collisions.is_full() {
            // The oldest waited longest; its newcomer can be reached again.
            let oldest = self.collisions.first().map(|c| c.newcomer);
            self.collisions.retain(|c| Some(c.newcomer) != oldest);
        }
        let _ = self.collisions.push(collision);
    }

    /// Promotions waiting for the test of an incumbent, oldest first.
    pub fn collisions(&self) -> &[Collision] {
        &self.collisions
    }

    /// The incumbent to test next, if a promotion waits for one.
    pub fn collision_to_test(&self) -> Option<NodeId> {
        self.collisions.first().map(|c| c.incumbent)
    }

    /// The test of `incumbent` ended. If it answered, it keeps its place
    /// and the newcomers that waited for it stay in the new table. If not,
    /// it goes back to the new table and the first newcomer waiting for it
    /// is promoted in its place.
    pub fn tested(&mut self, incumbent: &NodeId, answered: bool, now_unix_secs: u64) {
        let waiting = self
            .collisions
            .iter()
            .find(|c| c.incumbent == *incumbent)
            .copied();
        self.collisions.retain(|c| c.incumbent != *incumbent);
        let Some(collision) = waiting else {
            return;
        };
        if answered {
            return;
        }
        if let Some(index) = self.index_of(incumbent) {
            self.demote(index);
        }
        self.promote(&collision.newcomer, collision.network, now_unix_secs);
    }

    /// Drops the collisions that name `id` (its entry is gone).
    pub(super) fn forget_collisions(&mut self, id: &NodeId) {
        self.collisions
            .retain(|c| c.newcomer != *id && c.incumbent != *id);
    }

    /// A feeler dial to the new entry `id` failed: it was never reached and
    /// does not answer now, so any newcomer of its bucket may replace it.
    pub fn feeler_failed(&mut self, id: &NodeId) {
        if let Some(entry) = self.get_mut(id).filter(|e| !e.is_tried()) {
            entry.failures = entry.failures.max(super::MAX_HEALTHY_FAILURES);
        }
    }
}
