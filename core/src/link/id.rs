//! Handles for links that stay safe after a link's slot is reused.

use core::fmt;

/// Names one link of a node. The generation makes a stale id (for a link
/// that closed and whose slot now holds another link) fail cleanly instead
/// of reaching the wrong peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LinkId {
    index: u16,
    generation: u16,
}

impl LinkId {
    /// An id for slot `index` in its `generation`; the node table makes
    /// these, an adapter only copies them.
    pub(crate) fn new(index: u16, generation: u16) -> Self {
        LinkId { index, generation }
    }

    /// The slot index, stable while the link lives.
    pub fn index(self) -> u16 {
        self.index
    }

    /// How many links the slot held before this one (wrapping).
    pub fn generation(self) -> u16 {
        self.generation
    }

    /// Packs the id into 32 bits, e.g. for a trace file or a token.
    pub fn to_u32(self) -> u32 {
        (u32::from(self.generation) << 16) | u32::from(self.index)
    }

    /// Unpacks an id made by [`to_u32`](Self::to_u32).
    pub fn from_u32(raw: u32) -> Self {
        let [g1, g0, i1, i0] = raw.to_be_bytes();
        LinkId {
            index: u16::from_be_bytes([i1, i0]),
            generation: u16::from_be_bytes([g1, g0]),
        }
    }
}

impl fmt::Display for LinkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "link#{}.{}", self.index, self.generation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_and_unpacks() {
        let id = LinkId::new(513, 7);
        assert_eq!(LinkId::from_u32(id.to_u32()), id);
        assert_eq!(id.to_string(), "link#513.7");
    }
}
