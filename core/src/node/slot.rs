//! One entry of the node's link table.

use crate::identity::Transport;
use crate::link::LinkSession;
use crate::time::Instant;

/// Storage for one link. A node is built over a fixed slice of these (an
/// array on firmware, a boxed slice on std), so the number of links and the
/// bytes they use are fixed when the node is built.
pub struct LinkSlot<const RX: usize, const TXQ: usize> {
    pub(crate) generation: u16,
    pub(crate) session: Option<LinkSession<RX, TXQ>>,
    pub(crate) opened_at: Instant,
    /// `LinkEstablished` has been queued for this link.
    pub(crate) announced: bool,
    /// Our descriptor has been queued on this link.
    pub(crate) introduced: bool,
    /// What the link runs over, if the adapter said.
    pub(crate) transport: Option<Transport>,
}

impl<const RX: usize, const TXQ: usize> LinkSlot<RX, TXQ> {
    /// An empty slot.
    pub const fn new() -> Self {
        LinkSlot {
            generation: 0,
            session: None,
            opened_at: Instant::ZERO,
            announced: false,
            introduced: false,
            transport: None,
        }
    }
}

impl<const RX: usize, const TXQ: usize> Default for LinkSlot<RX, TXQ> {
    fn default() -> Self {
        LinkSlot::new()
    }
}

impl<const RX: usize, const TXQ: usize> core::fmt::Debug for LinkSlot<RX, TXQ> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LinkSlot")
            .field("generation", &self.generation)
            .field("session", &self.session)
            .finish()
    }
}
