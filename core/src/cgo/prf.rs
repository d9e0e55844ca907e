//! `PRF`: AES-128-CTR keystream whose starting counter is a POLYVAL hash of
//! a 16-byte tweak.
//!
//! `iv = UH(B, T)` with the low 6 bits of its last byte cleared; keystream
//! is AES-CTR under `K` with a 128-bit big-endian counter from `iv`. `t = 0`
//! is the first 493 bytes (payload encryption); `t = 1` starts at byte 496
//! (the key ratchet), so the two uses never share keystream.
//!
//! Counter mode only ever encrypts, so only the encryption round keys are
//! expanded (`Aes128Enc`).

use aes::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
use aes::Aes128Enc;
use ctr::Ctr128BE;

use super::et::split_key;
use super::uh::uh;

/// Byte offset of the `t = 1` keystream: 31 AES blocks.
pub const UPDATE_OFFSET: u64 = 31 * 16;

fn keystream(key: &[u8; 32], tweak: &[u8; 16]) -> Ctr128BE<Aes128Enc> {
    let (k, b) = split_key(key);
    let mut iv = uh(b, tweak);
    if let Some(last) = iv.last_mut() {
        *last &= 0xC0;
    }
    Ctr128BE::<Aes128Enc>::new(k.into(), &iv.into())
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

#[cfg(feature = "fast-cgo")]
pub use kept::Prf;

#[cfg(feature = "fast-cgo")]
mod kept {
    use aes::cipher::{InnerIvInit, KeyInit, StreamCipher, StreamCipherSeek};
    use aes::Aes128Enc;
    use ctr::{Ctr128BE, CtrCore};
    use polyval::universal_hash::UniversalHash;
    use polyval::Polyval;

    use super::{split_key, UPDATE_OFFSET};

    /// `PRF` under one key `K ‖ B`, expanded once. An endpoint that
    /// recognises or originates a cell runs the PRF twice under the same
    /// key, for the payload and then for the ratchet; keeping the expanded
    /// key spares the second AES key expansion and POLYVAL key setup. Both
    /// parts wipe themselves when dropped.
    pub struct Prf {
        cipher: Aes128Enc,
        hash: Polyval,
    }

    impl core::fmt::Debug for Prf {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.write_str("Prf(..)")
        }
    }

    impl Prf {
        /// The PRF under `key = K ‖ B`.
        pub fn new(key: &[u8; 32]) -> Self {
            let (k, b) = split_key(key);
            Prf {
                cipher: Aes128Enc::new(k.into()),
                hash: Polyval::new(b.into()),
            }
        }

        fn keystream(&mut self, tweak: &[u8; 16]) -> Ctr128BE<&Aes128Enc> {
            let mut block = polyval::Block::default();
            block.copy_from_slice(tweak);
            self.hash.update(&[block]);
            let mut iv: [u8; 16] = self.hash.finalize_reset().into();
            if let Some(last) = iv.last_mut() {
                *last &= 0xC0;
            }
            Ctr128BE::from_core(CtrCore::inner_iv_init(&self.cipher, &iv.into()))
        }

        /// XORs `PRF(key, tweak, 0)` into `data` (up to 493 bytes).
        pub fn xor(&mut self, tweak: &[u8; 16], data: &mut [u8]) {
            self.keystream(tweak).apply_keystream(data);
        }

        /// Writes `PRF(key, tweak, 1)` into `out` (the ratchet's 80 bytes).
        pub fn ratchet(&mut self, tweak: &[u8; 16], out: &mut [u8]) {
            out.fill(0);
            let mut stream = self.keystream(tweak);
            stream.seek(UPDATE_OFFSET);
            stream.apply_keystream(out);
        }
    }

    #[cfg(test)]
    mod tests {
        use super::super::{prf_update, prf_xor};
        use super::*;

        /// One `Prf` used for the payload and then the ratchet gives what
        /// the one-shot functions give: the hash is reset between uses.
        #[test]
        fn a_kept_prf_matches_the_one_shot_functions() {
            let key = [0x42; 32];
            let mut kept = Prf::new(&key);
            let (mut a, mut b) = ([7u8; 493], [7u8; 493]);
            kept.xor(&[1; 16], &mut a);
            prf_xor(&key, &[1; 16], &mut b);
            assert_eq!(a, b);
            let (mut a, mut b) = ([0u8; 80], [0u8; 80]);
            kept.ratchet(&[2; 16], &mut a);
            prf_update(&key, &[2; 16], &mut b);
            assert_eq!(a, b);
            assert_ne!(a, [0; 80]);
        }
    }
}
