//! Ed25519 identities: the long-term key of a node.

use core::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use super::NodeId;

/// The longest `domain ‖ message` that can be signed. Signing needs the
/// message contiguous and there is no allocator, so it is assembled in a
/// stack buffer of this size; every message veil signs (a link static key,
/// a descriptor) is far shorter.
pub const MAX_SIGNED_LEN: usize = 512;

/// A node's secret identity key. Wiped on drop; `Debug` shows only the id.
#[derive(Clone)]
pub struct Identity {
    signing: SigningKey,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("node_id", &self.node_id())
            .finish_non_exhaustive()
    }
}

/// A node's public identity key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicIdentity {
    key: VerifyingKey,
}

impl fmt::Debug for PublicIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PublicIdentity")
            .field(&self.node_id())
            .finish()
    }
}

/// Why bytes are not a usable identity key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum IdentityKeyError {
    /// Not the encoding of a curve point.
    NotAPoint,
    /// A point of small order: it would accept forged signatures.
    WeakKey,
}

impl fmt::Display for IdentityKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdentityKeyError::NotAPoint => write!(f, "identity key is not a valid Ed25519 point"),
            IdentityKeyError::WeakKey => {
                write!(
                    f,
                    "identity key has small order and is refused as forgeable"
                )
            }
        }
    }
}

impl core::error::Error for IdentityKeyError {}

/// Why a signature was refused or could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SignatureError {
    /// The signature does not verify under this key and domain.
    Invalid,
    /// `domain ‖ message` exceeds [`MAX_SIGNED_LEN`].
    MessageTooLong,
}

impl fmt::Display for SignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignatureError::Invalid => write!(f, "signature does not verify: forged or altered"),
            SignatureError::MessageTooLong => {
                write!(f, "message too long to sign (limit {MAX_SIGNED_LEN} bytes)")
            }
        }
    }
}

impl core::error::Error for SignatureError {}

/// Assembles `domain ‖ message` in `buf`.
fn concat<'a>(
    buf: &'a mut [u8; MAX_SIGNED_LEN],
    domain: &[u8],
    message: &[u8],
) -> Result<&'a [u8], SignatureError> {
    let total = domain
        .len()
        .checked_add(message.len())
        .ok_or(SignatureError::MessageTooLong)?;
    let out = buf.get_mut(..total).ok_or(SignatureError::MessageTooLong)?;
    let (head, tail) = out
        .split_at_mut_checked(domain.len())
        .ok_or(SignatureError::MessageTooLong)?;
    head.copy_from_slice(domain);
    tail.copy_from_slice(message);
    Ok(out)
}

impl Identity {
    /// The identity whose Ed25519 secret key is `secret`.
    pub fn from_secret_bytes(secret: [u8; 32]) -> Self {
        Identity {
            signing: SigningKey::from_bytes(&secret),
        }
    }

    /// The secret key, for persisting the identity. Handle with care.
    pub fn secret_bytes(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    /// The public half.
    pub fn public(&self) -> PublicIdentity {
        PublicIdentity {
            key: self.signing.verifying_key(),
        }
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.public().node_id()
    }

    /// Signs `domain ‖ message`. Domains keep a signature made for one
    /// purpose from being valid for another.
    pub fn sign(&self, domain: &[u8], message: &[u8]) -> Result<[u8; 64], SignatureError> {
        let mut buf = [0u8; MAX_SIGNED_LEN];
        let signed = concat(&mut buf, domain, message)?;
        Ok(self.signing.sign(signed).to_bytes())
    }
}

impl PublicIdentity {
    /// Parses a public key, refusing invalid and small-order points.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, IdentityKeyError> {
        let key = VerifyingKey::from_bytes(bytes).map_err(|_| IdentityKeyError::NotAPoint)?;
        if key.is_weak() {
            return Err(IdentityKeyError::WeakKey);
        }
        Ok(PublicIdentity { key })
    }

    /// The 32-byte encoding.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The node id of this key.
    pub fn node_id(&self) -> NodeId {
        NodeId::from_identity_key(&self.to_bytes())
    }

    /// Verifies a signature over `domain ‖ message` with RFC 8032 strict
    /// rules (no malleable signatures, no small-order components).
    pub fn verify(
        &self,
        domain: &[u8],
        message: &[u8],
        signature: &[u8; 64],
    ) -> Result<(), SignatureError> {
        let mut buf = [0u8; MAX_SIGNED_LEN];
        let signed = concat(&mut buf, domain, message)?;
        let signature = Signature::from_bytes(signature);
        self.key
            .verify_strict(signed, &signature)
            .map_err(|_| SignatureError::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_only_in_their_domain() {
        let id = Identity::from_secret_bytes([9; 32]);
        let sig = id.sign(b"domain-a\0", b"message").unwrap();
        let public = id.public();
        assert_eq!(public.verify(b"domain-a\0", b"message", &sig), Ok(()));
        assert_eq!(
            public.verify(b"domain-b\0", b"message", &sig),
            Err(SignatureError::Invalid)
        );
        assert_eq!(
            public.verify(b"domain-a\0", b"massage", &sig),
            Err(SignatureError::Invalid)
        );
        let other = Identity::from_secret_bytes([8; 32]).public();
        assert_eq!(
            other.verify(b"domain-a\0", b"message", &sig),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn keys_round_trip_and_weak_keys_are_refused() {
        let id = Identity::from_secret_bytes([9; 32]);
        assert_eq!(
            Identity::from_secret_bytes(id.secret_bytes()).node_id(),
            id.node_id()
        );
        let public = id.public();
        assert_eq!(PublicIdentity::from_bytes(&public.to_bytes()), Ok(public));
        // The identity point is small-order.
        let mut identity_point = [0u8; 32];
        identity_point[0] = 1;
        assert_eq!(
            PublicIdentity::from_bytes(&identity_point),
            Err(IdentityKeyError::WeakKey)
        );
        assert!(format!("{id:?}").contains("NodeId("));
        assert!(!format!("{id:?}").contains(&format!("{:?}", id.secret_bytes())));
    }

    #[test]
    fn a_signature_with_a_small_order_r_is_refused() {
        // With the secret scalar `a`, a signer can make `R` the identity
        // point (order 1) and `S = k·a`: then `[S]B = R + [k]A` holds, so a
        // lax RFC 8032 verifier accepts it, but it is malleable. Strict
        // verification (`verify_strict`) must refuse it.
        use curve25519_dalek::scalar::Scalar;
        use ed25519_dalek::Verifier;
        use sha2::{Digest, Sha512};

        let secret = [9u8; 32];
        let public = Identity::from_secret_bytes(secret).public();
        let expanded = Sha512::digest(secret);
        let mut a = [0u8; 32];
        a.copy_from_slice(&expanded[..32]);
        a[0] &= 248;
        a[31] &= 127;
        a[31] |= 64;
        let a = Scalar::from_bytes_mod_order(a);

        let (domain, message) = (&b"domain-a\0"[..], &b"message"[..]);
        let mut buf = [0u8; MAX_SIGNED_LEN];
        let signed = concat(&mut buf, domain, message).unwrap();
        let mut r = [0u8; 32];
        r[0] = 1; // the identity point
        let k: [u8; 64] = Sha512::new()
            .chain_update(r)
            .chain_update(public.to_bytes())
            .chain_update(signed)
            .finalize()
            .into();
        let s = Scalar::from_bytes_mod_order_wide(&k) * a;
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&r);
        sig[32..].copy_from_slice(s.as_bytes());

        assert!(
            public
                .key
                .verify(signed, &Signature::from_bytes(&sig))
                .is_ok(),
            "the lax check accepts it, so the test signature is well formed"
        );
        assert_eq!(
            public.verify(domain, message, &sig),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn over_long_messages_are_an_error() {
        let id = Identity::from_secret_bytes([9; 32]);
        assert_eq!(
            id.sign(b"d", &[0; MAX_SIGNED_LEN]),
            Err(SignatureError::MessageTooLong)
        );
    }
}
