//! The two link handshakes the benches compare, shared by `benches/link.rs`
//! and `examples/handshake_ratio.rs`: version 2's full session handshake
//! and version 1's cryptography (Noise `XX`, plain keys, hellos verified).

use veil_core::identity::Identity;
use veil_core::link::{LinkConfig, LinkHello, LinkParams, LinkRole, LinkSession, CELL_LEN};
use veil_core::noise::StaticKeypair;
use veil_core::time::Instant;

pub const RX: usize = 16 * 1024 + 2;
pub type Session = LinkSession<[u8; RX], veil_core::heapless::Deque<[u8; CELL_LEN], 64>>;

pub struct Side {
    pub keys: StaticKeypair,
    pub hello: [u8; veil_core::link::HELLO_LEN],
}

pub fn side(seed: u8) -> Side {
    let identity = Identity::from_secret_bytes([seed; 32]);
    let keys = StaticKeypair::from_secret_bytes([seed.wrapping_add(100); 32]);
    let hello = LinkHello::new(&identity, &keys.public(), 16_384).emit();
    Side { keys, hello }
}

pub fn session(side: &Side, role: LinkRole, eph: [u8; 32]) -> Session {
    Session::new(
        Instant::ZERO,
        LinkParams {
            role,
            expected_peer: None,
            static_keypair: &side.keys,
            handshake_seed: eph,
            local_id: None,
            answer_unkeyed: true,
            unix_time: 0,
            hello: side.hello,
            local_max_message_len: 16_384,
            // Keep rekeys (a separate, rare frame) out of the per-frame figures.
            config: LinkConfig {
                rekey_after_messages: u64::MAX,
                ..LinkConfig::default()
            },
            channel_binding: None,
        },
    )
}

/// The two sides' handshake seeds for run `n`. Each side draws key pairs
/// until one is representable, two on average, so a fixed seed would time
/// one draw count (seeds 1 and 2 take 2 and 3 draws, a whole key pair more
/// than the mean): the benches step through seeds to time the mean.
pub fn seeds(n: u32) -> ([u8; 32], [u8; 32]) {
    let mut initiator = [1u8; 32];
    let mut responder = [2u8; 32];
    initiator[..4].copy_from_slice(&n.to_le_bytes());
    responder[..4].copy_from_slice(&n.to_le_bytes());
    (initiator, responder)
}

/// Runs the handshake to completion; returns the two established sessions.
pub fn handshake(a: &Side, b: &Side, run: u32) -> (Box<Session>, Box<Session>) {
    let (initiator_seed, responder_seed) = seeds(run);
    let mut i = Box::new(session(a, LinkRole::Initiator, initiator_seed));
    let mut r = Box::new(session(b, LinkRole::Responder, responder_seed));
    let mut buf = [0u8; 600];
    let now = Instant::ZERO;
    for _ in 0..2 {
        while let Some(n) = i.poll_transmit(now, &mut buf) {
            feed(&mut r, now, &buf[..n]);
        }
        while let Some(n) = r.poll_transmit(now, &mut buf) {
            feed(&mut i, now, &buf[..n]);
        }
    }
    assert!(i.was_established() && r.was_established());
    (i, r)
}

/// The cryptography of a version 1 link handshake, in the same run: Noise
/// `XX` with a plain ephemeral key on each side and both hellos verified,
/// the work the link did before Elligator2 keys, marks and masked lengths
/// (link spec §2). Framing, which both versions do, is left out, so the
/// ratio to the full handshake above slightly overstates the new cost.
pub fn handshake_v1_equivalent(a: &Side, b: &Side, run: u32) {
    use veil_core::noise::{HandshakePattern, HandshakeState, Role};
    let new = |role, keys: &StaticKeypair, eph| {
        HandshakeState::new(
            HandshakePattern::XX,
            role,
            b"veil link v1",
            Some(keys),
            eph,
            None,
        )
        .unwrap()
    };
    let (initiator_seed, responder_seed) = seeds(run);
    let mut i = new(Role::Initiator, &a.keys, initiator_seed);
    let mut r = new(Role::Responder, &b.keys, responder_seed);
    let mut m = [0u8; 600];
    let mut p = [0u8; 600];
    let n = i.write_message(&[], &mut m).unwrap();
    r.read_message(&m[..n], &mut p).unwrap();
    let n = r.write_message(&b.hello, &mut m).unwrap();
    let got = i.read_message(&m[..n], &mut p).unwrap();
    let hello = LinkHello::parse(&p[..got]).unwrap();
    hello.verify(&i.remote_static().unwrap()).unwrap();
    let n = i.write_message(&a.hello, &mut m).unwrap();
    let got = r.read_message(&m[..n], &mut p).unwrap();
    let hello = LinkHello::parse(&p[..got]).unwrap();
    hello.verify(&r.remote_static().unwrap()).unwrap();
    let _ = (i.split().unwrap(), r.split().unwrap());
}

/// Feeds `bytes` to `session` and takes every cell it yields (the node's
/// receive path, without the node); returns how many bytes it consumed.
pub fn feed(session: &mut Session, now: Instant, bytes: &[u8]) -> usize {
    let mut consumed = 0;
    loop {
        consumed += session.receive(now, &bytes[consumed..]);
        let mut took = false;
        while session.take_cell().is_some() {
            took = true;
        }
        if !took {
            return consumed;
        }
    }
}
