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
    /// Idle-padding cells sent (transport spec §4.3; not in `cells_sent`).
    #[cfg(feature = "link-padding")]
    pub padding_cells_sent: u64,
}

impl LinkStats {
    /// Both sets of counters added, each saturating.
    pub fn plus(&self, other: &LinkStats) -> LinkStats {
        LinkStats {
            messages_sent: self.messages_sent.saturating_add(other.messages_sent),
            messages_received: self
                .messages_received
                .saturating_add(other.messages_received),
            bytes_sent: self.bytes_sent.saturating_add(other.bytes_sent),
            bytes_received: self.bytes_received.saturating_add(other.bytes_received),
            cells_sent: self.cells_sent.saturating_add(other.cells_sent),
            cells_received: self.cells_received.saturating_add(other.cells_received),
            rekeys_sent: self.rekeys_sent.saturating_add(other.rekeys_sent),
            rekeys_received: self.rekeys_received.saturating_add(other.rekeys_received),
            #[cfg(feature = "link-padding")]
            padding_cells_sent: self
                .padding_cells_sent
                .saturating_add(other.padding_cells_sent),
        }
    }
}
