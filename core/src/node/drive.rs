//! What a driver needs of a node, and the one loop every driver runs.

use crate::time::Instant;

use super::{Node, NodeInput, Output, PollError, Profile};

/// A node as a driver sees it: one input entry point and one drained
/// output. Implemented by [`Node`] and by wrappers that must see every
/// input and output (a trace recorder), so that adapters are written once
/// against this trait and never restate the node's API.
pub trait Drive {
    /// See [`Node::handle`].
    fn handle<'a, I: NodeInput<'a>>(&mut self, now: Instant, input: I) -> I::Outcome;
    /// See [`Node::poll`].
    fn poll<'b>(&mut self, now: Instant, buf: &'b mut [u8]) -> Result<Output<'b>, PollError>;
}

impl<P: Profile> Drive for Node<P> {
    fn handle<'a, I: NodeInput<'a>>(&mut self, now: Instant, input: I) -> I::Outcome {
        Node::handle(self, now, input)
    }

    fn poll<'b>(&mut self, now: Instant, buf: &'b mut [u8]) -> Result<Output<'b>, PollError> {
        Node::poll(self, now, buf)
    }
}

/// Drains `node` after an input: hands every output but the last to
/// `each`, and returns the time of the final [`Output::Timeout`], when the
/// node next needs [`Timeout`](super::Timeout) if nothing else happens
/// first.
///
/// `each` gets the node too, so it can answer at once (a transport that
/// took only part of a transmit, a dial that failed on the spot); outputs
/// caused by those answers come out of the same drain.
pub fn drain<D: Drive>(
    node: &mut D,
    now: Instant,
    buf: &mut [u8],
    mut each: impl FnMut(&mut D, Output<'_>),
) -> Result<Instant, PollError> {
    loop {
        match node.poll(now, buf)? {
            Output::Timeout(at) => return Ok(at),
            output => each(node, output),
        }
    }
}
