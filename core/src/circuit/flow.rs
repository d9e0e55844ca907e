//! End-to-end flow control on a circuit: credit windows, per direction.
//!
//! Each end of a circuit (the client, and the destination — the hop that
//! `DATA` is addressed to) may have at most [`CIRCUIT_WINDOW`] `DATA` cells
//! in flight towards the other. The receiving end returns credit in a
//! `CREDIT` relay message once it has taken [`CREDIT_BATCH`] cells, but only
//! while it has room for more messages: a receiver whose application has
//! stopped taking messages stops granting credit, so its sender stalls
//! after one window and no queue anywhere on the path grows. (Relays hold no
//! per-circuit queue at all; a relay whose next link is full stops reading
//! the links that feed it, see `docs/relay_protocol_spec.md` §9.)

/// `DATA` cells one end may have in flight towards the other.
pub const CIRCUIT_WINDOW: u16 = 128;
/// Cells taken before the receiver returns credit for them.
pub const CREDIT_BATCH: u16 = 32;

/// The flow-control state of one end of a circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    /// `DATA` cells this end may still send.
    pub send_window: u16,
    /// `DATA` cells received and not yet credited back.
    pub uncredited: u16,
    /// `PADDING` relay messages this end owes the circuit before its next
    /// fragment: what rounds its last message up to its size bucket
    /// (relay spec §8.1). Padding is not `DATA` and takes no window.
    #[cfg(feature = "message-padding")]
    pub padding_owed: u16,
    /// Constant-rate shaping of this end's cells (relay spec §8.3).
    #[cfg(feature = "shaping")]
    pub shape: super::ShapeState,
}

impl Default for Flow {
    fn default() -> Self {
        Self::new()
    }
}

impl Flow {
    /// A fresh circuit: a whole window to send, nothing owed.
    pub const fn new() -> Self {
        Flow {
            send_window: CIRCUIT_WINDOW,
            uncredited: 0,
            #[cfg(feature = "message-padding")]
            padding_owed: 0,
            #[cfg(feature = "shaping")]
            shape: super::ShapeState::IDLE,
        }
    }

    /// Whether a `DATA` cell may go now.
    pub fn can_send(&self) -> bool {
        self.send_window > 0
    }

    /// A `DATA` cell went.
    pub fn on_sent(&mut self) {
        self.send_window = self.send_window.saturating_sub(1);
    }

    /// The other end granted `cells` more. A window never exceeds
    /// [`CIRCUIT_WINDOW`], so a peer cannot talk this end into flooding.
    pub fn on_credit(&mut self, cells: u16) {
        self.send_window = self.send_window.saturating_add(cells).min(CIRCUIT_WINDOW);
    }

    /// A `DATA` cell arrived.
    pub fn on_received(&mut self) {
        self.uncredited = self.uncredited.saturating_add(1);
    }

    /// Credit to return now, if a batch is due (`force`: return whatever
    /// is owed, e.g. once room appeared after a stall). Resets the count.
    pub fn take_credit(&mut self, force: bool) -> Option<u16> {
        let due = self.uncredited >= CREDIT_BATCH || (force && self.uncredited > 0);
        due.then(|| core::mem::take(&mut self.uncredited))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_is_spent_and_refilled_but_never_inflated() {
        let mut f = Flow::new();
        for _ in 0..CIRCUIT_WINDOW {
            assert!(f.can_send());
            f.on_sent();
        }
        assert!(!f.can_send());
        f.on_credit(u16::MAX);
        assert_eq!(f.send_window, CIRCUIT_WINDOW);
    }

    #[test]
    fn credit_goes_back_in_batches() {
        let mut f = Flow::new();
        for _ in 0..CREDIT_BATCH - 1 {
            f.on_received();
        }
        assert_eq!(f.take_credit(false), None);
        f.on_received();
        assert_eq!(f.take_credit(false), Some(CREDIT_BATCH));
        f.on_received();
        assert_eq!(f.take_credit(true), Some(1));
        assert_eq!(f.take_credit(true), None);
    }
}
