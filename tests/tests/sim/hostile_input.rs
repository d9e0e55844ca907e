//! Hostile input against the link layer: each attack gets a typed close
//! reason, only the attacked link suffers, and the node's memory is the
//! fixed table it was built with.

use crate::common;

use std::cell::RefCell;
use std::rc::Rc;

use common::*;
use veil_core::link::obfs::{first_message_header, masked, HiddenEphemeral};
use veil_core::link::{CloseReason, ClosedBy, LinkPhase};
use veil_core::node::{Event, LinkId, NodeConfig, OpenLinkError};
use veil_core::time::Duration;
use veil_sim::{Direction, Sim, StreamConditions};

/// Link-level tests: circuit cells go to the test, not to circuits.
fn config() -> NodeConfig {
    NodeConfig {
        link_only: true,
        ..NodeConfig::default()
    }
}

/// A node with one healthy established link to a witness, for checking
/// that attacks on other links leave it alone.
fn with_witness(seed: u64, cfg: NodeConfig, links: usize) -> (Sim, usize, usize, LinkId, LinkId) {
    let mut sim = Sim::new(seed);
    let target = sim.add_node(cfg, links);
    let witness = sim.add_node(cfg, 4);
    let wire = sim.connect(witness, target, StreamConditions::LAN);
    let (_, lw) = sim.end(wire, Direction::Forward);
    let (_, lt) = sim.end(wire, Direction::Backward);
    sim.run_for(Duration::from_millis(100));
    assert!(established_peer(&sim, target, lt).is_some());
    (sim, target, witness, lt, lw)
}

fn witness_still_works(
    sim: &mut Sim,
    target: usize,
    witness: usize,
    lt: LinkId,
    lw: LinkId,
    n: u64,
) {
    sim.send_cell(witness, lw, &numbered_cell(n))
        .expect("witness link still open");
    sim.send_cell(target, lt, &numbered_cell(n))
        .expect("target side still open");
    sim.run_for(Duration::from_millis(50));
    assert_eq!(
        cells_received(sim, target, lt).last(),
        Some(&numbered_cell(n))
    );
    assert_eq!(
        cells_received(sim, witness, lw).last(),
        Some(&numbered_cell(n))
    );
    assert_eq!(closed(sim, target, lt), None);
}

/// The mark epoch of a simulated node: its clock starts at Unix time 0 and
/// these tests run for less than ten minutes.
const SIM_EPOCH: u64 = 0;

/// A first message with no padding, marked with `key`, from an ephemeral
/// key drawn from `seed`.
fn first_message(key: &[u8; 32], seed: u8) -> Vec<u8> {
    first_message_at(key, seed, SIM_EPOCH)
}

/// The same, marked for mark epoch `epoch`.
fn first_message_at(key: &[u8; 32], seed: u8, epoch: u64) -> Vec<u8> {
    let hidden = HiddenEphemeral::generate([seed; 32]).unwrap();
    first_message_header(key, &hidden.representative, epoch, 0).to_vec()
}

/// Whether `target` answers `probe` on a fresh inbound link with message 2.
fn answers(sim: &mut Sim, target: usize, probe: &[u8]) -> bool {
    let link = sim.open_half_open(target).unwrap();
    sim.inject(target, link, probe);
    !sim.take_unwired_output(target, link).is_empty()
}

/// Feeds `probe` to a fresh inbound link of `target` and follows it until
/// it closes: returns how long after the probe it closed, having checked
/// that the target never sent a byte and kept the link open past the
/// shortest read-on (1 s, link spec §2.2).
fn silent_end_of(sim: &mut Sim, target: usize, probe: &[u8]) -> Duration {
    let link = sim.open_half_open(target).unwrap();
    let start = sim.now();
    sim.inject(target, link, probe);
    sim.run_for(Duration::from_millis(900));
    assert_eq!(closed(sim, target, link), None, "closed before 1 s");
    let mut waited = 0;
    while closed(sim, target, link).is_none() {
        sim.run_for(Duration::from_millis(50));
        waited += 1;
        assert!(waited < 400, "the link outlived its handshake timeout");
    }
    assert_eq!(
        closed(sim, target, link),
        Some((CloseReason::ProtocolViolation, ClosedBy::Local))
    );
    assert!(
        sim.take_unwired_output(target, link).is_empty(),
        "the target answered a probe"
    );
    sim.now().saturating_since(start)
}

#[test]
fn garbage_instead_of_a_handshake_is_read_on_then_dropped_in_silence() {
    let (mut sim, target, witness, lt, lw) = with_witness(10, config(), 8);
    // Longer than message 1's 50-byte header: its "mark" is checked, fails,
    // and the target reads on, answering nothing, then closes.
    silent_end_of(
        &mut sim,
        target,
        b"GET / HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8.0\r\nAccept: */*\r\n\r\n",
    );
    witness_still_works(&mut sim, target, witness, lt, lw, 1);
}

#[test]
fn every_probe_gets_the_same_silence_and_a_random_end() {
    let mut sim = Sim::new(20);
    let target = sim.add_node(config(), 8);
    let stranger = [0x5au8; 32];
    // A plain Noise first message, as version 1 sent it: `00 20` ‖ key.
    let mut plain_noise = vec![0u8, 32];
    plain_noise
        .extend_from_slice(&veil_core::noise::StaticKeypair::from_secret_bytes([3; 32]).public());
    plain_noise.extend_from_slice(&[0u8; 30]);
    let probes: Vec<(&str, Vec<u8>)> = vec![
        (
            "random bytes",
            (0..200u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect(),
        ),
        ("marked for another node", first_message(&stranger, 0x31)),
        (
            "marked two epochs ahead",
            first_message_at(&[0; 32], 0x32, SIM_EPOCH + 2),
        ),
        ("plain Noise", plain_noise),
        ("a few bytes short of a header", vec![0x42; 49]),
    ];
    let mut ends = Vec::new();
    for (name, probe) in &probes {
        if probe.len() < 50 {
            // Too short to be judged: the handshake timeout ends it.
            let link = sim.open_half_open(target).unwrap();
            sim.inject(target, link, probe);
            sim.run_for(Duration::from_secs(11));
            assert_eq!(
                closed(&sim, target, link),
                Some((CloseReason::HandshakeTimeout, ClosedBy::Local)),
                "{name}"
            );
            assert!(sim.take_unwired_output(target, link).is_empty(), "{name}");
            continue;
        }
        let end = silent_end_of(&mut sim, target, probe);
        assert!(end <= Duration::from_secs(11), "{name}: {end:?}");
        ends.push(end);
    }
    // The moment of the close is drawn per connection, not fixed.
    ends.sort();
    ends.dedup();
    assert!(ends.len() >= 2, "close times {ends:?}");
}

#[test]
fn a_replayed_first_message_is_refused_in_silence() {
    let (mut sim, target, witness, lt, lw) = with_witness(22, config(), 8);
    let recorded = first_message(&[0; 32], 0x23);
    assert!(
        answers(&mut sim, target, &recorded),
        "the original is answered"
    );
    // The same bytes again, as an observer who recorded them would send
    // them: refused like any unmarked message (link spec §2.2).
    silent_end_of(&mut sim, target, &recorded);
    assert_eq!(sim.node(target).core.stats().inbound_refused.replayed, 1);
    // Another dialler's fresh first message is still answered.
    assert!(answers(&mut sim, target, &first_message(&[0; 32], 0x24)));
    witness_still_works(&mut sim, target, witness, lt, lw, 3);
}

#[test]
fn a_mark_of_the_epoch_either_side_is_answered_and_no_further() {
    let mut sim = Sim::new(23);
    let target = sim.add_node(config(), 8);
    sim.run_for(Duration::from_secs(600 * 5));
    // The target's clock is now in epoch 5 (Unix time 3,000 s).
    for (epoch, answered) in [(3, false), (4, true), (5, true), (6, true), (7, false)] {
        let probe = first_message_at(&[0; 32], 0x40 + epoch as u8, epoch);
        assert_eq!(answers(&mut sim, target, &probe), answered, "epoch {epoch}");
    }
}

#[test]
fn a_probe_resistant_node_answers_only_a_mark_under_its_id() {
    let mut sim = Sim::new(24);
    let target = sim.add_node(
        NodeConfig {
            answer_unkeyed_dials: false,
            ..config()
        },
        8,
    );
    let id = *sim.node_id(target).as_bytes();
    assert!(answers(&mut sim, target, &first_message(&id, 0x51)));
    // A dialler that knows only the address gets silence.
    silent_end_of(&mut sim, target, &first_message(&[0; 32], 0x52));
    // The default answers it.
    let open = sim.add_node(config(), 8);
    assert!(answers(&mut sim, open, &first_message(&[0; 32], 0x52)));
}

#[test]
fn a_prober_that_keeps_writing_is_cut_off_after_at_most_16_kib() {
    let mut sim = Sim::new(21);
    let target = sim.add_node(config(), 8);
    let link = sim.open_half_open(target).unwrap();
    let flood: Vec<u8> = (0..20_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    sim.inject(target, link, &flood[..300]);
    assert_eq!(closed(&sim, target, link), None, "read on after 300 bytes");
    sim.inject(target, link, &flood[300..]);
    assert_eq!(
        closed(&sim, target, link),
        Some((CloseReason::ProtocolViolation, ClosedBy::Local))
    );
    assert!(sim.take_unwired_output(target, link).is_empty());
}

#[test]
fn a_correctly_sized_but_bogus_first_message_then_a_bad_second_is_refused() {
    let (mut sim, target, witness, lt, lw) = with_witness(11, config(), 8);
    let attacker = sim.open_half_open(target).unwrap();
    // A well-formed message 1 from a dialler that knows only the address:
    // a representative, its mark under the all-zero key, no padding.
    sim.inject(target, attacker, &first_message(&[0; 32], 0x21));
    assert_eq!(
        sim.node(target).core.link_info(attacker).unwrap().phase,
        LinkPhase::Handshaking
    );
    // Message 3 of a valid length (its length masked as the target
    // expects) but forged: authentication fails.
    let mask = sim
        .node(target)
        .core
        .next_receive_length_mask(attacker)
        .expect("the length keys follow message 2");
    let mut m3 = masked(164u16.to_be_bytes(), mask).to_vec();
    m3.extend_from_slice(&[9u8; 164]);
    sim.inject(target, attacker, &m3);
    assert_eq!(
        closed(&sim, target, attacker),
        Some((CloseReason::AuthenticationFailed, ClosedBy::Local))
    );
    witness_still_works(&mut sim, target, witness, lt, lw, 2);
}

#[test]
fn truncated_handshake_then_disconnect_leaves_no_trace() {
    let (mut sim, target, witness, lt, lw) = with_witness(12, config(), 8);
    let attacker = sim.open_half_open(target).unwrap();
    sim.inject(target, attacker, &[0, 32, 1, 2, 3]);
    assert_eq!(closed(&sim, target, attacker), None);
    // The attacker goes quiet mid-message.
    sim.run_for(Duration::from_secs(11));
    assert_eq!(
        closed(&sim, target, attacker),
        Some((CloseReason::HandshakeTimeout, ClosedBy::Local))
    );
    witness_still_works(&mut sim, target, witness, lt, lw, 3);
}

/// Records every byte one direction of a wire carries.
fn record(sim: &mut Sim, wire: veil_sim::WireId, dir: Direction) -> Rc<RefCell<Vec<u8>>> {
    let log = Rc::new(RefCell::new(Vec::new()));
    let sink = log.clone();
    sim.tamper(
        wire,
        dir,
        Box::new(move |_, bytes| sink.borrow_mut().extend_from_slice(bytes)),
    );
    log
}

/// A message out of its place is refused: its length is unmasked with
/// the mask of the place it arrived at, so it reads as a length the node
/// refuses at once (too large or too short) or, if it happens to be a
/// valid one, the AEAD's nonce fails it.
fn assert_refused_out_of_order(sim: &Sim, node: usize, link: LinkId) {
    let reason = closed(sim, node, link).map(|(reason, by)| {
        assert_eq!(by, ClosedBy::Local);
        reason
    });
    assert!(
        matches!(
            reason,
            Some(
                CloseReason::AuthenticationFailed
                    | CloseReason::MessageTooLarge
                    | CloseReason::ProtocolViolation
            )
        ),
        "closed: {reason:?}"
    );
}

#[test]
fn a_replayed_transport_message_is_rejected() {
    let Pair {
        mut sim,
        a,
        b,
        la,
        lb,
        wire,
    } = pair(13, config(), StreamConditions::LAN);
    let log = record(&mut sim, wire, Direction::Forward);
    sim.run_for(Duration::from_millis(100));
    let before = log.borrow().len();
    sim.send_cell(a, la, &numbered_cell(1)).unwrap();
    sim.run_for(Duration::from_millis(5));
    assert_eq!(cells_received(&sim, b, lb).len(), 1);
    // The one message a sent: the cell.
    let last = log.borrow()[before..].to_vec();
    sim.inject(b, lb, &last);
    assert_refused_out_of_order(&sim, b, lb);
    assert_eq!(
        cells_received(&sim, b, lb).len(),
        1,
        "the replay delivered nothing"
    );
}

#[test]
fn reordered_transport_messages_are_rejected() {
    let Pair {
        mut sim,
        a,
        b,
        la,
        lb,
        wire,
    } = pair(14, config(), StreamConditions::LAN);
    let log = record(&mut sim, wire, Direction::Forward);
    sim.run_for(Duration::from_millis(100));
    // Hold a's next two messages back, then deliver the second first.
    sim.silence(wire, Direction::Forward);
    sim.send_cell(a, la, &numbered_cell(1)).unwrap();
    sim.run_for(Duration::from_millis(5));
    let first_end = log.borrow().len();
    sim.send_cell(a, la, &numbered_cell(2)).unwrap();
    sim.run_for(Duration::from_millis(5));
    let second = log.borrow()[first_end..].to_vec();
    assert!(!second.is_empty(), "a sent its second message");
    sim.inject(b, lb, &second);
    assert_refused_out_of_order(&sim, b, lb);
    assert!(cells_received(&sim, b, lb).is_empty());
}

#[test]
fn an_oversized_length_is_refused_before_buffering() {
    let mut cfg = config();
    cfg.max_message_len = 2_000;
    let mut sim = Sim::new(15);
    let a = sim.add_node(cfg, 4);
    let b = sim.add_node(cfg, 4);
    let wire = sim.connect(a, b, StreamConditions::LAN);
    let (_, lb) = sim.end(wire, Direction::Backward);
    sim.run_for(Duration::from_millis(100));
    assert!(established_peer(&sim, b, lb).is_some());
    let mask = sim.node(b).core.next_receive_length_mask(lb).unwrap();
    sim.inject(b, lb, &masked([0xff, 0xff], mask));
    assert_eq!(
        closed(&sim, b, lb),
        Some((CloseReason::MessageTooLarge, ClosedBy::Local))
    );
}

#[test]
fn a_message_that_is_too_short_to_hold_a_frame_is_refused() {
    let mut sim = Sim::new(16);
    let a = sim.add_node(config(), 4);
    let b = sim.add_node(config(), 4);
    let wire = sim.connect(a, b, StreamConditions::LAN);
    let (_, lb) = sim.end(wire, Direction::Backward);
    sim.run_for(Duration::from_millis(100));
    let mask = sim.node(b).core.next_receive_length_mask(lb).unwrap();
    let mut short = masked(3u16.to_be_bytes(), mask).to_vec();
    short.extend_from_slice(&[1, 2, 3]);
    sim.inject(b, lb, &short);
    assert_eq!(
        closed(&sim, b, lb),
        Some((CloseReason::ProtocolViolation, ClosedBy::Local))
    );
}

#[test]
fn a_full_table_refuses_new_links_with_a_typed_error() {
    let mut sim = Sim::new(18);
    let hub = sim.add_node(config(), 3);
    for _ in 0..3 {
        let peer = sim.add_node(config(), 2);
        sim.connect(peer, hub, StreamConditions::LAN);
    }
    sim.run_for(Duration::from_millis(100));
    assert_eq!(sim.node(hub).core.links().count(), 3);
    assert_eq!(sim.try_dial(hub), Err(OpenLinkError::TableFull));
    // Inbound connections are refused too: no half-open link to evict.
    assert_eq!(sim.open_half_open(hub), None);
    assert!(sim
        .node(hub)
        .core
        .links()
        .all(|l| l.phase == LinkPhase::Established));
}

#[test]
fn a_peer_claiming_an_identity_it_cannot_sign_for_is_refused() {
    use veil_core::identity::Identity;
    use veil_core::link::obfs::{length_keys, point_of};
    use veil_core::link::{LinkHello, PROLOGUE};
    use veil_core::noise::{HandshakePattern, HandshakeState, Role, StaticKeypair};

    let (mut sim, target, witness, lt, lw) = with_witness(19, config(), 8);
    let victim = Identity::from_secret_bytes([0x77; 32]);
    let attacker = Identity::from_secret_bytes([0x66; 32]);
    let attacker_static = StaticKeypair::from_secret_bytes([0x55; 32]);
    // The attacker runs a real Noise XX handshake with its own static key,
    // on the obfuscated wire...
    let hidden = HiddenEphemeral::generate([0x44; 32]).unwrap();
    let mut noise = HandshakeState::with_ephemeral(
        HandshakePattern::XX,
        Role::Initiator,
        PROLOGUE,
        Some(&attacker_static),
        hidden.keypair.clone(),
        None,
    )
    .unwrap();
    let link = sim.open_half_open(target).unwrap();
    let mut point = [0u8; 32];
    noise.write_message(&[], &mut point).unwrap();
    sim.inject(
        target,
        link,
        &first_message_header(&[0; 32], &hidden.representative, SIM_EPOCH, 0),
    );
    let reply = sim.take_unwired_output(target, link);
    let representative: [u8; 32] = reply[..32].try_into().unwrap();
    let ee = noise
        .ephemeral_agreement(&point_of(&representative))
        .unwrap();
    let (mut i2r, mut r2i) = length_keys(&ee, &hidden.representative, &representative);
    let rest_len = u16::from_be_bytes(masked(
        reply[32..34].try_into().unwrap(),
        r2i.next_mask().unwrap(),
    )) as usize;
    assert_eq!(reply.len(), 34 + rest_len, "target answered with message 2");
    let mut m2 = point_of(&representative).to_vec();
    m2.extend_from_slice(&reply[34..]);
    let mut payload = [0u8; 512];
    noise.read_message(&m2, &mut payload).unwrap();
    // ...but its hello claims the victim's identity, with a signature the
    // attacker made over its own static key with its own identity key.
    let forged = LinkHello {
        identity: victim.public(),
        ..LinkHello::new(&attacker, &attacker_static.public(), 16_384)
    };
    let mut out = [0u8; 512];
    let n = noise.write_message(&forged.emit(), &mut out[2..]).unwrap();
    let prefix = masked((n as u16).to_be_bytes(), i2r.next_mask().unwrap());
    out[..2].copy_from_slice(&prefix);
    sim.inject(target, link, &out[..2 + n]);
    assert_eq!(
        closed(&sim, target, link),
        Some((CloseReason::IdentityMismatch, ClosedBy::Local))
    );
    assert!(!sim.node(target).events.iter().any(|(_, e)| matches!(
        e,
        Event::LinkEstablished { peer, .. } if *peer == victim.node_id()
    )));
    witness_still_works(&mut sim, target, witness, lt, lw, 5);
}
