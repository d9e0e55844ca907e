//! The replay filter of first handshake messages (link spec §2.2).
//!
//! An observer who recorded a dialler's first message could send it again
//! to learn whether the address answers: the mark in it is valid. Marks
//! cover a ten-minute epoch, and a responder takes only its own epoch and
//! the one either side, so a recording is useless after at most thirty
//! minutes; within them, the node refuses a mark it has accepted before.
//! It remembers the last `P::ReplayMarks` capacity marks, oldest dropped
//! first, so memory stays fixed; a node that accepts more first messages
//! than that within thirty minutes can be replayed its oldest ones, which
//! `docs/security.md` states.

use crate::capacity::DequeStore;
use crate::link::obfs::MARK_LEN;

use super::ReplayMark;

/// Whether `mark` was seen before; if not, it is remembered (dropping the
/// oldest remembered mark when the store is full).
pub(crate) fn seen_before<S: DequeStore<ReplayMark>>(store: &mut S, mark: &[u8; MARK_LEN]) -> bool {
    let Some(key) = mark.first_chunk::<8>() else {
        return false;
    };
    let marks = store.view_mut();
    if marks.iter().any(|m| m == key) {
        return true;
    }
    if marks.is_full() {
        marks.pop_front();
    }
    // Cannot fail: room was just made (a zero-capacity store keeps none).
    let _ = marks.push_back(*key);
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_is_new_once_and_seen_after() {
        let mut store = heapless::Deque::<ReplayMark, 4>::new();
        assert!(!seen_before(&mut store, &[1; MARK_LEN]));
        assert!(seen_before(&mut store, &[1; MARK_LEN]));
        assert!(!seen_before(&mut store, &[2; MARK_LEN]));
        assert!(seen_before(&mut store, &[1; MARK_LEN]));
    }

    #[test]
    fn a_full_filter_forgets_its_oldest_mark_and_never_grows() {
        let mut store = heapless::Deque::<ReplayMark, 2>::new();
        for b in 1..=3u8 {
            assert!(!seen_before(&mut store, &[b; MARK_LEN]));
        }
        assert_eq!(store.len(), 2);
        assert!(seen_before(&mut store, &[3; MARK_LEN]));
        assert!(seen_before(&mut store, &[2; MARK_LEN]));
        // The oldest went to make room.
        assert!(!seen_before(&mut store, &[1; MARK_LEN]));
    }
}
