//! Signed descriptors: what a node publishes about itself.
//!
//! Layout (all integers big-endian), see `docs/relay_protocol_spec.md`:
//!
//! ```text
//! version      u8     1
//! flags        u8     bit 0: relay; bit 1: introduced; other bits must be 0
//! identity     [32]   Ed25519 public key
//! onion_key    [32]   X25519 public key for circuit handshakes (Noise NK)
//! issued_at    u64    seconds on the network's wall clock (unix time)
//! expires_at   u64
//! count        u8     number of addresses, at most MAX_ADDRESSES
//! addresses    count × (transport u8, family u8, ip 4|16, port u16)
//! (introduced only)
//! icount       u8     number of introducers, 1..=MAX_INTRODUCERS
//! introducers  icount × (node_id [32], onion_key [32], address)
//! signature    [64]   Ed25519 over DESCRIPTOR_DOMAIN ‖ every byte above
//! ```
//!
//! [`DescriptorPacket`] is a zero-copy view that checks structure;
//! [`DescriptorRepr`] is the parsed, owned form. Only
//! [`verify_descriptor`] turns bytes into something a node may use.

use core::fmt;

use heapless::Vec;

use super::address::{Address, AddressError, Transport};
use super::introducer::{Introducer, MAX_INTRODUCERS, MAX_INTRODUCER_LEN};
use super::keys::{Identity, PublicIdentity};
use super::NodeId;

/// Domain separation for descriptor signatures.
pub const DESCRIPTOR_DOMAIN: &[u8] = b"veil-descriptor-v1\0";
/// The descriptor format version.
pub const DESCRIPTOR_VERSION: u8 = 1;
/// Most addresses of one transport in a descriptor.
pub const MAX_ADDRESSES_PER_TRANSPORT: usize = 2;
/// Most addresses in a descriptor.
pub const MAX_ADDRESSES: usize = 4;
/// Bytes before the addresses.
pub const HEADER_LEN: usize = 1 + 1 + 32 + 32 + 8 + 8 + 1;
/// Bytes of the signature.
pub const SIGNATURE_LEN: usize = 64;
/// The largest valid descriptor: addresses and introducers together are
/// at most [`MAX_ADDRESSES`], so the longest has [`MAX_INTRODUCERS`]
/// introducers and one address, all IPv6 (without introducers the
/// longest is 227 bytes).
pub const MAX_DESCRIPTOR_LEN: usize = HEADER_LEN
    + (MAX_ADDRESSES - MAX_INTRODUCERS) * 20
    + 1
    + MAX_INTRODUCERS * MAX_INTRODUCER_LEN
    + SIGNATURE_LEN;
/// The smallest valid descriptor (no addresses).
pub const MIN_DESCRIPTOR_LEN: usize = HEADER_LEN + SIGNATURE_LEN;
/// How far in the future `issued_at` may be, for clock skew between nodes.
pub const MAX_CLOCK_SKEW_SECS: u64 = 300;
/// The longest validity a descriptor may claim.
pub const MAX_DESCRIPTOR_LIFETIME_SECS: u64 = 24 * 3600;

const FLAG_RELAY: u8 = 0x01;
const FLAG_INTRODUCED: u8 = 0x02;
const KNOWN_FLAGS: u8 = FLAG_RELAY | FLAG_INTRODUCED;

mod field {
    use core::ops::Range;
    pub const VERSION: usize = 0;
    pub const FLAGS: usize = 1;
    pub const IDENTITY: Range<usize> = 2..34;
    pub const ONION_KEY: Range<usize> = 34..66;
    pub const ISSUED_AT: Range<usize> = 66..74;
    pub const EXPIRES_AT: Range<usize> = 74..82;
    pub const COUNT: usize = 82;
}

/// Why a descriptor was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum DescriptorError {
    /// Shorter than its fields require.
    Truncated,
    /// Bytes after the signature.
    TrailingBytes,
    /// Longer than [`MAX_DESCRIPTOR_LEN`].
    TooLong,
    /// A version other than [`DESCRIPTOR_VERSION`].
    UnknownVersion(u8),
    /// Flag bits this version does not define.
    UnknownFlags(u8),
    /// More addresses than allowed in total or per transport.
    TooManyAddresses,
    /// An address could not be read.
    BadAddress(AddressError),
    /// The introduced flag with no introducers or more than
    /// [`MAX_INTRODUCERS`], or with addresses and introducers together
    /// more than [`MAX_ADDRESSES`].
    BadIntroducers,
    /// The identity key is invalid or weak.
    BadIdentityKey,
    /// The signature does not verify.
    BadSignature,
    /// `issued_at` is further ahead than the allowed clock skew.
    NotYetValid,
    /// `expires_at` has passed.
    Expired,
    /// `expires_at` is not after `issued_at`, or the lifetime exceeds the maximum.
    BadLifetime,
    /// The signing identity is not the descriptor's identity.
    WrongSigner,
    /// The output buffer is too small.
    BufferTooSmall,
}

impl fmt::Display for DescriptorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DescriptorError::Truncated => write!(f, "descriptor is truncated"),
            DescriptorError::TrailingBytes => write!(f, "descriptor has bytes after its signature"),
            DescriptorError::TooLong => write!(f, "descriptor exceeds {MAX_DESCRIPTOR_LEN} bytes"),
            DescriptorError::UnknownVersion(v) => write!(f, "descriptor version {v} is unknown"),
            DescriptorError::UnknownFlags(b) => write!(f, "descriptor sets unknown flag bits {b:#04x}"),
            DescriptorError::TooManyAddresses => write!(
                f,
                "descriptor lists more than {MAX_ADDRESSES} addresses or {MAX_ADDRESSES_PER_TRANSPORT} per transport"
            ),
            DescriptorError::BadAddress(e) => write!(f, "descriptor address is malformed: {e}"),
            DescriptorError::BadIntroducers => write!(
                f,
                "descriptor must list 1 to {MAX_INTRODUCERS} introducers when introduced, and at most {MAX_ADDRESSES} addresses and introducers together"
            ),
            DescriptorError::BadIdentityKey => write!(f, "descriptor identity key is invalid"),
            DescriptorError::BadSignature => write!(f, "descriptor signature does not verify; it is forged or altered"),
            DescriptorError::NotYetValid => write!(f, "descriptor is issued in the future; check the clocks"),
            DescriptorError::Expired => write!(f, "descriptor has expired; fetch a fresh one"),
            DescriptorError::BadLifetime => write!(
                f,
                "descriptor lifetime is empty or longer than {MAX_DESCRIPTOR_LIFETIME_SECS} s"
            ),
            DescriptorError::WrongSigner => write!(f, "descriptor must be signed by its own identity"),
            DescriptorError::BufferTooSmall => write!(f, "buffer too small for the descriptor"),
        }
    }
}

impl core::error::Error for DescriptorError {}

/// A zero-copy view of a descriptor's bytes. `new_checked` guarantees that
/// every accessor stays in bounds.
#[derive(Debug, Clone)]
pub struct DescriptorPacket<T: AsRef<[u8]>> {
    buffer: T,
    addresses_len: usize,
    /// The introducer section, its count byte included (0 if not
    /// introduced).
    introducers_len: usize,
}

impl<T: AsRef<[u8]>> DescriptorPacket<T> {
    /// Checks that the buffer holds exactly one well-formed descriptor
    /// (structure only; nothing is trusted yet).
    pub fn new_checked(buffer: T) -> Result<Self, DescriptorError> {
        let bytes = buffer.as_ref();
        if bytes.len() > MAX_DESCRIPTOR_LEN {
            return Err(DescriptorError::TooLong);
        }
        let count = *bytes.get(field::COUNT).ok_or(DescriptorError::Truncated)?;
        if usize::from(count) > MAX_ADDRESSES {
            return Err(DescriptorError::TooManyAddresses);
        }
        let mut rest = bytes.get(HEADER_LEN..).ok_or(DescriptorError::Truncated)?;
        let bad = |e| match e {
            AddressError::Truncated => DescriptorError::Truncated,
            other => DescriptorError::BadAddress(other),
        };
        let mut addresses_len = 0usize;
        for _ in 0..count {
            let (_, len) = Address::parse(rest).map_err(bad)?;
            rest = rest.get(len..).ok_or(DescriptorError::Truncated)?;
            addresses_len = addresses_len.saturating_add(len);
        }
        let mut introducers_len = 0usize;
        let introduced = bytes
            .get(field::FLAGS)
            .is_some_and(|f| f & FLAG_INTRODUCED != 0);
        if introduced {
            let (&icount, after) = rest.split_first().ok_or(DescriptorError::Truncated)?;
            let icount = usize::from(icount);
            if icount == 0
                || icount > MAX_INTRODUCERS
                || icount.saturating_add(usize::from(count)) > MAX_ADDRESSES
            {
                return Err(DescriptorError::BadIntroducers);
            }
            rest = after;
            introducers_len = 1;
            for _ in 0..icount {
                let (_, len) = Introducer::parse(rest).map_err(bad)?;
                rest = rest.get(len..).ok_or(DescriptorError::Truncated)?;
                introducers_len = introducers_len.saturating_add(len);
            }
        }
        match rest.len().cmp(&SIGNATURE_LEN) {
            core::cmp::Ordering::Less => return Err(DescriptorError::Truncated),
            core::cmp::Ordering::Greater => return Err(DescriptorError::TrailingBytes),
            core::cmp::Ordering::Equal => {}
        }
        Ok(DescriptorPacket {
            buffer,
            addresses_len,
            introducers_len,
        })
    }

    fn bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    fn array<const N: usize>(&self, range: core::ops::Range<usize>) -> [u8; N] {
        self.bytes()
            .get(range)
            .and_then(|s| <[u8; N]>::try_from(s).ok())
            .unwrap_or([0; N])
    }

    /// The format version.
    pub fn version(&self) -> u8 {
        self.bytes().get(field::VERSION).copied().unwrap_or(0)
    }

    /// The flag bits.
    pub fn flags(&self) -> u8 {
        self.bytes().get(field::FLAGS).copied().unwrap_or(0)
    }

    /// The identity key bytes.
    pub fn identity_key(&self) -> [u8; 32] {
        self.array(field::IDENTITY)
    }

    /// The onion key bytes.
    pub fn onion_key(&self) -> [u8; 32] {
        self.array(field::ONION_KEY)
    }

    /// Issue time, unix seconds.
    pub fn issued_at(&self) -> u64 {
        u64::from_be_bytes(self.array(field::ISSUED_AT))
    }

    /// Expiry time, unix seconds.
    pub fn expires_at(&self) -> u64 {
        u64::from_be_bytes(self.array(field::EXPIRES_AT))
    }

    /// The address count.
    pub fn address_count(&self) -> u8 {
        self.bytes().get(field::COUNT).copied().unwrap_or(0)
    }

    /// The addresses, in order.
    pub fn addresses(&self) -> impl Iterator<Item = Address> + '_ {
        let mut rest = self.bytes().get(HEADER_LEN..).unwrap_or(&[]);
        (0..self.address_count()).map_while(move |_| {
            let (address, len) = Address::parse(rest).ok()?;
            rest = rest.get(len..)?;
            Some(address)
        })
    }

    /// The introducers, in order (none unless the introduced flag is set).
    pub fn introducers(&self) -> impl Iterator<Item = Introducer> + '_ {
        let start = HEADER_LEN.saturating_add(self.addresses_len);
        let section = self.bytes().get(start..self.signed_len()).unwrap_or(&[]);
        let (count, mut rest) = section.split_first().unwrap_or((&0, &[]));
        (0..*count).map_while(move |_| {
            let (introducer, len) = Introducer::parse(rest).ok()?;
            rest = rest.get(len..)?;
            Some(introducer)
        })
    }

    fn signed_len(&self) -> usize {
        HEADER_LEN
            .saturating_add(self.addresses_len)
            .saturating_add(self.introducers_len)
    }

    /// The bytes the signature covers (after the domain).
    pub fn signed_bytes(&self) -> &[u8] {
        self.bytes().get(..self.signed_len()).unwrap_or(&[])
    }

    /// The signature.
    pub fn signature(&self) -> [u8; 64] {
        let start = self.signed_len();
        self.array(start..start.saturating_add(SIGNATURE_LEN))
    }

    /// The whole descriptor.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes()
    }
}

/// A descriptor's contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescriptorRepr {
    /// The node's identity key.
    pub identity: PublicIdentity,
    /// X25519 key for circuit-hop handshakes.
    pub onion_key: [u8; 32],
    /// Whether the node relays for others.
    pub relay: bool,
    /// Issue time, unix seconds.
    pub issued_at: u64,
    /// Expiry time, unix seconds.
    pub expires_at: u64,
    /// Where it listens.
    pub addresses: Vec<Address, MAX_ADDRESSES>,
}

impl DescriptorRepr {
    /// Parses a checked packet (structure and field values; not the signature).
    pub fn parse<T: AsRef<[u8]>>(packet: &DescriptorPacket<T>) -> Result<Self, DescriptorError> {
        if packet.version() != DESCRIPTOR_VERSION {
            return Err(DescriptorError::UnknownVersion(packet.version()));
        }
        if packet.flags() & !KNOWN_FLAGS != 0 {
            return Err(DescriptorError::UnknownFlags(packet.flags()));
        }
        let identity = PublicIdentity::from_bytes(&packet.identity_key())
            .map_err(|_| DescriptorError::BadIdentityKey)?;
        let mut addresses = Vec::new();
        for address in packet.addresses() {
            addresses
                .push(address)
                .map_err(|_| DescriptorError::TooManyAddresses)?;
        }
        let repr = DescriptorRepr {
            identity,
            onion_key: packet.onion_key(),
            relay: packet.flags() & FLAG_RELAY != 0,
            issued_at: packet.issued_at(),
            expires_at: packet.expires_at(),
            addresses,
        };
        repr.check_address_limits()?;
        Ok(repr)
    }

    fn check_address_limits(&self) -> Result<(), DescriptorError> {
        for transport in [Transport::Tcp, Transport::Quic] {
            let n = self
                .addresses
                .iter()
                .filter(|a| a.transport == transport)
                .count();
            if n > MAX_ADDRESSES_PER_TRANSPORT {
                return Err(DescriptorError::TooManyAddresses);
            }
        }
        Ok(())
    }

    /// The node id of the descriptor's identity.
    pub fn node_id(&self) -> NodeId {
        self.identity.node_id()
    }

    /// Bytes of the encoded descriptor, signature included (without
    /// introducers).
    pub fn buffer_len(&self) -> usize {
        self.addresses
            .iter()
            .fold(MIN_DESCRIPTOR_LEN, |n, a| n.saturating_add(a.wire_len()))
    }

    /// Writes the unsigned part; returns its length.
    fn emit_unsigned(
        &self,
        introducers: &[Introducer],
        buf: &mut [u8],
    ) -> Result<usize, DescriptorError> {
        self.check_address_limits()?;
        if introducers.len() > MAX_INTRODUCERS
            || introducers.len().saturating_add(self.addresses.len()) > MAX_ADDRESSES
        {
            return Err(DescriptorError::BadIntroducers);
        }
        let header = buf
            .first_chunk_mut::<HEADER_LEN>()
            .ok_or(DescriptorError::BufferTooSmall)?;
        let (version_flags, rest) = header.split_at_mut(2);
        let mut flags = if self.relay { FLAG_RELAY } else { 0 };
        if !introducers.is_empty() {
            flags |= FLAG_INTRODUCED;
        }
        version_flags.copy_from_slice(&[DESCRIPTOR_VERSION, flags]);
        let (identity, rest) = rest.split_at_mut(32);
        identity.copy_from_slice(&self.identity.to_bytes());
        let (onion, rest) = rest.split_at_mut(32);
        onion.copy_from_slice(&self.onion_key);
        let (issued, rest) = rest.split_at_mut(8);
        issued.copy_from_slice(&self.issued_at.to_be_bytes());
        let (expires, count) = rest.split_at_mut(8);
        expires.copy_from_slice(&self.expires_at.to_be_bytes());
        count
            .copy_from_slice(&[u8::try_from(self.addresses.len())
                .map_err(|_| DescriptorError::TooManyAddresses)?]);
        let mut at = HEADER_LEN;
        for address in &self.addresses {
            let dst = buf.get_mut(at..).ok_or(DescriptorError::BufferTooSmall)?;
            let n = address.emit(dst).ok_or(DescriptorError::BufferTooSmall)?;
            at = at.saturating_add(n);
        }
        if let Ok(count) = u8::try_from(introducers.len()) {
            if count > 0 {
                *buf.get_mut(at).ok_or(DescriptorError::BufferTooSmall)? = count;
                at = at.saturating_add(1);
            }
        }
        for introducer in introducers {
            let dst = buf.get_mut(at..).ok_or(DescriptorError::BufferTooSmall)?;
            let n = introducer
                .emit(dst)
                .ok_or(DescriptorError::BufferTooSmall)?;
            at = at.saturating_add(n);
        }
        Ok(at)
    }

    /// Writes the descriptor and signs it with `identity`, which must be the
    /// descriptor's own. Returns the length written.
    pub fn emit_signed(
        &self,
        identity: &Identity,
        buf: &mut [u8],
    ) -> Result<usize, DescriptorError> {
        self.emit_signed_introduced(&[], identity, buf)
    }

    /// [`emit_signed`](Self::emit_signed) for a node reached through
    /// `introducers` (none: not introduced). They are not part of the
    /// parsed form, which every node-table entry holds: a verified
    /// descriptor reads them from its bytes
    /// ([`VerifiedDescriptor::introducers`]).
    pub fn emit_signed_introduced(
        &self,
        introducers: &[Introducer],
        identity: &Identity,
        buf: &mut [u8],
    ) -> Result<usize, DescriptorError> {
        if identity.public() != self.identity {
            return Err(DescriptorError::WrongSigner);
        }
        let unsigned = self.emit_unsigned(introducers, buf)?;
        let signature = identity
            .sign(
                DESCRIPTOR_DOMAIN,
                buf.get(..unsigned).ok_or(DescriptorError::BufferTooSmall)?,
            )
            .map_err(|_| DescriptorError::TooLong)?;
        let end = unsigned.saturating_add(SIGNATURE_LEN);
        buf.get_mut(unsigned..end)
            .ok_or(DescriptorError::BufferTooSmall)?
            .copy_from_slice(&signature);
        Ok(end)
    }
}

/// A descriptor whose structure, signature and validity period have been
/// checked. It keeps the signed bytes so it can be passed on unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedDescriptor {
    repr: DescriptorRepr,
    bytes: Vec<u8, MAX_DESCRIPTOR_LEN>,
}

impl VerifiedDescriptor {
    /// The contents.
    pub fn repr(&self) -> &DescriptorRepr {
        &self.repr
    }

    /// The node it describes.
    pub fn node_id(&self) -> NodeId {
        self.repr.node_id()
    }

    /// The signed bytes, for gossiping the descriptor on.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Whether the node is reached through introducers.
    pub fn is_introduced(&self) -> bool {
        self.bytes
            .get(field::FLAGS)
            .is_some_and(|f| f & FLAG_INTRODUCED != 0)
    }

    /// The relays the node is reached through, read from the bytes.
    pub fn introducers(&self) -> impl Iterator<Item = Introducer> + '_ {
        let packet = DescriptorPacket::new_checked(self.bytes.as_slice()).ok();
        packet.into_iter().flat_map(|p| {
            let mut all: Vec<Introducer, MAX_INTRODUCERS> = Vec::new();
            for introducer in p.introducers() {
                let _ = all.push(introducer);
            }
            all
        })
    }
}

/// The checks a descriptor can fail without any public-key arithmetic,
/// in this order: structure, version, flags, lifetime, not yet valid,
/// expired. A receiver runs these (and its node table's cheap rules)
/// before the signature, which costs tens of microseconds: a flood of
/// stale, expired or malformed descriptors then costs almost nothing.
/// Passing says nothing about authenticity.
pub fn precheck_descriptor(
    bytes: &[u8],
    now_unix_secs: u64,
) -> Result<DescriptorPacket<&[u8]>, DescriptorError> {
    let packet = DescriptorPacket::new_checked(bytes)?;
    if packet.version() != DESCRIPTOR_VERSION {
        return Err(DescriptorError::UnknownVersion(packet.version()));
    }
    if packet.flags() & !KNOWN_FLAGS != 0 {
        return Err(DescriptorError::UnknownFlags(packet.flags()));
    }
    let (issued_at, expires_at) = (packet.issued_at(), packet.expires_at());
    if expires_at <= issued_at
        || expires_at.saturating_sub(issued_at) > MAX_DESCRIPTOR_LIFETIME_SECS
    {
        return Err(DescriptorError::BadLifetime);
    }
    if issued_at > now_unix_secs.saturating_add(MAX_CLOCK_SKEW_SECS) {
        return Err(DescriptorError::NotYetValid);
    }
    if expires_at <= now_unix_secs {
        return Err(DescriptorError::Expired);
    }
    Ok(packet)
}

/// Parses and fully checks a descriptor at wall-clock time `now_unix_secs`:
/// [`precheck_descriptor`], then the identity key, the address limits and
/// the signature.
pub fn verify_descriptor(
    bytes: &[u8],
    now_unix_secs: u64,
) -> Result<VerifiedDescriptor, DescriptorError> {
    let packet = precheck_descriptor(bytes, now_unix_secs)?;
    let repr = DescriptorRepr::parse(&packet)?;
    repr.identity
        .verify(
            DESCRIPTOR_DOMAIN,
            packet.signed_bytes(),
            &packet.signature(),
        )
        .map_err(|_| DescriptorError::BadSignature)?;
    let bytes = Vec::from_slice(bytes).map_err(|_| DescriptorError::TooLong)?;
    Ok(VerifiedDescriptor { repr, bytes })
}
