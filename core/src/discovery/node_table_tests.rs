//! Tests of the node table's bounds and eviction rule.

use chacha20::ChaCha20Rng;
use rand_core::SeedableRng;

use super::*;
use crate::identity::{verify_descriptor, DescriptorRepr, Identity, NodeId, MAX_DESCRIPTOR_LEN};
use crate::time::Instant;

const NOW: u64 = 1_800_000_000;

fn descriptor(
    seed: u8,
    issued_at: u64,
    lifetime: u64,
    relay: bool,
) -> crate::identity::VerifiedDescriptor {
    let identity = Identity::from_secret_bytes([seed; 32]);
    let repr = DescriptorRepr {
        identity: identity.public(),
        onion_key: [seed; 32],
        relay,
        issued_at,
        expires_at: issued_at + lifetime,
        addresses: heapless::Vec::new(),
    };
    let mut buf = [0u8; MAX_DESCRIPTOR_LEN];
    let n = repr.emit_signed(&identity, &mut buf).unwrap();
    // Verify at issue time so that already-expired test descriptors load.
    verify_descriptor(&buf[..n], issued_at).unwrap()
}

fn own() -> NodeId {
    Identity::from_secret_bytes([0; 32]).node_id()
}

fn t(secs: u64) -> Instant {
    Instant::from_micros(secs * 1_000_000)
}

#[test]
fn newer_descriptors_replace_older_and_replays_are_refused() {
    let mut table = NodeTable::<heapless::Vec<PeerEntry, 4>>::new(own());
    assert_eq!(
        table.insert(descriptor(1, NOW, 3600, true), t(1), NOW),
        Ok(InsertOutcome::Added)
    );
    assert_eq!(
        table.insert(descriptor(1, NOW, 3600, true), t(2), NOW),
        Ok(InsertOutcome::Refreshed)
    );
    assert_eq!(
        table
            .get(&descriptor(1, NOW, 1, true).node_id())
            .unwrap()
            .last_seen,
        t(2)
    );
    assert_eq!(
        table.insert(descriptor(1, NOW + 10, 3600, true), t(3), NOW),
        Ok(InsertOutcome::Updated)
    );
    assert_eq!(
        table.insert(descriptor(1, NOW, 3600, true), t(4), NOW),
        Err(InsertError::OlderThanKnown)
    );
    assert_eq!(table.len(), 1);
    let own_descriptor = descriptor(0, NOW, 3600, true);
    assert_eq!(
        table.insert(own_descriptor, t(5), NOW),
        Err(InsertError::OwnDescriptor)
    );
}

#[test]
fn a_full_table_evicts_expired_first() {
    let mut table = NodeTable::<heapless::Vec<PeerEntry, 3>>::new(own());
    table
        .insert(descriptor(1, NOW - 100, 200, true), t(0), NOW)
        .unwrap(); // expires NOW + 100
    table
        .insert(descriptor(2, NOW - 3000, 3050, true), t(0), NOW)
        .unwrap(); // expires NOW + 50
    table
        .insert(descriptor(3, NOW, 3600, true), t(0), NOW)
        .unwrap();
    // Node 3 is live but failing; 1 and 2 have expired, 2 for longer.
    table.record_failure(&descriptor(3, NOW, 1, true).node_id());
    let later = NOW + 200;
    let outcome = table
        .insert(descriptor(4, later, 3600, true), t(1), later)
        .unwrap();
    assert_eq!(
        outcome,
        InsertOutcome::Replaced {
            evicted: descriptor(2, NOW, 1, true).node_id()
        }
    );
    let outcome = table
        .insert(descriptor(5, later, 3600, true), t(1), later)
        .unwrap();
    assert_eq!(
        outcome,
        InsertOutcome::Replaced {
            evicted: descriptor(1, NOW, 1, true).node_id()
        }
    );
    // Nothing expired now: the failing node is next.
    let outcome = table
        .insert(descriptor(6, later, 3600, true), t(1), later)
        .unwrap();
    assert_eq!(
        outcome,
        InsertOutcome::Replaced {
            evicted: descriptor(3, NOW, 1, true).node_id()
        }
    );
    assert_eq!(table.len(), 3);
}

#[test]
fn then_failing_then_stale_entries_make_way() {
    let mut table = NodeTable::<heapless::Vec<PeerEntry, 3>>::new(own());
    for seed in 1..=3 {
        table
            .insert(
                descriptor(seed, NOW + u64::from(seed), 3600, true),
                t(0),
                NOW,
            )
            .unwrap();
    }
    let failing = descriptor(3, NOW, 1, true).node_id();
    table.record_failure(&failing);
    let outcome = table
        .insert(descriptor(4, NOW, 3600, true), t(1), NOW)
        .unwrap();
    assert_eq!(
        outcome,
        InsertOutcome::Replaced { evicted: failing },
        "the failing node goes first"
    );
    // No failures left: the stalest (oldest issue time) goes, if the newcomer is fresher.
    let stale = descriptor(4, NOW, 1, true).node_id();
    let outcome = table
        .insert(descriptor(5, NOW + 50, 3600, true), t(2), NOW)
        .unwrap();
    assert_eq!(outcome, InsertOutcome::Replaced { evicted: stale });
    // A newcomer staler than everything is refused.
    assert_eq!(
        table.insert(descriptor(6, NOW - 10, 3600, true), t(3), NOW),
        Err(InsertError::TableFull)
    );
    assert_eq!(table.len(), 3);
}

#[test]
fn health_and_relay_flags_filter_paths() {
    let mut table = NodeTable::<heapless::Vec<PeerEntry, 8>>::new(own());
    table
        .insert(descriptor(1, NOW, 3600, true), t(0), NOW)
        .unwrap();
    table
        .insert(descriptor(2, NOW, 3600, false), t(0), NOW)
        .unwrap();
    table
        .insert(descriptor(3, NOW, 3600, true), t(0), NOW)
        .unwrap();
    let three = descriptor(3, NOW, 1, true).node_id();
    for _ in 0..MAX_HEALTHY_FAILURES {
        table.record_failure(&three);
    }
    let healthy: std::vec::Vec<_> = table.healthy_relays(NOW).map(|e| e.node_id()).collect();
    assert_eq!(healthy, vec![descriptor(1, NOW, 1, true).node_id()]);
    table.record_success(&three, t(9));
    assert_eq!(table.healthy_relays(NOW).count(), 2);
    assert_eq!(
        table.healthy_relays(NOW + 3600).count(),
        0,
        "expired nodes are not healthy"
    );
    assert_eq!(table.remove_expired(NOW + 3600), 3);
    assert!(table.is_empty());
}

#[test]
fn samples_are_distinct_bounded_and_reproducible() {
    let mut table = NodeTable::<heapless::Vec<PeerEntry, 16>>::new(own());
    for seed in 1..=10 {
        table
            .insert(descriptor(seed, NOW, 3600, true), t(0), NOW)
            .unwrap();
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
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    assert_eq!(
        table.sample::<32>(&mut rng).len(),
        10,
        "at most the whole table"
    );
    // Over many draws every node shows up.
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..200 {
        seen.extend(pick(seed));
    }
    assert_eq!(seen.len(), 10);
}
