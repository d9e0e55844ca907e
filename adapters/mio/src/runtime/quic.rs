//! QUIC beside TCP: one UDP socket in the same poll, its connections
//! carrying veil links with a stream per circuit (veil-quic).
//!
//! The runtime turns QUIC exactly as it turns TCP: readiness in, reads fed
//! to the node before each drain, the node's outputs for QUIC links handed
//! to [`QuicLinks`] inside the same drain, and the wait bounded by QUIC's
//! own timers.

use std::net::SocketAddr;

use veil_core::identity::{NodeId, Transport};
use veil_core::node::{DialFailed, Drive, LinkId, Output};
use veil_core::time::Instant;
use veil_quic::{QuicConfig, QuicLinks, QuicSocket};

use super::io::Io;
use super::{Runtime, QUIC_SOCKET};
use crate::connection::ConnectionInfo;
use crate::error::{BindError, DialError};

/// The QUIC socket and the links over its connections.
#[derive(Debug)]
pub(super) struct QuicSide {
    pub(super) socket: QuicSocket,
    pub(super) links: QuicLinks,
}

impl Runtime {
    /// Also listens for QUIC on `addr` (UDP) and dials QUIC for the node's
    /// requests. The node advertises the QUIC address beside the TCP one
    /// (when `addr` is a specific IP), and a node built with
    /// `NodeConfig::quic_dials` dials QUIC first, racing TCP after
    /// `transport_race_delay` (relay spec §10). Returns the bound address.
    pub fn listen_quic(
        &mut self,
        addr: SocketAddr,
        config: QuicConfig,
    ) -> Result<SocketAddr, BindError> {
        let mut socket =
            QuicSocket::bind(addr, config).map_err(|source| BindError::Quic { addr, source })?;
        socket
            .register(self.io.poll.registry(), QUIC_SOCKET)
            .map_err(BindError::Register)?;
        let local = socket.local_addr();
        self.io.quic = Some(QuicSide {
            socket,
            links: QuicLinks::default(),
        });
        self.advertise();
        Ok(local)
    }

    /// The QUIC address, if [`listen_quic`](Self::listen_quic) was called.
    pub fn quic_addr(&self) -> Option<SocketAddr> {
        self.io.quic.as_ref().map(|q| q.socket.local_addr())
    }

    /// Connects to a QUIC address for the program (as [`dial`](Self::dial)
    /// does over TCP); `expected` is the node id the peer must prove.
    pub fn dial_quic(
        &mut self,
        addr: SocketAddr,
        expected: Option<NodeId>,
    ) -> Result<(), DialError> {
        if self.io.closing {
            return Err(DialError::ShuttingDown);
        }
        let now = self.io.clock.now();
        let Some(q) = &mut self.io.quic else {
            return Err(DialError::UnsupportedTransport(Transport::Quic));
        };
        q.links
            .dial_address(q.socket.transport_mut(), now, addr, expected)
            .map(|_| ())
            .map_err(|e| DialError::Quic(e.to_string()))
    }
}

impl Io {
    /// Takes the outputs that belong to QUIC (its links' bytes and cells,
    /// dials to QUIC addresses; a QUIC link's close) and returns the rest.
    /// Without a QUIC socket a QUIC dial fails at once, so the node falls
    /// back to TCP.
    pub(super) fn quic_output<'b, N: Drive>(
        &mut self,
        node: &mut N,
        now: Instant,
        output: Output<'b>,
    ) -> Option<Output<'b>> {
        match (&mut self.quic, output) {
            (Some(q), output) => q
                .links
                .on_output(q.socket.transport_mut(), node, now, output),
            (None, Output::Dial(request)) if request.address.transport == Transport::Quic => {
                node.handle(now, DialFailed { request });
                None
            }
            (None, output) => Some(output),
        }
    }

    /// Datagrams in, QUIC timers, and connection events (links open and
    /// close here).
    pub(super) fn service_quic_in<N: Drive>(&mut self, node: &mut N, now: Instant) {
        let Some(q) = &mut self.quic else {
            return;
        };
        q.socket.receive(now);
        q.socket.handle_timeout(now);
        while let Some(event) = q.socket.transport_mut().poll_event() {
            q.links
                .handle_event(q.socket.transport_mut(), node, now, event);
        }
    }

    /// Datagrams out.
    pub(super) fn service_quic_out(&mut self, now: Instant) {
        if let Some(q) = &mut self.quic {
            q.socket.transmit(now);
        }
    }

    /// QUIC links' reads into the node; whether anything moved.
    pub(super) fn read_quic<N: Drive>(&mut self, node: &mut N, now: Instant) -> bool {
        let Some(q) = &mut self.quic else {
            return false;
        };
        let before = q.links.buffered_bytes();
        q.links.pump_reads(q.socket.transport_mut(), node, now);
        q.links.has_work() || q.links.buffered_bytes() != before
    }

    /// Retries what QUIC links hold for lack of room.
    pub(super) fn flush_quic<N: Drive>(&mut self, node: &mut N, now: Instant) {
        let Some(q) = &mut self.quic else {
            return;
        };
        let conns: Vec<_> = q.links.connections().collect();
        for conn in conns {
            q.links.flush(q.socket.transport_mut(), node, now, conn);
        }
    }

    /// Whether QUIC has work the loop must not sleep on.
    pub(super) fn quic_has_work(&self) -> bool {
        self.quic
            .as_ref()
            .is_some_and(|q| q.socket.has_work() || q.links.has_work())
    }

    /// The earliest QUIC timer: the transport's and the dials'.
    pub(super) fn quic_deadline(&mut self) -> Option<Instant> {
        let q = self.quic.as_mut()?;
        let transport = q.socket.next_timeout();
        let dials = q.links.next_deadline();
        [transport, dials].into_iter().flatten().min()
    }

    /// The QUIC connection under `link`, if it has one.
    pub(super) fn quic_connection(&self, link: LinkId) -> Option<ConnectionInfo> {
        let q = self.quic.as_ref()?;
        let conn = q.links.conn_of(link)?;
        Some(ConnectionInfo {
            link,
            peer_addr: q.socket.transport().remote(conn)?,
            transport: Transport::Quic,
            buffered_out: 0,
            buffered_in: 0,
            write_blocked: false,
            circuit_streams: q.links.circuit_streams(link),
        })
    }
}
