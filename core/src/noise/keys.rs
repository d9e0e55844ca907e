//! X25519 key pairs and the Diffie-Hellman function Noise uses.

use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::ZeroizeOnDrop;

use super::{NoiseError, DHLEN};

/// An X25519 key pair: a node's Noise static key, or an ephemeral key.
/// The secret is wiped when the pair is dropped.
#[derive(Clone, ZeroizeOnDrop)]
pub struct StaticKeypair {
    secret: StaticSecret,
    #[zeroize(skip)]
    public: [u8; DHLEN],
}

impl core::fmt::Debug for StaticKeypair {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("StaticKeypair")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl StaticKeypair {
    /// The key pair for a 32-byte secret (clamped by X25519 as usual).
    pub fn from_secret_bytes(secret: [u8; DHLEN]) -> Self {
        let secret = StaticSecret::from(secret);
        let public = PublicKey::from(&secret).to_bytes();
        StaticKeypair { secret, public }
    }

    /// A pair whose public key is `clamp(secret)·B` plus a point of small
    /// order (a "dirty" key, link spec §2): what makes an Elligator2
    /// representative of it look random. The secret's clamping removes the
    /// small-order part from every Diffie-Hellman, so `public` works with
    /// any peer as the clean key would.
    pub(crate) fn from_dirty_parts(secret: [u8; DHLEN], public: [u8; DHLEN]) -> Self {
        StaticKeypair {
            secret: StaticSecret::from(secret),
            public,
        }
    }

    /// A fresh key pair: 32 bytes from `rng` (wiped once used) as the
    /// secret.
    pub fn generate<R: rand_core::Rng + ?Sized>(rng: &mut R) -> Self {
        let mut secret = zeroize::Zeroizing::new([0u8; DHLEN]);
        rng.fill_bytes(secret.as_mut_slice());
        Self::from_secret_bytes(*secret)
    }

    /// A pair from a secret and the public key computed from it earlier
    /// (a key pair drawn ahead of need, `circuit::ReadyEphemerals`): no
    /// base-point multiplication.
    pub(crate) fn from_parts(secret: [u8; DHLEN], public: [u8; DHLEN]) -> Self {
        StaticKeypair {
            secret: StaticSecret::from(secret),
            public,
        }
    }

    /// The secret, for saving the key pair (wiped when dropped).
    pub fn secret_bytes(&self) -> zeroize::Zeroizing<[u8; DHLEN]> {
        zeroize::Zeroizing::new(self.secret.to_bytes())
    }

    /// The public key.
    pub fn public(&self) -> [u8; DHLEN] {
        self.public
    }

    /// `DH(self, remote)`, refusing a low-order `remote` whose shared
    /// secret is all zeros.
    pub(crate) fn diffie_hellman(&self, remote: &[u8; DHLEN]) -> Result<[u8; DHLEN], NoiseError> {
        let shared = self.secret.diffie_hellman(&PublicKey::from(*remote));
        if !shared.was_contributory() {
            return Err(NoiseError::WeakPublicKey);
        }
        Ok(shared.to_bytes())
    }
}
