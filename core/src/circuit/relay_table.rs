//! The circuits a node serves as a hop: which link and circuit id each
//! direction uses, and the hop's CGO layer.

use heapless::Vec;

use crate::cell::CircuitId;
use crate::cgo::RelayLayer;
use crate::identity::NodeId;
use crate::node::LinkId;
use crate::time::Instant;

use super::{CircuitError, Flow, HOP_MESSAGE_LEN};

/// One side of a circuit at a hop: a link and the circuit id on it.
pub type CircuitEnd = (LinkId, CircuitId);

/// A circuit this node is a hop of.
#[derive(Debug, Clone)]
pub struct RelayCircuit {
    /// Towards the client.
    pub inbound: CircuitEnd,
    /// Towards the next hop, once extended.
    pub outbound: Option<CircuitEnd>,
    /// Our CGO layer.
    pub layer: RelayLayer,
    /// `RELAY_EARLY` cells seen from the client side.
    pub early_cells: u8,
    /// An `EXTEND` is waiting for the next hop's `CREATED`.
    pub extending: bool,
    /// An `EXTEND` is waiting for a link to its target to come up.
    pub awaiting_link: Option<AwaitingLink>,
    /// Flow control when this hop is the one `DATA` is addressed to.
    pub flow: Flow,
}

/// An `EXTEND` parked until the node has dialled its target.
#[derive(Debug, Clone)]
pub struct AwaitingLink {
    /// The next hop.
    pub target: NodeId,
    /// The client's hop-handshake message for it.
    pub message: [u8; HOP_MESSAGE_LEN],
    /// When the `EXTEND` arrived, for its timeout.
    pub since: Instant,
}

/// Which way a cell on a relay circuit is travelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayDirection {
    /// From the client side (arrived on `inbound`).
    Forward,
    /// From the far side (arrived on `outbound`).
    Backward,
}

/// All circuits this node relays, at most `N`.
#[derive(Debug, Clone, Default)]
pub struct RelayTable<const N: usize> {
    circuits: Vec<RelayCircuit, N>,
}

impl<const N: usize> RelayTable<N> {
    /// An empty table.
    pub fn new() -> Self {
        RelayTable {
            circuits: Vec::new(),
        }
    }

    /// Circuits relayed.
    pub fn len(&self) -> usize {
        self.circuits.len()
    }

    /// Whether none.
    pub fn is_empty(&self) -> bool {
        self.circuits.is_empty()
    }

    /// Adds a circuit (dropped, keys wiped, if the table is full).
    pub fn insert(&mut self, circuit: RelayCircuit) -> Result<(), CircuitError> {
        self.circuits.push(circuit).map_err(|_| CircuitError::Full)
    }

    /// The circuit `end` belongs to, and which way a cell arriving there travels.
    pub fn find(&mut self, end: CircuitEnd) -> Option<(&mut RelayCircuit, RelayDirection)> {
        self.circuits.iter_mut().find_map(|c| {
            if c.inbound == end {
                Some((c, RelayDirection::Forward))
            } else if c.outbound == Some(end) {
                Some((c, RelayDirection::Backward))
            } else {
                None
            }
        })
    }

    /// Whether `end` is in use by any circuit.
    pub fn uses(&self, end: CircuitEnd) -> bool {
        self.circuits
            .iter()
            .any(|c| c.inbound == end || c.outbound == Some(end))
    }

    /// Removes the circuit `end` belongs to; returns its other end, if any.
    pub fn remove(&mut self, end: CircuitEnd) -> Option<Option<CircuitEnd>> {
        let index = self
            .circuits
            .iter()
            .position(|c| c.inbound == end || c.outbound == Some(end))?;
        let circuit = self.circuits.swap_remove(index);
        Some(if circuit.inbound == end {
            circuit.outbound
        } else {
            Some(circuit.inbound)
        })
    }

    /// Every circuit.
    pub fn iter(&self) -> impl Iterator<Item = &RelayCircuit> {
        self.circuits.iter()
    }

    /// Every circuit, mutably.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut RelayCircuit> {
        self.circuits.iter_mut()
    }

    /// Removes one circuit that runs over `link`; returns the end on the
    /// other side (to be destroyed), or `None` when none is left.
    pub fn remove_one_on_link(&mut self, link: LinkId) -> Option<Option<CircuitEnd>> {
        let end = self.circuits.iter().find_map(|c| {
            if c.inbound.0 == link {
                Some(c.inbound)
            } else {
                c.outbound.filter(|o| o.0 == link)
            }
        })?;
        self.remove(end)
    }
}
