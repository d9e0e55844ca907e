//! One TCP connection under one link, and the little buffering it needs.
//!
//! The buffers are what keep memory bounded: `rx` holds only bytes the node
//! could not take yet (its event queue was full), and `tx` the link messages
//! of one round that are not written yet. While `rx` is non-empty the socket
//! is not read; once `tx` holds [`COALESCE_BYTES`] the node is not asked for
//! more until it is written. So neither grows past one read or
//! `COALESCE_BYTES` plus one message, and a slow or stalled peer is held
//! back by TCP flow control instead of by our memory.
//!
//! Why coalesce: a busy link produces many link messages per round (a
//! client keeps only a few of its own cells queued at a time, so each
//! message may carry as few as 8 cells), and one `send` per message made
//! system calls a large share of a relay's work. The messages of a round
//! are written together at the end of the round (or as soon as
//! `COALESCE_BYTES` are waiting), in one call.

use std::io::{self, Read, Write};
use std::net::SocketAddr;

use mio::net::TcpStream;
use veil_core::node::LinkId;

/// A snapshot of one connection, for status output and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// The link the connection carries.
    pub link: LinkId,
    /// The remote end.
    pub peer_addr: SocketAddr,
    /// TCP or QUIC.
    pub transport: veil_core::identity::Transport,
    /// Bytes of a message the socket has not taken yet.
    pub buffered_out: usize,
    /// Bytes read that the node has not consumed yet.
    pub buffered_in: usize,
    /// The socket's send buffer is full: nothing more is asked of the node
    /// for this link until it drains.
    pub write_blocked: bool,
    /// Circuit streams open on a QUIC connection (0 over TCP, where every
    /// circuit shares the link's byte stream).
    pub circuit_streams: usize,
}

/// What a read gave.
#[derive(Debug)]
pub(crate) enum ReadOutcome {
    /// This many bytes, at the start of the buffer.
    Data(usize),
    /// Nothing until the next readiness event.
    WouldBlock,
    /// The peer closed its end, or the connection failed.
    Closed,
}

/// Link-message bytes a connection gathers before it writes them, and the
/// most it holds besides the message being added: about two of the
/// largest `CELLS` messages (31 cells), or half the default loopback
/// socket buffer.
pub(crate) const COALESCE_BYTES: usize = 32 * 1024;

// What a connection holds unsent stays within one output buffer, the bound
// the runtime documents (`OUTPUT_BUFFER`).
const _: () = assert!(COALESCE_BYTES + crate::std_node::RX <= crate::std_node::OUTPUT_BUFFER);

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteOutcome {
    /// Everything went out.
    Drained,
    /// Kept to go out with the round's other messages.
    Gathered,
    /// The socket is full; the rest is kept.
    Blocked,
    /// The connection failed.
    Failed,
}

/// A connection carrying a link.
#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) stream: TcpStream,
    pub(crate) link: LinkId,
    pub(crate) peer_addr: SocketAddr,
    /// Bytes read but not consumed by the node yet.
    rx: Vec<u8>,
    /// The unsent rest of one message; `tx_sent` bytes of it already went.
    tx: Vec<u8>,
    tx_sent: usize,
    /// No `WouldBlock` from a read since the last readable event.
    pub(crate) readable: bool,
    /// No `WouldBlock` from a write since the last writable event.
    pub(crate) writable: bool,
    /// The read side hit end-of-stream or an error; the link is told once
    /// the bytes before it are consumed.
    pub(crate) read_closed: bool,
    /// The write side failed; the link is told at once.
    pub(crate) write_failed: bool,
    /// The node was told the link has no room (part of a message is held).
    pub(crate) told_full: bool,
}

impl Connection {
    /// A connection that just connected or was accepted. Both directions
    /// count as ready: a `WouldBlock` will say otherwise, and edge-triggered
    /// readiness may already have fired before registration.
    pub(crate) fn new(stream: TcpStream, link: LinkId, peer_addr: SocketAddr) -> Self {
        Connection {
            stream,
            link,
            peer_addr,
            rx: Vec::new(),
            tx: Vec::new(),
            tx_sent: 0,
            readable: true,
            writable: true,
            read_closed: false,
            write_failed: false,
            told_full: false,
        }
    }

    /// Bytes held in either direction.
    pub(crate) fn buffered(&self) -> usize {
        self.rx.len().saturating_add(self.unsent().len())
    }

    pub(crate) fn info(&self) -> ConnectionInfo {
        ConnectionInfo {
            link: self.link,
            peer_addr: self.peer_addr,
            transport: veil_core::identity::Transport::Tcp,
            buffered_out: self.unsent().len(),
            buffered_in: self.rx.len(),
            write_blocked: !self.writable,
            circuit_streams: 0,
        }
    }

    /// Bytes read but not consumed by the node yet.
    pub(crate) fn unconsumed(&self) -> &[u8] {
        &self.rx
    }

    /// The node consumed the first `n` unconsumed bytes.
    pub(crate) fn consume(&mut self, n: usize) {
        let n = n.min(self.rx.len());
        self.rx.drain(..n);
    }

    /// Keeps bytes the node could not take. Only called with `rx` empty and
    /// at most one read's worth, so `rx` never exceeds one read.
    pub(crate) fn keep_unconsumed(&mut self, bytes: &[u8]) {
        self.rx.extend_from_slice(bytes);
    }

    /// Whether the socket should be read now.
    pub(crate) fn wants_read(&self) -> bool {
        self.readable && !self.read_closed && self.rx.is_empty()
    }

    /// Reads once into `buf`.
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> ReadOutcome {
        loop {
            match self.stream.read(buf) {
                Ok(0) => {
                    self.read_closed = true;
                    return ReadOutcome::Closed;
                }
                Ok(n) => return ReadOutcome::Data(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.readable = false;
                    return ReadOutcome::WouldBlock;
                }
                Err(_) => {
                    self.read_closed = true;
                    return ReadOutcome::Closed;
                }
            }
        }
    }

    fn unsent(&self) -> &[u8] {
        self.tx.get(self.tx_sent..).unwrap_or_default()
    }

    /// Whether the node may be asked for another message for this link.
    pub(crate) fn can_take_message(&self) -> bool {
        self.writable && !self.write_failed && self.unsent().len() < COALESCE_BYTES
    }

    /// Whether messages wait for the end of the round.
    pub(crate) fn has_gathered(&self) -> bool {
        !self.told_full && !self.unsent().is_empty()
    }

    /// Writes what is left of the pending message.
    pub(crate) fn flush(&mut self) -> WriteOutcome {
        let (written, outcome) = write_some(
            &mut self.stream,
            self.tx.get(self.tx_sent..).unwrap_or_default(),
        );
        self.tx_sent = self.tx_sent.saturating_add(written);
        if self.unsent().is_empty() {
            self.tx.clear();
            self.tx_sent = 0;
        }
        self.note(outcome)
    }

    /// Adds a message to the round's; they are written together by
    /// [`flush`](Self::flush) at the end of the round, or at once when
    /// [`COALESCE_BYTES`] are waiting. Only called while
    /// [`can_take_message`](Self::can_take_message), so at most
    /// `COALESCE_BYTES` and one message are kept.
    pub(crate) fn send(&mut self, message: &[u8]) -> WriteOutcome {
        if self.tx_sent > 0 {
            self.tx.drain(..self.tx_sent);
            self.tx_sent = 0;
        }
        self.tx.extend_from_slice(message);
        if self.tx.len() < COALESCE_BYTES {
            return WriteOutcome::Gathered;
        }
        self.flush()
    }

    fn note(&mut self, outcome: WriteOutcome) -> WriteOutcome {
        match outcome {
            WriteOutcome::Drained | WriteOutcome::Gathered => {}
            WriteOutcome::Blocked => self.writable = false,
            WriteOutcome::Failed => self.write_failed = true,
        }
        outcome
    }
}

/// Writes as much of `bytes` as the socket takes now.
fn write_some(stream: &mut TcpStream, bytes: &[u8]) -> (usize, WriteOutcome) {
    let mut written = 0usize;
    while let Some(rest) = bytes.get(written..).filter(|r| !r.is_empty()) {
        match stream.write(rest) {
            Ok(0) => return (written, WriteOutcome::Failed),
            Ok(n) => written = written.saturating_add(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return (written, WriteOutcome::Blocked)
            }
            Err(_) => return (written, WriteOutcome::Failed),
        }
    }
    (written, WriteOutcome::Drained)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection over real loopback TCP, and the peer's blocking end.
    fn pair() -> (Connection, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let ours = std::net::TcpStream::connect(addr).unwrap();
        let (theirs, _) = listener.accept().unwrap();
        ours.set_nonblocking(true).unwrap();
        theirs
            .set_read_timeout(Some(std::time::Duration::from_millis(200)))
            .unwrap();
        let conn = Connection::new(TcpStream::from_std(ours), LinkId::from_u32(0), addr);
        (conn, theirs)
    }

    fn read_available(peer: &mut std::net::TcpStream) -> Vec<u8> {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = peer.read(&mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        got
    }

    #[test]
    fn a_rounds_messages_are_gathered_then_written_in_order() {
        let (mut conn, mut peer) = pair();
        let messages: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; 1000 + usize::from(i)]).collect();
        for m in &messages {
            assert_eq!(conn.send(m), WriteOutcome::Gathered);
            assert!(conn.can_take_message());
        }
        assert!(conn.has_gathered());
        assert!(
            read_available(&mut peer).is_empty(),
            "nothing goes before the flush"
        );
        assert_eq!(conn.flush(), WriteOutcome::Drained);
        assert!(!conn.has_gathered());
        assert_eq!(read_available(&mut peer), messages.concat());
    }

    #[test]
    fn gathering_stops_at_the_bound_and_writes_at_once() {
        let (mut conn, mut peer) = pair();
        let message = vec![7u8; 10_000];
        let mut sent = Vec::new();
        // Three messages stay under 32 KiB; the fourth crosses it and the
        // lot goes out in that call.
        for _ in 0..3 {
            assert_eq!(conn.send(&message), WriteOutcome::Gathered);
            sent.extend_from_slice(&message);
        }
        assert_eq!(conn.send(&message), WriteOutcome::Drained);
        sent.extend_from_slice(&message);
        assert!(conn.buffered() <= COALESCE_BYTES + message.len());
        assert_eq!(read_available(&mut peer), sent);
    }
}
