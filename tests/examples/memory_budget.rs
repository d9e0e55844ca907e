//! Prints the fixed memory of veil nodes in two capacity profiles: the
//! simulator's (std-sized) and an embedded one. Every byte a node will ever
//! use is in these numbers: nothing is allocated after the node is built.
//!
//! Run: `cargo run -p veil-sim --example memory_budget`

use std::mem::size_of;

use veil_core::circuit::{ClientCircuit, RelayCircuit};
use veil_core::discovery::PeerEntry;
use veil_core::link::{Cell, LinkSession};
use veil_core::message::MessageSlot;
use veil_core::node::{Event, LinkSlot, Node};
use veil_sim::{SimNodeCore, SIM_EVENTS, SIM_PEERS, SIM_RX, SIM_TXQ};

/// An embedded profile: 4 links, one-cell link messages, 4 queued cells, 4
/// events, 8 known nodes, 8 relayed and 2 own circuits, 4 message slots of
/// 2 KiB.
const EMB_RX: usize = 1_100;
const EMB_TXQ: usize = 4;
const EMB_EVENTS: usize = 4;
const EMB_LINKS: usize = 4;
const EMB_PEERS: usize = 8;
const EMB_RELAYED: usize = 8;
const EMB_OWN: usize = 2;
const EMB_MSG: usize = 2_048;
const EMB_MESSAGES: usize = 4;

fn main() {
    let std_slot = size_of::<LinkSlot<veil_sim::SimProfile>>();
    let std_node = size_of::<SimNodeCore>();
    println!(
        "std profile (RX = {SIM_RX}, TXQ = {SIM_TXQ}, EVENTS = {SIM_EVENTS}, PEERS = {SIM_PEERS}):"
    );
    println!("  per link slot:        {std_slot:>8} bytes");
    println!(
        "    of which session:   {:>8} bytes",
        size_of::<LinkSession<[u8; SIM_RX], veil_core::heapless::Deque<Cell, SIM_TXQ>>>()
    );
    println!("  node without links:   {std_node:>8} bytes");
    println!(
        "  node with 256 links:  {:>8} bytes",
        std_node + 256 * std_slot
    );

    veil_core::node_profile! {
        struct Embedded {
            link_receive: EMB_RX,
            link_send_queue: EMB_TXQ,
            events: EMB_EVENTS,
            peers: EMB_PEERS,
            relayed: EMB_RELAYED,
            own: EMB_OWN,
            message: EMB_MSG,
            links: [LinkSlot<Embedded>; EMB_LINKS],
            messages: [MessageSlot<[u8; EMB_MSG]>; EMB_MESSAGES],
        }
    }
    // The link table and message pool are arrays here: inline in the node.
    let emb_total = size_of::<Node<Embedded>>();
    println!("embedded profile (RX = {EMB_RX}, TXQ = {EMB_TXQ}, EVENTS = {EMB_EVENTS}, PEERS = {EMB_PEERS}, RELAYED = {EMB_RELAYED}, OWN = {EMB_OWN}, MSG = {EMB_MSG}, {EMB_LINKS} links, {EMB_MESSAGES} message slots):");
    println!(
        "  per link slot:        {:>8} bytes",
        size_of::<LinkSlot<Embedded>>()
    );
    println!("  whole node:           {emb_total:>8} bytes");
    println!("  one event:            {:>8} bytes", size_of::<Event>());
    println!(
        "  one relayed circuit:  {:>8} bytes",
        size_of::<RelayCircuit>()
    );
    println!(
        "  one own circuit:      {:>8} bytes",
        size_of::<ClientCircuit>()
    );
    println!(
        "  one message slot:     {:>8} bytes (+ MSG = {EMB_MSG} bytes of buffer)",
        size_of::<MessageSlot<[u8; EMB_MSG]>>() - EMB_MSG
    );
    println!(
        "  one node-table entry: {:>8} bytes",
        size_of::<PeerEntry>()
    );
}
