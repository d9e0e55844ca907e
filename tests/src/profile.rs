//! The capacities of every simulated node.

use veil_core::message::MessageSlot;
use veil_core::node::{LinkSlot, Node};

/// Receive buffer per link in simulated nodes: a 16 KiB message and its prefix.
pub const SIM_RX: usize = 16 * 1024 + 2;
/// Cells that can wait per link.
pub const SIM_TXQ: usize = 64;
/// Events that can wait.
pub const SIM_EVENTS: usize = 64;
/// Nodes each simulated node's table can hold.
pub const SIM_PEERS: usize = 64;
/// Circuits each simulated node can be a hop of.
pub const SIM_RELAYED: usize = 256;
/// Circuits each simulated node can build.
pub const SIM_OWN: usize = 16;
/// The largest message, in bytes.
pub const SIM_MSG: usize = 16 * 1024;
/// Message slots per node (half each way).
pub const SIM_MESSAGES: usize = 32;

veil_core::node_profile! {
    /// The profile of simulated nodes: std-like capacities, storage on the
    /// heap.
    pub struct SimProfile {
        link_receive: SIM_RX,
        link_send_queue: SIM_TXQ,
        events: SIM_EVENTS,
        peers: SIM_PEERS,
        relayed: SIM_RELAYED,
        own: SIM_OWN,
        message: SIM_MSG,
        links: Box<[LinkSlot<SimProfile>]>,
        messages: Box<[MessageSlot<[u8; SIM_MSG]>]>,
        mixed_cells: veil_core::node::MIXING_QUEUE,
    }
}

/// The core node type the simulator runs.
pub type SimNodeCore = Node<SimProfile>;

/// The link table storage on the heap, one slot at a time, so that a large
/// table never sits on the stack.
pub fn link_storage(links: usize) -> Box<[LinkSlot<SimProfile>]> {
    (0..links).map(|_| LinkSlot::new()).collect()
}

/// The message pool storage, on the heap.
pub fn message_storage() -> Box<[MessageSlot<[u8; SIM_MSG]>]> {
    (0..SIM_MESSAGES).map(|_| MessageSlot::new()).collect()
}
