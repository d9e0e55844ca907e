//! A destination whose message pool absorbs more than the 128-cell window
//! every receiver must take widens its sender's window with its first
//! `CREDIT` (relay spec §9): one circuit then carries more than 128 cells
//! per round trip, which is what a busy path's bandwidth-delay product
//! needs (docs/performance.md). Without the widening the window never
//! exceeds 128 cells.

use std::time::{Duration, Instant};

use veil_core::circuit::{CIRCUIT_WINDOW, MAX_CIRCUIT_WINDOW};
use veil_core::node::{Event, SendMessage};

use crate::support::{one_relay_config, Peer};

/// Wall-clock cap for the whole transfer.
const CAP: Duration = Duration::from_secs(30);
/// Messages sent, each of `SIZE` bytes: a few windows' worth of cells.
const MESSAGES: usize = 12;
const SIZE: usize = 60 * 1024;

#[test]
fn a_std_destination_widens_its_senders_window() {
    let mut a = Peer::with_config(41, one_relay_config(), "127.41.0.1:0");
    let mut b = Peer::with_config(42, one_relay_config(), "127.42.0.1:0");
    let mut c = Peer::with_config(43, one_relay_config(), "127.43.0.1:0");
    let bootstrap = a.rt.local_addr();
    b.rt.add_bootstrap(bootstrap).unwrap();
    c.rt.add_bootstrap(bootstrap).unwrap();
    let c_id = c.id();
    let body = vec![0x5au8; SIZE];
    let start = Instant::now();
    let mut sent = Vec::new();
    let mut delivered = 0;
    let mut widest = 0u16;
    while start.elapsed() < CAP {
        for peer in [&mut a, &mut b, &mut c] {
            peer.turn();
        }
        if sent.len() < MESSAGES && b.rt.node().node_table().get(&c_id).is_some() {
            if let Ok(id) = b.rt.handle(SendMessage {
                destination: c_id,
                message: &body,
            }) {
                sent.push(id);
            }
        }
        delivered += std::mem::take(&mut c.received).len();
        widest =
            b.rt.node()
                .own_circuits()
                .map(|circuit| circuit.send_window)
                .fold(widest, u16::max);
        let acked = b
            .events
            .iter()
            .filter(|e| matches!(e, Event::MessageAcknowledged { .. }))
            .count();
        if acked == MESSAGES {
            break;
        }
    }
    assert_eq!(sent.len(), MESSAGES, "every message was queued");
    assert_eq!(delivered, MESSAGES, "every message arrived once");
    assert!(
        widest > CIRCUIT_WINDOW,
        "the sender's window grew past {CIRCUIT_WINDOW} cells (widest seen: {widest})"
    );
    assert!(widest <= MAX_CIRCUIT_WINDOW, "and never past the cap");
}
