//! Discovery and node management: what this node knows about others.
//! The bounded, eclipse-resistant node table and path selection; the
//! node's descriptor exchange and gossip live in `node::discovery`.

mod health;
mod path;
mod prefix;
mod table;

pub use health::{HealthCounts, RelayHealth, BACKOFF_BASE, BACKOFF_MAX, HALF_LIFE};
pub use path::{
    prefixes, select_path, Path, PathError, PathRules, DEFAULT_PATH_RELAYS, MAX_PATH_RELAYS,
};
pub use prefix::NetworkPrefix;
pub use table::{
    Collision, InsertError, InsertOutcome, Known, Layout, NodeTable, PeerEntry, Place, Source,
    Tables, BUCKET_LEN, MAX_COLLISIONS, MAX_HEALTHY_FAILURES, TRIED_PERCENT,
};

/// A uniformly random index below `n` (`None` if `n` is 0).
///
/// The remainder is taken in 64 bits *before* narrowing to `usize`:
/// narrowing a raw 64-bit draw first fails on 32-bit targets whenever its
/// high half is non-zero, i.e. almost always. The modulo bias is below
/// `n / 2^64`, negligible for table sizes.
pub(crate) fn random_index(rng: &mut impl rand_core::Rng, n: usize) -> Option<usize> {
    let n = u64::try_from(n).ok()?;
    usize::try_from(rng.next_u64().checked_rem(n)?).ok()
}

#[cfg(test)]
mod path_tests;
