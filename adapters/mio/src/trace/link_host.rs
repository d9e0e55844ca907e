//! QUIC links drive the node through [`TracedNode`], so that what they do
//! is recorded in traces like everything TCP links do.

use veil_core::identity::{NodeId, Transport};
use veil_core::link::{Cell, LinkRole, CHANNEL_BINDING_LEN};
use veil_core::node::{DialRequest, LinkId, StreamCellError};
use veil_core::time::Instant;
use veil_quic::LinkHost;

use super::TracedNode;

impl LinkHost for TracedNode {
    fn open_quic_link(
        &mut self,
        now: Instant,
        role: LinkRole,
        expected: Option<NodeId>,
        channel_binding: [u8; CHANNEL_BINDING_LEN],
    ) -> Option<LinkId> {
        self.open_stream_link(now, role, expected, Transport::Quic, channel_binding)
            .ok()
    }

    fn handle_stream_cell(
        &mut self,
        now: Instant,
        link: LinkId,
        cell: &Cell,
    ) -> Result<(), StreamCellError> {
        TracedNode::handle_stream_cell(self, now, link, cell)
    }

    fn poll_stream_cell(&mut self, now: Instant, link: LinkId) -> Option<Cell> {
        TracedNode::poll_stream_cell(self, now, link)
    }

    fn handle_data(&mut self, now: Instant, link: LinkId, data: &[u8]) -> Option<usize> {
        TracedNode::handle_data(self, now, link, data).ok()
    }

    fn transport_closed(&mut self, now: Instant, link: LinkId) {
        // An unknown link was closed by the node already: nothing to tell.
        let _ = self.handle_transport_closed(now, link);
    }

    fn poll_link_transmit(&mut self, now: Instant, link: LinkId, buf: &mut [u8]) -> Option<usize> {
        TracedNode::poll_link_transmit(self, now, link, buf)
    }

    fn dial_failed(&mut self, now: Instant, request: &DialRequest) {
        TracedNode::dial_failed(self, now, request);
    }
}
