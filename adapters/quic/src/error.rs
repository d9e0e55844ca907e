//! Errors of the QUIC transport.

use std::fmt;

/// Building a transport failed.
#[derive(Debug)]
pub enum SetupError {
    /// The certificate could not be made.
    Certificate(String),
    /// rustls refused the configuration.
    Tls(String),
    /// quinn-proto refused the configuration.
    Quic(String),
    /// The UDP socket could not be bound or registered.
    Io(std::io::Error),
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetupError::Certificate(e) => write!(f, "making the certificate failed: {e}"),
            SetupError::Tls(e) => write!(f, "TLS configuration refused: {e}"),
            SetupError::Quic(e) => write!(f, "QUIC configuration refused: {e}"),
            SetupError::Io(e) => write!(f, "UDP socket: {e}"),
        }
    }
}

impl std::error::Error for SetupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SetupError::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// A connection could not be started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectError {
    /// The transport was built without dialling (or is shutting down).
    NotDialling,
    /// [`QuicConfig::max_connections`](crate::QuicConfig::max_connections)
    /// connections are open already.
    TooManyConnections,
    /// quinn-proto refused: an unspecified address, port 0, …
    Refused(String),
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::NotDialling => write!(f, "this transport does not dial"),
            ConnectError::TooManyConnections => write!(f, "too many QUIC connections"),
            ConnectError::Refused(e) => write!(f, "QUIC connect refused: {e}"),
        }
    }
}

impl std::error::Error for ConnectError {}

/// Why a connection ended, as seen by [`QuicEvent::Closed`](crate::QuicEvent::Closed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseCause {
    /// The peer closed the connection (application close).
    ClosedByPeer,
    /// The peer's QUIC or TLS stack aborted it (includes a failed TLS
    /// handshake, for example an ALPN mismatch).
    Aborted(String),
    /// Nothing heard from the peer within the idle timeout (also a dial to
    /// an address where nobody answers).
    TimedOut,
    /// The peer reset the connection (stateless reset).
    Reset,
    /// The peer does not speak QUIC v1.
    VersionMismatch,
    /// The connection broke a rule of QUIC (either side).
    Protocol(String),
    /// The peer reset or stopped the link stream.
    StreamReset,
}

impl fmt::Display for CloseCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseCause::ClosedByPeer => write!(f, "closed by peer"),
            CloseCause::Aborted(e) => write!(f, "aborted: {e}"),
            CloseCause::TimedOut => write!(f, "timed out"),
            CloseCause::Reset => write!(f, "reset by peer"),
            CloseCause::VersionMismatch => write!(f, "QUIC version mismatch"),
            CloseCause::Protocol(e) => write!(f, "protocol error: {e}"),
            CloseCause::StreamReset => write!(f, "link stream reset by peer"),
        }
    }
}

impl CloseCause {
    pub(crate) fn from_quinn(error: &quinn_proto::ConnectionError) -> Self {
        use quinn_proto::ConnectionError as E;
        match error {
            E::ApplicationClosed(_) => CloseCause::ClosedByPeer,
            E::ConnectionClosed(close) => CloseCause::Aborted(close.to_string()),
            E::TimedOut => CloseCause::TimedOut,
            E::Reset => CloseCause::Reset,
            E::VersionMismatch => CloseCause::VersionMismatch,
            other => CloseCause::Protocol(other.to_string()),
        }
    }
}
