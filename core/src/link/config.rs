//! Timers and limits of a link, chosen when the node is built.

use crate::time::Duration;

#[cfg(feature = "link-padding")]
use super::idle_padding::LinkPadding;

/// Timers and rekey limits for every link of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LinkConfig {
    /// A link whose handshake has not finished by then is closed. Bounds how
    /// long a half-open connection can hold a slot.
    pub handshake_timeout: Duration,
    /// How often each side sends a `Ping`. Also the RTT sampling interval.
    pub keepalive_interval: Duration,
    /// A link on which nothing arrived for this long is declared dead.
    /// Must exceed `keepalive_interval` plus an RTT, or a healthy peer that
    /// only answers pings is dropped.
    pub idle_timeout: Duration,
    /// Rekey the sending direction after this many messages.
    pub rekey_after_messages: u64,
    /// Rekey the sending direction after this much time, whatever the count.
    pub rekey_after: Duration,
    /// Padding of idle links, and what to ask of peers (transport spec
    /// §4.3); only with the `link-padding` feature (a build without it
    /// neither pads nor asks, and its link slots carry no such setting).
    #[cfg(feature = "link-padding")]
    #[cfg_attr(feature = "serde", serde(default))]
    pub padding: LinkPadding,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            handshake_timeout: Duration::from_secs(10),
            keepalive_interval: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(60),
            rekey_after_messages: 1 << 20,
            rekey_after: Duration::from_secs(600),
            #[cfg(feature = "link-padding")]
            padding: LinkPadding::NONE,
        }
    }
}
