//! A ready profile for a node on a microcontroller.

use veil_core::message::MessageSlot;
use veil_core::node::LinkSlot;

/// The largest message an [`EmbeddedProfile`] node sends or receives.
pub const EMBEDDED_MESSAGE: usize = 2_048;

veil_core::node_profile! {
    /// A node for a microcontroller with tens of KiB of RAM: one-cell link
    /// messages (1 100-byte receive buffers), 9 queued cells per link, 8
    /// events, 8 known nodes, 8 relayed and 2 own circuits, 2 KiB messages.
    /// Its link table and message pool are `&'static mut` slices: arrays in
    /// statics, built in place at boot, so they never sit on a stack. A
    /// link queue of 9 leaves 4 cells for originated data beside 5 for
    /// relayed and control cells (relay spec §9).
    pub struct EmbeddedProfile {
        link_receive: 1_100,
        link_send_queue: 9,
        events: 8,
        peers: 8,
        relayed: 8,
        own: 2,
        message: EMBEDDED_MESSAGE,
        links: &'static mut [LinkSlot<EmbeddedProfile>],
        messages: &'static mut [MessageSlot<[u8; EMBEDDED_MESSAGE]>],
    }
}
