//! The event loop: one `mio::Poll` drives one node.
//!
//! A [`Runtime::turn`] does, in order: start dials the core asked for, give
//! up on dials past their deadline, run the node's timers, then move bytes
//! (feed what was read, write what the node has for sockets that can take
//! it) and hand every node event to the caller. Then it waits for socket
//! readiness, no longer than the node's next deadline, and does the same
//! again with what became ready.

mod pump;
#[cfg(feature = "quic")]
mod quic;
mod sockets;

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use veil_core::identity::{Address, Identity, NodeId, Transport};
use veil_core::node::{Event, LinkId, NodeConfig};
use veil_core::time::Instant;

use crate::clock::Clock;
use crate::connection::{Connection, ConnectionInfo};
use crate::dial::{DialFailure, PendingDial};
use crate::error::{BindError, TurnError};
use crate::std_node::{build_node, StdNode, READ_CHUNK, TRANSMIT_BUFFER};
use crate::trace::{Capacities, Recorder, TraceHeader, TracedNode};

/// The listener's token; connections and dials count up from 1.
const LISTENER: Token = Token(0);

/// The waker's token; connection tokens never reach it.
const WAKER: Token = Token(usize::MAX);

/// How long to sleep when the node's deadline has passed but running its
/// timers did not move it (a due ping waits for a socket that cannot take
/// it). Readiness still wakes the loop at once; this only bounds how late
/// other timers can run meanwhile.
const STALE_DEADLINE_WAIT: Duration = Duration::from_millis(10);

/// Dial failures kept for [`Runtime::poll_dial_failure`]; the oldest go first.
const MAX_DIAL_FAILURES: usize = 64;

/// Readiness events taken from one poll.
const EVENTS_PER_POLL: usize = 256;

/// Sizes and timeouts of a [`Runtime`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuntimeOptions {
    /// Link slots of the node, so also the most connections at once. Each
    /// slot holds a receive buffer and a send queue (about 50 KiB).
    pub links: usize,
    /// Outgoing connects in progress at once.
    pub max_pending_dials: usize,
    /// A connect not finished by then fails.
    pub dial_timeout: Duration,
    /// Kernel send and receive buffer of every TCP connection, in bytes
    /// (`SO_SNDBUF`, `SO_RCVBUF`); `None` leaves the kernel's autotuning,
    /// which on loopback grows to megabytes. Short kernel buffers keep
    /// waiting cells in the node's own bounded queues, where the circuit
    /// scheduler orders them and a full link pushes back on its circuits at
    /// once (as Tor's KIST keeps socket buffers short), at some cost in
    /// throughput on links with a large bandwidth-delay product.
    pub tcp_buffer: Option<usize>,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            links: 64,
            max_pending_dials: 16,
            dial_timeout: Duration::from_secs(5),
            tcp_buffer: None,
        }
    }
}

/// A veil node on TCP, with the event loop that drives it.
pub struct Runtime {
    poll: Poll,
    events: Events,
    /// `(token, readable, writable)` of the last poll, reused between turns.
    ready: Vec<(Token, bool, bool)>,
    listener: TcpListener,
    local_addr: SocketAddr,
    /// The listener may have connections waiting (the accept budget ran out).
    accept_pending: bool,
    clock: Clock,
    /// The node; every call that changes it goes through the wrapper, which
    /// records it when a trace is being written.
    node: TracedNode,
    options: RuntimeOptions,
    connections: HashMap<Token, Connection>,
    by_link: HashMap<LinkId, Token>,
    dials: HashMap<Token, PendingDial>,
    dial_failures: VecDeque<DialFailure>,
    next_token: usize,
    /// [`shutdown`](Runtime::shutdown) was called: no new connections.
    closing: bool,
    /// Made on first use: mio allows one waker per poller.
    waker: Option<Arc<Waker>>,
    /// Where the node writes a message; only the part the socket does not
    /// take is copied into the connection.
    transmit_buf: Box<[u8]>,
    /// Where sockets are read into; only the part the node does not consume
    /// is copied into the connection.
    read_buf: Box<[u8]>,
    /// The QUIC socket and its links, once [`listen_quic`](Runtime::listen_quic)
    /// was called.
    #[cfg(feature = "quic")]
    quic: Option<quic::QuicSide>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("local_addr", &self.local_addr)
            .field("node", &self.node)
            .field("connections", &self.connections.len())
            .field("dials", &self.dials.len())
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Builds a node with a fresh seed from OS entropy and listens on `addr`
    /// with the default [`RuntimeOptions`].
    ///
    /// The runtime owns the clock, so it sets `config.unix_time_at_zero`.
    /// When `addr` is a specific IP, the node advertises the bound address
    /// in its descriptor; behind a wildcard address the program should call
    /// `node_mut().set_advertised_addresses` with its reachable addresses.
    pub fn bind(
        config: NodeConfig,
        identity: Identity,
        addr: SocketAddr,
    ) -> Result<Self, BindError> {
        Runtime::bind_with(config, identity, addr, RuntimeOptions::default())
    }

    /// [`bind`](Self::bind) with explicit options.
    pub fn bind_with(
        config: NodeConfig,
        identity: Identity,
        addr: SocketAddr,
        options: RuntimeOptions,
    ) -> Result<Self, BindError> {
        Runtime::bind_inner(config, identity, addr, options, None)
    }

    /// [`bind_with`](Self::bind_with), recording a trace into `trace`
    /// (see [`crate::trace`]): everything needed to replay the node
    /// exactly, **including its secret identity key and seed**. Open files
    /// with [`create_trace_file`](crate::trace::create_trace_file) (mode
    /// 0600). Records are written at every wait for readiness; the trace
    /// ends with [`finish_trace`](Self::finish_trace) or when the runtime
    /// is dropped.
    pub fn bind_recording(
        config: NodeConfig,
        identity: Identity,
        addr: SocketAddr,
        options: RuntimeOptions,
        trace: Box<dyn Write + Send>,
    ) -> Result<Self, BindError> {
        Runtime::bind_inner(config, identity, addr, options, Some(trace))
    }

    fn bind_inner(
        mut config: NodeConfig,
        identity: Identity,
        addr: SocketAddr,
        options: RuntimeOptions,
        trace: Option<Box<dyn Write + Send>>,
    ) -> Result<Self, BindError> {
        if options.links == 0 {
            return Err(BindError::NoLinkSlots);
        }
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(BindError::Entropy)?;
        let poll = Poll::new().map_err(BindError::Poll)?;
        let mut listener = crate::tcp_socket::listen(addr, options.tcp_buffer)
            .map_err(|source| BindError::Listen { addr, source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| BindError::Listen { addr, source })?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .map_err(BindError::Register)?;
        let clock = Clock::start();
        config.unix_time_at_zero = clock.unix_time_at_zero();
        let recorder = match trace {
            None => None,
            Some(sink) => {
                let header = TraceHeader {
                    secret: identity.secret_bytes(),
                    seed,
                    capacities: Capacities::of_this_build(options.links),
                    config,
                };
                Some(Recorder::start(sink, &header).map_err(BindError::Trace)?)
            }
        };
        let mut node = TracedNode::new(build_node(config, identity, seed, options.links), recorder);
        if !local_addr.ip().is_unspecified() {
            let advertised = Address {
                transport: Transport::Tcp,
                socket: local_addr,
            };
            node.set_advertised_addresses(clock.now(), &[advertised]);
        }
        Ok(Runtime {
            #[cfg(feature = "quic")]
            quic: None,
            poll,
            events: Events::with_capacity(EVENTS_PER_POLL),
            ready: Vec::with_capacity(EVENTS_PER_POLL),
            listener,
            local_addr,
            accept_pending: false,
            clock,
            node,
            options,
            connections: HashMap::new(),
            by_link: HashMap::new(),
            dials: HashMap::new(),
            dial_failures: VecDeque::new(),
            next_token: 1,
            closing: false,
            waker: None,
            transmit_buf: vec![0u8; TRANSMIT_BUFFER].into_boxed_slice(),
            read_buf: vec![0u8; READ_CHUNK].into_boxed_slice(),
        })
    }

    /// The address the listener is bound to (with the port the OS chose).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The node.
    pub fn node(&self) -> &StdNode {
        &self.node
    }

    /// The node, for commands (`send_message`, `close_link`, …). Bytes it
    /// queues go out at the next [`turn`](Self::turn). Calls go through
    /// [`TracedNode`], which records them when a trace is being written.
    pub fn node_mut(&mut self) -> &mut TracedNode {
        &mut self.node
    }

    /// Whether a trace is being recorded.
    pub fn is_recording(&self) -> bool {
        self.node.is_recording()
    }

    /// Ends the trace being recorded (if any): writes its end record and
    /// flushes it. Later calls are not recorded.
    pub fn finish_trace(&mut self) -> std::io::Result<()> {
        self.node.finish_trace()
    }

    /// Starts a clean shutdown: every link is closed (an established link
    /// tells its peer first, which ends the circuits over it), dials in
    /// progress are abandoned, and from now on no connection is accepted
    /// or dialled. Keep turning until [`is_shut_down`](Self::is_shut_down)
    /// (or a grace time runs out), then drop the runtime.
    pub fn shutdown(&mut self) {
        self.closing = true;
        let now = self.clock.now();
        let links: Vec<LinkId> = self.node.links().map(|l| l.link).collect();
        for link in links {
            // A link that is already gone needs no closing.
            let _ = self
                .node
                .close_link(now, link, veil_core::link::CloseReason::Shutdown);
        }
        let dials: Vec<Token> = self.dials.keys().copied().collect();
        for token in dials {
            if let Some(dial) = self.dials.remove(&token) {
                let after = self.options.dial_timeout;
                self.fail_dial(dial, crate::DialError::TimedOut { after }, now);
            }
        }
        #[cfg(feature = "quic")]
        self.close_all_quic(now);
    }

    /// Whether a [`shutdown`](Self::shutdown) finished: every connection
    /// is closed.
    pub fn is_shut_down(&self) -> bool {
        self.closing
            && self.connections.is_empty()
            && self.dials.is_empty()
            && self.quic_connection_count() == 0
    }

    /// QUIC connections open or closing (0 without QUIC).
    fn quic_connection_count(&self) -> usize {
        #[cfg(feature = "quic")]
        return self.quic_connections();
        #[cfg(not(feature = "quic"))]
        0
    }

    /// Adds a bootstrap address of either transport (a QUIC one is dialled
    /// over QUIC, so only if [`listen_quic`](Self::listen_quic) was
    /// called). Returns `false` if the node's bootstrap list is full.
    pub fn add_bootstrap_address(&mut self, address: Address) -> bool {
        if address.socket == self.local_addr {
            return true;
        }
        self.node.add_bootstrap(address)
    }

    /// Adds a TCP bootstrap address: while the node has no link, it dials
    /// every bootstrap address (every `NodeConfig::bootstrap_retry`).
    /// Returns `false` if the node's bootstrap list is full.
    /// The runtime's own listening address is ignored (and `true`), so a
    /// bootstrap list shared by every node can include the node itself.
    pub fn add_bootstrap(&mut self, addr: SocketAddr) -> bool {
        if addr == self.local_addr {
            return true;
        }
        self.node.add_bootstrap(Address {
            transport: Transport::Tcp,
            socket: addr,
        })
    }

    /// The node's id.
    pub fn node_id(&self) -> NodeId {
        self.node.node_id()
    }

    /// The runtime's current time, as the node sees it: pass it to node
    /// commands.
    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    /// The options the runtime was built with.
    pub fn options(&self) -> &RuntimeOptions {
        &self.options
    }

    /// Bytes held for all connections, both directions. Bounded by one
    /// message out and one read in per connection, whatever peers do.
    pub fn buffered_bytes(&self) -> usize {
        let tcp = self
            .connections
            .values()
            .map(Connection::buffered)
            .fold(0, usize::saturating_add);
        #[cfg(feature = "quic")]
        return tcp.saturating_add(self.quic_buffered());
        #[cfg(not(feature = "quic"))]
        tcp
    }

    /// How many connections carry links (TCP and QUIC).
    pub fn connection_count(&self) -> usize {
        self.connections
            .len()
            .saturating_add(self.quic_link_count())
    }

    /// QUIC connections carrying links (0 without QUIC).
    fn quic_link_count(&self) -> usize {
        #[cfg(feature = "quic")]
        return self.quic.as_ref().map_or(0, |q| q.links.link_count());
        #[cfg(not(feature = "quic"))]
        0
    }

    /// How many dials are in progress.
    pub fn pending_dials(&self) -> usize {
        self.dials.len()
    }

    /// The connection under `link`, if it has one.
    pub fn connection(&self, link: LinkId) -> Option<ConnectionInfo> {
        if let Some(token) = self.by_link.get(&link) {
            return self.connections.get(token).map(Connection::info);
        }
        #[cfg(feature = "quic")]
        return self.quic_connection(link);
        #[cfg(not(feature = "quic"))]
        None
    }

    /// Every connection, TCP and QUIC.
    pub fn connections(&self) -> Vec<ConnectionInfo> {
        #[allow(unused_mut)]
        let mut all: Vec<ConnectionInfo> =
            self.connections.values().map(Connection::info).collect();
        #[cfg(feature = "quic")]
        all.extend(self.quic_connection_infos());
        all
    }

    /// A handle other threads can use to end the runtime's current wait
    /// early (`waker.wake()`), for example after queueing a command for the
    /// thread that turns the runtime. Every call returns the same waker.
    pub fn waker(&mut self) -> std::io::Result<Arc<Waker>> {
        if let Some(waker) = &self.waker {
            return Ok(Arc::clone(waker));
        }
        let waker = Arc::new(Waker::new(self.poll.registry(), WAKER)?);
        self.waker = Some(Arc::clone(&waker));
        Ok(waker)
    }

    /// The oldest failure of a dial started with [`dial`](Self::dial) that
    /// the program has not taken yet.
    pub fn poll_dial_failure(&mut self) -> Option<DialFailure> {
        self.dial_failures.pop_front()
    }

    /// Runs the loop once: moves every byte that can move, hands each node
    /// event to `on_event`, then waits for readiness — at most `timeout`
    /// (`None`: until the node's next deadline) — and moves bytes again.
    ///
    /// `on_event` gets the node too, so it can answer an event with a
    /// command; what that queues goes out at the next turn. `LinkClosed` has
    /// already closed the link's TCP connection when `on_event` sees it.
    pub fn turn<F>(&mut self, timeout: Option<Duration>, mut on_event: F) -> Result<(), TurnError>
    where
        F: FnMut(&mut TracedNode, Event),
    {
        let now = self.clock.now();
        self.advance(now, &mut on_event);
        // What was recorded is on disk before the wait: a node killed now
        // leaves a trace that replays up to here.
        self.node.flush_trace().map_err(TurnError::Trace)?;
        let wait = self.wait_time(now, timeout);
        match self.poll.poll(&mut self.events, wait) {
            Ok(()) => {}
            // A signal: nothing became ready, the caller may want to act on it.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => self.events.clear(),
            Err(e) => return Err(TurnError::Poll(e)),
        }
        let now = self.clock.now();
        self.take_readiness(now);
        self.advance(now, &mut on_event);
        Ok(())
    }

    /// Everything a turn does besides waiting.
    fn advance<F>(&mut self, now: Instant, on_event: &mut F)
    where
        F: FnMut(&mut TracedNode, Event),
    {
        self.start_core_dials(now);
        self.expire_dials(now);
        if self.accept_pending {
            self.accept(now);
        }
        if self
            .node
            .poll_timeout()
            .is_some_and(|deadline| deadline <= now)
        {
            self.node.handle_timeout(now);
        }
        #[cfg(feature = "quic")]
        self.service_quic(now, on_event);
        self.service(now, on_event);
        // TCP service may have queued QUIC work (cells relayed onto a QUIC
        // link, a closed link's connection): move it now.
        #[cfg(feature = "quic")]
        self.service_quic(now, on_event);
        // Relays ask for next hops while cells are fed, and commands given
        // from `on_event` may ask for first hops: start those now rather
        // than after the next wait.
        self.start_core_dials(now);
    }

    /// How long the poll may sleep; `None` is until something is ready.
    fn wait_time(&mut self, now: Instant, timeout: Option<Duration>) -> Option<Duration> {
        if self.has_work() {
            return Some(Duration::ZERO);
        }
        let mut wait = match self.node.poll_timeout() {
            Some(deadline) if deadline > now => Some(Clock::until(now, deadline)),
            Some(_) => Some(STALE_DEADLINE_WAIT),
            None => None,
        };
        for dial in self.dials.values() {
            wait = Some(min_wait(wait, Clock::until(now, dial.deadline)));
        }
        #[cfg(feature = "quic")]
        if let Some(deadline) = self.quic_deadline() {
            wait = Some(min_wait(wait, Clock::until(now, deadline)));
        }
        match timeout {
            Some(t) => Some(min_wait(wait, t)),
            None => wait,
        }
    }

    /// Whether a budget ran out last time, so the next poll must not sleep.
    fn has_work(&self) -> bool {
        #[cfg(feature = "quic")]
        if self.quic_has_work() {
            return true;
        }
        self.accept_pending
            || self
                .connections
                .values()
                .any(|c| c.wants_read() || !c.unconsumed().is_empty() || c.more_to_send)
    }

    fn take_token(&mut self) -> Token {
        let token = Token(self.next_token);
        self.next_token = self.next_token.wrapping_add(1).max(1);
        if Token(self.next_token) == WAKER || Token(self.next_token) == quic_token() {
            self.next_token = 1;
        }
        token
    }
}

/// The UDP socket's token (never a TCP connection's, with or without QUIC).
fn quic_token() -> Token {
    Token(usize::MAX - 1)
}

/// The shorter of an optional wait and a wait.
fn min_wait(wait: Option<Duration>, other: Duration) -> Duration {
    wait.map_or(other, |w| w.min(other))
}
