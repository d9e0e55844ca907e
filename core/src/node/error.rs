//! Errors of the node's operations, one enum per operation.

use core::fmt;

use super::LinkId;

/// Why [`OpenLink`](super::OpenLink) was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum OpenLinkError {
    /// Every link slot holds an established or outbound link. Close the
    /// transport connection; build the node with more link slots if this is
    /// routine.
    TableFull,
    /// The peer's network prefix already holds its share of this node's
    /// inbound links ([`NodeConfig::max_inbound_per_prefix`](super::NodeConfig::max_inbound_per_prefix)).
    /// Close the transport connection.
    NetworkFull,
}

impl fmt::Display for OpenLinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenLinkError::TableFull => write!(
                f,
                "link table full; drop the connection or build the node with more link slots"
            ),
            OpenLinkError::NetworkFull => write!(
                f,
                "the peer's network already holds its share of inbound links; drop the connection"
            ),
        }
    }
}

impl core::error::Error for OpenLinkError {}

/// Why an input for a link ([`Receive`](super::Receive),
/// [`TransportRoom`](super::TransportRoom), [`TransportClosed`](super::TransportClosed),
/// [`CloseLink`](super::CloseLink)) was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum LinkInputError {
    /// No such link: it closed (see its `LinkClosed` event) or never existed.
    UnknownLink(LinkId),
}

impl fmt::Display for LinkInputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkInputError::UnknownLink(id) => write!(
                f,
                "{id} is not open; it closed or never existed, so close its transport"
            ),
        }
    }
}

impl core::error::Error for LinkInputError {}

/// Why the test-only `SendCell` input (with the `testing` feature) could
/// not queue a cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum SendCellError {
    /// No such link.
    UnknownLink(LinkId),
    /// The link's handshake has not finished, or it is closing.
    NotEstablished(LinkId),
    /// The link's send queue is full: poll transmits, then try again.
    QueueFull(LinkId),
}

impl fmt::Display for SendCellError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendCellError::UnknownLink(id) => write!(f, "{id} is not open"),
            SendCellError::NotEstablished(id) => {
                write!(f, "{id} is not established; wait for LinkEstablished")
            }
            SendCellError::QueueFull(id) => {
                write!(f, "{id} send queue is full; poll transmits and retry")
            }
        }
    }
}

impl core::error::Error for SendCellError {}

/// Why [`SendMessage`](super::SendMessage) or [`Reply`](super::Reply)
/// refused a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum SendMessageError {
    /// The message pool's outgoing half is full of unacknowledged messages:
    /// wait for `MessageAcknowledged` (or `MessageFailed`) and retry.
    Full,
    /// Longer than the node's message slots.
    TooLarge {
        /// The message's length.
        len: usize,
        /// The largest message this node sends.
        max: usize,
    },
    /// The destination is this node.
    ToSelf,
    /// The destination is not in the node table, so no circuit can end at
    /// it (its onion key is unknown). Learn its descriptor first
    /// ([`LearnDescriptor`](super::LearnDescriptor), or wait for gossip).
    UnknownDestination,
    /// The circuit to reply on is gone; the sender must ask again.
    ReplyCircuitGone,
}

impl fmt::Display for SendMessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendMessageError::Full => write!(
                f,
                "too many unacknowledged messages; wait for acknowledgements and retry"
            ),
            SendMessageError::TooLarge { len, max } => write!(
                f,
                "a {len}-byte message exceeds this node's {max}-byte limit; split it"
            ),
            SendMessageError::ToSelf => write!(f, "the destination is this node itself"),
            SendMessageError::UnknownDestination => write!(
                f,
                "the destination is not a known node; learn its descriptor first"
            ),
            SendMessageError::ReplyCircuitGone => write!(
                f,
                "the circuit the message came on has closed; the sender must ask again"
            ),
        }
    }
}

impl core::error::Error for SendMessageError {}

/// Why [`ReceiveStreamCell`](super::ReceiveStreamCell) did not take a cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum StreamCellError {
    /// No such link: it closed (see its `LinkClosed` event) or never existed.
    UnknownLink(LinkId),
    /// The link was not opened with circuit streams
    /// ([`OpenLink::circuit_streams`](super::OpenLink::circuit_streams)); its
    /// cells come in its byte stream, through [`Receive`](super::Receive).
    NotAStreamLink(LinkId),
    /// Not now: the link's handshake is still running, or what this cell may
    /// cause does not fit (its circuit's next link or the event queue is
    /// full). Keep the cell, stop reading its stream (the transport's flow
    /// control holds that circuit's sender back, and only it), and offer it
    /// again after polling events and transmits.
    WouldBlock(LinkId),
}

impl fmt::Display for StreamCellError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamCellError::UnknownLink(id) => write!(
                f,
                "{id} is not open; it closed or never existed, so close its transport"
            ),
            StreamCellError::NotAStreamLink(id) => write!(
                f,
                "{id} carries its cells in its byte stream; feed its bytes with Receive"
            ),
            StreamCellError::WouldBlock(id) => write!(
                f,
                "{id} cannot take this circuit's cell yet; keep it and offer it again after polling"
            ),
        }
    }
}

impl core::error::Error for StreamCellError {}

/// Why [`AddBootstrap`](super::AddBootstrap) did not add an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum AddBootstrapError {
    /// The node keeps [`MAX_BOOTSTRAP`](super::MAX_BOOTSTRAP) addresses and
    /// has that many.
    ListFull,
    /// A node id was given with the address, and this build leaves out the
    /// core feature `keyed-bootstrap` that keeps it.
    NodeIdUnsupported,
}

impl fmt::Display for AddBootstrapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddBootstrapError::ListFull => write!(
                f,
                "the bootstrap list is full ({} addresses); give fewer bootstrap nodes",
                super::MAX_BOOTSTRAP
            ),
            AddBootstrapError::NodeIdUnsupported => f.write_str(
                "this build cannot dial a bootstrap node by its id (core feature \
                 `keyed-bootstrap`); give the address alone",
            ),
        }
    }
}

impl core::error::Error for AddBootstrapError {}
