//! `ET`: the tweakable block cipher (LRW2) that encrypts a cell's 16-byte
//! tag part under a 510-byte tweak `H ‖ ad ‖ X_R`.
//!
//! `ENC_ET(T, M) = UH(KU, T) ⊕ AES_KB(M ⊕ UH(KU, T))`, and `DEC_ET` the same
//! with AES decryption. Because the tweak covers the whole rest of the cell,
//! changing any byte of the payload changes the tag part unpredictably.

use super::uiv::UIV_TWEAK_LEN;
use super::PAYLOAD_LEN;
use aes::cipher::{BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};

/// Bytes of the ET tweak: `H` (16) ‖ `ad` (1) ‖ `X_R` (493).
pub const ET_TWEAK_LEN: usize = UIV_TWEAK_LEN + PAYLOAD_LEN;

/// Which way to run the cipher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `ENC_ET`.
    Encrypt,
    /// `DEC_ET`.
    Decrypt,
}

/// Applies ET with key `KB ‖ KU` and `tweak` to `block` in place.
pub fn et(key: &[u8; 32], tweak: &[u8; ET_TWEAK_LEN], block: &mut [u8; 16], direction: Direction) {
    let (head, right) = tweak
        .split_first_chunk::<UIV_TWEAK_LEN>()
        .unwrap_or((&[0; UIV_TWEAK_LEN], &[]));
    let right: &[u8; PAYLOAD_LEN] = right.try_into().unwrap_or(&[0; PAYLOAD_LEN]);
    et_split(key, head, right, block, direction);
}

/// [`et`] with the tweak in its two parts, `H ‖ ad` and `X_R`, as they lie
/// in a cell: the cipher runs on every cell at every hop, and this spares
/// it a 510-byte copy to put them side by side.
pub fn et_split(
    key: &[u8; 32],
    head: &[u8; UIV_TWEAK_LEN],
    right: &[u8; PAYLOAD_LEN],
    block: &mut [u8; 16],
    direction: Direction,
) {
    let (kb, ku) = split_key(key);
    let mask = tweak_hash(ku, head, right);
    xor16(block, &mask);
    aes_block(kb, block.into(), direction);
    xor16(block, &mask);
}

/// `AES_KB` on one block. With `fast-cgo` each direction expands only the
/// round keys it uses (a relay only ever encrypts); without it one type
/// serves both, the smaller code.
#[cfg(feature = "fast-cgo")]
fn aes_block(kb: &[u8; 16], block: &mut aes::Block, direction: Direction) {
    use aes::{Aes128Dec, Aes128Enc};
    match direction {
        Direction::Encrypt => Aes128Enc::new(kb.into()).encrypt_block(block),
        Direction::Decrypt => Aes128Dec::new(kb.into()).decrypt_block(block),
    }
}

#[cfg(not(feature = "fast-cgo"))]
fn aes_block(kb: &[u8; 16], block: &mut aes::Block, direction: Direction) {
    let aes = aes::Aes128::new(kb.into());
    match direction {
        Direction::Encrypt => aes.encrypt_block(block),
        Direction::Decrypt => aes.decrypt_block(block),
    }
}

/// `UH(KU, head ‖ right)`, zero-padded to whole blocks as `UH` is. The
/// 17-byte head straddles POLYVAL's first two blocks; from byte 15 of
/// `right` on, the blocks lie whole in `right` itself, so the 510-byte
/// tweak is never copied together.
#[cfg(feature = "fast-cgo")]
fn tweak_hash(ku: &[u8; 16], head: &[u8; UIV_TWEAK_LEN], right: &[u8; PAYLOAD_LEN]) -> [u8; 16] {
    use polyval::universal_hash::UniversalHash;
    use polyval::Polyval;

    const STRADDLE: usize = 32 - UIV_TWEAK_LEN;
    let mut first = polyval::Block::default();
    let mut second = polyval::Block::default();
    let (head_block, head_rest) = head.split_at(16);
    let (right_head, right_rest) = right.split_at(STRADDLE);
    first.copy_from_slice(head_block);
    let (second_head, second_rest) = second.split_at_mut(UIV_TWEAK_LEN - 16);
    second_head.copy_from_slice(head_rest);
    second_rest.copy_from_slice(right_head);
    let mut hasher = Polyval::new(ku.into());
    hasher.update(&[first, second]);
    hasher.update_padded(right_rest);
    hasher.finalize().into()
}

/// `UH(KU, head ‖ right)` over the two copied side by side: without
/// `fast-cgo`, the smaller code (one `UH` for ET and the PRF alike).
#[cfg(not(feature = "fast-cgo"))]
fn tweak_hash(ku: &[u8; 16], head: &[u8; UIV_TWEAK_LEN], right: &[u8; PAYLOAD_LEN]) -> [u8; 16] {
    let mut tweak = [0u8; ET_TWEAK_LEN];
    let (tweak_head, tweak_rest) = tweak.split_at_mut(UIV_TWEAK_LEN);
    tweak_head.copy_from_slice(head);
    tweak_rest.copy_from_slice(right);
    super::uh::uh(ku, &tweak)
}

/// Splits a 32-byte key into its two 16-byte halves.
pub(crate) fn split_key(key: &[u8; 32]) -> (&[u8; 16], &[u8; 16]) {
    let (a, b) = key.split_first_chunk::<16>().unwrap_or((&[0; 16], &[]));
    let b: &[u8; 16] = b.try_into().unwrap_or(&[0; 16]);
    (a, b)
}

pub(crate) fn xor16(block: &mut [u8; 16], mask: &[u8; 16]) {
    for (b, m) in block.iter_mut().zip(mask) {
        *b ^= m;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgo::uh::uh;

    /// The split hash is `UH` over the concatenated tweak, for tweaks whose
    /// every byte differs, so a misplaced byte would show.
    #[test]
    fn split_tweak_hashes_as_the_concatenation() {
        let mut tweak = [0u8; ET_TWEAK_LEN];
        for (i, b) in tweak.iter_mut().enumerate() {
            *b = (i * 7 + 3) as u8;
        }
        let (head, right) = tweak.split_at(UIV_TWEAK_LEN);
        let head: &[u8; UIV_TWEAK_LEN] = head.try_into().unwrap();
        let right: &[u8; PAYLOAD_LEN] = right.try_into().unwrap();
        for key in [[0u8; 16], [0x5a; 16], [0xff; 16]] {
            assert_eq!(tweak_hash(&key, head, right), uh(&key, &tweak));
        }
    }
}
