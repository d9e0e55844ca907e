//! Settings of a node, fixed when it is built.

use crate::link::{LinkConfig, MAX_MESSAGE_LEN};

/// How a node behaves. Capacities are type parameters of
/// [`Node`](super::Node); these are the run-time knobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeConfig {
    /// Timers and rekey limits for every link.
    pub link: LinkConfig,
    /// The most links that may be in their handshake at once. When a new
    /// inbound link would exceed it, the oldest half-open inbound link is
    /// evicted, so a flood of half-open connections can never push out an
    /// established link and a real peer's handshake (one RTT) still gets in.
    pub max_half_open: usize,
    /// The largest message this node accepts, advertised to peers. It is
    /// further clamped to the receive buffer and to what the event queue can
    /// take in one message.
    pub max_message_len: usize,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            link: LinkConfig::default(),
            max_half_open: 16,
            max_message_len: MAX_MESSAGE_LEN,
        }
    }
}
