//! The data of the introduction and rendezvous relay messages (relay spec
//! §13): what a sender hands a service's introduction point, and what the
//! service hands the rendezvous point the sender chose.
//!
//! ```text
//! INTRODUCE1   service_id [32] ‖ introduction [..]
//! INTRODUCE2   introduction [..]
//! RENDEZVOUS1  cookie [20] ‖ handshake answer [48]
//! RENDEZVOUS2  handshake answer [48]
//!
//! introduction = NK message 1 to the service's onion key, whose payload
//! (encrypted, so the introduction point cannot read it) is:
//!   cookie        [20]  one-time, chosen by the sender
//!   rendezvous    [32]  node id of the rendezvous point
//!   onion_key     [32]  its onion key, for the service's hop handshake
//!   address_count u8    0..=4
//!   addresses           descriptor layout (§2)
//! ```

use core::fmt;

use heapless::Vec;

use super::extend::{ExtendAddresses, MAX_EXTEND_ADDRESSES};
use crate::identity::{Address, AddressError, NodeId};

/// Bytes of a rendezvous cookie: unguessable, so only the service the
/// sender introduced itself to can join its circuit.
pub const COOKIE_LEN: usize = 20;
/// Bytes of the service's handshake answer (NK message 2, empty payload).
pub const RENDEZVOUS_HANDSHAKE_LEN: usize = 48;
/// The longest introduction payload: the fixed part and four IPv6 addresses.
pub const MAX_INTRODUCTION_PAYLOAD: usize = COOKIE_LEN + 32 + 32 + 1 + MAX_EXTEND_ADDRESSES * 20;

/// A rendezvous cookie.
pub type Cookie = [u8; COOKIE_LEN];

/// Why introduction or rendezvous data was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RendezvousDataError {
    /// The data ends inside a fixed field.
    Truncated,
    /// More addresses than an `EXTEND` carries.
    TooManyAddresses(u8),
    /// An address that does not parse.
    BadAddress(AddressError),
}

impl fmt::Display for RendezvousDataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RendezvousDataError::Truncated => {
                write!(f, "introduction or rendezvous data ends inside a field")
            }
            RendezvousDataError::TooManyAddresses(n) => write!(
                f,
                "introduction names {n} rendezvous addresses; at most {MAX_EXTEND_ADDRESSES}"
            ),
            RendezvousDataError::BadAddress(e) => write!(f, "rendezvous address: {e}"),
        }
    }
}

impl core::error::Error for RendezvousDataError {}

/// `INTRODUCE1`: which service, and the introduction for it.
pub fn parse_introduce1(data: &[u8]) -> Result<(NodeId, &[u8]), RendezvousDataError> {
    let (service, introduction) = data
        .split_first_chunk::<32>()
        .ok_or(RendezvousDataError::Truncated)?;
    if introduction.is_empty() {
        return Err(RendezvousDataError::Truncated);
    }
    Ok((NodeId(*service), introduction))
}

/// `RENDEZVOUS1`: the cookie, and the service's handshake answer.
pub fn parse_rendezvous1(
    data: &[u8],
) -> Result<(Cookie, [u8; RENDEZVOUS_HANDSHAKE_LEN]), RendezvousDataError> {
    let (cookie, rest) = data
        .split_first_chunk::<COOKIE_LEN>()
        .ok_or(RendezvousDataError::Truncated)?;
    let (answer, _) = rest
        .split_first_chunk::<RENDEZVOUS_HANDSHAKE_LEN>()
        .ok_or(RendezvousDataError::Truncated)?;
    Ok((*cookie, *answer))
}

/// The plaintext of an introduction: where the sender waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntroductionPayload {
    /// The one-time cookie the rendezvous point waits for.
    pub cookie: Cookie,
    /// The rendezvous point.
    pub rendezvous: NodeId,
    /// Its onion key.
    pub onion_key: [u8; 32],
    /// Where it listens.
    pub addresses: ExtendAddresses,
}

impl IntroductionPayload {
    /// Parses the decrypted payload; bytes after the addresses are ignored.
    pub fn parse(data: &[u8]) -> Result<Self, RendezvousDataError> {
        let (cookie, rest) = data
            .split_first_chunk::<COOKIE_LEN>()
            .ok_or(RendezvousDataError::Truncated)?;
        let (rendezvous, rest) = rest
            .split_first_chunk::<32>()
            .ok_or(RendezvousDataError::Truncated)?;
        let (onion_key, rest) = rest
            .split_first_chunk::<32>()
            .ok_or(RendezvousDataError::Truncated)?;
        let (&count, mut rest) = rest.split_first().ok_or(RendezvousDataError::Truncated)?;
        if usize::from(count) > MAX_EXTEND_ADDRESSES {
            return Err(RendezvousDataError::TooManyAddresses(count));
        }
        let mut addresses = Vec::new();
        for _ in 0..count {
            let (address, len) = Address::parse(rest).map_err(RendezvousDataError::BadAddress)?;
            rest = rest.get(len..).unwrap_or_default();
            let _ = addresses.push(address);
        }
        Ok(IntroductionPayload {
            cookie: *cookie,
            rendezvous: NodeId(*rendezvous),
            onion_key: *onion_key,
            addresses,
        })
    }

    /// Writes the payload into `buf`; its length, or `None` if `buf` is
    /// too short.
    pub fn emit(&self, buf: &mut [u8]) -> Option<usize> {
        let (cookie, rest) = buf.split_first_chunk_mut::<COOKIE_LEN>()?;
        *cookie = self.cookie;
        let (rendezvous, rest) = rest.split_first_chunk_mut::<32>()?;
        *rendezvous = self.rendezvous.0;
        let (onion, rest) = rest.split_first_chunk_mut::<32>()?;
        *onion = self.onion_key;
        let (count, mut rest) = rest.split_first_mut()?;
        *count = u8::try_from(self.addresses.len()).ok()?;
        let mut len = COOKIE_LEN + 32 + 32 + 1;
        for address in &self.addresses {
            let written = address.emit(rest)?;
            rest = rest.get_mut(written..)?;
            len = len.checked_add(written)?;
        }
        Some(len)
    }
}

#[cfg(test)]
mod tests {
    use core::net::{Ipv6Addr, SocketAddr};

    use super::*;
    use crate::identity::Transport;

    fn payload(addresses: usize) -> IntroductionPayload {
        let address = Address {
            transport: Transport::Quic,
            socket: SocketAddr::new(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 9).into(), 443),
        };
        IntroductionPayload {
            cookie: [3; COOKIE_LEN],
            rendezvous: NodeId([4; 32]),
            onion_key: [5; 32],
            addresses: core::iter::repeat_n(address, addresses).collect(),
        }
    }

    #[test]
    fn the_introduction_payload_round_trips_at_every_size() {
        for n in 0..=MAX_EXTEND_ADDRESSES {
            let p = payload(n);
            let mut buf = [0u8; MAX_INTRODUCTION_PAYLOAD];
            let len = p.emit(&mut buf).unwrap();
            assert_eq!(IntroductionPayload::parse(&buf[..len]), Ok(p));
        }
        assert!(payload(4).emit(&mut [0u8; 100]).is_none());
    }

    #[test]
    fn hostile_introductions_are_refused() {
        let mut buf = [0u8; MAX_INTRODUCTION_PAYLOAD];
        let len = payload(1).emit(&mut buf).unwrap();
        for cut in 0..len {
            assert!(IntroductionPayload::parse(&buf[..cut]).is_err(), "{cut}");
        }
        buf[COOKIE_LEN + 64] = 5;
        assert_eq!(
            IntroductionPayload::parse(&buf[..len]),
            Err(RendezvousDataError::TooManyAddresses(5))
        );
    }

    #[test]
    fn introduce1_and_rendezvous1_split_as_specified() {
        let mut data = [7u8; 40];
        data[..32].copy_from_slice(&[1; 32]);
        let (service, introduction) = parse_introduce1(&data).unwrap();
        assert_eq!((service, introduction), (NodeId([1; 32]), &[7u8; 8][..]));
        assert_eq!(
            parse_introduce1(&data[..32]),
            Err(RendezvousDataError::Truncated)
        );
        let mut r1 = [9u8; COOKIE_LEN + RENDEZVOUS_HANDSHAKE_LEN];
        r1[..COOKIE_LEN].copy_from_slice(&[2; COOKIE_LEN]);
        assert_eq!(
            parse_rendezvous1(&r1),
            Ok(([2; COOKIE_LEN], [9; RENDEZVOUS_HANDSHAKE_LEN]))
        );
        assert!(parse_rendezvous1(&r1[..COOKIE_LEN + 47]).is_err());
    }
}
