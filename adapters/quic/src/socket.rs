//! [`QuicSocket`]: one mio UDP socket driving one [`QuicTransport`].
//!
//! Meant to sit in a mio event loop beside TCP sockets: register it under
//! a token, pass that token's readiness to [`QuicSocket::on_ready`], and
//! call [`receive`](QuicSocket::receive) and
//! [`transmit`](QuicSocket::transmit) each turn; wake for
//! [`next_timeout`](QuicSocket::next_timeout) as for any other timer.

use std::io;
use std::net::SocketAddr;

use mio::net::UdpSocket;
use mio::{Interest, Registry, Token};
use veil_core::time::Instant;

use crate::config::{QuicConfig, MAX_DATAGRAM};
use crate::error::SetupError;
use crate::transport::QuicTransport;

/// Datagrams read per [`receive`](QuicSocket::receive), so a flood on UDP
/// cannot starve the other sockets of the loop.
const DATAGRAMS_PER_RECEIVE: usize = 256;

/// Datagrams sent per [`transmit`](QuicSocket::transmit), for the same
/// reason.
const DATAGRAMS_PER_TRANSMIT: usize = 256;

/// Receive buffer: larger than any datagram a peer may send us (we
/// advertise a 1472-byte `max_udp_payload_size`); a longer one is cut and
/// then fails QUIC's authentication, like any damaged packet.
const RECEIVE_BUFFER: usize = 2048;

/// A UDP socket and the QUIC transport on it.
#[derive(Debug)]
pub struct QuicSocket {
    socket: UdpSocket,
    local_addr: SocketAddr,
    transport: QuicTransport,
    recv_buf: Box<[u8]>,
    send_buf: Box<[u8]>,
    /// A datagram the socket would not take, sent before any other.
    blocked: Option<(SocketAddr, usize)>,
    /// No `WouldBlock` from a read since the last readable event.
    readable: bool,
    /// No `WouldBlock` from a write since the last writable event.
    writable: bool,
    /// The transmit budget ran out with more to send.
    more_to_send: bool,
}

impl QuicSocket {
    /// Binds a UDP socket on `addr` and builds a transport on it.
    pub fn bind(addr: SocketAddr, config: QuicConfig) -> Result<Self, SetupError> {
        let socket = UdpSocket::bind(addr).map_err(SetupError::Io)?;
        let local_addr = socket.local_addr().map_err(SetupError::Io)?;
        let transport = QuicTransport::new(config)?;
        Ok(QuicSocket {
            socket,
            local_addr,
            transport,
            recv_buf: vec![0u8; RECEIVE_BUFFER].into_boxed_slice(),
            send_buf: vec![0u8; MAX_DATAGRAM].into_boxed_slice(),
            blocked: None,
            readable: true,
            writable: true,
            more_to_send: false,
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
        let mut count = 0usize;
        while self.readable && count < DATAGRAMS_PER_RECEIVE {
            match self.socket.recv_from(&mut self.recv_buf) {
                Ok((n, from)) => {
                    count = count.saturating_add(1);
                    let data = self.recv_buf.get(..n).unwrap_or_default();
                    self.transport.handle_datagram(now, from, data);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.readable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // An ICMP error for an earlier send (refused, unreachable):
                // QUIC notices the loss on its own. Go on reading.
                Err(_) => count = count.saturating_add(1),
            }
        }
        count
    }

    /// Sends what the transport has, until it has nothing, the socket is
    /// full, or the budget is spent. Returns how many datagrams went out.
    pub fn transmit(&mut self, now: Instant) -> usize {
        let mut sent = 0usize;
        self.more_to_send = false;
        while self.writable {
            if sent == DATAGRAMS_PER_TRANSMIT {
                self.more_to_send = true;
                break;
            }
            let next = match self.blocked.take() {
                Some(datagram) => Some(datagram),
                None => self.transport.poll_datagram(now, &mut self.send_buf),
            };
            let Some((to, len)) = next else {
                break;
            };
            let datagram = self.send_buf.get(..len).unwrap_or_default();
            match self.socket.send_to(datagram, to) {
                Ok(_) => sent = sent.saturating_add(1),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.blocked = Some((to, len));
                    self.writable = false;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    self.blocked = Some((to, len));
                }
                // Unreachable network, a firewall's EPERM, …: the datagram
                // is lost, and QUIC treats it as any lost packet.
                Err(_) => sent = sent.saturating_add(1),
            }
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
