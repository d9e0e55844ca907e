//! Passive observers next to chosen nodes: every link message such a node
//! sends or receives, with its time, direction and length, and nothing of
//! its content (what a client's ISP or guard sees, or a destination's; the
//! traffic-analysis harness, issue 13, attacks these records).

use veil_core::time::Instant;

use crate::NodeIndex;

/// One link message a tapped node sent or received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tapped {
    /// The tapped node.
    pub node: NodeIndex,
    /// When it left its sender.
    pub at: Instant,
    /// Whether the tapped node sent it.
    pub outgoing: bool,
    /// Its length on the wire.
    pub len: usize,
}

/// The nodes being watched and what was seen.
#[derive(Debug, Default)]
pub(crate) struct Tap {
    pub(crate) nodes: Vec<NodeIndex>,
    pub(crate) seen: Vec<Tapped>,
}

impl Tap {
    /// Notes a transmit from `sender` to `receiver` at each end watched.
    pub(crate) fn note(&mut self, at: Instant, sender: NodeIndex, receiver: NodeIndex, len: usize) {
        for &node in &self.nodes {
            if node == sender || node == receiver {
                self.seen.push(Tapped {
                    node,
                    at,
                    outgoing: node == sender,
                    len,
                });
            }
        }
    }
}
