//! Where a node with no configured bootstrap nodes dials when it restarts:
//! the relays of its saved node table, whether or not their descriptors
//! have expired.
//!
//! Descriptors live 3 hours and are re-signed well before that, so after
//! an hour or more offline most of a saved table has expired and the node
//! table refuses it. The addresses in those descriptors are still the best
//! guess of where the network is: a node that answers there sends its
//! fresh descriptor over the link, and the node learns the network again.
//! So each saved descriptor is checked as of the time it was issued (its
//! structure, its signature, a sane lifetime) and only its expiry is
//! disregarded. Newest descriptors come first.

use std::net::SocketAddr;

use veil_core::identity::{verify_descriptor, DescriptorPacket, DescriptorRepr, Transport};
use veil_core::node::MAX_BOOTSTRAP;

/// TCP addresses (every node speaks TCP) of the relays in `saved`,
/// newest descriptor first, each once, at most [`MAX_BOOTSTRAP`].
pub fn relay_addresses(saved: &[Vec<u8>]) -> Vec<SocketAddr> {
    let mut relays: Vec<DescriptorRepr> = saved
        .iter()
        .filter_map(|bytes| signed_when_issued(bytes))
        .filter(|repr| repr.relay)
        .collect();
    relays.sort_by_key(|r| std::cmp::Reverse(r.issued_at));
    let mut addresses = Vec::new();
    for address in relays.iter().flat_map(|r| r.addresses.iter()) {
        if address.transport == Transport::Tcp && !addresses.contains(&address.socket) {
            addresses.push(address.socket);
        }
    }
    addresses.truncate(MAX_BOOTSTRAP);
    addresses
}

/// The descriptor's contents, if it verifies as of its own issue time.
fn signed_when_issued(bytes: &[u8]) -> Option<DescriptorRepr> {
    let packet = DescriptorPacket::new_checked(bytes).ok()?;
    let issued_at = DescriptorRepr::parse(&packet).ok()?.issued_at;
    match verify_descriptor(bytes, issued_at) {
        Ok(verified) => Some(verified.repr().clone()),
        Err(e) => {
            log::debug!("saved descriptor not used for bootstrap: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use veil_core::identity::{Address, Identity, MAX_DESCRIPTOR_LEN};

    use super::*;

    fn descriptor(secret: u8, relay: bool, issued_at: u64, addresses: &[&str]) -> Vec<u8> {
        let identity = Identity::from_secret_bytes([secret; 32]);
        let mut repr = DescriptorRepr {
            identity: identity.public(),
            onion_key: [7; 32],
            relay,
            issued_at,
            expires_at: issued_at + 3 * 3600,
            addresses: Default::default(),
        };
        for a in addresses {
            let transport = if a.starts_with("quic://") {
                Transport::Quic
            } else {
                Transport::Tcp
            };
            let socket = a.trim_start_matches("quic://").parse().expect("address");
            repr.addresses
                .push(Address { transport, socket })
                .expect("room");
        }
        let mut buf = vec![0u8; MAX_DESCRIPTOR_LEN];
        let n = repr.emit_signed(&identity, &mut buf).expect("sign");
        buf.truncate(n);
        buf
    }

    #[test]
    fn expired_relays_are_dialled_newest_first_and_others_are_not() {
        // Issued in 2001: long expired.
        let old = 1_000_000_000;
        let saved = vec![
            descriptor(1, true, old, &["127.0.0.1:1"]),
            descriptor(2, true, old + 60, &["quic://127.0.0.2:2", "127.0.0.2:2"]),
            descriptor(3, false, old + 120, &["127.0.0.3:3"]),
            descriptor(4, true, old + 30, &["127.0.0.1:1"]),
        ];
        let want: Vec<SocketAddr> = vec![
            "127.0.0.2:2".parse().expect("addr"),
            "127.0.0.1:1".parse().expect("addr"),
        ];
        assert_eq!(relay_addresses(&saved), want);
    }

    #[test]
    fn a_forged_or_broken_descriptor_gives_no_address() {
        let mut forged = descriptor(1, true, 1_000_000_000, &["127.0.0.1:1"]);
        let last = forged.len() - 1;
        forged[last] ^= 1;
        assert!(relay_addresses(&[forged, vec![1, 2, 3]]).is_empty());
    }

    #[test]
    fn at_most_max_bootstrap_addresses() {
        let saved: Vec<Vec<u8>> = (0..20u8)
            .map(|i| descriptor(i + 1, true, 1_000_000_000, &[&format!("127.0.0.{i}:9")]))
            .collect();
        assert_eq!(relay_addresses(&saved).len(), MAX_BOOTSTRAP);
    }
}
