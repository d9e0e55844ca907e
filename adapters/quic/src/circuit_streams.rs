//! The circuit streams of one QUIC link: each circuit's cells on a
//! bidirectional stream of its own, so that one circuit the node cannot
//! take cells of (its next link is full) waits alone, and a lost packet
//! delays only the streams whose data it carried (link spec §10).
//!
//! Bounded like the link stream: per stream at most [`READ_AHEAD_CELLS`]
//! cells read and not yet taken by the node (while they are held the stream
//! is not read further, so QUIC flow control holds back that circuit's
//! sender, and only it), and per link at most one cell the streams did not
//! take (while it is held, the node is told the link has no room, so it
//! gives no more circuit cells for it).

use std::collections::HashMap;

use veil_core::cell::{CellCommand, CircuitId};
use veil_core::link::{Cell, CELL_LEN};
use veil_core::node::{Drive, LinkId, ReceiveStreamCell, StreamCellError};
use veil_core::time::Instant;

use crate::transport::{CircuitStream, ConnId, QuicTransport, ReadOutcome};

/// Whole cells read ahead of the node on one stream.
pub const READ_AHEAD_CELLS: usize = 8;

/// Cells given to the node per stream per pump, so one busy circuit cannot
/// starve the others of the loop's time.
const CELLS_PER_PUMP: usize = 64;

/// The node no longer knows the link: its connection must go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LinkGone;

#[derive(Debug, Default)]
struct StreamState {
    /// The circuit, from the first cell either way.
    circuit: Option<CircuitId>,
    /// Read, not yet taken by the node: whole cells, then maybe part of
    /// one, from `rx_start` on. Cells are taken by moving `rx_start`, not
    /// by shifting the rest down (a copy per cell); the buffer is reset
    /// once empty and compacted before the next read.
    rx: Vec<u8>,
    rx_start: usize,
    readable: bool,
    /// The peer finished (or reset) its side and all of it was read.
    read_done: bool,
    /// The unsent rest of a cell.
    tx: Vec<u8>,
    /// Finish our side once `tx` is out (the circuit was destroyed).
    finish_pending: bool,
    /// Our side is finished.
    write_done: bool,
}

impl StreamState {
    fn holds_cell(&self) -> bool {
        self.rx_len() >= CELL_LEN
    }

    /// Bytes read and not yet taken.
    fn rx_len(&self) -> usize {
        self.rx.len().saturating_sub(self.rx_start)
    }

    /// The next whole cell, if one is held.
    fn next_cell(&self) -> Option<&Cell> {
        self.rx.get(self.rx_start..)?.first_chunk::<CELL_LEN>()
    }

    /// The node took the next cell.
    fn take_cell(&mut self) {
        self.rx_start = self.rx_start.saturating_add(CELL_LEN);
        if self.rx_start >= self.rx.len() {
            self.rx.clear();
            self.rx_start = 0;
        }
    }
}

/// The circuit streams of one connection.
#[derive(Debug, Default)]
pub(crate) struct CircuitStreams {
    streams: HashMap<CircuitStream, StreamState>,
    by_circuit: HashMap<CircuitId, CircuitStream>,
    /// A stream that did not take all of a cell: the link has no room until
    /// it has.
    blocked: Option<CircuitStream>,
    /// A cell for a new circuit whose stream could not be opened yet (the
    /// peer's stream limit): tried again on every pump.
    unopened: Option<Cell>,
}

fn is_destroy(cell: &Cell) -> bool {
    cell.get(4).and_then(|&c| CellCommand::from_code(c)) == Some(CellCommand::Destroy)
}

impl CircuitStreams {
    /// A stream has (or may have) bytes; a new one is the peer's new circuit.
    pub(crate) fn on_readable(&mut self, stream: CircuitStream) {
        self.streams.entry(stream).or_default().readable = true;
    }

    /// Streams open.
    pub(crate) fn len(&self) -> usize {
        self.streams.len()
    }

    /// Bytes held both ways.
    pub(crate) fn buffered_bytes(&self) -> usize {
        self.streams
            .values()
            .map(|s| s.rx_len().saturating_add(s.tx.len()))
            .fold(0, usize::saturating_add)
    }

    /// Whether a pump can make progress without new input: a stream left
    /// readable by the budget. (Cells the node refused wait for the next
    /// pump, which follows any socket event or timer; spinning on them
    /// would not make room appear any sooner.)
    pub(crate) fn has_work(&self) -> bool {
        self.streams
            .values()
            .any(|s| s.readable && !s.read_done && !s.holds_cell())
    }

    /// Feeds held and newly read cells to the node, stream by stream.
    pub(crate) fn pump_reads<H: Drive>(
        &mut self,
        transport: &mut QuicTransport,
        host: &mut H,
        now: Instant,
        conn: ConnId,
        link: LinkId,
    ) -> Result<(), LinkGone> {
        // Only streams with something to do: a held cell to offer again, or
        // bytes to read. Idle circuits cost nothing per pump.
        let streams: Vec<CircuitStream> = self
            .streams
            .iter()
            .filter(|(_, s)| s.holds_cell() || (s.readable && !s.read_done))
            .map(|(&stream, _)| stream)
            .collect();
        for stream in streams {
            self.pump_stream_reads(transport, host, now, conn, link, stream)?;
        }
        Ok(())
    }

    fn pump_stream_reads<H: Drive>(
        &mut self,
        transport: &mut QuicTransport,
        host: &mut H,
        now: Instant,
        conn: ConnId,
        link: LinkId,
        stream: CircuitStream,
    ) -> Result<(), LinkGone> {
        let mut cells = 0usize;
        loop {
            let Some(state) = self.streams.get_mut(&stream) else {
                return Ok(());
            };
            if cells == CELLS_PER_PUMP {
                return Ok(());
            }
            if let Some(cell) = state.next_cell() {
                let circuit = CircuitId::of(cell);
                let destroy = is_destroy(cell);
                match host.handle(now, ReceiveStreamCell { link, cell }) {
                    Ok(()) => {}
                    // Held: only this circuit waits.
                    Err(StreamCellError::WouldBlock(_)) => return Ok(()),
                    Err(StreamCellError::UnknownLink(_) | StreamCellError::NotAStreamLink(_)) => {
                        return Err(LinkGone)
                    }
                }
                cells = cells.saturating_add(1);
                state.take_cell();
                if state.circuit.is_none() {
                    state.circuit = Some(circuit);
                    self.by_circuit.insert(circuit, stream);
                }
                if destroy {
                    // The peer ended the circuit: so do we, on this stream.
                    self.end_circuit(transport, conn, stream);
                }
                continue;
            }
            if !state.readable || state.read_done {
                break;
            }
            // What is left is less than a cell: move it to the front (at
            // most 513 bytes) and read straight in behind it.
            if state.rx_start > 0 {
                state.rx.drain(..state.rx_start.min(state.rx.len()));
                state.rx_start = 0;
            }
            let held = state.rx.len();
            let capacity = READ_AHEAD_CELLS.saturating_mul(CELL_LEN);
            state.rx.resize(capacity.max(held), 0);
            let outcome = match state.rx.get_mut(held..) {
                Some(room) => transport.read_circuit(conn, stream, room),
                None => ReadOutcome::WouldBlock,
            };
            let got = match outcome {
                ReadOutcome::Data(n) => n,
                _ => 0,
            };
            state.rx.truncate(held.saturating_add(got));
            match outcome {
                ReadOutcome::Data(_) => {}
                ReadOutcome::WouldBlock => state.readable = false,
                ReadOutcome::Finished | ReadOutcome::Closed => state.read_done = true,
            }
        }
        self.reap(transport, conn, stream);
        Ok(())
    }

    /// Writes a circuit cell the node gave for this link to its circuit's
    /// stream, opening the stream on the circuit's first cell. Returns
    /// `false` if the cell is held (the stream or the peer's stream limit
    /// did not take it): the link has no room until [`flush`](Self::flush)
    /// gets it out.
    pub(crate) fn write_cell(
        &mut self,
        transport: &mut QuicTransport,
        conn: ConnId,
        cell: &Cell,
    ) -> bool {
        let circuit = CircuitId::of(cell);
        let stream = match self.by_circuit.get(&circuit) {
            Some(&stream) => stream,
            None => {
                let Some(stream) = transport.open_circuit(conn) else {
                    self.unopened = Some(*cell);
                    return false;
                };
                self.by_circuit.insert(circuit, stream);
                let state = self.streams.entry(stream).or_default();
                state.circuit = Some(circuit);
                stream
            }
        };
        let state = self.streams.entry(stream).or_default();
        if state.tx.is_empty() && !state.write_done {
            // The common case: straight to the stream, and only what it did
            // not take is kept (no copy through `tx` for every cell).
            let took = match transport.write_circuit(conn, stream, cell) {
                Ok(n) => n,
                // The peer stopped the stream: the cell is dropped.
                Err(_) => CELL_LEN,
            };
            state
                .tx
                .extend_from_slice(cell.get(took..).unwrap_or_default());
        } else {
            state.tx.extend_from_slice(cell);
        }
        if is_destroy(cell) {
            state.finish_pending = true;
            self.by_circuit.remove(&circuit);
        }
        if !self.flush_stream(transport, conn, stream) {
            self.blocked = Some(stream);
            return false;
        }
        true
    }

    /// Retries the cell the link holds, if any; `true` once none is held.
    pub(crate) fn flush(&mut self, transport: &mut QuicTransport, conn: ConnId) -> bool {
        if let Some(stream) = self.blocked {
            if !self.flush_stream(transport, conn, stream) {
                return false;
            }
            self.blocked = None;
        }
        match self.unopened.take() {
            Some(cell) => self.write_cell(transport, conn, &cell),
            None => true,
        }
    }

    /// Whether a cell is held for lack of room.
    pub(crate) fn holds_outgoing(&self) -> bool {
        self.blocked.is_some() || self.unopened.is_some()
    }

    /// Writes what `stream` holds; `true` once all of it is out.
    fn flush_stream(
        &mut self,
        transport: &mut QuicTransport,
        conn: ConnId,
        stream: CircuitStream,
    ) -> bool {
        let Some(state) = self.streams.get_mut(&stream) else {
            return true;
        };
        if !state.tx.is_empty() {
            match transport.write_circuit(conn, stream, &state.tx) {
                Ok(n) => {
                    state.tx.drain(..n.min(state.tx.len()));
                }
                // The peer stopped the stream: it wants no more of this
                // circuit, so what is held is dropped.
                Err(_) => state.tx.clear(),
            }
        }
        if !state.tx.is_empty() {
            return false;
        }
        if state.finish_pending && !state.write_done {
            state.write_done = true;
            transport.finish_circuit(conn, stream);
        }
        self.reap(transport, conn, stream);
        true
    }

    /// Ends our side of a stream whose circuit is over.
    fn end_circuit(&mut self, transport: &mut QuicTransport, conn: ConnId, stream: CircuitStream) {
        if let Some(state) = self.streams.get_mut(&stream) {
            if let Some(circuit) = state.circuit {
                if self.by_circuit.get(&circuit) == Some(&stream) {
                    self.by_circuit.remove(&circuit);
                }
            }
            state.finish_pending = true;
        }
        self.flush_stream(transport, conn, stream);
    }

    /// Forgets a stream that is over both ways. A peer that finishes its
    /// side without a `DESTROY` gets our side finished too.
    fn reap(&mut self, transport: &mut QuicTransport, conn: ConnId, stream: CircuitStream) {
        let Some(state) = self.streams.get_mut(&stream) else {
            return;
        };
        if !state.read_done || state.holds_cell() {
            return;
        }
        if !state.write_done && state.tx.is_empty() {
            state.write_done = true;
            transport.finish_circuit(conn, stream);
        }
        if state.write_done {
            if let Some(circuit) = state.circuit {
                if self.by_circuit.get(&circuit) == Some(&stream) {
                    self.by_circuit.remove(&circuit);
                }
            }
            self.streams.remove(&stream);
            if self.blocked == Some(stream) {
                self.blocked = None;
            }
        }
    }
}
