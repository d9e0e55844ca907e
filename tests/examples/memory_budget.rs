//! Prints the fixed memory of veil nodes in two capacity profiles: the
//! simulator's (std-sized) and an embedded one. Every byte a node will ever
//! use is in these numbers: nothing is allocated after the node is built.
//!
//! Run: `cargo run -p veil-sim --example memory_budget`

use std::mem::size_of;

use veil_core::discovery::PeerEntry;
use veil_core::link::LinkSession;
use veil_core::node::{Event, LinkSlot, Node};
use veil_sim::{SimNodeCore, SIM_EVENTS, SIM_PEERS, SIM_RX, SIM_TXQ};

/// An embedded profile: 4 links, one-cell messages, 4 queued cells, 4 events, 8 known nodes.
const EMB_RX: usize = 1_100;
const EMB_TXQ: usize = 4;
const EMB_EVENTS: usize = 4;
const EMB_LINKS: usize = 4;
const EMB_PEERS: usize = 8;

fn main() {
    let std_slot = size_of::<LinkSlot<SIM_RX, SIM_TXQ>>();
    let std_node = size_of::<SimNodeCore>();
    println!(
        "std profile (RX = {SIM_RX}, TXQ = {SIM_TXQ}, EVENTS = {SIM_EVENTS}, PEERS = {SIM_PEERS}):"
    );
    println!("  per link slot:        {std_slot:>8} bytes");
    println!(
        "    of which session:   {:>8} bytes",
        size_of::<LinkSession<SIM_RX, SIM_TXQ>>()
    );
    println!("  node without links:   {std_node:>8} bytes");
    println!(
        "  node with 256 links:  {:>8} bytes",
        std_node + 256 * std_slot
    );

    type Emb = Node<[LinkSlot<EMB_RX, EMB_TXQ>; EMB_LINKS], EMB_RX, EMB_TXQ, EMB_EVENTS, EMB_PEERS>;
    println!("embedded profile (RX = {EMB_RX}, TXQ = {EMB_TXQ}, EVENTS = {EMB_EVENTS}, PEERS = {EMB_PEERS}, {EMB_LINKS} links):");
    println!(
        "  per link slot:        {:>8} bytes",
        size_of::<LinkSlot<EMB_RX, EMB_TXQ>>()
    );
    println!("  whole node:           {:>8} bytes", size_of::<Emb>());
    println!("  one event:            {:>8} bytes", size_of::<Event>());
    println!(
        "  one node-table entry: {:>8} bytes",
        size_of::<PeerEntry>()
    );
    println!(
        "  one relayed circuit:  {:>8} bytes",
        size_of::<veil_core::circuit::RelayCircuit>()
    );
    println!(
        "  one own circuit:      {:>8} bytes",
        size_of::<veil_core::circuit::ClientCircuit>()
    );
}
