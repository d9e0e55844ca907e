//! A client of a running node's control socket: typed requests and
//! answers, and one error type per operation.
//!
//! `veil send`, `veil reply`, `veil learn-service`, `veil listen`,
//! `veil status`, `veil bench` (for its `veil node` processes) and the
//! integration tests all talk to nodes through this, so the protocol of
//! CONTROL.md is spoken from one place. Each error's message says what
//! went wrong and, where there is something to do, what; the `veil`
//! commands print them as they are.

use std::io::{BufReader, ErrorKind, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use serde::de::DeserializeOwned;
use veil_core::identity::NodeId;

use crate::control_address::Endpoint;
use crate::control_frame::{
    encode_frame_head, read_frame, write_frame, FrameRequest, MessageHeader, ReadFrameError,
    FRAMES_VERSION,
};
use crate::control_protocol::{encode_line, read_line, MessageLine, Request, Response, MAX_LINE};
use crate::control_stream::ControlStream;
use crate::status::Status;

mod cookie;
mod errors;
#[cfg(test)]
mod tests;

pub use errors::{
    ConnectError, ConnectionError, LearnServiceError, ListenError, ReceiveError, SendError,
    StatusError,
};

/// How long connecting to a control socket, and presenting its cookie,
/// may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One connection to a node's control socket. Requests on it are answered
/// in order, one at a time.
#[derive(Debug)]
pub struct ControlClient {
    /// Reads answers; its inner stream also takes the requests (a
    /// `BufReader` buffers reads only).
    stream: BufReader<ControlStream>,
    /// How long an answer may take, `None` for ever.
    answer_timeout: Option<Duration>,
    /// Whether the connection speaks binary frames (CONTROL.md, "Binary
    /// frames") instead of lines.
    frames: bool,
    /// The start of the request frame being written (lengths and
    /// header), reused for every request; payloads are written from where
    /// they are.
    buf: Vec<u8>,
}

impl ControlClient {
    /// Connects to the control socket at `endpoint`; over TCP, presents
    /// the cookie from the endpoint's cookie file first. Every answer may
    /// then take up to `answer_timeout` (`None`: wait for ever; zero is
    /// refused). A `send` is answered once the destination acknowledged the
    /// message, which the node waits up to 120 s for.
    pub fn connect(
        endpoint: &Endpoint,
        answer_timeout: Option<Duration>,
    ) -> Result<ControlClient, ConnectError> {
        let unreachable = |source| ConnectError::Unreachable {
            endpoint: endpoint.clone(),
            source,
        };
        let stream = match endpoint {
            Endpoint::Unix(path) => BufReader::new(ControlStream::Unix(
                UnixStream::connect(path).map_err(unreachable)?,
            )),
            Endpoint::Tcp { addr, cookie_file } => {
                let cookie = cookie::read(cookie_file)?;
                let stream =
                    TcpStream::connect_timeout(addr, CONNECT_TIMEOUT).map_err(unreachable)?;
                cookie::present(ControlStream::Tcp(stream), &cookie, endpoint)?
            }
        };
        stream
            .get_ref()
            .set_read_timeout(answer_timeout)
            .map_err(ConnectError::Setup)?;
        Ok(ControlClient {
            stream,
            answer_timeout,
            frames: false,
            buf: Vec::new(),
        })
    }

    /// Like [`connect`](Self::connect), then asks the node for binary
    /// frames, so that messages travel as their bytes instead of hex: the
    /// way for programs that move data. A node that does not speak frames
    /// (one from before them closes the connection on the unknown request;
    /// a later one may refuse the version) gets a fresh connection on
    /// lines instead, so this works with every node;
    /// [`frames`](Self::frames) says which one it got.
    pub fn connect_framed(
        endpoint: &Endpoint,
        answer_timeout: Option<Duration>,
    ) -> Result<ControlClient, ConnectError> {
        let mut client = ControlClient::connect(endpoint, answer_timeout)?;
        let request = Request::Frames {
            version: FRAMES_VERSION,
        };
        match client.exchange::<Response>(&request) {
            Ok(answer) => {
                client.frames = answer.ok;
                Ok(client)
            }
            Err(Failure::Connection(ConnectionError::Closed | ConnectionError::Io(_))) => {
                ControlClient::connect(endpoint, answer_timeout)
            }
            Err(Failure::TimedOut) => Err(ConnectError::Setup(std::io::Error::new(
                ErrorKind::TimedOut,
                "the node did not answer the request for binary frames",
            ))),
            Err(Failure::Connection(e)) => Err(ConnectError::Setup(std::io::Error::other(e))),
        }
    }

    /// Whether this connection speaks binary frames
    /// ([`connect_framed`](Self::connect_framed) to a node that knows
    /// them) rather than lines.
    pub fn frames(&self) -> bool {
        self.frames
    }

    /// Sends `data` (at most `StdNode::MAX_MESSAGE` bytes) to the node
    /// `to`; `Ok` once the destination acknowledged it.
    pub fn send(&mut self, to: NodeId, data: &[u8]) -> Result<(), SendError> {
        let answer = if self.frames {
            let header = FrameRequest::Send { to: to.to_string() };
            self.exchange_frame(&header, data)
        } else {
            let request = Request::Send {
                to: to.to_string(),
                data_hex: hex::encode(data),
            };
            self.exchange(&request)
        };
        let waited = self.answer_timeout.unwrap_or_default();
        let answer: Response = answer.map_err(|e| match e {
            Failure::TimedOut => SendError::TimedOut { waited },
            Failure::Connection(e) => SendError::Connection(e),
        })?;
        if answer.ok {
            Ok(())
        } else {
            Err(SendError::NotDelivered {
                reason: answer.error.unwrap_or_else(|| "no reason given".into()),
            })
        }
    }

    /// Answers the anonymous message whose reply token (from its `listen`
    /// line, [`Received::reply_to`]) is `reply_to` with `data`, over the
    /// circuit it came on; `Ok` once the sender acknowledged it. A token
    /// whose circuit has closed is refused (`NotDelivered`); one that is
    /// not a token at all makes the node close the connection (check it
    /// first with [`parse_reply_token`](crate::control_protocol::parse_reply_token)).
    pub fn reply(&mut self, reply_to: &str, data: &[u8]) -> Result<(), SendError> {
        let answer = if self.frames {
            let header = FrameRequest::Reply {
                reply_to: reply_to.to_string(),
            };
            self.exchange_frame(&header, data)
        } else {
            let request = Request::Reply {
                reply_to: reply_to.to_string(),
                data_hex: hex::encode(data),
            };
            self.exchange(&request)
        };
        let waited = self.answer_timeout.unwrap_or_default();
        let answer: Response = answer.map_err(|e| match e {
            Failure::TimedOut => SendError::TimedOut { waited },
            Failure::Connection(e) => SendError::Connection(e),
        })?;
        if answer.ok {
            Ok(())
        } else {
            Err(SendError::NotDelivered {
                reason: answer.error.unwrap_or_else(|| "no reason given".into()),
            })
        }
    }

    /// Hands the node a rendezvous service's signed descriptor; the
    /// service's id once the node learnt it, after which messages to that
    /// id go to the service ([`send`](Self::send)).
    pub fn learn_service(&mut self, descriptor: &[u8]) -> Result<NodeId, LearnServiceError> {
        let answer = if self.frames {
            self.exchange_frame(&FrameRequest::LearnService {}, descriptor)
        } else {
            let request = Request::LearnService {
                descriptor_hex: hex::encode(descriptor),
            };
            self.exchange(&request)
        };
        let answer: Response = answer.map_err(|e| match e {
            Failure::TimedOut => LearnServiceError::TimedOut,
            Failure::Connection(e) => LearnServiceError::Connection(e),
        })?;
        let refused = |reason: Option<String>| LearnServiceError::Refused {
            reason: reason.unwrap_or_else(|| "no reason given".into()),
        };
        match (answer.ok, answer.service_id) {
            (true, Some(id)) => NodeId::from_hex(&id).map_err(|_| LearnServiceError::BadId { id }),
            (true, None) => Err(refused(Some("no service id in the answer".into()))),
            (false, _) => Err(refused(answer.error)),
        }
    }

    /// The node's status.
    pub fn status(&mut self) -> Result<Status, StatusError> {
        let answer = if self.frames {
            self.exchange_frame(&FrameRequest::Status {}, &[])
        } else {
            self.exchange(&Request::Status {})
        };
        let answer: Response = answer.map_err(|e| match e {
            Failure::TimedOut => StatusError::TimedOut,
            Failure::Connection(e) => StatusError::Connection(e),
        })?;
        match (answer.ok, answer.status) {
            (true, Some(status)) => Ok(status),
            _ => Err(StatusError::Refused {
                reason: answer
                    .error
                    .unwrap_or_else(|| "no status in the answer".into()),
            }),
        }
    }

    /// Turns this connection into a listener: every message the node
    /// receives from now on, or only the next `count`.
    pub fn listen(mut self, count: Option<u64>) -> Result<Listener, ListenError> {
        let answer = if self.frames {
            self.exchange_frame(&FrameRequest::Listen { count }, &[])
        } else {
            self.exchange(&Request::Listen { count })
        };
        let answer: Response = answer.map_err(|e| match e {
            Failure::TimedOut => ListenError::TimedOut,
            Failure::Connection(e) => ListenError::Connection(e),
        })?;
        if answer.ok {
            Ok(Listener {
                stream: self.stream,
                frames: self.frames,
            })
        } else {
            Err(ListenError::Refused {
                reason: answer.error.unwrap_or_else(|| "listen refused".into()),
            })
        }
    }

    /// Writes `request` and reads its answer.
    fn exchange<T: DeserializeOwned>(&mut self, request: &Request) -> Result<T, Failure> {
        let line = encode_line(request).map_err(ConnectionError::Encode)?;
        self.stream
            .get_mut()
            .write_all(&line)
            .map_err(ConnectionError::Io)?;
        let line = match read_line(&mut self.stream, MAX_LINE) {
            Ok(Some(line)) => line,
            Ok(None) => return Err(ConnectionError::Closed.into()),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(Failure::TimedOut)
            }
            Err(e) => return Err(ConnectionError::Io(e).into()),
        };
        serde_json::from_slice(&line).map_err(|e| ConnectionError::Unexpected(e).into())
    }

    /// Writes the request frame of `header` and `payload` (one write) and
    /// reads its answer frame.
    fn exchange_frame<T: DeserializeOwned>(
        &mut self,
        header: &FrameRequest,
        payload: &[u8],
    ) -> Result<T, Failure> {
        encode_frame_head(&mut self.buf, header, payload.len())
            .map_err(ConnectionError::EncodeFrame)?;
        write_frame(self.stream.get_mut(), &self.buf, payload).map_err(ConnectionError::Io)?;
        let frame = match read_frame(&mut self.stream) {
            Ok(Some(frame)) => frame,
            Ok(None) => return Err(ConnectionError::Closed.into()),
            Err(ReadFrameError::Io(e))
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
            {
                return Err(Failure::TimedOut)
            }
            Err(e) => return Err(ConnectionError::Frame(e).into()),
        };
        serde_json::from_slice(&frame.header).map_err(|e| ConnectionError::Unexpected(e).into())
    }
}

/// A connection after a successful `listen`: the node streams received
/// messages on it until it closes.
#[derive(Debug)]
pub struct Listener {
    stream: BufReader<ControlStream>,
    frames: bool,
}

impl Listener {
    /// Waits for the next message.
    pub fn receive(&mut self) -> Result<Received, ReceiveError> {
        if self.frames {
            return self.receive_frame();
        }
        let line = match read_line(&mut self.stream, MAX_LINE) {
            Ok(Some(line)) => line,
            Ok(None) => return Err(ConnectionError::Closed.into()),
            Err(e) => return Err(ConnectionError::Io(e).into()),
        };
        match serde_json::from_slice::<MessageLine>(&line) {
            Ok(message) => Ok(Received(Kind::Line { line, message })),
            // Not a message: the node's last word, saying why it stopped.
            Err(_) => {
                let last: Response =
                    serde_json::from_slice(&line).map_err(ReceiveError::UnexpectedLine)?;
                Err(ReceiveError::Ended {
                    reason: last.error.unwrap_or_else(|| "listening ended".into()),
                })
            }
        }
    }

    fn receive_frame(&mut self) -> Result<Received, ReceiveError> {
        let frame = match read_frame(&mut self.stream) {
            Ok(Some(frame)) => frame,
            Ok(None) => return Err(ConnectionError::Closed.into()),
            Err(e) => return Err(ConnectionError::Frame(e).into()),
        };
        match serde_json::from_slice::<MessageHeader>(&frame.header) {
            Ok(header) => Ok(Received(Kind::Frame {
                header,
                data: frame.payload,
                line: std::cell::OnceCell::new(),
            })),
            Err(_) => {
                let last: Response =
                    serde_json::from_slice(&frame.header).map_err(ReceiveError::UnexpectedLine)?;
                Err(ReceiveError::Ended {
                    reason: last.error.unwrap_or_else(|| "listening ended".into()),
                })
            }
        }
    }
}

/// One message a [`Listener`] received.
#[derive(Debug)]
pub struct Received(Kind);

/// How a message came: a line, or a frame.
#[derive(Debug)]
enum Kind {
    Line {
        line: Vec<u8>,
        message: MessageLine,
    },
    Frame {
        header: MessageHeader,
        data: Vec<u8>,
        /// The `message` line, made on the first [`Received::json`].
        line: std::cell::OnceCell<Vec<u8>>,
    },
}

impl Received {
    /// The message as a `message` line without its `\n`: exactly as the
    /// node sent it on lines; made from the frame (the same fields, the
    /// data in hex) on frames, once, when first asked for.
    pub fn json(&self) -> &[u8] {
        match &self.0 {
            Kind::Line { line, .. } => line,
            Kind::Frame { header, data, line } => line.get_or_init(|| {
                let message = MessageLine {
                    event: header.event.clone(),
                    from: header.from.clone(),
                    reply_to: header.reply_to.clone(),
                    data_hex: hex::encode(data),
                };
                // Strings and null only: it always encodes.
                serde_json::to_vec(&message).unwrap_or_default()
            }),
        }
    }

    /// The sender's node id (hex) for replies to this node's own circuits;
    /// `None` for messages over circuits others built (the sender is
    /// anonymous).
    pub fn from(&self) -> Option<&str> {
        match &self.0 {
            Kind::Line { message, .. } => message.from.as_deref(),
            Kind::Frame { header, .. } => header.from.as_deref(),
        }
    }

    /// For a message from an anonymous sender, the token that answers it
    /// ([`ControlClient::reply`]); `None` for replies to this node.
    pub fn reply_to(&self) -> Option<&str> {
        match &self.0 {
            Kind::Line { message, .. } => message.reply_to.as_deref(),
            Kind::Frame { header, .. } => header.reply_to.as_deref(),
        }
    }

    /// The message's bytes.
    pub fn data(&self) -> Result<Vec<u8>, ReceiveError> {
        match &self.0 {
            Kind::Line { message, .. } => {
                hex::decode(&message.data_hex).map_err(ReceiveError::BadData)
            }
            Kind::Frame { data, .. } => Ok(data.clone()),
        }
    }

    /// The message's bytes, without a copy on frames.
    pub fn into_data(self) -> Result<Vec<u8>, ReceiveError> {
        match self.0 {
            Kind::Line { message, .. } => {
                hex::decode(&message.data_hex).map_err(ReceiveError::BadData)
            }
            Kind::Frame { data, .. } => Ok(data),
        }
    }
}

/// How an exchange failed before its answer was looked at; each operation
/// turns it into its own error.
enum Failure {
    TimedOut,
    Connection(ConnectionError),
}

impl From<ConnectionError> for Failure {
    fn from(e: ConnectionError) -> Self {
        Failure::Connection(e)
    }
}
