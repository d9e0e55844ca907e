//! The embedded capacity profile: what each node of the self-test holds.
//!
//! One node type for all three nodes (so the core is compiled once); the
//! link table and message pool are caller storage (slices), so the relay
//! gets two link slots and the endpoints one each.
//!
//! A node originates message cells only while its link's send queue keeps
//! `min(8, TXQ / 2)` cells free (relay spec §9), so with `TXQ = 4` two
//! cells are for its own messages and two for relayed and control cells.

use veil_core::message::MessageSlot;
use veil_core::node::{LinkSlot, Node};

/// Receive buffer per link: link messages up to 598 bytes (one cell is 533
/// with its prefix, the least the core accepts).
pub const RX: usize = 600;
/// Send queue per link, in cells.
pub const TXQ: usize = 4;
/// Events waiting to be polled.
pub const EVENTS: usize = 2;
/// Node-table entries (descriptors of other nodes).
pub const PEERS: usize = 2;
/// Circuits this node can be a hop of (relay or destination).
pub const RELAYED: usize = 1;
/// Circuits this node can build.
pub const OWN: usize = 1;
/// Largest message, in bytes.
pub const MSG: usize = 256;
/// Message slots per node: one outgoing, one incoming.
pub const MESSAGES: usize = 2;
/// Links of an endpoint (A, C).
pub const ENDPOINT_LINKS: usize = 1;
/// Links of the relay (B).
pub const RELAY_LINKS: usize = 2;

/// TCP sockets of an endpoint: it dials its one link.
pub const ENDPOINT_SOCKETS: usize = ENDPOINT_LINKS;
/// TCP sockets of the relay: one per link and a spare. Every idle one
/// listens (veil-smoltcp's driver), so A and C are accepted at once.
pub const RELAY_SOCKETS: usize = RELAY_LINKS + 1;
/// TCP receive buffer (the window) per socket: 384 bytes keeps a window
/// within what the medium's queues hold (smoltcp 0.13+ retransmits a lost
/// segment only after its 1 s minimum RTO, docs/dependencies.md).
pub const TCP_RX: usize = 384;
/// TCP transmit buffer per socket: room for one whole link message (533).
pub const TCP_TX: usize = 640;
/// MTU of the in-RAM medium.
pub const MTU: usize = 320;
/// Packets queued per port of the medium: 3, so that B's port takes a
/// segment from A and one from C with room for an ACK.
pub const FRAMES: usize = 3;

veil_core::node_profile! {
    /// The capacities of every node of the image.
    pub struct FirmwareProfile {
        link_receive: RX,
        link_send_queue: TXQ,
        events: EVENTS,
        peers: PEERS,
        relayed: RELAYED,
        own: OWN,
        message: MSG,
        links: &'static mut [LinkSlot<FirmwareProfile>],
        messages: &'static mut [MessageSlot<[u8; MSG]>],
        // A firmware node accepts a handful of links in half an hour (the
        // mark's validity, link spec §2.2): 4 marks (32 bytes) cover them.
        replay_marks: 4,
    }
}

/// The node type of the image.
pub type VeilNode = Node<FirmwareProfile>;

/// The buffer the stations drain their nodes into: a whole link message
/// (one cell) or a whole message, whichever is larger.
pub const DRAIN_BUFFER: usize = if MSG > veil_core::link::MIN_TRANSMIT_BUFFER {
    MSG
} else {
    veil_core::link::MIN_TRANSMIT_BUFFER
};
