//! Cells in: taking cells from a link's byte stream or its circuit streams
//! only while there is room for what they may cause, which is how a full
//! link or a full event queue pushes back on the peer instead of growing a
//! queue.

use crate::capacity::DequeStore;
use crate::cell::{CellCommand, CircuitId, DestroyReason};
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
            let pending_cells = session.pending_cells();
            #[cfg(feature = "replay-filter")]
            if self.refuse_replay(now, index) {
                continue;
            }
            if pending_cells == 0 {
                break;
            }
        }
        self.sync_slot(index);
        self.pump();
        Ok(consumed)
    }

    /// Before anything is answered: a first message seen before is a
    /// replay (link spec §2.2), refused like an unmarked one. Whether it
    /// was refused.
    #[cfg(feature = "replay-filter")]
    fn refuse_replay(&mut self, now: Instant, index: usize) -> bool {
        let Some(mark) = self.session_mut(index).and_then(|s| s.take_first_mark()) else {
            return false;
        };
        if !super::replay_filter::seen_before(&mut self.replay_marks, &mark) {
            return false;
        }
        self.stats.inbound_refused.replayed = self.stats.inbound_refused.replayed.saturating_add(1);
        if let Some(session) = self.session_mut(index) {
            session.refuse_replayed(now);
        }
        true
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
        #[cfg(feature = "mixing-delays")]
        let unmixed = match self.mixing_admit(link, &cell) {
            super::mixing::Admit::Wait => return Err(StreamCellError::WouldBlock(link)),
            super::mixing::Admit::Hold { draw, .. } => {
                if let Some(session) = self.session_mut(index) {
                    session.note_stream_cell(now);
                }
                self.mixing_hold(link, &cell, draw);
                self.sync_slot(index);
                return Ok(());
            }
            super::mixing::Admit::Unmixed => true,
            super::mixing::Admit::Now => false,
        };
        if !self.cell_fits(link, &cell) {
            return Err(StreamCellError::WouldBlock(link));
        }
        #[cfg(feature = "mixing-delays")]
        if unmixed {
            self.mixing_unmixed();
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
        #[cfg(feature = "batched-upkeep")]
        {
            self.pump_due = true;
        }
        #[cfg(not(feature = "batched-upkeep"))]
        self.pump();
        Ok(())
    }

    /// Handles the cells a link holds while there is room for what they
    /// may cause. Returns `false` if some are left for lack of room.
    fn take_cells(&mut self, index: usize, link: LinkId) -> bool {
        loop {
            let Some(next) = self.session_mut(index).and_then(|s| s.peek_cell()) else {
                self.set_held(index, false);
                return true;
            };
            // A relay cell in the frames of a stream link is not mixed: it
            // closes the link below.
            #[cfg(feature = "mixing-delays")]
            let unmixed = match self.mixing_admit(link, &next) {
                _ if self.session_mut(index).is_some_and(|s| s.circuit_streams()) => false,
                super::mixing::Admit::Wait => {
                    self.set_held(index, true);
                    return false;
                }
                super::mixing::Admit::Hold { draw, .. } => {
                    self.set_held(index, false);
                    if let Some(cell) = self.session_mut(index).and_then(|s| s.take_cell()) {
                        self.mixing_hold(link, &cell, draw);
                    }
                    continue;
                }
                super::mixing::Admit::Unmixed => true,
                super::mixing::Admit::Now => false,
            };
            if !self.cell_fits(link, &next) {
                self.set_held(index, true);
                return false;
            }
            self.set_held(index, false);
            let Some(mut cell) = self.session_mut(index).and_then(|s| s.take_cell()) else {
                return true;
            };
            #[cfg(feature = "mixing-delays")]
            if unmixed {
                self.mixing_unmixed();
            }
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

    /// Notes whether the link in slot `index` holds a cell for lack of
    /// room, keeping the time it started to.
    fn set_held(&mut self, index: usize, held: bool) {
        let now = self.now;
        if let Some(slot) = self.links.as_mut().get_mut(index) {
            if !held {
                slot.held_since = None;
            } else if slot.held_since.is_none() {
                slot.held_since = Some(now);
            }
        }
    }

    /// Whether `cell`, received on `link`, can be handled now. It may raise
    /// one event, answer on `link` itself (`CREATED`, `ACK`, `CREDIT`,
    /// `DESTROY`) and go on to its circuit's other link. A `RELAY` cell
    /// needs room beyond the control reserve on both links; a control cell
    /// (`DESTROY`, `CREATE`) only some room, so teardown always gets
    /// through. Only the cell's own circuit counts: a full link holds up
    /// the cells of the circuits that lead to it, not the others.
    pub(super) fn cell_fits(&mut self, link: LinkId, cell: &Cell) -> bool {
        if self.event_room() == 0 {
            return false;
        }
        let command = CellCommand::of(cell);
        if self.link_only() || command.is_some_and(CellCommand::is_link_level) {
            return true;
        }
        let far = self.engine.far_link((link, CircuitId::of(cell)));
        let links = self.links.as_mut();
        circuit_ctx::room_for(links, link, command)
            && far.is_none_or(|far| circuit_ctx::room_for(links, far, command))
    }

    /// Destroys the circuits whose cells have waited
    /// [`cell_hold_timeout`](super::NodeConfig::cell_hold_timeout) for room
    /// on their next link, and drops those cells, so the links they came
    /// over move again. A cell held for another reason (a full event queue,
    /// its own link full) is not a circuit's doing: its timer starts over.
    pub(crate) fn release_stalled_links(&mut self) {
        let now = self.now;
        let hold = self.config.cell_hold_timeout;
        for index in 0..self.links.as_ref().len() {
            let due = self
                .links
                .as_ref()
                .get(index)
                .and_then(|s| s.held_since)
                .is_some_and(|since| now.saturating_since(since) >= hold);
            let Some(link) = self.link_at(index).filter(|_| due) else {
                continue;
            };
            let Some(cell) = self.session_mut(index).and_then(|s| s.peek_cell()) else {
                self.set_held(index, false);
                continue;
            };
            let end = (link, CircuitId::of(&cell));
            let command = CellCommand::of(&cell);
            let stalled_far = self
                .engine
                .far_link(end)
                .is_some_and(|far| !circuit_ctx::room_for(self.links.as_mut(), far, command));
            if !stalled_far || self.link_only() {
                if let Some(slot) = self.links.as_mut().get_mut(index) {
                    slot.held_since = Some(now);
                }
                continue;
            }
            crate::logging::log_warn!("{}: a circuit stalled it; destroying the circuit", link);
            self.with_engine(|engine, ctx, _| {
                engine.destroy_relayed(ctx, end, DestroyReason::ResourceLimit)
            });
            // The cell's circuit is gone, so is the cell.
            let _ = self.session_mut(index).and_then(|s| s.take_cell());
            self.stats.cells_dropped.circuit_stalled =
                self.stats.cells_dropped.circuit_stalled.saturating_add(1);
            self.set_held(index, false);
            self.cells_held = true;
        }
    }

    /// When the oldest held cell's hold time runs out.
    pub(crate) fn hold_deadline(&self) -> Option<Instant> {
        let hold = self.config.cell_hold_timeout;
        self.links
            .as_ref()
            .iter()
            .filter_map(|s| s.held_since)
            .map(|since| since.saturating_add(hold))
            .min()
    }

    /// One received cell. Returns `false` if it breaks the protocol and the
    /// link must close.
    pub(super) fn on_cell(&mut self, link: LinkId, cell: &Cell) -> bool {
        let now = self.now;
        if self.is_anonymous(link)
            && CircuitId::of(cell) == CircuitId::LINK
            && CellCommand::of(cell) == Some(CellCommand::Descriptor)
        {
            // Descriptors pushed to us over an anonymous link are not
            // learned: a first hop could otherwise feed its client alone
            // relays to recognise it by (link spec §3.1).
            return true;
        }
        let Some(slot) = self
            .slot_index(link)
            .and_then(|index| self.links.as_mut().get_mut(index))
        else {
            return false;
        };
        let session = slot.session.as_ref();
        let mut lists_us = None;
        let ctx = LinkCtx {
            link,
            peer: session.and_then(|s| s.peer()),
            dialled: session.is_some_and(|s| s.role() == LinkRole::Initiator),
            network: slot.prefix,
            quota: &mut slot.gossip,
            lists_us: &mut lists_us,
        };
        let kind = self.discovery.on_cell(
            &self.config,
            now,
            ctx,
            cell,
            self.events.view_mut(),
            &mut self.stats,
        );
        if let (Some(lists_us), Some(index)) = (lists_us, self.slot_index(link)) {
            self.peer_listed_us(index, lists_us);
        }
        match kind {
            LinkCell::Handled => true,
            // Without the `introducers` feature: ignored, never a violation.
            LinkCell::DialBack => !super::introducers::INTRODUCERS || self.on_dial_back(link, cell),
            LinkCell::Lookup => self.on_descriptor_request(link, cell),
            LinkCell::Described { node, stored } => {
                self.relay_lookup_answers(node, stored, cell);
                true
            }
            #[cfg(feature = "link-padding")]
            LinkCell::PaddingRequest(request) => {
                if let Some(session) = self
                    .slot_index(link)
                    .and_then(|index| self.links.as_mut().get_mut(index))
                    .and_then(|slot| slot.session.as_mut())
                {
                    session.peer_asked_padding(request);
                }
                true
            }
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
        // Held cells due but without room before may have it now; if any
        // were handled, `cells_held` is set.
        #[cfg(feature = "mixing-delays")]
        let released = self.mixing.any_blocked() && self.release_mixed();
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
        #[cfg(feature = "mixing-delays")]
        let taken = taken || released;
        if taken {
            self.pump();
        }
    }
}
