//! A peer that never reads cannot make the runtime buffer without bound.

use std::time::Instant as WallInstant;

use veil_core::link::CELL_LEN;
use veil_core::node::{SendCell, SendCellError};
use veil_mio::OUTPUT_BUFFER;

use crate::support::{link_up, Peer, MAX_TURNS, WALL_CAP};

#[test]
fn a_stalled_reader_holds_at_most_one_message() {
    let mut a = Peer::new(1);
    let mut b = Peer::new(2);
    let (link, _) = link_up(&mut a, &mut b);

    // From here on only `a` runs: `b` never reads, so once the kernel
    // buffers on both ends fill, `a`'s socket stops taking bytes.
    let cell = [0x5A; CELL_LEN];
    let start = WallInstant::now();
    let mut blocked_turns = 0;
    let mut max_buffered = 0;
    for _ in 0..MAX_TURNS {
        loop {
            match a.rt.handle(SendCell { link, cell: &cell }) {
                Ok(()) => {}
                Err(SendCellError::QueueFull(_)) => break,
                Err(e) => panic!("send_cell: {e}"),
            }
        }
        a.turn();
        let buffered = a.rt.buffered_bytes();
        max_buffered = max_buffered.max(buffered);
        assert!(
            buffered <= OUTPUT_BUFFER,
            "{buffered} bytes buffered, more than one message"
        );
        let conn =
            a.rt.connection(link)
                .expect("link still has its connection");
        assert_eq!(conn.buffered_in, 0);
        if conn.write_blocked {
            // Blocked means a write came back short: the rest is held.
            assert!(conn.buffered_out > 0);
            blocked_turns += 1;
            if blocked_turns >= 50 {
                break;
            }
        }
        if start.elapsed() > WALL_CAP {
            break;
        }
    }
    assert!(
        blocked_turns >= 50,
        "the socket never stayed blocked ({blocked_turns} blocked turns)"
    );
    // What could not be written waits in the node's bounded queue.
    let info = a.rt.node().link_info(link).expect("link open");
    assert!(info.queued_cells > 0);
    assert!(max_buffered <= OUTPUT_BUFFER);
}
