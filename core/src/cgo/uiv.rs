//! `UIV+`: the wide-block cipher over a whole 509-byte cell body, and the
//! `UPDATE` key ratchet.
//!
//! - `ENC_UIV(H, X_L, X_R)`: `Y_L = ENC_ET(J, H ‖ X_R, X_L)`,
//!   `Y_R = X_R ⊕ PRF(S, Y_L, 0)`.
//! - `DEC_UIV(H, Y_L, Y_R)`: `X_R = Y_R ⊕ PRF(S, Y_L, 0)`,
//!   `X_L = DEC_ET(J, H ‖ X_R, Y_L)`.
//! - `UPDATE(K, N)`: `PRF(S, N, 1)`, 80 bytes: the new `K` (64) and `N` (16).

use zeroize::Zeroize;

use super::et::{et, Direction, ET_TWEAK_LEN};
use super::prf::{prf_update, prf_xor};
use super::{KEY_LEN, PAYLOAD_LEN, SEED_LEN};

/// Bytes of the UIV tweak `H = T' ‖ ad`.
pub const UIV_TWEAK_LEN: usize = 17;

fn halves(key: &[u8; KEY_LEN]) -> (&[u8; 32], &[u8; 32]) {
    let (j, s) = key.split_first_chunk::<32>().unwrap_or((&[0; 32], &[]));
    (j, s.try_into().unwrap_or(&[0; 32]))
}

fn et_tweak(h: &[u8; UIV_TWEAK_LEN], right: &[u8; PAYLOAD_LEN]) -> [u8; ET_TWEAK_LEN] {
    let mut tweak = [0u8; ET_TWEAK_LEN];
    let (head, tail) = tweak.split_at_mut(UIV_TWEAK_LEN);
    head.copy_from_slice(h);
    tail.copy_from_slice(right);
    tweak
}

/// `ENC_UIV` in place.
pub fn encrypt(
    key: &[u8; KEY_LEN],
    h: &[u8; UIV_TWEAK_LEN],
    left: &mut [u8; 16],
    right: &mut [u8; PAYLOAD_LEN],
) {
    let (j, s) = halves(key);
    et(j, &et_tweak(h, right), left, Direction::Encrypt);
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
    et(j, &et_tweak(h, right), left, Direction::Decrypt);
}

/// `UPDATE(K, N)`: replaces `key` and `nonce` with the next ones.
pub fn update(key: &mut [u8; KEY_LEN], nonce: &mut [u8; 16], tweak: &[u8; 16]) {
    let mut out = [0u8; SEED_LEN];
    let (_, s) = halves(key);
    prf_update(s, tweak, &mut out);
    if let Some((k, n)) = out.split_first_chunk::<KEY_LEN>() {
        key.copy_from_slice(k);
        nonce.copy_from_slice(n);
    }
    out.zeroize();
}
