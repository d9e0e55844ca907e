//! The new table: where a node learned of but never reached goes, and
//! which entry gives way when there is no room.

use crate::capacity::VecStore;
use crate::identity::{NodeId, VerifiedDescriptor};
use crate::time::Instant;

use super::super::NetworkPrefix;
use super::buckets::MAX_BUCKETS;
use super::{
    first_network, same_bucket, InsertError, InsertOutcome, NodeTable, PeerEntry, Place, Source,
};

/// Where a newcomer goes: pushed (`None`) or in place of an entry.
pub(super) type Room = Option<usize>;

impl<S: VecStore<PeerEntry>> NodeTable<S> {
    /// Whether the node `id` (unknown, first address in `network`, heard
    /// of from `source`) would get a place: the new table's rules, run
    /// before its signature is checked so that a descriptor that would be
    /// refused anyway costs no verification.
    pub fn admits(
        &self,
        id: &NodeId,
        source: Source,
        network: Option<NetworkPrefix>,
        now_unix_secs: u64,
    ) -> Result<(), InsertError> {
        let bucket = self.key.new_bucket(&self.layout, source, id, network);
        self.room_in_new(Place::New { bucket }, now_unix_secs, false)
            .map(|_| ())
    }

    /// [`admits`](Self::admits) for a node's own descriptor, sent by that
    /// node over a link from `source` that it proved its identity on: in a
    /// full bucket, the entry heard of least recently gives way to it.
    pub fn admits_from_peer(
        &self,
        id: &NodeId,
        source: Source,
        network: Option<NetworkPrefix>,
        now_unix_secs: u64,
    ) -> Result<(), InsertError> {
        let bucket = self.key.new_bucket(&self.layout, source, id, network);
        self.room_in_new(Place::New { bucket }, now_unix_secs, true)
            .map(|_| ())
    }

    /// Stores a node's own descriptor, received from that node over a link
    /// from `source` ([`admits_from_peer`](Self::admits_from_peer)). A
    /// node already known is updated as by [`insert`](Self::insert).
    pub fn insert_from_peer(
        &mut self,
        descriptor: VerifiedDescriptor,
        source: Source,
        now: Instant,
        now_unix_secs: u64,
    ) -> Result<InsertOutcome, InsertError> {
        let id = descriptor.node_id();
        if self.get(&id).is_some() {
            return self.insert(descriptor, source, now, now_unix_secs);
        }
        let bucket = self
            .key
            .new_bucket(&self.layout, source, &id, first_network(&descriptor));
        let place = Place::New { bucket };
        let room = self.room_in_new(place, now_unix_secs, true)?;
        self.put(PeerEntry::new(descriptor, place, now), room)
    }

    pub(super) fn insert_new(
        &mut self,
        descriptor: VerifiedDescriptor,
        source: Source,
        now: Instant,
        now_unix_secs: u64,
    ) -> Result<InsertOutcome, InsertError> {
        let id = descriptor.node_id();
        let bucket = self
            .key
            .new_bucket(&self.layout, source, &id, first_network(&descriptor));
        let place = Place::New { bucket };
        let room = self.room_in_new(place, now_unix_secs, false)?;
        self.put(PeerEntry::new(descriptor, place, now), room)
    }

    /// Room for a newcomer to the new bucket `place`:
    /// 1. its bucket is full: the bucket's worst failing or expired entry
    ///    gives way, else (for a node's own descriptor from that node,
    ///    `from_peer`) the entry heard of least recently, else the
    ///    newcomer is refused (`BucketFull`). A healthy incumbent is never
    ///    displaced by gossip, however much arrives;
    /// 2. the storage has room: it is pushed;
    /// 3. the storage is full (other buckets and the tried table use it):
    ///    the worst failing or expired entry anywhere gives way, else the
    ///    newest entry of the most crowded new bucket, if that bucket holds
    ///    at least two more than the newcomer's (for `from_peer`, in any
    ///    case). Buckets thus converge to equal shares, and a source that
    ///    filled the table while it was empty gives the room back to the
    ///    others.
    pub(super) fn room_in_new(
        &self,
        place: Place,
        now_unix_secs: u64,
        from_peer: bool,
    ) -> Result<Room, InsertError> {
        let mine = self.bucket_len(place);
        if mine >= self.layout.new_bucket_len {
            let stalest = || {
                let entries = self.entries.view();
                let stalest = entries
                    .iter()
                    .enumerate()
                    .filter(|(_, e)| same_bucket(e.place, place) && !e.in_use);
                stalest.min_by_key(|(_, e)| e.last_seen).map(|(i, _)| i)
            };
            return self
                .worst(Some(place), now_unix_secs)
                .or_else(|| from_peer.then(stalest).flatten())
                .map(Some)
                .ok_or(InsertError::BucketFull);
        }
        match self.room_in_storage(mine.saturating_add(1), now_unix_secs) {
            // A node's own descriptor, over a link it proved its identity
            // on, is never refused for want of room: the newest entry of
            // the most crowded new bucket gives way even when buckets are
            // even. Its introducers must hold it (`introducers.rs`), and
            // gossip alone cannot push it in. A peer gets one entry per
            // link, and the tried table is never touched.
            Err(InsertError::TableFull) if from_peer => self
                .newest_of_crowded(0)
                .map(Some)
                .ok_or(InsertError::TableFull),
            room => room,
        }
    }

    /// Room in the storage: free, else the worst failing or expired entry,
    /// else the newest entry of a new bucket holding more than `more_than`.
    pub(super) fn room_in_storage(
        &self,
        more_than: usize,
        now_unix_secs: u64,
    ) -> Result<Room, InsertError> {
        if self.entries.view().len() < S::CAPACITY {
            return Ok(None);
        }
        if let Some(worst) = self.worst(None, now_unix_secs) {
            return Ok(Some(worst));
        }
        self.newest_of_crowded(more_than)
            .map(Some)
            .ok_or(InsertError::TableFull)
    }

    /// The entry of the bucket of `place` (`None`: of any bucket) that
    /// most deserves to go ([`PeerEntry::badness`]), if any is failing or
    /// expired and not in use. (A place, not a filter closure: one copy of
    /// the code for its three callers, and flash is short on firmware.)
    #[inline(never)]
    pub(super) fn worst(&self, place: Option<Place>, now_unix_secs: u64) -> Option<usize> {
        self.entries
            .view()
            .iter()
            .enumerate()
            .filter(|(_, e)| place.is_none_or(|p| same_bucket(e.place, p)) && !e.in_use)
            .filter_map(|(i, e)| Some((i, e.badness(now_unix_secs)?)))
            .max_by_key(|(_, badness)| *badness)
            .map(|(i, _)| i)
    }

    /// The most recently learned entry of the most crowded new bucket, if
    /// that bucket holds more than `more_than` entries.
    fn newest_of_crowded(&self, more_than: usize) -> Option<usize> {
        let mut counts = [0u16; MAX_BUCKETS];
        let new_bucket = |e: &PeerEntry| match e.place {
            Place::New { bucket } => Some(usize::from(bucket)),
            Place::Tried { .. } => None,
        };
        for bucket in self.entries.view().iter().filter_map(new_bucket) {
            if let Some(n) = counts.get_mut(bucket) {
                *n = n.saturating_add(1);
            }
        }
        let count = |e: &PeerEntry| {
            new_bucket(e)
                .and_then(|b| counts.get(b))
                .map_or(0, |n| usize::from(*n))
        };
        let most = self.entries.view().iter().map(count).max()?;
        if most <= more_than {
            return None;
        }
        self.entries
            .view()
            .iter()
            .enumerate()
            .filter(|(_, e)| count(e) == most && !e.in_use)
            .max_by_key(|(_, e)| (new_bucket(e), e.learned_at))
            .map(|(i, _)| i)
    }

    /// Puts `entry` where `room` says: pushed, or in place of an entry.
    pub(super) fn put(
        &mut self,
        entry: PeerEntry,
        room: Room,
    ) -> Result<InsertOutcome, InsertError> {
        let Some(index) = room else {
            return self
                .entries
                .view_mut()
                .push(entry)
                .map(|()| InsertOutcome::Added)
                .map_err(|_| InsertError::TableFull);
        };
        let slot = self
            .entries
            .view_mut()
            .get_mut(index)
            .ok_or(InsertError::TableFull)?;
        let evicted = slot.id;
        *slot = entry;
        self.forget_collisions(&evicted);
        Ok(InsertOutcome::Replaced { evicted })
    }
}
