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

use std::io::{BufReader, ErrorKind, Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use veil_core::identity::{NodeId, MAX_SERVICE_DESCRIPTOR_LEN};
use veil_core::message::ReplyTo;
use veil_mio::StdNode;
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

/// A request whose fields have been decoded: what a valid line asks.
enum Valid {
    Status,
    Send { to: NodeId, data: Vec<u8> },
    Reply { to: ReplyTo, data: Vec<u8> },
    LearnService { descriptor: Vec<u8> },
    Listen { count: Option<u64> },
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
    })
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
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    if let Some(cookie) = cookie {
        if !authenticated(&mut reader, cookie)? {
            log::debug!("control connection closed: no valid cookie");
            return Ok(());
        }
        write_line(&mut writer, &Response::ok())?;
    }
    loop {
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
        match request {
            Valid::Status => {
                let response = match host.status() {
                    Ok(status) => Response {
                        status: Some(status),
                        ..Response::ok()
                    },
                    Err(e) => Response::error(e),
                };
                write_line(&mut writer, &response)?;
            }
            Valid::Send { to, data } => {
                let response = match send(host, to, data) {
                    Ok(()) => Response::ok(),
                    Err(e) => Response::error(e),
                };
                write_line(&mut writer, &response)?;
            }
            Valid::Reply { to, data } => {
                let response = match reply(host, to, data) {
                    Ok(()) => Response::ok(),
                    Err(e) => Response::error(e),
                };
                write_line(&mut writer, &response)?;
            }
            Valid::LearnService { descriptor } => {
                let response = match learn_service(host, descriptor) {
                    Ok(id) => Response {
                        service_id: Some(id.to_string()),
                        ..Response::ok()
                    },
                    Err(e) => Response::error(e),
                };
                write_line(&mut writer, &response)?;
            }
            Valid::Listen { count } => return listen(reader, writer, host, count),
        }
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
    mut writer: ControlStream,
    host: &HostHandle,
    count: Option<u64>,
) -> std::io::Result<()> {
    let (tx, rx) = mpsc::sync_channel(LISTEN_QUEUE);
    if let Err(e) = host.command(Command::Subscribe { tag: 0, tx }) {
        return write_line(&mut writer, &Response::error(e));
    }
    write_line(&mut writer, &Response::ok())?;
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
                let line = MessageLine {
                    event: "message".into(),
                    from: from.map(|f| f.to_string()),
                    reply_to: reply_to.as_ref().map(reply_token),
                    data_hex: hex::encode(data),
                };
                write_line(&mut writer, &line)?;
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
                let _ = write_line(
                    &mut writer,
                    &Response::error("listener dropped: fell behind or node stopped"),
                );
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
