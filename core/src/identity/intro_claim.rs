//! The signed claim a service makes at an introduction point
//! (`ESTABLISH_INTRO`, relay spec §13.2).
//!
//! ```text
//! service_key  [32]  the service's Ed25519 public key
//! signature    [64]  Ed25519 by service_key over INTRO_CLAIM_DOMAIN ‖ point_id [32]
//! ```
//!
//! The point derives the service id from the key, so that only the holder
//! of the service key can be introduced under that id, and checks the
//! signature over its own node id, so that a claim the point saw is worth
//! nothing at any other point (Tor binds its `ESTABLISH_INTRO` to the
//! circuit for the same reason). Within one point, the first circuit to
//! claim a service keeps it (§13.2); the point itself could always refuse
//! to pass introductions on, so binding to the circuit would add nothing.

use core::fmt;

use ed25519_dalek::{Signature, VerifyingKey};

use super::descriptor::SIGNATURE_LEN;
use super::keys::{IdentityKeyError, PublicIdentity};
use super::service::{service_id_for_key, ServiceKeys};
use super::NodeId;

/// Domain separation for introduction claims, zero-terminated like every
/// signature domain of veil (relay spec §1).
pub const INTRO_CLAIM_DOMAIN: &[u8] = b"veil-establish-intro-v1\0";

/// The length of an introduction claim: `ESTABLISH_INTRO`'s data.
pub const INTRO_CLAIM_LEN: usize = 32 + SIGNATURE_LEN;

const SIGNED_LEN: usize = INTRO_CLAIM_DOMAIN.len() + 32;

/// Why an introduction point refused a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum IntroClaimError {
    /// Not `INTRO_CLAIM_LEN` bytes.
    WrongLength(usize),
    /// The service key is not a usable Ed25519 key.
    BadServiceKey(IdentityKeyError),
    /// The signature does not verify under the service key for this point.
    SignatureInvalid,
}

impl fmt::Display for IntroClaimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IntroClaimError::WrongLength(len) => write!(
                f,
                "introduction claim is {len} bytes, not {INTRO_CLAIM_LEN}; send the service key and its signature"
            ),
            IntroClaimError::BadServiceKey(e) => {
                write!(f, "introduction claim's service key is unusable: {e}")
            }
            IntroClaimError::SignatureInvalid => f.write_str(
                "introduction claim's signature does not verify for this point; it is forged, or made for another point",
            ),
        }
    }
}

impl core::error::Error for IntroClaimError {}

/// The message a claim for point `point` signs.
fn signed_message(point: &NodeId) -> [u8; SIGNED_LEN] {
    let mut message = [0u8; SIGNED_LEN];
    let (domain, id) = message.split_at_mut(INTRO_CLAIM_DOMAIN.len());
    domain.copy_from_slice(INTRO_CLAIM_DOMAIN);
    id.copy_from_slice(&point.0);
    message
}

impl ServiceKeys {
    /// The service's claim at introduction point `point`: `ESTABLISH_INTRO`'s
    /// data.
    pub fn intro_claim(&self, point: &NodeId) -> [u8; INTRO_CLAIM_LEN] {
        let mut claim = [0u8; INTRO_CLAIM_LEN];
        let (key, signature) = claim.split_at_mut(32);
        key.copy_from_slice(&self.service_key());
        signature.copy_from_slice(&self.sign(&signed_message(point)));
        claim
    }
}

/// Checks a claim made at this node, introduction point `point`, and
/// returns the service id it is good for.
pub fn verify_intro_claim(claim: &[u8], point: &NodeId) -> Result<NodeId, IntroClaimError> {
    let claim: &[u8; INTRO_CLAIM_LEN] = claim
        .try_into()
        .map_err(|_| IntroClaimError::WrongLength(claim.len()))?;
    let (key, signature) = claim.split_at(32);
    let key: [u8; 32] = key
        .try_into()
        .map_err(|_| IntroClaimError::WrongLength(INTRO_CLAIM_LEN))?;
    let signature: [u8; SIGNATURE_LEN] = signature
        .try_into()
        .map_err(|_| IntroClaimError::WrongLength(INTRO_CLAIM_LEN))?;
    // Refuses non-points and small-order keys, which would accept forged
    // signatures.
    PublicIdentity::from_bytes(&key).map_err(IntroClaimError::BadServiceKey)?;
    let verifying = VerifyingKey::from_bytes(&key)
        .map_err(|_| IntroClaimError::BadServiceKey(IdentityKeyError::NotAPoint))?;
    verifying
        .verify_strict(&signed_message(point), &Signature::from_bytes(&signature))
        .map_err(|_| IntroClaimError::SignatureInvalid)?;
    Ok(service_id_for_key(&key))
}

#[cfg(test)]
mod tests {
    use super::*;

    const POINT: NodeId = NodeId([7; 32]);

    fn keys() -> ServiceKeys {
        ServiceKeys::from_secrets([1; 32], [2; 32])
    }

    #[test]
    fn a_claim_verifies_at_its_point_and_names_the_service() {
        let claim = keys().intro_claim(&POINT);
        assert_eq!(verify_intro_claim(&claim, &POINT), Ok(keys().service_id()));
    }

    #[test]
    fn a_claim_is_worth_nothing_at_another_point() {
        let claim = keys().intro_claim(&POINT);
        assert_eq!(
            verify_intro_claim(&claim, &NodeId([8; 32])),
            Err(IntroClaimError::SignatureInvalid)
        );
    }

    #[test]
    fn a_claim_with_another_key_or_an_altered_byte_is_refused() {
        let claim = keys().intro_claim(&POINT);
        // Someone else's key with this signature: another service id, and
        // a signature that does not verify under it.
        let mut swapped = claim;
        swapped[..32].copy_from_slice(&ServiceKeys::from_secrets([3; 32], [4; 32]).service_key());
        assert_eq!(
            verify_intro_claim(&swapped, &POINT),
            Err(IntroClaimError::SignatureInvalid)
        );
        for i in [32, 60, INTRO_CLAIM_LEN - 1] {
            let mut altered = claim;
            altered[i] ^= 1;
            assert_eq!(
                verify_intro_claim(&altered, &POINT),
                Err(IntroClaimError::SignatureInvalid),
                "byte {i}"
            );
        }
    }

    #[test]
    fn a_claim_of_the_wrong_length_or_with_a_small_order_key_is_refused() {
        let claim = keys().intro_claim(&POINT);
        assert_eq!(
            verify_intro_claim(&claim[..95], &POINT),
            Err(IntroClaimError::WrongLength(95))
        );
        assert_eq!(
            verify_intro_claim(&[claim.as_slice(), &[0]].concat(), &POINT),
            Err(IntroClaimError::WrongLength(97))
        );
        let mut identity_point = [0u8; INTRO_CLAIM_LEN];
        identity_point[0] = 1;
        assert!(matches!(
            verify_intro_claim(&identity_point, &POINT),
            Err(IntroClaimError::BadServiceKey(_))
        ));
    }
}
