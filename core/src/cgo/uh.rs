//! `UH`: the universal hash CGO builds on, POLYVAL (RFC 8452) over the input
//! zero-padded to whole 16-byte blocks.

use polyval::universal_hash::UniversalHash;
use polyval::Polyval;

/// `UH(key, bytes)`.
pub fn uh(key: &[u8; 16], bytes: &[u8]) -> [u8; 16] {
    let mut hasher = Polyval::new(key.into());
    hasher.update_padded(bytes);
    hasher.finalize().into()
}
