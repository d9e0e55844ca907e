//! Network prefixes: the unit in which one operator is assumed to control
//! addresses. Paths never put two hops in one prefix, and a node limits
//! what any one prefix may hold of its links and circuits (relay spec §7,
//! security doc), because addresses inside a prefix are cheap for one
//! party to get while addresses across many prefixes are not.

use core::net::IpAddr;

/// A network prefix: IPv4 /16 or IPv6 /32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum NetworkPrefix {
    /// The first two octets of an IPv4 address.
    V4([u8; 2]),
    /// The first four octets of an IPv6 address.
    V6([u8; 4]),
}

impl NetworkPrefix {
    /// The prefix an address belongs to. An IPv4 address written as IPv6
    /// (`::ffff:a.b.c.d`, as a dual-stack socket reports IPv4 peers) is in
    /// its IPv4 prefix, so the two spellings cannot count as two networks.
    pub fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => {
                let [a, b, _, _] = v4.octets();
                NetworkPrefix::V4([a, b])
            }
            IpAddr::V6(v6) => {
                let o = v6.octets();
                let mut p = [0u8; 4];
                for (dst, src) in p.iter_mut().zip(o.iter()) {
                    *dst = *src;
                }
                NetworkPrefix::V6(p)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn ipv4_prefix_is_the_first_two_octets() {
        let a = NetworkPrefix::of(IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)));
        let b = NetworkPrefix::of(IpAddr::V4(Ipv4Addr::new(10, 1, 200, 9)));
        let c = NetworkPrefix::of(IpAddr::V4(Ipv4Addr::new(10, 2, 2, 3)));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn an_ipv4_mapped_address_is_in_its_ipv4_prefix() {
        let v4 = Ipv4Addr::new(192, 0, 2, 7);
        let mapped = IpAddr::V6(v4.to_ipv6_mapped());
        assert_eq!(NetworkPrefix::of(mapped), NetworkPrefix::of(IpAddr::V4(v4)));
    }

    #[test]
    fn ipv6_prefix_is_the_first_32_bits() {
        let a = NetworkPrefix::of(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1)));
        let b = NetworkPrefix::of(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 9, 0, 0, 0, 0, 2)));
        let c = NetworkPrefix::of(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb9, 1, 0, 0, 0, 0, 1)));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
