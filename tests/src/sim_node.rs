//! A node inside the simulator, with everything it emitted recorded.

use veil_core::message::{MessageSlot, Sender};
use veil_core::node::{Event, LinkSlot, Node};
use veil_core::time::Instant;

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

/// The core node type the simulator runs.
pub type SimNodeCore = Node<
    Box<[LinkSlot<SIM_RX, SIM_TXQ>]>,
    Box<[MessageSlot<SIM_MSG>]>,
    SIM_RX,
    SIM_TXQ,
    SIM_EVENTS,
    SIM_PEERS,
    SIM_RELAYED,
    SIM_OWN,
    SIM_MSG,
>;

/// A message a simulated node's application took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// When it was taken.
    pub at: Instant,
    /// Who sent it.
    pub sender: Sender,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// Index of a node in a [`Sim`](crate::Sim).
pub type NodeIndex = usize;

/// A simulated node and its record.
#[derive(Debug)]
pub struct SimNode {
    /// The state machine under test.
    pub core: SimNodeCore,
    /// Every event it raised, with the time it was polled.
    pub events: Vec<(Instant, Event)>,
    /// Bytes it wrote to the network.
    pub bytes_sent: u64,
    /// Messages its application took, in order.
    pub delivered: Vec<Delivered>,
    /// Whether its application takes messages as they arrive (a test
    /// clears this to model a stalled receiver).
    pub takes_messages: bool,
    /// Whether it is running (a killed node ignores everything).
    pub alive: bool,
    pub(crate) scheduled_timeout: Option<Instant>,
}

impl SimNode {
    pub(crate) fn new(core: SimNodeCore) -> Self {
        SimNode {
            core,
            events: Vec::new(),
            bytes_sent: 0,
            delivered: Vec::new(),
            takes_messages: true,
            alive: true,
            scheduled_timeout: None,
        }
    }

    /// Builds the link table storage on the heap, one slot at a time, so
    /// that a large table never sits on the stack.
    pub fn link_storage(links: usize) -> Box<[LinkSlot<SIM_RX, SIM_TXQ>]> {
        (0..links).map(|_| LinkSlot::new()).collect()
    }

    /// The message pool storage, on the heap.
    pub fn message_storage() -> Box<[MessageSlot<SIM_MSG>]> {
        (0..SIM_MESSAGES).map(|_| MessageSlot::new()).collect()
    }
}
