//! Helpers shared by the multi-node tests.
#![allow(dead_code)]

use veil_core::identity::NodeId;
use veil_core::link::{Cell, CloseReason, ClosedBy, LinkPhase, CELL_LEN};
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

veil_core::node_profile! {
    /// A tiny fixed capacity: 2 links of 16 queued cells, 8 events.
    pub struct SmallProfile {
        link_receive: 4096,
        link_send_queue: 16,
        events: 8,
        peers: 4,
        relayed: 2,
        own: 1,
        message: 512,
        links: [veil_core::node::LinkSlot<SmallProfile>; 2],
        messages: [veil_core::message::MessageSlot<[u8; 512]>; 2],
    }
}

/// A node of [`SmallProfile`] that hands circuit cells to the test
/// (`link_only`), driven by hand rather than by the simulator.
pub type SmallNode = veil_core::node::Node<SmallProfile>;

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

/// One output of a hand-driven node, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Out {
    /// Link bytes.
    Transmit(LinkId, Vec<u8>),
    /// A circuit cell for a circuit stream.
    StreamCell(LinkId, Cell),
    /// An event.
    Event(Event),
    /// A message and its bytes.
    Message(Vec<u8>),
    /// A dial request.
    Dial(veil_core::node::DialRequest),
}

/// Drains a hand-driven node (at time zero) into owned outputs, in order.
pub fn outputs(node: &mut SmallNode) -> Vec<Out> {
    use veil_core::node::Output;
    let mut buf = [0u8; 4096];
    let mut out = Vec::new();
    veil_core::node::drain(node, veil_core::time::Instant::ZERO, &mut buf, |_, o| {
        out.push(match o {
            Output::Transmit { link, bytes } => Out::Transmit(link, bytes.to_vec()),
            Output::StreamCell { link, cell, .. } => {
                Out::StreamCell(link, cell.try_into().unwrap())
            }
            Output::Event(e) => Out::Event(e),
            Output::Message { bytes, .. } => Out::Message(bytes.to_vec()),
            Output::Dial(d) => Out::Dial(d),
            Output::Timeout(_) => unreachable!("drain keeps the timeout"),
        })
    })
    .unwrap();
    out
}

/// The events among `outputs`.
pub fn events_of(outputs: &[Out]) -> Vec<Event> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Out::Event(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

/// Whether `node` has an established link to `peer`.
pub fn linked_to(sim: &Sim, node: NodeIndex, peer: NodeIndex) -> bool {
    let id = sim.node_id(peer);
    sim.node(node)
        .core
        .links()
        .any(|l| l.phase == LinkPhase::Established && l.peer == Some(id))
}

/// A network of `nodes` addressed nodes, node `i` configured by
/// `config_of(i)` with room for `links` links, all bootstrapped from node
/// 0; returns once every node knows all but one of the others.
pub fn joined_network(
    seed: u64,
    nodes: usize,
    links: usize,
    config_of: impl Fn(NodeIndex) -> NodeConfig,
) -> Sim {
    let mut sim = Sim::new(seed);
    for i in 0..nodes {
        sim.add_addressed_node(config_of(i), links);
    }
    for i in 1..nodes {
        sim.handle(
            i,
            veil_core::node::AddBootstrap::address(Sim::address_of(0)),
        )
        .unwrap();
    }
    assert!(
        sim.run_until_true(veil_core::time::Duration::from_secs(120), |sim| {
            (0..nodes).all(|i| sim.node(i).core.node_table().len() >= nodes - 2)
        }),
        "the nodes did not learn each other"
    );
    sim
}
