//! Circuit ids: per link, with no collisions between its two ends.
//!
//! The end that dialled the link allocates ids with the high bit set, the
//! end that accepted allocates ids with it clear, and 0 names the link
//! itself (padding). Both ends can therefore open circuits at the same time
//! without ever choosing the same id, with no coordination.

use rand_core::Rng;

use crate::link::{Cell, LinkRole};

/// A circuit id on one link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CircuitId(pub u32);

const HIGH_BIT: u32 = 0x8000_0000;

/// How many random candidates `allocate` tries before declaring the space
/// (practically) full.
const ALLOCATION_ATTEMPTS: usize = 64;

impl CircuitId {
    /// The id of link-level cells (padding), never a circuit.
    pub const LINK: CircuitId = CircuitId(0);

    /// The circuit id at the start of a whole cell (its first four bytes,
    /// big-endian), read without parsing the rest. Adapters that put each
    /// circuit on a transport stream of its own choose the stream by it.
    pub fn of(cell: &Cell) -> CircuitId {
        CircuitId(u32::from_be_bytes(
            cell.first_chunk::<4>().copied().unwrap_or_default(),
        ))
    }

    /// Whether this id names the link itself rather than a circuit.
    pub fn is_link(self) -> bool {
        self == CircuitId::LINK
    }

    /// Whether `role` is the end allowed to allocate this id.
    pub fn allocated_by(self, role: LinkRole) -> bool {
        self.0 != 0
            && match role {
                LinkRole::Initiator => self.0 & HIGH_BIT != 0,
                LinkRole::Responder => self.0 & HIGH_BIT == 0,
            }
    }

    /// Picks a random unused id from `role`'s half of the space, or `None`
    /// if `ALLOCATION_ATTEMPTS` candidates in a row were taken.
    pub fn allocate(
        role: LinkRole,
        rng: &mut impl Rng,
        in_use: impl Fn(CircuitId) -> bool,
    ) -> Option<CircuitId> {
        (0..ALLOCATION_ATTEMPTS).find_map(|_| {
            let raw = rng.next_u32();
            let id = CircuitId(match role {
                LinkRole::Initiator => raw | HIGH_BIT,
                LinkRole::Responder => raw & !HIGH_BIT,
            });
            (id.allocated_by(role) && !in_use(id)).then_some(id)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chacha20::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn the_two_ends_allocate_from_disjoint_halves() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        for _ in 0..1000 {
            let a = CircuitId::allocate(LinkRole::Initiator, &mut rng, |_| false).unwrap();
            let b = CircuitId::allocate(LinkRole::Responder, &mut rng, |_| false).unwrap();
            assert!(a.allocated_by(LinkRole::Initiator) && !a.allocated_by(LinkRole::Responder));
            assert!(b.allocated_by(LinkRole::Responder) && !b.allocated_by(LinkRole::Initiator));
            assert_ne!(a, b);
        }
        assert!(!CircuitId::LINK.allocated_by(LinkRole::Initiator));
        assert!(!CircuitId::LINK.allocated_by(LinkRole::Responder));
    }

    #[test]
    fn allocation_skips_ids_in_use_and_gives_up_when_full() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let first = CircuitId::allocate(LinkRole::Initiator, &mut rng, |_| false).unwrap();
        let mut rng2 = ChaCha20Rng::seed_from_u64(2);
        let second = CircuitId::allocate(LinkRole::Initiator, &mut rng2, |id| id == first).unwrap();
        assert_ne!(first, second);
        assert_eq!(
            CircuitId::allocate(LinkRole::Responder, &mut rng, |_| true),
            None
        );
    }
}
