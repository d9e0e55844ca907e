//! Outgoing connections in progress, and where dial requests come from.
//!
//! Today only the embedding program dials ([`Runtime::dial`](crate::Runtime::dial)).
//! The core is gaining its own dial requests (`Node::poll_dial` returning a
//! `DialRequest { peer, address }`, and `Node::dial_failed`). Until then
//! [`CoreDialRequest`] is uninhabited and the three `core_*` functions below
//! are the only code to change to wire it in:
//!
//! ```text
//! pub(crate) type CoreDialRequest = veil_core::node::DialRequest;
//! poll_core_dial:   node.poll_dial()
//! core_dial_target: match request.address.transport {
//!                       Transport::Tcp => Ok((request.address.socket, request.peer)),
//!                       other => Err(DialError::UnsupportedTransport(other)),
//!                   }
//! core_dial_failed: node.dial_failed(now, request)
//! ```

use std::net::SocketAddr;

use mio::net::TcpStream;
use veil_core::identity::NodeId;
use veil_core::time::Instant;

use crate::error::DialError;
use crate::StdNode;

/// A dial request from the core. None can exist yet (see the module docs).
pub(crate) type CoreDialRequest = std::convert::Infallible;

/// The core's next dial request, if any.
pub(crate) fn poll_core_dial(_node: &mut StdNode) -> Option<CoreDialRequest> {
    None
}

/// Where to connect for a core request, and whom to expect there.
pub(crate) fn core_dial_target(
    request: &CoreDialRequest,
) -> Result<(SocketAddr, Option<NodeId>), DialError> {
    match *request {}
}

/// Tells the core its dial request failed.
pub(crate) fn core_dial_failed(_node: &mut StdNode, _now: Instant, request: &CoreDialRequest) {
    match *request {}
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
