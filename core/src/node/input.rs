//! Everything an owner tells a node, listed once.
//!
//! Each input is a small type of its own (`OpenLink`, `Receive`, …), passed
//! to [`Node::handle`], which returns that input's own result type. The list
//! at the bottom of this file generates, from one line per input, the
//! [`Input`] enum (every input as a value, for owners that forward inputs
//! they did not make: trace recording and replay, middleware), the
//! [`Outcome`] enum (every result as a value) and the dispatch between them.
//! Adding an input is: its type, its handler, one line in the list. No
//! adapter restates it.

use core::net::IpAddr;

use heapless::Vec;

use crate::discovery::InsertOutcome;
use crate::identity::{Address, NodeId, Transport, MAX_ADDRESSES};
use crate::link::{Cell, CloseReason, LinkId, LinkRole, CHANNEL_BINDING_LEN};
use crate::message::{MessageId, ReplyTo};
use crate::time::Instant;

use super::circuits::MAX_GUARDS;
use super::{
    AddBootstrapError, DescriptorRefusal, DialRequest, LinkInputError, Node, OpenLinkError,
    Profile, SendMessageError, StreamCellError,
};

/// The adapter has a new transport connection: open a link over it.
///
/// Returns the link's id, which names it in every later input and output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct OpenLink {
    /// [`Initiator`](LinkRole::Initiator) if we dialled the connection,
    /// [`Responder`](LinkRole::Responder) if we accepted it.
    pub role: LinkRole,
    /// The node we dialled, which must prove it is that node (from the
    /// [`DialRequest`]); `None` for an accepted connection or a bootstrap
    /// address, where whoever answers is welcome.
    pub expected_peer: Option<NodeId>,
    /// What the connection runs over, if known. The node remembers per peer
    /// which transport worked (relay spec §10) and reports it per link.
    pub transport: Option<Transport>,
    /// For a transport that carries each circuit on a stream of its own
    /// (QUIC): the channel binding both ends derive from the transport's
    /// keys (link spec §10). The link's own frames then use its byte stream
    /// ([`Receive`], [`Output::Transmit`](super::Output::Transmit)) and
    /// circuit cells travel one by one ([`ReceiveStreamCell`],
    /// [`Output::StreamCell`](super::Output::StreamCell)). `None` for a plain
    /// byte stream, which carries everything.
    pub circuit_streams: Option<[u8; CHANNEL_BINDING_LEN]>,
    /// The peer's IP address as the transport sees it (the source of an
    /// accepted connection, the address we dialled). The node counts
    /// inbound links per network prefix of it, so one network cannot take
    /// the link table ([`NodeConfig::max_inbound_per_prefix`](super::NodeConfig::max_inbound_per_prefix)).
    /// `None` if unknown; all such links count as one network.
    pub remote: Option<IpAddr>,
    /// Open the link as an *anonymous initiator* (link spec §3.1): the node
    /// shows a throwaway identity, made for this link alone from its CSPRNG,
    /// sends no descriptor and no gossip over it, and takes no circuits
    /// from it. Set when the node's [`DialRequest::anonymous`] asked for it:
    /// the node builds the circuits it originates only over such links, so
    /// that their first hop never learns its long-term id. Ignored for an
    /// accepted connection.
    pub anonymous: bool,
}

impl OpenLink {
    /// A connection we accepted over `transport` from `remote`.
    pub fn accepted(transport: Transport, remote: IpAddr) -> Self {
        OpenLink {
            role: LinkRole::Responder,
            expected_peer: None,
            transport: Some(transport),
            circuit_streams: None,
            remote: Some(remote),
            anonymous: false,
        }
    }

    /// A connection we made to `expected_peer` (`None`: whoever answers)
    /// over `transport`, to `remote`.
    pub fn dialled(expected_peer: Option<NodeId>, transport: Transport, remote: IpAddr) -> Self {
        OpenLink {
            role: LinkRole::Initiator,
            expected_peer,
            transport: Some(transport),
            circuit_streams: None,
            remote: Some(remote),
            anonymous: false,
        }
    }

    /// A connection we made as the node asked in `request` (anonymous if it
    /// asked for that).
    pub fn for_request(request: &DialRequest) -> Self {
        OpenLink {
            anonymous: request.anonymous,
            ..OpenLink::dialled(
                request.peer,
                request.address.transport,
                request.address.socket.ip(),
            )
        }
    }
}

/// Bytes arrived on a link's byte stream, in any chunking.
///
/// Returns how many were consumed. Fewer than `bytes.len()` means the node
/// cannot take more from this link now (its event queue is full, or a link
/// its circuits lead to is): drain the node's outputs, then offer the rest
/// again (an empty slice is fine). Not reading the rest is the
/// backpressure: the peer's transport fills up and its circuits stall, and
/// no queue grows. A protocol error closes the link (an
/// [`Event::LinkClosed`](super::Event::LinkClosed) follows) and consumes
/// everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Receive<'a> {
    /// The link.
    pub link: LinkId,
    /// What arrived.
    pub bytes: &'a [u8],
}

/// A whole cell arrived on one of the circuit streams of a link opened with
/// [`OpenLink::circuit_streams`].
///
/// Taken, it is handled at once. [`StreamCellError::WouldBlock`] leaves it
/// with the caller: what it may cause does not fit now, or the link's
/// handshake has not finished. Only this circuit's stream need wait. A cell
/// that breaks the protocol closes the link and counts as taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ReceiveStreamCell<'a> {
    /// The link.
    pub link: LinkId,
    /// The cell.
    #[cfg_attr(feature = "serde", serde(borrow, with = "super::serde_cell::borrowed"))]
    pub cell: &'a Cell,
}

/// How many more bytes the transport under a link takes now.
///
/// The node gives no link message (nor stream cell) larger than what is
/// left of the room it was last told, less what it gave since; with no
/// room left it gives nothing for that link. An adapter over a socket
/// whose buffer it cannot see says [`TransportRoom::UNLIMITED`] while the
/// socket takes everything, and `0` after a write it could only take in
/// part (it keeps the rest, and says `UNLIMITED` again once that is out).
/// An adapter that sees its transport's free space (smoltcp's transmit
/// ring) says exactly that, and no message is ever split or held. Every
/// link starts unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct TransportRoom {
    /// The link.
    pub link: LinkId,
    /// Bytes its transport takes now.
    pub bytes: usize,
}

impl TransportRoom {
    /// The room of a transport that takes everything it is given.
    pub const UNLIMITED: usize = usize::MAX;

    /// The transport takes everything again.
    pub fn unlimited(link: LinkId) -> Self {
        TransportRoom {
            link,
            bytes: Self::UNLIMITED,
        }
    }

    /// The transport takes nothing more for now.
    pub fn none(link: LinkId) -> Self {
        TransportRoom { link, bytes: 0 }
    }
}

/// The transport connection under a link closed or failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct TransportClosed {
    /// The link.
    pub link: LinkId,
}

/// A connection asked for by an [`Output::Dial`](super::Output::Dial)
/// could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct DialFailed {
    /// The request, as the node gave it.
    pub request: DialRequest,
}

/// The time an [`Output::Timeout`](super::Output::Timeout) named has come:
/// run every timer that is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Timeout;

/// Close a link; an established link tells the peer why first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CloseLink {
    /// The link.
    pub link: LinkId,
    /// Why, as the peer is told.
    pub reason: CloseReason,
}

/// Send `message` to `destination`, which must be in the node table (its
/// descriptor names the onion key the circuit's last hop needs).
///
/// The node builds (or reuses) a circuit whose last hop is the
/// destination, sends the message in fragments, and keeps it until the
/// destination acknowledges it
/// ([`Event::MessageAcknowledged`](super::Event::MessageAcknowledged)),
/// resending it over a new circuit if its circuit dies. The returned id
/// names it in those events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SendMessage<'a> {
    /// Who gets it.
    pub destination: NodeId,
    /// The message, at most [`Node::MAX_MESSAGE`] bytes.
    pub message: &'a [u8],
}

/// Answer a message from an anonymous sender, over the circuit it came on.
///
/// The reply is acknowledged like any message; it fails
/// ([`MessageFailure::CircuitClosed`](super::MessageFailure::CircuitClosed))
/// if that circuit dies first, since only the sender can build another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Reply<'a> {
    /// The sender, as the received message named it.
    pub to: ReplyTo,
    /// The reply.
    pub message: &'a [u8],
}

/// The addresses to advertise in this node's descriptor (the adapter knows
/// them once it has bound its listeners). The descriptor is re-signed and
/// sent to every linked peer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SetAddresses {
    /// At most [`MAX_ADDRESSES`], one per transport and family is usual.
    pub addresses: Vec<Address, MAX_ADDRESSES>,
}

impl SetAddresses {
    /// The first [`MAX_ADDRESSES`] of `addresses` (a descriptor holds no
    /// more).
    pub fn from_slice(addresses: &[Address]) -> Self {
        SetAddresses {
            addresses: addresses.iter().take(MAX_ADDRESSES).copied().collect(),
        }
    }
}

/// Learn a descriptor from outside the network: a bootstrap list, or the
/// node table persisted before a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LearnDescriptor<'a> {
    /// The signed descriptor, as [`Node::descriptor`] gives it.
    pub descriptor: &'a [u8],
}

/// Dial `address` whenever the node has no established link (from the
/// config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AddBootstrap {
    /// Where a node listens.
    pub address: Address,
    /// The node's id, when the operator gave it (`id@address`): the first
    /// handshake message is then marked with it, which a probe-resistant
    /// node requires (link spec §2.2), and the link must prove that
    /// identity. `None`: whoever answers at the address.
    #[cfg_attr(feature = "serde", serde(default))]
    pub node_id: Option<NodeId>,
}

impl AddBootstrap {
    /// A bootstrap address without a node id.
    pub fn address(address: Address) -> Self {
        AddBootstrap {
            address,
            node_id: None,
        }
    }
}

/// The guards: every circuit's first hop is one of them. Empty (the
/// default) lets the node choose its own ([`Node::guards`]): two healthy
/// relays with an address, in distinct networks, kept while they stay
/// healthy (relay spec §11).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SetGuards {
    /// At most [`MAX_GUARDS`].
    pub guards: Vec<NodeId, MAX_GUARDS>,
}

impl SetGuards {
    /// The first [`MAX_GUARDS`] of `guards`.
    pub fn from_slice(guards: &[NodeId]) -> Self {
        SetGuards {
            guards: guards.iter().take(MAX_GUARDS).copied().collect(),
        }
    }
}

/// `peer` failed outside the node's sight (an address the adapter could
/// not use, say): failing nodes are left out of paths and evicted first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RecordPeerFailure {
    /// The node.
    pub peer: NodeId,
}

/// Whether the owner takes received messages now.
///
/// While it does not, whole messages stay in the node's pool and no
/// [`Output::Message`](super::Output::Message) is given; once the pool's
/// incoming half is full the node stops granting credit, so senders stall
/// and nothing grows. `true` again hands out what waits. A node starts
/// receiving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SetReceiving {
    /// Whether messages are taken.
    pub receiving: bool,
}

mod sealed {
    pub trait Sealed<'a> {}
}

/// An input a node takes: one of the types in this module.
pub trait NodeInput<'a>: Into<Input<'a>> + Clone + sealed::Sealed<'a> {
    /// What the node returns for it.
    type Outcome: Clone + core::fmt::Debug;

    /// Hands the input to its handler.
    #[doc(hidden)]
    fn apply<P: Profile>(self, node: &mut Node<P>, now: Instant) -> Self::Outcome;

    /// The outcome as a value of [`Outcome`], for recording.
    fn wrap(outcome: Self::Outcome) -> Outcome;
}

impl<P: Profile> Node<P> {
    /// Takes one input at time `now` and returns its result. Afterwards,
    /// drain the node's outputs with [`poll`](Self::poll) (see the
    /// [module docs](super) for the contract).
    pub fn handle<'a, I: NodeInput<'a>>(&mut self, now: Instant, input: I) -> I::Outcome {
        let now = self.advance(now);
        input.apply(self, now)
    }
}

/// Generates, from one line per input, the [`Input`] and [`Outcome`]
/// enums, the conversions, and the dispatch of an [`Input`] value. An input
/// that borrows bytes is marked `borrow`, so that decoding it (a trace)
/// borrows them too.
macro_rules! inputs {
    ($(
        $(#[$doc:meta])*
        $([$cfg:meta])?
        $variant:ident($ty:ty) $($borrow:ident)? -> $outcome:ty = $handler:ident;
    )*) => {
        /// Every input a node takes, as one value: for owners that forward
        /// inputs they did not make (trace replay, middleware). Code that
        /// makes an input calls [`Node::handle`] with its own type.
        #[derive(Debug, Clone, PartialEq, Eq)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
        pub enum Input<'a> {
            $(
                $(#[$doc])*
                $(#[cfg($cfg)])?
                $(#[cfg_attr(feature = "serde", serde($borrow))])?
                $variant($ty),
            )*
        }

        /// What an input returned, as one value (for trace digests).
        #[derive(Debug, Clone, PartialEq, Eq)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize))]
        pub enum Outcome {
            $( $(#[$doc])* $(#[cfg($cfg)])? $variant($outcome), )*
        }

        $(
            $(#[cfg($cfg)])?
            impl<'a> From<$ty> for Input<'a> {
                fn from(input: $ty) -> Self {
                    Input::$variant(input)
                }
            }

            $(#[cfg($cfg)])?
            impl<'a> sealed::Sealed<'a> for $ty {}

            $(#[cfg($cfg)])?
            impl<'a> NodeInput<'a> for $ty {
                type Outcome = $outcome;

                fn apply<P: Profile>(self, node: &mut Node<P>, now: Instant) -> $outcome {
                    node.$handler(now, self)
                }

                fn wrap(outcome: $outcome) -> Outcome {
                    Outcome::$variant(outcome)
                }
            }
        )*

        impl Input<'_> {
            /// The input's kind, as its type is named (`"Receive"`,
            /// `"Timeout"`, …), for logs and reports.
            pub fn name(&self) -> &'static str {
                match self {
                    $( $(#[cfg($cfg)])? Input::$variant(_) => stringify!($variant), )*
                }
            }
        }

        impl<P: Profile> Node<P> {
            /// Takes an input given as an [`Input`] value; the same as
            /// [`handle`](Self::handle) with the input's own type.
            pub fn handle_input(&mut self, now: Instant, input: Input<'_>) -> Outcome {
                match input {
                    $(
                        $(#[cfg($cfg)])?
                        Input::$variant(input) => Outcome::$variant(self.handle(now, input)),
                    )*
                }
            }
        }
    };
}

inputs! {
    /// [`OpenLink`].
    OpenLink(OpenLink) -> Result<LinkId, OpenLinkError> = on_open_link;
    /// [`Receive`].
    Receive(Receive<'a>) borrow -> Result<usize, LinkInputError> = on_receive;
    /// [`ReceiveStreamCell`].
    ReceiveStreamCell(ReceiveStreamCell<'a>) borrow -> Result<(), StreamCellError> = on_stream_cell;
    /// [`TransportRoom`].
    TransportRoom(TransportRoom) -> Result<(), LinkInputError> = on_transport_room;
    /// [`TransportClosed`].
    TransportClosed(TransportClosed) -> Result<(), LinkInputError> = on_transport_closed;
    /// [`DialFailed`].
    DialFailed(DialFailed) -> () = on_dial_failed;
    /// [`Timeout`].
    Timeout(Timeout) -> () = on_timeout;
    /// [`CloseLink`].
    CloseLink(CloseLink) -> Result<(), LinkInputError> = on_close_link;
    /// [`SendMessage`].
    SendMessage(SendMessage<'a>) borrow -> Result<MessageId, SendMessageError> = on_send_message;
    /// [`Reply`].
    Reply(Reply<'a>) borrow -> Result<MessageId, SendMessageError> = on_reply;
    /// [`SetAddresses`].
    SetAddresses(SetAddresses) -> () = on_set_addresses;
    /// [`LearnDescriptor`].
    LearnDescriptor(LearnDescriptor<'a>) borrow -> Result<InsertOutcome, DescriptorRefusal> = on_learn_descriptor;
    /// [`AddBootstrap`].
    AddBootstrap(AddBootstrap) -> Result<(), AddBootstrapError> = on_add_bootstrap;
    /// [`SetGuards`].
    SetGuards(SetGuards) -> () = on_set_guards;
    /// [`RecordPeerFailure`].
    RecordPeerFailure(RecordPeerFailure) -> () = on_record_peer_failure;
    /// [`SetReceiving`].
    SetReceiving(SetReceiving) -> () = on_set_receiving;
    /// [`AddAnchor`](super::AddAnchor).
    AddAnchor(super::AddAnchor<'a>) borrow -> Result<(), super::AddAnchorError> = on_add_anchor;
    /// [`RestoreState`](super::RestoreState).
    RestoreState(super::RestoreState<'a>) borrow -> Result<super::RestoredState, super::RestoreStateError> = on_restore_state;
    /// [`LearnService`](super::LearnService).
    LearnService(super::LearnService<'a>) borrow -> Result<NodeId, super::LearnServiceError> = on_learn_service;
    // Test-only inputs come last, so that the others keep their place in
    // encodings (traces) with or without the feature.
    /// [`SendCell`](super::SendCell), with the `testing` feature only.
    [feature = "testing"]
    SendCell(super::SendCell<'a>) borrow -> Result<(), super::SendCellError> = on_send_cell;
}
