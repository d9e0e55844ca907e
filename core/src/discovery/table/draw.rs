//! Random choices over the table: relays for paths, feeler targets and
//! gossip samples.
//!
//! Path relays and feeler targets are drawn *by bucket*: first a table,
//! then a bucket holding a candidate, then a candidate in it. However many
//! entries one source crowds into its buckets, it is drawn no more often
//! than the few buckets it reaches, so an attacker's share of draws is
//! bounded by its share of buckets, not of gossip.

use heapless::Vec;
use rand_core::Rng;

use crate::capacity::VecStore;

use super::super::random_index;
use super::buckets::MAX_BUCKETS;
use super::{NodeTable, PeerEntry, Place};

/// Which tables a draw may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tables {
    /// Either: the tried table with probability [`TRIED_PERCENT`] when both
    /// hold a candidate.
    Both,
    /// The new table only (feelers).
    New,
    /// The tried table only.
    Tried,
}

/// Percent of draws over [`Tables::Both`] that use the tried table when
/// both tables hold a candidate. Tried entries were reached at an address
/// in a network the attacker cannot pick, while the new table is what
/// gossip fills: once feelers have promoted the honest nodes, the new
/// table's candidates are mostly an attacker's, so the attacker's share of
/// draws tends to `100 - TRIED_PERCENT` percent (Bitcoin Core's 50 assumes
/// new tables of thousands of entries). New entries still get drawn: a
/// network that just booted has few tried entries. Measured in
/// `tests/tests/sim/eclipse.rs` (`docs/security.md`, "Eclipse resistance").
pub const TRIED_PERCENT: u64 = 80;

const WORDS: usize = MAX_BUCKETS.div_ceil(32);

/// The table (tried or not) and bucket of a place.
fn table_bucket(place: Place) -> (bool, u16) {
    match place {
        Place::New { bucket } => (false, bucket),
        Place::Tried { bucket, .. } => (true, bucket),
    }
}

/// The bucket of the `k`-th set bit of `marks`.
fn nth_mark(marks: &[u32; WORDS], mut k: u32) -> Option<u16> {
    for (word, bits) in (0u16..).zip(marks) {
        let ones = bits.count_ones();
        if k < ones {
            let mut bits = *bits;
            for _ in 0..k {
                bits &= bits.wrapping_sub(1);
            }
            return Some(
                word.wrapping_mul(32)
                    .wrapping_add(u16::try_from(bits.trailing_zeros()).unwrap_or(0)),
            );
        }
        k = k.saturating_sub(ones);
    }
    None
}

impl<S: VecStore<PeerEntry>> NodeTable<S> {
    /// Draws one entry satisfying `ok` from `tables`: a table, then
    /// uniformly a bucket of it holding a candidate, then uniformly a
    /// candidate in that bucket.
    pub fn draw(
        &self,
        tables: Tables,
        rng: &mut impl Rng,
        ok: impl Fn(&PeerEntry) -> bool,
    ) -> Option<&PeerEntry> {
        let entries = self.entries.view();
        let mut marks = [[0u32; WORDS]; 2];
        for entry in entries.iter().filter(|e| ok(e)) {
            let (tried, bucket) = table_bucket(entry.place);
            let allowed = match tables {
                Tables::Both => true,
                Tables::New => !tried,
                Tables::Tried => tried,
            };
            let word = marks
                .get_mut(usize::from(tried))
                .and_then(|m| m.get_mut(usize::from(bucket / 32)));
            if let (true, Some(word)) = (allowed, word) {
                *word |= 1u32.wrapping_shl(u32::from(bucket % 32));
            }
        }
        let count = |m: &[u32; WORDS]| m.iter().map(|w| w.count_ones()).sum::<u32>();
        let [new_marks, tried_marks] = &marks;
        let (new, tried) = (count(new_marks), count(tried_marks));
        let use_tried = match (new, tried) {
            (0, 0) => return None,
            (_, 0) => false,
            (0, _) => true,
            _ => random_index(rng, 100)
                .and_then(|p| u64::try_from(p).ok())
                .is_some_and(|p| p < TRIED_PERCENT),
        };
        let (marks, buckets) = if use_tried {
            (tried_marks, tried)
        } else {
            (new_marks, new)
        };
        let k = random_index(rng, usize::try_from(buckets).ok()?)?;
        let bucket = nth_mark(marks, u32::try_from(k).ok()?)?;
        let in_bucket = |e: &&PeerEntry| ok(e) && table_bucket(e.place) == (use_tried, bucket);
        let n = entries.iter().filter(in_bucket).count();
        entries.iter().filter(in_bucket).nth(random_index(rng, n)?)
    }

    /// Up to `K` distinct entries for gossip: half from the tried table
    /// (what this node reached itself) and half from the new table, either
    /// side filling in for the other when short; each side uniformly
    /// (Floyd's algorithm: no scratch space the size of the table).
    pub fn sample<const K: usize>(&self, rng: &mut impl Rng) -> Vec<&PeerEntry, K> {
        let entries = self.entries.view();
        let tried = entries.iter().filter(|e| e.is_tried()).count();
        let new = entries.len().saturating_sub(tried);
        let from_tried = tried.min(K.div_ceil(2).max(K.saturating_sub(new)));
        let mut out = Vec::new();
        self.pick_distinct(rng, from_tried, |e| e.is_tried(), &mut out);
        let rest = K.saturating_sub(out.len());
        self.pick_distinct(rng, rest, |e| !e.is_tried(), &mut out);
        out
    }

    /// Adds to `out` up to `k` distinct entries chosen uniformly among
    /// those satisfying `filter`.
    fn pick_distinct<'t, const K: usize>(
        &'t self,
        rng: &mut impl Rng,
        k: usize,
        filter: impl Fn(&PeerEntry) -> bool,
        out: &mut Vec<&'t PeerEntry, K>,
    ) {
        let candidates = || self.entries.view().iter().filter(|e| filter(e));
        let n = candidates().count();
        let mut picked: Vec<usize, K> = Vec::new();
        for j in n.saturating_sub(k)..n {
            let t = random_index(rng, j.saturating_add(1)).unwrap_or(j);
            let choice = if picked.contains(&t) { j } else { t };
            if picked.push(choice).is_err() {
                break;
            }
        }
        for &i in &picked {
            if let Some(entry) = candidates().nth(i) {
                if out.push(entry).is_err() {
                    break;
                }
            }
        }
    }
}
