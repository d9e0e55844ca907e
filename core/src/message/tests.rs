//! Fragmentation, reassembly and resending, on the message pool.

use chacha20::ChaCha20Rng;
use proptest::prelude::*;
use rand_core::{Rng, SeedableRng};

use super::*;
use crate::cell::{CircuitId, RELAY_DATA_LEN};
use crate::circuit::CircuitHandle;
use crate::identity::NodeId;
use crate::link::LinkId;
use crate::time::{Duration, Instant};

const M: usize = 4 * 1024;
type Pool = MessagePool<Vec<MessageSlot<[u8; M]>>, [u8; M]>;

fn pool(slots: usize) -> Pool {
    MessagePool::new((0..slots).map(|_| MessageSlot::new()).collect())
}

fn id(n: u8) -> MessageId {
    MessageId([n; MESSAGE_ID_LEN])
}

const DEST: NodeId = NodeId([7; 32]);
const CIRCUIT: CircuitHandle = CircuitHandle(1);
const ROUTE: Route = Route::Circuit {
    circuit: CIRCUIT,
    destination: DEST,
};

fn sender() -> Sender {
    sender_on(5)
}

/// The sender at the other end of circuit `id`.
fn sender_on(id: u32) -> Sender {
    Sender::Anonymous(ReplyTo((LinkId::new(0, 0), CircuitId(id))))
}

/// The fragments of a `len`-byte message `id`.
fn message_fragments(id: MessageId, len: usize) -> Vec<Vec<u8>> {
    let mut tx = pool(2);
    tx.queue(Instant::ZERO, id, Target::Node(DEST), &vec![id.0[0]; len])
        .unwrap();
    fragments(&mut tx)
}

fn fragments(tx: &mut Pool) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; RELAY_DATA_LEN];
    while let Some(n) = tx.next_fragment(Instant::ZERO, ROUTE, &mut buf) {
        out.push(buf[..n].to_vec());
    }
    out
}

/// Feeds fragments and takes every message that completes.
fn deliver_all(rx: &mut Pool, frags: &[Vec<u8>]) -> Vec<(MessageId, Vec<u8>)> {
    let mut got = Vec::new();
    let mut buf = vec![0u8; M];
    for f in frags {
        rx.accept(Instant::ZERO, f, sender()).unwrap();
        while let Some(m) = rx.take(&mut buf).unwrap() {
            got.push((m.id, buf[..m.len].to_vec()));
        }
    }
    got
}

proptest! {
    #[test]
    fn messages_survive_any_order_and_duplication(
        lens in proptest::collection::vec(0usize..M, 1..4),
        seed in any::<u64>(),
    ) {
        let mut tx = pool(8);
        let messages: Vec<Vec<u8>> = lens
            .iter()
            .enumerate()
            .map(|(i, &len)| (0..len).map(|b| (b * 7 + i) as u8).collect())
            .collect();
        for (i, m) in messages.iter().enumerate() {
            tx.queue(Instant::ZERO, id(i as u8), Target::Node(DEST), m).unwrap();
        }
        let mut frags = fragments(&mut tx);
        // Every fragment twice, in a random order.
        frags.extend(frags.clone());
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        for i in (1..frags.len()).rev() {
            frags.swap(i, rng.next_u32() as usize % (i + 1));
        }
        // 16 incoming slots: one sender may hold 4 unfinished messages,
        // more than the 3 interleaved here.
        let mut rx = pool(32);
        let got = deliver_all(&mut rx, &frags);
        prop_assert_eq!(got.len(), messages.len(), "each message exactly once");
        for (i, m) in messages.iter().enumerate() {
            let found = got.iter().find(|(g, _)| *g == id(i as u8)).map(|(_, b)| b);
            prop_assert_eq!(found, Some(m));
        }
    }

    #[test]
    fn parsing_never_panics(data in proptest::collection::vec(any::<u8>(), 0..RELAY_DATA_LEN)) {
        let mut rx = pool(2);
        let _ = rx.accept(Instant::ZERO, &data, sender());
    }
}

#[test]
fn a_resent_message_is_delivered_once_and_acknowledged_again() {
    let mut tx = pool(2);
    tx.queue(Instant::ZERO, id(1), Target::Node(DEST), &[5; 1500])
        .unwrap();
    let first = fragments(&mut tx);
    assert_eq!(first.len(), 1500usize.div_ceil(FRAGMENT_LEN));
    assert!(tx.circuit_busy(CIRCUIT));
    let mut rx = pool(2);
    // Only part arrives before the circuit dies. It was sent whole, so it
    // keeps its id: the destination may hold it complete.
    assert!(deliver_all(&mut rx, &first[..2]).is_empty());
    tx.circuit_closed(CIRCUIT, || id(99));
    assert!(!tx.circuit_busy(CIRCUIT));
    let again = fragments(&mut tx);
    assert_eq!(again, first, "the whole message goes again");
    let got = deliver_all(&mut rx, &again);
    assert_eq!(got, vec![(id(1), vec![5; 1500])]);
    // A third copy (say the ack was lost) is a duplicate, not a delivery.
    let result = rx.accept(Instant::ZERO, &again[0], sender());
    assert_eq!(result, Ok(Received::Duplicate(id(1))));
    assert_eq!(rx.take(&mut [0u8; 8]), Ok(None));
    assert_eq!(tx.acknowledge(&id(1)), Some(id(1)));
    assert_eq!(tx.acknowledge(&id(1)), None);
    assert_eq!(tx.outgoing(), 0);
}

/// Issue 16, attack 8: a message cut off part-way by a dying circuit goes
/// again under a fresh wire id, so the destination cannot link the new
/// circuit to the old by it, and is still delivered once.
#[test]
fn a_message_cut_off_part_way_goes_again_under_a_fresh_wire_id() {
    let mut tx = pool(2);
    tx.queue(Instant::ZERO, id(1), Target::Node(DEST), &[5; 1500])
        .unwrap();
    let mut buf = [0u8; RELAY_DATA_LEN];
    let first: Vec<Vec<u8>> = (0..2)
        .map(|_| {
            let n = tx.next_fragment(Instant::ZERO, ROUTE, &mut buf).unwrap();
            buf[..n].to_vec()
        })
        .collect();
    let mut rx = pool(2);
    assert!(deliver_all(&mut rx, &first).is_empty());
    tx.circuit_closed(CIRCUIT, || id(2));
    let again = fragments(&mut tx);
    assert_eq!(again.len(), 1500usize.div_ceil(FRAGMENT_LEN), "whole again");
    assert!(
        again
            .iter()
            .all(|f| !f.windows(MESSAGE_ID_LEN).any(|w| w == id(1).0)),
        "the old id is not on the wire"
    );
    let got = deliver_all(&mut rx, &again);
    assert_eq!(got, vec![(id(2), vec![5; 1500])], "delivered once");
    // The destination acknowledges the wire id; the application hears of
    // the id it was given.
    assert_eq!(tx.acknowledge(&id(1)), None);
    assert_eq!(tx.acknowledge(&id(2)), Some(id(1)));
    assert_eq!(tx.outgoing(), 0);
}

#[test]
fn unacknowledged_messages_are_resent_then_given_up() {
    let mut tx = pool(2);
    tx.queue(Instant::ZERO, id(1), Target::Node(DEST), b"hello")
        .unwrap();
    assert_eq!(fragments(&mut tx).len(), 1);
    let resend = Duration::from_secs(2);
    let give_up = Duration::from_secs(10);
    assert_eq!(
        tx.next_deadline(resend, give_up),
        Some(Instant::from_millis(2_000))
    );
    let mut expired = Vec::new();
    tx.on_timeout(Instant::from_millis(2_000), resend, give_up, |i| {
        expired.push(i)
    });
    assert_eq!(fragments(&mut tx).len(), 1, "rewound after 2 s");
    tx.on_timeout(Instant::from_millis(10_000), resend, give_up, |i| {
        expired.push(i)
    });
    assert_eq!(expired, vec![id(1)]);
    assert_eq!(tx.outgoing(), 0);
}

#[test]
fn the_pool_and_message_limits_hold() {
    let mut tx = pool(8);
    assert_eq!(
        tx.queue(Instant::ZERO, id(0), Target::Node(DEST), &[0; M + 1]),
        Err(QueueError::TooLarge { len: M + 1, max: M })
    );
    // Outgoing messages may take half the pool.
    for i in 0..4 {
        tx.queue(Instant::ZERO, id(i), Target::Node(DEST), b"x")
            .unwrap();
    }
    assert_eq!(
        tx.queue(Instant::ZERO, id(9), Target::Node(DEST), b"x"),
        Err(QueueError::Full)
    );
    let empty = {
        let mut t = pool(2);
        t.queue(Instant::ZERO, id(3), Target::Node(DEST), b"")
            .unwrap();
        fragments(&mut t)
    };
    assert_eq!(empty.len(), 1);
    let got = deliver_all(&mut pool(2), &empty);
    assert_eq!(got, vec![(id(3), vec![])]);
}

#[test]
fn hostile_fragments_are_refused() {
    let mut rx = pool(4);
    let mut frag = vec![0u8; FRAGMENT_HEADER_LEN];
    frag[16..20].copy_from_slice(&(M as u32 + 1).to_be_bytes());
    assert_eq!(
        rx.accept(Instant::ZERO, &frag, sender()),
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
        rx.accept(Instant::ZERO, &misaligned, sender()),
        Err(ReassemblyError::Fragment(FragmentError::BadOffset))
    );
    let mut short = header(1000, 0);
    short.extend_from_slice(&[0; 10]);
    assert_eq!(
        rx.accept(Instant::ZERO, &short, sender()),
        Err(ReassemblyError::Fragment(FragmentError::BadLength))
    );
    assert_eq!(
        rx.accept(Instant::ZERO, &[0; 5], sender()),
        Err(ReassemblyError::Fragment(FragmentError::Truncated))
    );
    // Two fragments of one message that disagree on its length.
    let mut a = header(1000, 0);
    a.extend_from_slice(&[0; FRAGMENT_LEN]);
    rx.accept(Instant::ZERO, &a, sender()).unwrap();
    let mut b = header(2000, FRAGMENT_LEN as u32);
    b.extend_from_slice(&[0; FRAGMENT_LEN]);
    assert_eq!(
        rx.accept(Instant::ZERO, &b, sender()),
        Err(ReassemblyError::Inconsistent)
    );
}

#[test]
fn unfinished_messages_cannot_block_reassembly() {
    // Eight slots: four for incoming messages.
    let mut rx = pool(8);
    // An attacker starts four messages over four circuits and never
    // finishes them.
    for n in 0..4u8 {
        let mut tx = pool(2);
        tx.queue(Instant::ZERO, id(100 + n), Target::Node(DEST), &[n; 2000])
            .unwrap();
        let frags = fragments(&mut tx);
        let on = sender_on(100 + u32::from(n));
        rx.accept(Instant::from_millis(u64::from(n)), &frags[0], on)
            .unwrap();
    }
    assert_eq!(rx.incoming(), 4);
    // A real message still gets through: it takes the latest one's slot.
    let mut tx = pool(2);
    tx.queue(Instant::ZERO, id(1), Target::Node(DEST), &[9; 1000])
        .unwrap();
    let mut last = Received::Partial;
    for f in fragments(&mut tx) {
        last = rx.accept(Instant::from_millis(10), &f, sender()).unwrap();
    }
    assert_eq!(
        last,
        Received::Complete {
            id: id(1),
            len: 1000
        }
    );
    assert_eq!(rx.incoming(), 4, "the latest unfinished one was dropped");
    assert_eq!(rx.expire_incoming(Instant::from_millis(3)), 3);
    // Incoming messages never take the outgoing half.
    assert!(rx
        .queue(Instant::ZERO, id(50), Target::Node(DEST), b"out")
        .is_ok());
}

#[test]
fn complete_untaken_messages_are_never_evicted() {
    let mut rx = pool(4);
    let mut buf = [0u8; RELAY_DATA_LEN];
    for n in 0..2u8 {
        let mut tx = pool(2);
        tx.queue(Instant::ZERO, id(n), Target::Node(DEST), &[n; 10])
            .unwrap();
        let len = tx.next_fragment(Instant::ZERO, ROUTE, &mut buf).unwrap();
        rx.accept(Instant::ZERO, &buf[..len], sender()).unwrap();
    }
    assert_eq!(rx.ready(), 2);
    assert!(!rx.has_incoming_room());
    let mut tx = pool(2);
    tx.queue(Instant::ZERO, id(9), Target::Node(DEST), b"late")
        .unwrap();
    let len = tx.next_fragment(Instant::ZERO, ROUTE, &mut buf).unwrap();
    assert_eq!(
        rx.accept(Instant::ZERO, &buf[..len], sender()),
        Err(ReassemblyError::NoRoom)
    );
    let mut out = [0u8; 10];
    let first = rx.take(&mut out).unwrap().unwrap();
    assert_eq!((first.id, first.len, out), (id(0), 10, [0; 10]));
    assert!(rx.has_incoming_room());
    assert!(matches!(
        rx.accept(Instant::ZERO, &buf[..len], sender()),
        Ok(Received::Complete { .. })
    ));
}

#[test]
fn a_short_buffer_takes_nothing_and_says_how_much_it_needs() {
    let mut tx = pool(2);
    let mut rx = pool(2);
    tx.queue(Instant::ZERO, id(3), Target::Node(DEST), &[7; 1200])
        .unwrap();
    for f in fragments(&mut tx) {
        rx.accept(Instant::ZERO, &f, sender()).unwrap();
    }
    let mut small = [0u8; 100];
    assert_eq!(
        rx.take(&mut small),
        Err(crate::capacity::BufferTooSmall { needed: 1200 })
    );
    assert_eq!(rx.ready(), 1, "the message is still there");
    let mut big = [0u8; 1200];
    let message = rx.take(&mut big).unwrap().unwrap();
    assert_eq!((message.id, message.len), (id(3), 1200));
    assert_eq!(big, [7; 1200]);
    assert_eq!(rx.ready(), 0);
}

#[test]
fn a_sender_opening_message_after_message_only_displaces_its_own() {
    // 16 slots: 8 incoming, at most 2 unfinished per sender.
    let mut rx = pool(16);
    assert_eq!(rx.per_sender(), 2);
    // An honest 3-fragment message has its first fragment in...
    let honest = message_fragments(id(1), 1200);
    assert_eq!(honest.len(), 3);
    rx.accept(Instant::ZERO, &honest[0], sender_on(1)).unwrap();
    // ...when one circuit sends a fragment of a new message, 500 times.
    for n in 0..500u32 {
        let fresh = MessageId([
            (n % 250) as u8 + 2,
            (n / 250) as u8,
            9,
            9,
            9,
            9,
            9,
            9,
            9,
            9,
            9,
            9,
            9,
            9,
            9,
            9,
        ]);
        let frags = message_fragments(fresh, 2000);
        let at = Instant::from_millis(1 + u64::from(n));
        rx.accept(at, &frags[0], sender_on(2)).unwrap();
        assert!(rx.incoming() <= 1 + rx.per_sender());
    }
    // The honest message completes.
    let later = Instant::from_millis(600);
    assert_eq!(
        rx.accept(later, &honest[1], sender_on(1)).unwrap(),
        Received::Partial
    );
    assert_eq!(
        rx.accept(later, &honest[2], sender_on(1)).unwrap(),
        Received::Complete {
            id: id(1),
            len: 1200
        }
    );
}

#[test]
fn a_message_that_is_arriving_is_not_pushed_out_by_ones_that_never_will() {
    // 8 incoming slots, many attacking circuits with one fragment each.
    let mut rx = pool(16);
    let honest = message_fragments(id(1), 1500);
    rx.accept(Instant::ZERO, &honest[0], sender_on(1)).unwrap();
    rx.accept(Instant::ZERO, &honest[1], sender_on(1)).unwrap();
    for n in 0..200u32 {
        let fresh = MessageId([
            (n % 250) as u8 + 2,
            7,
            7,
            7,
            7,
            7,
            7,
            7,
            7,
            7,
            7,
            7,
            7,
            7,
            7,
            7,
        ]);
        let frags = message_fragments(fresh, 2000);
        let at = Instant::from_millis(1 + u64::from(n));
        rx.accept(at, &frags[0], sender_on(1000 + n)).unwrap();
    }
    assert_eq!(rx.incoming(), 8);
    let later = Instant::from_millis(300);
    let mut last = Received::Partial;
    for f in &honest[2..] {
        last = rx.accept(later, f, sender_on(1)).unwrap();
    }
    assert_eq!(
        last,
        Received::Complete {
            id: id(1),
            len: 1500
        }
    );
}

#[test]
fn routes_with_unsent_marks_exactly_the_routes_next_fragment_would_serve() {
    let other = NodeId([8; 32]);
    let on_other = Route::Circuit {
        circuit: CircuitHandle(2),
        destination: other,
    };
    let second_to_dest = Route::Circuit {
        circuit: CircuitHandle(3),
        destination: DEST,
    };
    let routes = [on_other, ROUTE, second_to_dest];
    let mut tx = pool(4);
    assert_eq!(tx.routes_with_unsent(routes.into_iter()), 0);
    tx.queue(Instant::ZERO, id(1), Target::Node(DEST), &[1; 600])
        .unwrap();
    // Not yet on a circuit: any circuit to its destination may carry it.
    assert_eq!(tx.routes_with_unsent(routes.into_iter()), 0b110);
    let mut buf = [0u8; RELAY_DATA_LEN];
    tx.next_fragment(Instant::ZERO, ROUTE, &mut buf).unwrap();
    // Now it is on ROUTE's circuit only.
    assert_eq!(tx.routes_with_unsent(routes.into_iter()), 0b010);
    assert!(tx
        .next_fragment(Instant::ZERO, second_to_dest, &mut buf)
        .is_none());
    tx.next_fragment(Instant::ZERO, ROUTE, &mut buf).unwrap();
    // All sent: nothing waits, though the message awaits its ACK.
    assert_eq!(tx.routes_with_unsent(routes.into_iter()), 0);
    assert!(tx.next_fragment(Instant::ZERO, ROUTE, &mut buf).is_none());
}
