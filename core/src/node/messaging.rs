//! The node's application inputs for messages, bootstrap addresses and
//! guards.

use rand_core::Rng;

use crate::message::{MessageId, QueueError, Target};
use crate::time::Instant;

use super::{
    AddBootstrap, AddBootstrapError, Node, Profile, Reply, SendMessage, SendMessageError,
    SetGuards, SetReceiving,
};

fn queue_error(e: QueueError) -> SendMessageError {
    match e {
        QueueError::Full => SendMessageError::Full,
        QueueError::TooLarge { len, max } => SendMessageError::TooLarge { len, max },
    }
}

impl<P: Profile> Node<P> {
    /// The largest message [`SendMessage`] takes and this node reassembles:
    /// the message buffer of its profile, at most 119 296.
    pub const MAX_MESSAGE: usize =
        crate::message::MessagePool::<P::Messages, P::MessageBuffer>::MAX_MESSAGE_LEN;

    pub(crate) fn on_send_message(
        &mut self,
        now: Instant,
        input: SendMessage<'_>,
    ) -> Result<MessageId, SendMessageError> {
        let SendMessage {
            destination,
            message,
        } = input;
        if destination == self.node_id() {
            return Err(SendMessageError::ToSelf);
        }
        if self.discovery.table().get(&destination).is_none()
            && !self.is_known_service(&destination)
        {
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

    pub(crate) fn on_reply(
        &mut self,
        now: Instant,
        input: Reply<'_>,
    ) -> Result<MessageId, SendMessageError> {
        let Reply { to, message } = input;
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

    pub(crate) fn on_add_bootstrap(
        &mut self,
        _now: Instant,
        input: AddBootstrap,
    ) -> Result<(), AddBootstrapError> {
        let node_id = super::dial::BootstrapId::new(input.node_id)
            .ok_or(AddBootstrapError::NodeIdUnsupported)?;
        if self.dialer.add_bootstrap(input.address, node_id) {
            Ok(())
        } else {
            Err(AddBootstrapError::ListFull)
        }
    }

    pub(crate) fn on_set_guards(&mut self, _now: Instant, input: SetGuards) {
        // An empty list hands the choice back to the node.
        self.circuits.guards_set = !input.guards.is_empty();
        self.circuits.guards = input.guards;
    }

    pub(crate) fn on_set_receiving(&mut self, _now: Instant, input: SetReceiving) {
        self.receiving = input.receiving;
    }
}
