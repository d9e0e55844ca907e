//! End-to-end messages over circuits: fragmentation into relay `DATA`
//! cells, bounded reassembly with exactly-once delivery, and an outbox of
//! unacknowledged messages for resending. Layouts in
//! `docs/relay_protocol_spec.md` §8.

mod fragment;
mod outbox;
mod reassembly;

pub use fragment::{
    Fragment, FragmentError, MessageId, FRAGMENT_HEADER_LEN, FRAGMENT_LEN, MAX_FRAGMENTS,
    MESSAGE_ID_LEN,
};
pub use outbox::{Outbox, OutboxError};
pub use reassembly::{Reassembler, ReassemblyError, Received};

#[cfg(test)]
mod tests;
