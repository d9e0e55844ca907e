//! Helpers shared by the multi-node tests.
#![allow(dead_code)]

use veil_core::identity::NodeId;
use veil_core::link::{Cell, CloseReason, ClosedBy, CELL_LEN};
use veil_core::node::NodeConfig;
use veil_core::node::{Event, LinkId};
use veil_sim::{Direction, NodeIndex, Sim, StreamConditions, WireId};

/// A cell whose first 8 bytes carry `n` and the rest a pattern derived from it.
/// A valid relay cell on circuit 0x80000001 whose body starts with `n`
/// (8 bytes) followed by a pattern derived from it.
pub fn numbered_cell(n: u64) -> Cell {
    let mut cell = [0u8; CELL_LEN];
    cell[..4].copy_from_slice(&0x8000_0001u32.to_be_bytes());
    cell[4] = 3; // RELAY
    cell[5..13].copy_from_slice(&n.to_be_bytes());
    for (i, b) in cell[13..].iter_mut().enumerate() {
        *b = (n as u8).wrapping_mul(31).wrapping_add(i as u8);
    }
    cell
}

/// The number a [`numbered_cell`] carries.
pub fn number_of(cell: &Cell) -> u64 {
    u64::from_be_bytes(cell[5..13].try_into().unwrap())
}

pub fn established_peer(sim: &Sim, node: NodeIndex, link: LinkId) -> Option<NodeId> {
    sim.node(node).events.iter().find_map(|(_, e)| match e {
        Event::LinkEstablished { link: l, peer, .. } if *l == link => Some(*peer),
        _ => None,
    })
}

pub fn closed(sim: &Sim, node: NodeIndex, link: LinkId) -> Option<(CloseReason, ClosedBy)> {
    sim.node(node).events.iter().find_map(|(_, e)| match e {
        Event::LinkClosed {
            link: l,
            reason,
            by,
            ..
        } if *l == link => Some((*reason, *by)),
        _ => None,
    })
}

pub fn cells_received(sim: &Sim, node: NodeIndex, link: LinkId) -> Vec<Cell> {
    sim.node(node)
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::CellReceived { link: l, cell } if *l == link => Some(*cell),
            _ => None,
        })
        .collect()
}

/// Two nodes, `a` dialling `b`: the simulator, both nodes, both link ids
/// (`la` at `a`, `lb` at `b`) and the wire between them.
pub struct Pair {
    pub sim: Sim,
    pub a: NodeIndex,
    pub b: NodeIndex,
    pub la: LinkId,
    pub lb: LinkId,
    pub wire: WireId,
}

pub fn pair(seed: u64, config: NodeConfig, conditions: StreamConditions) -> Pair {
    let mut sim = Sim::new(seed);
    let a = sim.add_node(config, 4);
    let b = sim.add_node(config, 4);
    let wire = sim.connect(a, b, conditions);
    let (_, la) = sim.end(wire, Direction::Forward);
    let (_, lb) = sim.end(wire, Direction::Backward);
    Pair {
        sim,
        a,
        b,
        la,
        lb,
        wire,
    }
}

/// A node with a tiny fixed capacity (2 links of 16 queued cells, 8 events)
/// that hands circuit cells to the test (`link_only`), driven by hand
/// rather than by the simulator.
pub type SmallNode = veil_core::node::Node<
    [veil_core::node::LinkSlot<4096, 16>; 2],
    [veil_core::message::MessageSlot<512>; 2],
    4096,
    16,
    8,
    4,
    2,
    1,
    512,
>;

/// A [`SmallNode`] with an identity and seed from `seed`.
pub fn small_node(seed: u8) -> SmallNode {
    use veil_core::message::MessageSlot;
    use veil_core::node::LinkSlot;
    veil_core::node::Node::new(
        NodeConfig {
            // Raw circuit cells go to the test.
            link_only: true,
            ..NodeConfig::default()
        },
        veil_core::identity::Identity::from_secret_bytes([seed; 32]),
        [seed; 32],
        [LinkSlot::new(), LinkSlot::new()],
        [MessageSlot::new(), MessageSlot::new()],
    )
}

/// A `RELAY` cell on circuit `id` whose body bytes are all `n`.
pub fn relay_cell_on(id: u32, n: u8) -> Cell {
    let mut cell = [n; CELL_LEN];
    cell[..4].copy_from_slice(&id.to_be_bytes());
    cell[4] = 3; // RELAY
    cell
}
