//! The node as the runtime drives it: every call that changes the node goes
//! through here, and is recorded when a trace is being written.

use std::io;
use std::ops::Deref;

use veil_core::discovery::InsertOutcome;
use veil_core::identity::{Address, NodeId, Transport};
use veil_core::link::{Cell, CloseReason, LinkRole, CHANNEL_BINDING_LEN};
use veil_core::message::{MessageId, ReceivedMessage, ReplyTo};
use veil_core::node::{
    DescriptorRefusal, DialRequest, Event, LinkId, LinkInputError, OpenLinkError, SendCellError,
    SendMessageError, StreamCellError, Transmit,
};
use veil_core::time::Instant;

use super::format::{Input, Output};
use super::recorder::Recorder;
use crate::std_node::StdNode;

/// A [`StdNode`] whose inputs can be recorded into a trace.
///
/// It has the node's input and poll methods with the same signatures, and
/// dereferences to the node for everything that only reads it
/// (`node_table`, `links`, `stats`, `poll_timeout`, …). There is no
/// mutable access to the node past this wrapper: a call that changed the
/// node without being recorded would make the trace useless.
pub struct TracedNode {
    node: Box<StdNode>,
    recorder: Option<Recorder>,
}

impl std::fmt::Debug for TracedNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TracedNode")
            .field("node", &self.node)
            .field("recorder", &self.recorder)
            .finish()
    }
}

impl Deref for TracedNode {
    type Target = StdNode;

    fn deref(&self) -> &StdNode {
        &self.node
    }
}

impl TracedNode {
    /// The largest message the node sends or takes, as
    /// `StdNode::MAX_MESSAGE`.
    pub const MAX_MESSAGE: usize = StdNode::MAX_MESSAGE;

    /// Wraps `node`, recording into `recorder` if given.
    pub(crate) fn new(node: Box<StdNode>, recorder: Option<Recorder>) -> Self {
        TracedNode { node, recorder }
    }

    /// Whether calls are being recorded.
    pub fn is_recording(&self) -> bool {
        self.recorder.is_some()
    }

    /// Writes buffered trace records out (a no-op when not recording).
    pub fn flush_trace(&mut self) -> io::Result<()> {
        match &mut self.recorder {
            Some(r) => r.flush(),
            None => Ok(()),
        }
    }

    /// Ends the trace: writes its end record and stops recording.
    pub fn finish_trace(&mut self) -> io::Result<()> {
        match self.recorder.take() {
            Some(mut r) => r.finish(),
            None => Ok(()),
        }
    }

    fn note(&mut self, input: &Input<'_>, output: &Output<'_>) {
        if let Some(r) = &mut self.recorder {
            r.input(&self.node, input, output);
        }
    }

    /// `Node::open_link`.
    pub fn open_link(
        &mut self,
        now: Instant,
        role: LinkRole,
        expected_peer: Option<NodeId>,
    ) -> Result<LinkId, OpenLinkError> {
        let r = self.node.open_link(now, role, expected_peer);
        if self.recorder.is_some() {
            let input = Input::OpenLink {
                now,
                role,
                expected: expected_peer,
                transport: None,
            };
            self.note(&input, &Output::OpenLink(r));
        }
        r
    }

    /// `Node::open_link_over`.
    pub fn open_link_over(
        &mut self,
        now: Instant,
        role: LinkRole,
        expected_peer: Option<NodeId>,
        transport: Transport,
    ) -> Result<LinkId, OpenLinkError> {
        let r = self
            .node
            .open_link_over(now, role, expected_peer, transport);
        if self.recorder.is_some() {
            let input = Input::OpenLink {
                now,
                role,
                expected: expected_peer,
                transport: Some(transport),
            };
            self.note(&input, &Output::OpenLink(r));
        }
        r
    }

    /// `Node::open_stream_link`.
    pub fn open_stream_link(
        &mut self,
        now: Instant,
        role: LinkRole,
        expected_peer: Option<NodeId>,
        transport: Transport,
        binding: [u8; CHANNEL_BINDING_LEN],
    ) -> Result<LinkId, OpenLinkError> {
        let r = self
            .node
            .open_stream_link(now, role, expected_peer, transport, binding);
        if self.recorder.is_some() {
            let input = Input::OpenStreamLink {
                now,
                role,
                expected: expected_peer,
                transport,
                binding,
            };
            self.note(&input, &Output::OpenLink(r));
        }
        r
    }

    /// `Node::handle_stream_cell`.
    pub fn handle_stream_cell(
        &mut self,
        now: Instant,
        link: LinkId,
        cell: &Cell,
    ) -> Result<(), StreamCellError> {
        let r = self.node.handle_stream_cell(now, link, cell);
        if self.recorder.is_some() {
            let input = Input::HandleStreamCell { now, link, cell };
            self.note(&input, &Output::StreamCell(r));
        }
        r
    }

    /// `Node::poll_stream_cell`.
    pub fn poll_stream_cell(&mut self, now: Instant, link: LinkId) -> Option<Cell> {
        let r = self.node.poll_stream_cell(now, link);
        if self.recorder.is_some() {
            let input = Input::PollStreamCell { now, link };
            self.note(&input, &Output::Cell(r.as_ref()));
        }
        r
    }

    /// `Node::handle_data`.
    pub fn handle_data(
        &mut self,
        now: Instant,
        link: LinkId,
        data: &[u8],
    ) -> Result<usize, LinkInputError> {
        let r = self.node.handle_data(now, link, data);
        if self.recorder.is_some() {
            self.note(&Input::HandleData { now, link, data }, &Output::Data(r));
        }
        r
    }

    /// `Node::handle_transport_closed`.
    pub fn handle_transport_closed(
        &mut self,
        now: Instant,
        link: LinkId,
    ) -> Result<(), LinkInputError> {
        let r = self.node.handle_transport_closed(now, link);
        if self.recorder.is_some() {
            self.note(&Input::TransportClosed { now, link }, &Output::Link(r));
        }
        r
    }

    /// `Node::handle_timeout`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.node.handle_timeout(now);
        if self.recorder.is_some() {
            self.note(&Input::Timeout { now }, &Output::Nothing);
        }
    }

    /// `Node::dial_failed`.
    pub fn dial_failed(&mut self, now: Instant, request: &DialRequest) {
        self.node.dial_failed(now, request);
        if self.recorder.is_some() {
            let input = Input::DialFailed {
                now,
                request: *request,
            };
            self.note(&input, &Output::Nothing);
        }
    }

    /// `Node::close_link`.
    pub fn close_link(
        &mut self,
        now: Instant,
        link: LinkId,
        reason: CloseReason,
    ) -> Result<(), LinkInputError> {
        let r = self.node.close_link(now, link, reason);
        if self.recorder.is_some() {
            self.note(&Input::CloseLink { now, link, reason }, &Output::Link(r));
        }
        r
    }

    /// `Node::send_cell`.
    pub fn send_cell(
        &mut self,
        now: Instant,
        link: LinkId,
        cell: &Cell,
    ) -> Result<(), SendCellError> {
        let r = self.node.send_cell(now, link, cell);
        if self.recorder.is_some() {
            self.note(&Input::SendCell { now, link, cell }, &Output::SendCell(r));
        }
        r
    }

    /// `Node::send_message`.
    pub fn send_message(
        &mut self,
        now: Instant,
        destination: NodeId,
        message: &[u8],
    ) -> Result<MessageId, SendMessageError> {
        let r = self.node.send_message(now, destination, message);
        if self.recorder.is_some() {
            let input = Input::SendMessage {
                now,
                destination,
                message,
            };
            self.note(&input, &Output::Queued(r));
        }
        r
    }

    /// `Node::reply`.
    pub fn reply(
        &mut self,
        now: Instant,
        to: ReplyTo,
        message: &[u8],
    ) -> Result<MessageId, SendMessageError> {
        // Numbered before the call: only `poll_message` numbers senders.
        let sender = self
            .recorder
            .as_ref()
            .map(|r| r.sender_number(&to).unwrap_or(u64::MAX));
        let r = self.node.reply(now, to, message);
        if let Some(sender) = sender {
            let input = Input::Reply {
                now,
                sender,
                message,
            };
            self.note(&input, &Output::Queued(r));
        }
        r
    }

    /// `Node::poll_message`.
    pub fn poll_message(&mut self, buf: &mut [u8]) -> Option<ReceivedMessage> {
        let r = self.node.poll_message(buf);
        if self.recorder.is_some() {
            let input = Input::PollMessage {
                buf_len: u32::try_from(buf.len()).unwrap_or(u32::MAX),
            };
            let output = r.map(|m| (m, buf.get(..m.len).unwrap_or_default()));
            self.note(&input, &Output::Message(output));
        }
        r
    }

    /// `Node::poll_transmit`.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        let r = self.node.poll_transmit(now, buf);
        if self.recorder.is_some() {
            let input = Input::PollTransmit {
                now,
                buf_len: u32::try_from(buf.len()).unwrap_or(u32::MAX),
            };
            let output = r.map(|t| (t, buf.get(..t.len).unwrap_or_default()));
            self.note(&input, &Output::Transmit(output));
        }
        r
    }

    /// `Node::poll_link_transmit`.
    pub fn poll_link_transmit(
        &mut self,
        now: Instant,
        link: LinkId,
        buf: &mut [u8],
    ) -> Option<usize> {
        let r = self.node.poll_link_transmit(now, link, buf);
        if self.recorder.is_some() {
            let input = Input::PollLinkTransmit {
                now,
                link,
                buf_len: u32::try_from(buf.len()).unwrap_or(u32::MAX),
            };
            let output = r.map(|len| buf.get(..len).unwrap_or_default());
            self.note(&input, &Output::LinkTransmit(output));
        }
        r
    }

    /// `Node::poll_event`.
    pub fn poll_event(&mut self) -> Option<Event> {
        let r = self.node.poll_event();
        if self.recorder.is_some() {
            self.note(&Input::PollEvent, &Output::Event(r.as_ref()));
        }
        r
    }

    /// `Node::poll_dial`.
    pub fn poll_dial(&mut self) -> Option<DialRequest> {
        let r = self.node.poll_dial();
        if self.recorder.is_some() {
            self.note(&Input::PollDial, &Output::Dial(r));
        }
        r
    }

    /// `Node::set_advertised_addresses`.
    pub fn set_advertised_addresses(&mut self, now: Instant, addresses: &[Address]) {
        self.node.set_advertised_addresses(now, addresses);
        if self.recorder.is_some() {
            let input = Input::SetAdvertised {
                now,
                addresses: addresses.to_vec(),
            };
            self.note(&input, &Output::Nothing);
        }
    }

    /// `Node::add_bootstrap`.
    pub fn add_bootstrap(&mut self, address: Address) -> bool {
        let r = self.node.add_bootstrap(address);
        if self.recorder.is_some() {
            self.note(&Input::AddBootstrap { address }, &Output::Bool(r));
        }
        r
    }

    /// `Node::learn_descriptor`.
    pub fn learn_descriptor(
        &mut self,
        now: Instant,
        descriptor: &[u8],
    ) -> Result<InsertOutcome, DescriptorRefusal> {
        let r = self.node.learn_descriptor(now, descriptor);
        if self.recorder.is_some() {
            let input = Input::LearnDescriptor { now, descriptor };
            self.note(&input, &Output::Learned(r));
        }
        r
    }

    /// `Node::record_peer_failure`.
    pub fn record_peer_failure(&mut self, peer: &NodeId) {
        self.node.record_peer_failure(peer);
        if self.recorder.is_some() {
            self.note(&Input::PeerFailure { peer: *peer }, &Output::Nothing);
        }
    }

    /// `Node::set_guards`.
    pub fn set_guards(&mut self, guards: &[NodeId]) {
        self.node.set_guards(guards);
        if self.recorder.is_some() {
            let input = Input::SetGuards {
                guards: guards.to_vec(),
            };
            self.note(&input, &Output::Nothing);
        }
    }
}
