//! What the one node of the image holds: the capacities of its tables and
//! queues, fixed here at build time, and its socket sizes.
//!
//! The node is an endpoint (it relays for nobody), so its circuits are its
//! own and those that end at it. Its links: the bootstrap link, the
//! anonymous link its circuits start on (relay spec §11), and links that
//! relays open to it to end circuits there, plus one spare for a link
//! being replaced.

use veil_core::message::MessageSlot;
use veil_core::node::{LinkSlot, Node};

/// Receive buffer per link: link messages of one cell or two (the peer
/// learns the limit in the handshake and never sends more).
pub const RX: usize = 1_100;
/// Send queue per link, in cells: 2 for the node's own messages beside 2
/// for control cells (relay spec §9).
pub const TXQ: usize = 4;
/// Events waiting to be polled.
pub const EVENTS: usize = 6;
/// Descriptors of other nodes: a small network's relays, from which the
/// node picks its 3-relay paths.
pub const PEERS: usize = 8;
/// Circuits that end at this node.
pub const RELAYED: usize = 2;
/// Circuits this node builds.
pub const OWN: usize = 2;
/// Largest message, in bytes.
pub const MSG: usize = 256;
/// Message slots: half outgoing, half incoming.
pub const MESSAGES: usize = 4;
/// Links the node can hold.
pub const LINKS: usize = 5;

/// TCP sockets: one per link and one to listen with.
pub const SOCKETS: usize = LINKS + 1;
/// TCP receive buffer (the window) per socket.
pub const TCP_RX: usize = 1_024;
/// TCP transmit buffer per socket: one whole link message of one cell
/// (533 bytes) and room to spare.
pub const TCP_TX: usize = 1_100;

veil_core::node_profile! {
    /// The capacities of the image's node.
    pub struct DeviceProfile {
        link_receive: RX,
        link_send_queue: TXQ,
        events: EVENTS,
        peers: PEERS,
        relayed: RELAYED,
        own: OWN,
        message: MSG,
        links: &'static mut [LinkSlot<DeviceProfile>],
        messages: &'static mut [MessageSlot<[u8; MSG]>],
        // Links accepted in half an hour (the mark's validity, link spec
        // §2.2): relays ending circuits here.
        replay_marks: 8,
    }
}

/// The node type of the image.
pub type DeviceNode = Node<DeviceProfile>;

/// The buffer the node is drained into: a whole link message of one cell
/// or a whole message, whichever is larger.
pub const DRAIN_BUFFER: usize = if MSG > veil_core::link::MIN_TRANSMIT_BUFFER {
    MSG
} else {
    veil_core::link::MIN_TRANSMIT_BUFFER
};
