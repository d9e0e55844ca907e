//! What an endpoint does to a cell in one step: encrypt or decrypt its
//! layer, then ratchet its keys (`UPDATE`) when the cell is its own.
//!
//! Both steps run the PRF under the same `S`. With `fast-cgo` the step
//! expands that key once for both (`Prf`); without it (the firmware
//! images, whose flash has no room for the second path) each run expands
//! its own. The bytes are the same either way.

use super::layer::LayerState;
use super::CellBody;

#[cfg(feature = "fast-cgo")]
use super::{prf::Prf, uiv};

impl LayerState {
    /// [`encrypt`](Self::encrypt), then, if the cell carries `N`,
    /// `(K, N) = UPDATE(K, N)`: what the hop a forward cell is for does.
    /// Returns whether the cell was recognised.
    pub fn encrypt_recognising(&mut self, ad: u8, body: &mut CellBody) -> bool {
        #[cfg(feature = "fast-cgo")]
        {
            let mut prf = self.prf();
            self.encrypt_with(&mut prf, ad, body);
            let recognised = self.recognises(&body.tag);
            if recognised {
                let nonce = self.nonce;
                uiv::update_with(&mut prf, &mut self.key, &mut self.nonce, &nonce);
            }
            recognised
        }
        #[cfg(not(feature = "fast-cgo"))]
        {
            self.encrypt(ad, body);
            let recognised = self.recognises(&body.tag);
            if recognised {
                self.update_with_nonce();
            }
            recognised
        }
    }

    /// [`encrypt`](Self::encrypt), then `(K, N) = UPDATE(K, C[0..16])`: a
    /// hop originating a cell towards the client.
    pub fn encrypt_originating(&mut self, ad: u8, body: &mut CellBody) {
        #[cfg(feature = "fast-cgo")]
        {
            let mut prf = self.prf();
            self.encrypt_with(&mut prf, ad, body);
            let tag = body.tag;
            uiv::update_with(&mut prf, &mut self.key, &mut self.nonce, &tag);
        }
        #[cfg(not(feature = "fast-cgo"))]
        {
            self.encrypt(ad, body);
            let tag = body.tag;
            self.update(&tag);
        }
    }

    /// [`decrypt`](Self::decrypt), then `(K, N) = UPDATE(K, N)`: the client
    /// originating a cell for this hop.
    pub fn decrypt_originating(&mut self, ad: u8, body: &mut CellBody) {
        #[cfg(feature = "fast-cgo")]
        {
            let mut prf = self.prf();
            self.decrypt_with(&mut prf, ad, body);
            let nonce = self.nonce;
            uiv::update_with(&mut prf, &mut self.key, &mut self.nonce, &nonce);
        }
        #[cfg(not(feature = "fast-cgo"))]
        {
            self.decrypt(ad, body);
            self.update_with_nonce();
        }
    }

    /// [`decrypt`](Self::decrypt), then, if the plaintext carries `N`,
    /// `(K, N) = UPDATE(K, t)` with `t` the tag the cell arrived with: the
    /// client receiving a cell this hop originated. Returns whether it was
    /// recognised.
    pub fn decrypt_recognising(&mut self, ad: u8, body: &mut CellBody) -> bool {
        let tag = body.tag;
        #[cfg(feature = "fast-cgo")]
        {
            let mut prf = self.prf();
            self.decrypt_with(&mut prf, ad, body);
            let recognised = self.recognises(&body.tag);
            if recognised {
                uiv::update_with(&mut prf, &mut self.key, &mut self.nonce, &tag);
            }
            recognised
        }
        #[cfg(not(feature = "fast-cgo"))]
        {
            self.decrypt(ad, body);
            let recognised = self.recognises(&body.tag);
            if recognised {
                self.update(&tag);
            }
            recognised
        }
    }

    /// The PRF under the current `S`.
    #[cfg(feature = "fast-cgo")]
    fn prf(&self) -> Prf {
        Prf::new(uiv::halves(&self.key).1)
    }

    #[cfg(feature = "fast-cgo")]
    fn encrypt_with(&mut self, prf: &mut Prf, ad: u8, body: &mut CellBody) {
        let h = self.tweak(ad);
        let (j, _) = uiv::halves(&self.key);
        uiv::encrypt_with(prf, j, &h, &mut body.tag, &mut body.payload);
        self.prev_tag = body.tag;
    }

    #[cfg(feature = "fast-cgo")]
    fn decrypt_with(&mut self, prf: &mut Prf, ad: u8, body: &mut CellBody) {
        let h = self.tweak(ad);
        let tag = body.tag;
        let (j, _) = uiv::halves(&self.key);
        uiv::decrypt_with(prf, j, &h, &mut body.tag, &mut body.payload);
        self.prev_tag = tag;
    }
}
