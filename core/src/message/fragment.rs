//! One fragment of an end-to-end message, as the data of a relay `DATA`
//! message:
//!
//! ```text
//! message_id [16]   random per message, chosen by the sender
//! total_len  u32    the whole message's length
//! offset     u32    where this fragment starts; a multiple of FRAGMENT_LEN
//! bytes             min(FRAGMENT_LEN, total_len - offset) bytes
//! ```
//!
//! An `ACK` relay message carries just a `message_id`.

use core::fmt;

use crate::cell::RELAY_DATA_LEN;

/// Bytes of a message id.
pub const MESSAGE_ID_LEN: usize = 16;
/// Bytes of the fragment header.
pub const FRAGMENT_HEADER_LEN: usize = MESSAGE_ID_LEN + 4 + 4;
/// Message bytes per fragment (per cell).
pub const FRAGMENT_LEN: usize = RELAY_DATA_LEN - FRAGMENT_HEADER_LEN;
/// Fragments per message at most; with [`FRAGMENT_LEN`] this bounds a
/// message at 119 296 bytes whatever the buffers.
pub const MAX_FRAGMENTS: usize = 256;

/// A random message id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct MessageId(pub [u8; MESSAGE_ID_LEN]);

/// A parsed fragment, borrowing its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment<'a> {
    /// The message.
    pub id: MessageId,
    /// The message's whole length.
    pub total_len: u32,
    /// Where these bytes go.
    pub offset: u32,
    /// The bytes.
    pub bytes: &'a [u8],
}

/// Why a fragment was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FragmentError {
    /// Shorter than the header.
    Truncated,
    /// The offset is not on a fragment boundary, or past the end.
    BadOffset,
    /// The byte count does not match the position in the message.
    BadLength,
    /// The message is larger than this node accepts.
    TooLarge(u32),
}

impl fmt::Display for FragmentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FragmentError::Truncated => write!(f, "message fragment shorter than its header"),
            FragmentError::BadOffset => {
                write!(f, "message fragment offset is off the grid or past the end")
            }
            FragmentError::BadLength => {
                write!(f, "message fragment length does not match its position")
            }
            FragmentError::TooLarge(n) => {
                write!(f, "a {n}-byte message exceeds what this node accepts")
            }
        }
    }
}

impl core::error::Error for FragmentError {}

/// The number of bytes fragment `offset` of a `total`-byte message holds.
pub(crate) fn expected_len(total: usize, offset: usize) -> usize {
    total.saturating_sub(offset).min(FRAGMENT_LEN)
}

impl<'a> Fragment<'a> {
    /// Parses and checks a fragment against the largest message `max_len`.
    pub fn parse(data: &'a [u8], max_len: usize) -> Result<Self, FragmentError> {
        let (id, rest) = data
            .split_first_chunk::<MESSAGE_ID_LEN>()
            .ok_or(FragmentError::Truncated)?;
        let (total, rest) = rest
            .split_first_chunk::<4>()
            .ok_or(FragmentError::Truncated)?;
        let (offset, bytes) = rest
            .split_first_chunk::<4>()
            .ok_or(FragmentError::Truncated)?;
        let total_len = u32::from_be_bytes(*total);
        let offset = u32::from_be_bytes(*offset);
        let (total, at) = (
            usize::try_from(total_len).map_err(|_| FragmentError::TooLarge(total_len))?,
            usize::try_from(offset).map_err(|_| FragmentError::BadOffset)?,
        );
        if total > max_len || total > FRAGMENT_LEN.saturating_mul(MAX_FRAGMENTS) {
            return Err(FragmentError::TooLarge(total_len));
        }
        // An empty message is one empty fragment at offset 0.
        let past_end = if total == 0 { at != 0 } else { at >= total };
        if at % FRAGMENT_LEN != 0 || past_end {
            return Err(FragmentError::BadOffset);
        }
        if bytes.len() != expected_len(total, at) {
            return Err(FragmentError::BadLength);
        }
        Ok(Fragment {
            id: MessageId(*id),
            total_len,
            offset,
            bytes,
        })
    }

    /// Writes the fragment into `out`; returns its length.
    pub fn emit(&self, out: &mut [u8]) -> Option<usize> {
        let len = FRAGMENT_HEADER_LEN.checked_add(self.bytes.len())?;
        let out = out.get_mut(..len)?;
        let (id, rest) = out.split_first_chunk_mut::<MESSAGE_ID_LEN>()?;
        *id = self.id.0;
        let (total, rest) = rest.split_first_chunk_mut::<4>()?;
        *total = self.total_len.to_be_bytes();
        let (offset, bytes) = rest.split_first_chunk_mut::<4>()?;
        *offset = self.offset.to_be_bytes();
        // `len` was computed from `self.bytes`, so the lengths agree.
        if bytes.len() == self.bytes.len() {
            bytes.copy_from_slice(self.bytes);
        }
        Some(len)
    }
}
