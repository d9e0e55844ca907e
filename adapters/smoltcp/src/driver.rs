//! The driver: TCP sockets in, link bytes and events out.

use core::net::SocketAddr;

use smoltcp::iface::{Interface, SocketHandle, SocketSet};
use smoltcp::phy::Device;
use smoltcp::socket::tcp;
use smoltcp::wire::IpEndpoint;
use veil_core::identity::{NodeId, Transport};
#[cfg(doc)]
use veil_core::link::MIN_TRANSMIT_BUFFER;
use veil_core::node::{
    drain, DialFailed, DialRequest, Drive, Event, LinkId, OpenLink, Output, PollError, Receive,
    Timeout, TransportClosed, TransportRoom,
};
use veil_core::time::{Duration, Instant};

use crate::logging::{log_info, log_warn};
use crate::{from_smoltcp_instant, to_smoltcp_instant};

/// Run-time settings of a [`Driver`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DriverConfig {
    /// The TCP port to accept links on; `None` for a node that only dials.
    pub listen_port: Option<u16>,
    /// The first local port for outgoing connections; later ones count up
    /// through 49152..=65535. Pick it at random at boot (from the hardware
    /// RNG) so that a restarted node does not reuse its last ports.
    pub first_local_port: u16,
    /// A connection whose sent data (or SYN) is not acknowledged for this
    /// long is aborted (smoltcp's socket timeout). `None`: never.
    pub tcp_timeout: Option<Duration>,
    /// TCP keep-alive interval; `None`: off (the link has its own
    /// keepalives).
    pub tcp_keep_alive: Option<Duration>,
}

impl Default for DriverConfig {
    fn default() -> Self {
        DriverConfig {
            listen_port: None,
            first_local_port: 49_152,
            tcp_timeout: Some(Duration::from_secs(10)),
            tcp_keep_alive: None,
        }
    }
}

/// What the driver uses one socket for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketState {
    /// Free for a listen or a dial.
    Idle,
    /// Listening on the listen port; taken by a dial while no SYN has
    /// arrived (smoltcp's `Listen`), accepting once one has.
    Listening,
    /// A connect in progress, for the node (`request`) or for the program.
    Connecting {
        /// Whom we expect at the other end.
        expected: Option<NodeId>,
        /// The node's request, answered with `dial_failed` if it fails.
        request: Option<DialRequest>,
    },
    /// Carries a link.
    Linked(LinkId),
    /// Closing: sending what is queued and a FIN; free once closed.
    Closing,
}

// By hand: the core's `DialRequest` has no `defmt::Format`; its address
// is what a log reader wants.
#[cfg(feature = "defmt")]
impl defmt::Format for SocketState {
    fn format(&self, f: defmt::Formatter<'_>) {
        match self {
            SocketState::Idle => defmt::write!(f, "Idle"),
            SocketState::Listening => defmt::write!(f, "Listening"),
            SocketState::Connecting { expected, request } => defmt::write!(
                f,
                "Connecting {{ expected: {}, to: {} }}",
                expected,
                request.as_ref().map(|r| Peer(r.address.socket))
            ),
            SocketState::Linked(link) => defmt::write!(f, "Linked({})", link),
            SocketState::Closing => defmt::write!(f, "Closing"),
        }
    }
}

/// One socket the driver may use: caller storage, one per socket (see
/// [`Driver::new`]).
#[derive(Debug, Clone, Copy)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Slot {
    handle: SocketHandle,
    state: SocketState,
    /// What the node was last told of this socket's room
    /// ([`TransportRoom`]), less what it wrote since.
    room: usize,
}

impl Slot {
    /// The driver may use the TCP socket `handle` (closed, in the caller's
    /// socket set, with its own buffers).
    pub const fn new(handle: SocketHandle) -> Self {
        Slot {
            handle,
            state: SocketState::Idle,
            room: TransportRoom::UNLIMITED,
        }
    }
}

/// Why [`Driver::dial`] did not start a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DialError {
    /// Every socket is in use.
    NoFreeSocket,
    /// Not an IPv4 TCP address, or no route/source address for it.
    Unaddressable,
}

/// Drives one veil node over the TCP sockets it is given. The driver holds
/// a slice of [`Slot`]s (socket handles and a small state each) from the
/// caller; the sockets and their buffers live in the caller's [`SocketSet`].
#[derive(Debug)]
pub struct Driver<'a> {
    slots: &'a mut [Slot],
    config: DriverConfig,
    next_local_port: u16,
    /// When the node next needs its timers, from the last drain.
    node_deadline: Instant,
}

const EPHEMERAL_FIRST: u16 = 49_152;

/// Read and write rounds per socket per poll, so that one busy peer cannot
/// starve the others.
const ROUNDS_PER_POLL: usize = 16;

impl<'a> Driver<'a> {
    /// A driver over `sockets`: one [`Slot`] per TCP socket in the caller's
    /// socket set (closed, each with its own receive and transmit buffers).
    /// A socket's transmit buffer must hold at least [`MIN_TRANSMIT_BUFFER`]
    /// bytes; a larger one lets several link messages wait in it.
    ///
    /// While `listen_port` is set, every socket not carrying or opening a
    /// connection listens on it, as smoltcp accepts several connections on
    /// one port (it has no accept backlog: one listening socket per
    /// connection that may arrive at once). Peers that connect at the same
    /// moment are all accepted, up to the free sockets; a dial takes a
    /// socket that still only listens. So `L` sockets hold `L` links in
    /// any mix of accepted and dialled, and a connection beyond them gets
    /// a reset. One more socket than links lets a node accept (then refuse
    /// at the link handshake) or dial while its link table is full.
    pub fn new(config: DriverConfig, sockets: &'a mut [Slot]) -> Self {
        for slot in sockets.iter_mut() {
            slot.state = SocketState::Idle;
        }
        Driver {
            slots: sockets,
            config,
            next_local_port: config.first_local_port.max(EPHEMERAL_FIRST),
            node_deadline: Instant::ZERO,
        }
    }

    /// What each socket is used for, for status output and tests.
    pub fn sockets(&self) -> impl Iterator<Item = (SocketHandle, SocketState)> + '_ {
        self.slots.iter().map(|s| (s.handle, s.state))
    }

    /// The socket carrying `link`, if any.
    pub fn socket_of(&self, link: LinkId) -> Option<SocketHandle> {
        self.slots
            .iter()
            .find(|s| matches!(s.state, SocketState::Linked(l) if l == link))
            .map(|s| s.handle)
    }

    /// Connects to `addr` for the program (the node asks for its own dials
    /// with [`Output::Dial`], which [`poll`](Self::poll) serves). The link
    /// opens as initiator expecting `expected` once TCP is up.
    pub fn dial(
        &mut self,
        iface: &mut Interface,
        sockets: &mut SocketSet<'_>,
        addr: SocketAddr,
        expected: Option<NodeId>,
    ) -> Result<(), DialError> {
        self.connect(iface, sockets, addr, expected, None)
    }

    fn connect(
        &mut self,
        iface: &mut Interface,
        sockets: &mut SocketSet<'_>,
        addr: SocketAddr,
        expected: Option<NodeId>,
        request: Option<DialRequest>,
    ) -> Result<(), DialError> {
        let SocketAddr::V4(v4) = addr else {
            return Err(DialError::Unaddressable);
        };
        // A listening socket that has seen no SYN is as free as an idle
        // one; one in SynReceived is already answering a peer.
        let Some(slot) = self.slots.iter_mut().find(|s| match s.state {
            SocketState::Idle => true,
            SocketState::Listening => {
                sockets.get::<tcp::Socket>(s.handle).state() == tcp::State::Listen
            }
            _ => false,
        }) else {
            log_warn!("dial {}: no free socket", Peer(addr));
            return Err(DialError::NoFreeSocket);
        };
        let local_port = self.next_local_port;
        self.next_local_port = match self.next_local_port.checked_add(1) {
            Some(p) => p,
            None => EPHEMERAL_FIRST,
        };
        let socket = sockets.get_mut::<tcp::Socket>(slot.handle);
        // Ends a listen (no peer yet, so nothing is sent); no-op when idle.
        socket.abort();
        slot.state = SocketState::Idle;
        configure(socket, &self.config);
        if socket
            .connect(iface.context(), IpEndpoint::from(v4), local_port)
            .is_err()
        {
            log_warn!("dial {}: no route or source address", Peer(addr));
            return Err(DialError::Unaddressable);
        }
        log_info!("{}: connecting to {}", slot.handle, Peer(addr));
        slot.state = SocketState::Connecting { expected, request };
        Ok(())
    }

    /// When [`poll`](Self::poll) must run next: the earlier of the node's
    /// deadline (from the last poll's drain) and the interface's
    /// (retransmissions, delayed ACKs).
    pub fn poll_at(&self, now: Instant, iface: &mut Interface, sockets: &SocketSet<'_>) -> Instant {
        let net = iface
            .poll_at(to_smoltcp_instant(now), sockets)
            .map(from_smoltcp_instant);
        net.map_or(self.node_deadline, |n| n.min(self.node_deadline))
    }

    /// Does everything due at `now`: polls the interface, runs the node's
    /// timers, accepts and connects, moves bytes between the sockets and the
    /// node, serves the node's dial requests, and hands every other output
    /// (events, received messages) to `on_output`, after closing the socket
    /// of a closed link. Call it when the device has frames and at
    /// [`poll_at`](Self::poll_at).
    ///
    /// `buf` receives the node's outputs: at least
    /// [`MIN_TRANSMIT_BUFFER`] bytes, and as large as the largest message
    /// the node takes (a smaller one is reported as an error and nothing is
    /// lost).
    #[allow(clippy::too_many_arguments)]
    pub fn poll<N, D, F>(
        &mut self,
        now: Instant,
        node: &mut N,
        iface: &mut Interface,
        device: &mut D,
        sockets: &mut SocketSet<'_>,
        buf: &mut [u8],
        mut on_output: F,
    ) -> Result<(), PollError>
    where
        N: Drive,
        D: Device + ?Sized,
        F: FnMut(&mut N, Output<'_>),
    {
        let snow = to_smoltcp_instant(now);
        poll_interface(iface, snow, device, sockets);
        if self.node_deadline <= now {
            node.handle(now, Timeout);
        }
        self.update_states(now, node, sockets);
        self.listen_on_idle(sockets);
        for _ in 0..ROUNDS_PER_POLL {
            self.update_room(now, node, sockets);
            self.node_deadline = drain(node, now, buf, |node, output| {
                self.on_output(now, node, iface, sockets, output, &mut on_output);
            })?;
            // Reading after the drain: what the node's full queues held back
            // may fit now.
            if !self.pump_reads(now, node, sockets) {
                break;
            }
        }
        poll_interface(iface, snow, device, sockets);
        Ok(())
    }

    /// Acts on one output of the node.
    fn on_output<N, F>(
        &mut self,
        now: Instant,
        node: &mut N,
        iface: &mut Interface,
        sockets: &mut SocketSet<'_>,
        output: Output<'_>,
        on_output: &mut F,
    ) where
        N: Drive,
        F: FnMut(&mut N, Output<'_>),
    {
        match output {
            Output::Transmit { link, bytes } => self.write(now, node, sockets, link, bytes),
            Output::Dial(request) => {
                let ok = request.address.transport == Transport::Tcp
                    && self
                        .connect(
                            iface,
                            sockets,
                            request.address.socket,
                            request.peer,
                            Some(request),
                        )
                        .is_ok();
                if !ok {
                    node.handle(now, DialFailed { request });
                }
            }
            Output::Event(Event::LinkClosed { link, .. }) => {
                self.close_link_socket(link, sockets);
                on_output(node, output);
            }
            // TCP links carry their circuits in their byte stream.
            Output::StreamCell { .. } | Output::Timeout(_) => {}
            Output::Event(_) | Output::Message { .. } => on_output(node, output),
        }
    }

    /// Follows TCP state changes: connects that finished or failed,
    /// accepted connections, and connections that ended under a link.
    fn update_states<N: Drive>(&mut self, now: Instant, node: &mut N, sockets: &mut SocketSet<'_>) {
        for slot in self.slots.iter_mut() {
            let socket = sockets.get_mut::<tcp::Socket>(slot.handle);
            let state = socket.state();
            match slot.state {
                SocketState::Idle => {}
                SocketState::Listening => match state {
                    tcp::State::Listen | tcp::State::SynReceived => {}
                    tcp::State::Established => {
                        // An established socket always knows its peer.
                        let Some(peer) = socket.remote_endpoint() else {
                            socket.abort();
                            slot.state = SocketState::Closing;
                            continue;
                        };
                        let open = OpenLink::accepted(Transport::Tcp, peer.addr.into());
                        slot.state = match node.handle(now, open) {
                            Ok(link) => {
                                log_info!("{}: accepted, {}", slot.handle, link);
                                slot.room = TransportRoom::UNLIMITED;
                                SocketState::Linked(link)
                            }
                            Err(e) => {
                                log_warn!("{}: accepted, but the node refused: {}", slot.handle, e);
                                socket.abort();
                                SocketState::Closing
                            }
                        };
                    }
                    _ => {
                        socket.abort();
                        slot.state = SocketState::Closing;
                    }
                },
                SocketState::Connecting { expected, request } => match state {
                    tcp::State::SynSent | tcp::State::SynReceived => {}
                    tcp::State::Established => {
                        let Some(peer) = socket.remote_endpoint() else {
                            socket.abort();
                            slot.state = SocketState::Closing;
                            continue;
                        };
                        let open = OpenLink {
                            anonymous: request.is_some_and(|r| r.anonymous),
                            ..OpenLink::dialled(expected, Transport::Tcp, peer.addr.into())
                        };
                        slot.state = match node.handle(now, open) {
                            Ok(link) => {
                                log_info!("{}: connected, {}", slot.handle, link);
                                slot.room = TransportRoom::UNLIMITED;
                                SocketState::Linked(link)
                            }
                            Err(e) => {
                                log_warn!(
                                    "{}: connected, but the node refused: {}",
                                    slot.handle,
                                    e
                                );
                                if let Some(request) = request {
                                    node.handle(now, DialFailed { request });
                                }
                                socket.abort();
                                SocketState::Closing
                            }
                        };
                    }
                    _ => {
                        log_warn!("{}: connect failed ({})", slot.handle, state);
                        if let Some(request) = request {
                            node.handle(now, DialFailed { request });
                        }
                        socket.abort();
                        slot.state = SocketState::Closing;
                    }
                },
                SocketState::Linked(link) => {
                    // Ended: reset or timed out, or the peer's FIN with
                    // every byte before it consumed.
                    if state == tcp::State::Closed || !socket.may_recv() {
                        log_info!("{}: TCP ended ({}) under {}", slot.handle, state, link);
                        // The link may be gone already; nothing to tell then.
                        let _ = node.handle(now, TransportClosed { link });
                        socket.close();
                        slot.state = SocketState::Closing;
                    }
                }
                SocketState::Closing => {}
            }
            if matches!(slot.state, SocketState::Closing) && !socket.is_open() {
                slot.state = SocketState::Idle;
            }
        }
    }

    /// Puts every idle socket to listen while a listen port is set, so
    /// that as many peers as there are free sockets can connect at once
    /// (see [`Driver::new`]).
    fn listen_on_idle(&mut self, sockets: &mut SocketSet<'_>) {
        let Some(port) = self.config.listen_port else {
            return;
        };
        for slot in self.slots.iter_mut() {
            if matches!(slot.state, SocketState::Idle) {
                let socket = sockets.get_mut::<tcp::Socket>(slot.handle);
                configure(socket, &self.config);
                if socket.listen(port).is_ok() {
                    slot.state = SocketState::Listening;
                }
            }
        }
    }

    /// Closes the socket under `link` gracefully: what is queued (its
    /// `Close` frame) goes first, then a FIN.
    fn close_link_socket(&mut self, link: LinkId, sockets: &mut SocketSet<'_>) {
        for slot in self.slots.iter_mut() {
            if matches!(slot.state, SocketState::Linked(l) if l == link) {
                sockets.get_mut::<tcp::Socket>(slot.handle).close();
                slot.state = SocketState::Closing;
            }
        }
    }

    /// Tells the node how much each link's socket takes now: its transmit
    /// ring's free space. The node then gives no message larger, so every
    /// message is written whole, never split or held by the driver.
    fn update_room<N: Drive>(&mut self, now: Instant, node: &mut N, sockets: &mut SocketSet<'_>) {
        for slot in self.slots.iter_mut() {
            let SocketState::Linked(link) = slot.state else {
                continue;
            };
            let bytes = room(sockets.get_mut::<tcp::Socket>(slot.handle));
            if bytes != slot.room {
                slot.room = bytes;
                let _ = node.handle(now, TransportRoom { link, bytes });
            }
        }
    }

    /// Writes one link message into its socket, which has room for it.
    fn write<N: Drive>(
        &mut self,
        now: Instant,
        node: &mut N,
        sockets: &mut SocketSet<'_>,
        link: LinkId,
        bytes: &[u8],
    ) {
        let Some(slot) = self
            .slots
            .iter_mut()
            .find(|s| matches!(s.state, SocketState::Linked(l) if l == link))
        else {
            return;
        };
        let socket = sockets.get_mut::<tcp::Socket>(slot.handle);
        let written = socket.send_slice(bytes).unwrap_or(0);
        if written < bytes.len() {
            // More than the room the node was told: the stream is broken.
            log_warn!("{}: a link message did not fit; aborting", slot.handle);
            socket.abort();
            slot.state = SocketState::Closing;
            let _ = node.handle(now, TransportClosed { link });
            return;
        }
        // The node counts down the room it was told by what it gave.
        slot.room = slot.room.saturating_sub(written);
    }

    /// Feeds the node what each socket holds, straight from its receive
    /// buffer; bytes the node does not take stay in the socket. Returns
    /// whether the node took any.
    fn pump_reads<N: Drive>(
        &mut self,
        now: Instant,
        node: &mut N,
        sockets: &mut SocketSet<'_>,
    ) -> bool {
        let mut progressed = false;
        for slot in self.slots.iter_mut() {
            let SocketState::Linked(link) = slot.state else {
                continue;
            };
            let socket = sockets.get_mut::<tcp::Socket>(slot.handle);
            if !socket.can_recv() {
                continue;
            }
            let result = socket.recv(|bytes| match node.handle(now, Receive { link, bytes }) {
                Ok(n) => (n.min(bytes.len()), Ok(n)),
                Err(e) => (0, Err(e)),
            });
            match result {
                Ok(Ok(consumed)) => progressed |= consumed > 0,
                Ok(Err(e)) => {
                    log_warn!("{}: {}; aborting the socket", slot.handle, e);
                    // The node no longer knows the link: drop the socket.
                    socket.abort();
                    slot.state = SocketState::Closing;
                }
                Err(_) => {}
            }
        }
        progressed
    }
}

/// How many bytes a socket takes now.
fn room(socket: &tcp::Socket<'_>) -> usize {
    if socket.may_send() {
        socket.send_capacity().saturating_sub(socket.send_queue())
    } else {
        0
    }
}

/// A socket address, for log lines (read only by defmt).
#[cfg_attr(not(feature = "defmt"), allow(dead_code))]
struct Peer(SocketAddr);

#[cfg(feature = "defmt")]
impl defmt::Format for Peer {
    fn format(&self, f: defmt::Formatter<'_>) {
        match self.0 {
            SocketAddr::V4(v4) => {
                let [a, b, c, d] = v4.ip().octets();
                defmt::write!(f, "{}.{}.{}.{}:{}", a, b, c, d, v4.port());
            }
            SocketAddr::V6(v6) => defmt::write!(f, "[{=[u8]:x}]:{}", v6.ip().octets(), v6.port()),
        }
    }
}

/// Polls the interface as smoltcp 0.12's `Interface::poll` did: every
/// received packet, then one egress round, in which each socket sends at
/// most one segment. Since 0.13 `Interface::poll` repeats egress until no
/// socket has anything left, so a socket sends its whole window (up to four
/// segments of a 512-byte window) back to back; a medium with a short queue
/// (the firmware's 2-packet hub rings) drops all but the first and, with
/// RFC 6298's 1 s minimum RTO, each loss stalls the link for a second or
/// more. Segments not sent now go at the next poll, which
/// [`Driver::poll_at`] asks for at once.
fn poll_interface<D: Device + ?Sized>(
    iface: &mut Interface,
    now: smoltcp::time::Instant,
    device: &mut D,
    sockets: &mut SocketSet<'_>,
) {
    while iface.poll_ingress_single(now, device, sockets)
        != smoltcp::iface::PollIngressSingleResult::None
    {}
    iface.poll_egress(now, device, sockets);
}

fn configure(socket: &mut tcp::Socket<'_>, config: &DriverConfig) {
    let micros = |d: Duration| smoltcp::time::Duration::from_micros(d.as_micros());
    socket.set_timeout(config.tcp_timeout.map(micros));
    socket.set_keep_alive(config.tcp_keep_alive.map(micros));
    // Link messages are whole when written; do not hold them back.
    socket.set_nagle_enabled(false);
}
