//! A node's table of known nodes, at node level: a full bucket keeps its
//! healthy entries whatever a newcomer claims, failing and expired entries
//! give way, and forged descriptors never get in.

use std::collections::HashMap;

use veil_core::discovery::{InsertError, InsertOutcome, Place, MAX_HEALTHY_FAILURES};
use veil_core::identity::{
    DescriptorRepr, Identity, NodeId, MAX_CLOCK_SKEW_SECS, MAX_DESCRIPTOR_LEN,
};
use veil_core::node::{DescriptorRefusal, LearnDescriptor, NodeConfig, RecordPeerFailure};
use veil_core::time::Duration;
use veil_sim::{Sim, SIM_PEERS};

const UNIX_AT_ZERO: u64 = 1_800_000_000;

fn descriptor(seed: u32, issued_at: u64, expires_at: u64) -> (NodeId, Vec<u8>) {
    let mut secret = [7u8; 32];
    secret[..4].copy_from_slice(&seed.to_be_bytes());
    let identity = Identity::from_secret_bytes(secret);
    let repr = DescriptorRepr {
        identity: identity.public(),
        onion_key: [seed as u8; 32],
        relay: true,
        issued_at,
        expires_at,
        addresses: Default::default(),
    };
    let mut buf = [0u8; MAX_DESCRIPTOR_LEN];
    let len = repr.emit_signed(&identity, &mut buf).unwrap();
    (identity.node_id(), buf[..len].to_vec())
}

/// Learns descriptors of fresh nodes (valid until `expires_at`) until one
/// is refused because its bucket is full; returns the seed refused and
/// where every entry held then sits.
fn fill_a_bucket(sim: &mut Sim, node: usize, expires_at: u64) -> (u32, HashMap<NodeId, Place>) {
    for seed in 0..10 * SIM_PEERS as u32 {
        let (_, bytes) = descriptor(seed, UNIX_AT_ZERO, expires_at);
        match sim.handle(node, LearnDescriptor { descriptor: &bytes }) {
            Ok(InsertOutcome::Added) => {}
            Err(DescriptorRefusal::Table(InsertError::BucketFull)) => {
                let table = sim.node(node).core.node_table();
                assert!(table.len() < SIM_PEERS, "a bucket fills before the table");
                let places = table
                    .entries()
                    .iter()
                    .map(|e| (e.node_id(), e.place()))
                    .collect();
                return (seed, places);
            }
            other => panic!("descriptor {seed}: {other:?}"),
        }
    }
    panic!("no bucket filled");
}

/// Issue 16, item 1: the old table ranked entries by issue time, so
/// descriptors dated "now + 300 s" evicted every honest entry. Now a full
/// bucket keeps its healthy entries whatever a newcomer's issue time, and
/// gives way only to failing or expired ones, in the newcomer's bucket.
#[test]
fn a_full_bucket_keeps_healthy_entries_whatever_the_newcomers_issue_time() {
    let mut sim = Sim::new(40);
    let config = NodeConfig {
        unix_time_at_zero: UNIX_AT_ZERO,
        ..NodeConfig::default()
    };
    let node = sim.add_node(config, 2);
    let (seed, held) = fill_a_bucket(&mut sim, node, UNIX_AT_ZERO + 10_000);
    // The same node again, dated as far ahead as the clock skew allows.
    let (newcomer, future) = descriptor(
        seed,
        UNIX_AT_ZERO + MAX_CLOCK_SKEW_SECS,
        UNIX_AT_ZERO + 10_000,
    );
    let outcome = sim.handle(
        node,
        LearnDescriptor {
            descriptor: &future,
        },
    );
    assert_eq!(
        outcome,
        Err(DescriptorRefusal::Table(InsertError::BucketFull))
    );
    let table = sim.node(node).core.node_table();
    assert_eq!(table.len(), held.len());
    assert!(held.keys().all(|id| table.get(id).is_some()));

    // Failing entries give way: the newcomer replaces one of its bucket.
    for id in held.keys() {
        for _ in 0..MAX_HEALTHY_FAILURES {
            sim.handle(node, RecordPeerFailure { peer: *id });
        }
    }
    let outcome = sim.handle(
        node,
        LearnDescriptor {
            descriptor: &future,
        },
    );
    let Ok(InsertOutcome::Replaced { evicted }) = outcome else {
        panic!("{outcome:?}");
    };
    let table = sim.node(node).core.node_table();
    let place = table.get(&newcomer).expect("stored").place();
    assert_eq!(held.get(&evicted), Some(&place), "evicted from its bucket");
    assert_eq!(table.len(), held.len());

    // Expired entries give way too.
    let node = sim.add_node(config, 2);
    let (seed, held) = fill_a_bucket(&mut sim, node, UNIX_AT_ZERO + 100);
    let (newcomer, bytes) = descriptor(seed, UNIX_AT_ZERO + 150, UNIX_AT_ZERO + 10_000);
    sim.run_for(Duration::from_secs(200));
    let outcome = sim.handle(node, LearnDescriptor { descriptor: &bytes });
    let Ok(InsertOutcome::Replaced { evicted }) = outcome else {
        panic!("{outcome:?}");
    };
    let place = sim
        .node(node)
        .core
        .node_table()
        .get(&newcomer)
        .unwrap()
        .place();
    assert_eq!(held.get(&evicted), Some(&place), "evicted from its bucket");
}

#[test]
fn forged_expired_and_oversized_descriptors_are_refused() {
    let mut sim = Sim::new(41);
    let node = sim.add_node(
        NodeConfig {
            unix_time_at_zero: UNIX_AT_ZERO,
            ..NodeConfig::default()
        },
        2,
    );
    let _ = sim.now();
    let (_, good) = descriptor(1, UNIX_AT_ZERO, UNIX_AT_ZERO + 1_000);
    let mut forged = good.clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    let mut altered = good.clone();
    altered[40] ^= 1;
    let (_, expired) = descriptor(2, UNIX_AT_ZERO - 100, UNIX_AT_ZERO - 1);
    let mut oversized = good.clone();
    oversized.resize(MAX_DESCRIPTOR_LEN + 1, 0);
    for bad in [&forged, &altered, &expired, &oversized] {
        let outcome = sim.handle(node, LearnDescriptor { descriptor: bad });
        assert!(
            matches!(outcome, Err(DescriptorRefusal::Invalid(_))),
            "{outcome:?}"
        );
    }
    assert!(sim.node(node).core.node_table().is_empty());
    let outcome = sim.handle(node, LearnDescriptor { descriptor: &good });
    assert_eq!(outcome, Ok(InsertOutcome::Added));
}
