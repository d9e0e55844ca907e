//! A client of a running node's control socket: typed requests and
//! answers, and one error type per operation.
//!
//! `veil send`, `veil listen`, `veil status`, `veil bench` (for its
//! `veil node` processes) and the integration tests all talk to nodes
//! through this, so the protocol of CONTROL.md is spoken from one place.
//! Each error's message says what went wrong and, where there is
//! something to do, what; `veil send`, `listen` and `status` print them as
//! they are.

use std::fmt;
use std::io::{self, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use veil_core::identity::NodeId;
use zeroize::Zeroizing;

use crate::control_address::{Endpoint, COOKIE_LEN};
use crate::control_protocol::{
    auth_line, encode_line, read_line, MessageLine, Request, Response, MAX_LINE,
};
use crate::control_stream::ControlStream;
use crate::status::Status;

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
                let cookie = read_cookie(cookie_file)?;
                let stream =
                    TcpStream::connect_timeout(addr, CONNECT_TIMEOUT).map_err(unreachable)?;
                present_cookie(ControlStream::Tcp(stream), &cookie, endpoint)?
            }
        };
        stream
            .get_ref()
            .set_read_timeout(answer_timeout)
            .map_err(ConnectError::Setup)?;
        Ok(ControlClient {
            stream,
            answer_timeout,
        })
    }

    /// Sends `data` (at most `StdNode::MAX_MESSAGE` bytes) to the node
    /// `to`; `Ok` once the destination acknowledged it.
    pub fn send(&mut self, to: NodeId, data: &[u8]) -> Result<(), SendError> {
        let request = Request::Send {
            to: to.to_string(),
            data_hex: hex::encode(data),
        };
        let waited = self.answer_timeout.unwrap_or_default();
        let answer: Response = self.exchange(&request).map_err(|e| match e {
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

    /// The node's status.
    pub fn status(&mut self) -> Result<Status, StatusError> {
        let answer: Response = self.exchange(&Request::Status {}).map_err(|e| match e {
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
        let answer: Response = self
            .exchange(&Request::Listen { count })
            .map_err(|e| match e {
                Failure::TimedOut => ListenError::TimedOut,
                Failure::Connection(e) => ListenError::Connection(e),
            })?;
        if answer.ok {
            Ok(Listener {
                stream: self.stream,
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
}

/// A connection after a successful `listen`: the node streams received
/// messages on it until it closes.
#[derive(Debug)]
pub struct Listener {
    stream: BufReader<ControlStream>,
}

impl Listener {
    /// Waits for the next message.
    pub fn receive(&mut self) -> Result<Received, ReceiveError> {
        let line = match read_line(&mut self.stream, MAX_LINE) {
            Ok(Some(line)) => line,
            Ok(None) => return Err(ConnectionError::Closed.into()),
            Err(e) => return Err(ConnectionError::Io(e).into()),
        };
        match serde_json::from_slice::<MessageLine>(&line) {
            Ok(message) => Ok(Received { line, message }),
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
}

/// One message a [`Listener`] received.
#[derive(Debug)]
pub struct Received {
    line: Vec<u8>,
    message: MessageLine,
}

impl Received {
    /// The message line exactly as the node sent it, without its `\n`.
    pub fn json(&self) -> &[u8] {
        &self.line
    }

    /// The sender's node id (hex) for replies to this node's own circuits;
    /// `None` for messages over circuits others built (the sender is
    /// anonymous).
    pub fn from(&self) -> Option<&str> {
        self.message.from.as_deref()
    }

    /// The message's bytes.
    pub fn data(&self) -> Result<Vec<u8>, ReceiveError> {
        hex::decode(&self.message.data_hex).map_err(ReceiveError::BadData)
    }
}

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
}

impl fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectionError::Encode(e) => write!(f, "cannot encode the request: {e}"),
            ConnectionError::Io(e) => write!(f, "control connection failed: {e}"),
            ConnectionError::Closed => f.write_str("the node closed the control connection"),
            ConnectionError::Unexpected(e) => write!(f, "unexpected answer from the node: {e}"),
        }
    }
}

impl std::error::Error for ConnectionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConnectionError::Encode(e) | ConnectionError::Unexpected(e) => Some(e),
            ConnectionError::Io(e) => Some(e),
            ConnectionError::Closed => None,
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

/// The node's cookie, from the file it wrote at start-up.
fn read_cookie(path: &Path) -> Result<Zeroizing<[u8; COOKIE_LEN]>, ConnectError> {
    let unreadable = |source| ConnectError::Cookie {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(unreadable)?;
    let mut cookie = Zeroizing::new([0u8; COOKIE_LEN]);
    file.read_exact(cookie.as_mut_slice()).map_err(unreadable)?;
    let mut more = [0u8; 1];
    if file.read(&mut more).map_err(unreadable)? != 0 {
        return Err(unreadable(io::Error::new(
            ErrorKind::InvalidData,
            format!("longer than {COOKIE_LEN} bytes"),
        )));
    }
    Ok(cookie)
}

/// Sends the cookie line and waits for the node's `{"ok":true}`; a node
/// that refuses the cookie closes the connection without a word.
fn present_cookie(
    mut stream: ControlStream,
    cookie: &[u8; COOKIE_LEN],
    endpoint: &Endpoint,
) -> Result<BufReader<ControlStream>, ConnectError> {
    let refused = || ConnectError::CookieRefused {
        endpoint: endpoint.clone(),
    };
    stream
        .set_read_timeout(Some(CONNECT_TIMEOUT))
        .map_err(ConnectError::Setup)?;
    let line = auth_line(cookie);
    stream
        .write_all(line.as_slice())
        .map_err(ConnectError::Setup)?;
    let mut reader = BufReader::new(stream);
    let answer = match read_line(&mut reader, MAX_LINE) {
        Ok(Some(answer)) => answer,
        Ok(None) => return Err(refused()),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            return Err(ConnectError::Setup(e))
        }
        Err(_) => return Err(refused()),
    };
    match serde_json::from_slice::<Response>(&answer) {
        Ok(Response { ok: true, .. }) => Ok(reader),
        _ => Err(refused()),
    }
}

/// Why [`ControlClient::connect`] failed.
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

/// Why [`ControlClient::send`] failed.
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

/// Why [`ControlClient::status`] failed.
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

/// Why [`ControlClient::listen`] failed.
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

/// Why [`Listener::receive`] or [`Received::data`] failed.
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
    /// A line that is neither a message nor an answer.
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

#[cfg(test)]
mod tests {
    use std::io::{BufRead, Write};
    use std::net::TcpListener;
    use std::os::unix::net::UnixListener;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::thread::JoinHandle;

    use super::*;

    /// A fresh socket path under the temporary directory.
    fn socket_path() -> PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "veil-client-test-{}-{}.sock",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_file(&path);
        path
    }

    /// A one-connection stand-in for a node on a Unix socket: reads one
    /// request line and writes `answer` (lines as given), then keeps the
    /// connection open until the client closes it. Returns the request it
    /// read.
    fn fake_node(answer: &'static str) -> (Endpoint, JoinHandle<String>) {
        let path = socket_path();
        let listener = UnixListener::bind(&path).unwrap();
        let endpoint = Endpoint::Unix(path.clone());
        let thread = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let _ = std::fs::remove_file(&path);
            let mut reader = BufReader::new(stream);
            let mut request = String::new();
            reader.read_line(&mut request).unwrap();
            reader.get_mut().write_all(answer.as_bytes()).unwrap();
            let mut rest = String::new();
            let _ = reader.read_line(&mut rest);
            request
        });
        (endpoint, thread)
    }

    fn some_id() -> NodeId {
        NodeId::from_hex(&"ab".repeat(32)).unwrap()
    }

    #[test]
    fn nobody_listening_says_where_and_what_to_check() {
        let endpoint = Endpoint::Unix(socket_path());
        let e = ControlClient::connect(&endpoint, None).unwrap_err();
        assert!(matches!(e, ConnectError::Unreachable { .. }), "{e:?}");
        let text = e.to_string();
        assert!(
            text.contains(&endpoint.to_string()) && text.contains("is `veil node` running there?"),
            "{text}"
        );
    }

    #[test]
    fn over_tcp_the_cookie_goes_first_and_a_refusal_is_named() {
        let cookie_file = socket_path().with_extension("cookie");
        std::fs::write(&cookie_file, [0x11u8; COOKIE_LEN]).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = Endpoint::Tcp {
            addr: listener.local_addr().unwrap(),
            cookie_file: cookie_file.clone(),
        };
        let node = std::thread::spawn(move || {
            // The first connection is accepted, the second refused.
            let mut lines = Vec::new();
            for accept in [true, false] {
                let (stream, _) = listener.accept().unwrap();
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                lines.push(line);
                if accept {
                    reader.get_mut().write_all(b"{\"ok\":true}\n").unwrap();
                    let mut request = String::new();
                    reader.read_line(&mut request).unwrap();
                    reader
                        .get_mut()
                        .write_all(b"{\"ok\":false,\"error\":\"no\"}\n")
                        .unwrap();
                }
            }
            lines
        });
        let mut client = ControlClient::connect(&endpoint, Some(Duration::from_secs(10))).unwrap();
        let e = client.send(some_id(), b"hi").unwrap_err();
        assert!(matches!(e, SendError::NotDelivered { .. }), "{e:?}");
        let e = ControlClient::connect(&endpoint, None).unwrap_err();
        assert!(matches!(e, ConnectError::CookieRefused { .. }), "{e:?}");
        assert!(e.to_string().contains("refused the cookie"), "{e}");
        let lines = node.join().unwrap();
        let expected = format!("{{\"cookie\":\"{}\"}}\n", "11".repeat(COOKIE_LEN));
        assert_eq!(lines, vec![expected.clone(), expected]);

        std::fs::write(&cookie_file, [0x11u8; 5]).unwrap();
        let e = ControlClient::connect(&endpoint, None).unwrap_err();
        assert!(matches!(e, ConnectError::Cookie { .. }), "{e:?}");
        assert!(e.to_string().contains("pass the node's --data-dir"), "{e}");
        let _ = std::fs::remove_file(&cookie_file);
    }

    #[test]
    fn a_send_is_written_as_the_protocol_says_and_its_refusal_is_typed() {
        let (endpoint, node) =
            fake_node("{\"ok\":false,\"error\":\"node x is not in this node's table\"}\n");
        let mut client = ControlClient::connect(&endpoint, Some(Duration::from_secs(10))).unwrap();
        let e = client.send(some_id(), b"hi").unwrap_err();
        assert!(matches!(e, SendError::NotDelivered { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            "not delivered: node x is not in this node's table"
        );
        drop(client);
        let request: serde_json::Value = serde_json::from_str(&node.join().unwrap()).unwrap();
        assert_eq!(
            request,
            serde_json::json!({"cmd":"send","to":"ab".repeat(32),"data_hex":"6869"})
        );
    }

    #[test]
    fn no_answer_in_time_is_a_timeout_naming_the_wait() {
        let (endpoint, node) = fake_node("");
        let mut client = ControlClient::connect(&endpoint, Some(Duration::from_secs(1))).unwrap();
        let e = client.send(some_id(), b"hi").unwrap_err();
        assert!(matches!(e, SendError::TimedOut { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            "timed out waiting for an acknowledgement (1 s)"
        );
        drop(client);
        node.join().unwrap();
    }

    #[test]
    fn a_closed_connection_and_a_garbled_answer_are_told_apart() {
        let path = socket_path();
        let listener = UnixListener::bind(&path).unwrap();
        let endpoint = Endpoint::Unix(path.clone());
        let closer = std::thread::spawn(move || drop(listener.accept().unwrap()));
        let mut client = ControlClient::connect(&endpoint, Some(Duration::from_secs(10))).unwrap();
        closer.join().unwrap();
        let _ = std::fs::remove_file(&path);
        let e = client.status().unwrap_err();
        assert!(
            matches!(
                e,
                StatusError::Connection(ConnectionError::Closed | ConnectionError::Io(_))
            ),
            "{e:?}"
        );

        let (endpoint, node) = fake_node("not json\n");
        let mut client = ControlClient::connect(&endpoint, Some(Duration::from_secs(10))).unwrap();
        let e = client.status().unwrap_err();
        assert!(
            matches!(e, StatusError::Connection(ConnectionError::Unexpected(_))),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .starts_with("unexpected answer from the node: "),
            "{e}"
        );
        drop(client);
        node.join().unwrap();
    }

    #[test]
    fn a_listener_gets_messages_then_the_reason_it_was_dropped() {
        let (endpoint, node) = fake_node(concat!(
            "{\"ok\":true}\n",
            "{\"event\":\"message\",\"from\":null,\"data_hex\":\"6869\"}\n",
            "{\"ok\":false,\"error\":\"listener dropped: fell behind or node stopped\"}\n",
        ));
        let client = ControlClient::connect(&endpoint, Some(Duration::from_secs(10))).unwrap();
        let mut listener = client.listen(Some(2)).unwrap();
        let message = listener.receive().unwrap();
        assert_eq!(message.data().unwrap(), b"hi");
        assert_eq!(message.from(), None);
        assert_eq!(
            message.json(),
            b"{\"event\":\"message\",\"from\":null,\"data_hex\":\"6869\"}"
        );
        let e = listener.receive().unwrap_err();
        assert!(matches!(e, ReceiveError::Ended { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            "listener dropped: fell behind or node stopped"
        );
        drop(listener);
        let request: serde_json::Value = serde_json::from_str(&node.join().unwrap()).unwrap();
        assert_eq!(request, serde_json::json!({"cmd":"listen","count":2}));
    }
}
