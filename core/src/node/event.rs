//! What a node tells its owner.

use crate::cell::DestroyReason;
use crate::circuit::CircuitHandle;
use crate::identity::NodeId;
#[cfg(feature = "testing")]
use crate::link::Cell;
use crate::link::{CloseReason, ClosedBy, LinkRole};
use crate::message::MessageId;
use crate::time::Duration;

use super::{DescriptorRefusal, LinkId};

/// Something that happened inside the node, given as
/// [`Output::Event`](super::Output::Event).
// With the `testing` feature cells travel inline: there is no allocator to
// box them, and the event queue's size is fixed by its capacity either way.
#[cfg_attr(feature = "testing", allow(clippy::large_enum_variant))]
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
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
    /// A circuit this node built is ready to carry messages.
    CircuitReady {
        /// The circuit.
        circuit: CircuitHandle,
        /// Its last hop.
        destination: NodeId,
        /// From `CREATE` to the last hop's answer.
        built_in: Duration,
    },
    /// A circuit this node built is gone. Its unacknowledged messages go
    /// again over a new circuit.
    CircuitClosed {
        /// The circuit.
        circuit: CircuitHandle,
        /// Its last hop.
        destination: Option<NodeId>,
        /// Why.
        reason: DestroyReason,
    },
    /// A relay on one of this node's ready circuits stopped answering while
    /// the hops before it answered (relay spec §10, "Liveness"): the
    /// circuit was torn down, its messages go again on a path without the
    /// relay, and the relay is kept out of new paths for `backoff`.
    RelaySuspected {
        /// The relay.
        relay: NodeId,
        /// The circuit it was on.
        circuit: CircuitHandle,
        /// How long new paths avoid it.
        backoff: Duration,
    },
    /// The destination of one of this node's ready circuits stopped
    /// answering while every relay before it answered: the circuit was torn
    /// down, and its messages go again once a new circuit reaches it.
    DestinationSilent {
        /// The destination.
        destination: NodeId,
        /// The circuit.
        circuit: CircuitHandle,
    },
    /// Fewer than 70% of the circuits recently started through a guard
    /// became ready (Tor's path-bias warning): the guard, or the network
    /// behind it, may be failing circuits it cannot use.
    GuardUnreliable {
        /// The guard.
        guard: NodeId,
        /// Circuits through it that became ready, in percent (decayed counts).
        success_percent: u32,
    },
    /// The destination acknowledged a message this node sent.
    MessageAcknowledged {
        /// The id [`SendMessage`](super::SendMessage) returned.
        id: MessageId,
    },
    /// A message this node sent will not arrive.
    MessageFailed {
        /// The id [`SendMessage`](super::SendMessage) returned.
        id: MessageId,
        /// Why.
        reason: MessageFailure,
    },
    /// A cell arrived on an established link (only with the `testing`
    /// feature and [`NodeConfig::link_only`](super::NodeConfig::link_only)).
    #[cfg(feature = "testing")]
    CellReceived {
        /// The link.
        link: LinkId,
        /// The cell, exactly as the peer queued it.
        #[cfg_attr(feature = "serde", serde(with = "super::serde_cell"))]
        cell: Cell,
    },
}

/// Why a message was given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MessageFailure {
    /// Not acknowledged within `message_give_up_after`: no path to the
    /// destination, or it did not answer.
    Expired,
    /// The destination refused it as larger than it accepts.
    Refused,
    /// A reply whose circuit closed before it was acknowledged; a reply
    /// cannot take another circuit (the destination does not know the
    /// sender).
    CircuitClosed,
}

impl core::fmt::Display for MessageFailure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            MessageFailure::Expired => {
                "not acknowledged in time; check that the destination is known and up"
            }
            MessageFailure::Refused => "the destination refused it as too large; send less",
            MessageFailure::CircuitClosed => {
                "the circuit closed before the reply was acknowledged; the sender must ask again"
            }
        })
    }
}
