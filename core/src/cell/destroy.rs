//! Why a circuit was torn down, as carried in a `DESTROY` cell body.

use core::fmt;

/// The reason in a `DESTROY` cell (first body byte; the rest is zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum DestroyReason {
    /// The client or the exit closed the circuit.
    Requested,
    /// A hop broke the circuit protocol.
    Protocol,
    /// A cell was recognised by no hop: it was altered on the way.
    Unrecognised,
    /// A link the circuit ran over closed.
    LinkClosed,
    /// The hop could not extend: the next relay is unknown or unreachable.
    ExtendFailed,
    /// A table or queue was full.
    ResourceLimit,
    /// More `RELAY_EARLY` cells than a circuit may carry.
    TooLong,
    /// The circuit timed out.
    Timeout,
    /// A hop destroyed the circuit because no cell went through it for its
    /// idle timeout. Nobody failed: build a fresh circuit when needed.
    Idle,
}

impl DestroyReason {
    /// Every reason, in code order.
    pub const ALL: [DestroyReason; 9] = [
        DestroyReason::Requested,
        DestroyReason::Protocol,
        DestroyReason::Unrecognised,
        DestroyReason::LinkClosed,
        DestroyReason::ExtendFailed,
        DestroyReason::ResourceLimit,
        DestroyReason::TooLong,
        DestroyReason::Timeout,
        DestroyReason::Idle,
    ];

    /// The wire code.
    pub fn code(self) -> u8 {
        match self {
            DestroyReason::Requested => 0,
            DestroyReason::Protocol => 1,
            DestroyReason::Unrecognised => 2,
            DestroyReason::LinkClosed => 3,
            DestroyReason::ExtendFailed => 4,
            DestroyReason::ResourceLimit => 5,
            DestroyReason::TooLong => 6,
            DestroyReason::Timeout => 7,
            DestroyReason::Idle => 8,
        }
    }

    /// The reason for a wire code; unknown codes read as `Protocol`, since
    /// the circuit is gone either way.
    pub fn from_code(code: u8) -> Self {
        DestroyReason::ALL
            .iter()
            .copied()
            .find(|r| r.code() == code)
            .unwrap_or(DestroyReason::Protocol)
    }
}

impl fmt::Display for DestroyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DestroyReason::Requested => "closed on request",
            DestroyReason::Protocol => "circuit protocol violation",
            DestroyReason::Unrecognised => "a cell was altered in transit",
            DestroyReason::LinkClosed => "a link of the circuit closed",
            DestroyReason::ExtendFailed => "the circuit could not be extended",
            DestroyReason::ResourceLimit => "a hop ran out of room",
            DestroyReason::TooLong => "the circuit exceeded its maximum length",
            DestroyReason::Timeout => "the circuit timed out",
            DestroyReason::Idle => "the circuit was idle too long; build a fresh one",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for (i, r) in DestroyReason::ALL.iter().enumerate() {
            assert_eq!(usize::from(r.code()), i);
            assert_eq!(DestroyReason::from_code(r.code()), *r);
        }
        assert_eq!(DestroyReason::from_code(200), DestroyReason::Protocol);
    }
}
