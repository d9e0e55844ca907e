//! The Noise Protocol Framework (revision 34), for exactly the two
//! handshakes veil uses: `Noise_XX_25519_ChaChaPoly_SHA256` for links and
//! `Noise_NK_25519_ChaChaPoly_SHA256` for circuit hops. Built on RustCrypto
//! and dalek primitives, allocation-free, and checked byte for byte against
//! the published cacophony and snow vectors (`core/tests/noise_vectors.rs`).

mod cipher_state;
mod error;
mod handshake;
mod keys;
mod symmetric_state;

pub use cipher_state::CipherState;
pub use error::NoiseError;
pub use handshake::{HandshakePattern, HandshakeState, Role, TransportKeys};
pub use keys::StaticKeypair;

/// Bytes of an X25519 public key or shared secret.
pub const DHLEN: usize = 32;
/// Bytes of a SHA-256 output.
pub const HASHLEN: usize = 32;
/// Bytes of a ChaCha20-Poly1305 tag.
pub const TAGLEN: usize = 16;
/// The largest Noise message.
pub const MAX_MESSAGE_LEN: usize = 65_535;
