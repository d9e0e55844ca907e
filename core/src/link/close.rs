//! Why a link closed: one code on the wire (in a `Close` frame) and in the
//! `LinkClosed` event, so that both ends and the operator see the same reason.

use core::fmt;

/// The reason a link was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum CloseReason {
    /// The application or operator asked for it.
    Normal = 0,
    /// The node is shutting down.
    Shutdown = 1,
    /// The peer broke the protocol: an unknown frame kind, a bad length, a
    /// handshake message of the wrong size.
    ProtocolViolation = 2,
    /// A message failed authentication: tampered, replayed, reordered or
    /// forged. Over an ordered stream this cannot happen by accident.
    AuthenticationFailed = 3,
    /// The peer proved a different identity than the one dialled, or its
    /// identity signature over its Noise static key did not verify.
    IdentityMismatch = 4,
    /// Nothing arrived from the peer within the idle timeout.
    PeerSilent = 5,
    /// The handshake did not finish within the handshake timeout.
    HandshakeTimeout = 6,
    /// A message was longer than this end advertised it can receive.
    MessageTooLarge = 7,
    /// The link was evicted to make room (too many links or half-open
    /// handshakes).
    Evicted = 8,
    /// The sending nonce space is used up; a new link is needed.
    NonceExhausted = 9,
    /// The transport under the link (TCP, QUIC) went away.
    TransportClosed = 10,
    /// Another link to the same peer, dialled by this node over another
    /// transport, was established first (a transport race); this one is
    /// not needed.
    Duplicate = 11,
    /// The link carried no circuit and was closed to keep room in a link
    /// table: a bootstrap link handed off once its dialler linked
    /// elsewhere, or an idle link pruned for a newcomer (relay spec §10).
    /// Not a fault; the closing side wants no new link from the peer soon.
    Pruned = 12,
}

impl CloseReason {
    /// Every reason, in code order.
    pub const ALL: [CloseReason; 13] = [
        CloseReason::Normal,
        CloseReason::Shutdown,
        CloseReason::ProtocolViolation,
        CloseReason::AuthenticationFailed,
        CloseReason::IdentityMismatch,
        CloseReason::PeerSilent,
        CloseReason::HandshakeTimeout,
        CloseReason::MessageTooLarge,
        CloseReason::Evicted,
        CloseReason::NonceExhausted,
        CloseReason::TransportClosed,
        CloseReason::Duplicate,
        CloseReason::Pruned,
    ];

    /// The wire code of this reason.
    // A fieldless `repr(u8)` enum converts to its discriminant losslessly.
    #[allow(clippy::as_conversions)]
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The reason for a wire code, if it is known.
    pub fn from_code(code: u8) -> Option<Self> {
        CloseReason::ALL.iter().copied().find(|r| r.code() == code)
    }

    /// Whether the reason means the peer misbehaved (as opposed to an
    /// orderly close or a local decision).
    pub fn is_peer_fault(self) -> bool {
        matches!(
            self,
            CloseReason::ProtocolViolation
                | CloseReason::AuthenticationFailed
                | CloseReason::IdentityMismatch
                | CloseReason::MessageTooLarge
        )
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CloseReason::Normal => "closed on request",
            CloseReason::Shutdown => "node shutting down",
            CloseReason::ProtocolViolation => "peer violated the link protocol",
            CloseReason::AuthenticationFailed => {
                "a message failed authentication (tampered, replayed or reordered)"
            }
            CloseReason::IdentityMismatch => "peer identity did not match or did not verify",
            CloseReason::PeerSilent => "peer silent: a ping went unanswered past its timeout, or nothing arrived for the idle timeout",
            CloseReason::HandshakeTimeout => "handshake did not finish in time",
            CloseReason::MessageTooLarge => "peer sent a message larger than advertised",
            CloseReason::Evicted => "evicted to make room for other links",
            CloseReason::NonceExhausted => "nonce space exhausted",
            CloseReason::TransportClosed => "transport connection closed",
            CloseReason::Duplicate => "another link to the same peer won the transport race",
            CloseReason::Pruned => "idle, closed to keep room",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_dense() {
        for (i, reason) in CloseReason::ALL.iter().enumerate() {
            assert_eq!(usize::from(reason.code()), i);
            assert_eq!(CloseReason::from_code(reason.code()), Some(*reason));
        }
        assert_eq!(CloseReason::from_code(200), None);
    }
}
