//! A node's capacities, named once.
//!
//! [`Node`](super::Node) has one type parameter, a [`Profile`]. The profile
//! names the storage of every table and queue, and through it every
//! capacity; nothing else in the node carries a number. A profile is a
//! zero-sized type, usually declared with [`node_profile!`](crate::node_profile):
//!
//! ```
//! use veil_core::node::{LinkSlot, Node};
//! use veil_core::message::MessageSlot;
//!
//! veil_core::node_profile! {
//!     /// Two links, small queues: a sensor that talks to one gateway.
//!     pub struct Sensor {
//!         link_receive: 2 + 4096,
//!         link_send_queue: 8,
//!         events: 8,
//!         peers: 16,
//!         relayed: 4,
//!         own: 2,
//!         message: 2048,
//!         links: [LinkSlot<Sensor>; 2],
//!         messages: [MessageSlot<[u8; 2048]>; 4],
//!     }
//! }
//! // Everything the node will ever use, known at compile time:
//! let bytes = core::mem::size_of::<Node<Sensor>>();
//! // (under 68 KiB, plus the 8 KiB of rendezvous state of the default
//! // features; the defences against traffic analysis, cover, shaping and
//! // layer-2 guards, hold about 1.5 KiB of it)
//! assert!(bytes < 68 * 1024 + veil_core::node::rendezvous_state_size(), "{bytes}");
//! ```

use crate::capacity::{ByteStore, DequeStore, VecStore};
use crate::circuit::{ClientCircuit, ReadyEphemeral, RelayCircuit};
use crate::discovery::PeerEntry;
use crate::link::Cell;
use crate::message::MessageSlot;

use super::{Event, HeldCell, LinkSlot};

/// What the replay filter keeps of a first message's mark
/// ([`Profile::ReplayMarks`]): its first 8 bytes. Two honest marks (HMAC
/// outputs) share them with probability 2⁻⁶⁴, and a replay has all 16 the
/// same.
pub type ReplayMark = [u8; 8];

/// The storage, and so the capacities, of a [`Node`](super::Node).
///
/// The link table and the message pool are caller storage (`Links`,
/// `Messages`): an array (in a `static` on firmware, built in place) or a
/// boxed slice on std, so that a node with hundreds of links never sits on
/// a stack. Everything else is inline in the node.
pub trait Profile: Sized + 'static {
    /// Receive buffer of one link, `[u8; N]`: the largest link message the
    /// node accepts plus its 2-byte length prefix. At least
    /// [`MIN_TRANSMIT_BUFFER`](crate::link::MIN_TRANSMIT_BUFFER).
    type LinkReceive: ByteStore;
    /// Cells that can wait to be sent on one link,
    /// `heapless::Deque<Cell, N>`.
    type LinkSendQueue: DequeStore<Cell>;
    /// Events waiting for the owner, `heapless::Deque<Event, N>`, at least 1.
    type Events: DequeStore<Event>;
    /// Nodes the node table holds, `heapless::Vec<PeerEntry, N>`.
    type Peers: VecStore<PeerEntry>;
    /// Circuits this node is a hop of (as a relay or as their destination),
    /// `heapless::Vec<RelayCircuit, N>`.
    type Relayed: VecStore<RelayCircuit>;
    /// Circuits this node builds, `heapless::Vec<ClientCircuit, N>`.
    type Own: VecStore<ClientCircuit>;
    /// One message buffer, `[u8; N]`: the largest message sent or received
    /// (at most 119 296 bytes are used).
    type MessageBuffer: ByteStore;
    /// The link table: one [`LinkSlot`] per link the node can hold.
    type Links: AsRef<[LinkSlot<Self>]> + AsMut<[LinkSlot<Self>]>;
    /// The message pool, shared by outgoing and incoming messages (each
    /// direction may use half).
    type Messages: AsRef<[MessageSlot<Self::MessageBuffer>]>
        + AsMut<[MessageSlot<Self::MessageBuffer>]>;
    /// The replay filter of first handshake messages: the marks of the last
    /// this-many accepted first messages are refused if they come again
    /// (link spec §2.2). A node that accepts more first messages than this
    /// within thirty minutes (three mark epochs) can be sent its oldest
    /// ones again. [`node_profile!`](crate::node_profile) gives 256 (2 KiB)
    /// unless told `replay_marks: N`.
    type ReplayMarks: DequeStore<ReplayMark>;
    /// The cells a relay holds for their mixing delays (relay spec §9.1),
    /// `heapless::Vec<HeldCell, N>`, 528 bytes a cell on a 64-bit host; a
    /// link may hold a quarter of them. With a capacity of 0 (what
    /// [`node_profile!`](crate::node_profile) gives unless told
    /// `mixed_cells: N`) a node configured to mix passes every cell on
    /// unmixed, counted. Used with the `mixing-delays` feature only.
    type MixedCells: VecStore<HeldCell>;
    /// Hop-handshake key pairs drawn ahead of need,
    /// `[ReadyEphemeral; N]` (65 bytes each): each takes an X25519
    /// operation off a circuit build's critical path at the client and at
    /// every hop ([`ReadyEphemerals`](crate::circuit::ReadyEphemerals)).
    /// [`node_profile!`](crate::node_profile) gives 0 (draw every key pair
    /// when needed) unless told `ready_ephemerals: N`.
    type ReadyEphemerals: AsRef<[ReadyEphemeral]> + AsMut<[ReadyEphemeral]> + Default + Clone;
}

/// Declares a [`Profile`]: a zero-sized type and its storage types, from
/// the capacities. `links` and `messages` name the caller storage types,
/// which may mention the profile itself (`Box<[LinkSlot<Me>]>`).
#[macro_export]
macro_rules! node_profile {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            link_receive: $receive:expr,
            link_send_queue: $send_queue:expr,
            events: $events:expr,
            peers: $peers:expr,
            relayed: $relayed:expr,
            own: $own:expr,
            message: $message:expr,
            links: $links:ty,
            messages: $messages:ty
            $(, replay_marks: $replay:expr)?
            $(, mixed_cells: $mixed:expr)?
            $(, ready_ephemerals: $ready:expr)? $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        $vis struct $name;

        impl $crate::node::Profile for $name {
            type LinkReceive = [u8; $receive];
            type LinkSendQueue = $crate::heapless::Deque<$crate::link::Cell, { $send_queue }>;
            type Events = $crate::heapless::Deque<$crate::node::Event, { $events }>;
            type Peers = $crate::heapless::Vec<$crate::discovery::PeerEntry, { $peers }>;
            type Relayed = $crate::heapless::Vec<$crate::circuit::RelayCircuit, { $relayed }>;
            type Own = $crate::heapless::Vec<$crate::circuit::ClientCircuit, { $own }>;
            type MessageBuffer = [u8; $message];
            type Links = $links;
            type Messages = $messages;
            type ReplayMarks = $crate::heapless::Deque<
                $crate::node::ReplayMark,
                { $crate::node_profile!(@replay_marks $($replay)?) },
            >;
            type MixedCells = $crate::heapless::Vec<
                $crate::node::HeldCell,
                { $crate::node_profile!(@mixed_cells $($mixed)?) },
            >;
            type ReadyEphemerals = [
                $crate::circuit::ReadyEphemeral;
                $crate::node_profile!(@ready_ephemerals $($ready)?)
            ];
        }
    };
    (@ready_ephemerals) => {
        0
    };
    (@ready_ephemerals $ready:expr) => {
        $ready
    };
    (@mixed_cells) => {
        0
    };
    (@mixed_cells $mixed:expr) => {
        $mixed
    };
    (@replay_marks) => {
        256
    };
    (@replay_marks $replay:expr) => {
        $replay
    };
}

/// Checks, at compile time, what every profile must satisfy. Called from
/// [`Node::new`](super::Node::new), so a bad profile fails the build.
pub(crate) const fn check<P: Profile>() {
    assert!(
        P::LinkReceive::LEN >= crate::link::MIN_TRANSMIT_BUFFER,
        "LinkReceive must hold at least one one-cell message and its prefix"
    );
    assert!(
        <P::Events as DequeStore<Event>>::CAPACITY >= 1,
        "the event queue needs room for one event"
    );
    assert!(
        <P::LinkSendQueue as DequeStore<Cell>>::CAPACITY >= 1,
        "a link must be able to queue one cell"
    );
}
