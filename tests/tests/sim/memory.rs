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
    let slot = size_of::<LinkSlot<veil_sim::SimProfile>>();
    assert_eq!((RX, TXQ), (veil_sim::SIM_RX, veil_sim::SIM_TXQ));
    assert!(slot >= buffers);
    assert!(
        slot - buffers <= 2_048,
        "per-link overhead grew to {} bytes",
        slot - buffers
    );
    type Session = LinkSession<[u8; RX], veil_core::heapless::Deque<[u8; CELL_LEN], TXQ>>;
    assert!(size_of::<Session>() <= slot);
}

#[test]
fn an_embedded_node_fits_in_a_few_kib_per_link() {
    const RX: usize = 1_100;
    const MSG: usize = 2_048;
    veil_core::node_profile! {
        struct Embedded {
            link_receive: RX,
            link_send_queue: 4,
            events: 4,
            peers: 8,
            relayed: 8,
            own: 2,
            message: MSG,
            links: [LinkSlot<Embedded>; 4],
            messages: [MessageSlot<[u8; MSG]>; 4],
            replay_marks: 32,
        }
    }
    // The link table and the message pool are arrays: inline in the node.
    let total = size_of::<Node<Embedded>>();
    let entry = size_of::<veil_core::discovery::PeerEntry>();
    assert!(entry <= 1_024, "a node-table entry is {entry} bytes");
    let relayed = size_of::<RelayCircuit>();
    assert!(relayed <= 384, "a relayed circuit is {relayed} bytes");
    let own = size_of::<ClientCircuit>();
    // 2,560, and the shaping state of its flow (the core's `shaping`
    // feature, on in this test's default features; relay spec §8.3: the
    // next slot, the burst's count, the last fragment's time).
    let shaping = 32;
    assert!(own <= 2_560 + shaping, "an own circuit is {own} bytes");
    let slot = size_of::<MessageSlot<[u8; MSG]>>();
    assert!(slot <= MSG + 160, "a message slot is {slot} bytes");
    // 2,048 bytes of session state a link, plus 256 for its obfuscation
    // (link spec §2: both representatives, the padding key and lengths,
    // the two length masks; docs/memory.md) and 32 for the first message's
    // mark (its epoch, and the accepted mark until the replay filter has
    // seen it).
    let links = 4 * (RX + 4 * CELL_LEN + 2_048 + 256 + 32);
    // The replay filter: 8 bytes a mark, and its deque's indices. With it
    // the node grew by 304 bytes more than the filter and the link slots
    // (measured with `--example memory_budget`, 2026-12-06: 60,464 →
    // 61,136 B with 32 marks), and by 24 B before it with issue 17's
    // counters; 512 covers both.
    let replay = 32 * 8 + 16 + 512;
    // Idle-link padding (transport spec §4.3), with this test's default
    // features: a timer of 32 bytes and a counter of 8 per link.
    let idle_padding = 4 * (32 + 8);
    // Layer-2 guards (relay spec §11, the `vanguards` feature of this
    // test's default features): an id and an expiry each, and two lengths.
    let vanguards = veil_core::node::MAX_SECOND_LAYER_GUARDS * (32 + 8) + 16;
    let events = 4 * 600;
    let circuits = 8 * relayed + 2 * own;
    let messages = 4 * slot;
    // Rendezvous state, fixed whatever the profile (8 KiB with the feature,
    // which this test's default features have; none in the firmware image).
    let rendezvous = veil_core::node::rendezvous_state_size();
    // Descriptor lookups (relay spec §2.3), fixed whatever the profile.
    let lookups = veil_core::node::lookup_state_size();
    // The held-cell queue of mixing delays (relay spec §9.1), the
    // profile's: none here (`mixed_cells` not given), 128 cells (about
    // 68 KiB) in the std node's and the simulator's profiles.
    let mixing = veil_core::node::mixing_state_size::<Embedded>();
    assert!(mixing <= 16, "mixing state {mixing} bytes");
    // Cover traffic (relay spec §8.2): the budget, the next times, the
    // burst FRONT pads, and the awaited loops (a handle, a nonce and a
    // time: 24 bytes each). Shaping (§8.3): the reply ends in a burst and
    // the next slot. Their counters in `NodeStats`, and mixing's: 12.
    let cover = veil_core::node::LOOPS_AWAITED * 24 + 144;
    let shaping_state = veil_core::node::SHAPED_REPLIES * 16 + 24;
    let counters = 12 * 8;
    let bound = links
        + cover
        + shaping_state
        + counters
        + idle_padding
        + vanguards
        + events
        + 8 * entry
        + circuits
        + messages
        + rendezvous
        + lookups
        + mixing
        + replay
        + 4_096;
    assert!(
        total <= bound,
        "embedded node is {total} bytes, over {bound}"
    );
}
