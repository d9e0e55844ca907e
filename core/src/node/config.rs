//! Settings of a node, fixed when it is built.

use crate::link::{LinkConfig, MAX_MESSAGE_LEN};
use crate::time::Duration;

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
    /// Unix time, in seconds, at the caller's `Instant::ZERO`. The core
    /// never reads a clock: this is how descriptors get wall-clock issue and
    /// expiry times that other nodes can check.
    pub unix_time_at_zero: u64,
    /// Whether this node relays for others (advertised in its descriptor).
    pub relay: bool,
    /// How long a descriptor is valid; it is re-signed at half-life.
    pub descriptor_lifetime_secs: u64,
    /// How often to send a random sample of known descriptors over a
    /// random link.
    pub gossip_interval: Duration,
    /// How long an onion key is current. After a rotation the previous key
    /// is still answered for one more lifetime, so this must be at least the
    /// descriptor lifetime: every descriptor a client may still hold names
    /// a key the node answers.
    pub onion_key_lifetime: Duration,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            link: LinkConfig::default(),
            max_half_open: 16,
            max_message_len: MAX_MESSAGE_LEN,
            unix_time_at_zero: 0,
            relay: true,
            descriptor_lifetime_secs: 3 * 3600,
            gossip_interval: Duration::from_secs(30),
            onion_key_lifetime: Duration::from_secs(24 * 3600),
        }
    }
}
