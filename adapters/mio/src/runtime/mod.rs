//! The event loop: one `mio::Poll` drives one node.
//!
//! A [`Runtime::turn`] does, in order: give up on dials past their
//! deadline, accept waiting connections, run the node's timers if due, then
//! rounds of reading (sockets into the node) and draining the node (its
//! transmits onto sockets, its dials started, its events and messages to
//! the caller), until nothing moves. Then it waits for socket readiness, no
//! longer than the node's next deadline, and does the same again with what
//! became ready.
//!
//! The runtime is two halves: the node (behind [`TracedNode`], which
//! records every input and output when a trace is written) and [`io::Io`],
//! everything else. The drain hands each output of the node to the I/O
//! half, so the two are borrowed separately.

mod io;
#[cfg(feature = "quic")]
mod quic;
mod tcp;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mio::{Interest, Poll, Waker};
use veil_core::identity::{Address, Identity, NodeId, ServiceKeys, Transport};
use veil_core::node::{
    drain, AddBootstrap, AddBootstrapError, CloseLink, LinkId, NodeConfig, NodeInput, Output,
    SetAddresses, Timeout,
};
use veil_core::time::Instant;

use crate::clock::Clock;
use crate::connection::ConnectionInfo;
use crate::dial::DialFailure;
use crate::error::{BindError, OfferServiceError, TurnError};
use crate::std_node::{build_node, StdNode, OUTPUT_BUFFER};
use crate::trace::{Capacities, Recorder, TraceHeader, TracedNode};
use io::Io;

/// The listener's token; connections and dials count up from 1.
const LISTENER: mio::Token = mio::Token(0);

/// The waker's token; connection tokens never reach it.
const WAKER: mio::Token = mio::Token(usize::MAX);

/// The UDP socket's token (never a TCP connection's, with or without QUIC).
const QUIC_SOCKET: mio::Token = mio::Token(usize::MAX - 1);

/// How long to sleep when the node's deadline has passed but running its
/// timers did not move it. Readiness still wakes the loop at once; this
/// only bounds how late other timers can run meanwhile.
const STALE_DEADLINE_WAIT: Duration = Duration::from_millis(10);

/// Rounds of reading and draining per turn while bytes keep moving, so
/// that one turn cannot run for ever under a flood.
const ROUNDS_PER_TURN: usize = 8;

/// Sizes and timeouts of a [`Runtime`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuntimeOptions {
    /// Link slots of the node, so also the most connections at once. Each
    /// slot holds a receive buffer and a send queue (about 50 KiB).
    pub links: usize,
    /// Outgoing connects in progress at once; more requests of the node
    /// wait (a bounded queue) until one finishes.
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
    /// Make outgoing TCP connections from the listener's IP address, when
    /// it listens on one (not on `0.0.0.0` or `::`). Peers then see the
    /// address the node advertises, and a host with several addresses (or
    /// several nodes on one host's loopback, each on its own `127.N.0.1`)
    /// keeps its nodes apart: a node counts inbound links per network of
    /// their source address.
    pub bind_outgoing: bool,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            links: 64,
            max_pending_dials: 16,
            dial_timeout: Duration::from_secs(5),
            tcp_buffer: None,
            bind_outgoing: true,
        }
    }
}

/// A veil node on TCP (and QUIC), with the event loop that drives it.
pub struct Runtime {
    /// The node; every input and output goes through the wrapper, which
    /// records it when a trace is being written.
    node: TracedNode,
    /// Where the node's outputs are drained into.
    buf: Box<[u8]>,
    io: Io,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("node", &self.node)
            .field("io", &self.io)
            .finish()
    }
}

impl Runtime {
    /// Builds a node with a fresh seed from OS entropy and listens on `addr`
    /// with the default [`RuntimeOptions`].
    ///
    /// The runtime owns the clock, so it sets `config.unix_time_at_zero`.
    /// When `addr` is a specific IP, the node advertises the bound address
    /// in its descriptor; behind a wildcard address the program should hand
    /// the node its reachable addresses ([`SetAddresses`]).
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
        if trace.is_some() && options.links > crate::trace::MAX_TRACE_LINKS {
            return Err(BindError::TooManyLinksToTrace {
                links: options.links,
            });
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
        let node = TracedNode::new(build_node(config, identity, seed, options.links), recorder);
        let mut rt = Runtime {
            node,
            buf: vec![0u8; OUTPUT_BUFFER].into_boxed_slice(),
            io: Io::new(poll, listener, local_addr, clock, options),
        };
        rt.advertise();
        Ok(rt)
    }

    /// The address the listener is bound to (with the port the OS chose).
    pub fn local_addr(&self) -> SocketAddr {
        self.io.local_addr
    }

    /// The node, to read.
    pub fn node(&self) -> &StdNode {
        &self.node
    }

    /// The node, for inputs the program makes (`SendMessage`, `CloseLink`,
    /// …); [`handle`](Self::handle) passes the runtime's time for you.
    /// What they cause goes out at the next [`turn`](Self::turn). Inputs go
    /// through [`TracedNode`], which records them when a trace is being
    /// written.
    pub fn node_mut(&mut self) -> &mut TracedNode {
        &mut self.node
    }

    /// Hands the node one input at the runtime's current time; what it
    /// causes goes out at the next [`turn`](Self::turn).
    pub fn handle<'a, I: NodeInput<'a>>(&mut self, input: I) -> I::Outcome {
        let now = self.io.clock.now();
        veil_core::node::Drive::handle(&mut self.node, now, input)
    }

    /// Offers a rendezvous service under `keys` (relay spec §13): the node
    /// sets up introduction points and answers introductions; its signed
    /// descriptor is `node().service_descriptor(…)`. Returns the service
    /// id. Refused while a trace is recorded (offering a service is not a
    /// node input, so the trace could not replay it).
    pub fn offer_service(&mut self, keys: ServiceKeys) -> Result<NodeId, OfferServiceError> {
        self.node.offer_service(keys)
    }

    /// Starts capturing the bytes of TCP links opened from now on into a
    /// pcap file at `path` (see [`crate::capture`]): for a bug report. It
    /// holds what the wire carries and no secret.
    pub fn capture_links(&mut self, path: &std::path::Path) -> Result<(), crate::CaptureError> {
        self.io.capture = Some(crate::capture::Capture::create(path)?);
        Ok(())
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
        self.io.closing = true;
        let links: Vec<LinkId> = self.node.links().map(|l| l.link).collect();
        for link in links {
            let close = CloseLink {
                link,
                reason: veil_core::link::CloseReason::Shutdown,
            };
            // A link that is already gone needs no closing.
            let _ = self.handle(close);
        }
        let now = self.io.clock.now();
        self.io.abandon_dials(&mut self.node, now);
    }

    /// Whether a [`shutdown`](Self::shutdown) finished: every connection
    /// is closed.
    pub fn is_shut_down(&self) -> bool {
        self.io.closing && self.io.is_idle()
    }

    /// Adds a bootstrap address of either transport (a QUIC one is dialled
    /// over QUIC, so only if [`listen_quic`](Self::listen_quic) was
    /// called): while the node has no link, it dials every bootstrap
    /// address (every `NodeConfig::bootstrap_retry`). The runtime's own
    /// listening address is ignored, so a bootstrap list shared by every
    /// node can include the node itself.
    pub fn add_bootstrap_address(&mut self, address: Address) -> Result<(), AddBootstrapError> {
        self.add_bootstrap_node(address, None)
    }

    /// [`add_bootstrap_address`](Self::add_bootstrap_address) with the
    /// node's id, when it is known (`id@address`): the dial is then marked
    /// for that node, which a probe-resistant node requires (link spec
    /// §2.2), and must reach it.
    pub fn add_bootstrap_node(
        &mut self,
        address: Address,
        node_id: Option<NodeId>,
    ) -> Result<(), AddBootstrapError> {
        if address.socket == self.io.local_addr {
            return Ok(());
        }
        self.handle(AddBootstrap { address, node_id })
    }

    /// [`add_bootstrap_address`](Self::add_bootstrap_address) for a TCP
    /// address.
    pub fn add_bootstrap(&mut self, addr: SocketAddr) -> Result<(), AddBootstrapError> {
        self.add_bootstrap_address(Address {
            transport: Transport::Tcp,
            socket: addr,
        })
    }

    /// The node's id.
    pub fn node_id(&self) -> NodeId {
        self.node.node_id()
    }

    /// The runtime's current time, as the node sees it.
    pub fn now(&self) -> Instant {
        self.io.clock.now()
    }

    /// The options the runtime was built with.
    pub fn options(&self) -> &RuntimeOptions {
        &self.io.options
    }

    /// Bytes held for all connections, both directions. Bounded by one
    /// message out and one read in per connection, whatever peers do.
    pub fn buffered_bytes(&self) -> usize {
        self.io.buffered_bytes()
    }

    /// How many connections carry links (TCP and QUIC).
    pub fn connection_count(&self) -> usize {
        self.io.connection_count()
    }

    /// How many dials are in progress.
    pub fn pending_dials(&self) -> usize {
        self.io.dials.len()
    }

    /// The connection under `link`, if it has one.
    pub fn connection(&self, link: LinkId) -> Option<ConnectionInfo> {
        self.io.connection(link)
    }

    /// Every connection, TCP and QUIC.
    pub fn connections(&self) -> Vec<ConnectionInfo> {
        let links: Vec<LinkId> = self.node.links().map(|l| l.link).collect();
        self.io.connections(&links)
    }

    /// A handle other threads can use to end the runtime's current wait
    /// early (`waker.wake()`), for example after queueing a command for the
    /// thread that turns the runtime. Every call returns the same waker.
    pub fn waker(&mut self) -> std::io::Result<Arc<Waker>> {
        if let Some(waker) = &self.io.waker {
            return Ok(Arc::clone(waker));
        }
        let waker = Arc::new(Waker::new(self.io.poll.registry(), WAKER)?);
        self.io.waker = Some(Arc::clone(&waker));
        Ok(waker)
    }

    /// The oldest failure of a dial started with [`dial`](Self::dial) that
    /// the program has not taken yet.
    pub fn poll_dial_failure(&mut self) -> Option<DialFailure> {
        self.io.dial_failures.pop_front()
    }

    /// Starts connecting to `addr` for the program; `expected` is the node
    /// id the peer must prove, or `None` to accept whoever answers.
    ///
    /// Returns once the connect is under way. A link opens when it connects
    /// (an `Event::LinkEstablished` follows the handshake); a later failure
    /// shows up in [`poll_dial_failure`](Self::poll_dial_failure).
    pub fn dial(
        &mut self,
        addr: SocketAddr,
        expected: Option<NodeId>,
    ) -> Result<(), crate::DialError> {
        let now = self.io.clock.now();
        self.io.dial_for_program(now, addr, expected)
    }

    /// Runs the loop once: moves every byte that can move, hands the
    /// node's events and received messages (`Output::Event`,
    /// `Output::Message`) to `on_output`, then waits for readiness — at
    /// most `timeout` (`None`: until the node's next deadline) — and moves
    /// bytes again.
    ///
    /// `on_output` gets the node too, so it can answer at once; what that
    /// causes goes out in the same drain. `LinkClosed` has already closed
    /// the link's connection when `on_output` sees it.
    pub fn turn<F>(&mut self, timeout: Option<Duration>, mut on_output: F) -> Result<(), TurnError>
    where
        F: FnMut(&mut TracedNode, Output<'_>),
    {
        let now = self.io.clock.now();
        self.advance(now, &mut on_output);
        // What was recorded is on disk before the wait: a node killed now
        // leaves a trace that replays up to here.
        self.node.flush_trace().map_err(TurnError::Trace)?;
        if let Some(capture) = &mut self.io.capture {
            if let Err(e) = capture.flush() {
                self.io.capture = None;
                return Err(TurnError::Capture(e));
            }
        }
        let wait = self.wait_time(now, timeout);
        self.io.wait(wait)?;
        let now = self.io.clock.now();
        self.io.take_readiness(&mut self.node, now);
        self.advance(now, &mut on_output);
        Ok(())
    }

    /// Everything a turn does besides waiting.
    fn advance<F>(&mut self, now: Instant, on_output: &mut F)
    where
        F: FnMut(&mut TracedNode, Output<'_>),
    {
        let Runtime { node, buf, io } = self;
        io.expire_dials(node, now);
        io.accept(node, now);
        if io.node_deadline <= now {
            node.handle(now, Timeout);
        }
        io.service_quic_in(node, now);
        for _ in 0..ROUNDS_PER_TURN {
            io.flush_held(node, now);
            let read = io.read(node, now);
            let deadline = drain(node, now, buf, |node, output| {
                io.on_output(node, now, output, on_output);
            });
            io.flush_connections(node, now);
            match deadline {
                Ok(at) => io.node_deadline = at,
                // Never with a buffer of the largest output: keep going.
                Err(_) => io.node_deadline = now,
            }
            io.start_deferred_dials(node, now);
            if !read {
                break;
            }
        }
        io.service_quic_out(now);
    }

    /// How long the poll may sleep; `None` is until something is ready.
    fn wait_time(&mut self, now: Instant, timeout: Option<Duration>) -> Option<Duration> {
        if self.io.has_work() {
            return Some(Duration::ZERO);
        }
        let deadline = self.io.node_deadline;
        let mut wait = if deadline > now {
            Clock::until(now, deadline)
        } else {
            STALE_DEADLINE_WAIT
        };
        if let Some(io_deadline) = self.io.deadline() {
            wait = wait.min(Clock::until(now, io_deadline));
        }
        Some(match timeout {
            Some(t) => wait.min(t),
            None => wait,
        })
    }

    /// Advertises the listening addresses (TCP, and QUIC if listening)
    /// when they are specific IPs.
    fn advertise(&mut self) {
        let addresses = self.io.advertised_addresses();
        if !addresses.is_empty() {
            self.handle(SetAddresses::from_slice(&addresses));
        }
    }
}
