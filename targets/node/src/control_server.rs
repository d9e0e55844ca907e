//! The control socket's server in `veil node`: one thread accepts
//! connections, one thread per connection answers its requests by giving
//! the node thread commands. The protocol is in CONTROL.md beside this
//! crate's Cargo.toml; its types are `veil_node::control_protocol`.
//!
//! Nothing that is not a request gets an answer: a TCP connection whose
//! first line is not the cookie, a line that is not a valid request, and a
//! line longer than the limit all close the connection without a word, so
//! a web page's cross-protocol POST to a loopback port can neither run a
//! command nor read anything back.
//!
//! A connection that asked for binary frames (a valid `frames` line) has
//! shown that it speaks the protocol, so a malformed frame there gets one
//! answer frame saying what was wrong before the connection closes.

use std::io::{BufReader, ErrorKind, Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use veil_core::identity::{NodeId, MAX_SERVICE_DESCRIPTOR_LEN};
use veil_core::message::ReplyTo;
use veil_mio::StdNode;
use veil_node::control_frame::{
    encode_answer, encode_frame_head, read_frame, write_frame, Frame, FrameRequest, MessageHeader,
    ReadFrameError, FRAMES_VERSION,
};
use veil_node::control_protocol::{
    encode_line, parse_reply_token, read_line, reply_token, MessageLine, Request, Response,
    MAX_AUTH_LINE, MAX_LINE,
};
use veil_node::control_stream::ControlStream;

use crate::control_cookie::Cookie;
use crate::control_listener::ControlListener;
use crate::host::HostHandle;
use crate::host_protocol::{Command, Notice};

/// Control connections open at once; more are closed at once (over a Unix
/// socket, with an error answer first).
const MAX_CLIENTS: usize = 32;

/// Messages a `listen` client may fall behind by before it is dropped.
const LISTEN_QUEUE: usize = 1024;

/// How long a TCP connection may take to send its cookie line.
const AUTH_TIMEOUT: Duration = Duration::from_secs(10);

/// A request whose fields have been decoded: what a valid line or frame
/// asks.
enum Valid {
    Status,
    Send { to: NodeId, data: Vec<u8> },
    Reply { to: ReplyTo, data: Vec<u8> },
    LearnService { descriptor: Vec<u8> },
    Listen { count: Option<u64> },
    Frames { version: u32 },
}

/// The request on `line`, if it is a valid one: JSON of a known command
/// with its fields, hex that decodes, a node id of the right length, a
/// reply token that names a circuit.
fn parse(line: &[u8]) -> Option<Valid> {
    Some(match serde_json::from_slice(line).ok()? {
        Request::Status {} => Valid::Status,
        Request::Send { to, data_hex } => Valid::Send {
            to: NodeId::from_hex(&to).ok()?,
            data: hex::decode(data_hex).ok()?,
        },
        Request::Reply { reply_to, data_hex } => Valid::Reply {
            to: parse_reply_token(&reply_to)?,
            data: hex::decode(data_hex).ok()?,
        },
        Request::LearnService { descriptor_hex } => Valid::LearnService {
            descriptor: hex::decode(descriptor_hex).ok()?,
        },
        Request::Listen { count } => Valid::Listen { count },
        Request::Frames { version } => Valid::Frames { version },
    })
}

/// Why a frame is not a valid request. In frame mode the node says so in
/// an answer frame before it closes the connection: only a client that
/// asked for frames in a valid line gets there, so the answer cannot be
/// reflected to a cross-protocol sender.
#[derive(Debug)]
enum InvalidFrame {
    /// The frame itself was malformed (lengths over the limits, truncated).
    Framing(ReadFrameError),
    /// The header is not a known command with exactly its fields.
    Header(serde_json::Error),
    /// `to` is not a node id.
    NodeId,
    /// `reply_to` is not a reply token.
    ReplyToken,
    /// A command without data came with a payload.
    UnexpectedPayload {
        /// How long the payload was.
        len: usize,
    },
}

impl std::fmt::Display for InvalidFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InvalidFrame::Framing(e) => e.fmt(f),
            InvalidFrame::Header(e) => write!(
                f,
                "the frame header is not a request ({e}); see CONTROL.md, \"Binary frames\""
            ),
            InvalidFrame::NodeId => f.write_str("`to` is not a node id (64 hex digits)"),
            InvalidFrame::ReplyToken => f.write_str(
                "`reply_to` is not a reply token; pass the one of the message's header unchanged",
            ),
            InvalidFrame::UnexpectedPayload { len } => write!(
                f,
                "a payload of {len} bytes on a command that takes none; send `status` and \
                 `listen` with an empty payload"
            ),
        }
    }
}

impl std::error::Error for InvalidFrame {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            InvalidFrame::Framing(e) => Some(e),
            InvalidFrame::Header(e) => Some(e),
            _ => None,
        }
    }
}

/// The request a frame holds: its header parsed as strictly as a line,
/// its payload taken as the data without a copy.
fn parse_frame(frame: Frame) -> Result<Valid, InvalidFrame> {
    let request: FrameRequest =
        serde_json::from_slice(&frame.header).map_err(InvalidFrame::Header)?;
    if !request.takes_payload() && !frame.payload.is_empty() {
        return Err(InvalidFrame::UnexpectedPayload {
            len: frame.payload.len(),
        });
    }
    Ok(match request {
        FrameRequest::Status {} => Valid::Status,
        FrameRequest::Send { to } => Valid::Send {
            to: NodeId::from_hex(&to).map_err(|_| InvalidFrame::NodeId)?,
            data: frame.payload,
        },
        FrameRequest::Reply { reply_to } => Valid::Reply {
            to: parse_reply_token(&reply_to).ok_or(InvalidFrame::ReplyToken)?,
            data: frame.payload,
        },
        FrameRequest::LearnService {} => Valid::LearnService {
            descriptor: frame.payload,
        },
        FrameRequest::Listen { count } => Valid::Listen { count },
    })
}

/// How a connection writes: lines until it asked for frames, frames
/// after.
struct Writer {
    stream: ControlStream,
    frames: bool,
    /// The start of the frame being written (its lengths and header),
    /// reused so a bulk transfer allocates none; payloads are written from
    /// where they are.
    buf: Vec<u8>,
}

impl Writer {
    /// Writes `response` as a line or as a frame without payload.
    fn answer(&mut self, response: &Response) -> std::io::Result<()> {
        if self.frames {
            encode_answer(&mut self.buf, response).map_err(std::io::Error::other)?;
            self.stream.write_all(&self.buf)
        } else {
            write_line(&mut self.stream, response)
        }
    }

    /// Writes a received message: a `message` line with `data_hex`, or a
    /// `message` header with the message as the payload, in one vectored
    /// write.
    fn message(
        &mut self,
        from: Option<String>,
        reply_to: Option<String>,
        data: &[u8],
    ) -> std::io::Result<()> {
        if self.frames {
            let header = MessageHeader {
                event: "message".into(),
                from,
                reply_to,
            };
            encode_frame_head(&mut self.buf, &header, data.len()).map_err(std::io::Error::other)?;
            write_frame(&mut self.stream, &self.buf, data)
        } else {
            let line = MessageLine {
                event: "message".into(),
                from,
                reply_to,
                data_hex: hex::encode(data),
            };
            write_line(&mut self.stream, &line)
        }
    }
}

/// Accepts control connections on a thread of its own, one thread per
/// connection.
pub fn serve(listener: ControlListener, host: HostHandle) -> Result<(), String> {
    let clients = Arc::new(AtomicUsize::new(0));
    let listener = Arc::new(listener);
    std::thread::Builder::new()
        .name("veil-control".into())
        .spawn(move || loop {
            let Ok(mut stream) = listener.accept() else {
                continue;
            };
            if clients.fetch_add(1, Ordering::SeqCst) >= MAX_CLIENTS {
                clients.fetch_sub(1, Ordering::SeqCst);
                // Only a peer the socket file let in gets a reason; an
                // unauthenticated TCP peer gets nothing.
                if listener.cookie().is_none() {
                    let _ = write_line(
                        &mut stream,
                        &Response::error("too many control connections"),
                    );
                }
                continue;
            }
            let host = host.clone();
            let count = Arc::clone(&clients);
            let listener = Arc::clone(&listener);
            let spawned = std::thread::Builder::new()
                .name("veil-control-client".into())
                .spawn(move || {
                    if let Err(e) = serve_connection(stream, &host, listener.cookie()) {
                        log::debug!("control connection ended: {e}");
                    }
                    count.fetch_sub(1, Ordering::SeqCst);
                });
            if spawned.is_err() {
                clients.fetch_sub(1, Ordering::SeqCst);
            }
        })
        .map(|_| ())
        .map_err(|e| format!("cannot start the control thread: {e}"))
}

fn write_line<T: Serialize>(stream: &mut ControlStream, value: &T) -> std::io::Result<()> {
    let line = encode_line(value).map_err(std::io::Error::other)?;
    stream.write_all(&line)?;
    stream.flush()
}

/// Whether the connection's first line is the cookie line (within
/// [`AUTH_TIMEOUT`] and [`MAX_AUTH_LINE`]). The line is wiped once read.
fn authenticated(reader: &mut BufReader<ControlStream>, cookie: &Cookie) -> std::io::Result<bool> {
    reader.get_ref().set_read_timeout(Some(AUTH_TIMEOUT))?;
    let Ok(Some(mut line)) = read_line(reader, MAX_AUTH_LINE) else {
        return Ok(false);
    };
    let accepted = cookie.accepts(&line);
    zeroize::Zeroize::zeroize(line.as_mut_slice());
    reader.get_ref().set_read_timeout(None)?;
    Ok(accepted)
}

/// Serves one control connection: the cookie first over TCP, then
/// requests in order until it closes or sends something that is not one.
fn serve_connection(
    stream: ControlStream,
    host: &HostHandle,
    cookie: Option<&Cookie>,
) -> std::io::Result<()> {
    let mut writer = Writer {
        stream: stream.try_clone()?,
        frames: false,
        buf: Vec::new(),
    };
    let mut reader = BufReader::new(stream);
    if let Some(cookie) = cookie {
        if !authenticated(&mut reader, cookie)? {
            log::debug!("control connection closed: no valid cookie");
            return Ok(());
        }
        writer.answer(&Response::ok())?;
    }
    loop {
        let request = if writer.frames {
            let frame = match read_frame(&mut reader) {
                Ok(Some(frame)) => Ok(frame),
                Ok(None) => return Ok(()),
                Err(ReadFrameError::Io(e)) => return Err(e),
                Err(e) => Err(InvalidFrame::Framing(e)),
            };
            match frame.and_then(parse_frame) {
                Ok(request) => request,
                Err(e) => {
                    log::debug!("control connection closed: {e}");
                    let _ = writer.answer(&Response::error(format!(
                        "{e}; the node closes this connection"
                    )));
                    return Ok(());
                }
            }
        } else {
            let line = match read_line(&mut reader, MAX_LINE) {
                Ok(Some(line)) => line,
                Ok(None) => return Ok(()),
                Err(e) if e.kind() == ErrorKind::InvalidData => {
                    log::debug!("control connection closed: a line longer than {MAX_LINE} bytes");
                    return Ok(());
                }
                Err(e) => return Err(e),
            };
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let Some(request) = parse(&line) else {
                log::debug!("control connection closed: a line that is not a valid request");
                return Ok(());
            };
            request
        };
        let response = match request {
            Valid::Status => match host.status() {
                Ok(status) => Response {
                    status: Some(status),
                    ..Response::ok()
                },
                Err(e) => Response::error(e),
            },
            Valid::Send { to, data } => match send(host, to, data) {
                Ok(()) => Response::ok(),
                Err(e) => Response::error(e),
            },
            Valid::Reply { to, data } => match reply(host, to, data) {
                Ok(()) => Response::ok(),
                Err(e) => Response::error(e),
            },
            Valid::LearnService { descriptor } => match learn_service(host, descriptor) {
                Ok(id) => Response {
                    service_id: Some(id.to_string()),
                    ..Response::ok()
                },
                Err(e) => Response::error(e),
            },
            Valid::Frames { version } if version == FRAMES_VERSION => {
                // The answer is the last line: frames from the next byte.
                writer.answer(&Response::ok())?;
                writer.frames = true;
                continue;
            }
            Valid::Frames { version } => Response::error(format!(
                "frames version {version}: this node speaks version {FRAMES_VERSION}; the \
                 connection stays on lines"
            )),
            Valid::Listen { count } => return listen(reader, writer, host, count),
        };
        writer.answer(&response)?;
    }
}

fn send(host: &HostHandle, to: NodeId, data: Vec<u8>) -> Result<(), String> {
    check_size(&data)?;
    let done = host.send(to, data)?;
    done.recv()
        .map_err(|_| "the node stopped before an acknowledgement".to_string())?
}

fn reply(host: &HostHandle, to: ReplyTo, data: Vec<u8>) -> Result<(), String> {
    check_size(&data)?;
    let done = host.reply(to, data)?;
    done.recv()
        .map_err(|_| "the node stopped before an acknowledgement".to_string())?
}

fn check_size(data: &[u8]) -> Result<(), String> {
    if data.len() > StdNode::MAX_MESSAGE {
        return Err(format!(
            "the message is {} bytes; the limit is {}",
            data.len(),
            StdNode::MAX_MESSAGE
        ));
    }
    Ok(())
}

fn learn_service(host: &HostHandle, descriptor: Vec<u8>) -> Result<NodeId, String> {
    if descriptor.len() > MAX_SERVICE_DESCRIPTOR_LEN {
        return Err(format!(
            "the descriptor is {} bytes; a service descriptor is at most {MAX_SERVICE_DESCRIPTOR_LEN}",
            descriptor.len()
        ));
    }
    host.learn_service(descriptor)
}

/// Streams received messages until the client goes away.
fn listen(
    mut reader: BufReader<ControlStream>,
    mut writer: Writer,
    host: &HostHandle,
    count: Option<u64>,
) -> std::io::Result<()> {
    let (tx, rx) = mpsc::sync_channel(LISTEN_QUEUE);
    if let Err(e) = host.command(Command::Subscribe { tag: 0, tx }) {
        return writer.answer(&Response::error(e));
    }
    writer.answer(&Response::ok())?;
    let mut sent = 0u64;
    while count.is_none_or(|c| sent < c) {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok((
                _,
                Notice::Received {
                    from,
                    reply_to,
                    data,
                },
            )) => {
                // A client that has gone cannot take it: the message goes
                // back to the node for the next listener.
                if client_gone(&mut reader)? {
                    let _ = host.command(Command::Requeue(Notice::Received {
                        from,
                        reply_to,
                        data,
                    }));
                    return requeue_rest(rx, host);
                }
                writer.message(
                    from.map(|f| f.to_string()),
                    reply_to.as_ref().map(reply_token),
                    &data,
                )?;
                sent += 1;
            }
            Ok(_) => {}
            Err(RecvTimeoutError::Timeout) => {
                if client_gone(&mut reader)? {
                    return requeue_rest(rx, host);
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                // Dropped for falling behind, or the node stopped.
                let _ = writer.answer(&Response::error(
                    "listener dropped: fell behind or node stopped",
                ));
                return Ok(());
            }
        }
    }
    // All `count` went out: later messages are for the next listener.
    requeue_rest(rx, host)
}

/// Stops listening. The receiving end is dropped first, so the node finds
/// this listener gone on its next notice and keeps that message; received
/// messages already queued here go back to the node for the next listener.
fn requeue_rest(rx: mpsc::Receiver<(usize, Notice)>, host: &HostHandle) -> std::io::Result<()> {
    let queued: Vec<Notice> = rx.try_iter().map(|(_, notice)| notice).collect();
    drop(rx);
    for notice in queued {
        if matches!(notice, Notice::Received { .. }) {
            let _ = host.command(Command::Requeue(notice));
        }
    }
    Ok(())
}

/// Whether a listening client closed its end (anything it sends while
/// listening is ignored).
fn client_gone(reader: &mut BufReader<ControlStream>) -> std::io::Result<bool> {
    reader.get_ref().set_nonblocking(true)?;
    let mut scratch = [0u8; 256];
    let gone = loop {
        match reader.read(&mut scratch) {
            Ok(0) => break true,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => break true,
        }
    };
    reader.get_ref().set_nonblocking(false)?;
    Ok(gone)
}
