//! Simulated connections between two nodes, and the middleware that can sit
//! on them: stackable layers that see, change or drop the bytes of one
//! direction (as smoltcp's `FaultInjector` and `PcapWriter` wrap a device).

use std::collections::VecDeque;

use veil_core::node::LinkId;
use veil_core::time::Instant;

use crate::conditions::StreamConditions;
use crate::sim_node::NodeIndex;

/// Names a simulated connection between two nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WireId(pub usize);

/// One direction of a wire. `Forward` is from the dialling node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// From the node that dialled to the node that accepted.
    Forward,
    /// From the node that accepted to the node that dialled.
    Backward,
}

impl Direction {
    pub(crate) fn index(self) -> usize {
        match self {
            Direction::Forward => 0,
            Direction::Backward => 1,
        }
    }

    /// The direction whose sender is end `side` of a wire (0: the dialler).
    pub(crate) fn sent_by(side: usize) -> Direction {
        if side == 0 {
            Direction::Forward
        } else {
            Direction::Backward
        }
    }
}

/// One stage of what happens to the bytes of one direction of a wire, at
/// the sender, before they travel. Layers stack in the order they were
/// added; a layer that clears the bytes drops them for the layers after it
/// and for the receiver.
pub trait WireLayer {
    /// Sees the bytes of one transmit, which start at stream `offset`.
    fn process(&mut self, offset: u64, bytes: &mut Vec<u8>);
}

/// Any `FnMut(offset, bytes)` is a layer that changes bytes in place (a
/// bit-flipper, a recorder).
impl<F: FnMut(u64, &mut [u8])> WireLayer for F {
    fn process(&mut self, offset: u64, bytes: &mut Vec<u8>) {
        self(offset, bytes)
    }
}

/// A layer that drops everything: the path went dark while both ends'
/// connections stayed up.
#[derive(Debug, Clone, Copy, Default)]
pub struct BlackHole;

impl WireLayer for BlackHole {
    fn process(&mut self, _offset: u64, bytes: &mut Vec<u8>) {
        bytes.clear();
    }
}

pub(crate) struct Wire {
    /// `ends[0]` dialled, `ends[1]` accepted.
    pub(crate) ends: [(NodeIndex, LinkId); 2],
    pub(crate) conditions: StreamConditions,
    pub(crate) open: [bool; 2],
    /// Bytes already in flight in a dark direction vanish on arrival.
    pub(crate) dark: [bool; 2],
    pub(crate) layers: [Vec<Box<dyn WireLayer>>; 2],
    pub(crate) last_arrival: [Instant; 2],
    /// On a bandwidth-limited wire, when the last byte given to each
    /// direction leaves the sender.
    pub(crate) busy_until: [Instant; 2],
    /// Bytes that reached the receiver but that it has not consumed yet.
    pub(crate) backlog: [VecDeque<u8>; 2],
    pub(crate) sent: [u64; 2],
    /// Bytes of each direction the receiver consumed.
    pub(crate) consumed: [u64; 2],
    /// The receiver of each direction has stopped reading
    /// ([`Sim::stop_reading`](crate::Sim::stop_reading)).
    pub(crate) unread: [bool; 2],
    /// A wake-up is scheduled for the sender of each direction, at which
    /// its send buffer has room again.
    pub(crate) room_wakeup: [Option<Instant>; 2],
}

impl Wire {
    pub(crate) fn new(
        ends: [(NodeIndex, LinkId); 2],
        conditions: StreamConditions,
        now: Instant,
    ) -> Self {
        Wire {
            ends,
            conditions,
            open: [true, true],
            dark: [false, false],
            layers: [Vec::new(), Vec::new()],
            last_arrival: [now, now],
            busy_until: [now, now],
            backlog: [VecDeque::new(), VecDeque::new()],
            sent: [0, 0],
            consumed: [0, 0],
            unread: [false, false],
            room_wakeup: [None, None],
        }
    }

    /// Runs one transmit through the layers of `dir`.
    pub(crate) fn through_layers(&mut self, dir: Direction, bytes: &mut Vec<u8>) {
        let offset = self.sent[dir.index()];
        self.sent[dir.index()] += bytes.len() as u64;
        for layer in &mut self.layers[dir.index()] {
            if bytes.is_empty() {
                break;
            }
            layer.process(offset, bytes);
        }
    }
}
