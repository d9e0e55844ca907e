//! A node's table of known nodes, at node level: full tables evict by the
//! stated rule (expired first, then failing, then the stalest), and forged
//! descriptors never get in.

use veil_core::discovery::{InsertError, InsertOutcome};
use veil_core::identity::{DescriptorRepr, Identity, NodeId, MAX_DESCRIPTOR_LEN};
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

#[test]
fn a_full_node_table_evicts_expired_then_failing_then_stalest_entries() {
    let mut sim = Sim::new(40);
    let node = sim.add_node(
        NodeConfig {
            unix_time_at_zero: UNIX_AT_ZERO,
            ..NodeConfig::default()
        },
        2,
    );
    let _ = sim.now();
    let mut ids = Vec::new();
    // Entry i was issued at second i; entry 5 expires in 100 s.
    for i in 0..SIM_PEERS as u32 {
        let expires = if i == 5 { 100 } else { 10_000 };
        let (id, bytes) = descriptor(i, UNIX_AT_ZERO + u64::from(i), UNIX_AT_ZERO + expires);
        let outcome = sim.handle(node, LearnDescriptor { descriptor: &bytes });
        assert_eq!(outcome, Ok(InsertOutcome::Added));
        ids.push(id);
    }
    assert_eq!(sim.node(node).core.node_table().len(), SIM_PEERS);
    sim.run_for(Duration::from_secs(200));
    let _ = sim.now();
    let fresh = UNIX_AT_ZERO + 150;

    // 1. The expired entry goes first.
    let (_, bytes) = descriptor(1_000, fresh, fresh + 10_000);
    let outcome = sim.handle(node, LearnDescriptor { descriptor: &bytes });
    assert_eq!(outcome, Ok(InsertOutcome::Replaced { evicted: ids[5] }));

    // 2. Then a failing one, even though it is not the stalest.
    sim.handle(node, RecordPeerFailure { peer: ids[40] });
    let (_, bytes) = descriptor(1_001, fresh, fresh + 10_000);
    let outcome = sim.handle(node, LearnDescriptor { descriptor: &bytes });
    assert_eq!(outcome, Ok(InsertOutcome::Replaced { evicted: ids[40] }));

    // 3. Then the stalest: the earliest issued.
    let (_, bytes) = descriptor(1_002, fresh, fresh + 10_000);
    let outcome = sim.handle(node, LearnDescriptor { descriptor: &bytes });
    assert_eq!(outcome, Ok(InsertOutcome::Replaced { evicted: ids[0] }));

    // A newcomer staler than everything held is refused, not inserted.
    let (_, bytes) = descriptor(1_003, UNIX_AT_ZERO, fresh + 10_000);
    let outcome = sim.handle(node, LearnDescriptor { descriptor: &bytes });
    assert_eq!(
        outcome,
        Err(DescriptorRefusal::Table(InsertError::TableFull))
    );
    assert_eq!(sim.node(node).core.node_table().len(), SIM_PEERS);
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
