//! The data of an `EXTEND` relay message (relay spec §6): the next hop's
//! node id, the hop handshake for it (laid out as a `CREATE` body), and the
//! addresses the client knows the next hop at.
//!
//! ```text
//! target        [32]   node id of the next hop
//! handshake_type u16   1 = veil NK hop handshake
//! length        u16
//! handshake     [length]
//! address_count u8     0..=4; absent (no addresses) if the data ends here
//! addresses     address_count × address (descriptor layout, §2)
//! ```
//!
//! The addresses are why the message carries more than an id: a relay
//! holds a bounded node table, so in a network larger than that table most
//! next hops a client picks are nodes the relay has never heard of, and
//! an `EXTEND` naming only an id would fail there (Tor's `EXTEND2` carries
//! link specifiers for the same reason). The relay still dials only
//! addresses its policy allows, and the link handshake proves the node it
//! reached owns the target id, so a wrong address costs a failed dial and
//! nothing else.

use core::fmt;

use heapless::Vec;

use super::handshake_body::{HandshakeBytes, HANDSHAKE_TYPE_NK};
use crate::identity::{Address, AddressError, NodeId};

/// Addresses an `EXTEND` carries at most (as many as a descriptor holds).
pub const MAX_EXTEND_ADDRESSES: usize = 4;

/// The addresses of an `EXTEND`.
pub type ExtendAddresses = Vec<Address, MAX_EXTEND_ADDRESSES>;

/// Why `EXTEND` data was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ExtendError {
    /// The data ends inside the target id or the handshake.
    Truncated,
    /// A hop handshake type this version does not speak.
    UnknownHandshake(u16),
    /// More addresses than [`MAX_EXTEND_ADDRESSES`].
    TooManyAddresses(u8),
    /// An address that does not parse.
    BadAddress(AddressError),
}

impl fmt::Display for ExtendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExtendError::Truncated => write!(f, "EXTEND data ends inside its target or handshake"),
            ExtendError::UnknownHandshake(t) => {
                write!(
                    f,
                    "EXTEND names hop handshake type {t}; only 1 (NK) is spoken"
                )
            }
            ExtendError::TooManyAddresses(n) => write!(
                f,
                "EXTEND carries {n} addresses; at most {MAX_EXTEND_ADDRESSES} are allowed"
            ),
            ExtendError::BadAddress(e) => write!(f, "EXTEND address: {e}"),
        }
    }
}

impl core::error::Error for ExtendError {}

impl From<AddressError> for ExtendError {
    fn from(e: AddressError) -> Self {
        ExtendError::BadAddress(e)
    }
}

/// `EXTEND` data, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtendRepr {
    /// The node to extend to.
    pub target: NodeId,
    /// The hop handshake's first message, for the target.
    pub handshake: HandshakeBytes,
    /// Where the client knows the target to listen.
    pub addresses: ExtendAddresses,
}

impl ExtendRepr {
    /// Parses `EXTEND` data. Bytes after the addresses are ignored (as for
    /// any relay message, §6).
    pub fn parse(data: &[u8]) -> Result<Self, ExtendError> {
        let (target, rest) = data
            .split_first_chunk::<32>()
            .ok_or(ExtendError::Truncated)?;
        let (kind, rest) = rest
            .split_first_chunk::<2>()
            .ok_or(ExtendError::Truncated)?;
        let kind = u16::from_be_bytes(*kind);
        if kind != HANDSHAKE_TYPE_NK {
            return Err(ExtendError::UnknownHandshake(kind));
        }
        let (length, rest) = rest
            .split_first_chunk::<2>()
            .ok_or(ExtendError::Truncated)?;
        let (handshake, rest) = rest
            .split_at_checked(usize::from(u16::from_be_bytes(*length)))
            .ok_or(ExtendError::Truncated)?;
        let handshake = Vec::from_slice(handshake).map_err(|_| ExtendError::Truncated)?;
        let mut addresses = Vec::new();
        if let Some((&count, mut rest)) = rest.split_first() {
            if usize::from(count) > MAX_EXTEND_ADDRESSES {
                return Err(ExtendError::TooManyAddresses(count));
            }
            for _ in 0..count {
                let (address, len) = Address::parse(rest)?;
                rest = rest.get(len..).unwrap_or_default();
                // Cannot fail: count was checked against the capacity.
                let _ = addresses.push(address);
            }
        }
        Ok(ExtendRepr {
            target: NodeId(*target),
            handshake,
            addresses,
        })
    }

    /// Bytes of the emitted data.
    pub fn wire_len(&self) -> usize {
        // Target, handshake type and length, then the address count.
        const FIXED: usize = 32 + 2 + 2 + 1;
        self.addresses.iter().map(Address::wire_len).fold(
            FIXED.saturating_add(self.handshake.len()),
            usize::saturating_add,
        )
    }

    /// Writes the data into `buf`; the bytes written, or `None` if `buf` is
    /// too short.
    pub fn emit(&self, buf: &mut [u8]) -> Option<usize> {
        let len = self.wire_len();
        let out = buf.get_mut(..len)?;
        let (target, rest) = out.split_first_chunk_mut::<32>()?;
        *target = *self.target.as_bytes();
        let (head, rest) = rest.split_first_chunk_mut::<4>()?;
        let length = u16::try_from(self.handshake.len()).ok()?;
        head[..2].copy_from_slice(&HANDSHAKE_TYPE_NK.to_be_bytes());
        head[2..].copy_from_slice(&length.to_be_bytes());
        let (handshake, rest) = rest.split_at_mut_checked(self.handshake.len())?;
        handshake.copy_from_slice(&self.handshake);
        let (count, mut rest) = rest.split_first_mut()?;
        *count = u8::try_from(self.addresses.len()).ok()?;
        for address in &self.addresses {
            let written = address.emit(rest)?;
            rest = rest.get_mut(written..)?;
        }
        Some(len)
    }
}

#[cfg(test)]
mod tests {
    use core::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

    use super::*;
    use crate::identity::Transport;

    fn repr(addresses: &[Address]) -> ExtendRepr {
        ExtendRepr {
            target: NodeId([7; 32]),
            handshake: Vec::from_slice(&[9; 48]).unwrap(),
            addresses: Vec::from_slice(addresses).unwrap(),
        }
    }

    fn tcp4(port: u16) -> Address {
        Address {
            transport: Transport::Tcp,
            socket: SocketAddr::new(Ipv4Addr::new(198, 51, 100, 7).into(), port),
        }
    }

    fn quic6(port: u16) -> Address {
        Address {
            transport: Transport::Quic,
            socket: SocketAddr::new(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1).into(), port),
        }
    }

    #[test]
    fn round_trips_with_and_without_addresses() {
        for addresses in [
            &[][..],
            &[tcp4(9001)],
            &[tcp4(1), quic6(2), tcp4(3), quic6(4)],
        ] {
            let repr = repr(addresses);
            let mut buf = [0u8; 490];
            let len = repr.emit(&mut buf).unwrap();
            assert_eq!(len, repr.wire_len());
            assert_eq!(ExtendRepr::parse(&buf[..len]), Ok(repr.clone()));
            // Trailing zeros (the rest of the relay data) are ignored.
            assert_eq!(ExtendRepr::parse(&buf), Ok(repr));
        }
    }

    #[test]
    fn the_layout_is_the_spec_s() {
        let mut buf = [0u8; 490];
        let len = repr(&[tcp4(9001)]).emit(&mut buf).unwrap();
        assert_eq!(len, 32 + 4 + 48 + 1 + 8);
        assert_eq!(&buf[32..36], &[0, 1, 0, 48]);
        assert_eq!(buf[84], 1);
        assert_eq!(&buf[85..93], &[1, 4, 198, 51, 100, 7, 0x23, 0x29]);
    }

    #[test]
    fn data_ending_after_the_handshake_has_no_addresses() {
        let mut buf = [0u8; 490];
        let len = repr(&[]).emit(&mut buf).unwrap();
        let parsed = ExtendRepr::parse(&buf[..len - 1]).unwrap();
        assert!(parsed.addresses.is_empty());
    }

    #[test]
    fn refuses_what_does_not_parse() {
        let mut buf = [0u8; 490];
        let len = repr(&[tcp4(1)]).emit(&mut buf).unwrap();
        assert_eq!(ExtendRepr::parse(&buf[..40]), Err(ExtendError::Truncated));
        assert_eq!(
            ExtendRepr::parse(&buf[..len - 1]),
            Err(ExtendError::BadAddress(AddressError::Truncated))
        );
        let mut many = buf;
        many[84] = 5;
        assert_eq!(
            ExtendRepr::parse(&many),
            Err(ExtendError::TooManyAddresses(5))
        );
        let mut unknown = buf;
        unknown[33] = 2;
        assert_eq!(
            ExtendRepr::parse(&unknown),
            Err(ExtendError::UnknownHandshake(2))
        );
        let mut family = buf;
        family[86] = 5;
        assert_eq!(
            ExtendRepr::parse(&family),
            Err(ExtendError::BadAddress(AddressError::UnknownFamily(5)))
        );
    }
}
