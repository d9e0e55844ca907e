//! Fixed-capacity storage whose size is named once, in a node's
//! [`Profile`](crate::node::Profile).
//!
//! Every table and queue of the core has a capacity fixed when the node is
//! built. Stable Rust cannot size an array by an associated constant of a
//! generic parameter (`[T; P::N]`), so a profile names the *storage types*
//! instead (`heapless::Vec<PeerEntry, 256>`, `[u8; 16_386]`, …), and the
//! code that uses them works on capacity-erased views (`heapless`'s
//! `VecView` and `DequeView`, plain byte slices). The number appears in one
//! place, the memory is still inline and fixed (`size_of` counts it), and no
//! component carries a const parameter of its own.

use heapless::deque::DequeView;
use heapless::vec::VecView;

/// Storage for a vector of at most a fixed number of `T`:
/// `heapless::Vec<T, N>` for any `N`.
pub trait VecStore<T>: Sized {
    /// The most items it holds.
    const CAPACITY: usize;
    /// The empty vector (a `const`, so that storage can be built in place in
    /// a `static`).
    const EMPTY: Self;
    /// The vector, whatever its capacity.
    fn view(&self) -> &VecView<T>;
    /// The vector, whatever its capacity, for changes.
    fn view_mut(&mut self) -> &mut VecView<T>;
}

impl<T, const N: usize> VecStore<T> for heapless::Vec<T, N> {
    const CAPACITY: usize = N;
    const EMPTY: Self = heapless::Vec::new();

    fn view(&self) -> &VecView<T> {
        self.as_view()
    }

    fn view_mut(&mut self) -> &mut VecView<T> {
        self.as_mut_view()
    }
}

/// Storage for a double-ended queue of at most a fixed number of `T`:
/// `heapless::Deque<T, N>` for any `N`.
pub trait DequeStore<T>: Sized {
    /// The most items it holds.
    const CAPACITY: usize;
    /// The empty queue.
    const EMPTY: Self;
    /// The queue, whatever its capacity.
    fn view(&self) -> &DequeView<T>;
    /// The queue, whatever its capacity, for changes.
    fn view_mut(&mut self) -> &mut DequeView<T>;
    /// Items queued.
    fn len(&self) -> usize {
        self.view().storage_len()
    }
    /// Whether nothing is queued.
    fn is_empty(&self) -> bool {
        self.view().is_empty()
    }
    /// Items that still fit.
    fn room(&self) -> usize {
        Self::CAPACITY.saturating_sub(self.len())
    }
}

impl<T, const N: usize> DequeStore<T> for heapless::Deque<T, N> {
    const CAPACITY: usize = N;
    const EMPTY: Self = heapless::Deque::new();

    fn view(&self) -> &DequeView<T> {
        self.as_view()
    }

    fn view_mut(&mut self) -> &mut DequeView<T> {
        self.as_mut_view()
    }
}

/// A byte buffer of fixed length: `[u8; N]` for any `N`.
pub trait ByteStore: Sized {
    /// Its length in bytes.
    const LEN: usize;
    /// All zeros.
    const ZEROED: Self;
    /// The bytes.
    fn bytes(&self) -> &[u8];
    /// The bytes, for writing.
    fn bytes_mut(&mut self) -> &mut [u8];
}

impl<const N: usize> ByteStore for [u8; N] {
    const LEN: usize = N;
    const ZEROED: Self = [0; N];

    fn bytes(&self) -> &[u8] {
        self
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        self
    }
}

/// A caller's buffer is too small for what was asked; nothing was taken
/// or lost, and the same call with a buffer of `needed` bytes succeeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BufferTooSmall {
    /// Bytes the buffer must have.
    pub needed: usize,
}

impl core::fmt::Display for BufferTooSmall {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "the buffer is too small: pass one of at least {} bytes",
            self.needed
        )
    }
}

impl core::error::Error for BufferTooSmall {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_see_the_capacity_the_storage_type_names() {
        let mut v: heapless::Vec<u8, 3> = VecStore::EMPTY;
        assert_eq!(v.view().capacity(), 3);
        for i in 0..3 {
            v.view_mut().push(i).unwrap();
        }
        assert_eq!(v.view_mut().push(9), Err(9), "full at its capacity");
        let mut q: heapless::Deque<u8, 2> = DequeStore::EMPTY;
        assert_eq!(q.view().storage_capacity(), 2);
        q.view_mut().push_back(1).unwrap();
        assert_eq!(q.view_mut().pop_front(), Some(1));
        assert_eq!(<[u8; 5] as ByteStore>::LEN, 5);
        assert_eq!(<[u8; 5] as ByteStore>::ZEROED.bytes(), &[0; 5]);
    }
}
