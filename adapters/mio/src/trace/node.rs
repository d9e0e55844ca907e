//! The node as the runtime drives it: every input and every poll goes
//! through here, and is recorded when a trace is being written.

use std::io;
use std::ops::Deref;

use veil_core::identity::{NodeId, ServiceKeys};
use veil_core::node::{Drive, Input, NodeInput, Output, PollError};
use veil_core::time::Instant;

use super::format::MAX_POLL_BUFFER;
use super::recorder::Recorder;
use crate::error::OfferServiceError;
use crate::std_node::StdNode;

/// A [`StdNode`] whose inputs and polls can be recorded into a trace.
///
/// It [`Drive`]s like the node itself (adapters take either), and
/// dereferences to the node for everything that only reads it
/// (`node_table`, `links`, `stats`, …). There is no mutable access to the
/// node past this wrapper: a change to the node that was not recorded
/// would make the trace useless. The one method of the node that changes
/// it outside an input, [`offer_service`](Self::offer_service), is refused
/// while recording. Recording is generic: it records the
/// input's own [`Input`] value and folds its outcome, so every input the
/// core has is recorded without a line here.
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

    /// Hands the node one input (recorded when a trace is written); the
    /// same as [`Drive::handle`], without importing the trait (the node's
    /// own `handle` behind `Deref` would not record, and needs `&mut`).
    pub fn handle<'a, I: NodeInput<'a>>(&mut self, now: Instant, input: I) -> I::Outcome {
        Drive::handle(self, now, input)
    }

    /// The node's next output (recorded when a trace is written); the same
    /// as [`Drive::poll`].
    pub fn poll<'b>(&mut self, now: Instant, buf: &'b mut [u8]) -> Result<Output<'b>, PollError> {
        Drive::poll(self, now, buf)
    }

    /// Offers a rendezvous service under `keys` (`Node::offer_service`,
    /// relay spec §13) and returns its service id. Not an input of the
    /// core, so a trace cannot hold it: refused while recording.
    pub fn offer_service(&mut self, keys: ServiceKeys) -> Result<NodeId, OfferServiceError> {
        if self.recorder.is_some() {
            return Err(OfferServiceError::Recording);
        }
        Ok(self.node.offer_service(keys))
    }

    /// Whether inputs are being recorded.
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
}

impl Drive for TracedNode {
    fn handle<'a, I: NodeInput<'a>>(&mut self, now: Instant, input: I) -> I::Outcome {
        let Some(recorder) = &mut self.recorder else {
            return self.node.handle(now, input);
        };
        let record: Input<'a> = input.clone().into();
        let outcome = self.node.handle(now, input);
        recorder.input(now, record, &I::wrap(outcome.clone()));
        outcome
    }

    fn poll<'b>(&mut self, now: Instant, buf: &'b mut [u8]) -> Result<Output<'b>, PollError> {
        let Some(recorder) = &mut self.recorder else {
            return self.node.poll(now, buf);
        };
        // What a replay allocates is bounded: the first MAX_POLL_BUFFER
        // bytes hold any output.
        let buf_len = buf.len().min(MAX_POLL_BUFFER);
        let buf = buf.split_at_mut(buf_len).0;
        let result = self.node.poll(now, buf);
        recorder.poll(now, buf_len, &result);
        result
    }
}
