//! What can go wrong, one enum per operation, each message saying what to
//! do about it.

use std::fmt;
use std::io;
use std::net::SocketAddr;

use veil_core::identity::Transport;

/// Why [`Runtime::bind`](crate::Runtime::bind) failed.
#[derive(Debug)]
pub enum BindError {
    /// The OS gave no entropy for the node's seed.
    Entropy(getrandom::Error),
    /// The OS poller could not be created.
    Poll(io::Error),
    /// The listening socket could not be bound.
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// What the OS said.
        source: io::Error,
    },
    /// The listener could not be registered with the poller.
    Register(io::Error),
    /// The options ask for a node with no link slots.
    NoLinkSlots,
    /// A traced node would have more link slots than a replay builds
    /// ([`MAX_TRACE_LINKS`](crate::trace::MAX_TRACE_LINKS)).
    TooManyLinksToTrace {
        /// The link slots asked for.
        links: usize,
    },
    /// The trace header could not be written.
    Trace(io::Error),
    /// The QUIC socket could not be set up.
    #[cfg(feature = "quic")]
    Quic {
        /// The address asked for.
        addr: SocketAddr,
        /// What went wrong.
        source: veil_quic::SetupError,
    },
}

impl fmt::Display for BindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindError::Entropy(e) => write!(
                f,
                "could not read OS entropy for the node's seed ({e}); \
                 check that the getrandom syscall or /dev/urandom is available"
            ),
            BindError::Poll(e) => write!(
                f,
                "could not create the OS poller ({e}); \
                 raise the open-file limit (ulimit -n) or close unused descriptors"
            ),
            BindError::Listen { addr, source } => write!(
                f,
                "could not listen on {addr} ({source}); pick a free port (0 lets \
                 the OS choose) on an address of this host"
            ),
            BindError::Register(e) => write!(
                f,
                "could not register the listener with the poller ({e}); \
                 raise the open-file limit (ulimit -n)"
            ),
            BindError::NoLinkSlots => write!(
                f,
                "a node needs at least one link slot; set RuntimeOptions::links to 1 or more"
            ),
            BindError::TooManyLinksToTrace { links } => write!(
                f,
                "a traced node has at most {} link slots, not {links} (a replay builds \
                 the whole link table); lower RuntimeOptions::links or do not trace",
                crate::trace::MAX_TRACE_LINKS
            ),
            BindError::Trace(e) => write!(
                f,
                "could not write the trace ({e}); check the trace file's directory and free space"
            ),
            #[cfg(feature = "quic")]
            BindError::Quic { addr, source } => write!(
                f,
                "could not listen for QUIC on {addr} ({source}); pick a free UDP port                  (0 lets the OS choose) on an address of this host"
            ),
        }
    }
}

impl std::error::Error for BindError {}

/// Why a dial failed, at once from [`Runtime::dial`](crate::Runtime::dial)
/// or later as a [`DialFailure`](crate::DialFailure).
#[derive(Debug)]
pub enum DialError {
    /// Too many dials are in progress.
    TooManyDials {
        /// The limit that was reached.
        limit: usize,
    },
    /// The connection could not be made.
    Connect(io::Error),
    /// The socket could not be registered with the poller.
    Register(io::Error),
    /// The connection was not made within the dial timeout.
    TimedOut {
        /// The timeout that ran out.
        after: std::time::Duration,
    },
    /// The connection was made but every link slot of the node is in use.
    LinkTableFull,
    /// The address is for a transport this runtime does not dial.
    UnsupportedTransport(Transport),
    /// The runtime is shutting down and makes no new connections.
    ShuttingDown,
    /// The QUIC connection could not be started.
    Quic(String),
}

impl fmt::Display for DialError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DialError::TooManyDials { limit } => write!(
                f,
                "{limit} dials are already in progress; wait for some to finish \
                 or raise RuntimeOptions::max_pending_dials"
            ),
            DialError::Connect(e) => write!(
                f,
                "could not connect ({e}); check the address and that the peer is listening"
            ),
            DialError::Register(e) => write!(
                f,
                "could not register the socket with the poller ({e}); \
                 raise the open-file limit (ulimit -n)"
            ),
            DialError::TimedOut { after } => write!(
                f,
                "no connection within {after:?}; the peer may be down or a \
                 firewall may drop the packets"
            ),
            DialError::LinkTableFull => write!(
                f,
                "connected, but every link slot is in use; close a link or \
                 raise RuntimeOptions::links"
            ),
            DialError::UnsupportedTransport(t) => write!(
                f,
                "the address is for {t:?}, which this runtime does not speak; \
                 dial the peer's TCP address, or listen for QUIC first (listen_quic)"
            ),
            DialError::Quic(why) => write!(
                f,
                "could not start a QUIC connection ({why}); check the address and the QUIC socket"
            ),
            DialError::ShuttingDown => write!(
                f,
                "the runtime is shutting down and makes no new connections"
            ),
        }
    }
}

impl std::error::Error for DialError {}

/// Why [`Runtime::turn`](crate::Runtime::turn) failed. Errors on single
/// connections never end up here: they close that connection's link.
#[derive(Debug)]
pub enum TurnError {
    /// Waiting for socket readiness failed.
    Poll(io::Error),
    /// Writing the trace failed; recording has stopped.
    Trace(io::Error),
    /// Writing the link capture failed; capturing has stopped.
    Capture(io::Error),
}

impl fmt::Display for TurnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TurnError::Poll(e) => write!(
                f,
                "waiting for socket readiness failed ({e}); the runtime cannot \
                 go on: drop it and build a new one"
            ),
            TurnError::Trace(e) => write!(
                f,
                "writing the trace failed ({e}); recording stopped, the trace is truncated \
                 there; check free space"
            ),
            TurnError::Capture(e) => write!(
                f,
                "writing the link capture failed ({e}); capturing stopped, the node goes on; \
                 check free space"
            ),
        }
    }
}

impl std::error::Error for TurnError {}

/// Why [`Runtime::offer_service`](crate::Runtime::offer_service) did not
/// offer the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfferServiceError {
    /// The runtime records a trace. Offering a service is a method of the
    /// node, not one of its inputs, so a trace cannot hold it and its
    /// replay would diverge at the first introduction point.
    Recording,
}

impl fmt::Display for OfferServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OfferServiceError::Recording => write!(
                f,
                "a node that records a trace cannot offer a service (offering one is not a \
                 node input, so the trace could not replay it); do not record this node"
            ),
        }
    }
}

impl std::error::Error for OfferServiceError {}
