//! Noise `SymmetricState`: the chaining key, the handshake hash, and the
//! handshake's current cipher.

use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::{CipherState, NoiseError, HASHLEN, TAGLEN};

/// Noise's `HKDF(ck, ikm, 2)`. With HMAC-SHA256 this is exactly RFC 5869
/// HKDF with `salt = ck` and empty `info`, expanded to 64 bytes.
pub(crate) fn hkdf2(chaining_key: &[u8; HASHLEN], ikm: &[u8]) -> ([u8; 32], [u8; 32]) {
    let mut okm = [0u8; 64];
    // Cannot fail: 64 bytes is far below HKDF-SHA256's 8160-byte limit.
    let _ = Hkdf::<Sha256>::new(Some(chaining_key), ikm).expand(&[], &mut okm);
    let mut first = [0u8; 32];
    let mut second = [0u8; 32];
    if let Some((a, b)) = okm.split_first_chunk::<32>() {
        first.copy_from_slice(a);
        second.copy_from_slice(b);
    }
    okm.zeroize();
    (first, second)
}

#[derive(Zeroize, ZeroizeOnDrop)]
#[cfg_attr(feature = "testing", derive(Clone))]
pub(crate) struct SymmetricState {
    chaining_key: [u8; HASHLEN],
    hash: [u8; HASHLEN],
    #[zeroize(skip)]
    cipher: Option<CipherState>,
}

impl SymmetricState {
    /// `InitializeSymmetric(protocol_name)`.
    pub(crate) fn new(protocol_name: &[u8]) -> Self {
        let mut hash = [0u8; HASHLEN];
        if protocol_name.len() <= HASHLEN {
            if let Some(prefix) = hash.get_mut(..protocol_name.len()) {
                prefix.copy_from_slice(protocol_name);
            }
        } else {
            hash = Sha256::digest(protocol_name).into();
        }
        SymmetricState {
            chaining_key: hash,
            hash,
            cipher: None,
        }
    }

    pub(crate) fn has_key(&self) -> bool {
        self.cipher.is_some()
    }

    pub(crate) fn hash(&self) -> [u8; HASHLEN] {
        self.hash
    }

    pub(crate) fn mix_hash(&mut self, data: &[u8]) {
        let mut hasher = Sha256::new();
        hasher.update(self.hash);
        hasher.update(data);
        self.hash = hasher.finalize().into();
    }

    pub(crate) fn mix_key(&mut self, input_key_material: &[u8]) {
        let (chaining_key, key) = hkdf2(&self.chaining_key, input_key_material);
        self.chaining_key = chaining_key;
        self.cipher = Some(CipherState::new(key));
    }

    /// Encrypts `buf[..plaintext_len]` in place (if a key exists) with the
    /// handshake hash as associated data, then mixes the ciphertext into the
    /// hash. Returns the ciphertext length.
    pub(crate) fn encrypt_and_hash(
        &mut self,
        buf: &mut [u8],
        plaintext_len: usize,
    ) -> Result<usize, NoiseError> {
        let len = match self.cipher.as_mut() {
            Some(cipher) => cipher.encrypt_in_place(&self.hash, buf, plaintext_len)?,
            None => plaintext_len,
        };
        let ciphertext = buf.get(..len).ok_or(NoiseError::BufferTooSmall)?;
        let mut hasher = Sha256::new();
        hasher.update(self.hash);
        hasher.update(ciphertext);
        self.hash = hasher.finalize().into();
        Ok(len)
    }

    /// Decrypts `buf` in place (if a key exists), mixing the ciphertext into
    /// the hash. Returns the plaintext length.
    pub(crate) fn decrypt_and_hash(&mut self, buf: &mut [u8]) -> Result<usize, NoiseError> {
        let mut hasher = Sha256::new();
        hasher.update(self.hash);
        hasher.update(&*buf);
        let next_hash: [u8; HASHLEN] = hasher.finalize().into();
        let len = match self.cipher.as_mut() {
            Some(cipher) => cipher.decrypt_in_place(&self.hash, buf)?,
            None => buf.len(),
        };
        self.hash = next_hash;
        Ok(len)
    }

    /// Bytes a payload of `len` takes on the wire with the current key state.
    pub(crate) fn sealed_len(&self, len: usize) -> Option<usize> {
        if self.has_key() {
            len.checked_add(TAGLEN)
        } else {
            Some(len)
        }
    }

    /// Derives `out.len()` bytes bound to this handshake's secret chaining
    /// key, independent of the `Split()` keys: RFC 5869 HKDF with
    /// `salt = ck`, empty input, and `info = label` (`Split()` uses empty
    /// info, so no label can collide with it).
    pub(crate) fn export(&self, label: &[u8], out: &mut [u8]) -> Result<(), NoiseError> {
        if label.is_empty() {
            return Err(NoiseError::MissingKey);
        }
        Hkdf::<Sha256>::new(Some(&self.chaining_key), &[])
            .expand(label, out)
            .map_err(|_| NoiseError::BufferTooSmall)
    }

    /// `Split()`: the two transport ciphers.
    pub(crate) fn split(&self) -> (CipherState, CipherState) {
        let (first, second) = hkdf2(&self.chaining_key, &[]);
        (CipherState::new(first), CipherState::new(second))
    }
}
