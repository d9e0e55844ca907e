//! Introduction and rendezvous over the in-memory mesh: a sender reaches a
//! service through the service's introduction point and a rendezvous
//! point of its own choosing, and neither relay learns what is said.

#![cfg(feature = "rendezvous")]

use super::engine_tests::{closed_with, is_ready, Net};
use super::*;
use crate::cell::DestroyReason;
use crate::cell::{IntroductionPayload, RelayCommand, COOKIE_LEN};
use crate::circuit::{respond_introduction, STATUS_OK, STATUS_REFUSED};
use crate::discovery::Path;
use crate::identity::{NodeId, ServiceKeys};
use crate::noise::StaticKeypair;

const SERVICE: usize = 0;
const INTRO: usize = 3;
const RENDEZVOUS: usize = 5;
const SENDER: usize = 8;

fn service() -> ServiceKeys {
    ServiceKeys::from_secrets([41; 32], [42; 32])
}

/// The service's onion key (the introduction handshake's).
fn service_key() -> StaticKeypair {
    StaticKeypair::from_secret_bytes([42; 32])
}

fn service_id() -> NodeId {
    service().service_id()
}

/// The data of the first relay message `command` node `node` received on
/// own circuit `circuit`.
fn data_of(
    net: &Net,
    node: usize,
    circuit: CircuitHandle,
    command: RelayCommand,
) -> Option<Vec<u8>> {
    net.events_of(node).into_iter().find_map(|e| match e {
        CircuitEvent::Data {
            circuit: c,
            command: k,
            data,
            ..
        } if c == circuit && k == command => Some(data.to_vec()),
        _ => None,
    })
}

/// Sends `claim` as `ESTABLISH_INTRO` from `node` on its circuit
/// `circuit`, whose last hop (index 2) is the introduction point, and
/// returns the point's answer.
fn claim_intro(
    net: &mut Net,
    node: usize,
    circuit: CircuitHandle,
    claim: &[u8],
) -> Option<Vec<u8>> {
    net.with(node, |e, ctx| {
        e.send_relay(ctx, circuit, 2, RelayCommand::EstablishIntro, claim)
    })
    .unwrap();
    net.run();
    data_of(net, node, circuit, RelayCommand::IntroEstablished)
}

struct Joined {
    sender_circuit: CircuitHandle,
    service_circuit: CircuitHandle,
    cookie: [u8; COOKIE_LEN],
    answer: [u8; 48],
}

/// Runs the whole rendezvous: the service's introduction circuit, the
/// sender's rendezvous and introduction circuits, the service's circuit to
/// the rendezvous point. Returns the joined circuits.
fn rendezvous(net: &mut Net) -> Joined {
    let id = service_id();
    // The service takes an introduction point.
    let intro_circuit = net.open(SERVICE, &[1, 2, INTRO]).unwrap();
    net.run();
    let claim = service().intro_claim(&net.ids[INTRO]);
    assert_eq!(
        claim_intro(net, SERVICE, intro_circuit, &claim),
        Some(vec![STATUS_OK])
    );
    assert_eq!(net.engines[INTRO].rendezvous_tables().introducing(), 1);

    // The sender builds to its rendezvous point and waits there.
    let hops = [7, 6, RENDEZVOUS];
    let mut path: Vec<NodeId> = hops.iter().map(|&h| net.ids[h]).collect();
    path.push(id);
    let mut keys: Vec<[u8; 32]> = hops.iter().map(|&h| net.onion[h].public()).collect();
    keys.push(service_key().public());
    let sender_circuit = net
        .with(SENDER, |e, ctx| {
            e.open_rendezvous(ctx, Path::from_hops(&path).unwrap(), &keys)
        })
        .unwrap();
    net.run();
    assert!(net.events_of(SENDER).iter().any(
        |e| matches!(e, CircuitEvent::AtRendezvousPoint { circuit } if *circuit == sender_circuit)
    ));
    let cookie = [0xc0; COOKIE_LEN];
    net.with(SENDER, |e, ctx| {
        e.send_relay(
            ctx,
            sender_circuit,
            2,
            RelayCommand::EstablishRendezvous,
            &cookie,
        )
    })
    .unwrap();
    net.run();
    assert_eq!(
        data_of(
            net,
            SENDER,
            sender_circuit,
            RelayCommand::RendezvousEstablished
        ),
        Some(vec![STATUS_OK])
    );

    // The introduction, through a circuit of the sender's to the
    // introduction point.
    let payload = IntroductionPayload {
        cookie,
        rendezvous: net.ids[RENDEZVOUS],
        onion_key: net.onion[RENDEZVOUS].public(),
        addresses: heapless::Vec::new(),
    };
    let mut plain = [0u8; 200];
    let plain_len = payload.emit(&mut plain).unwrap();
    let mut introduction = [0u8; 300];
    let len = net
        .with(SENDER, |e, ctx| {
            e.start_introduction(ctx, sender_circuit, &plain[..plain_len], &mut introduction)
        })
        .unwrap();
    let intro_out = net.open(SENDER, &[4, 2, INTRO]).unwrap();
    net.run();
    let mut introduce1 = id.0.to_vec();
    introduce1.extend_from_slice(&introduction[..len]);
    net.with(SENDER, |e, ctx| {
        e.send_relay(ctx, intro_out, 2, RelayCommand::Introduce1, &introduce1)
    })
    .unwrap();
    net.run();
    assert_eq!(
        data_of(net, SENDER, intro_out, RelayCommand::IntroduceAck),
        Some(vec![STATUS_OK])
    );
    let introduction2 = data_of(net, SERVICE, intro_circuit, RelayCommand::Introduce2).unwrap();
    assert_eq!(introduction2, introduction[..len]);

    // The service answers: its own circuit to the rendezvous point.
    let mut read = [0u8; 300];
    let (layer, answer, read_len) =
        respond_introduction(&service_key(), [9; 32], &introduction2, &mut read).unwrap();
    let told = IntroductionPayload::parse(&read[..read_len]).unwrap();
    assert_eq!(told, payload);
    let service_circuit = net.open(SERVICE, &[2, 4, RENDEZVOUS]).unwrap();
    net.run();
    net.engines[SERVICE]
        .attach_service_hop(service_circuit, layer)
        .unwrap();
    let mut rendezvous1 = cookie.to_vec();
    rendezvous1.extend_from_slice(&answer);
    net.with(SERVICE, |e, ctx| {
        e.send_relay(
            ctx,
            service_circuit,
            2,
            RelayCommand::Rendezvous1,
            &rendezvous1,
        )
    })
    .unwrap();
    net.run();
    assert!(is_ready(&net.events_of(SENDER), sender_circuit));
    assert_eq!(
        net.engines[RENDEZVOUS].rendezvous_tables().rendezvous(),
        (1, 1)
    );
    Joined {
        sender_circuit,
        service_circuit,
        cookie,
        answer,
    }
}

#[test]
fn a_sender_and_a_service_meet_at_a_rendezvous_point_and_talk_both_ways() {
    let mut net = Net::new(9, 11);
    let marker = *b"RENDEZVOUS-MARKER-91";
    let seen = std::rc::Rc::new(std::cell::RefCell::new(0usize));
    let flag = seen.clone();
    net.tamper = Some(Box::new(move |_, _, cell| {
        if cell.windows(marker.len()).any(|w| w == marker) {
            *flag.borrow_mut() += 1;
        }
    }));
    let joined = rendezvous(&mut net);
    net.events.clear();

    net.with(SENDER, |e, ctx| {
        e.send(ctx, joined.sender_circuit, 3, &marker)
    })
    .unwrap();
    net.run();
    let at = match net.events_of(SERVICE).as_slice() {
        [CircuitEvent::Delivered { at, data, command }] => {
            assert_eq!(*command, RelayCommand::Data);
            assert_eq!(data.as_slice(), marker);
            *at
        }
        other => panic!("the service saw {other:?}"),
    };
    // The rendezvous point and every relay saw only ciphertext.
    for relay in [1, 2, 4, 5, 6, 7] {
        assert!(
            net.events_of(relay).is_empty(),
            "relay {relay} saw {:?}",
            net.events_of(relay)
        );
    }
    assert_eq!(*seen.borrow(), 0, "the plaintext crossed a link");
    net.with(SERVICE, |e, ctx| e.reply(ctx, at, b"from the service"))
        .unwrap();
    net.run();
    let back = net.events_of(SENDER).into_iter().find_map(|e| match e {
        CircuitEvent::Data { hop: 3, data, .. } => Some(data.to_vec()),
        _ => None,
    });
    assert_eq!(back.as_deref(), Some(&b"from the service"[..]));
    // A probe reaches the service's hop and is answered by it.
    net.with(SENDER, |e, ctx| {
        e.send_relay(
            ctx,
            joined.sender_circuit,
            3,
            RelayCommand::Probe,
            b"nonce-01",
        )
    })
    .unwrap();
    net.run();
    assert!(net.events_of(SENDER).iter().any(|e| matches!(
        e,
        CircuitEvent::Data {
            hop: 3,
            command: RelayCommand::ProbeReply,
            ..
        }
    )));
    // Many cells each way keep both sides' layers in step.
    for i in 0..20u8 {
        net.with(SENDER, |e, ctx| {
            e.send(ctx, joined.sender_circuit, 3, &[i; 100])
        })
        .unwrap();
        net.with(SERVICE, |e, ctx| e.reply(ctx, at, &[i; 90]))
            .unwrap();
        net.run();
    }
    let to_service = net
        .events_of(SERVICE)
        .iter()
        .filter(|e| matches!(e, CircuitEvent::Delivered { .. }))
        .count();
    assert_eq!(to_service, 21);

    // Closing the sender's circuit tears down the service's at the
    // rendezvous point, and the point forgets the rendezvous.
    net.with(SENDER, |e, ctx| e.close(ctx, joined.sender_circuit))
        .unwrap();
    net.run();
    assert!(net.events_of(SERVICE).iter().any(|e| matches!(
        e,
        CircuitEvent::Closed { circuit, .. } if *circuit == joined.service_circuit
    )));
    assert_eq!(
        net.engines[RENDEZVOUS].rendezvous_tables().rendezvous(),
        (0, 0)
    );
    assert_eq!(net.engines[RENDEZVOUS].relayed(), 0);
}

#[test]
fn a_replayed_rendezvous1_joins_nothing() {
    let mut net = Net::new(9, 12);
    let joined = rendezvous(&mut net);
    // Someone replays the service's RENDEZVOUS1 over another circuit.
    let replay = net.open(1, &[2, 4, RENDEZVOUS]).unwrap();
    net.run();
    let mut rendezvous1 = joined.cookie.to_vec();
    rendezvous1.extend_from_slice(&joined.answer);
    net.with(1, |e, ctx| {
        e.send_relay(ctx, replay, 2, RelayCommand::Rendezvous1, &rendezvous1)
    })
    .unwrap();
    net.run();
    assert!(closed_with(
        &net.events_of(1),
        replay,
        DestroyReason::Protocol
    ));
    assert_eq!(
        net.engines[RENDEZVOUS].rendezvous_tables().rendezvous(),
        (1, 1)
    );
}

#[test]
fn an_introduction_point_keeps_its_first_service_and_refuses_unknown_ones() {
    let mut net = Net::new(9, 13);
    let first = net.open(SERVICE, &[1, 2, INTRO]).unwrap();
    let hijack = net.open(SENDER, &[7, 6, INTRO]).unwrap();
    net.run();
    let claim = service().intro_claim(&net.ids[INTRO]);
    assert_eq!(
        claim_intro(&mut net, SERVICE, first, &claim),
        Some(vec![STATUS_OK])
    );
    // The same claim again (the point replaying it to itself gains
    // nothing; anyone else never sees it): the first circuit keeps it.
    assert_eq!(
        claim_intro(&mut net, SENDER, hijack, &claim),
        Some(vec![STATUS_REFUSED])
    );
    let mut introduce1 = [0x77u8; 100];
    introduce1[..32].copy_from_slice(&[1; 32]);
    net.with(SENDER, |e, ctx| {
        e.send_relay(ctx, hijack, 2, RelayCommand::Introduce1, &introduce1)
    })
    .unwrap();
    net.run();
    assert_eq!(
        data_of(&net, SENDER, hijack, RelayCommand::IntroduceAck),
        Some(vec![STATUS_REFUSED])
    );
    assert!(data_of(&net, SERVICE, first, RelayCommand::Introduce2).is_none());
}

#[test]
fn a_middle_hop_takes_no_role() {
    let mut net = Net::new(9, 14);
    let circuit = net.open(SENDER, &[7, 6, RENDEZVOUS]).unwrap();
    net.run();
    net.with(SENDER, |e, ctx| {
        e.send_relay(
            ctx,
            circuit,
            1,
            RelayCommand::EstablishRendezvous,
            &[1; COOKIE_LEN],
        )
    })
    .unwrap();
    net.run();
    assert!(closed_with(
        &net.events_of(SENDER),
        circuit,
        DestroyReason::Protocol
    ));
    assert_eq!(net.engines[6].rendezvous_tables().rendezvous(), (0, 0));
}

#[test]
fn rendezvous_roles_are_bounded_and_freed_when_their_circuits_close() {
    let mut net = Net::new(14, 15);
    let point = 13;
    let mut circuits = Vec::new();
    // Nine clients, over four relays' links into the point.
    for client in 0..9 {
        let first = 9 + client % 4;
        let circuit = net.open(client, &[first, point]).unwrap();
        net.run();
        net.with(client, |e, ctx| {
            e.send_relay(
                ctx,
                circuit,
                1,
                RelayCommand::EstablishRendezvous,
                &[client as u8 + 1; COOKIE_LEN],
            )
        })
        .unwrap();
        net.run();
        circuits.push((client, circuit));
    }
    let statuses: Vec<_> = circuits
        .iter()
        .map(|&(client, c)| data_of(&net, client, c, RelayCommand::RendezvousEstablished))
        .collect();
    assert_eq!(statuses[..8], vec![Some(vec![STATUS_OK]); 8][..]);
    assert_eq!(statuses[8], Some(vec![STATUS_REFUSED]), "the table is full");
    assert_eq!(net.engines[point].rendezvous_tables().rendezvous(), (8, 0));
    // A closed circuit frees its role: the table never leaks.
    let (client, first) = circuits[0];
    net.with(client, |e, ctx| e.close(ctx, first)).unwrap();
    net.run();
    assert_eq!(net.engines[point].rendezvous_tables().rendezvous(), (7, 0));
    let again = net.open(client, &[10, point]).unwrap();
    net.run();
    net.with(client, |e, ctx| {
        e.send_relay(
            ctx,
            again,
            1,
            RelayCommand::EstablishRendezvous,
            &[99; COOKIE_LEN],
        )
    })
    .unwrap();
    net.run();
    assert_eq!(
        data_of(&net, client, again, RelayCommand::RendezvousEstablished),
        Some(vec![STATUS_OK])
    );
    // A cookie already waiting is refused for another circuit.
    let twin = net.open(1, &[11, point]).unwrap();
    net.run();
    net.with(1, |e, ctx| {
        e.send_relay(
            ctx,
            twin,
            1,
            RelayCommand::EstablishRendezvous,
            &[99; COOKIE_LEN],
        )
    })
    .unwrap();
    net.run();
    assert_eq!(
        data_of(&net, 1, twin, RelayCommand::RendezvousEstablished),
        Some(vec![STATUS_REFUSED])
    );
}

#[test]
fn only_the_service_key_claims_a_service_and_a_claim_is_good_at_one_point() {
    let mut net = Net::new(9, 16);
    let other_point = RENDEZVOUS;
    let mut answers = Vec::new();
    // A forger names the service's key with a signature of its own; a
    // claim made for another point is replayed here; the old unsigned
    // form (the bare service id).
    let mut forged = service().intro_claim(&net.ids[INTRO]);
    forged[32..].copy_from_slice(
        &ServiceKeys::from_secrets([9; 32], [8; 32]).intro_claim(&net.ids[INTRO])[32..],
    );
    let elsewhere = service().intro_claim(&net.ids[other_point]);
    let bare = service_id().0;
    for claim in [&forged[..], &elsewhere[..], &bare[..]] {
        let circuit = net.open(SENDER, &[7, 6, INTRO]).unwrap();
        net.run();
        answers.push(claim_intro(&mut net, SENDER, circuit, claim));
    }
    assert_eq!(answers, vec![Some(vec![STATUS_REFUSED]); 3]);
    assert_eq!(net.engines[INTRO].rendezvous_tables().introducing(), 0);
    // The service's own claim for this point is still taken.
    let circuit = net.open(SERVICE, &[1, 2, INTRO]).unwrap();
    net.run();
    let claim = service().intro_claim(&net.ids[INTRO]);
    assert_eq!(
        claim_intro(&mut net, SERVICE, circuit, &claim),
        Some(vec![STATUS_OK])
    );
}
