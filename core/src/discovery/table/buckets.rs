//! How the table's fixed capacity is divided into buckets, and which bucket
//! an entry belongs to under the node's secret key.
//!
//! The layout follows Bitcoin Core's address manager (Heilman et al.,
//! "Eclipse Attacks on Bitcoin's Peer-to-Peer Network", USENIX Security
//! 2015), scaled down to tables of a few to a few hundred entries:
//!
//! - The *new* table may use every position the tried table does not, in
//!   buckets of [`BUCKET_LEN`]. A gossiped entry's bucket is chosen by the
//!   network of the link it came over (its *source*) and the network of its
//!   first address; one source reaches only an eighth of the new buckets
//!   (at least one), whatever addresses its descriptors claim. An attacker
//!   with links from a few networks therefore fills a few buckets, however
//!   much it sends and however many identities it makes.
//! - The *tried* table holds at most half the capacity, in buckets of
//!   [`BUCKET_LEN`]. A tried entry's bucket is chosen by the network this
//!   node reached it in; one network reaches an eighth of the tried
//!   buckets (at least one).
//! - Bucket choices are keyed hashes (HMAC-SHA-256 under a key drawn from
//!   the node's CSPRNG when it is built), so an attacker cannot tell which
//!   of its networks and addresses land together, nor aim at the buckets
//!   that hold the entries it wants gone.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::discovery::NetworkPrefix;
use crate::identity::NodeId;

use super::Source;

/// Entries per bucket, in both tables, for tables of 8 or more entries.
pub const BUCKET_LEN: usize = 4;
/// The most buckets one table has; larger tables get larger buckets.
pub(crate) const MAX_BUCKETS: usize = 128;
/// A source (or, in the tried table, a network) reaches at most one
/// bucket in this many.
const SPREAD_DIVISOR: usize = 8;

/// The bucket geometry of a table of a given capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Buckets of the new table.
    pub new_buckets: usize,
    /// Entries one new bucket holds.
    pub new_bucket_len: usize,
    /// New buckets one source reaches.
    pub new_spread: usize,
    /// Buckets of the tried table.
    pub tried_buckets: usize,
    /// Entries one tried bucket holds (0: a table of one entry has no
    /// tried table).
    pub tried_bucket_len: usize,
    /// Tried buckets one network reaches.
    pub tried_spread: usize,
}

impl Layout {
    /// The layout of a table of `capacity` entries. A table of 2 has one
    /// new bucket of 2 and one tried bucket of 1; of 64, 16 new buckets of
    /// 4 and 8 tried buckets of 4; of 256, 64 and 32.
    pub fn for_capacity(capacity: usize) -> Self {
        let buckets = |n: usize| n.checked_div(BUCKET_LEN).unwrap_or(0).clamp(1, MAX_BUCKETS);
        let spread = |b: usize| b.checked_div(SPREAD_DIVISOR).unwrap_or(0).max(1);
        let tried = capacity.checked_div(2).unwrap_or(0);
        let (new_buckets, tried_buckets) = (buckets(capacity), buckets(tried));
        Layout {
            new_buckets,
            new_bucket_len: capacity.checked_div(new_buckets).unwrap_or(0),
            new_spread: spread(new_buckets),
            tried_buckets,
            tried_bucket_len: tried.checked_div(tried_buckets).unwrap_or(0),
            tried_spread: spread(tried_buckets),
        }
    }
}

/// The secret key of the bucket hashes.
#[derive(Clone, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
pub(crate) struct BucketKey([u8; 32]);

impl BucketKey {
    pub(crate) fn new(key: [u8; 32]) -> Self {
        BucketKey(key)
    }

    /// The first 32 bits of HMAC-SHA-256 over `parts`, reduced below `n`.
    fn pick(&self, parts: &[&[u8]], n: usize) -> usize {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.0) else {
            return 0;
        };
        for part in parts {
            mac.update(part);
        }
        let digest = mac.finalize().into_bytes();
        let word = digest
            .first_chunk::<4>()
            .map_or(0, |w| u32::from_be_bytes(*w));
        usize::try_from(word)
            .ok()
            .and_then(|w| w.checked_rem(n))
            .unwrap_or(0)
    }

    /// The new bucket of a node from `source` whose first address is in
    /// `network`.
    pub(crate) fn new_bucket(
        &self,
        layout: &Layout,
        source: Source,
        id: &NodeId,
        network: Option<NetworkPrefix>,
    ) -> u16 {
        let bucket = match source {
            Source::Local => self.pick(&[b"L", id.as_bytes()], layout.new_buckets),
            Source::Link(from) => {
                let from = group(from);
                let slot = self.pick(&[b"n", &from, &group(network)], layout.new_spread);
                self.pick(&[b"N", &from, &slot.to_be_bytes()], layout.new_buckets)
            }
        };
        u16::try_from(bucket).unwrap_or(0)
    }

    /// The tried bucket of node `id`, reached in `network`.
    pub(crate) fn tried_bucket(
        &self,
        layout: &Layout,
        id: &NodeId,
        network: Option<NetworkPrefix>,
    ) -> u16 {
        let network = group(network);
        let slot = self.pick(&[b"t", &network, id.as_bytes()], layout.tried_spread);
        let bucket = self.pick(&[b"T", &network, &slot.to_be_bytes()], layout.tried_buckets);
        u16::try_from(bucket).unwrap_or(0)
    }
}

impl core::fmt::Debug for BucketKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("BucketKey(..)")
    }
}

/// A network as hashed: a tag byte and its prefix, zero-padded.
fn group(network: Option<NetworkPrefix>) -> [u8; 5] {
    match network {
        None => [0; 5],
        Some(NetworkPrefix::V4([a, b])) => [4, a, b, 0, 0],
        Some(NetworkPrefix::V6([a, b, c, d])) => [6, a, b, c, d],
    }
}
