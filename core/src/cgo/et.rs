//! `ET`: the tweakable block cipher (LRW2) that encrypts a cell's 16-byte
//! tag part under a 510-byte tweak `H ‖ ad ‖ X_R`.
//!
//! `ENC_ET(T, M) = UH(KU, T) ⊕ AES_KB(M ⊕ UH(KU, T))`, and `DEC_ET` the same
//! with AES decryption. Because the tweak covers the whole rest of the cell,
//! changing any byte of the payload changes the tag part unpredictably.

use aes::cipher::{BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use aes::Aes128;

use super::uh::uh;

/// Bytes of the ET tweak: `H` (16) ‖ `ad` (1) ‖ `X_R` (493).
pub const ET_TWEAK_LEN: usize = 16 + 1 + super::PAYLOAD_LEN;

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
    let (kb, ku) = split_key(key);
    let mask = uh(ku, tweak);
    xor16(block, &mask);
    let aes = Aes128::new(kb.into());
    let b: &mut aes::Block = block.into();
    match direction {
        Direction::Encrypt => aes.encrypt_block(b),
        Direction::Decrypt => aes.decrypt_block(b),
    }
    xor16(block, &mask);
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
