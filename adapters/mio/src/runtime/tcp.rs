//! TCP: accepting, dialling, and moving bytes between sockets and the node.

use std::io;
use std::net::{Shutdown, SocketAddr};

use mio::net::TcpStream;
use mio::{Interest, Token};
use veil_core::identity::{NodeId, Transport};
use veil_core::node::{
    DialFailed, DialRequest, Drive, LinkId, OpenLink, Receive, RecordPeerFailure, TransportClosed,
    TransportRoom,
};
use veil_core::time::{Duration as CoreDuration, Instant};

use super::io::Io;
use crate::connection::{Connection, ReadOutcome, WriteOutcome};
use crate::dial::{DialFailure, DialOrigin, PendingDial};
use crate::error::DialError;

/// Connections accepted per turn, so a flood of them cannot starve links.
const ACCEPTS_PER_TURN: usize = 64;

/// Reads per connection per round, so one busy peer cannot starve the rest.
const READS_PER_ROUND: usize = 16;

/// Dial failures kept for the program; the oldest go first.
const MAX_DIAL_FAILURES: usize = 64;

/// What to wait for on a connection, dialled or accepted.
const CONNECTION_INTEREST: Interest = Interest::READABLE.add(Interest::WRITABLE);

impl Io {
    /// Starts a dial for the program.
    pub(super) fn dial_for_program(
        &mut self,
        now: Instant,
        addr: SocketAddr,
        expected: Option<NodeId>,
    ) -> Result<(), DialError> {
        if self.closing {
            return Err(DialError::ShuttingDown);
        }
        let (token, stream) = self.connect(addr)?;
        let deadline = self.dial_deadline(now);
        self.dials.insert(
            token,
            PendingDial {
                stream,
                addr,
                expected,
                origin: DialOrigin::Program,
                deadline,
            },
        );
        Ok(())
    }

    /// Starts a TCP dial the node asked for; a failure to start goes back
    /// to the node at once.
    pub(super) fn start_node_dial<N: Drive>(
        &mut self,
        node: &mut N,
        now: Instant,
        request: DialRequest,
    ) {
        let started = match request.address.transport {
            Transport::Tcp => self.connect(request.address.socket),
            other => Err(DialError::UnsupportedTransport(other)),
        };
        match started {
            Ok((token, stream)) => {
                let deadline = self.dial_deadline(now);
                self.dials.insert(
                    token,
                    PendingDial {
                        stream,
                        addr: request.address.socket,
                        expected: request.peer,
                        origin: DialOrigin::Node(request),
                        deadline,
                    },
                );
            }
            Err(_) => {
                node.handle(now, DialFailed { request });
            }
        }
    }

    fn dial_deadline(&self, now: Instant) -> Instant {
        let micros = u64::try_from(self.options.dial_timeout.as_micros()).unwrap_or(u64::MAX);
        now.saturating_add(CoreDuration::from_micros(micros))
    }

    /// A non-blocking connect, registered with the poller.
    fn connect(&mut self, addr: SocketAddr) -> Result<(Token, TcpStream), DialError> {
        if self.dials.len() >= self.options.max_pending_dials {
            return Err(DialError::TooManyDials {
                limit: self.options.max_pending_dials,
            });
        }
        let source = self
            .listener
            .local_addr()
            .ok()
            .map(|a| a.ip())
            .filter(|ip| self.options.bind_outgoing && !ip.is_unspecified());
        let mut stream = crate::tcp_socket::connect(addr, self.options.tcp_buffer, source)
            .map_err(DialError::Connect)?;
        let token = self.take_token();
        self.poll
            .registry()
            .register(&mut stream, token, CONNECTION_INTEREST)
            .map_err(DialError::Register)?;
        Ok((token, stream))
    }

    /// Accepts waiting connections, each as an accepted link.
    pub(super) fn accept<N: Drive>(&mut self, node: &mut N, now: Instant) {
        if !self.accept_pending {
            return;
        }
        for _ in 0..ACCEPTS_PER_TURN {
            match self.listener.accept() {
                // Shutting down: dropping the stream refuses it.
                Ok(_) if self.closing => {}
                Ok((stream, addr)) => self.adopt_inbound(node, stream, addr, now),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.accept_pending = false;
                    return;
                }
                // One bad connection in the backlog; the rest may be fine.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted
                            | io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::ConnectionReset
                    ) => {}
                // Out of descriptors or memory: stop until the listener is
                // ready again rather than spin on the error.
                Err(_) => {
                    self.accept_pending = false;
                    return;
                }
            }
        }
    }

    fn adopt_inbound<N: Drive>(
        &mut self,
        node: &mut N,
        mut stream: TcpStream,
        addr: SocketAddr,
        now: Instant,
    ) {
        // A full table, or a network that holds its share of it, refuses
        // the connection: dropping the stream closes it.
        let Ok(link) = node.handle(now, OpenLink::accepted(Transport::Tcp, addr.ip())) else {
            return;
        };
        let token = self.take_token();
        if self
            .poll
            .registry()
            .register(&mut stream, token, CONNECTION_INTEREST)
            .is_err()
        {
            let _ = node.handle(now, TransportClosed { link });
            return;
        }
        self.insert_connection(token, stream, addr, link);
    }

    fn insert_connection(
        &mut self,
        token: Token,
        stream: TcpStream,
        addr: SocketAddr,
        link: LinkId,
    ) {
        // Links carry small messages that should not wait for Nagle; an
        // error only costs latency.
        let _ = stream.set_nodelay(true);
        if let (Some(capture), Ok(local)) = (&mut self.capture, stream.local_addr()) {
            capture.link_opened(link, local, addr);
        }
        self.by_link.insert(link, token);
        self.connections
            .insert(token, Connection::new(stream, link, addr));
    }

    /// A dial's socket became ready: connected, failed, or not yet.
    pub(super) fn finish_dial<N: Drive>(&mut self, node: &mut N, token: Token, now: Instant) {
        let Some(dial) = self.dials.get(&token) else {
            return;
        };
        let result = match dial.stream.take_error() {
            Ok(Some(e)) | Err(e) => Err(e),
            Ok(None) => match dial.stream.peer_addr() {
                Ok(_) => Ok(()),
                // Spurious readiness: still connecting.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::NotConnected | io::ErrorKind::WouldBlock
                    ) =>
                {
                    return;
                }
                Err(e) => Err(e),
            },
        };
        let Some(dial) = self.dials.remove(&token) else {
            return;
        };
        match result {
            Err(e) => self.fail_dial(node, dial, DialError::Connect(e), now),
            Ok(()) => match node.handle(
                now,
                OpenLink {
                    // The node's own circuits go over anonymous links.
                    anonymous: matches!(dial.origin, DialOrigin::Node(r) if r.anonymous),
                    ..OpenLink::dialled(dial.expected, Transport::Tcp, dial.addr.ip())
                },
            ) {
                Ok(link) => {
                    let PendingDial { stream, addr, .. } = dial;
                    self.insert_connection(token, stream, addr, link);
                }
                Err(_) => self.fail_dial(node, dial, DialError::LinkTableFull, now),
            },
        }
    }

    /// Gives up on dials past their deadline.
    pub(super) fn expire_dials<N: Drive>(&mut self, node: &mut N, now: Instant) {
        let expired: Vec<Token> = self
            .dials
            .iter()
            .filter(|(_, d)| d.deadline <= now)
            .map(|(&t, _)| t)
            .collect();
        for token in expired {
            if let Some(dial) = self.dials.remove(&token) {
                let after = self.options.dial_timeout;
                self.fail_dial(node, dial, DialError::TimedOut { after }, now);
            }
        }
        #[cfg(feature = "quic")]
        if let Some(q) = &mut self.quic {
            q.links.expire_dials(q.socket.transport_mut(), node, now);
        }
    }

    /// Closes a failed dial's socket and tells whoever asked for it.
    pub(super) fn fail_dial<N: Drive>(
        &mut self,
        node: &mut N,
        mut dial: PendingDial,
        error: DialError,
        now: Instant,
    ) {
        let _ = self.poll.registry().deregister(&mut dial.stream);
        match dial.origin {
            DialOrigin::Program => {
                if let Some(peer) = dial.expected {
                    node.handle(now, RecordPeerFailure { peer });
                }
                if self.dial_failures.len() >= MAX_DIAL_FAILURES {
                    self.dial_failures.pop_front();
                }
                self.dial_failures.push_back(DialFailure {
                    addr: dial.addr,
                    expected: dial.expected,
                    error,
                });
            }
            DialOrigin::Node(request) => {
                node.handle(now, DialFailed { request });
            }
        }
    }

    /// Takes one link message for its connection, which writes it with the
    /// round's others ([`flush_connections`](Self::flush_connections)) or at once
    /// if enough are waiting; what the socket does not take is kept and the
    /// node told the link has no room until it is out.
    pub(super) fn write<N: Drive>(
        &mut self,
        node: &mut N,
        now: Instant,
        link: LinkId,
        bytes: &[u8],
    ) {
        let Some(&token) = self.by_link.get(&link) else {
            return;
        };
        let Some(conn) = self.connections.get_mut(&token) else {
            return;
        };
        if !conn.can_take_message() {
            // The node gave a message despite no room: the connection's
            // order cannot be kept, so it goes.
            self.transport_closed(node, token, link, now);
            return;
        }
        if let Some(capture) = &mut self.capture {
            capture.sent(link, bytes);
        }
        match conn.send(bytes) {
            WriteOutcome::Drained | WriteOutcome::Gathered => {}
            WriteOutcome::Blocked => {
                conn.told_full = true;
                let _ = node.handle(now, TransportRoom::none(link));
            }
            WriteOutcome::Failed => self.transport_closed(node, token, link, now),
        }
    }

    /// Writes what writable connections hold, in one call each: the
    /// messages gathered this round, and the rest of what a full socket
    /// did not take before. The node hears of each change: a link whose
    /// socket does not take it all has no room, and one that was full has
    /// room again once it is out.
    pub(super) fn flush_connections<N: Drive>(&mut self, node: &mut N, now: Instant) {
        let tokens: Vec<Token> = self
            .connections
            .iter()
            .filter(|(_, c)| c.writable && (c.told_full || (c.has_gathered() && !c.write_failed)))
            .map(|(&t, _)| t)
            .collect();
        for token in tokens {
            let Some(conn) = self.connections.get_mut(&token) else {
                continue;
            };
            let link = conn.link;
            match conn.flush() {
                WriteOutcome::Drained | WriteOutcome::Gathered => {
                    if conn.told_full {
                        conn.told_full = false;
                        let _ = node.handle(now, TransportRoom::unlimited(link));
                    }
                }
                WriteOutcome::Blocked => {
                    if !conn.told_full {
                        conn.told_full = true;
                        let _ = node.handle(now, TransportRoom::none(link));
                    }
                }
                WriteOutcome::Failed => self.transport_closed(node, token, link, now),
            }
        }
    }

    /// Writes what connections hold from earlier, where the socket became
    /// writable (QUIC's too), and tells the node the link has room again
    /// once it is out.
    pub(super) fn flush_held<N: Drive>(&mut self, node: &mut N, now: Instant) {
        self.flush_connections(node, now);
        #[cfg(feature = "quic")]
        self.flush_quic(node, now);
    }

    /// Feeds every connection's held and newly read bytes to the node;
    /// returns whether the node took any.
    pub(super) fn read<N: Drive>(&mut self, node: &mut N, now: Instant) -> bool {
        let tokens: Vec<Token> = self.connections.keys().copied().collect();
        let mut progressed = false;
        for token in tokens {
            progressed |= self.read_one(node, token, now);
        }
        #[cfg(feature = "quic")]
        {
            progressed |= self.read_quic(node, now);
        }
        progressed
    }

    /// Feeds bytes held back earlier, then reads and feeds more, until the
    /// socket is empty, the budget is spent, or the node takes no more.
    fn read_one<N: Drive>(&mut self, node: &mut N, token: Token, now: Instant) -> bool {
        let mut progressed = false;
        let mut reads = 0usize;
        loop {
            let Some(conn) = self.connections.get_mut(&token) else {
                return progressed;
            };
            let link = conn.link;
            if !conn.unconsumed().is_empty() {
                let bytes = conn.unconsumed();
                let Ok(consumed) = node.handle(now, Receive { link, bytes }) else {
                    // The link is gone already; its socket has no use.
                    self.drop_connection(token);
                    return progressed;
                };
                conn.consume(consumed);
                progressed |= consumed > 0;
                if !conn.unconsumed().is_empty() {
                    // The node is full: the drain makes room, then we retry.
                    break;
                }
                continue;
            }
            if !conn.wants_read() || reads == READS_PER_ROUND {
                break;
            }
            reads = reads.saturating_add(1);
            match conn.read(&mut self.read_buf) {
                ReadOutcome::Data(n) => {
                    let bytes = self.read_buf.get(..n).unwrap_or_default();
                    if let Some(capture) = &mut self.capture {
                        capture.received(link, bytes);
                    }
                    let Ok(consumed) = node.handle(now, Receive { link, bytes }) else {
                        self.drop_connection(token);
                        return progressed;
                    };
                    progressed |= consumed > 0;
                    conn.keep_unconsumed(bytes.get(consumed..).unwrap_or_default());
                }
                ReadOutcome::WouldBlock | ReadOutcome::Closed => break,
            }
        }
        let ended = self
            .connections
            .get(&token)
            .filter(|c| c.read_closed && c.unconsumed().is_empty())
            .map(|c| c.link);
        if let Some(link) = ended {
            self.transport_closed(node, token, link, now);
        }
        progressed
    }

    /// The connection under `link` ended: tell the node and drop it.
    fn transport_closed<N: Drive>(
        &mut self,
        node: &mut N,
        token: Token,
        link: LinkId,
        now: Instant,
    ) {
        // An unknown link was already closed by the node; nothing to tell.
        let _ = node.handle(now, TransportClosed { link });
        self.drop_connection(token);
    }

    /// The node closed `link`: send what is held (usually its `Close`
    /// frame), best effort, and close the connection.
    pub(super) fn close_transport(&mut self, link: LinkId) {
        let Some(&token) = self.by_link.get(&link) else {
            return;
        };
        if let Some(conn) = self.connections.get_mut(&token) {
            if conn.writable && !conn.write_failed {
                let _ = conn.flush();
            }
            // Errors here mean the peer is gone already, which is the goal.
            let _ = conn.stream.shutdown(Shutdown::Write);
        }
        self.drop_connection(token);
    }

    /// Forgets a connection; dropping the stream closes the socket.
    pub(super) fn drop_connection(&mut self, token: Token) {
        if let Some(mut conn) = self.connections.remove(&token) {
            self.by_link.remove(&conn.link);
            if let Some(capture) = &mut self.capture {
                capture.link_closed(conn.link);
            }
            // Closing the socket deregisters it too; this just says so early.
            let _ = self.poll.registry().deregister(&mut conn.stream);
        }
    }
}
