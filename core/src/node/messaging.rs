//! The node's application interface for messages: send to a node id, take
//! what arrived, answer anonymously over the circuit a message came on.

use rand_core::Rng;

use crate::identity::{Address, NodeId};
use crate::message::{MessageId, MessageSlot, QueueError, ReceivedMessage, ReplyTo, Target};
use crate::time::Instant;

use super::{DialRequest, LinkSlot, Node, NodeStats, SendMessageError};

fn queue_error(e: QueueError) -> SendMessageError {
    match e {
        QueueError::Full => SendMessageError::Full,
        QueueError::TooLarge { len, max } => SendMessageError::TooLarge { len, max },
    }
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
    > Node<S, MB, RX, TXQ, EVENTS, PEERS, RELAYED, OWN, MSG>
where
    S: AsRef<[LinkSlot<RX, TXQ>]> + AsMut<[LinkSlot<RX, TXQ>]>,
    MB: AsRef<[MessageSlot<MSG>]> + AsMut<[MessageSlot<MSG>]>,
{
    /// The largest message [`send_message`](Self::send_message) takes and
    /// this node reassembles: the message slot size `MSG`, at most 119 296.
    pub const MAX_MESSAGE: usize = crate::message::MessagePool::<MB, MSG>::MAX_MESSAGE_LEN;

    /// Queues `message` for `destination`, which must be in the node table
    /// (its descriptor names the onion key the circuit's last hop needs).
    /// The node builds (or reuses) a circuit whose last hop is the
    /// destination, sends the message in fragments, and keeps it until the
    /// destination acknowledges it (`MessageAcknowledged`), resending it
    /// over a new circuit if its circuit dies. The returned id names it in
    /// those events.
    pub fn send_message(
        &mut self,
        now: Instant,
        destination: NodeId,
        message: &[u8],
    ) -> Result<MessageId, SendMessageError> {
        let now = self.advance(now);
        if destination == self.node_id() {
            return Err(SendMessageError::ToSelf);
        }
        if self.discovery.table().get(&destination).is_none() {
            return Err(SendMessageError::UnknownDestination);
        }
        let id = self.fresh_message_id();
        self.messages
            .queue(now, id, Target::Node(destination), message)
            .map_err(queue_error)?;
        self.stats.messages_sent = self.stats.messages_sent.saturating_add(1);
        self.pump();
        Ok(id)
    }

    /// Answers a message received from an anonymous sender, over the
    /// circuit it came on. The reply is acknowledged like any message; it
    /// fails (`MessageFailed { reason: CircuitClosed }`) if that circuit
    /// dies first, since only the sender can build another.
    pub fn reply(
        &mut self,
        now: Instant,
        to: ReplyTo,
        message: &[u8],
    ) -> Result<MessageId, SendMessageError> {
        let now = self.advance(now);
        if self.engine.relay_flow(to.0).is_none() {
            return Err(SendMessageError::ReplyCircuitGone);
        }
        let id = self.fresh_message_id();
        self.messages
            .queue(now, id, Target::Reply(to.0), message)
            .map_err(queue_error)?;
        self.stats.messages_sent = self.stats.messages_sent.saturating_add(1);
        self.pump();
        Ok(id)
    }

    fn fresh_message_id(&mut self) -> MessageId {
        let mut id = [0u8; crate::message::MESSAGE_ID_LEN];
        self.rng.fill_bytes(&mut id);
        MessageId(id)
    }

    /// Takes the oldest complete message into `buf` (`len` says how many
    /// bytes were written; a short `buf` gets the start of the message).
    /// Taking messages is what makes room for more: a node whose owner
    /// stops taking them stops granting credit, and its senders stall.
    pub fn poll_message(&mut self, buf: &mut [u8]) -> Option<ReceivedMessage> {
        let message = self.messages.take(buf)?;
        self.pump();
        Some(message)
    }

    /// The next connection the node wants the adapter to make. Connect,
    /// then call [`open_link`](Self::open_link) as initiator expecting
    /// `peer`, or [`dial_failed`](Self::dial_failed).
    pub fn poll_dial(&mut self) -> Option<DialRequest> {
        self.dialer.poll()
    }

    /// Adds an address to dial while the node has no link (from the
    /// config). Returns `false` if the bootstrap list is full.
    pub fn add_bootstrap(&mut self, address: Address) -> bool {
        self.dialer.add_bootstrap(address)
    }

    /// Sets the guards: every circuit's first hop is one of them. Empty
    /// (the default) means any healthy relay. At most
    /// [`MAX_GUARDS`](super::circuits::MAX_GUARDS) are kept.
    pub fn set_guards(&mut self, guards: &[NodeId]) {
        self.circuits.guards.clear();
        for guard in guards.iter().take(super::circuits::MAX_GUARDS) {
            let _ = self.circuits.guards.push(*guard);
        }
    }

    /// Counters since the node was built.
    pub fn stats(&self) -> NodeStats {
        self.stats
    }

    /// Circuits this node is a hop of (as relay or destination), and
    /// circuits it built.
    pub fn circuit_counts(&self) -> (usize, usize) {
        (self.engine.relayed(), self.engine.own())
    }

    /// Unacknowledged outgoing messages, and incoming ones (partial or
    /// waiting to be taken).
    pub fn message_counts(&self) -> (usize, usize) {
        (self.messages.outgoing(), self.messages.incoming())
    }
}
