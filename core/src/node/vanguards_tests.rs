//! Layer-2 guards (`vanguards.rs`): the second hop of drawn paths, the
//! lifetimes and their `max(X, X)` law, replacement, and that a count of 0
//! changes nothing.
#![cfg(feature = "vanguards")]

use std::collections::BTreeSet;

use chacha20::rand_core::SeedableRng;
use chacha20::ChaCha20Rng;

use super::vanguards::{draw_lifetime, MAX_LIFETIME_SECS, MIN_LIFETIME_SECS};
use super::{LearnDescriptor, LinkSlot, Node, NodeConfig, RecordPeerFailure};
use crate::discovery::{prefixes, select_path, Path, PathError, PathRules, MAX_HEALTHY_FAILURES};
use crate::identity::{Address, DescriptorRepr, Identity, NodeId, Transport, MAX_DESCRIPTOR_LEN};
use crate::message::MessageSlot;
use crate::node::small_node_tests::{Small, UNIX};
use crate::time::Instant;

const DAY: u64 = 24 * 3600;
const RELAYS: u8 = 12;

/// A node keeping `layer_two` layer-2 guards, its clock at [`UNIX`].
fn node(layer_two: usize, rng_seed: u8) -> Node<Small> {
    let config = NodeConfig {
        unix_time_at_zero: UNIX,
        second_layer_guards: layer_two,
        ..NodeConfig::default()
    };
    Node::new(
        config,
        Identity::from_secret_bytes([1; 32]),
        [rng_seed; 32],
        core::array::from_fn(|_| LinkSlot::new()),
        core::array::from_fn(|_| MessageSlot::new()),
    )
}

/// Relay `i`'s descriptor (identity `[100 + i; 32]`, at 10.`i`.0.1), issued
/// at unix time `issued_at` for an hour.
fn descriptor(i: u8, issued_at: u64) -> (NodeId, std::vec::Vec<u8>) {
    let seed = 100 + i;
    let identity = Identity::from_secret_bytes([seed; 32]);
    let repr = DescriptorRepr {
        identity: identity.public(),
        onion_key: [seed; 32],
        relay: true,
        issued_at,
        expires_at: issued_at + 3600,
        addresses: [Address {
            transport: Transport::Tcp,
            socket: ([10, i, 0, 1], 7000).into(),
        }]
        .into_iter()
        .collect(),
    };
    let mut buf = [0u8; MAX_DESCRIPTOR_LEN];
    let n = repr
        .emit_signed_introduced(&[], &identity, &mut buf)
        .unwrap();
    (identity.node_id(), buf[..n].to_vec())
}

/// Gives the node fresh descriptors of the [`RELAYS`] relays at `at`
/// seconds after [`UNIX`]; the ids of those its table holds (a bucket of
/// the small table may be full).
fn learn_relays(n: &mut Node<Small>, at: u64) -> std::vec::Vec<NodeId> {
    let now = Instant::from_micros(at * 1_000_000);
    let ids: std::vec::Vec<NodeId> = (0..RELAYS)
        .filter_map(|i| {
            let (id, d) = descriptor(i, UNIX + at);
            let _ = n.handle(now, LearnDescriptor { descriptor: &d });
            n.discovery.table().get(&id).map(|_| id)
        })
        .collect();
    assert!(ids.len() >= 8, "only {} relays in the table", ids.len());
    ids
}

/// Draws a path of `relays` relays to `dest` as `open_circuit` does:
/// guards, then layer-2 guards, kept first.
fn draw(n: &mut Node<Small>, dest: NodeId, relays: usize) -> Result<Path, PathError> {
    n.maintain_guards(Some(dest));
    n.maintain_second_layer_guards();
    let unix = super::discovery::unix_now(&n.config, n.now);
    let rules = PathRules {
        relays,
        guards: &n.circuits.guards,
        second_layer: n.circuits.second_layer.ids(),
        avoid: &[],
        now: n.now,
    };
    select_path(n.discovery.table(), dest, &rules, unix, &mut n.rng)
}

/// The (guard, expiry) pairs of the node.
fn pairs(n: &Node<Small>) -> std::vec::Vec<(NodeId, u64)> {
    n.second_layer_guards()
        .iter()
        .copied()
        .zip(n.second_layer_guard_expiries().iter().copied())
        .collect()
}

#[test]
fn the_second_hop_of_every_drawn_path_is_a_layer_2_guard() {
    let mut n = node(4, 1);
    let relays = learn_relays(&mut n, 0);
    let mut seconds = BTreeSet::new();
    let mut first = None;
    for k in 0..300 {
        let dest = relays[k % relays.len()];
        let path = draw(&mut n, dest, 3).expect("a path");
        let layer_two = n.second_layer_guards();
        assert_eq!(layer_two.len(), 4);
        assert!(
            layer_two.contains(&path.hops()[1]),
            "circuit {k}: second hop {:?} not among {layer_two:?}",
            path.hops()[1]
        );
        seconds.insert(path.hops()[1]);
        // Kept all along: the clock stands still, nothing expires.
        assert_eq!(*first.get_or_insert_with(|| pairs(&n)), pairs(&n));
    }
    assert!(seconds.len() <= 4, "{} distinct second hops", seconds.len());
}

#[test]
fn with_none_configured_paths_are_drawn_as_before() {
    let (mut with, mut without) = (node(0, 2), node(0, 2));
    let relays = learn_relays(&mut with, 0);
    learn_relays(&mut without, 0);
    let mut seconds = BTreeSet::new();
    for k in 0..300 {
        let dest = relays[k % relays.len()];
        let path = draw(&mut with, dest, 3).expect("a path");
        // The same draw with rules that never knew of layer-2 guards.
        without.maintain_guards(Some(dest));
        let unix = super::discovery::unix_now(&without.config, without.now);
        let rules = PathRules {
            relays: 3,
            guards: &without.circuits.guards,
            avoid: &[],
            now: without.now,
            ..PathRules::default()
        };
        let before = select_path(
            without.discovery.table(),
            dest,
            &rules,
            unix,
            &mut without.rng,
        )
        .expect("a path");
        assert_eq!(path, before, "circuit {k}");
        seconds.insert(path.hops()[1]);
    }
    assert!(with.second_layer_guards().is_empty());
    assert!(
        seconds.len() > 4,
        "second hops drawn afresh: {} distinct",
        seconds.len()
    );
}

#[test]
fn lifetimes_lie_in_1_to_12_days_and_are_the_longer_of_two_uniform_draws() {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let draws: std::vec::Vec<u64> = (0..20_000).map(|_| draw_lifetime(&mut rng)).collect();
    assert!(draws
        .iter()
        .all(|d| (MIN_LIFETIME_SECS..=MAX_LIFETIME_SECS).contains(d)));
    assert_eq!((MIN_LIFETIME_SECS, MAX_LIFETIME_SECS), (DAY, 12 * DAY));
    let mean = draws.iter().sum::<u64>() as f64 / draws.len() as f64 / DAY as f64;
    // max(X, X) on [1, 12]: 1 + 11·2/3 = 8.33 days; one uniform draw: 6.5.
    assert!((8.1..8.6).contains(&mean), "mean lifetime {mean} days");
    // P(max < 2 days) = (1/11)² ≈ 0.008, against 1/11 for one draw.
    let short = draws.iter().filter(|d| **d < 2 * DAY).count() as f64 / draws.len() as f64;
    assert!(short < 0.02, "{short} under 2 days");
    // Both ends are reached.
    assert!(draws.iter().any(|d| *d < DAY + DAY / 2));
    assert!(draws.iter().any(|d| *d > 11 * DAY));
}

#[test]
fn a_node_keeps_the_configured_count_in_distinct_networks_with_expiries_1_to_12_days_away() {
    let mut n = node(4, 3);
    let relays = learn_relays(&mut n, 0);
    assert!(
        n.second_layer_guards().is_empty(),
        "none until a path is drawn"
    );
    draw(&mut n, relays[0], 3).unwrap();
    let set = pairs(&n);
    assert_eq!(set.len(), 4);
    let table = n.discovery.table();
    let mut networks = BTreeSet::new();
    for (id, expiry) in &set {
        assert!((UNIX + DAY..=UNIX + 12 * DAY).contains(expiry), "{expiry}");
        for p in prefixes(table.get(id).unwrap()) {
            assert!(networks.insert(format!("{p:?}")), "two share {p:?}");
        }
    }
}

#[test]
fn a_layer_2_guard_is_replaced_once_its_lifetime_has_passed_and_only_then() {
    let mut n = node(4, 4);
    let relays = learn_relays(&mut n, 0);
    draw(&mut n, relays[0], 3).unwrap();
    let before = pairs(&n);
    let first_expiry = before.iter().map(|(_, e)| *e).min().unwrap();
    let at = first_expiry - UNIX;
    // A second before it: the same guards, the same expiries.
    learn_relays(&mut n, at - 1);
    draw(&mut n, relays[0], 3).unwrap();
    assert_eq!(pairs(&n), before, "nothing expired yet");
    // At its expiry: that one goes, a fresh one with a fresh lifetime
    // comes (possibly the same relay drawn again), the others stay.
    learn_relays(&mut n, at);
    draw(&mut n, relays[0], 3).unwrap();
    let after = pairs(&n);
    assert_eq!(after.len(), 4);
    let expired: std::vec::Vec<_> = before.iter().filter(|(_, e)| *e == first_expiry).collect();
    for pair in &before {
        assert_eq!(
            after.contains(pair),
            !expired.contains(&pair),
            "{pair:?} before, {after:?} after"
        );
    }
    for (_, e) in after.iter().filter(|p| !before.contains(p)) {
        assert!((first_expiry + DAY..=first_expiry + 12 * DAY).contains(e));
    }
}

#[test]
fn a_layer_2_guard_that_is_no_longer_a_healthy_relay_is_replaced() {
    let mut n = node(4, 5);
    let relays = learn_relays(&mut n, 0);
    draw(&mut n, relays[0], 3).unwrap();
    let before = pairs(&n);
    let failing = before[1].0;
    for _ in 0..MAX_HEALTHY_FAILURES {
        n.handle(Instant::ZERO, RecordPeerFailure { peer: failing });
    }
    draw(&mut n, relays[0], 3).unwrap();
    let after = pairs(&n);
    assert_eq!(after.len(), 4);
    assert!(!n.second_layer_guards().contains(&failing));
    for pair in before.iter().filter(|(id, _)| *id != failing) {
        assert!(after.contains(pair), "{pair:?} kept");
    }
}

#[test]
fn when_no_layer_2_guard_fits_the_path_fails_rather_than_taking_another_relay() {
    let mut n = node(1, 6);
    learn_relays(&mut n, 0);
    n.maintain_second_layer_guards();
    let only = n.second_layer_guards()[0];
    // To the layer-2 guard itself: it cannot also be the second hop.
    assert_eq!(
        draw(&mut n, only, 3),
        Err(PathError::NoUsableSecondLayerGuard)
    );
    // One relay: no second hop, nothing to restrict.
    let path = draw(&mut n, only, 1).expect("a one-relay path");
    assert_eq!(path.hops().len(), 2);
}

#[test]
fn validate_allows_0_to_8_layer_2_guards_and_refuses_more() {
    use super::{ConfigError, MAX_SECOND_LAYER_GUARDS};
    let with = |n| NodeConfig {
        second_layer_guards: n,
        ..NodeConfig::default()
    };
    assert_eq!(MAX_SECOND_LAYER_GUARDS, 8);
    for n in 0..=8 {
        assert_eq!(with(n).validate(), Ok(()), "{n}");
    }
    assert_eq!(
        with(9).validate(),
        Err(ConfigError::TooManySecondLayerGuards(9))
    );
}

#[test]
fn a_lowered_count_keeps_the_oldest_and_zero_drops_them_all() {
    let mut n = node(4, 8);
    let relays = learn_relays(&mut n, 0);
    draw(&mut n, relays[0], 3).unwrap();
    let before = pairs(&n);
    n.config.second_layer_guards = 2;
    draw(&mut n, relays[0], 3).unwrap();
    assert_eq!(pairs(&n), before[..2]);
    n.config.second_layer_guards = 0;
    draw(&mut n, relays[0], 3).unwrap();
    assert!(n.second_layer_guards().is_empty());
}
