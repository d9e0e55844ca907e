//! `UIV+`: the wide-block cipher over a whole 509-byte cell body, and the
//! `UPDATE` key ratchet.
//!
//! - `ENC_UIV(H, X_L, X_R)`: `Y_L = ENC_ET(J, H ‖ X_R, X_L)`,
//!   `Y_R = X_R ⊕ PRF(S, Y_L, 0)`.
//! - `DEC_UIV(H, Y_L, Y_R)`: `X_R = Y_R ⊕ PRF(S, Y_L, 0)`,
//!   `X_L = DEC_ET(J, H ‖ X_R, Y_L)`.
//! - `UPDATE(K, N)`: `PRF(S, N, 1)`, 80 bytes: the new `K` (64) and `N` (16).

use zeroize::Zeroize;

use super::et::{et_split, Direction};
use super::prf::{prf_update, prf_xor};
use super::{KEY_LEN, PAYLOAD_LEN, SEED_LEN};

/// Bytes of the UIV tweak `H = T' ‖ ad`.
pub const UIV_TWEAK_LEN: usize = 17;

/// The two halves of a layer key: `J` (the ET key) and `S` (the PRF key).
pub fn halves(key: &[u8; KEY_LEN]) -> (&[u8; 32], &[u8; 32]) {
    let (j, s) = key.split_first_chunk::<32>().unwrap_or((&[0; 32], &[]));
    (j, s.try_into().unwrap_or(&[0; 32]))
}

/// `ENC_UIV` in place.
pub fn encrypt(
    key: &[u8; KEY_LEN],
    h: &[u8; UIV_TWEAK_LEN],
    left: &mut [u8; 16],
    right: &mut [u8; PAYLOAD_LEN],
) {
    let (j, s) = halves(key);
    et_split(j, h, right, left, Direction::Encrypt);
    prf_xor(s, left, right);
}

/// `DEC_UIV` in place.
pub fn decrypt(
    key: &[u8; KEY_LEN],
    h: &[u8; UIV_TWEAK_LEN],
    left: &mut [u8; 16],
    right: &mut [u8; PAYLOAD_LEN],
) {
    let (j, s) = halves(key);
    prf_xor(s, left, right);
    et_split(j, h, right, left, Direction::Decrypt);
}

/// `UPDATE(K, N)`: replaces `key` and `nonce` with the next ones.
pub fn update(key: &mut [u8; KEY_LEN], nonce: &mut [u8; 16], tweak: &[u8; 16]) {
    let mut out = [0u8; SEED_LEN];
    let (_, s) = halves(key);
    prf_update(s, tweak, &mut out);
    replace(key, nonce, &mut out);
}

fn replace(key: &mut [u8; KEY_LEN], nonce: &mut [u8; 16], out: &mut [u8; SEED_LEN]) {
    if let Some((k, n)) = out.split_first_chunk::<KEY_LEN>() {
        key.copy_from_slice(k);
        nonce.copy_from_slice(n);
    }
    out.zeroize();
}

#[cfg(feature = "fast-cgo")]
pub use kept::{decrypt_with, encrypt_with, update_with};

/// The same operations with a PRF the caller keeps (`fast-cgo`), so that an
/// endpoint's payload and ratchet share one key expansion.
#[cfg(feature = "fast-cgo")]
mod kept {
    use super::super::prf::Prf;
    use super::*;

    /// [`encrypt`] with `prf`, the PRF under `S`, and `j`, the other half
    /// of the key.
    pub fn encrypt_with(
        prf: &mut Prf,
        j: &[u8; 32],
        h: &[u8; UIV_TWEAK_LEN],
        left: &mut [u8; 16],
        right: &mut [u8; PAYLOAD_LEN],
    ) {
        et_split(j, h, right, left, Direction::Encrypt);
        prf.xor(left, right);
    }

    /// [`decrypt`] with `prf` and `j`, as [`encrypt_with`].
    pub fn decrypt_with(
        prf: &mut Prf,
        j: &[u8; 32],
        h: &[u8; UIV_TWEAK_LEN],
        left: &mut [u8; 16],
        right: &mut [u8; PAYLOAD_LEN],
    ) {
        prf.xor(left, right);
        et_split(j, h, right, left, Direction::Decrypt);
    }

    /// [`update`] with `prf`, the PRF under the current `S` of `key`.
    pub fn update_with(
        prf: &mut Prf,
        key: &mut [u8; KEY_LEN],
        nonce: &mut [u8; 16],
        tweak: &[u8; 16],
    ) {
        let mut out = [0u8; SEED_LEN];
        prf.ratchet(tweak, &mut out);
        replace(key, nonce, &mut out);
    }
}
