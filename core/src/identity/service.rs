//! Service descriptors: what a rendezvous service publishes (relay spec
//! §13), like a Tor v3 onion service descriptor but simpler.
//!
//! A service is named by its own Ed25519 key, unlinkable to the node id of
//! the node that runs it. Its descriptor tells a sender the X25519 key for
//! the introduction handshake and the introduction points (relays the
//! service keeps circuits to) where that handshake is handed over. Layout
//! (all integers big-endian):
//!
//! ```text
//! version       u8     1
//! service_key   [32]   Ed25519 public key of the service
//! onion_key     [32]   X25519 public key of the service's introduction handshake
//! issued_at     u64    unix seconds when the service signed it
//! intro_count   u8     1..=MAX_INTRO_POINTS
//! intro_count × intro point:
//!   node_id       [32]  the introduction point relay's node id
//!   onion_key     [32]  that relay's X25519 onion key
//!   address_count u8    0..=MAX_INTRO_POINT_ADDRESSES
//!   addresses           address_count addresses in the node-descriptor layout (§2)
//! signature     [64]   Ed25519 by service_key over SERVICE_DESCRIPTOR_DOMAIN ‖ every byte above
//! ```
//!
//! The service id, under which senders ask an introduction point for the
//! service, is `SHA-256(SERVICE_ID_DOMAIN ‖ service_key)`: a [`NodeId`], so
//! that it goes where a destination node id goes, and under a domain of its
//! own, so that it is never the id of a node.
//!
//! Only [`ServiceDescriptor::parse_verified`] turns bytes into a
//! descriptor; it checks the signature but not freshness, which needs a
//! clock: the caller compares `issued_at` with the copy it holds.

use core::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use heapless::Vec;
use sha2::{Digest, Sha256};

use super::address::{Address, AddressError};
use super::descriptor::SIGNATURE_LEN;
use super::keys::{IdentityKeyError, PublicIdentity};
use super::NodeId;
use crate::noise::StaticKeypair;

/// Domain separation for service descriptor signatures. Zero-terminated
/// like every signature domain of veil (relay spec §1), so that no domain
/// is a prefix of another.
pub const SERVICE_DESCRIPTOR_DOMAIN: &[u8] = b"veil-service-descriptor-v1\0";
/// Domain separation for deriving a service id from a service key; not
/// [`NODE_ID_DOMAIN`](super::NODE_ID_DOMAIN), so that a service id is never
/// a node's id.
pub const SERVICE_ID_DOMAIN: &[u8] = b"veil-service-id-v1";
/// The service descriptor format version.
pub const SERVICE_DESCRIPTOR_VERSION: u8 = 1;
/// Most introduction points a service descriptor lists (Tor's default
/// number of introduction points is also 3).
pub const MAX_INTRO_POINTS: usize = 3;
/// Most addresses of one introduction point: as many as an `EXTEND`
/// carries, which is how the sender's circuit reaches it.
pub const MAX_INTRO_POINT_ADDRESSES: usize = 4;

/// The longest address encoding (IPv6: transport, family, 16 bytes of IP,
/// port); `Address` has no constant for it.
const MAX_ADDRESS_LEN: usize = 1 + 1 + 16 + 2;
/// Bytes before the first introduction point.
const HEADER_LEN: usize = 1 + 32 + 32 + 8 + 1;
/// Bytes of an introduction point before its addresses.
const INTRO_POINT_FIXED_LEN: usize = 32 + 32 + 1;
/// The longest introduction point: four IPv6 addresses.
const MAX_INTRO_POINT_LEN: usize =
    INTRO_POINT_FIXED_LEN + MAX_INTRO_POINT_ADDRESSES * MAX_ADDRESS_LEN;
/// The largest valid service descriptor: three introduction points of four
/// IPv6 addresses each (573 bytes).
pub const MAX_SERVICE_DESCRIPTOR_LEN: usize =
    HEADER_LEN + MAX_INTRO_POINTS * MAX_INTRO_POINT_LEN + SIGNATURE_LEN;
/// The smallest valid service descriptor: one introduction point without
/// addresses (203 bytes).
pub const MIN_SERVICE_DESCRIPTOR_LEN: usize = HEADER_LEN + INTRO_POINT_FIXED_LEN + SIGNATURE_LEN;
/// The longest `domain ‖ signed bytes`. Signing needs them contiguous, so
/// they are assembled in a stack buffer of this size (536 bytes). It is
/// larger than [`MAX_SIGNED_LEN`](super::MAX_SIGNED_LEN), the limit of
/// `Identity::sign` and `PublicIdentity::verify`: that is why this module
/// signs and verifies with ed25519-dalek itself (the same strict rules).
const MAX_SIGNED_MESSAGE_LEN: usize =
    SERVICE_DESCRIPTOR_DOMAIN.len() + MAX_SERVICE_DESCRIPTOR_LEN - SIGNATURE_LEN;

/// The service id of the service whose Ed25519 public key is
/// `service_key`: `SHA-256(SERVICE_ID_DOMAIN ‖ service_key)`. What a sender
/// who knows a service's key asks its introduction points for.
pub fn service_id_for_key(service_key: &[u8; 32]) -> NodeId {
    let mut hasher = Sha256::new();
    hasher.update(SERVICE_ID_DOMAIN);
    hasher.update(service_key);
    NodeId(hasher.finalize().into())
}

/// Why a service descriptor was refused, or could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ServiceDescriptorError {
    /// The bytes end inside a field.
    Truncated,
    /// A version other than [`SERVICE_DESCRIPTOR_VERSION`].
    UnsupportedVersion(u8),
    /// No introduction point, or more than [`MAX_INTRO_POINTS`].
    IntroCountOutOfRange(u8),
    /// An introduction point with more than [`MAX_INTRO_POINT_ADDRESSES`]
    /// addresses.
    AddressCountOutOfRange(u8),
    /// An address that does not parse.
    BadAddress(AddressError),
    /// Bytes after the signature.
    TrailingBytes,
    /// The service key is not a usable Ed25519 key.
    BadServiceKey(IdentityKeyError),
    /// The signature does not verify under the service key.
    SignatureInvalid,
    /// The output buffer is shorter than the descriptor.
    BufferTooSmall,
    /// The keys given to sign are not the descriptor's service and onion
    /// keys.
    KeysDoNotMatch,
}

impl fmt::Display for ServiceDescriptorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceDescriptorError::Truncated => {
                write!(f, "service descriptor is truncated; fetch it again")
            }
            ServiceDescriptorError::UnsupportedVersion(v) => write!(
                f,
                "service descriptor version {v} is not supported (this node reads version {SERVICE_DESCRIPTOR_VERSION}); upgrade to read it"
            ),
            ServiceDescriptorError::IntroCountOutOfRange(n) => write!(
                f,
                "service descriptor lists {n} introduction points; it must list 1 to {MAX_INTRO_POINTS}"
            ),
            ServiceDescriptorError::AddressCountOutOfRange(n) => write!(
                f,
                "service descriptor gives an introduction point {n} addresses; at most {MAX_INTRO_POINT_ADDRESSES}"
            ),
            ServiceDescriptorError::BadAddress(e) => {
                write!(f, "service descriptor address is malformed ({e}); discard the descriptor")
            }
            ServiceDescriptorError::TrailingBytes => write!(
                f,
                "service descriptor has bytes after its signature; pass exactly one descriptor"
            ),
            ServiceDescriptorError::BadServiceKey(e) => {
                write!(f, "service descriptor's service key is refused ({e}); discard the descriptor")
            }
            ServiceDescriptorError::SignatureInvalid => write!(
                f,
                "service descriptor signature does not verify; it is forged or altered, discard it"
            ),
            ServiceDescriptorError::BufferTooSmall => write!(
                f,
                "buffer too small for the service descriptor; give it {MAX_SERVICE_DESCRIPTOR_LEN} bytes"
            ),
            ServiceDescriptorError::KeysDoNotMatch => write!(
                f,
                "the service keys are not the descriptor's service and onion keys; sign with the service's own keys"
            ),
        }
    }
}

impl core::error::Error for ServiceDescriptorError {}

/// The secret keys of a rendezvous service: the Ed25519 key that names it
/// and signs its descriptor, and the X25519 key of its introduction
/// handshake.
///
/// Both secrets are wiped when the keys are dropped: ed25519-dalek's
/// `SigningKey` zeroizes itself on drop (its `zeroize` feature, enabled
/// for the core) and [`StaticKeypair`] is `ZeroizeOnDrop`. `Debug` shows
/// only the service id and the onion public key. The Ed25519 key is held as
/// a `SigningKey`, not an [`Identity`](super::Identity), because
/// `Identity::sign` cannot sign the largest descriptor (see
/// [`MAX_SIGNED_LEN`](super::MAX_SIGNED_LEN)).
#[derive(Clone)]
pub struct ServiceKeys {
    signing: SigningKey,
    onion: StaticKeypair,
}

impl fmt::Debug for ServiceKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceKeys")
            .field("service_id", &self.service_id())
            .field("onion_public", &self.onion_public())
            .finish_non_exhaustive()
    }
}

impl ServiceKeys {
    /// The keys for an Ed25519 secret `signing` (the service key) and an
    /// X25519 secret `onion`. The arrays passed in are the caller's to wipe.
    pub fn from_secrets(signing: [u8; 32], onion: [u8; 32]) -> Self {
        ServiceKeys {
            signing: SigningKey::from_bytes(&signing),
            onion: StaticKeypair::from_secret_bytes(onion),
        }
    }

    /// The service's Ed25519 public key.
    pub fn service_key(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    /// The X25519 public key of the introduction handshake.
    pub fn onion_public(&self) -> [u8; 32] {
        self.onion.public()
    }

    /// The X25519 key pair, for answering introduction handshakes.
    pub fn onion_keypair(&self) -> &StaticKeypair {
        &self.onion
    }

    /// The service id (see [`service_id_for_key`]).
    pub fn service_id(&self) -> NodeId {
        service_id_for_key(&self.service_key())
    }

    /// Signs `message` with the service key (for the service's other
    /// signed messages: `ESTABLISH_INTRO`, `intro_claim.rs`).
    pub(super) fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.signing.sign(message).to_bytes()
    }
}

/// A relay where senders hand the service their introduction, with what a
/// sender needs to make it the last hop of a circuit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntroPoint {
    /// The relay's node id.
    pub node_id: NodeId,
    /// The relay's X25519 onion key, for the sender's hop handshake with it.
    pub onion_key: [u8; 32],
    /// Where the hop before it dials it (none: the sender finds it in its
    /// node table).
    pub addresses: Vec<Address, MAX_INTRO_POINT_ADDRESSES>,
}

impl IntroPoint {
    /// Bytes of this introduction point on the wire.
    pub fn wire_len(&self) -> usize {
        self.addresses
            .iter()
            .fold(INTRO_POINT_FIXED_LEN, |n, a| n.saturating_add(a.wire_len()))
    }

    /// Reads one introduction point from the front of `rest`, advancing it.
    fn parse(rest: &mut &[u8]) -> Result<Self, ServiceDescriptorError> {
        let node_id = NodeId(*take::<32>(rest)?);
        let onion_key = *take::<32>(rest)?;
        let [count] = *take::<1>(rest)?;
        if usize::from(count) > MAX_INTRO_POINT_ADDRESSES {
            return Err(ServiceDescriptorError::AddressCountOutOfRange(count));
        }
        let mut addresses = Vec::new();
        for _ in 0..count {
            let (address, len) = Address::parse(rest).map_err(|e| match e {
                AddressError::Truncated => ServiceDescriptorError::Truncated,
                other => ServiceDescriptorError::BadAddress(other),
            })?;
            *rest = rest.get(len..).ok_or(ServiceDescriptorError::Truncated)?;
            addresses
                .push(address)
                .map_err(|_| ServiceDescriptorError::AddressCountOutOfRange(count))?;
        }
        Ok(IntroPoint {
            node_id,
            onion_key,
            addresses,
        })
    }

    /// Writes the introduction point.
    fn emit(&self, out: &mut Writer<'_>) -> Result<(), ServiceDescriptorError> {
        let count = u8::try_from(self.addresses.len())
            .map_err(|_| ServiceDescriptorError::AddressCountOutOfRange(u8::MAX))?;
        out.put(self.node_id.as_bytes())?;
        out.put(&self.onion_key)?;
        out.put(&[count])?;
        for address in &self.addresses {
            out.put_address(address)?;
        }
        Ok(())
    }
}

/// A rendezvous service's descriptor: its keys, when it was signed, and its
/// introduction points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceDescriptor {
    /// The service's Ed25519 public key, which names it and signs this.
    pub service_key: [u8; 32],
    /// The X25519 public key of the service's introduction handshake.
    pub onion_key: [u8; 32],
    /// Unix seconds when the service signed it; of two copies, the later
    /// one is current.
    pub issued_at: u64,
    /// Where senders introduce themselves (1 to [`MAX_INTRO_POINTS`]).
    pub intro_points: Vec<IntroPoint, MAX_INTRO_POINTS>,
}

impl ServiceDescriptor {
    /// The service id (see [`service_id_for_key`]).
    pub fn service_id(&self) -> NodeId {
        service_id_for_key(&self.service_key)
    }

    /// Bytes of the signed descriptor on the wire, signature included: the
    /// buffer [`emit_signed`](Self::emit_signed) needs.
    pub fn wire_len(&self) -> usize {
        self.intro_points
            .iter()
            .fold(HEADER_LEN.saturating_add(SIGNATURE_LEN), |n, p| {
                n.saturating_add(p.wire_len())
            })
    }

    /// Writes the descriptor signed by `keys` into `out`; returns its
    /// length. Refuses keys other than the descriptor's own (a descriptor
    /// that would not be the service's), a descriptor without introduction
    /// points (nobody could reach the service), and a short `out`.
    pub fn emit_signed(
        &self,
        keys: &ServiceKeys,
        out: &mut [u8],
    ) -> Result<usize, ServiceDescriptorError> {
        if keys.service_key() != self.service_key || keys.onion_public() != self.onion_key {
            return Err(ServiceDescriptorError::KeysDoNotMatch);
        }
        let count = u8::try_from(self.intro_points.len())
            .map_err(|_| ServiceDescriptorError::IntroCountOutOfRange(u8::MAX))?;
        if count == 0 {
            return Err(ServiceDescriptorError::IntroCountOutOfRange(0));
        }
        let mut writer = Writer { buf: out, at: 0 };
        writer.put(&[SERVICE_DESCRIPTOR_VERSION])?;
        writer.put(&self.service_key)?;
        writer.put(&self.onion_key)?;
        writer.put(&self.issued_at.to_be_bytes())?;
        writer.put(&[count])?;
        for point in &self.intro_points {
            point.emit(&mut writer)?;
        }
        let body_len = writer.at;
        let body = writer
            .buf
            .get(..body_len)
            .ok_or(ServiceDescriptorError::BufferTooSmall)?;
        let mut message = [0u8; MAX_SIGNED_MESSAGE_LEN];
        // Cannot fail: the types bound the body to the longest descriptor's.
        let signed =
            signed_message(&mut message, body).ok_or(ServiceDescriptorError::BufferTooSmall)?;
        let signature = keys.signing.sign(signed).to_bytes();
        writer.put(&signature)?;
        Ok(writer.at)
    }

    /// Parses a signed descriptor and verifies it: the layout (exactly one
    /// descriptor, nothing after the signature), the version, the counts,
    /// the addresses, the service key (a valid Ed25519 point of large
    /// order) and, last, the signature (RFC 8032 strict, as
    /// [`PublicIdentity::verify`]). Freshness is the caller's to judge from
    /// `issued_at`. The onion keys are not checked here: the Noise
    /// handshakes refuse a low-order one when they use it.
    pub fn parse_verified(bytes: &[u8]) -> Result<Self, ServiceDescriptorError> {
        let mut rest = bytes;
        // The version first: another version may have another layout.
        let [version] = *take::<1>(&mut rest)?;
        if version != SERVICE_DESCRIPTOR_VERSION {
            return Err(ServiceDescriptorError::UnsupportedVersion(version));
        }
        let service_key = *take::<32>(&mut rest)?;
        let onion_key = *take::<32>(&mut rest)?;
        let issued_at = u64::from_be_bytes(*take::<8>(&mut rest)?);
        let [count] = *take::<1>(&mut rest)?;
        if count == 0 || usize::from(count) > MAX_INTRO_POINTS {
            return Err(ServiceDescriptorError::IntroCountOutOfRange(count));
        }
        let mut intro_points = Vec::new();
        for _ in 0..count {
            let point = IntroPoint::parse(&mut rest)?;
            intro_points
                .push(point)
                .map_err(|_| ServiceDescriptorError::IntroCountOutOfRange(count))?;
        }
        let body_len = bytes
            .len()
            .checked_sub(rest.len())
            .ok_or(ServiceDescriptorError::Truncated)?;
        let signature: &[u8; SIGNATURE_LEN] = match rest.len().cmp(&SIGNATURE_LEN) {
            core::cmp::Ordering::Less => return Err(ServiceDescriptorError::Truncated),
            core::cmp::Ordering::Greater => return Err(ServiceDescriptorError::TrailingBytes),
            core::cmp::Ordering::Equal => rest
                .first_chunk::<SIGNATURE_LEN>()
                .ok_or(ServiceDescriptorError::Truncated)?,
        };
        // Refuses non-points and small-order keys, which would accept
        // forged signatures.
        PublicIdentity::from_bytes(&service_key).map_err(ServiceDescriptorError::BadServiceKey)?;
        let key = VerifyingKey::from_bytes(&service_key)
            .map_err(|_| ServiceDescriptorError::BadServiceKey(IdentityKeyError::NotAPoint))?;
        let body = bytes
            .get(..body_len)
            .ok_or(ServiceDescriptorError::Truncated)?;
        let mut message = [0u8; MAX_SIGNED_MESSAGE_LEN];
        // Cannot fail: the layout bounds the body to the longest descriptor's.
        let signed =
            signed_message(&mut message, body).ok_or(ServiceDescriptorError::SignatureInvalid)?;
        key.verify_strict(signed, &Signature::from_bytes(signature))
            .map_err(|_| ServiceDescriptorError::SignatureInvalid)?;
        Ok(ServiceDescriptor {
            service_key,
            onion_key,
            issued_at,
            intro_points,
        })
    }
}

/// The first `N` bytes of `rest`, which is advanced past them.
fn take<'a, const N: usize>(rest: &mut &'a [u8]) -> Result<&'a [u8; N], ServiceDescriptorError> {
    let (head, tail) = rest
        .split_first_chunk::<N>()
        .ok_or(ServiceDescriptorError::Truncated)?;
    *rest = tail;
    Ok(head)
}

/// Assembles `SERVICE_DESCRIPTOR_DOMAIN ‖ body` in `buf`; `None` if it
/// does not fit.
fn signed_message<'a>(buf: &'a mut [u8; MAX_SIGNED_MESSAGE_LEN], body: &[u8]) -> Option<&'a [u8]> {
    let total = SERVICE_DESCRIPTOR_DOMAIN.len().checked_add(body.len())?;
    let message = buf.get_mut(..total)?;
    let (domain, rest) = message.split_at_mut_checked(SERVICE_DESCRIPTOR_DOMAIN.len())?;
    domain.copy_from_slice(SERVICE_DESCRIPTOR_DOMAIN);
    rest.copy_from_slice(body);
    Some(message)
}

/// Writes fields one after another into a buffer, refusing to run past
/// its end.
struct Writer<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), ServiceDescriptorError> {
        let end = self
            .at
            .checked_add(bytes.len())
            .ok_or(ServiceDescriptorError::BufferTooSmall)?;
        self.buf
            .get_mut(self.at..end)
            .ok_or(ServiceDescriptorError::BufferTooSmall)?
            .copy_from_slice(bytes);
        self.at = end;
        Ok(())
    }

    fn put_address(&mut self, address: &Address) -> Result<(), ServiceDescriptorError> {
        let free = self
            .buf
            .get_mut(self.at..)
            .ok_or(ServiceDescriptorError::BufferTooSmall)?;
        let len = address
            .emit(free)
            .ok_or(ServiceDescriptorError::BufferTooSmall)?;
        self.at = self
            .at
            .checked_add(len)
            .ok_or(ServiceDescriptorError::BufferTooSmall)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{Identity, Transport};

    const ISSUED_AT: u64 = 1_800_000_000;
    /// Offset of `intro_count`.
    const INTRO_COUNT_AT: usize = 1 + 32 + 32 + 8;

    fn keys() -> ServiceKeys {
        ServiceKeys::from_secrets([21; 32], [22; 32])
    }

    fn address(transport: Transport, text: &str) -> Address {
        Address {
            transport,
            socket: text.parse().unwrap(),
        }
    }

    fn intro_point(seed: u8, addresses: &[Address]) -> IntroPoint {
        IntroPoint {
            node_id: NodeId([seed; 32]),
            onion_key: [seed.wrapping_add(1); 32],
            addresses: Vec::from_slice(addresses).unwrap(),
        }
    }

    fn descriptor(keys: &ServiceKeys, points: &[IntroPoint]) -> ServiceDescriptor {
        ServiceDescriptor {
            service_key: keys.service_key(),
            onion_key: keys.onion_public(),
            issued_at: ISSUED_AT,
            intro_points: Vec::from_slice(points).unwrap(),
        }
    }

    /// One introduction point with one IPv4 address.
    fn one_point() -> ServiceDescriptor {
        descriptor(
            &keys(),
            &[intro_point(
                5,
                &[address(Transport::Tcp, "198.51.100.7:9001")],
            )],
        )
    }

    /// Three introduction points: no address, a mix, and four IPv6.
    fn three_points() -> ServiceDescriptor {
        descriptor(
            &keys(),
            &[
                intro_point(5, &[]),
                intro_point(
                    7,
                    &[
                        address(Transport::Tcp, "198.51.100.7:9001"),
                        address(Transport::Quic, "[2001:db8::7]:9002"),
                    ],
                ),
                intro_point(
                    9,
                    &[
                        address(Transport::Tcp, "[2001:db8::9]:1"),
                        address(Transport::Quic, "[2001:db8::a]:2"),
                        address(Transport::Tcp, "[2001:db8::b]:3"),
                        address(Transport::Quic, "[2001:db8::c]:65535"),
                    ],
                ),
            ],
        )
    }

    /// The largest descriptor: three points of four IPv6 addresses.
    fn largest() -> ServiceDescriptor {
        let v6 = |i: u16| address(Transport::Quic, &format!("[2001:db8::{i:x}]:{i}"));
        let point = |seed: u8, base: u16| {
            intro_point(seed, &[v6(base), v6(base + 1), v6(base + 2), v6(base + 3)])
        };
        descriptor(&keys(), &[point(1, 10), point(2, 20), point(3, 30)])
    }

    fn signed(descriptor: &ServiceDescriptor) -> std::vec::Vec<u8> {
        let mut out = [0u8; MAX_SERVICE_DESCRIPTOR_LEN];
        let n = descriptor.emit_signed(&keys(), &mut out).unwrap();
        assert_eq!(n, descriptor.wire_len());
        out[..n].to_vec()
    }

    /// Re-signs modified bytes with the service key, so that only the
    /// intended check can fail.
    fn resign(mut bytes: std::vec::Vec<u8>) -> std::vec::Vec<u8> {
        let body = bytes.len() - SIGNATURE_LEN;
        let mut message = [0u8; MAX_SIGNED_MESSAGE_LEN];
        let signed = signed_message(&mut message, &bytes[..body]).unwrap();
        let signature = keys().signing.sign(signed).to_bytes();
        bytes[body..].copy_from_slice(&signature);
        bytes
    }

    #[test]
    fn lengths_follow_from_the_layout() {
        assert_eq!(MAX_SERVICE_DESCRIPTOR_LEN, 573);
        assert_eq!(MIN_SERVICE_DESCRIPTOR_LEN, 203);
        assert_eq!(
            address(Transport::Tcp, "[2001:db8::1]:1").wire_len(),
            MAX_ADDRESS_LEN
        );
        assert!(address(Transport::Tcp, "192.0.2.1:1").wire_len() < MAX_ADDRESS_LEN);
        // The reason this module does not sign through `Identity::sign`.
        const { assert!(MAX_SIGNED_MESSAGE_LEN > super::super::MAX_SIGNED_LEN) };
    }

    #[test]
    fn descriptors_round_trip() {
        for original in [one_point(), three_points(), largest()] {
            let bytes = signed(&original);
            let parsed = ServiceDescriptor::parse_verified(&bytes).unwrap();
            assert_eq!(parsed, original);
            assert_eq!(parsed.service_id(), keys().service_id());
            assert_eq!(signed(&parsed), bytes);
        }
        assert_eq!(signed(&one_point()).len(), MIN_SERVICE_DESCRIPTOR_LEN + 8);
        assert_eq!(signed(&largest()).len(), MAX_SERVICE_DESCRIPTOR_LEN);
        let mut no_address = one_point();
        no_address.intro_points[0].addresses.clear();
        assert_eq!(signed(&no_address).len(), MIN_SERVICE_DESCRIPTOR_LEN);
    }

    #[test]
    fn the_bytes_follow_the_documented_layout() {
        let keys = keys();
        let bytes = signed(&one_point());
        assert_eq!(bytes[0], 1);
        assert_eq!(bytes[1..33], keys.service_key());
        assert_eq!(bytes[33..65], keys.onion_public());
        assert_eq!(bytes[65..73], ISSUED_AT.to_be_bytes());
        assert_eq!(bytes[73], 1);
        assert_eq!(bytes[74..106], [5; 32]);
        assert_eq!(bytes[106..138], [6; 32]);
        assert_eq!(bytes[138], 1);
        // TCP, IPv4, 198.51.100.7, port 9001: the node-descriptor layout.
        assert_eq!(bytes[139..147], [1, 4, 198, 51, 100, 7, 0x23, 0x29]);
        assert_eq!(bytes.len(), 147 + 64);
        // The domain spelled out: changing it breaks every descriptor.
        let mut message = b"veil-service-descriptor-v1\0".to_vec();
        message.extend_from_slice(&bytes[..147]);
        let signature = Signature::from_bytes(bytes[147..].try_into().unwrap());
        VerifyingKey::from_bytes(&keys.service_key())
            .unwrap()
            .verify_strict(&message, &signature)
            .expect("signed over the domain and every byte before the signature");
    }

    #[test]
    fn every_single_byte_flip_is_refused() {
        for bytes in [signed(&one_point()), signed(&three_points())] {
            for i in 0..bytes.len() {
                for mask in [0x01, 0x80, 0xff] {
                    let mut flipped = bytes.clone();
                    flipped[i] ^= mask;
                    assert!(
                        ServiceDescriptor::parse_verified(&flipped).is_err(),
                        "flip {mask:#04x} at byte {i} accepted"
                    );
                }
            }
        }
    }

    #[test]
    fn every_truncation_is_refused() {
        for bytes in [signed(&one_point()), signed(&largest())] {
            for len in 0..bytes.len() {
                let error = ServiceDescriptor::parse_verified(&bytes[..len]).unwrap_err();
                assert_eq!(error, ServiceDescriptorError::Truncated, "at length {len}");
            }
        }
    }

    #[test]
    fn other_versions_are_refused() {
        for version in [0, 2, 0xff] {
            let mut bytes = signed(&one_point());
            bytes[0] = version;
            assert_eq!(
                ServiceDescriptor::parse_verified(&resign(bytes)),
                Err(ServiceDescriptorError::UnsupportedVersion(version))
            );
        }
        assert_eq!(
            ServiceDescriptor::parse_verified(&[2]),
            Err(ServiceDescriptorError::UnsupportedVersion(2))
        );
    }

    #[test]
    fn intro_counts_outside_one_to_three_are_refused() {
        for count in [0, 4, 0xff] {
            let mut bytes = signed(&three_points());
            bytes[INTRO_COUNT_AT] = count;
            assert_eq!(
                ServiceDescriptor::parse_verified(&resign(bytes)),
                Err(ServiceDescriptorError::IntroCountOutOfRange(count))
            );
        }
        let mut none = one_point();
        none.intro_points.clear();
        let mut out = [0u8; MAX_SERVICE_DESCRIPTOR_LEN];
        assert_eq!(
            none.emit_signed(&keys(), &mut out),
            Err(ServiceDescriptorError::IntroCountOutOfRange(0))
        );
    }

    #[test]
    fn bad_address_counts_and_addresses_are_refused() {
        let address_count_at = INTRO_COUNT_AT + 1 + 32 + 32;
        let mut bytes = signed(&one_point());
        bytes[address_count_at] = 5;
        assert_eq!(
            ServiceDescriptor::parse_verified(&resign(bytes)),
            Err(ServiceDescriptorError::AddressCountOutOfRange(5))
        );
        let mut bytes = signed(&one_point());
        bytes[address_count_at + 2] = 5;
        assert_eq!(
            ServiceDescriptor::parse_verified(&resign(bytes)),
            Err(ServiceDescriptorError::BadAddress(
                AddressError::UnknownFamily(5)
            ))
        );
        let mut bytes = signed(&one_point());
        bytes[address_count_at + 1] = 9;
        assert_eq!(
            ServiceDescriptor::parse_verified(&resign(bytes)),
            Err(ServiceDescriptorError::BadAddress(
                AddressError::UnknownTransport(9)
            ))
        );
    }

    #[test]
    fn trailing_bytes_are_refused() {
        for extra in [&[0u8][..], &[0; 64]] {
            let mut bytes = signed(&three_points());
            bytes.extend_from_slice(extra);
            assert_eq!(
                ServiceDescriptor::parse_verified(&bytes),
                Err(ServiceDescriptorError::TrailingBytes)
            );
        }
    }

    #[test]
    fn the_service_id_is_not_the_node_id_of_the_key() {
        let keys = keys();
        let key = keys.service_key();
        let mut expected = Sha256::new();
        expected.update(b"veil-service-id-v1");
        expected.update(key);
        let expected = NodeId(expected.finalize().into());
        assert_eq!(keys.service_id(), expected);
        assert_eq!(one_point().service_id(), expected);
        assert_eq!(service_id_for_key(&key), expected);
        assert_ne!(keys.service_id(), NodeId::from_identity_key(&key));
        assert_ne!(
            keys.service_id(),
            Identity::from_secret_bytes([21; 32]).node_id()
        );
        assert_ne!(
            keys.service_id(),
            ServiceKeys::from_secrets([23; 32], [22; 32]).service_id()
        );
    }

    #[test]
    fn a_descriptor_signed_by_another_key_is_refused() {
        let other = ServiceKeys::from_secrets([31; 32], [22; 32]);
        let mut out = [0u8; MAX_SERVICE_DESCRIPTOR_LEN];
        assert_eq!(
            one_point().emit_signed(&other, &mut out),
            Err(ServiceDescriptorError::KeysDoNotMatch)
        );
        let wrong_onion = ServiceKeys::from_secrets([21; 32], [32; 32]);
        assert_eq!(
            one_point().emit_signed(&wrong_onion, &mut out),
            Err(ServiceDescriptorError::KeysDoNotMatch)
        );
        // The service's bytes, signed by another key.
        let mut bytes = signed(&three_points());
        let body = bytes.len() - SIGNATURE_LEN;
        let mut message = [0u8; MAX_SIGNED_MESSAGE_LEN];
        let signature = other
            .signing
            .sign(signed_message(&mut message, &bytes[..body]).unwrap())
            .to_bytes();
        bytes[body..].copy_from_slice(&signature);
        assert_eq!(
            ServiceDescriptor::parse_verified(&bytes),
            Err(ServiceDescriptorError::SignatureInvalid)
        );
        // Signed by the right key in another domain (a node descriptor's).
        let mut bytes = signed(&three_points());
        let signature = keys()
            .signing
            .sign(&[super::super::DESCRIPTOR_DOMAIN, &bytes[..body]].concat())
            .to_bytes();
        bytes[body..].copy_from_slice(&signature);
        assert_eq!(
            ServiceDescriptor::parse_verified(&bytes),
            Err(ServiceDescriptorError::SignatureInvalid)
        );
        // Another service's key in the bytes, signed by that key: valid,
        // but it is the other service's descriptor.
        let mut foreign = three_points();
        foreign.service_key = other.service_key();
        let n = foreign.emit_signed(&other, &mut out).unwrap();
        let parsed = ServiceDescriptor::parse_verified(&out[..n]).unwrap();
        assert_eq!(parsed.service_id(), other.service_id());
        assert_ne!(parsed.service_id(), keys().service_id());
    }

    #[test]
    fn weak_and_invalid_service_keys_are_refused() {
        let mut bytes = signed(&one_point());
        // The identity point: small order.
        let mut identity_point = [0u8; 32];
        identity_point[0] = 1;
        bytes[1..33].copy_from_slice(&identity_point);
        assert_eq!(
            ServiceDescriptor::parse_verified(&bytes),
            Err(ServiceDescriptorError::BadServiceKey(
                IdentityKeyError::WeakKey
            ))
        );
        // y = 2 is not on the curve.
        let mut not_a_point = [0u8; 32];
        not_a_point[0] = 2;
        bytes[1..33].copy_from_slice(&not_a_point);
        assert_eq!(
            ServiceDescriptor::parse_verified(&bytes),
            Err(ServiceDescriptorError::BadServiceKey(
                IdentityKeyError::NotAPoint
            ))
        );
    }

    #[test]
    fn a_short_buffer_is_refused() {
        let descriptor = three_points();
        let len = descriptor.wire_len();
        let mut out = [0u8; MAX_SERVICE_DESCRIPTOR_LEN];
        for short in 0..len {
            assert_eq!(
                descriptor.emit_signed(&keys(), &mut out[..short]),
                Err(ServiceDescriptorError::BufferTooSmall),
                "buffer of {short}"
            );
        }
        assert_eq!(descriptor.emit_signed(&keys(), &mut out[..len]), Ok(len));
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let keys = ServiceKeys::from_secrets([0xab; 32], [0xcd; 32]);
        let text = format!("{keys:?}");
        assert!(text.contains("service_id"), "{text}");
        assert!(!text.contains("171, 171"), "{text}");
        assert!(!text.contains("205, 205"), "{text}");
        assert!(!text.to_lowercase().contains("abab"), "{text}");
        assert!(!text.to_lowercase().contains("cdcd"), "{text}");
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let message = ServiceDescriptorError::IntroCountOutOfRange(4).to_string();
        assert!(
            message.contains('4') && message.contains("1 to 3"),
            "{message}"
        );
        let message = ServiceDescriptorError::UnsupportedVersion(2).to_string();
        assert!(message.contains("version 2"), "{message}");
    }
}
