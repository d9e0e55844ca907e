//! [`QuicLinks`]: veil links over the connections of a [`QuicTransport`].
//!
//! Each link is opened with circuit streams
//! ([`OpenLink::circuit_streams`]): its own frames run on the link stream,
//! each circuit's cells on a stream of its own
//! ([`circuit_streams`](crate::circuit_streams)). On the link stream, the
//! same bounded buffering as veil-mio's TCP connections: at most one read's
//! worth of bytes the node has not consumed (while any are held, the stream
//! is not read and QUIC flow control holds the peer back) and at most one
//! message, or one circuit cell, the streams have not taken (while it is
//! held, the node is told the link has no room, so it gives no more).
//!
//! The node is anything that [`Drive`]s: a [`Node`](veil_core::node::Node),
//! or veil-mio's recording wrapper. Its outputs for QUIC links come back
//! here through [`QuicLinks::on_output`]; a program that runs only QUIC
//! lets [`QuicLinks::drive`] run the whole drain.

use std::collections::HashMap;

use veil_core::identity::{NodeId, Transport};
use veil_core::link::{Cell, LinkRole};
use veil_core::node::{
    drain, DialFailed, DialRequest, Drive, LinkId, OpenLink, Output, PollError, Receive,
    TransportClosed, TransportRoom,
};
use veil_core::time::{Duration, Instant};

use crate::circuit_streams::CircuitStreams;
use crate::transport::{ConnId, QuicEvent, QuicTransport, ReadOutcome, Role};

/// Reads per link per [`pump_reads`](QuicLinks::pump_reads), so one busy
/// peer cannot starve the rest.
const READS_PER_PUMP: usize = 16;

/// Default bytes read from a stream at once (as veil-mio's `READ_CHUNK`).
pub const DEFAULT_READ_CHUNK: usize = 16 * 1024;

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
    /// The node was told this link has no room (something is held).
    told_full: bool,
}

impl Entry {
    fn unsent(&self) -> &[u8] {
        self.tx.get(self.tx_sent..).unwrap_or_default()
    }

    fn holds_outgoing(&self) -> bool {
        !self.unsent().is_empty() || self.circuits.holds_outgoing()
    }
}

/// Links over QUIC connections: dials, link opening, and moving bytes
/// between a [`QuicTransport`] and a node.
#[derive(Debug)]
pub struct QuicLinks {
    links: HashMap<ConnId, Entry>,
    by_link: HashMap<LinkId, ConnId>,
    dials: HashMap<ConnId, PendingDial>,
    dial_timeout: Duration,
    read_buf: Box<[u8]>,
}

impl Default for QuicLinks {
    fn default() -> Self {
        QuicLinks::new(Duration::from_secs(5), DEFAULT_READ_CHUNK)
    }
}

impl QuicLinks {
    /// Links whose dials give up after `dial_timeout`, reading `read_chunk`
    /// bytes at once.
    pub fn new(dial_timeout: Duration, read_chunk: usize) -> Self {
        QuicLinks {
            links: HashMap::new(),
            by_link: HashMap::new(),
            dials: HashMap::new(),
            dial_timeout,
            read_buf: vec![0u8; read_chunk.max(1)].into_boxed_slice(),
        }
    }

    /// Answers a dial request of the node: connects, or reports the failure
    /// at once. Returns whether a connect is under way. Requests for another
    /// transport fail.
    pub fn dial<H: Drive>(
        &mut self,
        transport: &mut QuicTransport,
        host: &mut H,
        now: Instant,
        request: DialRequest,
    ) -> bool {
        if request.address.transport != Transport::Quic {
            host.handle(now, DialFailed { request });
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
                host.handle(now, DialFailed { request });
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
    pub fn handle_event<H: Drive>(
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
                let anonymous = dial.and_then(|d| d.request).is_some_and(|r| r.anonymous);
                let opened = transport.channel_binding(conn).and_then(|binding| {
                    let open = OpenLink {
                        role: link_role,
                        expected_peer: expected,
                        transport: Some(Transport::Quic),
                        circuit_streams: Some(binding),
                        remote: transport.remote(conn).map(|a| a.ip()),
                        anonymous,
                    };
                    host.handle(now, open).ok()
                });
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
                                told_full: false,
                            },
                        );
                    }
                    None => {
                        transport.abort(now, conn);
                        if let Some(request) = dial.and_then(|d| d.request) {
                            host.handle(now, DialFailed { request });
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
                self.flush(transport, host, now, conn);
            }
            QuicEvent::CircuitReadable(conn, stream) => {
                if let Some(entry) = self.links.get_mut(&conn) {
                    entry.circuits.on_readable(stream);
                }
            }
            QuicEvent::CircuitWritable(conn, _) => self.flush(transport, host, now, conn),
            QuicEvent::Closed { conn, .. } => {
                if let Some(dial) = self.dials.remove(&conn) {
                    if let Some(request) = dial.request {
                        host.handle(now, DialFailed { request });
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

    /// Feeds every link's held and newly read bytes to the node, and its
    /// circuit streams' cells. Drain the node afterwards (a full node is
    /// the usual reason bytes stay held) and call again while
    /// [`has_work`](Self::has_work).
    pub fn pump_reads<H: Drive>(
        &mut self,
        transport: &mut QuicTransport,
        host: &mut H,
        now: Instant,
    ) {
        let conns: Vec<ConnId> = self.links.keys().copied().collect();
        for &conn in &conns {
            self.pump_link_reads(transport, host, now, conn);
            self.pump_circuit_reads(transport, host, now, conn);
        }
    }

    /// Takes the node outputs that belong to QUIC links: link bytes, circuit
    /// cells, dials to QUIC addresses, and `LinkClosed` of a QUIC link
    /// (whose connection then closes gracefully). Returns every other
    /// output, and those too after acting on them when the caller must see
    /// them (`LinkClosed`).
    pub fn on_output<'b, H: Drive>(
        &mut self,
        transport: &mut QuicTransport,
        host: &mut H,
        now: Instant,
        output: Output<'b>,
    ) -> Option<Output<'b>> {
        match output {
            Output::Transmit { link, bytes } if self.by_link.contains_key(&link) => {
                self.write_link(transport, host, now, link, bytes);
                None
            }
            Output::StreamCell { link, cell, .. } => {
                if let Ok(cell) = <&Cell>::try_from(cell) {
                    self.write_cell(transport, host, now, link, cell);
                }
                None
            }
            Output::Dial(request) if request.address.transport == Transport::Quic => {
                self.dial(transport, host, now, request);
                None
            }
            Output::Event(veil_core::node::Event::LinkClosed { link, .. }) => {
                self.link_closed(transport, now, link);
                Some(output)
            }
            other => Some(other),
        }
    }

    /// Runs a node that has only QUIC links: transport events in, reads,
    /// one drain (QUIC outputs handled here, the rest handed to `on_output`),
    /// held bytes retried. Returns when the node next needs its timers
    /// (handle [`Timeout`](veil_core::node::Timeout) then, or at the next
    /// event). A program with TCP links too (veil-mio) calls the parts
    /// itself inside its own drain.
    pub fn drive<H: Drive>(
        &mut self,
        transport: &mut QuicTransport,
        host: &mut H,
        now: Instant,
        buf: &mut [u8],
        mut on_output: impl FnMut(&mut H, Output<'_>),
    ) -> Result<Instant, PollError> {
        while let Some(event) = transport.poll_event() {
            self.handle_event(transport, host, now, event);
        }
        self.expire_dials(transport, host, now);
        let mut deadline;
        let mut rounds = 0;
        loop {
            self.pump_reads(transport, host, now);
            deadline = drain(host, now, buf, |host, output| {
                if let Some(output) = self.on_output(transport, host, now, output) {
                    on_output(host, output);
                }
            })?;
            rounds += 1;
            if !self.has_work() || rounds == 4 {
                break;
            }
        }
        Ok(deadline)
    }

    fn pump_circuit_reads<H: Drive>(
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

    fn pump_link_reads<H: Drive>(
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
                let Ok(consumed) = host.handle(
                    now,
                    Receive {
                        link,
                        bytes: &entry.rx,
                    },
                ) else {
                    // The node dropped the link already.
                    transport.abort(now, conn);
                    self.forget(conn);
                    return;
                };
                let consumed = consumed.min(entry.rx.len());
                entry.rx.drain(..consumed);
                if !entry.rx.is_empty() {
                    // The node is full: its owner drains it, we retry.
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
                    let Ok(consumed) = host.handle(now, Receive { link, bytes: data }) else {
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
            let _ = host.handle(now, TransportClosed { link });
        }
    }

    /// Writes one link message to its link stream; what the stream does
    /// not take is kept, and the node told the link has no room.
    fn write_link<H: Drive>(
        &mut self,
        transport: &mut QuicTransport,
        host: &mut H,
        now: Instant,
        link: LinkId,
        bytes: &[u8],
    ) {
        let Some(&conn) = self.by_link.get(&link) else {
            return;
        };
        let Some(entry) = self.links.get_mut(&conn) else {
            return;
        };
        let written = if entry.writable && entry.unsent().is_empty() {
            match transport.write(conn, bytes) {
                Ok(n) => n,
                Err(_) => {
                    transport.abort(now, conn);
                    self.forget(conn);
                    let _ = host.handle(now, TransportClosed { link });
                    return;
                }
            }
        } else {
            0
        };
        if written < bytes.len() {
            entry
                .tx
                .extend_from_slice(bytes.get(written..).unwrap_or_default());
            entry.writable = false;
        }
        self.update_room(host, now, conn);
    }

    /// Writes one circuit cell to its circuit's stream.
    fn write_cell<H: Drive>(
        &mut self,
        transport: &mut QuicTransport,
        host: &mut H,
        now: Instant,
        link: LinkId,
        cell: &Cell,
    ) {
        let Some(&conn) = self.by_link.get(&link) else {
            return;
        };
        let Some(entry) = self.links.get_mut(&conn) else {
            return;
        };
        if !entry.circuits.holds_outgoing() {
            entry.circuits.write_cell(transport, conn, cell);
        } else {
            // The node gave a cell despite no room: it cannot, by the
            // room it was told; keep the order safe by refusing the link.
            transport.abort(now, conn);
            self.forget(conn);
            let _ = host.handle(now, TransportClosed { link });
            return;
        }
        self.update_room(host, now, conn);
    }

    /// Retries what `conn`'s link holds (link bytes, a circuit cell), and
    /// tells the node the link has room again once it is all out.
    pub fn flush<H: Drive>(
        &mut self,
        transport: &mut QuicTransport,
        host: &mut H,
        now: Instant,
        conn: ConnId,
    ) {
        let Some(entry) = self.links.get_mut(&conn) else {
            return;
        };
        if !entry.unsent().is_empty() && entry.writable {
            match transport.write(conn, entry.unsent()) {
                Ok(n) => {
                    entry.tx_sent = entry.tx_sent.saturating_add(n);
                    if entry.unsent().is_empty() {
                        entry.tx.clear();
                        entry.tx_sent = 0;
                    } else {
                        entry.writable = false;
                    }
                }
                Err(_) => {
                    let link = entry.link;
                    transport.abort(now, conn);
                    self.forget(conn);
                    let _ = host.handle(now, TransportClosed { link });
                    return;
                }
            }
        }
        entry.circuits.flush(transport, conn);
        self.update_room(host, now, conn);
    }

    /// Tells the node whether `conn`'s link has room, when that changed.
    fn update_room<H: Drive>(&mut self, host: &mut H, now: Instant, conn: ConnId) {
        let Some(entry) = self.links.get_mut(&conn) else {
            return;
        };
        let full = entry.holds_outgoing();
        if full != entry.told_full {
            entry.told_full = full;
            let room = if full {
                TransportRoom::none(entry.link)
            } else {
                TransportRoom::unlimited(entry.link)
            };
            let _ = host.handle(now, room);
        }
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
    pub fn expire_dials<H: Drive>(
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
                    host.handle(now, DialFailed { request });
                }
            }
        }
    }

    /// The earliest dial deadline, for the loop's wait.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.dials.values().map(|d| d.deadline).min()
    }

    /// Whether reading left work undone (bytes the node did not take, or
    /// a budget ran out), so the loop must not sleep.
    pub fn has_work(&self) -> bool {
        self.links
            .values()
            .any(|e| !e.rx.is_empty() || (e.readable && !e.read_closed) || e.circuits.has_work())
    }

    /// The connections carrying links.
    pub fn connections(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.links.keys().copied()
    }

    /// Whether `link` runs over one of these connections.
    pub fn carries(&self, link: LinkId) -> bool {
        self.by_link.contains_key(&link)
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
