//! Moving bytes between sockets and the node, and events to the caller.

use std::net::Shutdown;

use mio::Token;
use veil_core::node::{Event, LinkId};
use veil_core::time::Instant;

use super::Runtime;
use crate::connection::{ReadOutcome, WriteOutcome};
use crate::trace::TracedNode;

/// Reads per connection per turn, so one busy peer cannot starve the rest.
const READS_PER_TURN: usize = 16;

/// Messages written per connection per turn, for the same reason.
const WRITES_PER_TURN: usize = 16;

impl Runtime {
    /// Feeds what was read, writes what can be written, and hands out every
    /// event on the way.
    pub(super) fn service<F>(&mut self, now: Instant, on_event: &mut F)
    where
        F: FnMut(&mut TracedNode, Event),
    {
        self.drain_events(on_event);
        let tokens: Vec<Token> = self.connections.keys().copied().collect();
        for &token in &tokens {
            self.pump_reads(token, now, on_event);
        }
        self.drain_events(on_event);
        for &token in &tokens {
            self.pump_writes(token, now);
        }
        // Writing a `Close` frame ends its link: report it (and close the
        // socket) now rather than a turn later.
        self.drain_events(on_event);
    }

    /// Hands every queued event to the caller; returns how many there were.
    /// A closed link's connection is closed before the caller sees it.
    pub(super) fn drain_events<F>(&mut self, on_event: &mut F) -> usize
    where
        F: FnMut(&mut TracedNode, Event),
    {
        let mut count = 0usize;
        while let Some(event) = self.node.poll_event() {
            count = count.saturating_add(1);
            if let Event::LinkClosed { link, .. } = &event {
                self.close_transport(*link);
            }
            on_event(&mut self.node, event);
        }
        count
    }

    /// Feeds bytes held back earlier, then reads and feeds more, until the
    /// socket is empty, the budget is spent, or the node cannot take more.
    fn pump_reads<F>(&mut self, token: Token, now: Instant, on_event: &mut F)
    where
        F: FnMut(&mut TracedNode, Event),
    {
        let mut reads = 0usize;
        loop {
            let Some(conn) = self.connections.get_mut(&token) else {
                return;
            };
            let link = conn.link;
            if !conn.unconsumed().is_empty() {
                let Ok(consumed) = self.node.handle_data(now, link, conn.unconsumed()) else {
                    // The link is gone already; its socket has no use.
                    self.drop_connection(token);
                    return;
                };
                conn.consume(consumed);
                if !conn.unconsumed().is_empty() {
                    // The node's event queue is full: empty it and go on.
                    // If that freed nothing, try again next turn.
                    if self.drain_events(on_event) == 0 && consumed == 0 {
                        break;
                    }
                }
                continue;
            }
            if !conn.wants_read() || reads == READS_PER_TURN {
                break;
            }
            reads = reads.saturating_add(1);
            match conn.read(&mut self.read_buf) {
                ReadOutcome::Data(n) => {
                    let data = self.read_buf.get(..n).unwrap_or_default();
                    let Ok(consumed) = self.node.handle_data(now, link, data) else {
                        self.drop_connection(token);
                        return;
                    };
                    conn.keep_unconsumed(data.get(consumed..).unwrap_or_default());
                }
                ReadOutcome::WouldBlock | ReadOutcome::Closed => break,
            }
        }
        let ended = self
            .connections
            .get(&token)
            .filter(|c| c.read_closed && c.unconsumed().is_empty())
            .map(|c| c.link);
        if let Some(link) = ended {
            self.transport_closed(token, link, now);
        }
    }

    /// Writes the held-back message, then asks the node for more while the
    /// socket takes it. Only one message is ever held per connection.
    fn pump_writes(&mut self, token: Token, now: Instant) {
        let Some(conn) = self.connections.get_mut(&token) else {
            return;
        };
        let link = conn.link;
        conn.more_to_send = false;
        let mut messages = 0usize;
        while conn.writable && !conn.write_failed {
            if !conn.can_take_message() && conn.flush() != WriteOutcome::Drained {
                break;
            }
            if messages == WRITES_PER_TURN {
                conn.more_to_send = true;
                break;
            }
            let Some(len) = self
                .node
                .poll_link_transmit(now, link, &mut self.transmit_buf)
            else {
                break;
            };
            messages = messages.saturating_add(1);
            let message = self.transmit_buf.get(..len).unwrap_or_default();
            if conn.send(message) != WriteOutcome::Drained {
                break;
            }
        }
        if conn.write_failed {
            self.transport_closed(token, link, now);
        }
    }

    /// The connection under `link` ended: tell the node and drop it.
    fn transport_closed(&mut self, token: Token, link: LinkId, now: Instant) {
        // An unknown link was already closed by the node; nothing to tell.
        let _ = self.node.handle_transport_closed(now, link);
        self.drop_connection(token);
    }

    /// The node closed `link`: send what is held (usually its `Close`
    /// frame), best effort, and close the connection.
    fn close_transport(&mut self, link: LinkId) {
        #[cfg(feature = "quic")]
        if self.close_quic_link(self.clock.now(), link) {
            return;
        }
        let Some(&token) = self.by_link.get(&link) else {
            return;
        };
        if let Some(conn) = self.connections.get_mut(&token) {
            if conn.writable && !conn.write_failed {
                let _ = conn.flush();
            }
            // Errors here mean the peer is gone already, which is the goal.
            let _ = conn.stream.shutdown(Shutdown::Write);
        }
        self.drop_connection(token);
    }

    /// Forgets a connection; dropping the stream closes the socket.
    pub(super) fn drop_connection(&mut self, token: Token) {
        if let Some(mut conn) = self.connections.remove(&token) {
            self.by_link.remove(&conn.link);
            // Closing the socket deregisters it too; this just says so early.
            let _ = self.poll.registry().deregister(&mut conn.stream);
        }
    }
}
