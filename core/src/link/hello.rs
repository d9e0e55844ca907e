//! The link hello: the encrypted payload of handshake messages 2 and 3.
//!
//! Noise `XX` authenticates the peer's X25519 *static* key. veil identities
//! are Ed25519 keys, so each side proves that its Noise static key belongs to
//! its identity by signing the static key with the identity key. Because the
//! hello travels encrypted inside the handshake, a passive observer never
//! learns either identity.

use core::fmt;

use crate::identity::{Identity, NodeId, PublicIdentity};

use super::frame::MIN_MAX_MESSAGE_LEN;

/// Domain separation for the identity signature over the Noise static key.
pub const LINK_STATIC_DOMAIN: &[u8] = b"veil-link-static-v1\0";
/// Bytes of an encoded hello.
pub const HELLO_LEN: usize = 32 + 64 + 2 + 2;

/// One side's hello.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkHello {
    /// The sender's Ed25519 identity key.
    pub identity: PublicIdentity,
    /// Signature by `identity` over [`LINK_STATIC_DOMAIN`] ‖ the sender's Noise static key.
    pub signature: [u8; 64],
    /// The largest message (length prefix value) the sender accepts.
    pub max_message_len: u16,
}

/// Why a hello was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum HelloError {
    /// The payload is not exactly [`HELLO_LEN`] bytes.
    BadLength(usize),
    /// The identity key is not a valid Ed25519 point.
    BadIdentityKey,
    /// The signature does not bind the identity to the Noise static key.
    BadSignature,
    /// The advertised receive limit is below one cell per message.
    MaxMessageTooSmall(u16),
}

impl fmt::Display for HelloError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HelloError::BadLength(len) => {
                write!(f, "link hello is {len} bytes, expected {HELLO_LEN}; peer speaks another version")
            }
            HelloError::BadIdentityKey => write!(f, "link hello carries an invalid identity key"),
            HelloError::BadSignature => write!(
                f,
                "link hello signature does not bind the identity to the Noise key; peer is impersonating"
            ),
            HelloError::MaxMessageTooSmall(n) => write!(
                f,
                "peer accepts only {n}-byte messages, less than one cell ({MIN_MAX_MESSAGE_LEN})"
            ),
        }
    }
}

impl core::error::Error for HelloError {}

impl LinkHello {
    /// Builds this node's hello for a link whose Noise static public key is `noise_static`.
    pub fn new(identity: &Identity, noise_static: &[u8; 32], max_message_len: u16) -> Self {
        LinkHello {
            identity: identity.public(),
            // 52 bytes always fit the signer's buffer; were it ever to fail,
            // the all-zero signature fails closed at every peer.
            signature: identity
                .sign(LINK_STATIC_DOMAIN, noise_static)
                .unwrap_or([0; 64]),
            max_message_len,
        }
    }

    /// Encodes the hello.
    pub fn emit(&self) -> [u8; HELLO_LEN] {
        let mut out = [0u8; HELLO_LEN];
        let (key, rest) = out.split_at_mut(32);
        key.copy_from_slice(&self.identity.to_bytes());
        let (sig, rest) = rest.split_at_mut(64);
        sig.copy_from_slice(&self.signature);
        let (max, flags) = rest.split_at_mut(2);
        max.copy_from_slice(&self.max_message_len.to_be_bytes());
        flags.fill(0);
        out
    }

    /// Decodes a hello without checking its signature.
    pub fn parse(bytes: &[u8]) -> Result<Self, HelloError> {
        let bytes: &[u8; HELLO_LEN] = bytes
            .try_into()
            .map_err(|_| HelloError::BadLength(bytes.len()))?;
        let (key, rest) = bytes
            .split_first_chunk::<32>()
            .ok_or(HelloError::BadLength(0))?;
        let (sig, rest) = rest
            .split_first_chunk::<64>()
            .ok_or(HelloError::BadLength(0))?;
        let (max, _flags) = rest
            .split_first_chunk::<2>()
            .ok_or(HelloError::BadLength(0))?;
        let identity = PublicIdentity::from_bytes(key).map_err(|_| HelloError::BadIdentityKey)?;
        let max_message_len = u16::from_be_bytes(*max);
        if usize::from(max_message_len) < MIN_MAX_MESSAGE_LEN {
            return Err(HelloError::MaxMessageTooSmall(max_message_len));
        }
        Ok(LinkHello {
            identity,
            signature: *sig,
            max_message_len,
        })
    }

    /// Checks that the hello's identity signed `noise_static`, the static key
    /// that Noise authenticated for this peer, and returns the peer's node id.
    pub fn verify(&self, noise_static: &[u8; 32]) -> Result<NodeId, HelloError> {
        self.identity
            .verify(LINK_STATIC_DOMAIN, noise_static, &self.signature)
            .map_err(|_| HelloError::BadSignature)?;
        Ok(self.identity.node_id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn parse_of_emit_is_identity(secret in any::<[u8; 32]>(), key in any::<[u8; 32]>(), max in MIN_MAX_MESSAGE_LEN as u16..) {
            let id = Identity::from_secret_bytes(secret);
            let hello = LinkHello::new(&id, &key, max);
            let parsed = LinkHello::parse(&hello.emit()).unwrap();
            prop_assert_eq!(parsed, hello);
            prop_assert_eq!(parsed.verify(&key).unwrap(), id.node_id());
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(hello) = LinkHello::parse(&bytes) {
                let _ = hello.verify(&[0; 32]);
            }
        }
    }

    #[test]
    fn hello_round_trips_and_verifies_against_its_static_key() {
        let id = Identity::from_secret_bytes([3; 32]);
        let hello = LinkHello::new(&id, &[9; 32], 16_000);
        let parsed = LinkHello::parse(&hello.emit()).unwrap();
        assert_eq!(parsed, hello);
        assert_eq!(parsed.verify(&[9; 32]).unwrap(), id.node_id());
        assert_eq!(parsed.verify(&[8; 32]), Err(HelloError::BadSignature));
    }

    #[test]
    fn malformed_hellos_are_refused() {
        let id = Identity::from_secret_bytes([3; 32]);
        let bytes = LinkHello::new(&id, &[9; 32], 16_000).emit();
        assert_eq!(
            LinkHello::parse(&bytes[..99]),
            Err(HelloError::BadLength(99))
        );
        let mut small = bytes;
        small[96..98].copy_from_slice(&100u16.to_be_bytes());
        assert_eq!(
            LinkHello::parse(&small),
            Err(HelloError::MaxMessageTooSmall(100))
        );
        let mut forged = bytes;
        forged[40] ^= 1;
        let parsed = LinkHello::parse(&forged).unwrap();
        assert_eq!(parsed.verify(&[9; 32]), Err(HelloError::BadSignature));
    }
}
