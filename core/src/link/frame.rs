//! Link frames: the decrypted contents of one transport message.
//!
//! On the wire every link message — handshake or transport — is a 2-byte
//! big-endian length followed by that many bytes. After the handshake those
//! bytes are an AEAD ciphertext whose plaintext is a [`Frame`]: one kind byte
//! and a body whose shape the kind fixes. A `CELLS` body counts its cells and
//! may end in padding, so that a message's length does not give away how many
//! cells it carries. See `docs/transport_layer_spec.md` §4.1.

use core::fmt;

use super::close::CloseReason;

/// Bytes in a cell: a 4-byte circuit id, a 1-byte command and a 509-byte body.
/// The link treats cells as opaque; every cell on every link has this size.
pub const CELL_LEN: usize = 514;
/// Bytes of the length prefix in front of every link message.
pub const LENGTH_PREFIX_LEN: usize = 2;
/// Bytes of the AEAD tag at the end of every transport message.
pub const TAG_LEN: usize = 16;
/// Bytes of the kind field at the start of every frame plaintext.
pub const KIND_LEN: usize = 1;
/// Bytes of the cell count at the start of a `CELLS` body.
pub const CELL_COUNT_LEN: usize = 1;
/// Bytes in front of the first cell of a `CELLS` frame plaintext.
pub const CELLS_HEADER_LEN: usize = KIND_LEN + CELL_COUNT_LEN;
/// The largest message the 2-byte length prefix can describe.
pub const MAX_MESSAGE_LEN: usize = 65_535;
/// The smallest receive limit a peer may advertise: one cell in one frame.
pub const MIN_MAX_MESSAGE_LEN: usize = CELLS_HEADER_LEN + CELL_LEN + TAG_LEN;

/// One fixed-size cell as carried by a link.
pub type Cell = [u8; CELL_LEN];

/// The kind byte of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum FrameKind {
    /// One or more cells, then padding.
    Cells = 1,
    /// A keepalive probe; the peer answers with `Pong` carrying the same id.
    Ping = 2,
    /// The answer to a `Ping`.
    Pong = 3,
    /// The sender switches its sending key after this frame (Noise `REKEY`).
    KeyUpdate = 4,
    /// The sender closes the link; nothing follows.
    Close = 5,
    /// Ignored by the receiver; for link padding.
    Padding = 6,
}

impl FrameKind {
    /// The kind byte on the wire.
    // A fieldless `repr(u8)` enum converts to its discriminant losslessly.
    #[allow(clippy::as_conversions)]
    pub fn to_byte(self) -> u8 {
        self as u8
    }

    fn from_byte(byte: u8) -> Option<Self> {
        Some(match byte {
            1 => FrameKind::Cells,
            2 => FrameKind::Ping,
            3 => FrameKind::Pong,
            4 => FrameKind::KeyUpdate,
            5 => FrameKind::Close,
            6 => FrameKind::Padding,
            _ => return None,
        })
    }
}

/// A parsed frame plaintext, borrowing its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// Whole cells and the padding after them, which the receiver ignores.
    Cells {
        /// The cells: `cells.len()` is a multiple of [`CELL_LEN`], from 1 to
        /// 255 cells.
        cells: &'a [u8],
        /// Bytes of padding after the cells.
        padding: usize,
    },
    /// Keepalive probe with the sender's id.
    Ping(u64),
    /// Answer to a probe, echoing its id.
    Pong(u64),
    /// The sender rekeys its sending direction after this frame.
    KeyUpdate,
    /// The sender is closing the link.
    Close(CloseReason),
    /// Padding of the given length, to be ignored.
    Padding(usize),
}

/// Why a frame plaintext could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FrameError {
    /// The plaintext was empty: no kind byte.
    Empty,
    /// The kind byte is not one this version knows.
    UnknownKind(u8),
    /// The body length does not fit the kind.
    BadBodyLength {
        /// The kind byte.
        kind: u8,
        /// The body length received.
        len: usize,
    },
    /// The close reason code is unknown.
    UnknownCloseReason(u8),
    /// The output buffer is too small for the frame.
    BufferTooSmall,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Empty => write!(f, "frame has no kind byte; the peer sent an empty frame"),
            FrameError::UnknownKind(k) => {
                write!(
                    f,
                    "frame kind {k} is unknown; the peer speaks another protocol version"
                )
            }
            FrameError::BadBodyLength { kind, len } => {
                write!(f, "frame kind {kind} cannot have a {len}-byte body; the peer is broken or hostile")
            }
            FrameError::UnknownCloseReason(r) => write!(f, "close reason {r} is unknown"),
            FrameError::BufferTooSmall => {
                write!(
                    f,
                    "buffer too small for the frame; pass a larger transmit buffer"
                )
            }
        }
    }
}

impl core::error::Error for FrameError {}

impl<'a> Frame<'a> {
    /// Parses a decrypted frame plaintext.
    pub fn parse(plaintext: &'a [u8]) -> Result<Frame<'a>, FrameError> {
        let (&kind_byte, body) = plaintext.split_first().ok_or(FrameError::Empty)?;
        let kind = FrameKind::from_byte(kind_byte).ok_or(FrameError::UnknownKind(kind_byte))?;
        let bad_len = FrameError::BadBodyLength {
            kind: kind_byte,
            len: body.len(),
        };
        match kind {
            FrameKind::Cells => {
                let (&count, rest) = body.split_first().ok_or(bad_len)?;
                let cells_len = usize::from(count).saturating_mul(CELL_LEN);
                if count == 0 || rest.len() < cells_len {
                    return Err(bad_len);
                }
                let (cells, padding) = rest.split_at(cells_len);
                Ok(Frame::Cells {
                    cells,
                    padding: padding.len(),
                })
            }
            FrameKind::Ping | FrameKind::Pong => {
                let id = <[u8; 8]>::try_from(body).map_err(|_| bad_len)?;
                let id = u64::from_be_bytes(id);
                Ok(if kind == FrameKind::Ping {
                    Frame::Ping(id)
                } else {
                    Frame::Pong(id)
                })
            }
            FrameKind::KeyUpdate => {
                if !body.is_empty() {
                    return Err(bad_len);
                }
                Ok(Frame::KeyUpdate)
            }
            FrameKind::Close => {
                let [code] = <[u8; 1]>::try_from(body).map_err(|_| bad_len)?;
                CloseReason::from_code(code)
                    .map(Frame::Close)
                    .ok_or(FrameError::UnknownCloseReason(code))
            }
            FrameKind::Padding => Ok(Frame::Padding(body.len())),
        }
    }

    /// The kind of this frame.
    pub fn kind(&self) -> FrameKind {
        match self {
            Frame::Cells { .. } => FrameKind::Cells,
            Frame::Ping(_) => FrameKind::Ping,
            Frame::Pong(_) => FrameKind::Pong,
            Frame::KeyUpdate => FrameKind::KeyUpdate,
            Frame::Close(_) => FrameKind::Close,
            Frame::Padding(_) => FrameKind::Padding,
        }
    }

    /// Bytes of plaintext this frame emits.
    pub fn buffer_len(&self) -> usize {
        let body = match self {
            Frame::Cells { cells, padding } => CELL_COUNT_LEN
                .saturating_add(cells.len())
                .saturating_add(*padding),
            Frame::Ping(_) | Frame::Pong(_) => 8,
            Frame::KeyUpdate => 0,
            Frame::Close(_) => 1,
            Frame::Padding(len) => *len,
        };
        body.saturating_add(KIND_LEN)
    }

    /// Writes the frame plaintext into `buf`, returning its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, FrameError> {
        let len = self.buffer_len();
        let out = buf.get_mut(..len).ok_or(FrameError::BufferTooSmall)?;
        let (kind, body) = out.split_first_mut().ok_or(FrameError::BufferTooSmall)?;
        *kind = self.kind().to_byte();
        match self {
            Frame::Cells { cells, .. } => {
                let bad_len = FrameError::BadBodyLength {
                    kind: FrameKind::Cells.to_byte(),
                    len: cells.len(),
                };
                let whole = cells.len().checked_rem(CELL_LEN) == Some(0);
                let count = cells
                    .len()
                    .checked_div(CELL_LEN)
                    .and_then(|k| u8::try_from(k).ok())
                    .filter(|&k| k > 0 && whole)
                    .ok_or(bad_len)?;
                let (count_out, rest) = body.split_first_mut().ok_or(FrameError::BufferTooSmall)?;
                *count_out = count;
                let (cells_out, padding_out) = rest
                    .split_at_mut_checked(cells.len())
                    .ok_or(FrameError::BufferTooSmall)?;
                cells_out.copy_from_slice(cells);
                padding_out.fill(0);
            }
            Frame::Ping(id) | Frame::Pong(id) => body.copy_from_slice(&id.to_be_bytes()),
            Frame::KeyUpdate => {}
            Frame::Close(reason) => body.copy_from_slice(&[reason.code()]),
            Frame::Padding(_) => body.fill(0),
        }
        Ok(len)
    }
}

/// Bytes of padding in a whole `CELLS` message (length prefix included) of
/// `message_len` bytes that carries `cells` cells: what the sender spent on
/// hiding the cell count.
pub fn cells_padding(message_len: usize, cells: usize) -> usize {
    let unpadded = cells
        .saturating_mul(CELL_LEN)
        .saturating_add(LENGTH_PREFIX_LEN + CELLS_HEADER_LEN + TAG_LEN);
    message_len.saturating_sub(unpadded)
}

/// Reads the length prefix at the start of `buf`, if all of it is there.
pub fn read_length_prefix(buf: &[u8]) -> Option<usize> {
    let prefix = buf.first_chunk::<LENGTH_PREFIX_LEN>()?;
    Some(usize::from(u16::from_be_bytes(*prefix)))
}

/// Writes a length prefix for a message of `len` bytes.
pub fn write_length_prefix(buf: &mut [u8], len: usize) -> Option<()> {
    let len = u16::try_from(len).ok()?;
    let prefix = buf.first_chunk_mut::<LENGTH_PREFIX_LEN>()?;
    *prefix = len.to_be_bytes();
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(frame: Frame<'_>) {
        let mut buf = [0u8; 2048];
        let len = frame.emit(&mut buf).unwrap();
        assert_eq!(len, frame.buffer_len());
        assert_eq!(Frame::parse(&buf[..len]).unwrap(), frame);
    }

    #[test]
    fn every_kind_round_trips() {
        let cells = [7u8; CELL_LEN * 2];
        round_trip(Frame::Cells {
            cells: &cells,
            padding: 0,
        });
        round_trip(Frame::Cells {
            cells: &cells,
            padding: 700,
        });
        round_trip(Frame::Ping(0xdead_beef));
        round_trip(Frame::Pong(u64::MAX));
        round_trip(Frame::KeyUpdate);
        round_trip(Frame::Close(CloseReason::Normal));
        round_trip(Frame::Padding(100));
    }

    #[test]
    fn malformed_bodies_are_typed_errors() {
        assert_eq!(Frame::parse(&[]), Err(FrameError::Empty));
        assert_eq!(Frame::parse(&[99]), Err(FrameError::UnknownKind(99)));
        // A count of 0, a count the body is too short for, no count.
        assert_eq!(
            Frame::parse(&[1, 0, 0]),
            Err(FrameError::BadBodyLength { kind: 1, len: 2 })
        );
        let mut short = [0u8; 2 + 2 * CELL_LEN - 1];
        short[0] = 1;
        short[1] = 2;
        assert_eq!(
            Frame::parse(&short),
            Err(FrameError::BadBodyLength {
                kind: 1,
                len: 2 * CELL_LEN
            })
        );
        assert_eq!(
            Frame::parse(&[1]),
            Err(FrameError::BadBodyLength { kind: 1, len: 0 })
        );
        assert!(matches!(
            Frame::parse(&[2, 1, 2]),
            Err(FrameError::BadBodyLength { .. })
        ));
        assert!(matches!(
            Frame::parse(&[4, 0]),
            Err(FrameError::BadBodyLength { .. })
        ));
        assert_eq!(
            Frame::parse(&[5, 250]),
            Err(FrameError::UnknownCloseReason(250))
        );
    }

    #[test]
    fn emit_into_short_buffer_is_an_error() {
        let mut buf = [0u8; 4];
        assert_eq!(
            Frame::Ping(1).emit(&mut buf),
            Err(FrameError::BufferTooSmall)
        );
    }

    #[test]
    fn length_prefix_round_trips_and_rejects_oversize() {
        let mut buf = [0u8; 2];
        write_length_prefix(&mut buf, 513).unwrap();
        assert_eq!(read_length_prefix(&buf), Some(513));
        assert!(write_length_prefix(&mut buf, 70_000).is_none());
        assert_eq!(read_length_prefix(&buf[..1]), None);
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1200)) {
            let _ = Frame::parse(&bytes);
        }

        #[test]
        fn parse_of_emit_is_identity(kind in 0u8..6, id in any::<u64>(), n in 1usize..4, pad in 0usize..600) {
            let cells = vec![0x5a; CELL_LEN * n];
            let frame = match kind {
                0 => Frame::Cells { cells: &cells, padding: pad },
                1 => Frame::Ping(id),
                2 => Frame::Pong(id),
                3 => Frame::KeyUpdate,
                4 => Frame::Close(CloseReason::ALL[(id % CloseReason::ALL.len() as u64) as usize]),
                _ => Frame::Padding(pad),
            };
            let mut buf = vec![0u8; frame.buffer_len()];
            let len = frame.emit(&mut buf).unwrap();
            prop_assert_eq!(Frame::parse(&buf[..len]).unwrap(), frame);
        }
    }
}
