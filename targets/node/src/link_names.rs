//! The names a link's role, phase and transport go by wherever the node
//! shows them (the control socket's `status` and the metrics' labels), so
//! both say the same thing.

use veil_core::identity::Transport;
use veil_core::link::{LinkPhase, LinkRole};

/// "initiator" (we dialled) or "responder" (we accepted).
pub fn role(role: LinkRole) -> &'static str {
    match role {
        LinkRole::Initiator => "initiator",
        LinkRole::Responder => "responder",
    }
}

/// "handshaking", "established", "closing" or "closed".
pub fn phase(phase: LinkPhase) -> &'static str {
    match phase {
        LinkPhase::Handshaking => "handshaking",
        LinkPhase::Established => "established",
        LinkPhase::Closing => "closing",
        LinkPhase::Closed => "closed",
    }
}

/// "tcp" or "quic".
pub fn transport(transport: Transport) -> &'static str {
    match transport {
        Transport::Tcp => "tcp",
        Transport::Quic => "quic",
    }
}
