//! One direction of one hop's CGO state: `(K, N, T')`.

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::uiv::{self, UIV_TWEAK_LEN};
use super::{CellBody, KEY_LEN, SEED_LEN, TAG_LEN};

/// The 80 bytes a hop handshake yields for one direction: `K` (64) ‖ `N` (16).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Seed(pub [u8; SEED_LEN]);

impl core::fmt::Debug for Seed {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Seed(..)")
    }
}

/// The state of one direction of one layer. Keys are wiped on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct LayerState {
    /// `K = J ‖ S`: the ET key (`KB ‖ KU`) and the PRF key (`K ‖ B`).
    pub key: [u8; KEY_LEN],
    /// `N`: the nonce an endpoint puts in the tag part to be recognised.
    pub nonce: [u8; TAG_LEN],
    /// `T'`: the tag of the previous cell, chained into the next one's tweak.
    pub prev_tag: [u8; TAG_LEN],
}

impl core::fmt::Debug for LayerState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("LayerState(..)")
    }
}

impl LayerState {
    /// The initial state from a seed; `T'` starts at zero.
    pub fn from_seed(seed: &Seed) -> Self {
        let mut key = [0u8; KEY_LEN];
        let mut nonce = [0u8; TAG_LEN];
        if let Some((k, n)) = seed.0.split_first_chunk::<KEY_LEN>() {
            key.copy_from_slice(k);
            nonce.copy_from_slice(n);
        }
        LayerState {
            key,
            nonce,
            prev_tag: [0; TAG_LEN],
        }
    }

    pub(super) fn tweak(&self, ad: u8) -> [u8; UIV_TWEAK_LEN] {
        let mut h = [0u8; UIV_TWEAK_LEN];
        let (tag, last) = h.split_at_mut(TAG_LEN);
        tag.copy_from_slice(&self.prev_tag);
        last.fill(ad);
        h
    }

    /// `C = ENC_UIV(T' ‖ ad; C)`, then `T' = C[0..16]`. What relays do.
    pub fn encrypt(&mut self, ad: u8, body: &mut CellBody) {
        let h = self.tweak(ad);
        uiv::encrypt(&self.key, &h, &mut body.tag, &mut body.payload);
        self.prev_tag = body.tag;
    }

    /// `t = C[0..16]`, `C = DEC_UIV(T' ‖ ad; C)`, `T' = t`. What clients do.
    pub fn decrypt(&mut self, ad: u8, body: &mut CellBody) {
        let h = self.tweak(ad);
        let tag = body.tag;
        uiv::decrypt(&self.key, &h, &mut body.tag, &mut body.payload);
        self.prev_tag = tag;
    }

    /// Whether the tag part equals `N`, in constant time.
    pub fn recognises(&self, tag: &[u8; TAG_LEN]) -> bool {
        bool::from(self.nonce.ct_eq(tag))
    }

    /// `(K, N) = UPDATE(K, tweak)`.
    pub fn update(&mut self, tweak: &[u8; TAG_LEN]) {
        let tweak = *tweak;
        uiv::update(&mut self.key, &mut self.nonce, &tweak);
    }

    /// `(K, N) = UPDATE(K, N)`.
    pub fn update_with_nonce(&mut self) {
        let nonce = self.nonce;
        uiv::update(&mut self.key, &mut self.nonce, &nonce);
    }
}
