//! `veil node --metrics ADDR`: Prometheus metrics over HTTP at
//! `http://ADDR/metrics`.
//!
//! Like the control socket, it runs on threads of its own: one accepts,
//! one per connection (at most [`MAX_SCRAPERS`] at once) reads the request
//! and answers it. The node thread is only asked to bring the metrics up
//! to date, a command like `status`; a slow or hostile client holds its
//! own thread, for [`DEADLINE`] at most, and never the node's. A request
//! head is at most [`MAX_REQUEST`] bytes.
//!
//! - this file: the listener and the connections;
//! - `http`: parsing a request and writing the answer.

mod http;

use std::fmt;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::registry::Registry;

use crate::host::HostHandle;
use http::{Parsed, Route};

/// Connections served at once; more are closed unanswered.
const MAX_SCRAPERS: usize = 4;

/// The longest a connection may take to send its request and read the
/// answer.
const DEADLINE: Duration = Duration::from_secs(5);

/// The most bytes a request head may have.
const MAX_REQUEST: usize = 8 * 1024;

/// The metrics socket, bound before the node starts so that a taken port
/// stops it at once.
#[derive(Debug)]
pub struct MetricsListener {
    listener: TcpListener,
}

/// Why the metrics socket could not be bound.
#[derive(Debug)]
pub struct BindError {
    addr: SocketAddr,
    source: io::Error,
}

impl fmt::Display for BindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot serve metrics on {} ({}); pick another metrics address (--metrics or \
             metrics in the config)",
            self.addr, self.source
        )
    }
}

impl std::error::Error for BindError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Why the metrics server did not start.
#[derive(Debug)]
pub struct ServeError(io::Error);

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot start the metrics thread ({}); the system may be out of threads or memory",
            self.0
        )
    }
}

impl std::error::Error for ServeError {}

impl MetricsListener {
    /// Binds `addr` for scrapers.
    pub fn bind(addr: SocketAddr) -> Result<MetricsListener, BindError> {
        TcpListener::bind(addr)
            .map(|listener| MetricsListener { listener })
            .map_err(|source| BindError { addr, source })
    }

    /// The bound address (with the port the system chose, for port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// Serves `registry` to scrapers on a thread of its own, asking `host` to
/// bring it up to date before each answer.
pub fn serve(
    listener: MetricsListener,
    registry: Registry,
    host: HostHandle,
) -> Result<(), ServeError> {
    let registry = Arc::new(registry);
    let busy = Arc::new(AtomicUsize::new(0));
    std::thread::Builder::new()
        .name("veil-metrics".into())
        .spawn(move || {
            for stream in listener.listener.incoming() {
                let Ok(stream) = stream else { continue };
                if busy.fetch_add(1, Ordering::SeqCst) >= MAX_SCRAPERS {
                    busy.fetch_sub(1, Ordering::SeqCst);
                    continue;
                }
                let (registry, host, done) =
                    (Arc::clone(&registry), host.clone(), Arc::clone(&busy));
                let spawned = std::thread::Builder::new()
                    .name("veil-metrics-client".into())
                    .spawn(move || {
                        if let Err(e) = answer(stream, &registry, &host) {
                            log::debug!("metrics connection ended: {e}");
                        }
                        done.fetch_sub(1, Ordering::SeqCst);
                    });
                if spawned.is_err() {
                    busy.fetch_sub(1, Ordering::SeqCst);
                }
            }
        })
        .map(|_| ())
        .map_err(ServeError)
}

/// Reads one request and answers it, all within [`DEADLINE`].
fn answer(mut stream: TcpStream, registry: &Registry, host: &HostHandle) -> io::Result<()> {
    let deadline = Instant::now() + DEADLINE;
    let Some((route, head_only)) = read_request(&mut stream, deadline)? else {
        return Ok(());
    };
    let response = match route {
        Route::Metrics { openmetrics } => match encode(registry, host, openmetrics) {
            Ok((content_type, body)) => {
                http::response("200 OK", content_type, body.as_bytes(), head_only)
            }
            Err(reason) => http::response(
                "503 Service Unavailable",
                http::PROMETHEUS_TEXT,
                format!("{reason}\n").as_bytes(),
                head_only,
            ),
        },
        Route::NotFound => http::response(
            "404 Not Found",
            http::PROMETHEUS_TEXT,
            b"not found: metrics are at /metrics\n",
            head_only,
        ),
        Route::MethodNotAllowed => http::response(
            "405 Method Not Allowed",
            http::PROMETHEUS_TEXT,
            b"use GET\n",
            head_only,
        ),
        Route::BadRequest => http::response(
            "400 Bad Request",
            http::PROMETHEUS_TEXT,
            b"not an HTTP request\n",
            false,
        ),
    };
    stream.set_write_timeout(Some(remaining(deadline)?))?;
    stream.write_all(&response)?;
    stream.flush()?;
    linger(&mut stream, deadline)
}

/// Closes our side, then reads what the client still sends (at most
/// [`MAX_REQUEST`] more bytes, until the deadline) before the stream is
/// dropped: closing a socket with unread bytes sends a reset, which can
/// destroy the answer before the client reads it (a request over the limit
/// is answered before it is all read).
fn linger(stream: &mut TcpStream, deadline: Instant) -> io::Result<()> {
    stream.shutdown(std::net::Shutdown::Write)?;
    let mut scratch = [0u8; 1024];
    let mut drained = 0usize;
    while drained < MAX_REQUEST {
        stream.set_read_timeout(Some(remaining(deadline)?))?;
        match stream.read(&mut scratch) {
            Ok(0) => break,
            Ok(n) => drained = drained.saturating_add(n),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The request's route, once its head is in; `None` if the client closed
/// first. A head over [`MAX_REQUEST`] bytes is a bad request.
fn read_request(stream: &mut TcpStream, deadline: Instant) -> io::Result<Option<(Route, bool)>> {
    let mut buf = vec![0u8; MAX_REQUEST];
    let mut len = 0usize;
    loop {
        // A timeout per read would let a client that trickles a byte at a
        // time stay forever: each read gets only what is left.
        stream.set_read_timeout(Some(remaining(deadline)?))?;
        let free = match buf.get_mut(len..) {
            Some(free) if !free.is_empty() => free,
            _ => return Ok(Some((Route::BadRequest, false))),
        };
        let n = match stream.read(free) {
            Ok(0) => return Ok(None),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        len = len.saturating_add(n);
        if let Parsed::Complete { route, head_only } = http::parse(buf.get(..len).unwrap_or(&[])) {
            return Ok(Some((route, head_only)));
        }
    }
}

/// Time left until `deadline`, or a timeout error once it has passed.
fn remaining(deadline: Instant) -> io::Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(io::Error::new(
            ErrorKind::TimedOut,
            "the client took too long",
        ));
    }
    Ok(left)
}

/// The metrics, brought up to date, in the format asked for.
fn encode(
    registry: &Registry,
    host: &HostHandle,
    openmetrics: bool,
) -> Result<(&'static str, String), String> {
    host.refresh_metrics()?;
    let mut body = String::new();
    let encoded = if openmetrics {
        prometheus_client::encoding::text::encode(&mut body, registry)
    } else {
        prometheus_client::encoding::prometheus_text::encode(&mut body, registry)
    };
    encoded.map_err(|_| "the metrics could not be encoded".to_string())?;
    let content_type = if openmetrics {
        http::OPENMETRICS
    } else {
        http::PROMETHEUS_TEXT
    };
    Ok((content_type, body))
}
