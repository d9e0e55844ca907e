//! [`QuicLinks`]: veil links over the connections of a [`QuicTransport`].
//!
//! Each link is opened with circuit streams
//! ([`Node::open_stream_link`]): its own frames run on the link stream,
//! each circuit's cells on a stream of its own
//! ([`circuit_streams`](crate::circuit_streams)). On the link stream, the
//! same bounded buffering as veil-mio's TCP connections: at most one read's
//! worth of bytes the node has not consumed (while any are held, the stream
//! is not read and QUIC flow control holds the peer back) and at most one
//! message the stream has not taken (while it is held, the node is not
//! asked for more).

use std::collections::HashMap;

use veil_core::identity::{NodeId, Transport};
use veil_core::link::{Cell, LinkRole, CHANNEL_BINDING_LEN};
use veil_core::message::MessageSlot;
use veil_core::node::{DialRequest, LinkId, LinkSlot, Node, StreamCellError};
use veil_core::time::{Duration, Instant};

use crate::circuit_streams::CircuitStreams;
use crate::transport::{ConnId, QuicEvent, QuicTransport, ReadOutcome, Role};

/// Reads per link per [`pump`](QuicLinks::pump), so one busy peer cannot
/// starve the rest.
const READS_PER_PUMP: usize = 16;

/// Messages written per link per [`pump`](QuicLinks::pump).
const WRITES_PER_PUMP: usize = 16;

/// Default bytes read from a stream at once (as veil-mio's `READ_CHUNK`).
pub const DEFAULT_READ_CHUNK: usize = 16 * 1024;

/// Default size of the buffer the node writes a message into (as
/// veil-mio's `TRANSMIT_BUFFER`: a full 16 KiB message and room to spare).
pub const DEFAULT_TRANSMIT_BUFFER: usize = 16 * 1024 + 64;

/// What [`QuicLinks`] needs of a node. Implemented for the core's
/// [`Node`]; a wrapper (veil-mio's `TracedNode`, which records every call)
/// implements it by forwarding.
pub trait LinkHost {
    /// A QUIC connection is up: open a link with circuit streams over it
    /// ([`Node::open_stream_link`] with [`Transport::Quic`] and the
    /// connection's channel binding). `None` if the node cannot take
    /// another link.
    fn open_quic_link(
        &mut self,
        now: Instant,
        role: LinkRole,
        expected: Option<NodeId>,
        channel_binding: [u8; CHANNEL_BINDING_LEN],
    ) -> Option<LinkId>;
    /// A whole cell arrived on one of `link`'s circuit streams
    /// ([`Node::handle_stream_cell`]).
    fn handle_stream_cell(
        &mut self,
        now: Instant,
        link: LinkId,
        cell: &Cell,
    ) -> Result<(), StreamCellError>;
    /// The next circuit cell of `link` ([`Node::poll_stream_cell`]).
    fn poll_stream_cell(&mut self, now: Instant, link: LinkId) -> Option<Cell>;
    /// Bytes arrived on `link`; how many were consumed, `None` if the link
    /// is unknown ([`Node::handle_data`]).
    fn handle_data(&mut self, now: Instant, link: LinkId, data: &[u8]) -> Option<usize>;
    /// The connection under `link` ended ([`Node::handle_transport_closed`]).
    fn transport_closed(&mut self, now: Instant, link: LinkId);
    /// The next message of `link` ([`Node::poll_link_transmit`]).
    fn poll_link_transmit(&mut self, now: Instant, link: LinkId, buf: &mut [u8]) -> Option<usize>;
    /// A dial the node asked for failed ([`Node::dial_failed`]).
    fn dial_failed(&mut self, now: Instant, request: &DialRequest);
}

impl<
        S,
        MB,
        const RX: usize,
        const TXQ: usize,
        const EVENTS: usize,
        const PEERS: usize,
        const RELAYED: usize,
        const OWN: usize,
        const MSG: usize,
    > LinkHost for Node<S, MB, RX, TXQ, EVENTS, PEERS, RELAYED, OWN, MSG>
where
    S: AsRef<[LinkSlot<RX, TXQ>]> + AsMut<[LinkSlot<RX, TXQ>]>,
    MB: AsRef<[MessageSlot<MSG>]> + AsMut<[MessageSlot<MSG>]>,
{
    fn open_quic_link(
        &mut self,
        now: Instant,
        role: LinkRole,
        expected: Option<NodeId>,
        channel_binding: [u8; CHANNEL_BINDING_LEN],
    ) -> Option<LinkId> {
        self.open_stream_link(now, role, expected, Transport::Quic, channel_binding)
            .ok()
    }

    fn handle_stream_cell(
        &mut self,
        now: Instant,
        link: LinkId,
        cell: &Cell,
    ) -> Result<(), StreamCellError> {
        Node::handle_stream_cell(self, now, link, cell)
    }

    fn poll_stream_cell(&mut self, now: Instant, link: LinkId) -> Option<Cell> {
        Node::poll_stream_cell(self, now, link)
    }

    fn handle_data(&mut self, now: Instant, link: LinkId, data: &[u8]) -> Option<usize> {
        Node::handle_data(self, now, link, data).ok()
    }

    fn transport_closed(&mut self, now: Instant, link: LinkId) {
        // An unknown link was closed by the node already: nothing to tell.
        let _ = self.handle_transport_closed(now, link);
    }

    fn poll_link_transmit(&mut self, now: Instant, link: LinkId, buf: &mut [u8]) -> Option<usize> {
        Node::poll_link_transmit(self, now, link, buf)
    }

    fn dial_failed(&mut self, now: Instant, request: &DialRequest) {
        Node::dial_failed(self, now, request);
    }
}

/// A dial in progress.
#[derive(Debug, Clone, Copy)]
struct PendingDial {
    /// The node's request, to report a failure back; `None` for a dial the
    /// program started.
    request: Option<DialRequest>,
    expected: Option<NodeId>,
    deadline: Instant,
}

/// A connection carrying a link.
#[derive(Debug)]
struct Entry {
    link: LinkId,
    /// Bytes read but not consumed by the node yet.
    rx: Vec<u8>,
    /// The unsent rest of one message; `tx_sent` bytes of it went already.
    tx: Vec<u8>,
    tx_sent: usize,
    readable: bool,
    writable: bool,
    /// The peer finished the stream or the connection failed; the node is
    /// told once the bytes before it are consumed.
    read_closed: bool,
    /// The connection ended: what quinn-proto still holds of the stream is
    /// read, then the stream counts as closed.
    lost: bool,
    /// The link's circuit streams.
    circuits: CircuitStreams,
}

impl Entry {
    fn unsent(&self) -> &[u8] {
        self.tx.get(self.tx_sent..).unwrap_or_default()
    }
}

/// Links over QUIC connections: dials, link opening, and the byte pump
/// between a [`QuicTransport`] and a [`LinkHost`].
#[derive(Debug)]
pub struct QuicLinks {
    links: HashMap<ConnId, Entry>,
    by_link: HashMap<LinkId, ConnId>,
    dials: HashMap<ConnId, PendingDial>,
    dial_timeout: Duration,
    transmit_buf: Box<[u8]>,
    read_buf: Box<[u8]>,
}

impl Default for QuicLinks {
    fn default() -> Self {
        QuicLinks::new(
            Duration::from_secs(5),
            DEFAULT_READ_CHUNK,
            DEFAULT_TRANSMIT_BUFFER,
        )
    }
}

impl QuicLinks {
    /// Links whose dials give up after `dial_timeout`, reading `read_chunk`
    /// bytes at once and asking the node for messages of up to
    /// `transmit_buffer` bytes.
    pub fn new(dial_timeout: Duration, read_chunk: usize, transmit_buffer: usize) -> Self {
        QuicLinks {
            links: HashMap::new(),
            by_link: HashMap::new(),
            dials: HashMap::new(),
            dial_timeout,
            transmit_buf: vec![0u8; transmit_buffer.max(1)].into_boxed_slice(),
            read_buf: vec![0u8; read_chunk.max(1)].into_boxed_slice(),
        }
    }

    /// Answers a dial request of the node: connects, or reports the failure
    /// at once. Returns whether a connect is under way. Requests for another
    /// transport fail.
    pub fn dial<H: LinkHost + ?Sized>(
        &mut self,
        transport: &mut QuicTransport,
        host: &mut H,
        now: Instant,
        request: DialRequest,
    ) -> bool {
        if request.address.transport != Transport::Quic {
            host.dial_failed(now, &request);
            return false;
        }
        match transport.connect(now, request.address.socket) {
            Ok(conn) => {
                self.dials.insert(
                    conn,
                    PendingDial {
                        request: Some(request),
                        expected: request.peer,
                        deadline: now.saturating_add(self.dial_timeout),
                    },
                );
                true
            }
            Err(_) => {
                host.dial_failed(now, &request);
                false
            }
        }
    }

    /// Connects to `addr` for the program (not the node's request):
    /// `expected` is the node id the peer must prove, or `None`.
    pub fn dial_address(
        &mut self,
        transport: &mut QuicTransport,
        now: Instant,
        addr: std::net::SocketAddr,
        expected: Option<NodeId>,
    ) -> Result<ConnId, crate::ConnectError> {
        let conn = transport.connect(now, addr)?;
        self.dials.insert(
            conn,
            PendingDial {
                request: None,
                expected,
                deadline: now.saturating_add(self.dial_timeout),
            },
        );
        Ok(conn)
    }

    /// Acts on one transport event. Call for every event
    /// [`QuicTransport::poll_event`] gives.
    pub fn handle_event<H: LinkHost + ?Sized>(
        &mut self,
        transport: &mut QuicTransport,
        host: &mut H,
        now: Instant,
        event: QuicEvent,
    ) {
        match event {
            QuicEvent::Connected { conn, role, .. } => {
                let (link_role, dial) = match role {
                    Role::Dialler => (LinkRole::Initiator, self.dials.remove(&conn)),
                    Role::Listener => (LinkRole::Responder, None),
                };
                let expected = dial.and_then(|d| d.expected);
                let opened = transport
                    .channel_binding(conn)
                    .and_then(|binding| host.open_quic_link(now, link_role, expected, binding));
                match opened {
                    Some(link) => {
                        self.by_link.insert(link, conn);
                        self.links.insert(
                            conn,
                            Entry {
                                link,
                                rx: Vec::new(),
                                tx: Vec::new(),
                                tx_sent: 0,
                                readable: true,
                                writable: true,
                                read_closed: false,
                                lost: false,
                                circuits: CircuitStreams::default(),
                            },
                        );
                    }
                    None => {
                        transport.abort(now, conn);
                        if let Some(request) = dial.and_then(|d| d.request) {
                            host.dial_failed(now, &request);
                        }
                    }
                }
            }
            QuicEvent::Readable(conn) => {
                if let Some(entry) = self.links.get_mut(&conn) {
                    entry.readable = true;
                }
            }
            QuicEvent::Writable(conn) => {
                if let Some(entry) = self.links.get_mut(&conn) {
                    entry.writable = true;
                }
            }
            QuicEvent::CircuitReadable(conn, stream) => {
                if let Some(entry) = self.links.get_mut(&conn) {
                    entry.circuits.on_readable(stream);
                }
            }
            // The next pump retries a stream that did not take all of a cell.
            QuicEvent::CircuitWritable(..) => {}
            QuicEvent::Closed { conn, .. } => {
                if let Some(dial) = self.dials.remove(&conn) {
                    if let Some(request) = dial.request {
                        host.dial_failed(now, &request);
                    }
                }
                if let Some(entry) = self.links.get_mut(&conn) {
                    // Bytes that arrived before the end (say, the peer's
                    // `Close` frame) still go to the node: the next pump
                    // reads what is left, then reports the end.
                    entry.lost = true;
                    entry.readable = true;
                }
            }
        }
    }

    /// Moves bytes both ways for every link: feeds held and newly read bytes
    /// to the node, and writes the node's messages while the streams take
    /// them. Drain the node's events afterwards (a full event queue is the
    /// usual reason bytes stay held) and call again while
    /// [`has_work`](Self::has_work).
    pub fn pump<H: LinkHost + ?Sized>(
        &mut self,
        transport: &mut QuicTransport,
        host: &mut H,
        now: Instant,
    ) {
        let conns: Vec<ConnId> = self.links.keys().copied().collect();
        for &conn in &conns {
            self.pump_reads(transport, host, now, conn);
            self.pump_circuit_reads(transport, host, now, conn);
        }
        for &conn in &conns {
            // The node's queue keeps one order: a link-level cell at its
            // head goes out in a frame before the circuit cells behind it,
            // so alternate until neither side gives anything.
            for _ in 0..WRITES_PER_PUMP {
                let framed = self.pump_writes(transport, host, now, conn);
                let streamed = self.pump_circuit_writes(transport, host, now, conn);
                if !framed && !streamed {
                    break;
                }
            }
        }
    }

    fn pump_circuit_reads<H: LinkHost + ?Sized>(
        &mut self,
        transport: &mut QuicTransport,
        host: &mut H,
        now: Instant,
        conn: ConnId,
    ) {
        let Some(entry) = self.links.get_mut(&conn) else {
            return;
        };
        let link = entry.link;
        if entry
            .circuits
            .pump_reads(transport, host, now, conn, link)
            .is_err()
        {
            transport.abort(now, conn);
            self.forget(conn);
        }
    }

    /// Whether circuit cells went out (or the node has more for the link).
    fn pump_circuit_writes<H: LinkHost + ?Sized>(
        &mut self,
        transport: &mut QuicTransport,
        host: &mut H,
        now: Instant,
        conn: ConnId,
    ) -> bool {
        let Some(entry) = self.links.get_mut(&conn) else {
            return false;
        };
        let link = entry.link;
        entry.circuits.pump_writes(transport, host, now, conn, link)
    }

    fn pump_reads<H: LinkHost + ?Sized>(
        &mut self,
        transport: &mut QuicTransport,
        host: &mut H,
        now: Instant,
        conn: ConnId,
    ) {
        let mut reads = 0usize;
        loop {
            let Some(entry) = self.links.get_mut(&conn) else {
                return;
            };
            let link = entry.link;
            if !entry.rx.is_empty() {
                let Some(consumed) = host.handle_data(now, link, &entry.rx) else {
                    // The node dropped the link already.
                    transport.abort(now, conn);
                    self.forget(conn);
                    return;
                };
                let consumed = consumed.min(entry.rx.len());
                entry.rx.drain(..consumed);
                if !entry.rx.is_empty() {
                    // The node is full: its owner drains events, we retry.
                    break;
                }
                continue;
            }
            if !entry.readable || entry.read_closed || reads == READS_PER_PUMP {
                break;
            }
            reads = reads.saturating_add(1);
            match transport.read(conn, &mut self.read_buf) {
                ReadOutcome::Data(n) => {
                    let data = self.read_buf.get(..n).unwrap_or_default();
                    let Some(consumed) = host.handle_data(now, link, data) else {
                        transport.abort(now, conn);
                        self.forget(conn);
                        return;
                    };
                    entry
                        .rx
                        .extend_from_slice(data.get(consumed..).unwrap_or_default());
                }
                ReadOutcome::WouldBlock => {
                    entry.readable = false;
                    entry.read_closed |= entry.lost;
                }
                ReadOutcome::Finished | ReadOutcome::Closed => entry.read_closed = true,
            }
        }
        let ended = self
            .links
            .get(&conn)
            .filter(|e| e.read_closed && e.rx.is_empty())
            .map(|e| e.link);
        if let Some(link) = ended {
            // The peer finished its side: the link's transport is over.
            transport.close(now, conn);
            self.forget(conn);
            host.transport_closed(now, link);
        }
    }

    /// Writes the link's messages while the link stream takes them;
    /// whether any went out.
    fn pump_writes<H: LinkHost + ?Sized>(
        &mut self,
        transport: &mut QuicTransport,
        host: &mut H,
        now: Instant,
        conn: ConnId,
    ) -> bool {
        let Some(entry) = self.links.get_mut(&conn) else {
            return false;
        };
        let link = entry.link;
        let mut messages = 0usize;
        let mut failed = false;
        while entry.writable && messages < WRITES_PER_PUMP {
            if !entry.unsent().is_empty() {
                match transport.write(conn, entry.unsent()) {
                    Ok(n) => {
                        entry.tx_sent = entry.tx_sent.saturating_add(n);
                        if entry.unsent().is_empty() {
                            entry.tx.clear();
                            entry.tx_sent = 0;
                        } else {
                            entry.writable = false;
                            break;
                        }
                    }
                    Err(_) => {
                        failed = true;
                        break;
                    }
                }
            }
            let Some(len) = host.poll_link_transmit(now, link, &mut self.transmit_buf) else {
                break;
            };
            messages = messages.saturating_add(1);
            let message = self.transmit_buf.get(..len).unwrap_or_default();
            match transport.write(conn, message) {
                Ok(n) if n == message.len() => {}
                Ok(n) => {
                    entry.tx.clear();
                    entry.tx_sent = 0;
                    entry
                        .tx
                        .extend_from_slice(message.get(n..).unwrap_or_default());
                    entry.writable = false;
                    break;
                }
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        if failed {
            transport.abort(now, conn);
            self.forget(conn);
            host.transport_closed(now, link);
            return false;
        }
        messages > 0
    }

    /// The node closed `link` (`Event::LinkClosed`): what is held for it
    /// goes out if the stream takes it, then the connection closes
    /// gracefully (the peer gets the link's `Close` frame).
    pub fn link_closed(&mut self, transport: &mut QuicTransport, now: Instant, link: LinkId) {
        let Some(&conn) = self.by_link.get(&link) else {
            return;
        };
        if let Some(entry) = self.links.get(&conn) {
            if !entry.unsent().is_empty() {
                let _ = transport.write(conn, entry.unsent());
            }
        }
        transport.close(now, conn);
        self.forget(conn);
    }

    /// Gives up on dials past their deadline (the node is told of its own).
    pub fn expire_dials<H: LinkHost + ?Sized>(
        &mut self,
        transport: &mut QuicTransport,
        host: &mut H,
        now: Instant,
    ) {
        let expired: Vec<ConnId> = self
            .dials
            .iter()
            .filter(|(_, d)| d.deadline <= now)
            .map(|(&c, _)| c)
            .collect();
        for conn in expired {
            if let Some(dial) = self.dials.remove(&conn) {
                transport.abort(now, conn);
                if let Some(request) = dial.request {
                    host.dial_failed(now, &request);
                }
            }
        }
    }

    /// The earliest dial deadline, for the loop's wait.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.dials.values().map(|d| d.deadline).min()
    }

    /// Whether a pump left work undone (bytes the node did not take, or a
    /// budget ran out), so the loop must not sleep.
    pub fn has_work(&self) -> bool {
        self.links
            .values()
            .any(|e| !e.rx.is_empty() || (e.readable && !e.read_closed) || e.circuits.has_work())
    }

    /// The link over `conn`.
    pub fn link_of(&self, conn: ConnId) -> Option<LinkId> {
        self.links.get(&conn).map(|e| e.link)
    }

    /// The connection under `link`.
    pub fn conn_of(&self, link: LinkId) -> Option<ConnId> {
        self.by_link.get(&link).copied()
    }

    /// Links carried.
    pub fn link_count(&self) -> usize {
        self.links.len()
    }

    /// Dials in progress.
    pub fn pending_dials(&self) -> usize {
        self.dials.len()
    }

    /// Bytes held for all links, both directions.
    pub fn buffered_bytes(&self) -> usize {
        self.links
            .values()
            .map(|e| {
                e.rx.len()
                    .saturating_add(e.unsent().len())
                    .saturating_add(e.circuits.buffered_bytes())
            })
            .fold(0, usize::saturating_add)
    }

    /// Circuit streams open on the connection under `link`.
    pub fn circuit_streams(&self, link: LinkId) -> usize {
        self.by_link
            .get(&link)
            .and_then(|conn| self.links.get(conn))
            .map_or(0, |e| e.circuits.len())
    }

    fn forget(&mut self, conn: ConnId) {
        if let Some(entry) = self.links.remove(&conn) {
            self.by_link.remove(&entry.link);
        }
    }
}
