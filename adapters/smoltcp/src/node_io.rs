//! The part of a veil node the driver uses, as a trait so that the driver
//! is not generic over the node's nine storage and capacity parameters.

use veil_core::identity::NodeId;
use veil_core::identity::Transport;
use veil_core::link::LinkRole;
use veil_core::message::MessageSlot;
use veil_core::node::{DialRequest, Event, LinkId, LinkInputError, LinkSlot, Node, OpenLinkError};
use veil_core::time::Instant;

/// The inputs and outputs of a [`Node`] that carry links. Implemented for
/// every `Node`; the driver needs nothing else.
pub trait NodeIo {
    /// See [`Node::open_link`].
    fn open_link(
        &mut self,
        now: Instant,
        role: LinkRole,
        expected_peer: Option<NodeId>,
    ) -> Result<LinkId, OpenLinkError>;
    /// See [`Node::handle_data`].
    fn handle_data(
        &mut self,
        now: Instant,
        link: LinkId,
        data: &[u8],
    ) -> Result<usize, LinkInputError>;
    /// See [`Node::handle_transport_closed`].
    fn handle_transport_closed(&mut self, now: Instant, link: LinkId)
        -> Result<(), LinkInputError>;
    /// See [`Node::handle_timeout`].
    fn handle_timeout(&mut self, now: Instant);
    /// See [`Node::dial_failed`].
    fn dial_failed(&mut self, now: Instant, request: &DialRequest);
    /// See [`Node::poll_link_transmit`].
    fn poll_link_transmit(&mut self, now: Instant, link: LinkId, buf: &mut [u8]) -> Option<usize>;
    /// See [`Node::poll_event`].
    fn poll_event(&mut self) -> Option<Event>;
    /// See [`Node::poll_dial`].
    fn poll_dial(&mut self) -> Option<DialRequest>;
    /// See [`Node::poll_timeout`].
    fn poll_timeout(&self) -> Option<Instant>;
}

impl<
        S,
        MB,
        const RX: usize,
        const TXQ: usize,
        const EVENTS: usize,
        const PEERS: usize,
        const RELAYED: usize,
        const OWN: usize,
        const MSG: usize,
    > NodeIo for Node<S, MB, RX, TXQ, EVENTS, PEERS, RELAYED, OWN, MSG>
where
    S: AsRef<[LinkSlot<RX, TXQ>]> + AsMut<[LinkSlot<RX, TXQ>]>,
    MB: AsRef<[MessageSlot<MSG>]> + AsMut<[MessageSlot<MSG>]>,
{
    fn open_link(
        &mut self,
        now: Instant,
        role: LinkRole,
        expected_peer: Option<NodeId>,
    ) -> Result<LinkId, OpenLinkError> {
        // The smoltcp adapter's links are TCP.
        Node::open_link_over(self, now, role, expected_peer, Transport::Tcp)
    }

    #[inline(never)]
    fn handle_data(
        &mut self,
        now: Instant,
        link: LinkId,
        data: &[u8],
    ) -> Result<usize, LinkInputError> {
        Node::handle_data(self, now, link, data)
    }

    fn handle_transport_closed(
        &mut self,
        now: Instant,
        link: LinkId,
    ) -> Result<(), LinkInputError> {
        Node::handle_transport_closed(self, now, link)
    }

    #[inline(never)]
    fn handle_timeout(&mut self, now: Instant) {
        Node::handle_timeout(self, now);
    }

    fn dial_failed(&mut self, now: Instant, request: &DialRequest) {
        Node::dial_failed(self, now, request);
    }

    fn poll_link_transmit(&mut self, now: Instant, link: LinkId, buf: &mut [u8]) -> Option<usize> {
        Node::poll_link_transmit(self, now, link, buf)
    }

    fn poll_event(&mut self) -> Option<Event> {
        Node::poll_event(self)
    }

    fn poll_dial(&mut self) -> Option<DialRequest> {
        Node::poll_dial(self)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        Node::poll_timeout(self)
    }
}
