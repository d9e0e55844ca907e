//! `PRF`: AES-128-CTR keystream whose starting counter is a POLYVAL hash of
//! a 16-byte tweak.
//!
//! `iv = UH(B, T)` with the low 6 bits of its last byte cleared; keystream
//! is AES-CTR under `K` with a 128-bit big-endian counter from `iv`. `t = 0`
//! is the first 493 bytes (payload encryption); `t = 1` starts at byte 496
//! (the key ratchet), so the two uses never share keystream.

use aes::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
use aes::Aes128;
use ctr::Ctr128BE;

use super::et::split_key;
use super::uh::uh;

/// Byte offset of the `t = 1` keystream: 31 AES blocks.
pub const UPDATE_OFFSET: u64 = 31 * 16;

fn keystream(key: &[u8; 32], tweak: &[u8; 16]) -> Ctr128BE<Aes128> {
    let (k, b) = split_key(key);
    let mut iv = uh(b, tweak);
    if let Some(last) = iv.last_mut() {
        *last &= 0xC0;
    }
    Ctr128BE::<Aes128>::new(k.into(), &iv.into())
}

/// XORs `PRF(key, tweak, 0)` into `data` (up to 493 bytes).
pub fn prf_xor(key: &[u8; 32], tweak: &[u8; 16], data: &mut [u8]) {
    keystream(key, tweak).apply_keystream(data);
}

/// Writes `PRF(key, tweak, 1)` into `out` (the ratchet's 80 bytes).
pub fn prf_update(key: &[u8; 32], tweak: &[u8; 16], out: &mut [u8]) {
    out.fill(0);
    let mut stream = keystream(key, tweak);
    stream.seek(UPDATE_OFFSET);
    stream.apply_keystream(out);
}
