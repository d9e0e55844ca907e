//! The node type a std host runs, and the one place it is built.
//!
//! The core's `Node` is generic over its storage and capacities; a std host
//! fixes them once here. Keeping the alias and the constructor together
//! means a change to `Node`'s parameters is a change to this file only.

use veil_core::identity::Identity;
use veil_core::message::MessageSlot;
use veil_core::node::{LinkSlot, Node, NodeConfig};

/// Receive buffer per link: a 16 KiB message and its 2-byte length prefix.
pub const RX: usize = 16 * 1024 + 2;
/// Cells that can wait to be sent per link.
pub const TXQ: usize = 64;
/// Events that can wait to be polled.
pub const EVENTS: usize = 64;
/// Nodes the node table can hold.
pub const PEERS: usize = 256;
/// Circuits the node can be a hop of (relay or destination).
pub const RELAYED: usize = 512;
/// Circuits the node can build.
pub const OWN: usize = 32;
/// The largest message, in bytes.
pub const MSG: usize = 64 * 1024;
/// Message slots (half for sending, half for receiving).
pub const MESSAGES: usize = 64;

/// Largest message the runtime asks the node for at once: a full 16 KiB
/// message with room to spare. This is also the most a connection ever
/// holds unsent.
pub const TRANSMIT_BUFFER: usize = 16 * 1024 + 64;

/// Bytes read from a socket in one call. This is also the most a connection
/// ever holds read but not yet consumed by the node.
pub const READ_CHUNK: usize = 16 * 1024;

/// The node a std host runs: its link table lives on the heap, sized at run
/// time.
pub type StdNode = Node<
    Box<[LinkSlot<RX, TXQ>]>,
    Box<[MessageSlot<MSG>]>,
    RX,
    TXQ,
    EVENTS,
    PEERS,
    RELAYED,
    OWN,
    MSG,
>;

/// Builds a [`StdNode`] with `links` link slots.
///
/// The table is built one slot at a time on the heap: a slot holds a whole
/// receive buffer, so a large table must never sit on the stack.
///
/// The node itself (about half a MiB: circuit tables and the node table are
/// inline) is boxed too, so that a runtime moves a pointer, not the node.
pub fn build_node(
    config: NodeConfig,
    identity: Identity,
    seed: [u8; 32],
    links: usize,
) -> Box<StdNode> {
    let table: Box<[LinkSlot<RX, TXQ>]> = (0..links).map(|_| LinkSlot::new()).collect();
    let messages: Box<[MessageSlot<MSG>]> = (0..MESSAGES).map(|_| MessageSlot::new()).collect();
    Box::new(Node::new(config, identity, seed, table, messages))
}
