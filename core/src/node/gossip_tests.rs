//! What goes into a gossip sample: news of a node reached through
//! introducers (a descriptor it issued within `HOT_SECS`) goes in every
//! sample, so a changed introducer list spreads ahead of the random rest.

#![cfg(feature = "introducers")]

use chacha20::ChaCha20Rng;
use rand_core::SeedableRng;

use super::descriptor_cells::Arrival;
use super::discovery::{Discovery, GOSSIP_SAMPLE, HOT_SECS};
use super::{NodeConfig, NodeStats};
use crate::discovery::{PeerEntry, Source};
use crate::identity::{
    Address, DescriptorRepr, Identity, Introducer, NodeId, Transport, MAX_DESCRIPTOR_LEN,
};
use crate::time::Instant;

const UNIX_AT_ZERO: u64 = 1_800_000_000;
/// Where the test stands: 10 minutes after zero.
const NOW_SECS: u64 = 600;

fn config() -> NodeConfig {
    NodeConfig {
        unix_time_at_zero: UNIX_AT_ZERO,
        ..NodeConfig::default()
    }
}

/// Node `seed`'s descriptor issued `age` seconds ago; reached through one
/// introducer if `introduced`.
fn descriptor(seed: u8, age: u64, introduced: bool) -> std::vec::Vec<u8> {
    let identity = Identity::from_secret_bytes([seed; 32]);
    let issued_at = UNIX_AT_ZERO + NOW_SECS - age;
    let mut addresses = heapless::Vec::new();
    if !introduced {
        let socket = format!("198.51.{seed}.1:9001").parse().unwrap();
        addresses
            .push(Address {
                transport: Transport::Tcp,
                socket,
            })
            .unwrap();
    }
    let repr = DescriptorRepr {
        identity: identity.public(),
        onion_key: [seed; 32],
        relay: true,
        issued_at,
        expires_at: issued_at + 3600,
        addresses,
    };
    let introducers = [Introducer {
        node_id: NodeId([0xee; 32]),
        onion_key: [0xef; 32],
        address: Address {
            transport: Transport::Tcp,
            socket: "203.0.113.9:9001".parse().unwrap(),
        },
    }];
    let listed: &[Introducer] = if introduced { &introducers } else { &[] };
    let mut buf = vec![0u8; MAX_DESCRIPTOR_LEN];
    let n = repr
        .emit_signed_introduced(listed, &identity, &mut buf)
        .unwrap();
    buf.truncate(n);
    buf
}

fn ids_in_samples(
    discovery: &Discovery<heapless::Vec<PeerEntry, 64>>,
    rng: &mut ChaCha20Rng,
    rounds: usize,
) -> std::vec::Vec<std::vec::Vec<NodeId>> {
    (0..rounds)
        .map(|_| {
            discovery
                .gossip_cells(rng, None, UNIX_AT_ZERO + NOW_SECS)
                .iter()
                .map(|cell| {
                    let repr = crate::cell::CellRepr::parse(cell).unwrap();
                    let bytes = crate::cell::parse_descriptor_body(&repr.body).unwrap();
                    let packet =
                        crate::identity::precheck_descriptor(&bytes, UNIX_AT_ZERO + NOW_SECS)
                            .unwrap();
                    NodeId::from_identity_key(&packet.identity_key())
                })
                .collect()
        })
        .collect()
}

#[test]
fn news_of_an_introduced_node_is_in_every_sample_and_old_news_is_not() {
    let config = config();
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let own = Identity::from_secret_bytes([1; 32]);
    let mut discovery: Discovery<heapless::Vec<PeerEntry, 64>> =
        Discovery::new(&own, &config, &mut rng);
    let now = Instant::from_micros(NOW_SECS * 1_000_000);
    let mut stats = NodeStats::default();
    // Thirty ordinary nodes, an introduced node with an old descriptor,
    // and one whose descriptor changed a minute ago.
    let mut learn = |bytes: &[u8]| {
        discovery
            .learn(
                &config,
                now,
                bytes,
                Arrival::From(Source::Local),
                &mut stats,
            )
            .unwrap();
    };
    for seed in 10..40 {
        learn(&descriptor(seed, 300, false));
    }
    learn(&descriptor(50, HOT_SECS + 60, true));
    learn(&descriptor(51, 60, true));
    let fresh = Identity::from_secret_bytes([51; 32]).node_id();
    let stale = Identity::from_secret_bytes([50; 32]).node_id();
    let samples = ids_in_samples(&discovery, &mut rng, 40);
    assert!(samples.iter().all(|s| s.len() == GOSSIP_SAMPLE));
    assert!(
        samples.iter().all(|s| s.contains(&fresh)),
        "the news went in every sample"
    );
    let with_stale = samples.iter().filter(|s| s.contains(&stale)).count();
    assert!(
        with_stale < samples.len() / 2,
        "old news went in {with_stale} of {} samples, as any entry may",
        samples.len()
    );
    assert!(samples
        .iter()
        .all(|s| s.iter().collect::<std::collections::BTreeSet<_>>().len() == s.len()));
}
