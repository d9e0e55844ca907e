//! The I/O half of a runtime: the poller, the listener, connections,
//! dials, and QUIC; and what it does with each output of the node.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mio::net::TcpListener;
use mio::{Events, Poll, Token, Waker};
use veil_core::identity::{Address, Transport};
use veil_core::node::{DialFailed, DialRequest, Drive, Event, LinkId, Output};
use veil_core::time::Instant;

use super::{RuntimeOptions, LISTENER, QUIC_SOCKET, WAKER};
use crate::clock::Clock;
use crate::connection::{Connection, ConnectionInfo};
use crate::dial::{DialFailure, PendingDial};
use crate::error::TurnError;
use crate::std_node::READ_CHUNK;

/// Readiness events taken from one poll.
const EVENTS_PER_POLL: usize = 256;

/// Dial requests of the node kept while `max_pending_dials` connects are
/// under way; more fail at once.
const MAX_DEFERRED_DIALS: usize = 64;

pub(super) struct Io {
    pub(super) poll: Poll,
    events: Events,
    /// `(token, readable, writable)` of the last poll, reused between turns.
    pub(super) ready: Vec<(Token, bool, bool)>,
    pub(super) listener: TcpListener,
    pub(super) local_addr: SocketAddr,
    /// The listener may have connections waiting (the accept budget ran out).
    pub(super) accept_pending: bool,
    pub(super) clock: Clock,
    pub(super) options: RuntimeOptions,
    pub(super) connections: HashMap<Token, Connection>,
    pub(super) by_link: HashMap<LinkId, Token>,
    pub(super) dials: HashMap<Token, PendingDial>,
    /// The node's dial requests waiting for a free dial.
    pub(super) deferred_dials: VecDeque<DialRequest>,
    pub(super) dial_failures: VecDeque<DialFailure>,
    next_token: usize,
    /// [`shutdown`](super::Runtime::shutdown) was called: no new connections.
    pub(super) closing: bool,
    /// Made on first use: mio allows one waker per poller.
    pub(super) waker: Option<Arc<Waker>>,
    /// Where sockets are read into; only the part the node does not consume
    /// is copied into the connection.
    pub(super) read_buf: Box<[u8]>,
    /// When the node next needs its timers, from the last drain.
    pub(super) node_deadline: Instant,
    /// A capture of TCP link bytes, when the operator turned it on.
    pub(super) capture: Option<crate::capture::Capture>,
    /// The QUIC socket and its links, once
    /// [`listen_quic`](super::Runtime::listen_quic) was called.
    #[cfg(feature = "quic")]
    pub(super) quic: Option<super::quic::QuicSide>,
}

impl std::fmt::Debug for Io {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Io")
            .field("local_addr", &self.local_addr)
            .field("connections", &self.connections.len())
            .field("dials", &self.dials.len())
            .finish_non_exhaustive()
    }
}

impl Io {
    pub(super) fn new(
        poll: Poll,
        listener: TcpListener,
        local_addr: SocketAddr,
        clock: Clock,
        options: RuntimeOptions,
    ) -> Self {
        Io {
            poll,
            events: Events::with_capacity(EVENTS_PER_POLL),
            ready: Vec::with_capacity(EVENTS_PER_POLL),
            listener,
            local_addr,
            accept_pending: false,
            clock,
            options,
            connections: HashMap::new(),
            by_link: HashMap::new(),
            dials: HashMap::new(),
            deferred_dials: VecDeque::new(),
            dial_failures: VecDeque::new(),
            next_token: 1,
            closing: false,
            waker: None,
            read_buf: vec![0u8; READ_CHUNK].into_boxed_slice(),
            node_deadline: Instant::ZERO,
            capture: None,
            #[cfg(feature = "quic")]
            quic: None,
        }
    }

    /// Acts on one output of the node: link bytes and circuit cells go to
    /// their connection, dials start, a closed link's connection closes;
    /// events and messages go on to the program's `on_output`.
    pub(super) fn on_output<N, F>(
        &mut self,
        node: &mut N,
        now: Instant,
        output: Output<'_>,
        on_output: &mut F,
    ) where
        N: Drive,
        F: FnMut(&mut N, Output<'_>),
    {
        let Some(output) = self.quic_output(node, now, output) else {
            return;
        };
        match output {
            Output::Transmit { link, bytes } => self.write(node, now, link, bytes),
            Output::Dial(request) => self.dial_for_node(node, now, request),
            Output::Event(Event::LinkClosed { link, .. }) => {
                self.close_transport(link);
                on_output(node, output);
            }
            // Circuit cells travel only on QUIC links, taken above.
            Output::StreamCell { .. } | Output::Timeout(_) => {}
            Output::Event(_) | Output::Message { .. } => on_output(node, output),
        }
    }

    /// Starts the node's dial, or keeps it until a dial is free.
    fn dial_for_node<N: Drive>(&mut self, node: &mut N, now: Instant, request: DialRequest) {
        if self.closing {
            node.handle(now, DialFailed { request });
        } else if self.dials.len() < self.options.max_pending_dials {
            self.start_node_dial(node, now, request);
        } else if self.deferred_dials.len() < MAX_DEFERRED_DIALS {
            self.deferred_dials.push_back(request);
        } else {
            node.handle(now, DialFailed { request });
        }
    }

    /// Starts dials the node asked for that waited for a free dial.
    pub(super) fn start_deferred_dials<N: Drive>(&mut self, node: &mut N, now: Instant) {
        while self.dials.len() < self.options.max_pending_dials {
            let Some(request) = self.deferred_dials.pop_front() else {
                return;
            };
            self.dial_for_node(node, now, request);
        }
    }

    /// Shutting down: every dial in progress or waiting fails.
    pub(super) fn abandon_dials<N: Drive>(&mut self, node: &mut N, now: Instant) {
        while let Some(request) = self.deferred_dials.pop_front() {
            node.handle(now, DialFailed { request });
        }
        let tokens: Vec<Token> = self.dials.keys().copied().collect();
        for token in tokens {
            if let Some(dial) = self.dials.remove(&token) {
                let after = self.options.dial_timeout;
                self.fail_dial(node, dial, crate::DialError::TimedOut { after }, now);
            }
        }
        #[cfg(feature = "quic")]
        if let Some(q) = &mut self.quic {
            q.socket.transport_mut().close_all(now);
        }
    }

    /// Waits for readiness, at most `wait` (`None`: until something is
    /// ready).
    pub(super) fn wait(&mut self, wait: Option<Duration>) -> Result<(), TurnError> {
        match self.poll.poll(&mut self.events, wait) {
            Ok(()) => Ok(()),
            // A signal: nothing became ready, the caller may want to act on it.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                self.events.clear();
                Ok(())
            }
            Err(e) => Err(TurnError::Poll(e)),
        }
    }

    /// Records what the last poll reported, and finishes dials it concerns.
    pub(super) fn take_readiness<N: Drive>(&mut self, node: &mut N, now: Instant) {
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
            } else if token == QUIC_SOCKET {
                #[cfg(feature = "quic")]
                if let Some(q) = &mut self.quic {
                    q.socket.on_ready(readable, writable);
                }
            } else if let Some(conn) = self.connections.get_mut(&token) {
                conn.readable |= readable;
                conn.writable |= writable;
            } else if self.dials.contains_key(&token) {
                self.finish_dial(node, token, now);
            }
        }
        self.ready = ready;
    }

    /// Whether a budget ran out last time, so the next poll must not sleep.
    pub(super) fn has_work(&self) -> bool {
        #[cfg(feature = "quic")]
        if self.quic_has_work() {
            return true;
        }
        self.accept_pending
            || self
                .connections
                .values()
                .any(|c| c.wants_read() || !c.unconsumed().is_empty())
    }

    /// The earliest deadline of the I/O half: dials, and QUIC's timers.
    pub(super) fn deadline(&mut self) -> Option<Instant> {
        let dials = self.dials.values().map(|d| d.deadline).min();
        #[cfg(feature = "quic")]
        return [dials, self.quic_deadline()].into_iter().flatten().min();
        #[cfg(not(feature = "quic"))]
        dials
    }

    /// No connection, dial or QUIC connection is left.
    pub(super) fn is_idle(&self) -> bool {
        self.connections.is_empty() && self.dials.is_empty() && self.quic_connection_count() == 0
    }

    /// QUIC connections open or closing (0 without QUIC).
    fn quic_connection_count(&self) -> usize {
        #[cfg(feature = "quic")]
        return self
            .quic
            .as_ref()
            .map_or(0, |q| q.socket.transport().connection_count());
        #[cfg(not(feature = "quic"))]
        0
    }

    pub(super) fn buffered_bytes(&self) -> usize {
        let tcp = self
            .connections
            .values()
            .map(Connection::buffered)
            .fold(0, usize::saturating_add);
        #[cfg(feature = "quic")]
        return tcp.saturating_add(self.quic.as_ref().map_or(0, |q| q.links.buffered_bytes()));
        #[cfg(not(feature = "quic"))]
        tcp
    }

    pub(super) fn connection_count(&self) -> usize {
        #[cfg(feature = "quic")]
        let quic = self.quic.as_ref().map_or(0, |q| q.links.link_count());
        #[cfg(not(feature = "quic"))]
        let quic = 0;
        self.connections.len().saturating_add(quic)
    }

    pub(super) fn connection(&self, link: LinkId) -> Option<ConnectionInfo> {
        if let Some(token) = self.by_link.get(&link) {
            return self.connections.get(token).map(Connection::info);
        }
        #[cfg(feature = "quic")]
        return self.quic_connection(link);
        #[cfg(not(feature = "quic"))]
        None
    }

    /// Every connection: TCP ones, and QUIC ones carrying `links`.
    pub(super) fn connections(&self, links: &[LinkId]) -> Vec<ConnectionInfo> {
        let mut all: Vec<ConnectionInfo> =
            self.connections.values().map(Connection::info).collect();
        for link in links {
            if !self.by_link.contains_key(link) {
                all.extend(self.connection(*link));
            }
        }
        all
    }

    /// The addresses the node should advertise: the listeners', when they
    /// are specific IPs.
    pub(super) fn advertised_addresses(&self) -> Vec<Address> {
        let mut addresses = Vec::new();
        if !self.local_addr.ip().is_unspecified() {
            addresses.push(Address {
                transport: Transport::Tcp,
                socket: self.local_addr,
            });
        }
        #[cfg(feature = "quic")]
        if let Some(quic) = self
            .quic
            .as_ref()
            .map(|q| q.socket.local_addr())
            .filter(|a| !a.ip().is_unspecified())
        {
            addresses.push(Address {
                transport: Transport::Quic,
                socket: quic,
            });
        }
        addresses
    }

    pub(super) fn take_token(&mut self) -> Token {
        let token = Token(self.next_token);
        self.next_token = self.next_token.wrapping_add(1).max(1);
        if Token(self.next_token) == WAKER || Token(self.next_token) == QUIC_SOCKET {
            self.next_token = 1;
        }
        token
    }

    /// Without QUIC, every output is the TCP side's.
    #[cfg(not(feature = "quic"))]
    fn quic_output<'b, N: Drive>(
        &mut self,
        _node: &mut N,
        _now: Instant,
        output: Output<'b>,
    ) -> Option<Output<'b>> {
        Some(output)
    }

    #[cfg(not(feature = "quic"))]
    pub(super) fn service_quic_in<N: Drive>(&mut self, _node: &mut N, _now: Instant) {}

    #[cfg(not(feature = "quic"))]
    pub(super) fn service_quic_out(&mut self, _now: Instant) {}
}
