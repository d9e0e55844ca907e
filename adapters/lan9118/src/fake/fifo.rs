//! A fixed-capacity FIFO of 32-bit words, as the chip's FIFOs are.

#[derive(Debug, Clone)]
pub(crate) struct Fifo<const N: usize> {
    words: [u32; N],
    head: usize,
    len: usize,
}

impl<const N: usize> Fifo<N> {
    pub(crate) const fn new() -> Self {
        Fifo {
            words: [0; N],
            head: 0,
            len: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn free(&self) -> usize {
        N - self.len
    }

    /// Appends `word`; false (and nothing stored) when full.
    pub(crate) fn push(&mut self, word: u32) -> bool {
        if self.len == N {
            return false;
        }
        match self.words.get_mut((self.head + self.len) % N) {
            Some(slot) => *slot = word,
            None => return false,
        }
        self.len += 1;
        true
    }

    pub(crate) fn pop(&mut self) -> Option<u32> {
        if self.len == 0 {
            return None;
        }
        let word = self.words.get(self.head).copied();
        self.head = (self.head + 1) % N;
        self.len -= 1;
        word
    }

    pub(crate) fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }
}
