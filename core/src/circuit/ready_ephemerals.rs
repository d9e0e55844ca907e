//! Hop-handshake ephemeral key pairs drawn ahead of need.
//!
//! A circuit build is a chain of round trips, and on each one the client
//! and the hop each draw an ephemeral X25519 key pair (a base-point
//! multiplication) before they can answer. Drawing it while the node waits
//! instead takes one of the three X25519 operations per side off every
//! hop's critical path: 8 key pairs of about 29 µs each in a 4-hop build
//! of 1.3–1.5 ms on loopback, where the measured gain was about the size
//! of the noise (docs/performance.md, "Hop-handshake key pairs drawn
//! ahead").
//!
//! The pool is refilled from the node's timer ([`Timeout`] due at once
//! while a slot is empty), which every driver handles after it has sent
//! what the last input produced. A pool of capacity 0 (the default, and
//! the firmware's) draws every key pair when it is needed, as before. The
//! CPU spent is the same either way; only when changes.
//!
//! Each key pair is used once: taking one empties and wipes its slot, and
//! the pool wipes every slot when dropped.
//!
//! [`Timeout`]: crate::node::Timeout

use rand_core::Rng;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::noise::StaticKeypair;

/// One slot of the pool: a key pair, or nothing yet.
#[derive(Clone, Default, Zeroize, ZeroizeOnDrop)]
pub struct ReadyEphemeral {
    secret: [u8; 32],
    public: [u8; 32],
    ready: bool,
}

impl core::fmt::Debug for ReadyEphemeral {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ReadyEphemeral")
            .field("ready", &self.ready)
            .finish_non_exhaustive()
    }
}

/// Ephemeral key pairs for hop handshakes, drawn ahead of need into
/// caller-sized storage (`[ReadyEphemeral; N]`).
#[derive(Debug, Default, Clone)]
pub struct ReadyEphemerals<S> {
    slots: S,
}

impl<S: AsRef<[ReadyEphemeral]> + AsMut<[ReadyEphemeral]>> ReadyEphemerals<S> {
    /// A pool over `slots`, all empty.
    pub fn new(slots: S) -> Self {
        ReadyEphemerals { slots }
    }

    /// A key pair for one handshake: a ready one if there is one (its slot
    /// is wiped), otherwise one drawn now from `rng`.
    pub fn take(&mut self, rng: &mut dyn Rng) -> StaticKeypair {
        if let Some(slot) = self.slots.as_mut().iter_mut().find(|s| s.ready) {
            let pair = StaticKeypair::from_parts(slot.secret, slot.public);
            slot.zeroize();
            return pair;
        }
        StaticKeypair::generate(rng)
    }

    /// Whether a slot is empty, so the pool wants [`refill`](Self::refill).
    pub fn needs_refill(&self) -> bool {
        self.slots.as_ref().iter().any(|s| !s.ready)
    }

    /// Draws a key pair into every empty slot.
    pub fn refill(&mut self, rng: &mut dyn Rng) {
        for slot in self.slots.as_mut().iter_mut().filter(|s| !s.ready) {
            let pair = StaticKeypair::generate(rng);
            slot.secret = *pair.secret_bytes();
            slot.public = pair.public();
            slot.ready = true;
        }
    }

    /// How many key pairs are ready.
    pub fn ready(&self) -> usize {
        self.slots.as_ref().iter().filter(|s| s.ready).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::SeedableRng;

    fn rng(seed: u8) -> chacha20::ChaCha20Rng {
        chacha20::ChaCha20Rng::from_seed([seed; 32])
    }

    #[test]
    fn a_refilled_pool_hands_out_each_key_pair_once_then_draws_on_the_spot() {
        let mut pool = ReadyEphemerals::new(<[ReadyEphemeral; 2]>::default());
        assert!(pool.needs_refill());
        let mut r = rng(1);
        pool.refill(&mut r);
        assert_eq!(pool.ready(), 2);
        assert!(!pool.needs_refill());
        // The pool drew from the same stream a caller drawing on the spot would.
        let mut expected = rng(1);
        let first = StaticKeypair::generate(&mut expected).public();
        let second = StaticKeypair::generate(&mut expected).public();
        let third = StaticKeypair::generate(&mut expected).public();
        let mut unused = rng(9);
        assert_eq!(pool.take(&mut unused).public(), first);
        assert_eq!(pool.take(&mut unused).public(), second);
        assert_eq!(pool.ready(), 0);
        assert!(pool.needs_refill());
        // Empty: the next one is drawn from the rng it is given.
        assert_eq!(pool.take(&mut r).public(), third);
    }

    #[test]
    fn a_taken_slot_is_wiped() {
        let mut pool = ReadyEphemerals::new(<[ReadyEphemeral; 1]>::default());
        pool.refill(&mut rng(2));
        let pair = pool.take(&mut rng(3));
        let slot = &pool.slots[0];
        assert!(!slot.ready);
        assert_eq!(slot.secret, [0u8; 32]);
        assert_eq!(slot.public, [0u8; 32]);
        assert_ne!(*pair.secret_bytes(), [0u8; 32]);
    }

    #[test]
    fn a_pool_without_slots_never_asks_for_refills() {
        let mut pool = ReadyEphemerals::new(<[ReadyEphemeral; 0]>::default());
        assert!(!pool.needs_refill());
        let mut a = rng(4);
        let mut b = rng(4);
        assert_eq!(
            pool.take(&mut a).public(),
            StaticKeypair::generate(&mut b).public()
        );
    }
}
