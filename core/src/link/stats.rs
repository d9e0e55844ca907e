//! Per-link traffic counters, for status output and tests.

/// Counters of one link. All saturate rather than wrap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LinkStats {
    /// Messages written, handshake included.
    pub messages_sent: u64,
    /// Messages read and accepted, handshake included.
    pub messages_received: u64,
    /// Bytes written, length prefixes included.
    pub bytes_sent: u64,
    /// Bytes of accepted messages, length prefixes included.
    pub bytes_received: u64,
    /// Cells sent.
    pub cells_sent: u64,
    /// Cells received.
    pub cells_received: u64,
    /// Times this side switched its sending key.
    pub rekeys_sent: u64,
    /// Times the peer switched its sending key.
    pub rekeys_received: u64,
}
