//! What happens on one connection: quinn-proto's events turned into the
//! caller's, and reading a stream in order.

use std::collections::VecDeque;

use bytes::Bytes;
use quinn_proto::{Dir, Side, StreamEvent, StreamId};

use crate::error::CloseCause;

use super::{CircuitStream, Conn, ConnId, QuicEvent, ReadOutcome, Role, CLOSE_CODE};

/// Reads what `stream` has, in order, into `buf`.
pub(super) fn read_stream(
    inner: &mut quinn_proto::Connection,
    stream: StreamId,
    buf: &mut [u8],
) -> ReadOutcome {
    let mut recv = inner.recv_stream(stream);
    let mut chunks = match recv.read(true) {
        Ok(chunks) => chunks,
        Err(_) => return ReadOutcome::Closed,
    };
    let mut filled = 0usize;
    let mut end = None;
    while let Some(room) = buf.get_mut(filled..).filter(|r| !r.is_empty()) {
        match chunks.next(room.len()) {
            Ok(Some(chunk)) => {
                let n = chunk.bytes.len().min(room.len());
                if let (Some(to), Some(from)) = (room.get_mut(..n), chunk.bytes.get(..n)) {
                    to.copy_from_slice(from);
                }
                filled = filled.saturating_add(n);
            }
            Ok(None) => {
                end = Some(ReadOutcome::Finished);
                break;
            }
            Err(quinn_proto::ReadError::Blocked) => break,
            Err(quinn_proto::ReadError::Reset(_)) => {
                end = Some(ReadOutcome::Closed);
                break;
            }
        }
    }
    // Frees the credit; the MAX_STREAM_DATA frame goes out with the next
    // `poll_datagram`.
    let _ = chunks.finalize();
    match (filled, end) {
        (0, Some(outcome)) => outcome,
        (0, None) => ReadOutcome::WouldBlock,
        (n, _) => ReadOutcome::Data(n),
    }
}

/// Turns one quinn-proto event of `conn` into what the caller needs.
pub(super) fn on_event(
    at: std::time::Instant,
    conn: &mut Conn,
    id: ConnId,
    event: quinn_proto::Event,
    events: &mut VecDeque<QuicEvent>,
) {
    use quinn_proto::Event as E;
    match event {
        E::Connected => {
            if conn.role == Role::Dialler {
                conn.stream = conn.inner.streams().open(Dir::Bi);
            }
            if !conn.ended {
                events.push_back(QuicEvent::Connected {
                    conn: id,
                    remote: conn.remote,
                    role: conn.role,
                });
            }
        }
        E::ConnectionLost { reason } => {
            if !conn.ended {
                conn.ended = true;
                events.push_back(QuicEvent::Closed {
                    conn: id,
                    cause: CloseCause::from_quinn(&reason),
                });
            }
        }
        E::Stream(StreamEvent::Opened { dir }) => {
            while let Some(stream) = conn.inner.streams().accept(dir) {
                let link_stream = stream.initiator() == Side::Client && stream.index() == 0;
                if dir == Dir::Bi && conn.role == Role::Listener && link_stream {
                    conn.stream = Some(stream);
                    if !conn.ended {
                        events.push_back(QuicEvent::Readable(id));
                        events.push_back(QuicEvent::Writable(id));
                    }
                } else if dir == Dir::Bi && !link_stream {
                    // A circuit the peer creates on the link.
                    if !conn.ended {
                        events.push_back(QuicEvent::CircuitReadable(id, CircuitStream(stream)));
                    }
                } else {
                    // Stream limits forbid this; refuse it all the same.
                    let _ = conn.inner.recv_stream(stream).stop(CLOSE_CODE);
                    if dir == Dir::Bi {
                        let _ = conn.inner.send_stream(stream).reset(CLOSE_CODE);
                    }
                }
            }
        }
        E::Stream(StreamEvent::Readable { id: stream }) => {
            if !conn.ended {
                events.push_back(if conn.stream == Some(stream) {
                    QuicEvent::Readable(id)
                } else {
                    QuicEvent::CircuitReadable(id, CircuitStream(stream))
                });
            }
        }
        E::Stream(StreamEvent::Writable { id: stream }) => {
            if !conn.ended {
                events.push_back(if conn.stream == Some(stream) {
                    QuicEvent::Writable(id)
                } else {
                    QuicEvent::CircuitWritable(id, CircuitStream(stream))
                });
            }
        }
        E::Stream(StreamEvent::Finished { id: stream }) => {
            // Everything we wrote was acknowledged: a lingering close can
            // finish now.
            if conn.stream == Some(stream) && conn.linger_until.take().is_some() {
                conn.inner.close(at, CLOSE_CODE, Bytes::new());
            }
        }
        E::Stream(StreamEvent::Stopped { id: stream, .. }) => {
            if conn.stream == Some(stream) && !conn.ended {
                conn.ended = true;
                events.push_back(QuicEvent::Closed {
                    conn: id,
                    cause: CloseCause::StreamReset,
                });
            }
        }
        E::Stream(StreamEvent::Available { .. })
        | E::HandshakeDataReady
        | E::DatagramReceived
        | E::DatagramsUnblocked => {}
    }
}
