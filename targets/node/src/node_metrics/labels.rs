//! The label sets of the node's metric families, and the fixed names their
//! values take. Every value is one of a closed set of words: a label never
//! carries a node id, an address or anything a peer chose.

use prometheus_client::encoding::EncodeLabelSet;
use veil_core::cell::DestroyReason;
use veil_core::link::CloseReason;
use veil_core::node::{MessageFailure, ReachabilityStatus};

/// A kind of link.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LinkLabels {
    /// "tcp", "quic" or "unknown" (the adapter did not say).
    pub transport: &'static str,
    /// "handshaking", "established" or "closing".
    pub state: &'static str,
    /// "initiator" or "responder".
    pub role: &'static str,
}

/// A kind of circuit.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CircuitLabels {
    /// "relay" or "own".
    pub role: &'static str,
    /// "open" (relayed), "building" or "ready" (own).
    pub state: &'static str,
}

/// One role (of a link, or of a rendezvous relay).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RoleLabels {
    pub role: &'static str,
}

/// Why something ended or was dropped.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

/// "outgoing" or "incoming".
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DirectionLabels {
    pub direction: &'static str,
}

/// "tried", "built", "lost" or "failed".
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

/// "min", "median" or "max" of a set of measurements.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatLabels {
    pub stat: &'static str,
}

/// One state of several, of which one holds.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub state: &'static str,
}

/// `reason` of a closed link.
pub fn close_reason(reason: CloseReason) -> &'static str {
    match reason {
        CloseReason::Normal => "normal",
        CloseReason::Shutdown => "shutdown",
        CloseReason::ProtocolViolation => "protocol_violation",
        CloseReason::AuthenticationFailed => "authentication_failed",
        CloseReason::IdentityMismatch => "identity_mismatch",
        CloseReason::PeerSilent => "peer_silent",
        CloseReason::HandshakeTimeout => "handshake_timeout",
        CloseReason::MessageTooLarge => "message_too_large",
        CloseReason::Evicted => "evicted",
        CloseReason::NonceExhausted => "nonce_exhausted",
        CloseReason::TransportClosed => "transport_closed",
        CloseReason::Duplicate => "duplicate",
        CloseReason::Pruned => "pruned",
    }
}

/// `reason` of a closed circuit.
pub fn destroy_reason(reason: DestroyReason) -> &'static str {
    match reason {
        DestroyReason::Requested => "requested",
        DestroyReason::Protocol => "protocol",
        DestroyReason::Unrecognised => "unrecognised",
        DestroyReason::LinkClosed => "link_closed",
        DestroyReason::ExtendFailed => "extend_failed",
        DestroyReason::ResourceLimit => "resource_limit",
        DestroyReason::TooLong => "too_long",
        DestroyReason::Timeout => "timeout",
        DestroyReason::Idle => "idle",
    }
}

/// `reason` of a failed message.
pub fn message_failure(reason: MessageFailure) -> &'static str {
    match reason {
        MessageFailure::Expired => "expired",
        MessageFailure::Refused => "refused",
        MessageFailure::CircuitClosed => "circuit_closed",
    }
}

/// Every reachability state, and its name.
pub const REACHABILITY: [(ReachabilityStatus, &str); 4] = [
    (ReachabilityStatus::Assumed, "assumed"),
    (ReachabilityStatus::Checking, "checking"),
    (ReachabilityStatus::Reachable, "reachable"),
    (ReachabilityStatus::Unreachable, "unreachable"),
];

/// Every message failure, for the family to show zeros before the first.
pub const MESSAGE_FAILURES: [MessageFailure; 3] = [
    MessageFailure::Expired,
    MessageFailure::Refused,
    MessageFailure::CircuitClosed,
];
