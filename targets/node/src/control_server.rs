//! The control socket's server in `veil node`: one thread accepts
//! connections, one thread per connection answers its requests by giving
//! the node thread commands. The protocol is in CONTROL.md beside this
//! crate's Cargo.toml; its types are `veil_node::control_protocol`.

use std::io::{BufReader, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use veil_core::identity::NodeId;
use veil_mio::StdNode;
use veil_node::control_protocol::{
    encode_line, read_line, MessageLine, Request, Response, MAX_LINE,
};

use crate::host::HostHandle;
use crate::host_protocol::{Command, Notice};

/// Control connections open at once; more are answered with an error.
const MAX_CLIENTS: usize = 32;

/// Messages a `listen` client may fall behind by before it is dropped.
const LISTEN_QUEUE: usize = 1024;

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
                    let _ = write_line(
                        &mut stream,
                        &Response::error("too many control connections"),
                    );
                    continue;
                }
                let host = host.clone();
                let count = Arc::clone(&clients);
                let spawned = std::thread::Builder::new()
                    .name("veil-control-client".into())
                    .spawn(move || {
                        if let Err(e) = serve_connection(stream, &host) {
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

fn write_line<T: Serialize>(stream: &mut TcpStream, value: &T) -> std::io::Result<()> {
    let line = encode_line(value).map_err(std::io::Error::other)?;
    stream.write_all(&line)?;
    stream.flush()
}

/// Serves one control connection: requests in order until it closes.
fn serve_connection(stream: TcpStream, host: &HostHandle) -> std::io::Result<()> {
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
                    &Response::error(format!("request longer than {max} bytes")),
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
                write_line(&mut writer, &Response::error(format!("bad request: {e}")))?;
                continue;
            }
        };
        match request {
            Request::Status => {
                let response = match host.status() {
                    Ok(status) => Response {
                        status: Some(status),
                        ..Response::ok()
                    },
                    Err(e) => Response::error(e),
                };
                write_line(&mut writer, &response)?;
            }
            Request::Send { to, data_hex } => {
                let response = match send(host, &to, &data_hex) {
                    Ok(()) => Response::ok(),
                    Err(e) => Response::error(e),
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
        return write_line(&mut writer, &Response::error(e));
    }
    write_line(&mut writer, &Response::ok())?;
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
