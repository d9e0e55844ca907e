//! [`QuicTransport`]: a quinn-proto endpoint and its connections, each
//! carrying one veil link: the link's own bytes on one bidirectional stream
//! the dialler opens (the link stream), and each circuit's cells on a
//! bidirectional stream of its own (circuit streams), opened by whichever
//! end creates the circuit on the link.
//!
//! Sans-IO like the core: datagrams go in with
//! [`handle_datagram`](QuicTransport::handle_datagram) and come out of
//! [`poll_datagram`](QuicTransport::poll_datagram); time is the core's
//! [`Instant`], passed in by the caller. quinn-proto counts time in
//! `std::time::Instant`; the transport maps the caller's instants onto a
//! fixed std origin taken when it was built, so only differences matter
//! and any clock origin works.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use quinn_proto::crypto::rustls::{HandshakeData, QuicClientConfig, QuicServerConfig};
use quinn_proto::{
    ClientConfig, ConnectionHandle, DatagramEvent, Dir, EcnCodepoint, Endpoint, EndpointConfig,
    NoneTokenStore, ServerConfig, StreamId, Transmit, VarInt,
};
use veil_core::time::Instant;

use crate::config::QuicConfig;
use crate::error::{CloseCause, ConnectError, SetupError};
use crate::tls;

mod conn_events;
mod parameters;

use conn_events::{on_event, read_stream};
use parameters::transport_config;

/// Datagrams the endpoint itself answered with (version negotiation,
/// refusals, stateless resets) kept for sending; more are dropped, so a
/// flood of junk cannot grow memory.
const MAX_PENDING_RESPONSES: usize = 64;

/// The application error code of every close: 0, and an empty reason, so
/// a close says nothing (it is encrypted anyway once the handshake is done).
const CLOSE_CODE: VarInt = VarInt::from_u32(0);

/// The `max_udp_payload_size` advertised unless `max_mtu` is larger:
/// quinn's default, an Ethernet frame less IPv4 and UDP headers.
const DEFAULT_MAX_UDP_PAYLOAD: u16 = 1472;

/// The most bytes one GSO batch may hold: a UDP datagram's length field is
/// 16 bits, and the kernel refuses a segmented send whose total exceeds it.
const GSO_BATCH_BYTES: usize = 65_000;

/// One QUIC connection, as the caller names it. Never reused within one
/// transport (quinn-proto's own handles are).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(u64);

impl ConnId {
    /// The raw number, for logs and maps.
    pub fn to_u64(self) -> u64 {
        self.0
    }
}

impl std::fmt::Display for ConnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "quic#{}", self.0)
    }
}

/// Which end of a connection we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We connected: the QUIC client, the veil link initiator, and the side
    /// that opens the link stream.
    Dialler,
    /// We accepted: the QUIC server and the veil link responder.
    Listener,
}

/// Something the caller must act on. Pulled with
/// [`QuicTransport::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuicEvent {
    /// The QUIC handshake finished: open a veil link over this connection.
    /// The dialler's link stream is open and writable at once; the
    /// listener's appears when the dialler first writes (a veil initiator
    /// always speaks first), announced by `Readable`/`Writable`.
    Connected {
        /// The connection.
        conn: ConnId,
        /// The peer's address.
        remote: SocketAddr,
        /// Whether we dialled or accepted.
        role: Role,
    },
    /// The link stream may have bytes to [`read`](QuicTransport::read).
    Readable(ConnId),
    /// The link stream may take bytes again after a
    /// [`write`](QuicTransport::write) took fewer than offered.
    Writable(ConnId),
    /// A circuit stream may have bytes to
    /// [`read_circuit`](QuicTransport::read_circuit): one the peer just
    /// opened, or one of ours with new data.
    CircuitReadable(ConnId, CircuitStream),
    /// A circuit stream may take bytes again after a
    /// [`write_circuit`](QuicTransport::write_circuit) took fewer than
    /// offered.
    CircuitWritable(ConnId, CircuitStream),
    /// The connection ended (or a dial failed) without us closing it. Its
    /// id is invalid from now on. Not reported for connections the caller
    /// closed itself.
    Closed {
        /// The connection.
        conn: ConnId,
        /// Why.
        cause: CloseCause,
    },
}

/// One circuit's stream within a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CircuitStream(StreamId);

impl std::fmt::Display for CircuitStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "stream {}", self.0)
    }
}

/// The TLS exporter label of a connection's channel binding (RFC 8446
/// §7.5), which the veil link handshake mixes in (`docs/quic.md` §3).
pub const CHANNEL_BINDING_LABEL: &[u8] = b"EXPORTER-veil-link-channel-binding";

/// What a [`read`](QuicTransport::read) gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    /// This many bytes, at the start of the buffer.
    Data(usize),
    /// Nothing now; a `Readable` event follows when there is.
    WouldBlock,
    /// The peer finished its side of the stream (all its bytes were read):
    /// the transport under the link is closed.
    Finished,
    /// The connection is gone (or never existed).
    Closed,
}

/// The link stream cannot take bytes any more: the peer stopped it or the
/// connection is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamClosed;

impl std::fmt::Display for StreamClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the link stream is closed")
    }
}

impl std::error::Error for StreamClosed {}

/// What the TLS handshake settled, as the peer saw it too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeInfo {
    /// The negotiated ALPN protocol.
    pub alpn: Option<Vec<u8>>,
    /// The server name the client sent (SNI); always `None` between veil
    /// nodes.
    pub server_name: Option<String>,
}

#[derive(Debug)]
struct Conn {
    handle: ConnectionHandle,
    inner: quinn_proto::Connection,
    remote: SocketAddr,
    role: Role,
    /// The link stream, once opened (dialler) or accepted (listener).
    stream: Option<StreamId>,
    /// The peer finished its side and we read all of it.
    read_finished: bool,
    /// Closed by the caller, or its end reported: no more events.
    ended: bool,
    /// Closed by the caller: close the connection once the peer
    /// acknowledged everything written, or at this time at the latest.
    linger_until: Option<std::time::Instant>,
}

/// A QUIC endpoint carrying veil links: one link per connection, on one
/// bidirectional stream opened by the dialler.
pub struct QuicTransport {
    config: QuicConfig,
    endpoint: Endpoint,
    client: Option<ClientConfig>,
    conns: HashMap<ConnId, Conn>,
    by_handle: HashMap<ConnectionHandle, ConnId>,
    /// Connection ids in the order they are served by `poll_datagram`.
    order: Vec<ConnId>,
    next_served: usize,
    events: VecDeque<QuicEvent>,
    responses: VecDeque<(SocketAddr, Vec<u8>)>,
    scratch: Vec<u8>,
    /// The buffer [`poll_datagram`](QuicTransport::poll_datagram) has
    /// quinn-proto write into before copying out one datagram.
    transmit_buf: Vec<u8>,
    next_id: u64,
    origin: std::time::Instant,
    /// The latest time the caller gave, for work done in calls that take
    /// none (`read`).
    latest: std::time::Instant,
}

impl std::fmt::Debug for QuicTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuicTransport")
            .field("connections", &self.conns.len())
            .field("events", &self.events.len())
            .finish_non_exhaustive()
    }
}

/// The server name given to rustls. It is never sent (SNI is off) and the
/// verifier ignores it; rustls just needs a syntactically valid one.
const SERVER_NAME: &str = "localhost";

impl QuicTransport {
    /// A transport with a fresh self-signed certificate (a new key every
    /// time: nothing ties the certificate to the node's veil identity).
    /// Packets stay at QUIC's 1200-byte minimum: without knowing that its
    /// datagrams carry the don't-fragment bit, the transport must not probe
    /// for larger ones (IP would fragment a probe instead of dropping it,
    /// and the probe would "succeed" past the real path MTU).
    pub fn new(config: QuicConfig) -> Result<Self, SetupError> {
        Self::with_mtu_discovery(config, false)
    }

    /// As [`new`](Self::new), with path MTU discovery on if
    /// `mtu_discovery`: only for a caller whose socket sets the
    /// don't-fragment bit ([`QuicSocket`](crate::QuicSocket) does, where the
    /// platform allows). Datagrams then grow from 1200 bytes up to
    /// [`QuicConfig::max_mtu`] as far as the path takes them.
    pub fn with_mtu_discovery(config: QuicConfig, mtu_discovery: bool) -> Result<Self, SetupError> {
        let server = if config.accept {
            let cert = tls::generate_certificate()?;
            let tls = tls::server_config(&config.alpn, cert)?;
            let crypto =
                QuicServerConfig::try_from(tls).map_err(|e| SetupError::Quic(e.to_string()))?;
            let mut server = ServerConfig::with_crypto(Arc::new(crypto));
            server.transport_config(Arc::new(transport_config(&config)?));
            // The peer's address may change (NAT rebinding): QUIC follows it.
            server.migration(true);
            Some(Arc::new(server))
        } else {
            None
        };
        let client = if config.dial {
            let tls = tls::client_config(&config.alpn)?;
            let crypto =
                QuicClientConfig::try_from(tls).map_err(|e| SetupError::Quic(e.to_string()))?;
            let mut client = ClientConfig::new(Arc::new(crypto));
            client.transport_config(Arc::new(transport_config(&config)?));
            // No address-validation tokens are kept: presenting one would
            // link our connections to the same server.
            client.token_store(Arc::new(NoneTokenStore));
            Some(client)
        } else {
            None
        };
        let origin = std::time::Instant::now();
        // The largest datagram we accept: quinn's 1472 unless `max_mtu`
        // asks for more (a loopback socket), since the peer's discovery is
        // bounded by what we advertise.
        let mut endpoint_config = EndpointConfig::default();
        let max_payload = config.max_mtu.max(DEFAULT_MAX_UDP_PAYLOAD);
        endpoint_config
            .max_udp_payload_size(max_payload)
            .map_err(|e| SetupError::Quic(format!("max UDP payload: {e}")))?;
        let endpoint = Endpoint::new(Arc::new(endpoint_config), server, mtu_discovery, None);
        Ok(QuicTransport {
            config,
            endpoint,
            client,
            conns: HashMap::new(),
            by_handle: HashMap::new(),
            order: Vec::new(),
            next_served: 0,
            events: VecDeque::new(),
            responses: VecDeque::new(),
            scratch: Vec::with_capacity(crate::MAX_DATAGRAM),
            transmit_buf: Vec::with_capacity(crate::MAX_DATAGRAM),
            next_id: 1,
            origin,
            latest: origin,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &QuicConfig {
        &self.config
    }

    /// Starts a connection to `remote`. A `Connected` or `Closed` event
    /// follows.
    pub fn connect(&mut self, now: Instant, remote: SocketAddr) -> Result<ConnId, ConnectError> {
        let Some(client) = self.client.clone() else {
            return Err(ConnectError::NotDialling);
        };
        if self.conns.len() >= self.config.max_connections {
            return Err(ConnectError::TooManyConnections);
        }
        let at = self.at(now);
        let (handle, inner) = self
            .endpoint
            .connect(at, client, remote, SERVER_NAME)
            .map_err(|e| ConnectError::Refused(e.to_string()))?;
        let id = self.insert(handle, inner, remote, Role::Dialler);
        self.drive(id);
        Ok(id)
    }

    /// A UDP datagram arrived from `from`.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        self.handle_segment(now, from, None, None, BytesMut::from(data));
    }

    /// One UDP datagram arrived from `from`, on local address `local_ip`
    /// (when the socket reports it) with the ECN bits `ecn`. `data` is one
    /// datagram: the caller splits a GRO batch at its stride first (with
    /// `BytesMut::split_to`, which does not copy).
    pub fn handle_segment(
        &mut self,
        now: Instant,
        from: SocketAddr,
        local_ip: Option<IpAddr>,
        ecn: Option<EcnCodepoint>,
        data: BytesMut,
    ) {
        let at = self.at(now);
        self.scratch.clear();
        let event = self
            .endpoint
            .handle(at, from, local_ip, ecn, data, &mut self.scratch);
        match event {
            None => {}
            Some(DatagramEvent::Response(transmit)) => {
                self.queue_response(transmit.destination, transmit.size);
            }
            Some(DatagramEvent::NewConnection(incoming)) => {
                if !self.config.accept {
                    // Say nothing: a node that does not serve QUIC should
                    // not look like it does.
                    self.endpoint.ignore(incoming);
                } else if self.conns.len() >= self.config.max_connections {
                    let transmit = self.endpoint.refuse(incoming, &mut self.scratch);
                    self.queue_response(transmit.destination, transmit.size);
                } else {
                    match self.endpoint.accept(incoming, at, &mut self.scratch, None) {
                        Ok((handle, inner)) => {
                            let id = self.insert(handle, inner, from, Role::Listener);
                            self.drive(id);
                        }
                        Err(error) => {
                            if let Some(transmit) = error.response {
                                self.queue_response(transmit.destination, transmit.size);
                            }
                        }
                    }
                }
            }
            Some(DatagramEvent::ConnectionEvent(handle, event)) => {
                let Some(&id) = self.by_handle.get(&handle) else {
                    return;
                };
                if let Some(conn) = self.conns.get_mut(&id) {
                    conn.inner.handle_event(event);
                }
                self.drive(id);
            }
        }
    }

    /// The next datagram to send: written to the start of `buf` (at least
    /// [`MAX_DATAGRAM`](crate::MAX_DATAGRAM) bytes), with its destination
    /// and length. Call until `None` after every other call. One datagram
    /// per call; [`poll_transmit`](Self::poll_transmit) gives batches.
    pub fn poll_datagram(&mut self, now: Instant, buf: &mut [u8]) -> Option<(SocketAddr, usize)> {
        let mut out = std::mem::take(&mut self.transmit_buf);
        let transmit = self.poll_transmit(now, 1, &mut out);
        let result = transmit.and_then(|t| {
            let datagram = out.get(..t.size)?;
            let to = buf.get_mut(..t.size)?;
            to.copy_from_slice(datagram);
            Some((t.destination, t.size))
        });
        self.transmit_buf = out;
        result
    }

    /// The next datagrams to send, all to one destination: written back to
    /// back into `buf` (cleared first), at most `max_datagrams` of them,
    /// each `segment_size` bytes but the last (a GSO batch, sent with one
    /// system call). Call until `None` after every other call. Connections
    /// take turns, one batch each, so a busy one cannot starve the others.
    pub fn poll_transmit(
        &mut self,
        now: Instant,
        max_datagrams: usize,
        buf: &mut Vec<u8>,
    ) -> Option<Transmit> {
        buf.clear();
        if let Some((to, bytes)) = self.responses.pop_front() {
            buf.extend_from_slice(&bytes);
            return Some(Transmit {
                destination: to,
                ecn: None,
                size: bytes.len(),
                segment_size: None,
                src_ip: None,
            });
        }
        let at = self.at(now);
        let count = self.order.len();
        for step in 0..count {
            let index = self.next_served.wrapping_add(step).checked_rem(count)?;
            let Some(&id) = self.order.get(index) else {
                continue;
            };
            let Some(conn) = self.conns.get_mut(&id) else {
                continue;
            };
            // A GSO batch is one UDP send of at most 64 KiB in all.
            let per_batch = (GSO_BATCH_BYTES / usize::from(conn.inner.current_mtu().max(1))).max(1);
            let max = max_datagrams.min(per_batch).max(1);
            let Some(transmit) = conn.inner.poll_transmit(at, max, buf) else {
                continue;
            };
            self.next_served = index.wrapping_add(1);
            self.drive(id);
            return Some(transmit);
        }
        None
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next run.
    pub fn next_timeout(&mut self) -> Option<Instant> {
        let mut earliest: Option<std::time::Instant> = None;
        for conn in self.conns.values_mut() {
            for deadline in [conn.inner.poll_timeout(), conn.linger_until]
                .into_iter()
                .flatten()
            {
                earliest = Some(earliest.map_or(deadline, |e| e.min(deadline)));
            }
        }
        earliest.map(|deadline| self.to_core(deadline))
    }

    /// Runs every connection timer that is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        let at = self.at(now);
        let ids: Vec<ConnId> = self.order.clone();
        for id in ids {
            let Some(conn) = self.conns.get_mut(&id) else {
                continue;
            };
            if conn.inner.poll_timeout().is_some_and(|t| t <= at) {
                conn.inner.handle_timeout(at);
            }
            if conn.linger_until.is_some_and(|t| t <= at) {
                conn.linger_until = None;
                conn.inner.close(at, CLOSE_CODE, Bytes::new());
            }
            self.drive(id);
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<QuicEvent> {
        self.events.pop_front()
    }

    /// Reads from the link stream of `conn` into `buf`. Only what is read
    /// frees flow-control credit, so not reading holds the peer back.
    pub fn read(&mut self, conn: ConnId, buf: &mut [u8]) -> ReadOutcome {
        let Some(c) = self.conns.get_mut(&conn) else {
            return ReadOutcome::Closed;
        };
        if c.read_finished {
            return ReadOutcome::Finished;
        }
        let Some(stream) = c.stream else {
            return if c.inner.is_closed() {
                ReadOutcome::Closed
            } else {
                ReadOutcome::WouldBlock
            };
        };
        let outcome = read_stream(&mut c.inner, stream, buf);
        match outcome {
            ReadOutcome::Finished => c.read_finished = true,
            ReadOutcome::Closed => c.ended = true,
            ReadOutcome::Data(_) | ReadOutcome::WouldBlock => {}
        }
        self.drive(conn);
        outcome
    }

    /// Reads from one circuit stream of `conn` into `buf`. As with the link
    /// stream, only what is read frees credit: a circuit whose cells the
    /// node cannot take stays unread, and only its sender is held back.
    /// `Finished` means the peer finished the stream and all of it was read.
    pub fn read_circuit(
        &mut self,
        conn: ConnId,
        stream: CircuitStream,
        buf: &mut [u8],
    ) -> ReadOutcome {
        let Some(c) = self.conns.get_mut(&conn) else {
            return ReadOutcome::Closed;
        };
        let outcome = read_stream(&mut c.inner, stream.0, buf);
        self.drive(conn);
        outcome
    }

    /// Writes to the link stream of `conn`; returns how many bytes it took
    /// (maybe fewer than offered, maybe none: flow control or the send
    /// window is full, and a `Writable` event follows when it drains).
    pub fn write(&mut self, conn: ConnId, bytes: &[u8]) -> Result<usize, StreamClosed> {
        let Some(c) = self.conns.get_mut(&conn) else {
            return Err(StreamClosed);
        };
        if c.ended && c.linger_until.is_none() {
            return Err(StreamClosed);
        }
        let Some(stream) = c.stream else {
            return if c.inner.is_closed() {
                Err(StreamClosed)
            } else {
                Ok(0)
            };
        };
        if bytes.is_empty() {
            return Ok(0);
        }
        match c.inner.send_stream(stream).write(bytes) {
            Ok(n) => Ok(n),
            Err(quinn_proto::WriteError::Blocked) => Ok(0),
            Err(_) => Err(StreamClosed),
        }
    }

    /// Opens a new circuit stream on `conn`, for a circuit this end
    /// creates on the link. `None` if the connection is not up, or the peer
    /// allows no more streams now (`max_circuit_streams`; a
    /// `CircuitWritable`-free retry after streams close is the caller's).
    pub fn open_circuit(&mut self, conn: ConnId) -> Option<CircuitStream> {
        let c = self.conns.get_mut(&conn)?;
        if c.ended || c.stream.is_none() {
            return None;
        }
        let stream = c.inner.streams().open(Dir::Bi)?;
        Some(CircuitStream(stream))
    }

    /// Writes to one circuit stream; returns how many bytes it took (maybe
    /// fewer than offered, maybe none; `CircuitWritable` follows).
    pub fn write_circuit(
        &mut self,
        conn: ConnId,
        stream: CircuitStream,
        bytes: &[u8],
    ) -> Result<usize, StreamClosed> {
        let Some(c) = self.conns.get_mut(&conn) else {
            return Err(StreamClosed);
        };
        if c.ended {
            return Err(StreamClosed);
        }
        if bytes.is_empty() {
            return Ok(0);
        }
        // Like `write`, no `drive` here: this runs once per cell, and what
        // the write queued goes out with the next `poll_datagram`, which
        // drives the connection.
        match c.inner.send_stream(stream.0).write(bytes) {
            Ok(n) => Ok(n),
            Err(quinn_proto::WriteError::Blocked) => Ok(0),
            Err(_) => Err(StreamClosed),
        }
    }

    /// Finishes our side of a circuit stream (the circuit ended): the peer
    /// reads what was written, then the end of the stream.
    pub fn finish_circuit(&mut self, conn: ConnId, stream: CircuitStream) {
        if let Some(c) = self.conns.get_mut(&conn) {
            let _ = c.inner.send_stream(stream.0).finish();
        }
        self.drive(conn);
    }

    /// The connection's channel binding: 32 bytes exported from its TLS
    /// session (label [`CHANNEL_BINDING_LABEL`], empty context) that both
    /// ends, and only they, can compute. The veil link handshake mixes it
    /// in, which ties the authenticated veil peer to this TLS session and so
    /// to every stream of the connection. `None` before the handshake.
    pub fn channel_binding(&self, conn: ConnId) -> Option<[u8; 32]> {
        let c = self.conns.get(&conn)?;
        let mut out = [0u8; 32];
        c.inner
            .crypto_session()
            .export_keying_material(&mut out, CHANNEL_BINDING_LABEL, &[])
            .ok()?;
        Some(out)
    }

    /// Closes `conn` gracefully: what was written still goes out (the
    /// stream is finished), and the connection closes once the peer has it,
    /// or after [`QuicConfig::linger`]. No `Closed` event follows.
    pub fn close(&mut self, now: Instant, conn: ConnId) {
        let at = self.at(now);
        let linger = self.config.linger;
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.ended && c.linger_until.is_none() && c.inner.is_closed() {
            return;
        }
        c.ended = true;
        let finished = match c.stream {
            Some(stream) if !c.inner.is_closed() => c.inner.send_stream(stream).finish().is_ok(),
            _ => false,
        };
        if finished {
            c.linger_until = at.checked_add(linger).or(Some(at));
        } else {
            c.linger_until = None;
            c.inner.close(at, CLOSE_CODE, Bytes::new());
        }
        self.drive(conn);
    }

    /// Closes `conn` at once; unsent bytes are dropped. No `Closed` event
    /// follows.
    pub fn abort(&mut self, now: Instant, conn: ConnId) {
        let at = self.at(now);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.ended = true;
            c.linger_until = None;
            c.inner.close(at, CLOSE_CODE, Bytes::new());
        }
        self.drive(conn);
    }

    /// Closes every connection gracefully, for example at shutdown.
    pub fn close_all(&mut self, now: Instant) {
        for id in self.order.clone() {
            self.close(now, id);
        }
    }

    /// Connections the transport holds, including ones closing.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// The peer address of `conn`.
    pub fn remote(&self, conn: ConnId) -> Option<SocketAddr> {
        self.conns.get(&conn).map(|c| c.remote)
    }

    /// Whether we dialled or accepted `conn`.
    pub fn role(&self, conn: ConnId) -> Option<Role> {
        self.conns.get(&conn).map(|c| c.role)
    }

    /// The current RTT estimate of `conn`.
    pub fn rtt(&self, conn: ConnId) -> Option<std::time::Duration> {
        self.conns.get(&conn).map(|c| c.inner.rtt())
    }

    /// The largest UDP payload `conn` sends now: 1200 bytes at first, more
    /// once path MTU discovery found the path takes more (`docs/quic.md`
    /// §4).
    pub fn current_mtu(&self, conn: ConnId) -> Option<u16> {
        self.conns.get(&conn).map(|c| c.inner.current_mtu())
    }

    /// The stream limits this end advertised to the peer of `conn`
    /// (bidirectional, unidirectional), as QUIC transport parameters.
    pub fn advertised_stream_limits(&self, conn: ConnId) -> Option<(u64, u64)> {
        let c = self.conns.get(&conn)?;
        Some((
            c.inner.max_concurrent_streams(Dir::Bi),
            c.inner.max_concurrent_streams(Dir::Uni),
        ))
    }

    /// What the TLS handshake of `conn` settled (ALPN, SNI), once known.
    pub fn handshake_info(&self, conn: ConnId) -> Option<HandshakeInfo> {
        let c = self.conns.get(&conn)?;
        let data = c.inner.crypto_session().handshake_data()?;
        let data = data.downcast::<HandshakeData>().ok()?;
        Some(HandshakeInfo {
            alpn: data.protocol,
            server_name: data.server_name,
        })
    }

    fn insert(
        &mut self,
        handle: ConnectionHandle,
        inner: quinn_proto::Connection,
        remote: SocketAddr,
        role: Role,
    ) -> ConnId {
        let id = ConnId(self.next_id);
        self.next_id = self.next_id.wrapping_add(1);
        self.conns.insert(
            id,
            Conn {
                handle,
                inner,
                remote,
                role,
                stream: None,
                read_finished: false,
                ended: false,
                linger_until: None,
            },
        );
        self.by_handle.insert(handle, id);
        self.order.push(id);
        id
    }

    fn queue_response(&mut self, to: SocketAddr, len: usize) {
        if self.responses.len() >= MAX_PENDING_RESPONSES {
            return;
        }
        if let Some(bytes) = self.scratch.get(..len) {
            self.responses.push_back((to, bytes.to_vec()));
        }
    }

    /// Hands a connection's endpoint events to the endpoint, turns its
    /// application events into ours, and forgets it once drained.
    fn drive(&mut self, id: ConnId) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        while let Some(event) = conn.inner.poll_endpoint_events() {
            if let Some(reply) = self.endpoint.handle_event(conn.handle, event) {
                conn.inner.handle_event(reply);
            }
        }
        while let Some(event) = conn.inner.poll() {
            on_event(self.latest, conn, id, event, &mut self.events);
        }
        if conn.inner.is_drained() {
            let handle = conn.handle;
            if !conn.ended {
                self.events.push_back(QuicEvent::Closed {
                    conn: id,
                    cause: CloseCause::Protocol("connection drained".into()),
                });
            }
            self.conns.remove(&id);
            self.by_handle.remove(&handle);
            self.order.retain(|&o| o != id);
        }
    }

    /// The caller's `now` on quinn-proto's clock; time never runs
    /// backwards, whatever the caller passes.
    fn at(&mut self, now: Instant) -> std::time::Instant {
        let at = self
            .origin
            .checked_add(std::time::Duration::from_micros(now.as_micros()))
            .unwrap_or(self.origin)
            .max(self.latest);
        self.latest = at;
        at
    }

    /// Rounded up, so a caller woken at the returned instant is never
    /// before quinn-proto's deadline.
    fn to_core(&self, at: std::time::Instant) -> Instant {
        let since = at.saturating_duration_since(self.origin);
        let micros = u64::try_from(since.as_micros()).unwrap_or(u64::MAX);
        let rounded = if since.subsec_nanos().is_multiple_of(1000) {
            micros
        } else {
            micros.saturating_add(1)
        };
        Instant::from_micros(rounded)
    }
}
