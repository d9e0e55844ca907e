//! Descriptor gossip cannot burn a node's CPU (issue 16, attack 5): the
//! checks that cost nothing (expiry, older than known, the stored bytes
//! again) run before the signature is verified (~65 µs), a descriptor seen
//! before is not verified again, and a link that keeps sending what an
//! honest peer never does (forgeries, more than its quota) is closed.

use crate::common;

use common::*;
use veil_core::cell::{emit_descriptor_body, CellCommand, CellRepr, CircuitId};
use veil_core::discovery::InsertError;
use veil_core::identity::{DescriptorError, DescriptorRepr, Identity, MAX_DESCRIPTOR_LEN};
use veil_core::link::{Cell, CloseReason, ClosedBy};
use veil_core::node::{
    DescriptorRefusal, Event, NodeConfig, DESCRIPTORS_PER_INTERVAL, DESCRIPTOR_BURST, MAX_STRIKES,
};
use veil_core::time::Duration;
use veil_sim::{Sim, StreamConditions};

const UNIX_AT_ZERO: u64 = 1_800_000_000;

fn config() -> NodeConfig {
    NodeConfig {
        unix_time_at_zero: UNIX_AT_ZERO,
        gossip_interval: Duration::from_secs(1),
        link_only: true,
        ..NodeConfig::default()
    }
}

/// A descriptor of node `seed`, issued at `issued_at`, expiring at
/// `expires_at`, with onion key `onion`.
fn descriptor(seed: u32, issued_at: u64, expires_at: u64, onion: u8) -> Vec<u8> {
    let mut secret = [0x33; 32];
    secret[..4].copy_from_slice(&seed.to_be_bytes());
    let identity = Identity::from_secret_bytes(secret);
    let repr = DescriptorRepr {
        identity: identity.public(),
        onion_key: [onion; 32],
        relay: true,
        issued_at,
        expires_at,
        addresses: Default::default(),
    };
    let mut buf = [0u8; MAX_DESCRIPTOR_LEN];
    let len = repr.emit_signed(&identity, &mut buf).unwrap();
    buf[..len].to_vec()
}

fn descriptor_cell(bytes: &[u8]) -> Cell {
    CellRepr {
        circuit_id: CircuitId::LINK,
        command: CellCommand::Descriptor,
        body: emit_descriptor_body(bytes).unwrap(),
    }
    .emit()
}

fn refusals(sim: &Sim, node: usize) -> Vec<DescriptorRefusal> {
    sim.node(node)
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::DescriptorRefused { reason, .. } => Some(*reason),
            _ => None,
        })
        .collect()
}

fn verified(sim: &Sim, node: usize) -> u64 {
    sim.node(node).core.stats().descriptors_verified
}

#[test]
fn identical_stale_and_expired_descriptors_are_not_verified() {
    let Pair {
        mut sim,
        a,
        b,
        la,
        lb,
        ..
    } = pair(50, config(), StreamConditions::LAN);
    sim.run_for(Duration::from_millis(200));
    let start = verified(&sim, b);
    let received = sim.node(b).core.stats().descriptors_received;
    let now = UNIX_AT_ZERO;

    // The stored bytes again, many times: only `last_seen` moves.
    let own = sim.node(a).core.descriptor().to_vec();
    for _ in 0..20 {
        sim.send_cell(a, la, &descriptor_cell(&own)).unwrap();
    }
    sim.run_for(Duration::from_millis(100));
    assert_eq!(verified(&sim, b), start);

    // A new node: verified once; the same again, never.
    let newer = descriptor(1, now + 10, now + 3_600, 1);
    for _ in 0..10 {
        sim.send_cell(a, la, &descriptor_cell(&newer)).unwrap();
    }
    sim.run_for(Duration::from_millis(100));
    assert_eq!(verified(&sim, b), start + 1);
    assert!(refusals(&sim, b).is_empty());

    // Older than the stored one, and expired: refused unverified.
    let older = descriptor(1, now, now + 3_600, 2);
    let expired = descriptor(2, now - 100, now - 1, 3);
    for bytes in [&older, &expired] {
        sim.send_cell(a, la, &descriptor_cell(bytes)).unwrap();
    }
    sim.run_for(Duration::from_millis(100));
    assert_eq!(
        refusals(&sim, b),
        vec![
            DescriptorRefusal::Table(InsertError::OlderThanKnown),
            DescriptorRefusal::Invalid(DescriptorError::Expired),
        ]
    );
    assert_eq!(verified(&sim, b), start + 1);
    // An honest peer can send those: the link stays up.
    assert_eq!(closed(&sim, b, lb), None);
    let stats = sim.node(b).core.stats();
    assert_eq!(stats.descriptors_received - received, 20 + 10 + 2);
}

#[test]
fn a_link_that_keeps_sending_forgeries_is_closed() {
    let Pair {
        mut sim,
        a,
        b,
        la,
        lb,
        ..
    } = pair(51, config(), StreamConditions::LAN);
    sim.run_for(Duration::from_millis(200));
    let now = UNIX_AT_ZERO;
    let genuine = descriptor(1, now, now + 3_600, 0);
    sim.send_cell(a, la, &descriptor_cell(&genuine)).unwrap();
    sim.run_for(Duration::from_millis(100));
    let start = verified(&sim, b);
    // Other onion keys under the stored issue time: a node never signs
    // two, so each is a forgery, refused unverified, and a strike.
    for i in 0..u32::from(MAX_STRIKES) - 1 {
        let forged = descriptor(1, now, now + 3_600, 1 + i as u8);
        sim.send_cell(a, la, &descriptor_cell(&forged)).unwrap();
        sim.run_for(Duration::from_millis(50));
    }
    assert_eq!(closed(&sim, b, lb), None, "up to the last strike");
    assert_eq!(refusals(&sim, b).len(), usize::from(MAX_STRIKES) - 1);
    assert!(refusals(&sim, b)
        .iter()
        .all(|r| *r == DescriptorRefusal::Table(InsertError::NotNewer)));
    let forged = descriptor(1, now, now + 3_600, 99);
    sim.send_cell(a, la, &descriptor_cell(&forged)).unwrap();
    sim.run_for(Duration::from_millis(100));
    assert_eq!(
        closed(&sim, b, lb),
        Some((CloseReason::ProtocolViolation, ClosedBy::Local))
    );
    assert_eq!(verified(&sim, b), start);
}

#[test]
fn a_descriptor_flood_over_the_link_quota_is_dropped_unread_and_closes_the_link() {
    let Pair {
        mut sim,
        a,
        b,
        la,
        lb,
        ..
    } = pair(52, config(), StreamConditions::LAN);
    sim.run_for(Duration::from_millis(200));
    let start = verified(&sim, b);
    let now = UNIX_AT_ZERO;
    // Distinct valid descriptors, all at once: the burst is read (and
    // verified), the rest is dropped unread until the strikes run out.
    let flood = DESCRIPTOR_BURST + usize::from(MAX_STRIKES) + 16;
    'flood: for seed in 0..flood as u32 {
        let bytes = descriptor(100 + seed, now, now + 3_600, 7);
        // A full send queue drains in a millisecond or so on the LAN.
        while sim.send_cell(a, la, &descriptor_cell(&bytes)).is_err() {
            if closed(&sim, a, la).is_some() {
                break 'flood;
            }
            sim.run_for(Duration::from_millis(1));
        }
    }
    sim.run_for(Duration::from_millis(100));
    assert_eq!(
        closed(&sim, b, lb),
        Some((CloseReason::ProtocolViolation, ClosedBy::Local))
    );
    let stats = sim.node(b).core.stats();
    assert!(stats.descriptors_over_quota >= u64::from(MAX_STRIKES));
    assert!(verified(&sim, b) - start <= (DESCRIPTOR_BURST + DESCRIPTORS_PER_INTERVAL) as u64);
}
