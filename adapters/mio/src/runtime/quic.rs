//! QUIC beside TCP: one UDP socket in the same poll, its connections
//! carrying veil links with a stream per circuit (veil-quic).
//!
//! The runtime turns QUIC exactly as it turns TCP: readiness in, bytes
//! moved both ways within budgets, events drained through the one
//! `drain_events` (which closes a `LinkClosed` link's connection, QUIC or
//! TCP), and the wait bounded by QUIC's own timers.

use std::net::SocketAddr;

use mio::Token;
use veil_core::identity::{Address, NodeId, Transport};
use veil_core::node::{DialRequest, Event, LinkId};
use veil_core::time::Instant;
use veil_quic::{QuicConfig, QuicLinks, QuicSocket};

use super::Runtime;
use crate::connection::ConnectionInfo;
use crate::error::{BindError, DialError};
use crate::trace::TracedNode;

/// The UDP socket's token; TCP tokens never reach it.
const QUIC_SOCKET: Token = Token(usize::MAX - 1);

/// Pumps of QUIC links per turn while they have work left (bytes the node
/// did not take, a budget that ran out), between which node events are
/// drained.
const PUMPS_PER_TURN: usize = 4;

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
            .register(self.poll.registry(), QUIC_SOCKET)
            .map_err(BindError::Register)?;
        let local = socket.local_addr();
        self.quic = Some(QuicSide {
            socket,
            links: QuicLinks::default(),
        });
        self.advertise(self.clock.now());
        Ok(local)
    }

    /// The QUIC address, if [`listen_quic`](Self::listen_quic) was called.
    pub fn quic_addr(&self) -> Option<SocketAddr> {
        self.quic.as_ref().map(|q| q.socket.local_addr())
    }

    /// Connects to a QUIC address for the program (as [`dial`](Self::dial)
    /// does over TCP); `expected` is the node id the peer must prove.
    pub fn dial_quic(
        &mut self,
        addr: SocketAddr,
        expected: Option<NodeId>,
    ) -> Result<(), DialError> {
        if self.closing {
            return Err(DialError::ShuttingDown);
        }
        let now = self.clock.now();
        let Some(q) = &mut self.quic else {
            return Err(DialError::UnsupportedTransport(Transport::Quic));
        };
        q.links
            .dial_address(q.socket.transport_mut(), now, addr, expected)
            .map(|_| ())
            .map_err(|e| DialError::Quic(e.to_string()))
    }

    /// Re-advertises the listening addresses (TCP, and QUIC if listening)
    /// when they are specific IPs.
    pub(super) fn advertise(&mut self, now: Instant) {
        let mut addresses = Vec::new();
        if !self.local_addr.ip().is_unspecified() {
            addresses.push(Address {
                transport: Transport::Tcp,
                socket: self.local_addr,
            });
        }
        if let Some(quic) = self.quic_addr().filter(|a| !a.ip().is_unspecified()) {
            addresses.push(Address {
                transport: Transport::Quic,
                socket: quic,
            });
        }
        if !addresses.is_empty() {
            self.node.set_advertised_addresses(now, &addresses);
        }
    }

    /// Answers a core dial request for QUIC. Without a QUIC socket it fails
    /// at once, so the core falls back to TCP.
    pub(super) fn dial_quic_for_core(&mut self, now: Instant, request: DialRequest) {
        match &mut self.quic {
            Some(q) => {
                q.links
                    .dial(q.socket.transport_mut(), &mut self.node, now, request);
            }
            None => self.node.dial_failed(now, &request),
        }
    }

    /// Readiness of the UDP socket.
    pub(super) fn quic_ready(&mut self, readable: bool, writable: bool) {
        if let Some(q) = &mut self.quic {
            q.socket.on_ready(readable, writable);
        }
    }

    /// Everything a turn does for QUIC besides waiting: datagrams in,
    /// timers, connection events, bytes both ways, node events out,
    /// datagrams out.
    pub(super) fn service_quic<F>(&mut self, now: Instant, on_event: &mut F)
    where
        F: FnMut(&mut TracedNode, Event),
    {
        let Some(q) = &mut self.quic else {
            return;
        };
        q.socket.receive(now);
        q.socket.handle_timeout(now);
        while let Some(event) = q.socket.transport_mut().poll_event() {
            q.links
                .handle_event(q.socket.transport_mut(), &mut self.node, now, event);
        }
        q.links
            .expire_dials(q.socket.transport_mut(), &mut self.node, now);
        for _ in 0..PUMPS_PER_TURN {
            let Some(q) = &mut self.quic else {
                return;
            };
            q.links.pump(q.socket.transport_mut(), &mut self.node, now);
            let more = q.links.has_work();
            let drained = self.drain_events(on_event);
            if !more && drained == 0 {
                break;
            }
        }
        if let Some(q) = &mut self.quic {
            q.socket.transmit(now);
        }
    }

    /// The node closed `link`: if it runs over QUIC, close its connection
    /// gracefully (the peer gets what was written, the `Close` frame last).
    /// Returns whether it did.
    pub(super) fn close_quic_link(&mut self, now: Instant, link: LinkId) -> bool {
        let Some(q) = &mut self.quic else {
            return false;
        };
        if q.links.conn_of(link).is_none() {
            return false;
        }
        q.links.link_closed(q.socket.transport_mut(), now, link);
        true
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

    /// Closes every QUIC connection gracefully (at shutdown, after the node
    /// closed its links).
    pub(super) fn close_all_quic(&mut self, now: Instant) {
        if let Some(q) = &mut self.quic {
            q.socket.transport_mut().close_all(now);
        }
    }

    /// QUIC connections still open or closing.
    pub(super) fn quic_connections(&self) -> usize {
        self.quic
            .as_ref()
            .map_or(0, |q| q.socket.transport().connection_count())
    }

    /// Bytes QUIC links hold, both directions.
    pub(super) fn quic_buffered(&self) -> usize {
        self.quic.as_ref().map_or(0, |q| q.links.buffered_bytes())
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

    /// Every QUIC connection carrying a link.
    pub(super) fn quic_connection_infos(&self) -> Vec<ConnectionInfo> {
        let links: Vec<LinkId> = self
            .node
            .links()
            .map(|l| l.link)
            .filter(|&l| {
                self.quic
                    .as_ref()
                    .is_some_and(|q| q.links.conn_of(l).is_some())
            })
            .collect();
        links
            .into_iter()
            .filter_map(|l| self.quic_connection(l))
            .collect()
    }
}
