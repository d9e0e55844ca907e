//! The bounded table of nodes this node knows, ranked by freshness and
//! health.
//!
//! Capacity is fixed by the type. When the table is full, a newcomer takes
//! the place of, in this order:
//! 1. an entry whose descriptor has **expired** (the one expired longest);
//! 2. otherwise the **worst-ranked** entry, if the newcomer ranks better.
//!    Rank: fewer recorded failures is better; at equal failures, a more
//!    recently issued descriptor is better (fresher).
//!
//! Otherwise the newcomer is refused. A descriptor older than the one
//! already held for the same node is refused too, so an attacker replaying
//! a node's old descriptor (with old addresses or an old onion key) cannot
//! roll it back.

use core::fmt;

use heapless::Vec;

use crate::capacity::VecStore;
use rand_core::Rng;

use crate::identity::{NodeId, Transport, VerifiedDescriptor};
use crate::time::Instant;

/// Failures after which a node no longer counts as healthy for paths.
pub const MAX_HEALTHY_FAILURES: u8 = 3;

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
}

impl PeerEntry {
    /// Its node id.
    pub fn node_id(&self) -> NodeId {
        self.descriptor.node_id()
    }

    /// Whether it may be used in new paths.
    pub fn is_healthy(&self, now_unix_secs: u64) -> bool {
        self.failures < MAX_HEALTHY_FAILURES && self.descriptor.repr().expires_at > now_unix_secs
    }

    /// Rank key: smaller is worse. `(fewer failures, newer issue time)`.
    fn rank(&self) -> (core::cmp::Reverse<u8>, u64) {
        (
            core::cmp::Reverse(self.failures),
            self.descriptor.repr().issued_at,
        )
    }
}

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
    /// The descriptor is our own node's.
    OwnDescriptor,
    /// The table is full of entries that rank at least as well.
    TableFull,
}

impl fmt::Display for InsertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InsertError::OlderThanKnown => {
                "a newer descriptor for this node is already known; the old one is a replay"
            }
            InsertError::OwnDescriptor => "this is our own descriptor",
            InsertError::TableFull => "node table full of better-ranked nodes",
        })
    }
}

impl core::error::Error for InsertError {}

/// The table of known nodes, holding as many as its storage `S` does.
#[derive(Debug, Clone)]
pub struct NodeTable<S> {
    own_id: NodeId,
    entries: S,
}

impl<S: VecStore<PeerEntry>> NodeTable<S> {
    /// An empty table for the node `own_id` (which it never stores).
    pub fn new(own_id: NodeId) -> Self {
        NodeTable {
            own_id,
            entries: S::EMPTY,
        }
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
        self.entries.view().iter().find(|e| e.node_id() == *id)
    }

    fn get_mut(&mut self, id: &NodeId) -> Option<&mut PeerEntry> {
        self.entries
            .view_mut()
            .iter_mut()
            .find(|e| e.node_id() == *id)
    }

    /// Stores a verified descriptor learned at `now` (wall clock
    /// `now_unix_secs`), applying the eviction rule when full.
    pub fn insert(
        &mut self,
        descriptor: VerifiedDescriptor,
        now: Instant,
        now_unix_secs: u64,
    ) -> Result<InsertOutcome, InsertError> {
        let id = descriptor.node_id();
        if id == self.own_id {
            return Err(InsertError::OwnDescriptor);
        }
        let issued = descriptor.repr().issued_at;
        if let Some(entry) = self.get_mut(&id) {
            let known = entry.descriptor.repr().issued_at;
            if issued < known {
                return Err(InsertError::OlderThanKnown);
            }
            entry.last_seen = now;
            if issued == known {
                return Ok(InsertOutcome::Refreshed);
            }
            entry.descriptor = descriptor;
            return Ok(InsertOutcome::Updated);
        }
        let entry = PeerEntry {
            descriptor,
            learned_at: now,
            last_seen: now,
            failures: 0,
            transport: None,
        };
        let victim = match self.entries.view_mut().push(entry) {
            Ok(()) => return Ok(InsertOutcome::Added),
            Err(entry) => (self.eviction_victim(&entry, now_unix_secs), entry),
        };
        match victim {
            (Some(index), entry) => {
                let slot = self
                    .entries
                    .view_mut()
                    .get_mut(index)
                    .ok_or(InsertError::TableFull)?;
                let evicted = slot.node_id();
                *slot = entry;
                Ok(InsertOutcome::Replaced { evicted })
            }
            (None, _) => Err(InsertError::TableFull),
        }
    }

    /// The entry a newcomer may replace, by the rule in the module docs.
    fn eviction_victim(&self, newcomer: &PeerEntry, now_unix_secs: u64) -> Option<usize> {
        let expired = self
            .entries
            .view()
            .iter()
            .enumerate()
            .filter(|(_, e)| e.descriptor.repr().expires_at <= now_unix_secs)
            .min_by_key(|(_, e)| e.descriptor.repr().expires_at)
            .map(|(i, _)| i);
        if expired.is_some() {
            return expired;
        }
        self.entries
            .view()
            .iter()
            .enumerate()
            .min_by_key(|(_, e)| e.rank())
            .filter(|(_, worst)| worst.rank() < newcomer.rank())
            .map(|(i, _)| i)
    }

    /// Drops every expired entry; returns how many.
    pub fn remove_expired(&mut self, now_unix_secs: u64) -> usize {
        let before = self.entries.view().len();
        self.entries
            .view_mut()
            .retain(|e| e.descriptor.repr().expires_at > now_unix_secs);
        before.saturating_sub(self.entries.view().len())
    }

    /// Records a failure to reach or use `id`.
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
        }
    }

    /// Records that a link to `id` came up over `transport`.
    pub fn record_transport(&mut self, id: &NodeId, transport: Transport) {
        if let Some(entry) = self.get_mut(id) {
            entry.transport = Some(transport);
        }
    }

    /// Healthy nodes that relay, for path selection.
    pub fn healthy_relays(&self, now_unix_secs: u64) -> impl Iterator<Item = &PeerEntry> + Clone {
        self.entries
            .view()
            .iter()
            .filter(move |e| e.descriptor.repr().relay && e.is_healthy(now_unix_secs))
    }

    /// Up to `K` distinct entries chosen uniformly at random, for gossip
    /// (Floyd's algorithm: `K` draws, and no scratch space the size of the
    /// table).
    pub fn sample<const K: usize>(&self, rng: &mut impl Rng) -> Vec<&PeerEntry, K> {
        let entries = self.entries.view();
        let len = entries.len();
        let mut picked: Vec<usize, K> = Vec::new();
        for j in len.saturating_sub(K)..len {
            let t = super::random_index(rng, j.saturating_add(1)).unwrap_or(j);
            let choice = if picked.contains(&t) { j } else { t };
            if picked.push(choice).is_err() {
                break;
            }
        }
        picked.iter().filter_map(|&i| entries.get(i)).collect()
    }
}
