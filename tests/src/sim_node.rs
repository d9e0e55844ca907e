//! A node inside the simulator, with everything it emitted recorded.

use veil_core::message::Sender;
use veil_core::node::Event;
use veil_core::time::Instant;

use crate::profile::SimNodeCore;

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
    /// Whether it is running (a killed node ignores everything).
    pub alive: bool,
    /// It was killed (not frozen): dials to it are reset, not left
    /// unanswered.
    pub(crate) killed: bool,
    /// Times its timer fired.
    pub timers: u64,
    pub(crate) scheduled_timeout: Option<Instant>,
}

impl SimNode {
    pub(crate) fn new(core: SimNodeCore) -> Self {
        SimNode {
            core,
            events: Vec::new(),
            bytes_sent: 0,
            delivered: Vec::new(),
            alive: true,
            killed: false,
            timers: 0,
            scheduled_timeout: None,
        }
    }
}
