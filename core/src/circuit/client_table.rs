//! The circuits this node built as a client.

use crate::identity::NodeId;
use heapless::Vec;

use crate::capacity::VecStore;
use crate::cgo::{ClientLayers, MAX_HOPS};
use crate::discovery::Path;
use crate::time::Instant;

use super::relay_table::CircuitEnd;
use super::{CircuitError, Flow, HopHandshakeClient, Liveness};

/// Names a circuit this node built; stable for the circuit's life and never
/// reused while the node runs (a 32-bit counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CircuitHandle(pub u32);

/// A circuit built (or being built) by this node.
#[derive(Debug)]
#[cfg_attr(feature = "testing", derive(Clone))]
pub struct ClientCircuit {
    /// Its handle.
    pub handle: CircuitHandle,
    /// The first hop's link and the circuit id on it.
    pub end: CircuitEnd,
    /// The hops, destination last.
    pub path: Path,
    /// Each hop's onion key, from its descriptor when the circuit was opened.
    pub onion_keys: Vec<[u8; 32], MAX_HOPS>,
    /// One CGO layer per hop built so far.
    pub layers: ClientLayers,
    /// The handshake with the hop being added.
    pub pending: Option<HopHandshakeClient>,
    /// When the client sent `CREATE`: for build timeouts, build-time
    /// figures and rotation.
    pub opened_at: Instant,
    /// When the last `CREATE` or `EXTEND` went: the last hop's answer to it
    /// is the circuit's first round-trip sample.
    pub step_sent_at: Instant,
    /// Flow control towards the destination (the last hop).
    pub flow: Flow,
    /// Whether the circuit still answers ([`Liveness`]).
    pub liveness: Liveness,
    /// `RELAY_EARLY` cells left to send: the first
    /// [`MAX_RELAY_EARLY`](crate::cell::MAX_RELAY_EARLY) forward cells all
    /// go as `RELAY_EARLY`, `EXTEND`s and data alike, so that a relay
    /// counting them cannot tell how many hops follow it (relay spec §3,
    /// as Tor clients do).
    pub early_left: u8,
}

impl ClientCircuit {
    /// Whether every hop is built.
    pub fn is_ready(&self) -> bool {
        self.pending.is_none() && self.layers.len() == self.path.hops().len()
    }

    /// The hop being added while the circuit is still being built: the one
    /// relay a build failure (`ExtendFailed`, `Timeout`) can be pinned on.
    /// The hops before it answered; which of them forwarded faithfully the
    /// client cannot tell, so they are not blamed.
    pub fn hop_being_added(&self) -> Option<NodeId> {
        if self.is_ready() {
            return None;
        }
        self.path.hops().get(self.layers.len()).copied()
    }
}

/// All client circuits, as many as its storage `S` holds.
#[derive(Debug)]
#[cfg_attr(feature = "testing", derive(Clone))]
pub struct ClientTable<S> {
    circuits: S,
    next_handle: u32,
}

impl<S: VecStore<ClientCircuit>> Default for ClientTable<S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S: VecStore<ClientCircuit>> ClientTable<S> {
    /// An empty table.
    pub fn new() -> Self {
        ClientTable {
            circuits: S::EMPTY,
            next_handle: 1,
        }
    }

    /// A fresh handle.
    pub fn next_handle(&mut self) -> CircuitHandle {
        let handle = CircuitHandle(self.next_handle);
        self.next_handle = self.next_handle.wrapping_add(1).max(1);
        handle
    }

    /// Whether there is room for another circuit.
    pub fn is_full(&self) -> bool {
        self.circuits.view().is_full()
    }

    /// Adds a circuit (dropped, keys wiped, if the table is full).
    pub fn insert(&mut self, circuit: ClientCircuit) -> Result<(), CircuitError> {
        self.circuits
            .view_mut()
            .push(circuit)
            .map_err(|_| CircuitError::Full)
    }

    /// The circuit using `end`.
    pub fn by_end(&mut self, end: CircuitEnd) -> Option<&mut ClientCircuit> {
        self.circuits.view_mut().iter_mut().find(|c| c.end == end)
    }

    /// The circuit with `handle`.
    pub fn by_handle(&mut self, handle: CircuitHandle) -> Option<&mut ClientCircuit> {
        self.circuits
            .view_mut()
            .iter_mut()
            .find(|c| c.handle == handle)
    }

    /// Whether `end` is in use.
    pub fn uses(&self, end: CircuitEnd) -> bool {
        self.circuits.view().iter().any(|c| c.end == end)
    }

    /// Removes the circuit using `end`.
    pub fn remove(&mut self, end: CircuitEnd) -> Option<ClientCircuit> {
        let index = self.circuits.view().iter().position(|c| c.end == end)?;
        Some(self.circuits.view_mut().swap_remove(index))
    }

    /// Removes one circuit over `link`.
    pub fn remove_one_on_link(&mut self, link: crate::link::LinkId) -> Option<ClientCircuit> {
        let index = self.circuits.view().iter().position(|c| c.end.0 == link)?;
        Some(self.circuits.view_mut().swap_remove(index))
    }

    /// Circuits in the table.
    pub fn len(&self) -> usize {
        self.circuits.view().len()
    }

    /// Whether none.
    pub fn is_empty(&self) -> bool {
        self.circuits.view().is_empty()
    }

    /// Every circuit.
    pub fn iter(&self) -> impl Iterator<Item = &ClientCircuit> {
        self.circuits.view().iter()
    }
}
