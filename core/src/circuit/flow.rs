//! End-to-end flow control on a circuit: credit windows, per direction.
//!
//! Each end of a circuit (the client, and the destination — the hop that
//! `DATA` is addressed to) starts with a window of [`CIRCUIT_WINDOW`]
//! `DATA` cells it may send towards the other. The receiving end returns
//! credit in a `CREDIT` relay message once it has taken [`CREDIT_BATCH`]
//! cells, but only while it has room for more messages: a receiver whose
//! application has stopped taking messages stops granting credit, so its
//! sender stalls after one window and no queue anywhere on the path grows.
//! (Relays hold no per-circuit queue at all; a relay whose next link is
//! full stops reading the links that feed it, see
//! `docs/relay_protocol_spec.md` §9.)
//!
//! A receiver whose message pool absorbs more may widen the window: its
//! first `CREDIT` on a circuit grants the cells taken plus the difference
//! between its [`receive_window`] and [`CIRCUIT_WINDOW`]. One circuit
//! carries at most a window per round trip, and 128 cells (about 58 KiB of
//! message) is less than a busy path's bandwidth-delay product
//! (docs/performance.md). A sender never lets its window exceed
//! [`MAX_CIRCUIT_WINDOW`], whatever it is granted.

/// `DATA` cells one end may send towards the other before any credit: the
/// window every receiver must absorb.
pub const CIRCUIT_WINDOW: u16 = 128;
/// The widest window a sender accepts, however much credit it is granted,
/// so that a receiver cannot talk it into flooding the path.
pub const MAX_CIRCUIT_WINDOW: u16 = 1024;
/// Cells taken before the receiver returns credit for them.
pub const CREDIT_BATCH: u16 = 32;

/// The window a receiver grants its senders: a quarter of the bytes its
/// pool keeps for incoming messages (so that four circuits at a full
/// window fit at once), in fragments, between [`CIRCUIT_WINDOW`] and
/// [`MAX_CIRCUIT_WINDOW`].
pub fn receive_window(incoming_bytes: usize) -> u16 {
    let cells = incoming_bytes / 4 / crate::message::FRAGMENT_LEN;
    u16::try_from(cells)
        .unwrap_or(MAX_CIRCUIT_WINDOW)
        .clamp(CIRCUIT_WINDOW, MAX_CIRCUIT_WINDOW)
}

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
    /// Whether this end has granted its wider window (with its first
    /// `CREDIT`).
    #[cfg(feature = "wide-windows")]
    pub widened: bool,
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
            #[cfg(feature = "wide-windows")]
            widened: false,
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
    /// [`MAX_CIRCUIT_WINDOW`], so a peer cannot talk this end into flooding.
    pub fn on_credit(&mut self, cells: u16) {
        self.send_window = self
            .send_window
            .saturating_add(cells)
            .min(MAX_CIRCUIT_WINDOW);
    }

    /// A `DATA` cell arrived.
    pub fn on_received(&mut self) {
        self.uncredited = self.uncredited.saturating_add(1);
    }

    /// Credit to return now, if a batch is due (`force`: return whatever
    /// is owed, e.g. once room appeared after a stall). Resets the count.
    /// The first credit of a circuit also grants the rest of `window`
    /// (this receiver's [`receive_window`]) beyond [`CIRCUIT_WINDOW`].
    pub fn take_credit(&mut self, force: bool, window: u16) -> Option<u16> {
        let due = self.uncredited >= CREDIT_BATCH || (force && self.uncredited > 0);
        let taken = due.then(|| core::mem::take(&mut self.uncredited))?;
        #[cfg(feature = "wide-windows")]
        if !self.widened {
            self.widened = true;
            return Some(taken.saturating_add(window.saturating_sub(CIRCUIT_WINDOW)));
        }
        let _ = window;
        Some(taken)
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
        assert_eq!(f.send_window, MAX_CIRCUIT_WINDOW);
    }

    #[test]
    fn credit_goes_back_in_batches() {
        let mut f = Flow::new();
        for _ in 0..CREDIT_BATCH - 1 {
            f.on_received();
        }
        assert_eq!(f.take_credit(false, CIRCUIT_WINDOW), None);
        f.on_received();
        assert_eq!(f.take_credit(false, CIRCUIT_WINDOW), Some(CREDIT_BATCH));
        f.on_received();
        assert_eq!(f.take_credit(true, CIRCUIT_WINDOW), Some(1));
        assert_eq!(f.take_credit(true, CIRCUIT_WINDOW), None);
    }

    #[cfg(feature = "wide-windows")]
    #[test]
    fn the_first_credit_widens_the_window_once() {
        let mut f = Flow::new();
        for _ in 0..CREDIT_BATCH {
            f.on_received();
        }
        assert_eq!(f.take_credit(false, 1024), Some(CREDIT_BATCH + 1024 - 128));
        for _ in 0..CREDIT_BATCH {
            f.on_received();
        }
        assert_eq!(f.take_credit(false, 1024), Some(CREDIT_BATCH));
        // The sender's side: the grant lifts its window past 128 up to 1024.
        let mut sender = Flow::new();
        for _ in 0..CREDIT_BATCH {
            sender.on_sent();
        }
        sender.on_credit(CREDIT_BATCH + 1024 - 128);
        assert_eq!(sender.send_window, 1024);
    }

    #[test]
    fn the_receive_window_follows_the_pool() {
        use crate::message::FRAGMENT_LEN;
        // A small pool: never below the window every receiver absorbs.
        assert_eq!(receive_window(4 * 1024), CIRCUIT_WINDOW);
        // 300 fragments' worth in a quarter of the incoming half.
        assert_eq!(receive_window(4 * 300 * FRAGMENT_LEN), 300);
        // The std node's 32 incoming slots of 64 KiB: the cap.
        assert_eq!(receive_window(32 * 64 * 1024), MAX_CIRCUIT_WINDOW);
    }
}
