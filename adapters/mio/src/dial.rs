//! Outgoing connections in progress, and where dial requests come from.
//!
//! Two parties dial: the embedding program ([`Runtime::dial`](crate::Runtime::dial))
//! and the node, which asks for first hops, next hops of an `EXTEND` and
//! bootstrap addresses (`Output::Dial`). A node request that cannot be
//! connected (an unsupported transport, a refused or timed-out connect, a
//! full link table) goes back as `DialFailed`.

use std::net::SocketAddr;

use mio::net::TcpStream;
use veil_core::identity::NodeId;
use veil_core::node::DialRequest;
use veil_core::time::Instant;

use crate::error::DialError;

/// Who asked for a dial, so a failure goes back to them.
#[derive(Debug)]
pub(crate) enum DialOrigin {
    /// The embedding program, through `Runtime::dial`.
    Program,
    /// The node, through its dial requests.
    Node(DialRequest),
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
