//! Everything a node gives its owner, through one drained call.

use crate::capacity::DequeStore;
use crate::cell::CircuitId;
#[cfg(feature = "padding-stats")]
use crate::link::cells_padding;
#[cfg(feature = "batched-upkeep")]
use crate::link::Cell;
use crate::link::{CELL_LEN, MIN_TRANSMIT_BUFFER};
use crate::message::ReceivedMessage;
use crate::time::Instant;

use super::{DialRequest, Event, LinkId, Node, Profile};

/// One output of [`Node::poll`]. Byte payloads borrow the caller's buffer.
// Only the test-only `Event::CellReceived` makes an event large.
#[cfg_attr(feature = "testing", allow(clippy::large_enum_variant))]
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum Output<'b> {
    /// Write these bytes to the link's transport, after everything written
    /// for it before. They are never more than the link's
    /// [`TransportRoom`](super::TransportRoom). If the transport does not
    /// take them all, keep the rest and say the room is 0 until it has.
    Transmit {
        /// The link.
        link: LinkId,
        /// The bytes, at the start of the buffer.
        bytes: &'b [u8],
    },
    /// On a link opened with circuit streams: send this whole cell on the
    /// stream of `circuit` (opening it on the circuit's first cell).
    StreamCell {
        /// The link.
        link: LinkId,
        /// The circuit, also the cell's first four bytes.
        circuit: CircuitId,
        /// The cell, [`CELL_LEN`] bytes at the start of the buffer.
        cell: &'b [u8],
    },
    /// Something happened.
    Event(Event),
    /// A whole message arrived for this node. Taking it is what lets its
    /// senders go on: a node whose owner stops polling stops granting
    /// credit, and its senders stall.
    Message {
        /// Its id, sender and length.
        message: ReceivedMessage,
        /// The message, at the start of the buffer.
        bytes: &'b [u8],
    },
    /// Connect to this address, then [`OpenLink::for_request`](super::OpenLink::for_request),
    /// or send [`DialFailed`](super::DialFailed).
    Dial(DialRequest),
    /// Nothing more until this time or the next input. At that time, send
    /// [`Timeout`](super::Timeout) and drain again.
    Timeout(Instant),
}

/// Why [`Node::poll`] gave nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum PollError {
    /// The next output needs a buffer of at least `needed` bytes. Nothing
    /// was taken or lost: poll again with a larger buffer.
    BufferTooSmall {
        /// Bytes the buffer must have.
        needed: usize,
    },
}

impl core::fmt::Display for PollError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PollError::BufferTooSmall { needed } => write!(
                f,
                "the next output needs a buffer of {needed} bytes: poll again with one that large"
            ),
        }
    }
}

impl core::error::Error for PollError {}

impl<P: Profile> Node<P> {
    /// The next output, or [`Output::Timeout`] when there is nothing more
    /// until that time or the next input. Call it until it says `Timeout`
    /// after every input (see the [module docs](super) for the contract).
    ///
    /// `buf` receives byte payloads. A transmit packs as many cells as fit
    /// (at least [`MIN_TRANSMIT_BUFFER`] bytes are needed; about 16 KiB lets
    /// a busy link send 31 cells at once); a message needs its whole
    /// length, at most [`Node::MAX_MESSAGE`].
    pub fn poll<'b>(&mut self, now: Instant, buf: &'b mut [u8]) -> Result<Output<'b>, PollError> {
        let now = self.advance(now);
        #[cfg(feature = "batched-upkeep")]
        if self.pump_due {
            self.pump();
        }
        if let Some(event) = self.take_event() {
            return Ok(Output::Event(event));
        }
        match self.take_message(buf) {
            Ok(Some(message)) => {
                self.pump();
                let bytes = buf.get(..message.len).unwrap_or_default();
                return Ok(Output::Message { message, bytes });
            }
            Ok(None) => {}
            Err(e) => return Err(PollError::BufferTooSmall { needed: e.needed }),
        }
        if let Some(request) = self.dialer.poll() {
            // The link the dial makes needs a slot when it comes up.
            self.prune_for_dial();
            return Ok(Output::Dial(request));
        }
        match self.next_transmit(now, buf)? {
            Some(Sent::Frame(link, len)) => Ok(Output::Transmit {
                link,
                bytes: buf.get(..len).unwrap_or_default(),
            }),
            Some(Sent::Cell(link)) => {
                let cell = buf.get(..CELL_LEN).unwrap_or_default();
                let circuit = CircuitId(u32::from_be_bytes(
                    cell.first_chunk::<4>().copied().unwrap_or_default(),
                ));
                Ok(Output::StreamCell {
                    link,
                    circuit,
                    cell,
                })
            }
            None => Ok(Output::Timeout(self.deadline())),
        }
    }

    /// The oldest whole message, while the owner takes messages.
    fn take_message(
        &mut self,
        buf: &mut [u8],
    ) -> Result<Option<crate::message::ReceivedMessage>, crate::capacity::BufferTooSmall> {
        if !self.receiving {
            return Ok(None);
        }
        self.messages.take(buf)
    }

    /// The next event, publishing link events that waited for room and
    /// handling cells held for lack of it.
    fn take_event(&mut self) -> Option<Event> {
        let event = self.events.view_mut().pop_front()?;
        if self.events_deferred {
            self.events_deferred = false;
            self.sync_all_slots();
        }
        self.retry_held_cells();
        Some(event)
    }

    /// Writes the next message of some writable link into `buf`, serving
    /// links in turn so one busy link cannot starve the others.
    fn next_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Result<Option<Sent>, PollError> {
        let count = self.links.as_ref().len();
        for step in 0..count {
            let Some(index) = self
                .next_transmit_index
                .wrapping_add(step)
                .checked_rem(count)
            else {
                break;
            };
            let Some(slot) = self.links.as_mut().get_mut(index) else {
                continue;
            };
            let generation = slot.generation;
            let room = slot.room;
            let Some(session) = slot.session.as_mut() else {
                continue;
            };
            let link = LinkId::new(u16::try_from(index).unwrap_or(u16::MAX), generation);
            let sent = if session.has_stream_cell() {
                let dst = buf
                    .get_mut(..CELL_LEN)
                    .ok_or(PollError::BufferTooSmall { needed: CELL_LEN })?;
                if room < CELL_LEN {
                    None
                } else {
                    session.take_stream_cell().map(|cell| {
                        dst.copy_from_slice(&cell);
                        Sent::Cell(link)
                    })
                }
            } else if session.wants_transmit(now) {
                if buf.len() < MIN_TRANSMIT_BUFFER {
                    return Err(PollError::BufferTooSmall {
                        needed: MIN_TRANSMIT_BUFFER,
                    });
                }
                // The session writes nothing that does not fit the window.
                let window = buf.len().min(room);
                #[cfg(feature = "padding-stats")]
                let (handshake_padding, cells_before) =
                    (session.handshake_padding_due(), session.stats().cells_sent);
                let sent = buf
                    .get_mut(..window)
                    .and_then(|window| session.poll_transmit(now, window));
                #[cfg(feature = "padding-stats")]
                if let Some(len) = sent {
                    let cells = session.stats().cells_sent.saturating_sub(cells_before);
                    let padding = match handshake_padding {
                        Some(padding) => u64::from(padding),
                        None if cells > 0 => {
                            let cells = usize::try_from(cells).unwrap_or(usize::MAX);
                            u64::try_from(cells_padding(len, cells)).unwrap_or(0)
                        }
                        None => 0,
                    };
                    self.stats.padding_bytes_sent =
                        self.stats.padding_bytes_sent.saturating_add(padding);
                }
                sent.map(|len| Sent::Frame(link, len))
            } else {
                None
            };
            #[cfg(feature = "batched-upkeep")]
            let queued = <P::LinkSendQueue as DequeStore<Cell>>::CAPACITY
                .saturating_sub(session.queue_room());
            if let (Some(slot), Some(sent)) = (self.links.as_mut().get_mut(index), &sent) {
                let len = match sent {
                    Sent::Frame(_, len) => *len,
                    Sent::Cell(_) => CELL_LEN,
                };
                slot.room = slot.room.saturating_sub(len);
            }
            self.sync_slot(index);
            if let Some(sent) = sent {
                self.next_transmit_index = index.wrapping_add(1);
                self.refill_after_transmit(
                    #[cfg(feature = "batched-upkeep")]
                    queued,
                );
                return Ok(Some(sent));
            }
        }
        Ok(None)
    }

    /// A transport took a message, so link queues have room again: offer
    /// waiting message fragments now, round-robin over circuits, rather than
    /// at the next input. Originated cells are kept few in each queue (relay
    /// spec §9), so without this a busy link would idle until a `CREDIT` or
    /// a timer arrived.
    ///
    /// With `batched-upkeep`, not while the link that sent still queues
    /// half of [`ORIGINATE_AHEAD`](super::circuits::ORIGINATE_AHEAD) cells
    /// (`queued`, after the transmit): its next transmits come first anyway,
    /// and a link that sends a cell at a time (a QUIC circuit stream) would
    /// otherwise pay a pass over the message pool for every cell. Other
    /// links refill on their own transmits, and every input and timeout
    /// runs the full [`pump`](Node::pump), so nothing waits on this.
    fn refill_after_transmit(&mut self, #[cfg(feature = "batched-upkeep")] queued: usize) {
        self.retry_held_cells();
        #[cfg(feature = "batched-upkeep")]
        if queued >= super::circuits::ORIGINATE_AHEAD / 2 {
            return;
        }
        if !self.link_only() {
            self.send_fragments();
        }
    }
}

/// What [`Node::next_transmit`] wrote into the buffer.
enum Sent {
    /// A link message of this many bytes.
    Frame(LinkId, usize),
    /// A circuit cell for the link's circuit stream.
    Cell(LinkId),
}
