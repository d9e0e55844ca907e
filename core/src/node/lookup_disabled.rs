//! Descriptor lookups without the `introducers` feature (the firmware
//! image): no state at all, requests are ignored, none are sent. The full
//! version is `lookup.rs`.

use crate::circuit::CircuitEnd;
use crate::identity::NodeId;
use crate::link::Cell;

use super::{LinkId, Node, Profile};

/// No lookup state: zero bytes of the firmware's RAM.
#[derive(Debug, Default, Clone)]
pub(crate) struct Lookups;

impl Lookups {
    pub(crate) const fn new() -> Self {
        Lookups
    }

    /// Nothing is looked up.
    pub(crate) fn want(&mut self, _dest: NodeId) {}
}

/// Bytes of lookup state every node carries whatever its profile
/// (docs/memory.md): 0 without the `introducers` feature.
pub const fn lookup_state_size() -> usize {
    core::mem::size_of::<Lookups>()
}

impl<P: Profile> Node<P> {
    /// Nothing to send.
    pub(crate) fn run_lookups(&mut self) {}

    /// A request is ignored, never a violation.
    pub(crate) fn on_descriptor_request(&mut self, _link: LinkId, _cell: &Cell) -> bool {
        true
    }

    /// A `LOOKUP` relay message is ignored.
    pub(crate) fn on_circuit_lookup(&mut self, _at: CircuitEnd, _data: &[u8]) {}

    /// Nothing was asked.
    pub(crate) fn on_lookup_answer(&mut self, _data: &[u8]) {}

    /// Nothing was passed on.
    pub(crate) fn relay_lookup_answers(&mut self, _id: NodeId, _stored: bool, _cell: &Cell) {}
}
