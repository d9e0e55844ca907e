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

/// Whether `ip` is an address a relay may be asked to connect to by others:
/// not loopback, private (RFC 1918, IPv6 unique local), link-local,
/// multicast, broadcast or unspecified. An `EXTEND` to such an address
/// would make a relay probe its own host or network on a stranger's
/// behalf (server-side request forgery), so relays refuse it unless their
/// operator allows it (a test network on one host).
pub fn is_public(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_unspecified()
                || v4.octets()[0] == 0)
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                // fc00::/7 unique local, fe80::/10 link-local
                || first & 0xfe00 == 0xfc00
                || first & 0xffc0 == 0xfe80)
        }
    }
}

#[cfg(test)]
mod scope_tests {
    use super::*;

    #[test]
    fn local_and_special_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "127.5.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "0.0.0.0",
            "0.1.2.3",
            "::1",
            "::",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn global_addresses_are_public() {
        for ip in [
            "8.8.8.8",
            "100.1.0.1",
            "172.32.0.1",
            "192.0.2.1",
            "2001:db8::1",
            "::ffff:8.8.4.4",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }
}
