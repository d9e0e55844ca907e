//! Secrets the core keeps inside dependency types are wiped when those are
//! dropped. A compile-time check that each type still implements
//! `ZeroizeOnDrop` with the features the workspace turns on, so that a
//! dependency upgrade that moves wiping behind a new feature (as
//! chacha20poly1305 0.11 did) fails here rather than silently.
//!
//! Three wipe on drop without a `ZeroizeOnDrop` marker to check here:
//! `poly1305::Poly1305` and `polyval::Polyval` in their own `Drop` under
//! their `zeroize` features, and `hmac::Hmac<Sha256>` (inside HKDF) through
//! its fields: two SHA-256 states (checked below, sha2's `zeroize`) and a
//! block buffer (hmac's `zeroize`). The workspace names all three features.

use zeroize::ZeroizeOnDrop;

fn wiped_on_drop<T: ZeroizeOnDrop>() {}

#[test]
fn key_holding_types_wipe_on_drop() {
    // Noise: transport and handshake ciphers, X25519, HKDF-SHA-256.
    wiped_on_drop::<chacha20poly1305::ChaCha20Poly1305>();
    wiped_on_drop::<chacha20::ChaCha20>();
    wiped_on_drop::<x25519_dalek::StaticSecret>();
    wiped_on_drop::<x25519_dalek::SharedSecret>();
    wiped_on_drop::<sha2::Sha256>();
    // Identity: Ed25519 signing (SHA-512 over the secret).
    wiped_on_drop::<ed25519_dalek::SigningKey>();
    wiped_on_drop::<sha2::Sha512>();
    // CGO: AES-128, AES-CTR.
    wiped_on_drop::<aes::Aes128>();
    wiped_on_drop::<ctr::Ctr128BE<aes::Aes128>>();
    // The core's own key holders.
    wiped_on_drop::<veil_core::noise::CipherState>();
    wiped_on_drop::<veil_core::noise::StaticKeypair>();
    wiped_on_drop::<veil_core::cgo::Seed>();
    wiped_on_drop::<veil_core::cgo::LayerState>();
}
