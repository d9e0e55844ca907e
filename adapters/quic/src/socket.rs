//! [`QuicSocket`]: one mio UDP socket driving one [`QuicTransport`].
//!
//! Meant to sit in a mio event loop beside TCP sockets: register it under
//! a token, pass that token's readiness to [`QuicSocket::on_ready`], and
//! call [`receive`](QuicSocket::receive) and
//! [`transmit`](QuicSocket::transmit) each turn; wake for
//! [`next_timeout`](QuicSocket::next_timeout) as for any other timer.
//!
//! mio only says when the socket is ready; the datagrams themselves go
//! through quinn-udp, quinn's own socket layer, because per-datagram
//! system calls were what held QUIC below TCP (`docs/performance.md`):
//!
//! * **GSO**: quinn-proto writes several same-size datagrams for one
//!   destination back to back, and one `sendmsg` with `UDP_SEGMENT` sends
//!   them all (up to 64 per call, at most 64 KiB);
//! * **GRO** and `recvmmsg`: one system call returns several buffers, each
//!   maybe several datagrams the kernel coalesced, split here at their
//!   stride;
//! * **ECN** bits both ways, which quinn-proto's congestion controller uses;
//! * the **don't-fragment** bit (`IP_MTU_DISCOVER` = probe, `IPV6_DONTFRAG`),
//!   set by `UdpSocketState::new`, which makes path MTU discovery safe: a
//!   probe too large for the path is lost instead of fragmented.
//!
//! Where the platform lacks GSO or GRO, quinn-udp reports one segment and
//! everything still works, one datagram per call.

use std::io::{self, IoSliceMut};
use std::net::SocketAddr;

use bytes::BytesMut;
use mio::net::UdpSocket;
use mio::{Interest, Registry, Token};
use quinn_proto::Transmit;
use quinn_udp::{RecvMeta, UdpSockRef, UdpSocketState};
use veil_core::time::Instant;

use crate::config::{QuicConfig, MAX_DATAGRAM};
use crate::error::SetupError;
use crate::transport::QuicTransport;

/// Datagrams read per [`receive`](QuicSocket::receive), so a flood on UDP
/// cannot starve the other sockets of the loop.
const DATAGRAMS_PER_RECEIVE: usize = 256;

/// Datagrams sent per [`transmit`](QuicSocket::transmit), for the same
/// reason (a GSO batch counts as its datagrams, not as one).
const DATAGRAMS_PER_TRANSMIT: usize = 256;

/// Buffers filled by one receive call (`recvmmsg`). Each holds a GRO batch
/// (up to 64 datagrams), so 8 of them hold more than a turn's budget.
const RECEIVE_SLICES: usize = 8;

/// A receive buffer with GRO: the most a coalesced batch can hold (the
/// UDP length field's limit).
const GRO_BUFFER: usize = 65_536;

/// Datagrams in one GSO batch at most. quinn-udp allows 64 on Linux; 64 KiB
/// (the most one send may carry) holds 44 of 1452 bytes, and
/// [`QuicTransport::poll_transmit`] bounds a batch by that too.
const MAX_SEGMENTS: usize = 64;

/// What the socket did, counted since it was bound: the datagrams against
/// the system calls that moved them shows whether GSO and GRO batch them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SocketStats {
    /// Send calls that the kernel took (each one GSO batch or datagram).
    pub send_calls: u64,
    /// Datagrams in those calls.
    pub datagrams_sent: u64,
    /// Receive calls that returned data (each maybe several buffers).
    pub receive_calls: u64,
    /// Datagrams in what they returned, GRO batches split.
    pub datagrams_received: u64,
    /// The largest datagram sent, in bytes.
    pub largest_sent: u64,
}

/// A transmit the socket would not take yet: its bytes stay in the send
/// buffer, and it goes before any other.
#[derive(Debug)]
struct Pending {
    transmit: Transmit,
}

/// A UDP socket and the QUIC transport on it.
#[derive(Debug)]
pub struct QuicSocket {
    socket: UdpSocket,
    state: UdpSocketState,
    local_addr: SocketAddr,
    transport: QuicTransport,
    /// [`RECEIVE_SLICES`] buffers of `slice_len` bytes, back to back.
    recv_buf: Box<[u8]>,
    slice_len: usize,
    recv_meta: [RecvMeta; RECEIVE_SLICES],
    /// Where quinn-proto writes a batch of datagrams.
    send_buf: Vec<u8>,
    /// Segments per send call the platform allows (1 without GSO).
    max_segments: usize,
    blocked: Option<Pending>,
    /// No `WouldBlock` from a read since the last readable event.
    readable: bool,
    /// No `WouldBlock` from a write since the last writable event.
    writable: bool,
    /// The transmit budget ran out with more to send.
    more_to_send: bool,
    stats: SocketStats,
}

impl QuicSocket {
    /// Binds a UDP socket on `addr` and builds a transport on it.
    pub fn bind(addr: SocketAddr, config: QuicConfig) -> Result<Self, SetupError> {
        let socket = UdpSocket::bind(addr).map_err(SetupError::Io)?;
        let local_addr = socket.local_addr().map_err(SetupError::Io)?;
        // Non-blocking already (mio); this sets GRO, ECN reception, the
        // packet-info options and the don't-fragment bit.
        let state = UdpSocketState::new(UdpSockRef::from(&socket)).map_err(SetupError::Io)?;
        let mut config = config;
        if local_addr.ip().is_loopback() {
            // Only same-host peers, over a 64 KiB-MTU interface: see
            // `QuicConfig::loopback_max_mtu`.
            config.max_mtu = config.max_mtu.max(config.loopback_max_mtu);
        }
        let max_payload = usize::from(config.max_mtu).max(MAX_DATAGRAM);
        let transport = QuicTransport::with_mtu_discovery(config, !state.may_fragment())?;
        // A buffer holds one datagram (at most `max_payload` bytes: the
        // peer may send no more than we advertise), or with GRO one
        // coalesced batch, at most a UDP length's 64 KiB.
        let slice_len = if state.gro_segments() > 1 {
            max_payload.max(GRO_BUFFER)
        } else {
            max_payload
        };
        let max_segments = state.max_gso_segments().clamp(1, MAX_SEGMENTS);
        Ok(QuicSocket {
            socket,
            state,
            local_addr,
            transport,
            recv_buf: vec![0u8; slice_len.saturating_mul(RECEIVE_SLICES)].into_boxed_slice(),
            slice_len,
            recv_meta: [RecvMeta::default(); RECEIVE_SLICES],
            send_buf: Vec::with_capacity(GRO_BUFFER.max(max_payload)),
            max_segments,
            blocked: None,
            readable: true,
            writable: true,
            more_to_send: false,
            stats: SocketStats::default(),
        })
    }

    /// The address the socket is bound to (with the port the OS chose).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The transport.
    pub fn transport(&self) -> &QuicTransport {
        &self.transport
    }

    /// The transport, to connect, read, write and close.
    pub fn transport_mut(&mut self) -> &mut QuicTransport {
        &mut self.transport
    }

    /// What the socket moved, and in how many system calls.
    pub fn stats(&self) -> SocketStats {
        self.stats
    }

    /// Datagrams one send call may carry here: above 1 when the platform
    /// has GSO.
    pub fn max_segments(&self) -> usize {
        self.max_segments
    }

    /// Whether datagrams may be fragmented by IP: `false` when the socket
    /// carries the don't-fragment bit, which path MTU discovery relies on.
    pub fn may_fragment(&self) -> bool {
        self.state.may_fragment()
    }

    /// Registers the socket with a mio poller, for both directions.
    pub fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        registry.register(
            &mut self.socket,
            token,
            Interest::READABLE.add(Interest::WRITABLE),
        )
    }

    /// Removes the socket from a mio poller.
    pub fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        registry.deregister(&mut self.socket)
    }

    /// Records the socket's readiness from a mio event.
    pub fn on_ready(&mut self, readable: bool, writable: bool) {
        self.readable |= readable;
        self.writable |= writable;
    }

    /// Whether the last `receive` or `transmit` stopped on its budget, so
    /// the loop must not sleep before calling them again.
    pub fn has_work(&self) -> bool {
        self.readable || (self.writable && self.more_to_send)
    }

    /// Reads datagrams and feeds them to the transport, until the socket is
    /// empty or the budget is spent. Returns how many were read.
    pub fn receive(&mut self, now: Instant) -> usize {
        let QuicSocket {
            socket,
            state,
            transport,
            recv_buf,
            slice_len,
            recv_meta,
            readable,
            stats,
            ..
        } = self;
        let mut count = 0usize;
        while *readable && count < DATAGRAMS_PER_RECEIVE {
            let mut slices = recv_buf.chunks_mut((*slice_len).max(1));
            let mut bufs: [IoSliceMut<'_>; RECEIVE_SLICES] =
                std::array::from_fn(|_| IoSliceMut::new(slices.next().unwrap_or_default()));
            match state.recv(UdpSockRef::from(&*socket), &mut bufs, recv_meta) {
                Ok(filled) => {
                    stats.receive_calls = stats.receive_calls.saturating_add(1);
                    for (meta, buf) in recv_meta.iter().zip(bufs.iter()).take(filled) {
                        let Some(bytes) = buf.get(..meta.len) else {
                            continue;
                        };
                        // One copy per buffer; the datagrams in it are then
                        // split off without copying.
                        let mut data = BytesMut::from(bytes);
                        let stride = if meta.stride == 0 {
                            data.len()
                        } else {
                            meta.stride
                        };
                        let ecn = meta.ecn.and_then(ecn_to_proto);
                        while !data.is_empty() {
                            let datagram = data.split_to(stride.min(data.len()));
                            count = count.saturating_add(1);
                            transport.handle_segment(now, meta.addr, meta.dst_ip, ecn, datagram);
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => *readable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // An ICMP error for an earlier send (refused, unreachable):
                // QUIC notices the loss on its own. Go on reading.
                Err(_) => count = count.saturating_add(1),
            }
        }
        stats.datagrams_received = stats
            .datagrams_received
            .saturating_add(u64::try_from(count).unwrap_or(u64::MAX));
        count
    }

    /// Sends what the transport has, until it has nothing, the socket is
    /// full, or the budget is spent. Returns how many datagrams went out.
    pub fn transmit(&mut self, now: Instant) -> usize {
        let mut sent = 0usize;
        self.more_to_send = false;
        while self.writable {
            if sent >= DATAGRAMS_PER_TRANSMIT {
                self.more_to_send = true;
                break;
            }
            let pending = match self.blocked.take() {
                Some(pending) => pending,
                None => {
                    let room = DATAGRAMS_PER_TRANSMIT.saturating_sub(sent);
                    let max = self.max_segments.min(room).max(1);
                    match self.transport.poll_transmit(now, max, &mut self.send_buf) {
                        Some(transmit) => Pending { transmit },
                        None => break,
                    }
                }
            };
            let t = &pending.transmit;
            let contents = self.send_buf.get(..t.size).unwrap_or_default();
            let segment = t.segment_size.unwrap_or(t.size).max(1);
            let datagrams = t.size.div_ceil(segment).max(1);
            let out = quinn_udp::Transmit {
                destination: t.destination,
                ecn: t.ecn.and_then(ecn_to_udp),
                contents,
                segment_size: t.segment_size,
                src_ip: t.src_ip,
            };
            // `send` reports only `WouldBlock`: any other failure
            // (unreachable network, a firewall's EPERM, a probe larger than
            // the interface) loses the datagrams, which QUIC treats as any
            // lost packets. It also turns GSO off for good if the kernel or
            // driver refuses it.
            match self.state.send(UdpSockRef::from(&self.socket), &out) {
                Ok(()) => {
                    sent = sent.saturating_add(datagrams);
                    let s = &mut self.stats;
                    s.send_calls = s.send_calls.saturating_add(1);
                    s.datagrams_sent = s
                        .datagrams_sent
                        .saturating_add(u64::try_from(datagrams).unwrap_or(u64::MAX));
                    let largest = u64::try_from(segment.min(t.size)).unwrap_or(u64::MAX);
                    s.largest_sent = s.largest_sent.max(largest);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.blocked = Some(pending);
                    self.writable = false;
                }
                Err(_) => sent = sent.saturating_add(datagrams),
            }
            self.max_segments = self.max_segments.min(self.state.max_gso_segments().max(1));
        }
        sent
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next run.
    pub fn next_timeout(&mut self) -> Option<Instant> {
        self.transport.next_timeout()
    }

    /// Runs the transport's due timers (then [`transmit`](Self::transmit)
    /// what they produced).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.transport.next_timeout().is_some_and(|t| t <= now) {
            self.transport.handle_timeout(now);
        }
    }
}

/// quinn-udp's ECN codepoint as quinn-proto's (the same two bits).
fn ecn_to_proto(ecn: quinn_udp::EcnCodepoint) -> Option<quinn_proto::EcnCodepoint> {
    quinn_proto::EcnCodepoint::from_bits(match ecn {
        quinn_udp::EcnCodepoint::Ect0 => 0b10,
        quinn_udp::EcnCodepoint::Ect1 => 0b01,
        quinn_udp::EcnCodepoint::Ce => 0b11,
    })
}

/// quinn-proto's ECN codepoint as quinn-udp's.
fn ecn_to_udp(ecn: quinn_proto::EcnCodepoint) -> Option<quinn_udp::EcnCodepoint> {
    quinn_udp::EcnCodepoint::from_bits(match ecn {
        quinn_proto::EcnCodepoint::Ect0 => 0b10,
        quinn_proto::EcnCodepoint::Ect1 => 0b01,
        quinn_proto::EcnCodepoint::Ce => 0b11,
    })
}
