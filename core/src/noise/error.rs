//! Errors of the Noise handshake and cipher operations.

use core::fmt;

/// Why a Noise operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum NoiseError {
    /// The output buffer cannot hold the message; pass a larger one.
    BufferTooSmall,
    /// The message is shorter than its tokens require, or longer than the
    /// payload buffer can take.
    BadMessageLength,
    /// A ciphertext failed authentication: tampered, forged, replayed, or
    /// encrypted under other keys (a different prologue, for instance).
    DecryptFailed,
    /// The nonce space is spent; the session must end.
    NonceExhausted,
    /// It is the other side's turn (or the handshake is over).
    OutOfTurn,
    /// `split` before the last handshake message.
    NotComplete,
    /// The pattern needs a key that was not given (a local static key for
    /// `XX`, the responder's static key for an `NK` initiator).
    MissingKey,
    /// The peer's public key is of low order: the Diffie-Hellman output is
    /// all zeros, which would let an attacker fix the session key.
    WeakPublicKey,
    /// A message exceeds the Noise maximum of 65535 bytes.
    MessageTooLarge,
}

impl fmt::Display for NoiseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NoiseError::BufferTooSmall => "output buffer too small for the Noise message; pass a larger buffer",
            NoiseError::BadMessageLength => "Noise message has the wrong length for its pattern position",
            NoiseError::DecryptFailed => "Noise ciphertext failed authentication; the peer is not who it claims or the data was altered",
            NoiseError::NonceExhausted => "Noise nonce space exhausted; start a new session",
            NoiseError::OutOfTurn => "not this side's turn in the Noise handshake",
            NoiseError::NotComplete => "Noise handshake not complete; finish it before splitting",
            NoiseError::MissingKey => "the Noise pattern needs a static key that was not supplied",
            NoiseError::WeakPublicKey => "peer sent a low-order X25519 key; refusing the handshake",
            NoiseError::MessageTooLarge => "Noise messages are limited to 65535 bytes",
        })
    }
}

impl core::error::Error for NoiseError {}
