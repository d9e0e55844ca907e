//! Introducers: relays through which a node that cannot be dialled is
//! reached (relay spec §2, "Introducers").
//!
//! A node behind NAT or a firewall keeps links to a few relays and lists
//! them in its descriptor. A sender makes one of them the last relay of
//! its circuit, and that relay extends to the node over the link the node
//! holds open. The sender may not know the introducer, so each entry
//! carries what a client needs to make it a hop: its node id, the onion key
//! for the hop handshake, and one address for the `EXTEND` before it.
//!
//! Wire form of one entry: `node_id [32] ‖ onion_key [32] ‖ address`, the
//! address as in the descriptor's address list.

use super::address::{Address, AddressError};
use super::NodeId;

/// Most introducers a descriptor lists (Tor's default number of
/// introduction points is also 3).
pub const MAX_INTRODUCERS: usize = 3;
/// Bytes of an introducer entry before its address.
const KEYS_LEN: usize = 32 + 32;
/// The longest entry: an IPv6 address.
pub const MAX_INTRODUCER_LEN: usize = KEYS_LEN + 20;

/// A relay a node is reached through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Introducer {
    /// The relay's node id, proven by its link handshake.
    pub node_id: NodeId,
    /// The relay's onion key, for the sender's hop handshake with it.
    pub onion_key: [u8; 32],
    /// Where the hop before it dials it.
    pub address: Address,
}

impl Introducer {
    /// Bytes of this entry on the wire.
    pub fn wire_len(&self) -> usize {
        KEYS_LEN.saturating_add(self.address.wire_len())
    }

    /// Reads one entry from the front of `buf`; returns it and its length.
    pub(crate) fn parse(buf: &[u8]) -> Result<(Self, usize), AddressError> {
        let (keys, rest) = buf
            .split_first_chunk::<KEYS_LEN>()
            .ok_or(AddressError::Truncated)?;
        let (id, onion) = keys.split_at(32);
        let (address, len) = Address::parse(rest)?;
        let mut node_id = [0u8; 32];
        node_id.copy_from_slice(id);
        let mut onion_key = [0u8; 32];
        onion_key.copy_from_slice(onion);
        let introducer = Introducer {
            node_id: NodeId(node_id),
            onion_key,
            address,
        };
        Ok((introducer, KEYS_LEN.saturating_add(len)))
    }

    /// Writes the entry; `None` if `buf` is too short.
    pub(crate) fn emit(&self, buf: &mut [u8]) -> Option<usize> {
        let (keys, rest) = buf.split_first_chunk_mut::<KEYS_LEN>()?;
        let (id, onion) = keys.split_at_mut(32);
        id.copy_from_slice(self.node_id.as_bytes());
        onion.copy_from_slice(&self.onion_key);
        let len = self.address.emit(rest)?;
        Some(KEYS_LEN.saturating_add(len))
    }
}
