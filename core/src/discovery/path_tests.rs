//! Path selection rules, property-tested over many seeds and tables.

use core::net::{IpAddr, Ipv4Addr, SocketAddr};

use chacha20::ChaCha20Rng;
use proptest::prelude::*;
use rand_core::SeedableRng;

use super::*;
use crate::identity::{
    verify_descriptor, Address, DescriptorRepr, Identity, NodeId, Transport, MAX_DESCRIPTOR_LEN,
};
use crate::time::Instant;

const NOW: u64 = 1_800_000_000;

fn own() -> NodeId {
    Identity::from_secret_bytes([0xff; 32]).node_id()
}

/// A node with identity seed `seed`, relay flag, and one IPv4 address.
fn entry(seed: u16, relay: bool, ip: Ipv4Addr) -> crate::identity::VerifiedDescriptor {
    let mut secret = [0u8; 32];
    secret[..2].copy_from_slice(&seed.to_be_bytes());
    secret[2] = 1;
    let identity = Identity::from_secret_bytes(secret);
    let mut addresses = heapless::Vec::new();
    addresses
        .push(Address {
            transport: Transport::Tcp,
            socket: SocketAddr::new(IpAddr::V4(ip), 9000),
        })
        .unwrap();
    let repr = DescriptorRepr {
        identity: identity.public(),
        onion_key: [1; 32],
        relay,
        issued_at: NOW,
        expires_at: NOW + 3600,
        addresses,
    };
    let mut buf = [0u8; MAX_DESCRIPTOR_LEN];
    let n = repr.emit_signed(&identity, &mut buf).unwrap();
    verify_descriptor(&buf[..n], NOW).unwrap()
}

/// A table of `n` nodes; node `i` is in /16 number `i % prefixes`.
fn table(n: u16, prefixes: u16, non_relays: u16) -> NodeTable<heapless::Vec<PeerEntry, 256>> {
    let mut t = NodeTable::new(own(), [3; 32]);
    for i in 0..n {
        let p = (i % prefixes) as u8;
        let ip = Ipv4Addr::new(10, p, (i >> 8) as u8, i as u8);
        t.insert(
            entry(i, i >= non_relays, ip),
            Source::Local,
            Instant::ZERO,
            NOW,
        )
        .unwrap();
    }
    t
}

fn prefix_of(t: &NodeTable<heapless::Vec<PeerEntry, 256>>, id: &NodeId) -> NetworkPrefix {
    NetworkPrefix::of(
        t.get(id).unwrap().descriptor.repr().addresses[0]
            .socket
            .ip(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn paths_obey_every_rule(seed in any::<u64>(), nodes in 8u16..40, prefixes in 5u16..40, relays in 1usize..=4) {
        let t = table(nodes, prefixes, 2);
        let dest = t.entries()[0].node_id();
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let rules = PathRules { relays, ..PathRules::default() };
        match select_path(&t, dest, &rules, NOW, &mut rng) {
            Ok(path) => {
                prop_assert_eq!(path.hops().len(), relays + 1);
                prop_assert_eq!(path.destination(), Some(dest));
                prop_assert!(!path.relays().contains(&dest), "destination in the middle");
                let mut ids = path.hops().to_vec();
                ids.sort();
                ids.dedup();
                prop_assert_eq!(ids.len(), relays + 1, "a node twice");
                let mut pfx: std::vec::Vec<_> = path.hops().iter().map(|h| prefix_of(&t, h)).collect();
                pfx.sort_by_key(|p| format!("{p:?}"));
                pfx.dedup();
                prop_assert_eq!(pfx.len(), relays + 1, "two hops share a prefix");
                for r in path.relays() {
                    prop_assert!(t.get(r).unwrap().descriptor.repr().relay, "non-relay chosen");
                }
            }
            Err(PathError::NotEnoughRelays { wanted, found }) => {
                // Only acceptable when the prefixes really run out: every
                // prefix but the destination's holds a relay, so at most
                // `prefixes - 1` relays fit.
                prop_assert_eq!(wanted, relays);
                prop_assert!(found < relays);
                prop_assert!(usize::from(prefixes.min(nodes)) - 1 < relays + 1, "gave up with room left");
            }
            Err(e) => prop_assert!(false, "unexpected {e:?}"),
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_path(seed in any::<u64>()) {
        let t = table(30, 30, 0);
        let dest = t.entries()[3].node_id();
        let a = select_path(&t, dest, &PathRules::default(), NOW, &mut ChaCha20Rng::seed_from_u64(seed));
        let b = select_path(&t, dest, &PathRules::default(), NOW, &mut ChaCha20Rng::seed_from_u64(seed));
        prop_assert_eq!(a, b);
    }

    #[test]
    fn guards_are_always_the_first_hop(seed in any::<u64>()) {
        let t = table(30, 30, 0);
        let guards = [t.entries()[5].node_id(), t.entries()[6].node_id()];
        let dest = t.entries()[0].node_id();
        let path = select_path(&t, dest, &PathRules { relays: 3, guards: &guards, ..PathRules::default() }, NOW, &mut ChaCha20Rng::seed_from_u64(seed)).unwrap();
        prop_assert!(guards.contains(&path.hops()[0]));
    }
}

/// Relays are spread over buckets, not entries: a bucket holding several
/// candidates is drawn as often as one holding a single candidate, so
/// crowding one bucket (one source's gossip) buys no share.
#[test]
fn relays_are_spread_over_the_buckets() {
    let t = table(20, 20, 0);
    let dest = t.entries()[0].node_id();
    let mut counts = std::collections::BTreeMap::new();
    let mut by_bucket = std::collections::BTreeMap::new();
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    for _ in 0..4_000 {
        let path = select_path(&t, dest, &PathRules::default(), NOW, &mut rng).unwrap();
        for r in path.relays() {
            *counts.entry(*r).or_insert(0u32) += 1;
            *by_bucket
                .entry(format!("{:?}", t.get(r).unwrap().place()))
                .or_insert(0u32) += 1;
        }
    }
    assert_eq!(counts.len(), 19, "every other relay is used");
    let (min, max) = (
        by_bucket.values().min().unwrap(),
        by_bucket.values().max().unwrap(),
    );
    assert!(
        *max < 2 * *min,
        "selection is far from uniform over buckets: {min}..{max}"
    );
}

#[test]
fn errors_name_the_problem() {
    let t = table(10, 10, 0);
    let dest = t.entries()[0].node_id();
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    assert_eq!(
        select_path(&t, own(), &PathRules::default(), NOW, &mut rng),
        Err(PathError::UnknownDestination)
    );
    assert_eq!(
        select_path(
            &t,
            dest,
            &PathRules {
                relays: 8,
                ..PathRules::default()
            },
            NOW,
            &mut rng
        ),
        Err(PathError::TooLong(8))
    );
    let not_relays = [own()];
    assert_eq!(
        select_path(
            &t,
            dest,
            &PathRules {
                relays: 3,
                guards: &not_relays,
                ..PathRules::default()
            },
            NOW,
            &mut rng
        ),
        Err(PathError::NoUsableGuard)
    );
    // Ten nodes in three /16s: the destination takes one, so two relays at most.
    let crowded = table(10, 3, 0);
    let dest = crowded.entries()[0].node_id();
    assert_eq!(
        select_path(&crowded, dest, &PathRules::default(), NOW, &mut rng),
        Err(PathError::NotEnoughRelays {
            wanted: 3,
            found: 2
        })
    );
    // Failing and expired relays are never chosen.
    let mut t = table(5, 5, 0);
    let dest = t.entries()[0].node_id();
    let failing = t.entries()[1].node_id();
    for _ in 0..MAX_HEALTHY_FAILURES {
        t.record_failure(&failing);
    }
    for _ in 0..100 {
        let path = select_path(&t, dest, &PathRules::default(), NOW, &mut rng).unwrap();
        assert!(!path.hops().contains(&failing));
    }
    assert!(matches!(
        select_path(&t, dest, &PathRules::default(), NOW + 3600, &mut rng),
        Err(PathError::NotEnoughRelays { .. })
    ));
}

#[test]
#[cfg(feature = "relay-health")]
fn relays_in_back_off_or_to_avoid_are_not_drawn_until_it_ends() {
    use crate::time::{Duration, Instant};
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let mut t = table(12, 12, 0);
    let dest = t.entries()[0].node_id();
    let suspect = t.entries()[1].node_id();
    let lost = t.entries()[2].node_id();
    let now = Instant::from_micros(1_000_000_000);
    let backoff = t.health_mut(&suspect).unwrap().on_failed(now, &mut rng);
    let avoid = [lost];
    let rules = PathRules {
        avoid: &avoid,
        now,
        ..PathRules::default()
    };
    for _ in 0..200 {
        let path = select_path(&t, dest, &rules, NOW, &mut rng).unwrap();
        assert!(!path.hops().contains(&suspect), "drawn in back-off");
        assert!(!path.hops().contains(&lost), "drawn though to be avoided");
    }
    // Once the back-off ends, it is drawn again.
    let later = PathRules {
        now: now
            .saturating_add(backoff)
            .saturating_add(Duration::from_micros(1)),
        ..PathRules::default()
    };
    let drawn = (0..200).any(|_| {
        select_path(&t, dest, &later, NOW, &mut rng)
            .unwrap()
            .hops()
            .contains(&suspect)
    });
    assert!(drawn, "never drawn after its back-off");
}

/// The lost circuit's guard is the only usable guard: it is drawn again,
/// and the lost circuit's other relays still are not. (Before, the node
/// dropped the whole avoid set when the guard position failed, and could
/// draw the relay that had just died.)
#[test]
fn an_only_guard_is_kept_while_the_other_relays_stay_avoided() {
    let mut rng = ChaCha20Rng::seed_from_u64(10);
    let t = table(12, 12, 0);
    let dest = t.entries()[0].node_id();
    let guard = t.entries()[1].node_id();
    let middle = t.entries()[2].node_id();
    let exit = t.entries()[3].node_id();
    let guards = [guard];
    let avoid = [guard, middle, exit];
    let rules = PathRules {
        guards: &guards,
        avoid: &avoid,
        ..PathRules::default()
    };
    for _ in 0..200 {
        let path = select_path(&t, dest, &rules, NOW, &mut rng).unwrap();
        assert_eq!(path.hops().first(), Some(&guard));
        assert!(!path.hops().contains(&middle), "drawn though to be avoided");
        assert!(!path.hops().contains(&exit), "drawn though to be avoided");
    }
}
