//! End-to-end messages over circuits: fragmentation into relay `DATA`
//! cells, one bounded pool of message buffers for both directions, exactly-
//! once reassembly, and resending of unacknowledged messages. Layouts in
//! `docs/relay_protocol_spec.md` §8.

mod fragment;
mod pool;

pub use fragment::{
    Fragment, FragmentError, MessageId, FRAGMENT_HEADER_LEN, FRAGMENT_LEN, MAX_FRAGMENTS,
    MESSAGE_ID_LEN,
};
pub use pool::{
    MessagePool, MessageSlot, QueueError, ReassemblyError, Received, ReceivedMessage, ReplyTo,
    Route, Sender, Target, REMEMBERED_IDS,
};

#[cfg(test)]
mod tests;
