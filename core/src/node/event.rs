//! What a node tells its owner.

use crate::identity::NodeId;
use crate::link::{Cell, CloseReason, ClosedBy, LinkRole};

use super::{DescriptorRefusal, LinkId};

/// Something that happened inside the node. Pulled with
/// [`Node::poll_event`](super::Node::poll_event).
// Cells travel inline: there is no allocator to box them, and the event
// queue's size is fixed by its capacity either way.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A link finished its handshake; the peer's identity is proven.
    LinkEstablished {
        /// The link.
        link: LinkId,
        /// The authenticated peer.
        peer: NodeId,
        /// Whether we dialled or accepted.
        role: LinkRole,
    },
    /// A link ended. Its id is invalid from now on; the owner should close
    /// the transport connection under it.
    LinkClosed {
        /// The link.
        link: LinkId,
        /// The peer, if it had been authenticated.
        peer: Option<NodeId>,
        /// Why.
        reason: CloseReason,
        /// Who closed it.
        by: ClosedBy,
    },
    /// A verified descriptor of a node we did not know went into the node
    /// table.
    PeerLearned {
        /// The node.
        peer: NodeId,
        /// Whether it relays.
        relay: bool,
        /// The link it came over (from the node itself or by gossip).
        via: LinkId,
    },
    /// A descriptor received on a link was refused.
    DescriptorRefused {
        /// The link it came over.
        link: LinkId,
        /// Why.
        reason: DescriptorRefusal,
    },
    /// A cell arrived on an established link.
    CellReceived {
        /// The link.
        link: LinkId,
        /// The cell, exactly as the peer queued it.
        cell: Cell,
    },
}
