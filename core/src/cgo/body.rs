//! The 509-byte relay cell body as CGO sees it: a 16-byte tag part `X_L`
//! and a 493-byte payload `X_R`.

use super::{BODY_LEN, PAYLOAD_LEN, TAG_LEN};

/// A relay cell body. Kept as its two parts so that no code ever has to
/// split a slice (and so cannot get the split wrong).
#[derive(Clone, PartialEq, Eq)]
pub struct CellBody {
    /// `X_L`: the tag part. An endpoint recognises a cell by this.
    pub tag: [u8; TAG_LEN],
    /// `X_R`: the payload.
    pub payload: [u8; PAYLOAD_LEN],
}

impl core::fmt::Debug for CellBody {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CellBody")
            .field("tag", &self.tag)
            .finish_non_exhaustive()
    }
}

impl CellBody {
    /// A body with `tag` and `payload`.
    pub fn new(tag: [u8; TAG_LEN], payload: [u8; PAYLOAD_LEN]) -> Self {
        CellBody { tag, payload }
    }

    /// The body of 509 wire bytes.
    pub fn from_bytes(bytes: &[u8; BODY_LEN]) -> Self {
        // Whole-array copies (sizes known at compile time) compile to
        // memcpy; a byte loop over chained iterators does not.
        let mut body = CellBody {
            tag: [0; TAG_LEN],
            payload: [0; PAYLOAD_LEN],
        };
        if let Some((tag, payload)) = bytes.split_first_chunk::<TAG_LEN>() {
            body.tag = *tag;
            if let Ok(payload) = <&[u8; PAYLOAD_LEN]>::try_from(payload) {
                body.payload = *payload;
            }
        }
        body
    }

    /// The 509 wire bytes.
    pub fn to_bytes(&self) -> [u8; BODY_LEN] {
        let mut bytes = [0u8; BODY_LEN];
        if let Some((tag, payload)) = bytes.split_first_chunk_mut::<TAG_LEN>() {
            *tag = self.tag;
            if let Ok(payload) = <&mut [u8; PAYLOAD_LEN]>::try_from(payload) {
                *payload = self.payload;
            }
        }
        bytes
    }
}
