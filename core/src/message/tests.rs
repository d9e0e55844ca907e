//! Fragmentation, reassembly and resending.

use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use super::*;
use crate::cell::RELAY_DATA_LEN;
use crate::time::Instant;

const M: usize = 4 * 1024;
type Rx = Reassembler<4, M, 16>;
type Tx = Outbox<8, M>;

fn id(n: u8) -> MessageId {
    MessageId([n; MESSAGE_ID_LEN])
}

fn fragments(tx: &mut Tx) -> std::vec::Vec<std::vec::Vec<u8>> {
    let mut out = std::vec::Vec::new();
    let mut buf = [0u8; RELAY_DATA_LEN];
    while let Some(n) = tx.next_fragment(&mut buf) {
        out.push(buf[..n].to_vec());
    }
    out
}

fn deliver_all(
    rx: &mut Rx,
    frags: &[std::vec::Vec<u8>],
) -> std::vec::Vec<(MessageId, std::vec::Vec<u8>)> {
    let mut got = std::vec::Vec::new();
    for f in frags {
        rx.accept(Instant::ZERO, f, |id, m| got.push((id, m.to_vec())))
            .unwrap();
    }
    got
}

proptest! {
    #[test]
    fn messages_survive_any_order_and_duplication(
        lens in proptest::collection::vec(0usize..M, 1..4),
        seed in any::<u64>(),
    ) {
        let mut tx = Tx::new();
        let messages: std::vec::Vec<std::vec::Vec<u8>> = lens
            .iter()
            .enumerate()
            .map(|(i, &len)| (0..len).map(|b| (b * 7 + i) as u8).collect())
            .collect();
        for (i, m) in messages.iter().enumerate() {
            tx.push(id(i as u8), m).unwrap();
        }
        let mut frags = fragments(&mut tx);
        // Every fragment twice, in a random order.
        frags.extend(frags.clone());
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        for i in (1..frags.len()).rev() {
            frags.swap(i, rng.next_u32() as usize % (i + 1));
        }
        let mut rx = Rx::new();
        let got = deliver_all(&mut rx, &frags);
        prop_assert_eq!(got.len(), messages.len(), "each message exactly once");
        for (i, m) in messages.iter().enumerate() {
            let found = got.iter().find(|(g, _)| *g == id(i as u8)).map(|(_, b)| b);
            prop_assert_eq!(found, Some(m));
        }
    }

    #[test]
    fn parsing_never_panics(data in proptest::collection::vec(any::<u8>(), 0..RELAY_DATA_LEN)) {
        let mut rx = Rx::new();
        let _ = rx.accept(Instant::ZERO, &data, |_, _| {});
    }
}

#[test]
fn a_resent_message_is_delivered_once_and_acknowledged_again() {
    let mut tx = Tx::new();
    tx.push(id(1), &[5; 1500]).unwrap();
    let first = fragments(&mut tx);
    assert_eq!(first.len(), 1500usize.div_ceil(FRAGMENT_LEN));
    let mut rx = Rx::new();
    // Only part arrives before the circuit dies.
    assert!(deliver_all(&mut rx, &first[..2]).is_empty());
    tx.resend_all();
    let again = fragments(&mut tx);
    assert_eq!(again, first, "the whole message goes again");
    let got = deliver_all(&mut rx, &again);
    assert_eq!(got, vec![(id(1), vec![5; 1500])]);
    // A third copy (say the ack was lost) is a duplicate, not a delivery.
    let result = rx.accept(Instant::ZERO, &again[0], |_, _| panic!("delivered twice"));
    assert_eq!(result, Ok(Received::Duplicate(id(1))));
    assert!(tx.ack(&id(1)));
    assert!(!tx.ack(&id(1)));
    assert_eq!(tx.pending(), 0);
}

#[test]
fn the_outbox_and_message_limits_hold() {
    let mut tx = Tx::new();
    assert_eq!(
        tx.push(id(0), &[0; M + 1]),
        Err(OutboxError::TooLarge(M + 1))
    );
    for i in 0..8 {
        tx.push(id(i), b"x").unwrap();
    }
    assert_eq!(tx.push(id(9), b"x"), Err(OutboxError::Full));
    let empty = {
        let mut t = Tx::new();
        t.push(id(3), b"").unwrap();
        fragments(&mut t)
    };
    assert_eq!(empty.len(), 1);
    let got = deliver_all(&mut Rx::new(), &empty);
    assert_eq!(got, vec![(id(3), vec![])]);
}

#[test]
fn hostile_fragments_are_refused() {
    let mut rx = Rx::new();
    let mut frag = vec![0u8; FRAGMENT_HEADER_LEN];
    frag[16..20].copy_from_slice(&(M as u32 + 1).to_be_bytes());
    assert_eq!(
        rx.accept(Instant::ZERO, &frag, |_, _| {}),
        Err(ReassemblyError::Fragment(FragmentError::TooLarge(
            M as u32 + 1
        )))
    );
    let header = |total: u32, offset: u32| {
        let mut f = vec![1u8; MESSAGE_ID_LEN];
        f.extend_from_slice(&total.to_be_bytes());
        f.extend_from_slice(&offset.to_be_bytes());
        f
    };
    let mut misaligned = header(1000, 7);
    misaligned.extend_from_slice(&[0; 100]);
    assert_eq!(
        rx.accept(Instant::ZERO, &misaligned, |_, _| {}),
        Err(ReassemblyError::Fragment(FragmentError::BadOffset))
    );
    let mut short = header(1000, 0);
    short.extend_from_slice(&[0; 10]);
    assert_eq!(
        rx.accept(Instant::ZERO, &short, |_, _| {}),
        Err(ReassemblyError::Fragment(FragmentError::BadLength))
    );
    assert_eq!(
        rx.accept(Instant::ZERO, &[0; 5], |_, _| {}),
        Err(ReassemblyError::Fragment(FragmentError::Truncated))
    );
    // Two fragments of one message that disagree on its length.
    let mut a = header(1000, 0);
    a.extend_from_slice(&[0; FRAGMENT_LEN]);
    rx.accept(Instant::ZERO, &a, |_, _| {}).unwrap();
    let mut b = header(2000, FRAGMENT_LEN as u32);
    b.extend_from_slice(&[0; FRAGMENT_LEN]);
    assert_eq!(
        rx.accept(Instant::ZERO, &b, |_, _| {}),
        Err(ReassemblyError::Inconsistent)
    );
}

#[test]
fn unfinished_messages_cannot_block_the_reassembler() {
    let mut rx = Rx::new();
    // An attacker starts four messages and never finishes them.
    for n in 0..4u8 {
        let mut tx = Tx::new();
        tx.push(id(100 + n), &[n; 2000]).unwrap();
        let frags = fragments(&mut tx);
        rx.accept(Instant::from_millis(u64::from(n)), &frags[0], |_, _| {})
            .unwrap();
    }
    assert_eq!(rx.in_progress(), 4);
    // A real message still gets through: it takes the oldest slot.
    let mut tx = Tx::new();
    tx.push(id(1), &[9; 1000]).unwrap();
    let mut got = None;
    for f in fragments(&mut tx) {
        rx.accept(Instant::from_millis(10), &f, |i, m| {
            got = Some((i, m.len()))
        })
        .unwrap();
    }
    assert_eq!(got, Some((id(1), 1000)));
    assert_eq!(rx.in_progress(), 3, "the oldest unfinished one was dropped");
    assert_eq!(rx.expire(Instant::from_millis(3)), 2);
}
