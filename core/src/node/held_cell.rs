//! A cell a relay holds for its mixing delay (relay spec §9.1): the item of
//! a profile's [`MixedCells`](super::Profile::MixedCells) storage. Defined
//! whatever the features, as every profile names it; only the
//! `mixing-delays` feature holds any.

use crate::cell::CircuitId;
use crate::circuit::CircuitEnd;
use crate::link::{Cell, LinkId};
use crate::time::Instant;

/// One held cell.
#[derive(Debug, Clone)]
#[cfg_attr(not(feature = "mixing-delays"), allow(dead_code))]
pub struct HeldCell {
    /// When it may be handled.
    pub(crate) release: Instant,
    /// The link it came over.
    pub(crate) link: LinkId,
    /// The cell as received.
    pub(crate) cell: Cell,
    /// Due but not handled in the last pass (no room for what it causes,
    /// or behind such a cell of its circuit): not a deadline until room
    /// appears.
    pub(crate) blocked: bool,
}

#[cfg_attr(not(feature = "mixing-delays"), allow(dead_code))]
impl HeldCell {
    /// The circuit end it belongs to.
    pub(crate) fn end(&self) -> CircuitEnd {
        (self.link, CircuitId::of(&self.cell))
    }
}
