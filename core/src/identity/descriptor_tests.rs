//! Tests of descriptor encoding, parsing and verification.

use core::net::SocketAddr;

use proptest::prelude::*;

use super::*;

const NOW: u64 = 1_800_000_000;

fn identity() -> Identity {
    Identity::from_secret_bytes([11; 32])
}

fn address(transport: Transport, text: &str) -> Address {
    Address {
        transport,
        socket: text.parse::<SocketAddr>().unwrap(),
    }
}

fn sample() -> DescriptorRepr {
    let mut addresses = heapless::Vec::new();
    addresses
        .push(address(Transport::Tcp, "192.0.2.1:9001"))
        .unwrap();
    addresses
        .push(address(Transport::Quic, "[2001:db8::1]:9002"))
        .unwrap();
    DescriptorRepr {
        identity: identity().public(),
        onion_key: [5; 32],
        relay: true,
        issued_at: NOW - 60,
        expires_at: NOW + 3600,
        addresses,
    }
}

fn signed(repr: &DescriptorRepr) -> Vec<u8> {
    let mut buf = vec![0u8; MAX_DESCRIPTOR_LEN];
    let n = repr.emit_signed(&identity(), &mut buf).unwrap();
    assert_eq!(n, repr.buffer_len());
    buf.truncate(n);
    buf
}

/// Re-signs modified bytes so that only the intended check can fail.
fn resign(mut bytes: Vec<u8>) -> Vec<u8> {
    let body = bytes.len() - SIGNATURE_LEN;
    let sig = identity().sign(DESCRIPTOR_DOMAIN, &bytes[..body]).unwrap();
    bytes[body..].copy_from_slice(&sig);
    bytes
}

#[test]
fn a_signed_descriptor_verifies_and_round_trips() {
    let repr = sample();
    let bytes = signed(&repr);
    let verified = verify_descriptor(&bytes, NOW).unwrap();
    assert_eq!(verified.repr(), &repr);
    assert_eq!(verified.node_id(), identity().node_id());
    assert_eq!(verified.as_bytes(), &bytes[..]);
    let packet = DescriptorPacket::new_checked(&bytes[..]).unwrap();
    assert_eq!(packet.addresses().count(), 2);
    assert_eq!(packet.as_bytes().len(), MIN_DESCRIPTOR_LEN + 8 + 20);
}

#[test]
fn forged_or_foreign_signatures_are_refused() {
    let bytes = signed(&sample());
    for i in 0..bytes.len() {
        let mut forged = bytes.clone();
        forged[i] ^= 0x01;
        assert!(
            verify_descriptor(&forged, NOW).is_err(),
            "bit flip at {i} accepted"
        );
    }
    let other = Identity::from_secret_bytes([12; 32]);
    let mut buf = [0u8; MAX_DESCRIPTOR_LEN];
    assert_eq!(
        sample().emit_signed(&other, &mut buf),
        Err(DescriptorError::WrongSigner)
    );
    let mut flipped_sig = bytes.clone();
    *flipped_sig.last_mut().unwrap() ^= 0x80;
    assert_eq!(
        verify_descriptor(&flipped_sig, NOW).unwrap_err(),
        DescriptorError::BadSignature
    );
}

#[test]
fn validity_period_is_enforced() {
    let bytes = signed(&sample());
    assert_eq!(
        verify_descriptor(&bytes, NOW + 3600).unwrap_err(),
        DescriptorError::Expired
    );
    assert!(verify_descriptor(&bytes, NOW - 60 - MAX_CLOCK_SKEW_SECS).is_ok());
    assert_eq!(
        verify_descriptor(&bytes, NOW - 61 - MAX_CLOCK_SKEW_SECS).unwrap_err(),
        DescriptorError::NotYetValid
    );
    let mut long = sample();
    long.expires_at = long.issued_at + MAX_DESCRIPTOR_LIFETIME_SECS + 1;
    assert_eq!(
        verify_descriptor(&signed(&long), NOW).unwrap_err(),
        DescriptorError::BadLifetime
    );
    let mut backwards = sample();
    backwards.expires_at = backwards.issued_at;
    assert_eq!(
        verify_descriptor(&signed(&backwards), NOW).unwrap_err(),
        DescriptorError::BadLifetime
    );
}

#[test]
fn structure_errors_are_typed() {
    let bytes = signed(&sample());
    for len in 0..bytes.len() {
        let err = verify_descriptor(&bytes[..len], NOW).unwrap_err();
        assert!(
            matches!(
                err,
                DescriptorError::Truncated | DescriptorError::BadSignature
            ),
            "truncated to {len}: {err:?}"
        );
    }
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert_eq!(
        verify_descriptor(&trailing, NOW).unwrap_err(),
        DescriptorError::TrailingBytes
    );
    assert_eq!(
        verify_descriptor(&[0u8; MAX_DESCRIPTOR_LEN + 1], NOW).unwrap_err(),
        DescriptorError::TooLong
    );
    let mut version = bytes.clone();
    version[0] = 2;
    assert_eq!(
        verify_descriptor(&resign(version), NOW).unwrap_err(),
        DescriptorError::UnknownVersion(2)
    );
    let mut flags = bytes.clone();
    flags[1] = 0x81;
    assert_eq!(
        verify_descriptor(&resign(flags), NOW).unwrap_err(),
        DescriptorError::UnknownFlags(0x81)
    );
    let mut transport = bytes.clone();
    transport[HEADER_LEN] = 9;
    assert_eq!(
        verify_descriptor(&transport, NOW).unwrap_err(),
        DescriptorError::BadAddress(AddressError::UnknownTransport(9))
    );
    let mut family = bytes.clone();
    family[HEADER_LEN + 1] = 5;
    assert_eq!(
        verify_descriptor(&family, NOW).unwrap_err(),
        DescriptorError::BadAddress(AddressError::UnknownFamily(5))
    );
    let mut count = bytes.clone();
    count[HEADER_LEN - 1] = 5;
    assert_eq!(
        verify_descriptor(&count, NOW).unwrap_err(),
        DescriptorError::TooManyAddresses
    );
}

#[test]
fn address_limits_per_transport_are_enforced() {
    let mut repr = sample();
    repr.addresses.clear();
    for port in 1..=3 {
        repr.addresses
            .push(address(Transport::Tcp, &format!("192.0.2.1:{port}")))
            .unwrap();
    }
    let mut buf = [0u8; MAX_DESCRIPTOR_LEN];
    assert_eq!(
        repr.emit_signed(&identity(), &mut buf),
        Err(DescriptorError::TooManyAddresses)
    );
    // Crafted on the wire: three TCP addresses, correctly signed.
    let mut two = sample();
    two.addresses.clear();
    for port in 1..=2 {
        two.addresses
            .push(address(Transport::Tcp, &format!("192.0.2.1:{port}")))
            .unwrap();
    }
    two.addresses
        .push(address(Transport::Quic, "192.0.2.1:3"))
        .unwrap();
    let mut bytes = signed(&two);
    bytes[HEADER_LEN + 16] = Transport::Tcp.code();
    assert_eq!(
        verify_descriptor(&resign(bytes), NOW).unwrap_err(),
        DescriptorError::TooManyAddresses
    );
}

#[test]
fn a_short_output_buffer_is_an_error() {
    let mut buf = [0u8; 100];
    assert_eq!(
        sample().emit_signed(&identity(), &mut buf),
        Err(DescriptorError::BufferTooSmall)
    );
}

fn arb_address() -> impl Strategy<Value = Address> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<[u8; 16]>(),
        any::<u16>(),
    )
        .prop_map(|(quic, v6, ip, port)| {
            let ip: core::net::IpAddr = if v6 {
                core::net::Ipv6Addr::from(ip).into()
            } else {
                core::net::Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]).into()
            };
            Address {
                transport: if quic {
                    Transport::Quic
                } else {
                    Transport::Tcp
                },
                socket: SocketAddr::new(ip, port),
            }
        })
}

proptest! {
    #[test]
    fn parse_of_emit_is_identity(
        relay in any::<bool>(),
        onion in any::<[u8; 32]>(),
        issued in 0u64..u64::MAX / 2,
        lifetime in 1u64..MAX_DESCRIPTOR_LIFETIME_SECS,
        tcp in proptest::collection::vec(arb_address(), 0..=2),
        quic in proptest::collection::vec(arb_address(), 0..=2),
        introduced in proptest::collection::vec(arb_address(), 0..=3),
    ) {
        let mut addresses = heapless::Vec::new();
        for (mut a, t) in tcp.into_iter().map(|a| (a, Transport::Tcp)).chain(quic.into_iter().map(|a| (a, Transport::Quic))) {
            a.transport = t;
            addresses.push(a).unwrap();
        }
        let repr = DescriptorRepr {
            identity: identity().public(),
            onion_key: onion,
            relay,
            issued_at: issued,
            expires_at: issued + lifetime,
            addresses,
        };
        let bytes = signed(&repr);
        let packet = DescriptorPacket::new_checked(&bytes[..]).unwrap();
        prop_assert_eq!(&DescriptorRepr::parse(&packet).unwrap(), &repr);
        let verified = verify_descriptor(&bytes, issued).unwrap();
        prop_assert_eq!(verified.repr(), &repr);
        let room = (MAX_ADDRESSES - repr.addresses.len()).min(MAX_INTRODUCERS);
        let introducers: Vec<Introducer> = introduced
            .into_iter()
            .take(room)
            .enumerate()
            .map(|(i, a)| introducer(i as u8, a))
            .collect();
        let bytes = signed_introduced(&repr, &introducers);
        let verified = verify_descriptor(&bytes, issued).unwrap();
        prop_assert_eq!(verified.repr(), &repr);
        prop_assert_eq!(verified.introducers().collect::<Vec<_>>(), introducers);
    }

    #[test]
    fn parsing_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..500)) {
        let _ = verify_descriptor(&bytes, NOW);
        if let Ok(packet) = DescriptorPacket::new_checked(&bytes[..]) {
            let _ = packet.addresses().count();
            let _ = packet.introducers().count();
            let _ = DescriptorRepr::parse(&packet);
        }
    }
}

fn introducer(seed: u8, address: Address) -> Introducer {
    Introducer {
        node_id: NodeId([seed; 32]),
        onion_key: [seed.wrapping_add(1); 32],
        address,
    }
}

fn signed_introduced(repr: &DescriptorRepr, introducers: &[Introducer]) -> Vec<u8> {
    let mut buf = vec![0u8; MAX_DESCRIPTOR_LEN];
    let n = repr
        .emit_signed_introduced(introducers, &identity(), &mut buf)
        .unwrap();
    buf.truncate(n);
    buf
}

#[test]
fn an_introduced_descriptor_round_trips_and_signs_its_introducers() {
    let repr = sample();
    let introducers = [
        introducer(1, address(Transport::Tcp, "198.51.100.7:9001")),
        introducer(2, address(Transport::Quic, "[2001:db8::7]:9002")),
    ];
    let bytes = signed_introduced(&repr, &introducers);
    assert_eq!(
        bytes.len(),
        MIN_DESCRIPTOR_LEN + 8 + 20 + 1 + (64 + 8) + (64 + 20)
    );
    let verified = verify_descriptor(&bytes, NOW).unwrap();
    assert_eq!(verified.repr(), &repr);
    assert!(verified.is_introduced());
    assert_eq!(verified.introducers().collect::<Vec<_>>(), introducers);
    // A plain descriptor lists none, and its bytes are as before.
    let plain = verify_descriptor(&signed(&repr), NOW).unwrap();
    assert!(!plain.is_introduced());
    assert_eq!(plain.introducers().count(), 0);
    assert_eq!(signed_introduced(&repr, &[]), signed(&repr));
    // Every introducer byte is signed.
    let first_onion_key = HEADER_LEN + 8 + 20 + 1 + 32;
    let mut altered = bytes.clone();
    altered[first_onion_key] ^= 1;
    assert_eq!(
        verify_descriptor(&altered, NOW).unwrap_err(),
        DescriptorError::BadSignature
    );
}

#[test]
fn the_longest_descriptor_is_max_descriptor_len() {
    let mut repr = sample();
    repr.addresses.truncate(0);
    repr.addresses
        .push(address(Transport::Tcp, "[2001:db8::1]:9001"))
        .unwrap();
    let v6 = |n: u8| address(Transport::Tcp, &format!("[2001:db8::{n}]:9001"));
    let introducers = [
        introducer(1, v6(2)),
        introducer(2, v6(3)),
        introducer(3, v6(4)),
    ];
    let bytes = signed_introduced(&repr, &introducers);
    assert_eq!(bytes.len(), MAX_DESCRIPTOR_LEN);
    assert!(verify_descriptor(&bytes, NOW).is_ok());
}

#[test]
fn introducer_limits_are_enforced() {
    let repr = sample();
    let v4 = |n: u8| address(Transport::Tcp, &format!("198.51.100.{n}:9001"));
    let three = [
        introducer(1, v4(1)),
        introducer(2, v4(2)),
        introducer(3, v4(3)),
    ];
    let mut buf = vec![0u8; 1024];
    // Two addresses and three introducers: five in all.
    assert_eq!(
        repr.emit_signed_introduced(&three, &identity(), &mut buf),
        Err(DescriptorError::BadIntroducers)
    );
    let bytes = signed_introduced(&repr, &three[..2]);
    let icount_at = HEADER_LEN + 8 + 20;
    for (icount, why) in [(0, "none"), (3, "five in all"), (4, "over the maximum")] {
        let mut wrong = bytes.clone();
        wrong[icount_at] = icount;
        assert_eq!(
            verify_descriptor(&resign(wrong), NOW).unwrap_err(),
            DescriptorError::BadIntroducers,
            "{why}"
        );
    }
    for len in 0..bytes.len() {
        let err = verify_descriptor(&bytes[..len], NOW).unwrap_err();
        assert!(
            matches!(
                err,
                DescriptorError::Truncated
                    | DescriptorError::BadSignature
                    | DescriptorError::BadIntroducers
            ),
            "truncated to {len}: {err:?}"
        );
    }
    let mut bad_address = bytes.clone();
    bad_address[icount_at + 1 + 64] = 9;
    assert_eq!(
        verify_descriptor(&bad_address, NOW).unwrap_err(),
        DescriptorError::BadAddress(AddressError::UnknownTransport(9))
    );
}
