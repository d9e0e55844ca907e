//! Outgoing connections in progress, and where dial requests come from.
//!
//! Two parties dial: the embedding program ([`Runtime::dial`](crate::Runtime::dial))
//! and the core, which asks for first hops, next hops of an `EXTEND` and
//! bootstrap addresses through `Node::poll_dial`. A core request that
//! cannot be connected (an unsupported transport, a refused or timed-out
//! connect, a full link table) goes back with `Node::dial_failed`.

use std::net::SocketAddr;

use mio::net::TcpStream;
use veil_core::identity::{NodeId, Transport};
use veil_core::node::DialRequest;
use veil_core::time::Instant;

use crate::error::DialError;
use crate::trace::TracedNode;

/// A dial request from the core.
pub(crate) type CoreDialRequest = DialRequest;

/// The core's next dial request, if any.
pub(crate) fn poll_core_dial(node: &mut TracedNode) -> Option<CoreDialRequest> {
    node.poll_dial()
}

/// Where to connect for a core request, and whom to expect there.
pub(crate) fn core_dial_target(
    request: &CoreDialRequest,
) -> Result<(SocketAddr, Option<NodeId>), DialError> {
    match request.address.transport {
        Transport::Tcp => Ok((request.address.socket, request.peer)),
        other => Err(DialError::UnsupportedTransport(other)),
    }
}

/// Tells the core its dial request failed.
pub(crate) fn core_dial_failed(node: &mut TracedNode, now: Instant, request: &CoreDialRequest) {
    node.dial_failed(now, request);
}

/// Who asked for a dial, so a failure goes back to them.
#[derive(Debug)]
pub(crate) enum DialOrigin {
    /// The embedding program, through `Runtime::dial`.
    Program,
    /// The core, through its dial requests.
    Core(CoreDialRequest),
}

/// A connect in progress.
#[derive(Debug)]
pub(crate) struct PendingDial {
    pub(crate) stream: TcpStream,
    pub(crate) addr: SocketAddr,
    pub(crate) expected: Option<NodeId>,
    pub(crate) origin: DialOrigin,
    /// Give up if not connected by then.
    pub(crate) deadline: Instant,
}

/// A dial the program asked for that failed after
/// [`Runtime::dial`](crate::Runtime::dial) returned.
#[derive(Debug)]
pub struct DialFailure {
    /// Where it dialled.
    pub addr: SocketAddr,
    /// Whom it expected there.
    pub expected: Option<NodeId>,
    /// Why it failed.
    pub error: DialError,
}
