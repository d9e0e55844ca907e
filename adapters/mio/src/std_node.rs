//! The profile a std host runs, and the one place its node is built.

use veil_core::identity::Identity;
use veil_core::message::MessageSlot;
use veil_core::node::{LinkSlot, Node, NodeConfig};

/// Receive buffer per link: a 16 KiB message and its 2-byte length prefix.
pub const RX: usize = 16 * 1024 + 2;
/// Cells that can wait to be sent per link.
pub const TXQ: usize = 64;
/// Events that can wait to be taken.
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
/// Hop-handshake key pairs drawn ahead of need (65 B each): enough for a
/// client's next hop and a relay's burst of `CREATE`s between two turns of
/// the loop, each answered one X25519 operation sooner
/// (`veil_core::circuit::ReadyEphemerals`).
pub const READY_EPHEMERALS: usize = 4;

/// The buffer the runtime drains the node into: the largest message, or a
/// link message of 16 KiB with room to spare (the node never makes a link
/// message larger than its peer's receive buffer, 16 KiB for std peers).
/// This is also the most a TCP connection ever holds unsent: the link
/// messages it gathers in a round (under 32 KiB) and the one that crossed
/// that mark.
pub const OUTPUT_BUFFER: usize = MSG + 64;

/// Bytes read from a socket in one call. This is also the most a connection
/// ever holds read but not yet consumed by the node.
pub const READ_CHUNK: usize = 16 * 1024;

veil_core::node_profile! {
    /// The capacities of a std node: 16 KiB link messages, 64 queued cells
    /// per link, 256 known nodes, 512 relayed and 32 own circuits, 64 KiB
    /// messages, 128 cells held for mixing delays. Its link table and
    /// message pool are on the heap, sized at run time.
    pub struct StdProfile {
        link_receive: RX,
        link_send_queue: TXQ,
        events: EVENTS,
        peers: PEERS,
        relayed: RELAYED,
        own: OWN,
        message: MSG,
        links: Box<[LinkSlot<StdProfile>]>,
        messages: Box<[MessageSlot<[u8; MSG]>]>,
        mixed_cells: veil_core::node::MIXING_QUEUE,
        ready_ephemerals: READY_EPHEMERALS,
    }
}

/// The node a std host runs.
pub type StdNode = Node<StdProfile>;

/// Builds a [`StdNode`] with `links` link slots.
///
/// The table is built one slot at a time on the heap: a slot holds a whole
/// receive buffer, so a large table must never sit on the stack. The node
/// itself (about 0.7 MiB: circuit tables, the node table and the mixing
/// queue are inline) is boxed too, so that a runtime moves a pointer, not
/// the node. It is still built on the stack before it is boxed, and a
/// debug build may hold two or three copies at once: a thread that builds
/// one needs a few MiB of stack. Never inlined, so that a caller's own
/// frame does not carry those copies on paths that never build a node.
#[inline(never)]
pub fn build_node(
    config: NodeConfig,
    identity: Identity,
    seed: [u8; 32],
    links: usize,
) -> Box<StdNode> {
    let table: Box<[LinkSlot<StdProfile>]> = (0..links).map(|_| LinkSlot::new()).collect();
    let messages: Box<[MessageSlot<[u8; MSG]>]> =
        (0..MESSAGES).map(|_| MessageSlot::new()).collect();
    Box::new(Node::new(config, identity, seed, table, messages))
}
