//! The memory a node uses is fixed by its type and does not depend on
//! traffic. These bounds are the ones stated in `docs/memory.md`; if a
//! change grows a structure past them, update the doc with the reason.

use std::mem::size_of;

use veil_core::circuit::{ClientCircuit, RelayCircuit};
use veil_core::link::{LinkSession, CELL_LEN};
use veil_core::message::MessageSlot;
use veil_core::node::{LinkSlot, Node};

#[test]
fn per_link_memory_is_buffers_plus_a_small_fixed_overhead() {
    const RX: usize = 16 * 1024 + 2;
    const TXQ: usize = 64;
    let buffers = RX + TXQ * CELL_LEN;
    let slot = size_of::<LinkSlot<RX, TXQ>>();
    assert!(slot >= buffers);
    assert!(
        slot - buffers <= 2_048,
        "per-link overhead grew to {} bytes",
        slot - buffers
    );
    assert!(size_of::<LinkSession<RX, TXQ>>() <= slot);
}

#[test]
fn an_embedded_node_fits_in_a_few_kib_per_link() {
    const RX: usize = 1_100;
    const MSG: usize = 2_048;
    type Emb = Node<[LinkSlot<RX, 4>; 4], [MessageSlot<MSG>; 4], RX, 4, 4, 8, 8, 2, MSG>;
    let total = size_of::<Emb>();
    let entry = size_of::<veil_core::discovery::PeerEntry>();
    assert!(entry <= 1_024, "a node-table entry is {entry} bytes");
    let relayed = size_of::<RelayCircuit>();
    assert!(relayed <= 384, "a relayed circuit is {relayed} bytes");
    let own = size_of::<ClientCircuit>();
    assert!(own <= 2_560, "an own circuit is {own} bytes");
    let slot = size_of::<MessageSlot<MSG>>();
    assert!(slot <= MSG + 160, "a message slot is {slot} bytes");
    let links = 4 * (RX + 4 * CELL_LEN + 2_048);
    let events = 4 * 600;
    let circuits = 8 * relayed + 2 * own;
    let messages = 4 * slot;
    assert!(
        total <= links + events + 8 * entry + circuits + messages + 4_096,
        "embedded node is {total} bytes"
    );
}
