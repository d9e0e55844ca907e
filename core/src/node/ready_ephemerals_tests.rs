//! A node draws its hop-handshake key pairs while it waits: the pool is
//! due at once until full, its timer fills it, and a hop handshake then
//! takes a key pair without drawing from the generator.

use rand_core::Rng;

use crate::circuit::CircuitContext;
use crate::message::MessageSlot;
use crate::time::Instant;

use super::small_node_tests::UNIX;
use super::{Drive, LinkSlot, Node, NodeConfig, Output, Timeout};
use crate::identity::Identity;

crate::node_profile! {
    /// The unit tests' small node, with two key pairs kept ready.
    struct Ready {
        link_receive: 2 + 4096, link_send_queue: 8, events: 8, peers: 16,
        relayed: 4, own: 2, message: 1024,
        links: [LinkSlot<Ready>; 2],
        messages: [MessageSlot<[u8; 1024]>; 2],
        ready_ephemerals: 2,
    }
}

fn ready_node() -> Node<Ready> {
    Node::new(
        NodeConfig {
            unix_time_at_zero: UNIX,
            ..NodeConfig::default()
        },
        Identity::from_secret_bytes([1; 32]),
        [3; 32],
        core::array::from_fn(|_| LinkSlot::new()),
        core::array::from_fn(|_| MessageSlot::new()),
    )
}

/// When the node next wants [`Timeout`], draining what it has to say.
fn next_deadline(node: &mut Node<Ready>, now: Instant) -> Instant {
    let mut buf = [0u8; 2048];
    loop {
        match Drive::poll(node, now, &mut buf).unwrap() {
            Output::Timeout(at) => return at,
            _ => continue,
        }
    }
}

/// A hop handshake's key pair, taken as the circuit engine takes it.
fn take_hop_key(node: &mut Node<Ready>) -> [u8; 32] {
    node.with_engine(|_, ctx, _| ctx.hop_ephemeral().public())
}

#[test]
fn an_empty_pool_is_due_at_once_and_the_timer_fills_it() {
    let mut node = ready_node();
    let now = Instant::from_millis(5);
    node.handle(now, Timeout);
    assert_eq!(node.ready_ephemerals.ready(), 2);
    assert!(
        next_deadline(&mut node, now) > now,
        "a full pool is not due"
    );
    take_hop_key(&mut node);
    assert_eq!(node.ready_ephemerals.ready(), 1);
    assert_eq!(next_deadline(&mut node, now), now, "refilled at once");
    node.handle(now, Timeout);
    assert_eq!(node.ready_ephemerals.ready(), 2);
}

#[test]
fn a_ready_key_pair_costs_the_handshake_no_draw() {
    // Two nodes built alike, given the same inputs, draw the same stream
    // (the core is deterministic); one of them then takes key pairs.
    let now = Instant::from_millis(5);
    let mut node = ready_node();
    let mut twin = ready_node();
    node.handle(now, Timeout);
    twin.handle(now, Timeout);
    let first = take_hop_key(&mut node);
    let second = take_hop_key(&mut node);
    assert_ne!(first, second, "each key pair is used once");
    // Neither took anything from the generator: it goes on as the twin's.
    let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
    node.rng.fill_bytes(&mut a);
    twin.rng.fill_bytes(&mut b);
    assert_eq!(a, b);
    // Once the pool is empty, the key pair is drawn on the spot.
    take_hop_key(&mut twin);
    take_hop_key(&mut twin);
    take_hop_key(&mut node);
    node.rng.fill_bytes(&mut a);
    twin.rng.fill_bytes(&mut b);
    assert_ne!(a, b);
}
