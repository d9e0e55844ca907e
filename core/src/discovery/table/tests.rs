//! Tests of the node table: its bounds, its eviction rules, promotion and
//! test-before-evict, and draws by bucket.

use core::net::{IpAddr, Ipv4Addr, SocketAddr};

use chacha20::ChaCha20Rng;
use rand_core::SeedableRng;

use super::*;
use crate::identity::{
    verify_descriptor, Address, DescriptorRepr, Identity, NodeId, MAX_CLOCK_SKEW_SECS,
    MAX_DESCRIPTOR_LEN,
};
use crate::time::Instant;

const NOW: u64 = 1_800_000_000;
const KEY: [u8; 32] = [0x5a; 32];

type Table<const N: usize> = NodeTable<heapless::Vec<PeerEntry, N>>;

/// A descriptor of node `seed` (any 32-bit number), one address in the /16
/// `net`, issued at `issued_at` for `lifetime` seconds.
fn node(seed: u32, net: u8, issued_at: u64, lifetime: u64) -> VerifiedDescriptor {
    let mut secret = [0x11u8; 32];
    secret[..4].copy_from_slice(&seed.to_be_bytes());
    let identity = Identity::from_secret_bytes(secret);
    let mut addresses = heapless::Vec::new();
    let ip = IpAddr::V4(Ipv4Addr::new(10, net, 0, 1));
    addresses
        .push(Address {
            transport: crate::identity::Transport::Tcp,
            socket: SocketAddr::new(ip, 7000),
        })
        .unwrap();
    let repr = DescriptorRepr {
        identity: identity.public(),
        onion_key: [1; 32],
        relay: true,
        issued_at,
        expires_at: issued_at + lifetime,
        addresses,
    };
    let mut buf = [0u8; MAX_DESCRIPTOR_LEN];
    let n = repr.emit_signed(&identity, &mut buf).unwrap();
    // Verified at issue time so that already-expired test descriptors load.
    verify_descriptor(&buf[..n], issued_at.min(NOW)).unwrap()
}

fn honest(seed: u32) -> VerifiedDescriptor {
    node(seed, seed as u8, NOW, 3600)
}

fn id(seed: u32) -> NodeId {
    honest(seed).node_id()
}

fn own() -> NodeId {
    Identity::from_secret_bytes([0; 32]).node_id()
}

fn t(secs: u64) -> Instant {
    Instant::from_micros(secs * 1_000_000)
}

fn net(n: u8) -> Option<NetworkPrefix> {
    Some(NetworkPrefix::V4([10, n]))
}

fn link(n: u8) -> Source {
    Source::Link(net(n))
}

#[test]
fn layouts_scale_with_capacity() {
    let l = Layout::for_capacity(2);
    assert_eq!((l.new_buckets, l.new_bucket_len), (1, 2));
    assert_eq!((l.tried_buckets, l.tried_bucket_len), (1, 1));
    let l = Layout::for_capacity(8);
    assert_eq!((l.new_buckets, l.new_bucket_len, l.new_spread), (2, 4, 1));
    assert_eq!((l.tried_buckets, l.tried_bucket_len), (1, 4));
    let l = Layout::for_capacity(64);
    assert_eq!((l.new_buckets, l.new_bucket_len, l.new_spread), (16, 4, 2));
    assert_eq!(
        (l.tried_buckets, l.tried_bucket_len, l.tried_spread),
        (8, 4, 1)
    );
    let l = Layout::for_capacity(256);
    assert_eq!((l.new_buckets, l.new_spread, l.tried_buckets), (64, 8, 32));
    let l = Layout::for_capacity(1);
    assert_eq!(
        (l.new_buckets, l.new_bucket_len, l.tried_bucket_len),
        (1, 1, 0)
    );
    for capacity in 1..600 {
        let l = Layout::for_capacity(capacity);
        assert!(l.new_buckets * l.new_bucket_len <= capacity);
        assert!(l.tried_buckets * l.tried_bucket_len <= capacity / 2);
        assert!(l.new_buckets <= buckets::MAX_BUCKETS && l.tried_buckets <= buckets::MAX_BUCKETS);
    }
}

#[test]
fn newer_descriptors_replace_older_and_replays_and_forgeries_are_refused() {
    let mut table = Table::<8>::new(own(), KEY);
    let first = node(1, 1, NOW, 3600);
    assert_eq!(
        table.insert(first.clone(), link(9), t(1), NOW),
        Ok(InsertOutcome::Added)
    );
    assert_eq!(
        table.insert(first.clone(), link(9), t(2), NOW),
        Ok(InsertOutcome::Refreshed)
    );
    assert_eq!(table.get(&id(1)).unwrap().last_seen, t(2));
    let newer = node(1, 1, NOW + 10, 3600);
    assert_eq!(
        table.insert(newer.clone(), link(9), t(3), NOW),
        Ok(InsertOutcome::Updated)
    );
    assert_eq!(
        table.insert(first, link(9), t(4), NOW),
        Err(InsertError::OlderThanKnown)
    );
    // Same issue time, other bytes (a longer lifetime): a node never signs two.
    let twin = node(1, 1, NOW + 10, 7200);
    assert_eq!(
        table.insert(twin.clone(), link(9), t(5), NOW),
        Err(InsertError::NotNewer)
    );
    assert_eq!(
        table.precheck(&id(1), NOW + 10, twin.as_bytes()),
        Err(InsertError::NotNewer)
    );
    assert_eq!(
        table.precheck(&id(1), NOW + 10, newer.as_bytes()),
        Ok(Known::Identical)
    );
    assert_eq!(table.precheck(&id(1), NOW + 11, &[]), Ok(Known::Newer));
    assert_eq!(table.len(), 1);
    let own_descriptor = {
        let identity = Identity::from_secret_bytes([0; 32]);
        let repr = DescriptorRepr {
            identity: identity.public(),
            onion_key: [0; 32],
            relay: true,
            issued_at: NOW,
            expires_at: NOW + 60,
            addresses: heapless::Vec::new(),
        };
        let mut buf = [0u8; MAX_DESCRIPTOR_LEN];
        let n = repr.emit_signed(&identity, &mut buf).unwrap();
        verify_descriptor(&buf[..n], NOW).unwrap()
    };
    assert_eq!(
        table.insert(own_descriptor, link(9), t(6), NOW),
        Err(InsertError::OwnDescriptor)
    );
}

/// Issue 16, item 1: a table ranked by issue time let descriptors dated
/// "now + 300 s" from throwaway keys evict every honest entry (8 of 8).
#[test]
fn sybil_descriptors_dated_in_the_future_do_not_evict_honest_entries() {
    let mut table = Table::<64>::new(own(), KEY);
    // Honest nodes, heard of from twelve honest networks, until every
    // bucket they reach is full.
    let mut seed = 0;
    while table.len() < 40 && seed < 2_000 {
        let _ = table.insert(honest(seed), link((seed % 12) as u8), t(0), NOW);
        seed += 1;
    }
    let honest_ids: std::vec::Vec<NodeId> = table.entries().iter().map(|e| e.node_id()).collect();
    assert!(honest_ids.len() >= 32, "{}", honest_ids.len());
    // The attacker: unlimited identities, addresses in every network,
    // dated as far ahead as allowed, all from its one network.
    let future = NOW + MAX_CLOCK_SKEW_SECS;
    let mut refused = 0;
    for sybil in 0..2_000u32 {
        let d = node(1_000_000 + sybil, sybil as u8, future, 24 * 3600);
        if table
            .insert(
                d,
                Source::Link(Some(NetworkPrefix::V4([66, 66]))),
                t(1),
                NOW,
            )
            .is_err()
        {
            refused += 1;
        }
    }
    for honest in &honest_ids {
        assert!(table.get(honest).is_some(), "an honest entry was evicted");
    }
    let sybils = table.len() - honest_ids.len();
    let layout = table.layout();
    assert!(
        sybils <= layout.new_spread * layout.new_bucket_len,
        "one network holds {sybils} entries"
    );
    assert!(refused >= 2_000 - sybils);
}

#[test]
fn a_full_bucket_keeps_healthy_entries_and_gives_way_to_failing_or_expired_ones() {
    let mut table = Table::<64>::new(own(), KEY);
    // One source, one address network: one bucket.
    let same = |seed: u32, lifetime: u64| node(seed, 7, NOW, lifetime);
    let len = table.layout().new_bucket_len as u32;
    for seed in 0..len {
        let lifetime = if seed == 0 { 100 } else { 3600 };
        assert_eq!(
            table.insert(same(seed, lifetime), link(3), t(0), NOW),
            Ok(InsertOutcome::Added)
        );
    }
    assert_eq!(
        table.insert(same(100, 3600), link(3), t(1), NOW),
        Err(InsertError::BucketFull)
    );
    assert_eq!(
        table.admits(&same(100, 1).node_id(), link(3), net(7), NOW),
        Err(InsertError::BucketFull)
    );
    // Entry 1 starts failing; entry 0 expires: the expired one goes first.
    for _ in 0..MAX_HEALTHY_FAILURES {
        table.record_failure(&same(1, 1).node_id());
    }
    let later = NOW + 200;
    let fresh = node(101, 7, later, 3600);
    assert_eq!(
        table.insert(fresh, link(3), t(2), later),
        Ok(InsertOutcome::Replaced {
            evicted: same(0, 1).node_id()
        })
    );
    let fresh = node(102, 7, later, 3600);
    assert_eq!(
        table.insert(fresh, link(3), t(3), later),
        Ok(InsertOutcome::Replaced {
            evicted: same(1, 1).node_id()
        })
    );
    assert_eq!(
        table.insert(node(103, 7, later, 3600), link(3), t(4), later),
        Err(InsertError::BucketFull)
    );
    table.record_success(&same(2, 1).node_id(), t(5));
    assert_eq!(table.get(&same(2, 1).node_id()).unwrap().failures, 0);
    assert_eq!(table.remove_expired(NOW + 3600), 2);
}

#[test]
fn a_full_storage_takes_room_from_the_most_crowded_bucket() {
    // 8 entries: two new buckets of 4 (one source reaches one of them).
    let mut table = Table::<8>::new(own(), KEY);
    let bucket_of = |t: &Table<8>, id: &NodeId| match t.get(id).unwrap().place() {
        Place::New { bucket } => bucket,
        Place::Tried { .. } => unreachable!(),
    };
    // Find two sources that land in different buckets.
    let mut by_bucket: [Option<u8>; 2] = [None, None];
    for n in 0..50u8 {
        let d = node(u32::from(n) + 500, 1, NOW, 3600);
        let mut probe = Table::<8>::new(own(), KEY);
        probe.insert(d.clone(), link(n), t(0), NOW).unwrap();
        let b = usize::from(bucket_of(&probe, &d.node_id()));
        by_bucket[b].get_or_insert(n);
    }
    let (a, b) = (by_bucket[0].unwrap(), by_bucket[1].unwrap());
    // Source `a` fills its bucket, then the tried table takes the rest.
    for seed in 0..4 {
        table
            .insert(node(seed, 1, NOW, 3600), link(a), t(0), NOW)
            .unwrap();
    }
    for seed in 10..14 {
        table
            .insert_reached(
                node(seed, seed as u8, NOW, 3600),
                net(seed as u8),
                t(0),
                NOW,
            )
            .unwrap();
    }
    assert_eq!(table.len(), 8);
    let tried = table.entries().iter().filter(|e| e.is_tried()).count();
    assert_eq!(tried, 4);
    // A newcomer of source `b`'s empty bucket takes the newest of `a`'s.
    assert_eq!(
        table.insert(node(20, 1, NOW, 3600), link(b), t(1), NOW),
        Ok(InsertOutcome::Replaced {
            evicted: node(3, 1, NOW, 1).node_id()
        })
    );
    // Now 3 against 1: once more, then the buckets are within one.
    table
        .insert(node(21, 1, NOW, 3600), link(b), t(2), NOW)
        .unwrap();
    assert_eq!(
        table.insert(node(22, 1, NOW, 3600), link(b), t(3), NOW),
        Err(InsertError::TableFull)
    );
    // A node's own descriptor over its link still gets in: an introducer
    // must hold the descriptors of the nodes it introduces.
    assert_eq!(
        table.admits_from_peer(&node(22, 1, NOW, 3600).node_id(), link(b), net(1), NOW),
        Ok(())
    );
    assert!(matches!(
        table.insert_from_peer(node(22, 1, NOW, 3600), link(b), t(3), NOW),
        Ok(InsertOutcome::Replaced { .. })
    ));
    assert!(table.get(&node(22, 1, NOW, 3600).node_id()).is_some());
    assert_eq!(
        table.entries().iter().filter(|e| e.is_tried()).count(),
        4,
        "tried entries stay"
    );
}

#[test]
fn only_a_reached_node_is_promoted_and_a_full_tried_bucket_tests_its_incumbent() {
    let mut table = Table::<8>::new(own(), KEY);
    // Gossip never makes a tried entry.
    for seed in 0..4 {
        table.insert(honest(seed), link(1), t(0), NOW).unwrap();
    }
    assert!(table.entries().iter().all(|e| !e.is_tried()));
    // Reached: promoted (one tried bucket of 4 in a table of 8).
    for seed in 0..4 {
        table.promote(&id(seed), net(seed as u8), NOW);
    }
    assert_eq!(table.entries().iter().filter(|e| e.is_tried()).count(), 4);
    // A fifth reached node finds the tried bucket full: it stays new and
    // waits for a test of the incumbent.
    table.insert(honest(4), link(1), t(1), NOW).unwrap();
    table.record_success(&id(0), t(5));
    table.promote(&id(4), net(4), NOW);
    assert!(!table.get(&id(4)).unwrap().is_tried());
    let incumbent = table.collision_to_test().expect("a collision");
    assert_ne!(
        incumbent,
        id(0),
        "the least recently seen incumbent is tested"
    );
    assert!(table.get(&incumbent).unwrap().is_tried());
    // It answers: it stays, the newcomer stays new.
    table.tested(&incumbent, true, NOW);
    assert!(table.get(&incumbent).unwrap().is_tried());
    assert!(!table.get(&id(4)).unwrap().is_tried());
    assert_eq!(table.collision_to_test(), None);
    // Reached again, the incumbent is tested again and this time fails:
    // it goes back to the new table and the newcomer takes its place.
    table.promote(&id(4), net(4), NOW);
    let incumbent = table.collision_to_test().unwrap();
    table.tested(&incumbent, false, NOW);
    assert!(table.get(&id(4)).unwrap().is_tried());
    assert!(table.get(&incumbent).is_none_or(|e| !e.is_tried()));
    assert_eq!(table.entries().iter().filter(|e| e.is_tried()).count(), 4);
    // A failing incumbent needs no test: it gives way at once.
    assert!(table.get(&id(2)).unwrap().is_tried());
    for _ in 0..MAX_HEALTHY_FAILURES {
        table.record_failure(&id(2));
    }
    table.insert(honest(5), link(1), t(2), NOW).unwrap();
    table.promote(&id(5), net(5), NOW);
    assert!(table.get(&id(5)).unwrap().is_tried());
    assert!(table.get(&id(2)).is_none_or(|e| !e.is_tried()));
    assert_eq!(table.collision_to_test(), None);
}

#[test]
fn a_reached_node_goes_straight_to_the_tried_table() {
    let mut table = Table::<8>::new(own(), KEY);
    assert_eq!(
        table.insert_reached(honest(1), net(1), t(0), NOW),
        Ok(InsertOutcome::Added)
    );
    let entry = table.get(&id(1)).unwrap();
    assert!(matches!(entry.place(), Place::Tried { network, .. } if network == net(1)));
    // A feeler that fails marks a new entry as replaceable.
    table.insert(honest(2), link(1), t(0), NOW).unwrap();
    table.feeler_failed(&id(2));
    assert!(!table.get(&id(2)).unwrap().is_healthy(NOW));
    table.feeler_failed(&id(1));
    assert!(
        table.get(&id(1)).unwrap().is_healthy(NOW),
        "only new entries"
    );
}

#[test]
fn relays_without_an_address_are_not_path_relays() {
    let mut table = Table::<8>::new(own(), KEY);
    table.insert(honest(1), Source::Local, t(0), NOW).unwrap();
    let identity = Identity::from_secret_bytes([9; 32]);
    let repr = DescriptorRepr {
        identity: identity.public(),
        onion_key: [2; 32],
        relay: true,
        issued_at: NOW,
        expires_at: NOW + 60,
        addresses: heapless::Vec::new(),
    };
    let mut buf = [0u8; MAX_DESCRIPTOR_LEN];
    let n = repr.emit_signed(&identity, &mut buf).unwrap();
    table
        .insert(
            verify_descriptor(&buf[..n], NOW).unwrap(),
            Source::Local,
            t(0),
            NOW,
        )
        .unwrap();
    let relays: std::vec::Vec<_> = table.healthy_relays(NOW).map(|e| e.node_id()).collect();
    assert_eq!(relays, vec![id(1)]);
    assert_eq!(table.len(), 2, "it is still known (a destination)");
}

#[test]
fn draws_weigh_buckets_not_entries() {
    let mut table = Table::<64>::new(own(), KEY);
    // One crowded bucket (one source, one network) and one lone entry.
    for seed in 0..4 {
        table
            .insert(node(seed, 7, NOW, 3600), link(3), t(0), NOW)
            .unwrap();
    }
    let lone = (100..)
        .map(|seed| node(seed, 8, NOW, 3600))
        .find(|d| {
            let mut probe = table.clone();
            probe.insert(d.clone(), Source::Local, t(0), NOW).is_ok()
                && probe.get(&d.node_id()).unwrap().place() != table.entries()[0].place()
        })
        .unwrap();
    let lone_id = lone.node_id();
    table.insert(lone, Source::Local, t(0), NOW).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let draws = 4_000;
    let hits = (0..draws)
        .filter(|_| {
            table
                .draw(Tables::Both, &mut rng, |_| true)
                .unwrap()
                .node_id()
                == lone_id
        })
        .count();
    // Half the draws, not a fifth: the crowded bucket counts once.
    assert!((1_800..=2_200).contains(&hits), "{hits} of {draws}");
    assert!(table.draw(Tables::Tried, &mut rng, |_| true).is_none());
}

#[test]
fn samples_are_distinct_bounded_reproducible_and_mix_both_tables() {
    let mut table = Table::<64>::new(own(), KEY);
    for seed in 0..10 {
        table
            .insert(honest(seed), Source::Local, t(0), NOW)
            .unwrap();
    }
    for seed in 0..3 {
        table.promote(&id(seed), net(seed as u8), NOW);
    }
    let pick = |seed: u64| -> std::vec::Vec<NodeId> {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        table
            .sample::<4>(&mut rng)
            .iter()
            .map(|e| e.node_id())
            .collect()
    };
    let a = pick(1);
    assert_eq!(a.len(), 4);
    let mut unique = a.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 4, "no node sampled twice");
    assert_eq!(a, pick(1), "same seed, same sample");
    let tried = a
        .iter()
        .filter(|id| table.get(id).unwrap().is_tried())
        .count();
    assert_eq!(tried, 2, "half from the tried table");
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    assert_eq!(
        table.sample::<32>(&mut rng).len(),
        10,
        "at most the whole table"
    );
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..200 {
        seen.extend(pick(seed));
    }
    assert_eq!(seen.len(), 10, "every node shows up");
}

#[test]
fn a_nodes_own_descriptor_over_its_link_displaces_the_stalest_entry_of_a_full_bucket() {
    let mut table = Table::<64>::new(own(), KEY);
    let same = |seed: u32| node(seed, 7, NOW, 3600);
    let len = table.layout().new_bucket_len as u32;
    for seed in 0..len {
        assert_eq!(
            table.insert(same(seed), link(3), t(u64::from(seed)), NOW),
            Ok(InsertOutcome::Added)
        );
    }
    // Entry 0 is heard of again: entry 1 is now the stalest.
    table.refresh(&same(0).node_id(), t(10));
    assert_eq!(
        table.insert(same(100), link(3), t(11), NOW),
        Err(InsertError::BucketFull),
        "gossip never displaces a healthy entry"
    );
    assert_eq!(
        table.admits_from_peer(&same(100).node_id(), link(3), net(7), NOW),
        Ok(())
    );
    assert_eq!(
        table.insert_from_peer(same(100), link(3), t(12), NOW),
        Ok(InsertOutcome::Replaced {
            evicted: same(1).node_id()
        })
    );
    // Known already: updated as any descriptor, nothing displaced.
    assert_eq!(
        table.insert_from_peer(same(100), link(3), t(13), NOW),
        Ok(InsertOutcome::Refreshed)
    );
}

#[test]
fn an_entry_with_messages_waiting_is_never_displaced() {
    let mut table = Table::<64>::new(own(), KEY);
    let same = |seed: u32| node(seed, 7, NOW, 3600);
    let len = table.layout().new_bucket_len as u32;
    for seed in 0..len {
        assert_eq!(
            table.insert(same(seed), link(3), t(u64::from(seed)), NOW),
            Ok(InsertOutcome::Added)
        );
    }
    // Entry 0 is both the stalest and failing: the first to give way.
    let waited_for = same(0).node_id();
    for _ in 0..MAX_HEALTHY_FAILURES {
        table.record_failure(&waited_for);
    }
    table.mark_in_use(|id| *id == waited_for);
    let gossiped = table.insert(same(100), link(3), t(20), NOW);
    assert_eq!(gossiped, Err(InsertError::BucketFull));
    assert_eq!(
        table.insert_from_peer(same(101), link(3), t(21), NOW),
        Ok(InsertOutcome::Replaced {
            evicted: same(1).node_id()
        }),
        "the stalest entry not in use gives way"
    );
    assert!(table.get(&waited_for).is_some());
    // The messages left: it is an ordinary failing entry again.
    table.mark_in_use(|_| false);
    assert_eq!(
        table.insert(same(102), link(3), t(22), NOW),
        Ok(InsertOutcome::Replaced {
            evicted: waited_for
        })
    );
}

#[test]
fn a_node_reached_through_introducers_is_no_path_relay() {
    // It lists an address (behind NAT, its private one), but nobody can
    // dial it: drawing it as a relay or guard would make paths that fail.
    let identity = Identity::from_secret_bytes([0x22; 32]);
    let mut addresses = heapless::Vec::new();
    let address = crate::identity::Address {
        transport: crate::identity::Transport::Tcp,
        socket: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 9, 0, 1)), 7000),
    };
    addresses.push(address).unwrap();
    let repr = DescriptorRepr {
        identity: identity.public(),
        onion_key: [1; 32],
        relay: true,
        issued_at: NOW,
        expires_at: NOW + 3600,
        addresses,
    };
    let introducer = crate::identity::Introducer {
        node_id: id(5),
        onion_key: [5; 32],
        address,
    };
    let mut buf = [0u8; MAX_DESCRIPTOR_LEN];
    let n = repr
        .emit_signed_introduced(&[introducer], &identity, &mut buf)
        .unwrap();
    let introduced = verify_descriptor(&buf[..n], NOW).unwrap();
    let n = repr.emit_signed(&identity, &mut buf).unwrap();
    let plain = verify_descriptor(&buf[..n], NOW).unwrap();
    let mut table = Table::<8>::new(own(), KEY);
    table.insert(plain, link(3), t(0), NOW).unwrap();
    assert_eq!(table.healthy_relays(NOW).count(), 1);
    // Its next descriptor lists an introducer.
    let mut table = Table::<8>::new(own(), KEY);
    table.insert(introduced, link(3), t(0), NOW).unwrap();
    assert_eq!(table.healthy_relays(NOW).count(), 0);
}
