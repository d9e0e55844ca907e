//! The errors of the control client: one per operation, and the one they
//! share when a request gets no usable answer.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::control_address::Endpoint;
use crate::control_frame::{EncodeFrameError, ReadFrameError};

/// Why a request got no usable answer, whatever the request.
#[derive(Debug)]
pub enum ConnectionError {
    /// The request could not be encoded (a bug in this client).
    Encode(serde_json::Error),
    /// Reading or writing the connection failed.
    Io(io::Error),
    /// The node closed the connection instead of answering.
    Closed,
    /// The node answered something that is not the protocol's answer.
    Unexpected(serde_json::Error),
    /// A request frame could not be encoded (data over the largest
    /// message).
    EncodeFrame(EncodeFrameError),
    /// The node's frame was malformed (CONTROL.md, "Binary frames").
    Frame(ReadFrameError),
}

impl fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectionError::Encode(e) => write!(f, "cannot encode the request: {e}"),
            ConnectionError::Io(e) => write!(f, "control connection failed: {e}"),
            ConnectionError::Closed => f.write_str("the node closed the control connection"),
            ConnectionError::Unexpected(e) => write!(f, "unexpected answer from the node: {e}"),
            ConnectionError::EncodeFrame(e) => write!(f, "cannot send the request: {e}"),
            ConnectionError::Frame(e) => write!(f, "unexpected frame from the node: {e}"),
        }
    }
}

impl std::error::Error for ConnectionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConnectionError::Encode(e) | ConnectionError::Unexpected(e) => Some(e),
            ConnectionError::Io(e) => Some(e),
            ConnectionError::EncodeFrame(e) => Some(e),
            ConnectionError::Frame(e) => Some(e),
            ConnectionError::Closed => None,
        }
    }
}

/// Why [`ControlClient::connect`](super::ControlClient::connect) failed.
#[derive(Debug)]
pub enum ConnectError {
    /// Nothing answered at the endpoint.
    Unreachable {
        /// The control socket tried.
        endpoint: Endpoint,
        /// Why the connect failed.
        source: io::Error,
    },
    /// The cookie file of a TCP control socket could not be read.
    Cookie {
        /// The cookie file.
        path: PathBuf,
        /// Why not.
        source: io::Error,
    },
    /// The node closed the connection instead of accepting the cookie.
    CookieRefused {
        /// The control socket.
        endpoint: Endpoint,
    },
    /// Connected, but the connection could not be set up (a timeout could
    /// not be set, or the cookie not written or answered in time).
    Setup(io::Error),
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::Unreachable { endpoint, source } => write!(
                f,
                "cannot reach a node's control socket at {endpoint} ({source}); is `veil node` running there?"
            ),
            ConnectError::Cookie { path, source } => write!(
                f,
                "cannot read the control cookie {} ({source}); pass the node's --data-dir",
                path.display()
            ),
            ConnectError::CookieRefused { endpoint } => {
                let file = match endpoint {
                    Endpoint::Tcp { cookie_file, .. } => cookie_file.display().to_string(),
                    Endpoint::Unix(_) => "the cookie file".into(),
                };
                write!(
                    f,
                    "the node at {endpoint} refused the cookie from {file}; pass the --data-dir of                      the node that listens there"
                )
            }
            ConnectError::Setup(e) => write!(f, "control connection failed: {e}"),
        }
    }
}

impl std::error::Error for ConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConnectError::Unreachable { source, .. } | ConnectError::Cookie { source, .. } => {
                Some(source)
            }
            ConnectError::Setup(e) => Some(e),
            ConnectError::CookieRefused { .. } => None,
        }
    }
}

/// Why [`ControlClient::send`](super::ControlClient::send) failed.
#[derive(Debug)]
pub enum SendError {
    /// No usable answer.
    Connection(ConnectionError),
    /// No answer within the client's answer timeout.
    TimedOut {
        /// The answer timeout.
        waited: Duration,
    },
    /// The node answered that the message was not delivered.
    NotDelivered {
        /// The node's reason (CONTROL.md, `send`): it says what to check.
        reason: String,
    },
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Connection(e) => e.fmt(f),
            SendError::TimedOut { waited } => write!(
                f,
                "timed out waiting for an acknowledgement ({} s)",
                waited.as_secs()
            ),
            SendError::NotDelivered { reason } => write!(f, "not delivered: {reason}"),
        }
    }
}

impl std::error::Error for SendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SendError::Connection(e) => Some(e),
            SendError::TimedOut { .. } | SendError::NotDelivered { .. } => None,
        }
    }
}

/// Why [`ControlClient::status`](super::ControlClient::status) failed.
#[derive(Debug)]
pub enum StatusError {
    /// No usable answer.
    Connection(ConnectionError),
    /// No answer within the client's answer timeout.
    TimedOut,
    /// The node answered without a status.
    Refused {
        /// The node's reason.
        reason: String,
    },
}

impl fmt::Display for StatusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatusError::Connection(e) => e.fmt(f),
            StatusError::TimedOut => f.write_str("timed out waiting for the status"),
            StatusError::Refused { reason } => f.write_str(reason),
        }
    }
}

impl std::error::Error for StatusError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StatusError::Connection(e) => Some(e),
            StatusError::TimedOut | StatusError::Refused { .. } => None,
        }
    }
}

/// Why [`ControlClient::learn_service`](super::ControlClient::learn_service)
/// failed.
#[derive(Debug)]
pub enum LearnServiceError {
    /// No usable answer.
    Connection(ConnectionError),
    /// No answer within the client's answer timeout.
    TimedOut,
    /// The node refused the descriptor.
    Refused {
        /// The node's reason (CONTROL.md, `learn_service`).
        reason: String,
    },
    /// The node answered a service id that is not 64 hex digits.
    BadId {
        /// What it answered.
        id: String,
    },
}

impl fmt::Display for LearnServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LearnServiceError::Connection(e) => e.fmt(f),
            LearnServiceError::TimedOut => f.write_str("timed out waiting for the node"),
            LearnServiceError::Refused { reason } => f.write_str(reason),
            LearnServiceError::BadId { id } => {
                write!(f, "unexpected answer from the node: service id {id:?}")
            }
        }
    }
}

impl std::error::Error for LearnServiceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LearnServiceError::Connection(e) => Some(e),
            LearnServiceError::TimedOut
            | LearnServiceError::Refused { .. }
            | LearnServiceError::BadId { .. } => None,
        }
    }
}

/// Why [`ControlClient::listen`](super::ControlClient::listen) failed.
#[derive(Debug)]
pub enum ListenError {
    /// No usable answer.
    Connection(ConnectionError),
    /// No answer within the client's answer timeout.
    TimedOut,
    /// The node refused to stream messages here.
    Refused {
        /// The node's reason.
        reason: String,
    },
}

impl fmt::Display for ListenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenError::Connection(e) => e.fmt(f),
            ListenError::TimedOut => f.write_str("timed out waiting for the node"),
            ListenError::Refused { reason } => f.write_str(reason),
        }
    }
}

impl std::error::Error for ListenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ListenError::Connection(e) => Some(e),
            ListenError::TimedOut | ListenError::Refused { .. } => None,
        }
    }
}

/// Why [`Listener::receive`](super::Listener::receive) or [`Received::data`](super::Received::data) failed.
#[derive(Debug)]
pub enum ReceiveError {
    /// The connection failed or closed.
    Connection(ConnectionError),
    /// The node stopped streaming (CONTROL.md: a listener that fell 1 024
    /// messages behind is dropped, as are listeners of a stopping node).
    Ended {
        /// The node's reason.
        reason: String,
    },
    /// A line (or frame header) that is neither a message nor an answer.
    UnexpectedLine(serde_json::Error),
    /// A message whose `data_hex` is not hex.
    BadData(hex::FromHexError),
}

impl fmt::Display for ReceiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReceiveError::Connection(e) => e.fmt(f),
            ReceiveError::Ended { reason } => f.write_str(reason),
            ReceiveError::UnexpectedLine(e) => write!(f, "unexpected line from the node: {e}"),
            ReceiveError::BadData(e) => write!(f, "unexpected message from the node: {e}"),
        }
    }
}

impl std::error::Error for ReceiveError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReceiveError::Connection(e) => Some(e),
            ReceiveError::UnexpectedLine(e) => Some(e),
            ReceiveError::BadData(e) => Some(e),
            ReceiveError::Ended { .. } => None,
        }
    }
}

impl From<ConnectionError> for ReceiveError {
    fn from(e: ConnectionError) -> Self {
        ReceiveError::Connection(e)
    }
}
