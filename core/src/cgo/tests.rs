//! Behaviour of CGO over a whole circuit: round trips, tamper resistance,
//! and the per-cell ratchet.

use super::*;

const AD: u8 = 3;

fn seed(n: u8) -> Seed {
    let mut s = [0u8; SEED_LEN];
    for (i, b) in s.iter_mut().enumerate() {
        *b = n.wrapping_mul(37).wrapping_add(i as u8);
    }
    Seed(s)
}

/// A client and three relays sharing per-hop seeds.
fn circuit() -> (ClientLayers, [RelayLayer; 3]) {
    let mut client = ClientLayers::new();
    let relays = [0u8, 1, 2].map(|h| {
        client
            .push(ClientHop::new(&seed(2 * h), &seed(2 * h + 1)))
            .unwrap();
        RelayLayer::new(&seed(2 * h), &seed(2 * h + 1))
    });
    (client, relays)
}

fn payload(n: u8) -> [u8; PAYLOAD_LEN] {
    core::array::from_fn(|i| n ^ (i as u8))
}

/// Sends forward through the relays; returns which hop recognised it.
fn send_forward(relays: &mut [RelayLayer; 3], mut body: CellBody) -> Option<(usize, CellBody)> {
    for (i, relay) in relays.iter_mut().enumerate() {
        if relay.receive_forward(AD, &mut body) == ForwardOutcome::Recognised {
            return Some((i, body));
        }
    }
    None
}

#[test]
fn cells_reach_exactly_the_hop_they_are_meant_for_and_back() {
    let (mut client, mut relays) = circuit();
    for round in 0..5u8 {
        for target in 0..3 {
            let body = client
                .originate_forward(target, AD, &payload(round))
                .unwrap();
            let (hop, plain) = send_forward(&mut relays, body).expect("recognised");
            assert_eq!(hop, target);
            assert_eq!(plain.payload, payload(round));
            // The hop answers; relays nearer the client add their layers.
            let mut reply = relays[target].originate_backward(AD, &payload(round ^ 0xff));
            for relay in relays[..target].iter_mut().rev() {
                relay.forward_backward(AD, &mut reply);
            }
            assert_eq!(client.receive_backward(AD, &mut reply), Some(target));
            assert_eq!(reply.payload, payload(round ^ 0xff));
        }
    }
}

#[test]
fn a_flipped_bit_anywhere_turns_the_cell_into_noise() {
    for bit in (0..BODY_LEN * 8).step_by(61) {
        let (mut client, mut relays) = circuit();
        let body = client.originate_forward(2, AD, &payload(7)).unwrap();
        // The first relay forwards it; the tamperer is on the next link.
        let mut body = body;
        assert_eq!(
            relays[0].receive_forward(AD, &mut body),
            ForwardOutcome::Forward
        );
        let mut bytes = body.to_bytes();
        bytes[bit / 8] ^= 1 << (bit % 8);
        let mut body = CellBody::from_bytes(&bytes);
        let mut recognised = false;
        for relay in relays[1..].iter_mut() {
            if relay.receive_forward(AD, &mut body) == ForwardOutcome::Recognised {
                recognised = true;
            }
        }
        assert!(!recognised, "tampered cell (bit {bit}) was recognised");
        assert_ne!(
            body.payload,
            payload(7),
            "tampered cell (bit {bit}) kept its payload"
        );
    }
}

#[test]
fn a_tampered_backward_cell_is_recognised_by_no_hop() {
    let (mut client, mut relays) = circuit();
    let mut reply = relays[2].originate_backward(AD, &payload(1));
    relays[1].forward_backward(AD, &mut reply);
    reply.payload[100] ^= 0x10;
    relays[0].forward_backward(AD, &mut reply);
    assert_eq!(client.receive_backward(AD, &mut reply), None);
}

#[test]
fn the_ratchet_refuses_a_replayed_cell() {
    let (mut client, mut relays) = circuit();
    let body = client.originate_forward(0, AD, &payload(9)).unwrap();
    let replay = body.clone();
    assert!(send_forward(&mut relays, body).is_some());
    assert_eq!(send_forward(&mut relays, replay), None);
}

#[test]
fn the_command_byte_is_bound_to_the_cell() {
    let (mut client, mut relays) = circuit();
    let mut body = client.originate_forward(0, AD, &payload(2)).unwrap();
    assert_eq!(
        relays[0].receive_forward(AD ^ 1, &mut body),
        ForwardOutcome::Forward
    );
}

#[test]
fn body_bytes_round_trip() {
    let body = CellBody::new([1; TAG_LEN], payload(4));
    assert_eq!(CellBody::from_bytes(&body.to_bytes()), body);
}

#[test]
fn the_client_refuses_unknown_hops_and_too_many_hops() {
    let (mut client, _) = circuit();
    assert_eq!(
        client.originate_forward(3, AD, &payload(0)).unwrap_err(),
        ClientCryptError::NoSuchHop(3)
    );
    for _ in 3..MAX_HOPS {
        client.push(ClientHop::new(&seed(1), &seed(2))).unwrap();
    }
    assert_eq!(
        client.push(ClientHop::new(&seed(1), &seed(2))).unwrap_err(),
        ClientCryptError::TooManyHops
    );
}
