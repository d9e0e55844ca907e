//! Transport addresses as carried in descriptors.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The transports a node can be reached over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Transport {
    /// The link protocol over TCP.
    Tcp,
    /// The link protocol over QUIC.
    Quic,
}

impl Transport {
    /// Wire code.
    pub fn code(self) -> u8 {
        match self {
            Transport::Tcp => 1,
            Transport::Quic => 2,
        }
    }

    /// The transport for a wire code.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Transport::Tcp),
            2 => Some(Transport::Quic),
            _ => None,
        }
    }
}

/// Where a node listens, and over what.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Address {
    /// The transport.
    pub transport: Transport,
    /// IP address and port.
    pub socket: SocketAddr,
}

impl Address {
    /// Bytes of this address on the wire.
    pub fn wire_len(&self) -> usize {
        match self.socket.ip() {
            IpAddr::V4(_) => 1 + 1 + 4 + 2,
            IpAddr::V6(_) => 1 + 1 + 16 + 2,
        }
    }

    /// Writes the address: transport, family (4 or 6), IP, port.
    pub(crate) fn emit(&self, buf: &mut [u8]) -> Option<usize> {
        let len = self.wire_len();
        let out = buf.get_mut(..len)?;
        let (head, rest) = out.split_first_chunk_mut::<2>()?;
        let (ip, port) = rest.split_at_mut_checked(rest.len().checked_sub(2)?)?;
        match self.socket.ip() {
            IpAddr::V4(v4) => {
                *head = [self.transport.code(), 4];
                ip.copy_from_slice(&v4.octets());
            }
            IpAddr::V6(v6) => {
                *head = [self.transport.code(), 6];
                ip.copy_from_slice(&v6.octets());
            }
        }
        port.copy_from_slice(&self.socket.port().to_be_bytes());
        Some(len)
    }

    /// Reads one address from the front of `buf`; returns it and its length.
    pub(crate) fn parse(buf: &[u8]) -> Result<(Self, usize), AddressError> {
        let (&[transport, family], rest) = buf
            .split_first_chunk::<2>()
            .ok_or(AddressError::Truncated)?;
        let transport =
            Transport::from_code(transport).ok_or(AddressError::UnknownTransport(transport))?;
        let (ip, rest, len) = match family {
            4 => {
                let (ip, rest) = rest
                    .split_first_chunk::<4>()
                    .ok_or(AddressError::Truncated)?;
                (IpAddr::V4(Ipv4Addr::from(*ip)), rest, 8)
            }
            6 => {
                let (ip, rest) = rest
                    .split_first_chunk::<16>()
                    .ok_or(AddressError::Truncated)?;
                (IpAddr::V6(Ipv6Addr::from(*ip)), rest, 20)
            }
            other => return Err(AddressError::UnknownFamily(other)),
        };
        let (port, _) = rest
            .split_first_chunk::<2>()
            .ok_or(AddressError::Truncated)?;
        let socket = SocketAddr::new(ip, u16::from_be_bytes(*port));
        Ok((Address { transport, socket }, len))
    }
}

/// Why an address could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum AddressError {
    /// The bytes end inside the address.
    Truncated,
    /// A transport code this version does not know.
    UnknownTransport(u8),
    /// An address family other than 4 or 6.
    UnknownFamily(u8),
}

impl core::fmt::Display for AddressError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            AddressError::Truncated => write!(f, "address is truncated"),
            AddressError::UnknownTransport(t) => {
                write!(f, "transport code {t} is unknown (1 = TCP, 2 = QUIC)")
            }
            AddressError::UnknownFamily(x) => write!(f, "address family {x} is not 4 or 6"),
        }
    }
}

impl core::error::Error for AddressError {}
