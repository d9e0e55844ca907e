//! Noise `CipherState`: a ChaCha20-Poly1305 key and a 64-bit nonce counter.

use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::{ChaCha20Poly1305, KeyInit, Nonce, Tag};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::{NoiseError, TAGLEN};

/// An AEAD key with its nonce counter. The nonce advances once per
/// successful operation and never repeats; `2^64 − 1` is reserved (for
/// `rekey`) and never used to encrypt a message.
#[derive(Zeroize, ZeroizeOnDrop)]
#[cfg_attr(feature = "testing", derive(Clone))]
pub struct CipherState {
    key: [u8; 32],
    nonce: u64,
}

impl core::fmt::Debug for CipherState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CipherState")
            .field("nonce", &self.nonce)
            .finish_non_exhaustive()
    }
}

/// Noise's 96-bit nonce: 32 zero bits, then the counter little-endian.
fn nonce_bytes(n: u64) -> Nonce {
    let mut bytes = [0u8; 12];
    if let Some(tail) = bytes.get_mut(4..) {
        tail.copy_from_slice(&n.to_le_bytes());
    }
    bytes.into()
}

impl CipherState {
    /// A cipher with `key` and nonce 0.
    pub fn new(key: [u8; 32]) -> Self {
        CipherState { key, nonce: 0 }
    }

    /// The next nonce to be used.
    pub fn nonce(&self) -> u64 {
        self.nonce
    }

    fn aead(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(&self.key.into())
    }

    /// Encrypts `buf[..plaintext_len]` in place and appends the tag.
    /// Returns `plaintext_len + 16`.
    pub fn encrypt_in_place(
        &mut self,
        ad: &[u8],
        buf: &mut [u8],
        plaintext_len: usize,
    ) -> Result<usize, NoiseError> {
        if self.nonce == u64::MAX {
            return Err(NoiseError::NonceExhausted);
        }
        let total = plaintext_len
            .checked_add(TAGLEN)
            .ok_or(NoiseError::BufferTooSmall)?;
        let out = buf.get_mut(..total).ok_or(NoiseError::BufferTooSmall)?;
        let (plaintext, tag_out) = out
            .split_at_mut_checked(plaintext_len)
            .ok_or(NoiseError::BufferTooSmall)?;
        let tag = self
            .aead()
            .encrypt_inout_detached(&nonce_bytes(self.nonce), ad, plaintext.into())
            .map_err(|_| NoiseError::MessageTooLarge)?;
        tag_out.copy_from_slice(&tag);
        self.nonce = self.nonce.wrapping_add(1);
        Ok(total)
    }

    /// Decrypts `buf` (ciphertext ‖ tag) in place; returns the plaintext
    /// length. On failure the nonce does not advance, so a forged message
    /// cannot desynchronise the two sides.
    pub fn decrypt_in_place(&mut self, ad: &[u8], buf: &mut [u8]) -> Result<usize, NoiseError> {
        if self.nonce == u64::MAX {
            return Err(NoiseError::NonceExhausted);
        }
        let plaintext_len = buf
            .len()
            .checked_sub(TAGLEN)
            .ok_or(NoiseError::BadMessageLength)?;
        let (ciphertext, tag) = buf
            .split_at_mut_checked(plaintext_len)
            .ok_or(NoiseError::BadMessageLength)?;
        let tag = Tag::try_from(&*tag).map_err(|_| NoiseError::BadMessageLength)?;
        self.aead()
            .decrypt_inout_detached(&nonce_bytes(self.nonce), ad, ciphertext.into(), &tag)
            .map_err(|_| NoiseError::DecryptFailed)?;
        self.nonce = self.nonce.wrapping_add(1);
        Ok(plaintext_len)
    }

    /// Noise `REKEY()`: the new key is the first 32 bytes of encrypting 32
    /// zero bytes with nonce `2^64 − 1`. The nonce counter is kept, so no
    /// (key, nonce) pair repeats across rekeys.
    pub fn rekey(&mut self) {
        let mut block = [0u8; 32];
        if let Ok(_tag) = self.aead().encrypt_inout_detached(
            &nonce_bytes(u64::MAX),
            &[],
            block.as_mut_slice().into(),
        ) {
            self.key = block;
        }
        block.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_nonce_advances_only_on_success() {
        let mut a = CipherState::new([1; 32]);
        let mut b = CipherState::new([1; 32]);
        let mut buf = [0u8; 64];
        buf[..5].copy_from_slice(b"hello");
        let n = a.encrypt_in_place(b"ad", &mut buf, 5).unwrap();
        assert_eq!(n, 21);
        let mut forged = buf;
        forged[0] ^= 1;
        assert_eq!(
            b.decrypt_in_place(b"ad", &mut forged[..n]),
            Err(NoiseError::DecryptFailed)
        );
        assert_eq!(b.nonce(), 0);
        assert_eq!(b.decrypt_in_place(b"ad", &mut buf[..n]), Ok(5));
        assert_eq!(&buf[..5], b"hello");
        assert_eq!((a.nonce(), b.nonce()), (1, 1));
    }

    #[test]
    fn short_buffers_are_errors() {
        let mut a = CipherState::new([1; 32]);
        let mut small = [0u8; 10];
        assert_eq!(
            a.encrypt_in_place(&[], &mut small, 5),
            Err(NoiseError::BufferTooSmall)
        );
        assert_eq!(
            a.decrypt_in_place(&[], &mut small[..3]),
            Err(NoiseError::BadMessageLength)
        );
    }

    #[test]
    fn rekey_changes_the_key_identically_on_both_sides() {
        let mut a = CipherState::new([2; 32]);
        let mut b = CipherState::new([2; 32]);
        let mut before = [0u8; 32];
        a.encrypt_in_place(&[], &mut before, 16).unwrap();
        b.decrypt_in_place(&[], &mut before).unwrap();
        a.rekey();
        b.rekey();
        let mut c = CipherState::new([2; 32]);
        c.nonce = a.nonce();
        let mut after = [0u8; 32];
        a.encrypt_in_place(&[], &mut after, 16).unwrap();
        let mut copy = after;
        assert_eq!(
            c.decrypt_in_place(&[], &mut copy),
            Err(NoiseError::DecryptFailed)
        );
        assert_eq!(b.decrypt_in_place(&[], &mut after), Ok(16));
    }

    #[test]
    fn the_last_nonce_is_never_used() {
        let mut a = CipherState::new([3; 32]);
        a.nonce = u64::MAX;
        let mut buf = [0u8; 32];
        assert_eq!(
            a.encrypt_in_place(&[], &mut buf, 1),
            Err(NoiseError::NonceExhausted)
        );
    }
}
