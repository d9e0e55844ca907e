//! The circuits a node serves as a hop: which link and circuit id each
//! direction uses, and the hop's CGO layer.

use crate::capacity::VecStore;
use crate::cell::CircuitId;
use crate::cgo::RelayLayer;
use crate::identity::NodeId;
use crate::link::LinkId;
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
    /// When a cell last went through it, either way. A circuit idle for
    /// [`CircuitTimeouts::relay_idle`](super::CircuitTimeouts::relay_idle)
    /// is destroyed, so slots cannot be held by circuits nobody uses.
    pub last_active: Instant,
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

/// All circuits this node relays, as many as its storage `S` holds.
#[derive(Debug, Clone)]
pub struct RelayTable<S> {
    circuits: S,
}

impl<S: VecStore<RelayCircuit>> Default for RelayTable<S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S: VecStore<RelayCircuit>> RelayTable<S> {
    /// An empty table.
    pub fn new() -> Self {
        RelayTable { circuits: S::EMPTY }
    }

    /// Circuits relayed.
    pub fn len(&self) -> usize {
        self.circuits.view().len()
    }

    /// Whether none.
    pub fn is_empty(&self) -> bool {
        self.circuits.view().is_empty()
    }

    /// Adds a circuit (dropped, keys wiped, if the table is full).
    pub fn insert(&mut self, circuit: RelayCircuit) -> Result<(), CircuitError> {
        self.circuits
            .view_mut()
            .push(circuit)
            .map_err(|_| CircuitError::Full)
    }

    /// The circuit `end` belongs to, and which way a cell arriving there travels.
    pub fn find(&mut self, end: CircuitEnd) -> Option<(&mut RelayCircuit, RelayDirection)> {
        self.circuits.view_mut().iter_mut().find_map(|c| {
            if c.inbound == end {
                Some((c, RelayDirection::Forward))
            } else if c.outbound == Some(end) {
                Some((c, RelayDirection::Backward))
            } else {
                None
            }
        })
    }

    /// Whether the table is full.
    pub fn is_full(&self) -> bool {
        self.len() >= S::CAPACITY
    }

    /// Circuits that came in over `link` (their client side is on it).
    pub fn from_link(&self, link: LinkId) -> usize {
        self.circuits
            .view()
            .iter()
            .filter(|c| c.inbound.0 == link)
            .count()
    }

    /// Whether `end` is in use by any circuit.
    pub fn uses(&self, end: CircuitEnd) -> bool {
        self.circuits
            .view()
            .iter()
            .any(|c| c.inbound == end || c.outbound == Some(end))
    }

    /// Removes the circuit `end` belongs to; returns its other end, if any.
    pub fn remove(&mut self, end: CircuitEnd) -> Option<Option<CircuitEnd>> {
        let index = self
            .circuits
            .view()
            .iter()
            .position(|c| c.inbound == end || c.outbound == Some(end))?;
        let circuit = self.circuits.view_mut().swap_remove(index);
        Some(if circuit.inbound == end {
            circuit.outbound
        } else {
            Some(circuit.inbound)
        })
    }

    /// Every circuit.
    pub fn iter(&self) -> impl Iterator<Item = &RelayCircuit> {
        self.circuits.view().iter()
    }

    /// Every circuit, mutably.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut RelayCircuit> {
        self.circuits.view_mut().iter_mut()
    }

    /// Removes one circuit that runs over `link`; returns the end on the
    /// other side (to be destroyed), or `None` when none is left.
    pub fn remove_one_on_link(&mut self, link: LinkId) -> Option<Option<CircuitEnd>> {
        let end = self.circuits.view().iter().find_map(|c| {
            if c.inbound.0 == link {
                Some(c.inbound)
            } else {
                c.outbound.filter(|o| o.0 == link)
            }
        })?;
        self.remove(end)
    }
}
