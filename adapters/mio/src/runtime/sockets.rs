//! Sockets coming and going: readiness, accepting, dialling.

use std::io;
use std::net::SocketAddr;

use mio::net::TcpStream;
use mio::{Interest, Token};
use veil_core::identity::NodeId;
use veil_core::identity::Transport;
use veil_core::link::LinkRole;
use veil_core::node::LinkId;
use veil_core::time::{Duration as CoreDuration, Instant};

use super::{Runtime, LISTENER, MAX_DIAL_FAILURES};
use crate::connection::Connection;
use crate::dial::{
    core_dial_failed, core_dial_target, poll_core_dial, DialFailure, DialOrigin, PendingDial,
};
use crate::error::DialError;

/// Connections accepted per turn, so a flood of them cannot starve links.
const ACCEPTS_PER_TURN: usize = 64;

/// What to wait for on a connection, dialled or accepted.
const CONNECTION_INTEREST: Interest = Interest::READABLE.add(Interest::WRITABLE);

impl Runtime {
    /// Starts connecting to `addr`; `expected` is the node id the peer must
    /// prove, or `None` to accept whoever answers.
    ///
    /// Returns once the connect is under way. A link opens when it connects
    /// (an `Event::LinkEstablished` follows the handshake); a later failure
    /// shows up in [`poll_dial_failure`](Self::poll_dial_failure).
    pub fn dial(&mut self, addr: SocketAddr, expected: Option<NodeId>) -> Result<(), DialError> {
        if self.closing {
            return Err(DialError::ShuttingDown);
        }
        let now = self.clock.now();
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

    /// Starts the dials the core asks for, while there is room for them.
    pub(super) fn start_core_dials(&mut self, now: Instant) {
        if self.closing {
            // Shutting down: every request fails at once.
            while let Some(request) = poll_core_dial(&mut self.node) {
                core_dial_failed(&mut self.node, now, &request);
            }
            return;
        }
        while self.dials.len() < self.options.max_pending_dials {
            let Some(request) = poll_core_dial(&mut self.node) else {
                return;
            };
            #[cfg(feature = "quic")]
            if request.address.transport == Transport::Quic {
                self.dial_quic_for_core(now, request);
                continue;
            }
            let started = core_dial_target(&request).and_then(|(addr, expected)| {
                self.connect(addr)
                    .map(|(token, stream)| (token, stream, addr, expected))
            });
            match started {
                Ok((token, stream, addr, expected)) => {
                    let deadline = self.dial_deadline(now);
                    self.dials.insert(
                        token,
                        PendingDial {
                            stream,
                            addr,
                            expected,
                            origin: DialOrigin::Core(request),
                            deadline,
                        },
                    );
                }
                Err(_) => core_dial_failed(&mut self.node, now, &request),
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
        let mut stream = crate::tcp_socket::connect(addr, self.options.tcp_buffer)
            .map_err(DialError::Connect)?;
        let token = self.take_token();
        self.poll
            .registry()
            .register(&mut stream, token, CONNECTION_INTEREST)
            .map_err(DialError::Register)?;
        Ok((token, stream))
    }

    /// Records what the last poll reported, and finishes dials it concerns.
    pub(super) fn take_readiness(&mut self, now: Instant) {
        self.ready.clear();
        for event in self.events.iter() {
            let failed = event.is_error();
            self.ready.push((
                event.token(),
                event.is_readable() || event.is_read_closed() || failed,
                event.is_writable() || event.is_write_closed() || failed,
            ));
        }
        let ready = std::mem::take(&mut self.ready);
        for &(token, readable, writable) in &ready {
            if token == LISTENER {
                self.accept_pending = true;
            } else if token == super::quic_token() {
                #[cfg(feature = "quic")]
                self.quic_ready(readable, writable);
            } else if let Some(conn) = self.connections.get_mut(&token) {
                conn.readable |= readable;
                conn.writable |= writable;
            } else if self.dials.contains_key(&token) {
                self.finish_dial(token, now);
            }
        }
        self.ready = ready;
    }

    /// Accepts waiting connections, each as a responder link.
    pub(super) fn accept(&mut self, now: Instant) {
        for _ in 0..ACCEPTS_PER_TURN {
            match self.listener.accept() {
                // Shutting down: dropping the stream refuses it.
                Ok(_) if self.closing => {}
                Ok((stream, addr)) => self.adopt_inbound(stream, addr, now),
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

    fn adopt_inbound(&mut self, mut stream: TcpStream, addr: SocketAddr, now: Instant) {
        // A full table (after evicting the oldest half-open link) refuses
        // the connection: dropping the stream closes it.
        let Ok(link) = self
            .node
            .open_link_over(now, LinkRole::Responder, None, Transport::Tcp)
        else {
            return;
        };
        let token = self.take_token();
        if self
            .poll
            .registry()
            .register(&mut stream, token, CONNECTION_INTEREST)
            .is_err()
        {
            let _ = self.node.handle_transport_closed(now, link);
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
        self.by_link.insert(link, token);
        self.connections
            .insert(token, Connection::new(stream, link, addr));
    }

    /// A dial's socket became ready: connected, failed, or not yet.
    fn finish_dial(&mut self, token: Token, now: Instant) {
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
            Err(e) => self.fail_dial(dial, DialError::Connect(e), now),
            Ok(()) => match self.node.open_link_over(
                now,
                LinkRole::Initiator,
                dial.expected,
                Transport::Tcp,
            ) {
                Ok(link) => {
                    let PendingDial { stream, addr, .. } = dial;
                    self.insert_connection(token, stream, addr, link);
                }
                Err(_) => self.fail_dial(dial, DialError::LinkTableFull, now),
            },
        }
    }

    /// Gives up on dials past their deadline.
    pub(super) fn expire_dials(&mut self, now: Instant) {
        let expired: Vec<Token> = self
            .dials
            .iter()
            .filter(|(_, d)| d.deadline <= now)
            .map(|(&t, _)| t)
            .collect();
        for token in expired {
            if let Some(dial) = self.dials.remove(&token) {
                let after = self.options.dial_timeout;
                self.fail_dial(dial, DialError::TimedOut { after }, now);
            }
        }
    }

    /// Closes a failed dial's socket and tells whoever asked for it.
    pub(super) fn fail_dial(&mut self, mut dial: PendingDial, error: DialError, now: Instant) {
        let _ = self.poll.registry().deregister(&mut dial.stream);
        match dial.origin {
            DialOrigin::Program => {
                if let Some(peer) = dial.expected {
                    self.node.record_peer_failure(&peer);
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
            DialOrigin::Core(request) => core_dial_failed(&mut self.node, now, &request),
        }
    }
}
