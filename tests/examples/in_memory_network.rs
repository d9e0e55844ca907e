//! Two veil nodes wired together in memory, on a simulated clock, over a
//! choppy stream (20 ms ± 10 ms, reads of 1..=97 bytes). Prints what happened:
//! the handshake, cells both ways, keepalive RTT, rekeys and a clean close.
//!
//! Run: `cargo run -p veil-sim --example in_memory_network`

use veil_core::link::{CloseReason, CELL_LEN};
use veil_core::node::{Event, NodeConfig};
use veil_core::time::Duration;
use veil_sim::{Direction, Sim, StreamConditions};

fn main() {
    // This example shows the link layer: raw circuit cells go to the example.
    let mut config = NodeConfig {
        link_only: true,
        ..NodeConfig::default()
    };
    // Small limits so the short run shows keepalives and rekeys.
    config.link.keepalive_interval = Duration::from_secs(1);
    config.link.rekey_after_messages = 50;

    let mut sim = Sim::new(2026);
    let alice = sim.add_node(config, 8);
    let bob = sim.add_node(config, 8);
    println!("alice = {}", sim.node_id(alice));
    println!("bob   = {}", sim.node_id(bob));

    let start = sim.now();
    let wire = sim.connect(alice, bob, StreamConditions::CHOPPY);
    let (_, alice_link) = sim.end(wire, Direction::Forward);
    let (_, bob_link) = sim.end(wire, Direction::Backward);
    let up = sim.run_until_true(Duration::from_secs(5), |s| {
        established(s, alice) && established(s, bob)
    });
    if !up {
        eprintln!("handshake did not complete");
        std::process::exit(1);
    }
    println!(
        "handshake: both sides authenticated after {} of simulated time",
        sim.now().saturating_since(start)
    );

    let cells = 200u32;
    for i in 0..cells {
        let mut cell = [0u8; CELL_LEN];
        // A relay cell on circuit 0x80000001 carrying `i`. (Circuits are
        // not built yet; the node hands such cells to the application.)
        cell[..4].copy_from_slice(&0x8000_0001u32.to_be_bytes());
        cell[4] = 3;
        cell[5..9].copy_from_slice(&i.to_be_bytes());
        while sim.send_cell(alice, alice_link, &cell).is_err() {
            sim.run_for(Duration::from_millis(5));
        }
        if i % 4 == 0 {
            let _ = sim.send_cell(bob, bob_link, &cell);
        }
    }
    sim.run_for(Duration::from_secs(5));

    let received_by_bob = count_cells(&sim, bob);
    let received_by_alice = count_cells(&sim, alice);
    println!(
        "cells: alice -> bob {received_by_bob}/{cells}, bob -> alice {received_by_alice}/{}",
        cells / 4
    );
    let info = sim
        .node(alice)
        .core
        .link_info(alice_link)
        .expect("link is open");
    println!(
        "alice's link: smoothed RTT {}, {} messages sent, {} rekeys sent, {} received",
        info.rtt
            .smoothed()
            .map(|d| d.to_string())
            .unwrap_or_else(|| "-".into()),
        info.stats.messages_sent,
        info.stats.rekeys_sent,
        info.stats.rekeys_received,
    );

    sim.close_link(alice, alice_link, CloseReason::Normal);
    sim.run_for(Duration::from_secs(1));
    for node in [alice, bob] {
        for (at, event) in &sim.node(node).events {
            if let Event::LinkClosed { reason, by, .. } = event {
                println!("node {node}: link closed at {at:?}: {reason} (by {by:?})");
            }
        }
    }
    let ok = received_by_bob == cells as usize && received_by_alice == (cells / 4) as usize;
    println!("transcript digest {}", hex(&sim.transcript_digest()));
    if !ok {
        eprintln!("cells were lost");
        std::process::exit(1);
    }
    println!("ok");
}

fn established(sim: &Sim, node: usize) -> bool {
    sim.node(node)
        .events
        .iter()
        .any(|(_, e)| matches!(e, Event::LinkEstablished { .. }))
}

fn count_cells(sim: &Sim, node: usize) -> usize {
    sim.node(node)
        .events
        .iter()
        .filter(|(_, e)| matches!(e, Event::CellReceived { .. }))
        .count()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
