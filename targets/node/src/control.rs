//! The control socket: line-based JSON over TCP on loopback. The protocol
//! is in CONTROL.md beside this crate's Cargo.toml.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use veil_core::identity::NodeId;
use veil_mio::StdNode;

use crate::host::{Command, HostHandle, Notice, Status};

/// Control connections open at once; more are answered with an error.
pub const MAX_CLIENTS: usize = 32;

/// The longest request line: a largest message in hex, and room for the
/// rest of the request.
pub const MAX_LINE: usize = 2 * StdNode::MAX_MESSAGE + 1024;

/// Messages a `listen` client may fall behind by before it is dropped.
const LISTEN_QUEUE: usize = 1024;

/// A request, one JSON object per line.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "lowercase", deny_unknown_fields)]
pub enum Request {
    /// Send a message and answer once it is acknowledged or failed.
    Send {
        /// Destination node id, 64 hex digits.
        to: String,
        /// The message, in hex.
        data_hex: String,
    },
    /// Answer with the node's status.
    Status,
    /// Answer `{"ok":true}`, then stream every received message, or only
    /// the next `count`: the node then stops listening on this connection
    /// at once, so later messages wait for the next listener.
    Listen {
        /// How many messages to stream; all of them if absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<u64>,
    },
}

/// An answer, one JSON object per line.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Response {
    /// Whether the request succeeded.
    pub ok: bool,
    /// Why not, when `ok` is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The status, for `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
}

/// A received message, streamed to `listen` clients.
#[derive(Debug, Serialize, Deserialize)]
pub struct MessageLine {
    /// Always "message".
    pub event: String,
    /// The sender's node id when known (replies), else null.
    pub from: Option<String>,
    /// The message, in hex.
    pub data_hex: String,
}

/// Accepts control connections on a thread of its own, one thread per
/// connection.
pub fn serve(listener: TcpListener, host: HostHandle) -> Result<(), String> {
    let clients = Arc::new(AtomicUsize::new(0));
    std::thread::Builder::new()
        .name("veil-control".into())
        .spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                if clients.fetch_add(1, Ordering::SeqCst) >= MAX_CLIENTS {
                    clients.fetch_sub(1, Ordering::SeqCst);
                    let mut stream = stream;
                    let _ = write_line(&mut stream, &error("too many control connections"));
                    continue;
                }
                let host = host.clone();
                let count = Arc::clone(&clients);
                let spawned = std::thread::Builder::new()
                    .name("veil-control-client".into())
                    .spawn(move || {
                        if let Err(e) = client(stream, &host) {
                            log::debug!("control connection ended: {e}");
                        }
                        count.fetch_sub(1, Ordering::SeqCst);
                    });
                if spawned.is_err() {
                    clients.fetch_sub(1, Ordering::SeqCst);
                }
            }
        })
        .map(|_| ())
        .map_err(|e| format!("cannot start the control thread: {e}"))
}

fn error(text: impl Into<String>) -> Response {
    Response {
        ok: false,
        error: Some(text.into()),
        status: None,
    }
}

fn ok() -> Response {
    Response {
        ok: true,
        ..Response::default()
    }
}

fn write_line<T: Serialize>(stream: &mut TcpStream, value: &T) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    line.push(b'\n');
    stream.write_all(&line)?;
    stream.flush()
}

/// Reads one line of at most `MAX_LINE` bytes; `None` at end of stream.
pub fn read_line(reader: &mut impl BufRead) -> std::io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    let limit = u64::try_from(MAX_LINE)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    reader.by_ref().take(limit).read_until(b'\n', &mut line)?;
    if line.is_empty() {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        if line.len() > MAX_LINE {
            return Err(std::io::Error::new(
                ErrorKind::InvalidData,
                "request line too long",
            ));
        }
        // The last line may lack its newline.
    } else {
        line.pop();
    }
    Ok(Some(line))
}

/// Serves one control connection: requests in order until it closes.
fn client(stream: TcpStream, host: &HostHandle) -> std::io::Result<()> {
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let line = match read_line(&mut reader) {
            Ok(Some(line)) => line,
            Ok(None) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::InvalidData => {
                let max = MAX_LINE;
                write_line(
                    &mut writer,
                    &error(format!("request longer than {max} bytes")),
                )?;
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let request: Request = match serde_json::from_slice(&line) {
            Ok(r) => r,
            Err(e) => {
                write_line(&mut writer, &error(format!("bad request: {e}")))?;
                continue;
            }
        };
        match request {
            Request::Status => {
                let response = match host.status() {
                    Ok(status) => Response {
                        status: Some(status),
                        ..ok()
                    },
                    Err(e) => error(e),
                };
                write_line(&mut writer, &response)?;
            }
            Request::Send { to, data_hex } => {
                let response = match send(host, &to, &data_hex) {
                    Ok(()) => ok(),
                    Err(e) => error(e),
                };
                write_line(&mut writer, &response)?;
            }
            Request::Listen { count } => return listen(reader, writer, host, count),
        }
    }
}

fn send(host: &HostHandle, to: &str, data_hex: &str) -> Result<(), String> {
    let to = NodeId::from_hex(to).map_err(|e| format!("bad destination: {e}"))?;
    let data = hex::decode(data_hex).map_err(|e| format!("bad data_hex: {e}"))?;
    if data.len() > StdNode::MAX_MESSAGE {
        return Err(format!(
            "the message is {} bytes; the limit is {}",
            data.len(),
            StdNode::MAX_MESSAGE
        ));
    }
    let done = host.send(to, data)?;
    done.recv()
        .map_err(|_| "the node stopped before an acknowledgement".to_string())?
}

/// Streams received messages until the client goes away.
fn listen(
    mut reader: BufReader<TcpStream>,
    mut writer: TcpStream,
    host: &HostHandle,
    count: Option<u64>,
) -> std::io::Result<()> {
    let (tx, rx) = mpsc::sync_channel(LISTEN_QUEUE);
    if let Err(e) = host.command(Command::Subscribe { tag: 0, tx }) {
        return write_line(&mut writer, &error(e));
    }
    write_line(&mut writer, &ok())?;
    let mut sent = 0u64;
    while count.is_none_or(|c| sent < c) {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok((_, Notice::Received { from, data })) => {
                // A client that has gone cannot take it: the message goes
                // back to the node for the next listener.
                if client_gone(&mut reader)? {
                    let _ = host.command(Command::Requeue(Notice::Received { from, data }));
                    return requeue_rest(rx, host);
                }
                let line = MessageLine {
                    event: "message".into(),
                    from: from.map(|f| f.to_string()),
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
                    &error("listener dropped: fell behind or node stopped"),
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
fn client_gone(reader: &mut BufReader<TcpStream>) -> std::io::Result<bool> {
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
