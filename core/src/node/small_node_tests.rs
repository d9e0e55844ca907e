//! The small node that the node's unit tests build, and the signed
//! descriptors they feed it: one definition, so that a test module says
//! only what is particular to it.

use crate::identity::{Address, DescriptorRepr, Identity, Introducer, NodeId, MAX_DESCRIPTOR_LEN};
use crate::message::MessageSlot;

use super::{LinkSlot, Node, NodeConfig};

crate::node_profile! {
    /// Two links, a 16-entry table.
    pub(crate) struct Small {
        link_receive: 2 + 4096, link_send_queue: 8, events: 8, peers: 16,
        relayed: 4, own: 2, message: 1024,
        links: [LinkSlot<Small>; 2],
        messages: [MessageSlot<[u8; 1024]>; 2],
        mixed_cells: 8,
    }
}

/// The wall clock at the tests' `Instant::ZERO`.
pub(crate) const UNIX: u64 = 1_800_000_000;

/// A node with identity `[1; 32]` whose generator is seeded with
/// `rng_seed`, its clock at [`UNIX`].
pub(crate) fn small_node(rng_seed: u8) -> Node<Small> {
    let config = NodeConfig {
        unix_time_at_zero: UNIX,
        ..NodeConfig::default()
    };
    Node::new(
        config,
        Identity::from_secret_bytes([1; 32]),
        [rng_seed; 32],
        core::array::from_fn(|_| LinkSlot::new()),
        core::array::from_fn(|_| MessageSlot::new()),
    )
}

/// The descriptor of node `seed` (identity and onion key `[seed; 32]`),
/// valid for an hour from [`UNIX`]: a relay if `relay`, at `addresses`,
/// reached through `introducers` if any.
pub(crate) fn signed_descriptor(
    seed: u8,
    relay: bool,
    addresses: &[Address],
    introducers: &[Introducer],
) -> (NodeId, std::vec::Vec<u8>) {
    let identity = Identity::from_secret_bytes([seed; 32]);
    let repr = DescriptorRepr {
        identity: identity.public(),
        onion_key: [seed; 32],
        relay,
        issued_at: UNIX,
        expires_at: UNIX + 3600,
        addresses: addresses.iter().copied().collect(),
    };
    let mut buf = [0u8; MAX_DESCRIPTOR_LEN];
    let n = repr
        .emit_signed_introduced(introducers, &identity, &mut buf)
        .unwrap();
    (identity.node_id(), buf[..n].to_vec())
}
