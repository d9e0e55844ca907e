//! Links whose transport gives each circuit a stream of its own (QUIC).
//!
//! Over TCP every circuit of a link shares one ordered byte stream: when a
//! relay cannot take one circuit's next cell (the link it leads to is
//! full), every circuit behind it on the stream waits too, and a lost
//! segment holds them all until it is resent. A QUIC connection has many
//! independently ordered, independently flow-controlled streams. On such a
//! link the node keeps the link's own frames (handshake, keepalives, rekeys,
//! link-level cells) on the link's byte stream as always, and hands each
//! circuit cell out and in on its own, so the adapter can put every circuit
//! on its own stream and the node can refuse one circuit's cell without
//! stalling the others (link spec §10).
//!
//! Circuit cells on those streams carry no link-layer encryption of their
//! own: the transport protects them (QUIC's TLS 1.3 packet protection), and
//! the link handshake is bound to that protection by the transport's
//! channel binding, so the authenticated veil peer is the transport's peer.

use crate::identity::{NodeId, Transport};
use crate::link::{Cell, CloseReason, LinkPhase, LinkRole, CHANNEL_BINDING_LEN};
use crate::message::MessageSlot;
use crate::time::Instant;

use super::{circuit_ctx, LinkId, LinkSlot, Node, OpenLinkError, StreamCellError};
use crate::cell::CircuitId;

/// Whether a cell belongs to the link itself (circuit id 0): it travels in
/// the link's frames even on a link with circuit streams.
pub(crate) fn is_link_level(cell: &Cell) -> bool {
    CircuitId::of(cell).is_link()
}

impl<
        S,
        MB,
        const RX: usize,
        const TXQ: usize,
        const EVENTS: usize,
        const PEERS: usize,
        const RELAYED: usize,
        const OWN: usize,
        const MSG: usize,
    > Node<S, MB, RX, TXQ, EVENTS, PEERS, RELAYED, OWN, MSG>
where
    S: AsRef<[LinkSlot<RX, TXQ>]> + AsMut<[LinkSlot<RX, TXQ>]>,
    MB: AsRef<[MessageSlot<MSG>]> + AsMut<[MessageSlot<MSG>]>,
{
    /// As [`open_link_over`](Self::open_link_over), for a transport that
    /// carries each circuit on a stream of its own. `channel_binding` is a
    /// value both ends of the transport connection derive from its keys
    /// and nobody else knows (for QUIC, a TLS exporter; link spec §10); it
    /// goes into the link handshake, which therefore fails unless both ends
    /// share the same connection.
    ///
    /// On this link the link's byte stream (`handle_data`,
    /// `poll_link_transmit`) carries only the link's own frames and
    /// link-level cells; circuit cells leave through
    /// [`poll_stream_cell`](Self::poll_stream_cell) and arrive through
    /// [`handle_stream_cell`](Self::handle_stream_cell).
    pub fn open_stream_link(
        &mut self,
        now: Instant,
        role: LinkRole,
        expected_peer: Option<NodeId>,
        transport: Transport,
        channel_binding: [u8; CHANNEL_BINDING_LEN],
    ) -> Result<LinkId, OpenLinkError> {
        self.open_link_inner(
            now,
            role,
            expected_peer,
            Some(transport),
            Some(channel_binding),
        )
    }

    /// Whether `link` was opened with circuit streams.
    pub fn has_circuit_streams(&self, link: LinkId) -> bool {
        self.slot_index(link)
            .and_then(|i| self.links.as_ref().get(i)?.session.as_ref())
            .is_some_and(|s| s.circuit_streams())
    }

    /// The next circuit cell to send on `link`, for the stream of its
    /// circuit ([`CircuitId::of`]). Poll it beside
    /// [`poll_link_transmit`](Self::poll_link_transmit) until both are
    /// empty: the link's queue keeps one order, so a link-level cell at its
    /// head goes out in a frame before the circuit cells behind it.
    pub fn poll_stream_cell(&mut self, now: Instant, link: LinkId) -> Option<Cell> {
        self.advance(now);
        let index = self.slot_index(link)?;
        let cell = self.session_mut(index)?.take_stream_cell()?;
        self.sync_slot(index);
        self.refill_after_transmit();
        Some(cell)
    }

    /// Whether `link` has a circuit cell for
    /// [`poll_stream_cell`](Self::poll_stream_cell).
    pub fn has_stream_cell(&self, link: LinkId) -> bool {
        self.slot_index(link)
            .and_then(|i| self.links.as_ref().get(i)?.session.as_ref())
            .is_some_and(|s| s.has_stream_cell())
    }

    /// A whole cell arrived on one of `link`'s circuit streams.
    ///
    /// Taken, it is handled at once. `WouldBlock` leaves it with the caller:
    /// what it may cause does not fit now (the link it is relayed to is
    /// full, or the event queue), or the link's handshake has not finished
    /// (streams and the handshake travel independently). Only this
    /// circuit's stream need wait; the link's other circuits go on. A cell
    /// that breaks the protocol (a link-level cell on a circuit stream, a
    /// bad command) closes the link and counts as taken.
    pub fn handle_stream_cell(
        &mut self,
        now: Instant,
        link: LinkId,
        cell: &Cell,
    ) -> Result<(), StreamCellError> {
        let now = self.advance(now);
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
        if is_link_level(cell) {
            session.close(CloseReason::ProtocolViolation);
            self.sync_slot(index);
            return Ok(());
        }
        if self.circuit_cell_room(link, CircuitId::of(cell)) == 0 {
            return Err(StreamCellError::WouldBlock(link));
        }
        if let Some(session) = self.session_mut(index) {
            session.note_stream_cell(now);
        }
        let mut cell = *cell;
        if let Some(hook) = self.cell_hook {
            hook(&self.identity.node_id(), link, &mut cell);
        }
        if !self.on_cell(link, &cell) {
            if let Some(session) = self.session_mut(index) {
                session.close(CloseReason::ProtocolViolation);
            }
        }
        self.sync_slot(index);
        self.pump();
        Ok(())
    }

    /// Whether one more cell of `circuit` on `link` can be handled now: it
    /// may raise one event, put a cell on `link` itself (`CREATED`,
    /// `CREDIT`, `DESTROY`), and be relayed to its circuit's other link.
    /// Unlike the room check for a shared byte stream, the other circuits
    /// of `link` do not count.
    fn circuit_cell_room(&mut self, link: LinkId, circuit: CircuitId) -> usize {
        let room = EVENTS.saturating_sub(self.events.len());
        if self.config.link_only {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_circuit_id_is_read_from_the_cell_header() {
        let mut cell = [0u8; crate::link::CELL_LEN];
        assert!(is_link_level(&cell));
        cell[..4].copy_from_slice(&0x8000_0001u32.to_be_bytes());
        assert_eq!(CircuitId::of(&cell), CircuitId(0x8000_0001));
        assert!(!is_link_level(&cell));
    }
}
