//! Cells in: taking cells from a link's byte stream or its circuit streams
//! only while there is room for what they may cause, which is how a full
//! link or a full event queue pushes back on the peer instead of growing a
//! queue.

use crate::capacity::DequeStore;
use crate::cell::CircuitId;
use crate::link::{is_link_level, Cell, CloseReason, LinkPhase, LinkRole};
use crate::time::Instant;

use super::descriptor_cells::{LinkCell, LinkCtx};
use super::{
    circuit_ctx, LinkId, LinkInputError, Node, Profile, Receive, ReceiveStreamCell, StreamCellError,
};

impl<P: Profile> Node<P> {
    pub(crate) fn on_receive(
        &mut self,
        now: Instant,
        input: Receive<'_>,
    ) -> Result<usize, LinkInputError> {
        let Receive { link, bytes } = input;
        let index = self
            .slot_index(link)
            .ok_or(LinkInputError::UnknownLink(link))?;
        let mut consumed = 0usize;
        loop {
            if !self.take_cells(index, link) {
                self.cells_held = true;
                break;
            }
            let Some(session) = self.session_mut(index) else {
                break;
            };
            let rest = bytes.get(consumed..).unwrap_or(&[]);
            consumed = consumed.saturating_add(session.receive(now, rest));
            if session.pending_cells() == 0 {
                break;
            }
        }
        self.sync_slot(index);
        self.pump();
        Ok(consumed)
    }

    pub(crate) fn on_stream_cell(
        &mut self,
        now: Instant,
        input: ReceiveStreamCell<'_>,
    ) -> Result<(), StreamCellError> {
        let ReceiveStreamCell { link, cell } = input;
        let mut cell = *cell;
        let index = self
            .slot_index(link)
            .ok_or(StreamCellError::UnknownLink(link))?;
        let session = self
            .session_mut(index)
            .ok_or(StreamCellError::UnknownLink(link))?;
        if !session.circuit_streams() {
            return Err(StreamCellError::NotAStreamLink(link));
        }
        match session.phase() {
            LinkPhase::Handshaking => return Err(StreamCellError::WouldBlock(link)),
            // Nothing the peer sends after a close matters.
            LinkPhase::Closing | LinkPhase::Closed => return Ok(()),
            LinkPhase::Established => {}
        }
        if is_link_level(&cell) {
            session.close(CloseReason::ProtocolViolation);
            self.sync_slot(index);
            return Ok(());
        }
        if self.circuit_cell_room(link, CircuitId::of(&cell)) == 0 {
            return Err(StreamCellError::WouldBlock(link));
        }
        if let Some(session) = self.session_mut(index) {
            session.note_stream_cell(now);
        }
        self.inspect_cell(link, &mut cell);
        if !self.on_cell(link, &cell) {
            if let Some(session) = self.session_mut(index) {
                session.close(CloseReason::ProtocolViolation);
            }
        }
        self.sync_slot(index);
        self.pump();
        Ok(())
    }

    /// Handles the cells a link holds while there is room for what they
    /// may cause. Returns `false` if some are left for lack of room.
    fn take_cells(&mut self, index: usize, link: LinkId) -> bool {
        loop {
            let pending = self.session_mut(index).map_or(0, |s| s.pending_cells());
            if pending == 0 {
                return true;
            }
            if self.cell_room(link) == 0 {
                return false;
            }
            let Some(mut cell) = self.session_mut(index).and_then(|s| s.take_cell()) else {
                return true;
            };
            self.inspect_cell(link, &mut cell);
            let streams = self.session_mut(index).is_some_and(|s| s.circuit_streams());
            if (streams && !is_link_level(&cell)) || !self.on_cell(link, &cell) {
                // A circuit cell in the frames of a link with circuit
                // streams is out of place (link spec §10).
                if let Some(session) = self.session_mut(index) {
                    session.close(CloseReason::ProtocolViolation);
                }
                return true;
            }
        }
    }

    /// Whether one more cell from `link` can be handled now: each cell may
    /// raise one event, and may put cells on `link` itself and on every
    /// link its circuits lead to.
    fn cell_room(&mut self, link: LinkId) -> usize {
        let mut room = self.event_room();
        if self.link_only() {
            return room;
        }
        let links = self.links.as_mut();
        room = room.min(circuit_ctx::queue_room(links, link));
        self.engine.linked_links(link, |other| {
            room = room.min(circuit_ctx::queue_room(links, other));
        });
        room
    }

    /// Whether one more cell of `circuit` on `link` can be handled now: it
    /// may raise one event, put a cell on `link` itself (`CREATED`,
    /// `CREDIT`, `DESTROY`), and be relayed to its circuit's other link.
    /// Unlike the room check for a shared byte stream, the other circuits
    /// of `link` do not count.
    fn circuit_cell_room(&mut self, link: LinkId, circuit: CircuitId) -> usize {
        let room = self.event_room();
        if self.link_only() {
            return room;
        }
        let far = self.engine.far_link((link, circuit));
        let links = self.links.as_mut();
        let mut room = room.min(circuit_ctx::queue_room(links, link));
        if let Some(far) = far {
            room = room.min(circuit_ctx::queue_room(links, far));
        }
        room
    }

    /// One received cell. Returns `false` if it breaks the protocol and the
    /// link must close.
    fn on_cell(&mut self, link: LinkId, cell: &Cell) -> bool {
        let now = self.now;
        let Some(slot) = self
            .slot_index(link)
            .and_then(|index| self.links.as_mut().get_mut(index))
        else {
            return false;
        };
        let session = slot.session.as_ref();
        let ctx = LinkCtx {
            link,
            peer: session.and_then(|s| s.peer()),
            dialled: session.is_some_and(|s| s.role() == LinkRole::Initiator),
            network: slot.prefix,
            quota: &mut slot.gossip,
        };
        let kind = self.discovery.on_cell(
            &self.config,
            now,
            ctx,
            cell,
            self.events.view_mut(),
            &mut self.stats,
        );
        match kind {
            LinkCell::Handled => true,
            LinkCell::Violation => false,
            LinkCell::Circuit if self.link_only() => {
                self.deliver_raw_cell(link, cell);
                true
            }
            LinkCell::Circuit => self
                .with_engine(|engine, ctx, onion| engine.handle_cell(ctx, link, cell, onion))
                .is_ok(),
        }
    }

    /// Handles cells that links hold decrypted but could not hand on for
    /// lack of room, now that room may have appeared (a transmit emptied a
    /// queue, an event was taken). Without this they would wait for the
    /// link's next bytes, which never come if the peer is itself waiting
    /// for this node to move: two relays with each other's cells in full
    /// queues, say, or a destination whose acknowledgements fill its queue.
    pub(crate) fn retry_held_cells(&mut self) {
        if !self.cells_held {
            return;
        }
        self.cells_held = false;
        let mut taken = false;
        for index in 0..self.links.as_ref().len() {
            let pending = self.session_mut(index).map_or(0, |s| s.pending_cells());
            if pending == 0 {
                continue;
            }
            let Some(link) = self.link_at(index) else {
                continue;
            };
            if !self.take_cells(index, link) {
                self.cells_held = true;
            }
            let after = self.session_mut(index).map_or(0, |s| s.pending_cells());
            taken |= after < pending;
            self.sync_slot(index);
        }
        if taken {
            self.pump();
        }
    }
}
