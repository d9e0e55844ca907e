//! `DESCRIPTOR_REQUEST` cells (command 8, circuit id 0): a lookup of one
//! node's current descriptor among a node's peers (relay spec §2.3).
//!
//! A sender whose copy of a destination's descriptor lists introducers
//! that are all gone cannot mend it from the copy: it asks its peers for a
//! newer one. A peer that holds one answers with a `DESCRIPTOR` cell; one
//! that does not may pass the request on once ([`MAX_LOOKUP_HOPS`]).
//!
//! Body: `node_id [32] ‖ known_issued_at u64 ‖ hops u8`, big-endian; the
//! rest of the 509-byte body is zero when sent and ignored when read.

use core::fmt;

use crate::cgo::BODY_LEN;
use crate::identity::NodeId;
use crate::link::Cell;

use super::{CellCommand, CellRepr, CircuitId};

/// How many times a request may be passed on: once, so a lookup reaches
/// the asker's peers and theirs, and one request costs a peer at most
/// [`LOOKUP_FANOUT`](crate::node::LOOKUP_FANOUT) more cells.
pub const MAX_LOOKUP_HOPS: u8 = 1;

/// Node id, issue time and hop count.
const LEN: usize = 32 + 8 + 1;

/// One lookup: send me `node_id`'s descriptor if yours was issued after
/// `known_issued_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DescriptorRequest {
    /// The node whose descriptor is wanted.
    pub node_id: NodeId,
    /// The `issued_at` of the asker's copy (0: it holds none); only a
    /// newer descriptor is an answer.
    pub known_issued_at: u64,
    /// How many more times a peer without a newer copy passes it on.
    pub hops: u8,
}

/// Why a `DESCRIPTOR_REQUEST` body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DescriptorRequestError {
    /// The hop count is above [`MAX_LOOKUP_HOPS`]: no honest node sends
    /// that.
    TooManyHops(u8),
}

impl fmt::Display for DescriptorRequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DescriptorRequestError::TooManyHops(h) => write!(
                f,
                "descriptor request asks to be passed on {h} times; at most {MAX_LOOKUP_HOPS} is allowed"
            ),
        }
    }
}

impl core::error::Error for DescriptorRequestError {}

impl DescriptorRequest {
    /// Reads a `DESCRIPTOR_REQUEST` cell's body.
    pub fn parse(body: &[u8; BODY_LEN]) -> Result<Self, DescriptorRequestError> {
        let (id, rest) = body.split_first_chunk::<32>().unwrap_or((&[0; 32], &[]));
        let (issued, rest) = rest.split_first_chunk::<8>().unwrap_or((&[0; 8], &[]));
        let hops = rest.first().copied().unwrap_or(0);
        if hops > MAX_LOOKUP_HOPS {
            return Err(DescriptorRequestError::TooManyHops(hops));
        }
        Ok(DescriptorRequest {
            node_id: NodeId(*id),
            known_issued_at: u64::from_be_bytes(*issued),
            hops,
        })
    }

    /// The whole cell (circuit id 0).
    pub fn emit(&self) -> Cell {
        let mut body = [0u8; BODY_LEN];
        if let Some(head) = body.first_chunk_mut::<LEN>() {
            let (id, rest) = head.split_at_mut(32);
            id.copy_from_slice(&self.node_id.0);
            let (issued, hops) = rest.split_at_mut(8);
            issued.copy_from_slice(&self.known_issued_at.to_be_bytes());
            hops.fill(self.hops);
        }
        CellRepr {
            circuit_id: CircuitId::LINK,
            command: CellCommand::DescriptorRequest,
            body,
        }
        .emit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn body_of(cell: &Cell) -> [u8; BODY_LEN] {
        CellRepr::parse(cell).unwrap().body
    }

    #[test]
    fn a_request_reads_back_as_written_and_its_layout_is_the_specs() {
        let request = DescriptorRequest {
            node_id: NodeId([7; 32]),
            known_issued_at: 0x0102_0304_0506_0708,
            hops: 1,
        };
        let cell = request.emit();
        // circuit id 0, command 8 (relay spec §3).
        assert_eq!(&cell[..5], &[0, 0, 0, 0, 8]);
        let body = body_of(&cell);
        assert_eq!(&body[..32], &[7; 32]);
        assert_eq!(&body[32..40], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(body[40], 1);
        assert!(body[41..].iter().all(|b| *b == 0));
        assert_eq!(DescriptorRequest::parse(&body), Ok(request));
    }

    #[test]
    fn a_request_to_be_passed_on_twice_is_refused() {
        let mut body = body_of(
            &DescriptorRequest {
                node_id: NodeId([1; 32]),
                known_issued_at: 5,
                hops: 0,
            }
            .emit(),
        );
        body[40] = 2;
        assert_eq!(
            DescriptorRequest::parse(&body),
            Err(DescriptorRequestError::TooManyHops(2))
        );
    }

    proptest! {
        #[test]
        fn any_body_parses_or_is_refused_and_what_parses_emits_back(bytes in proptest::collection::vec(any::<u8>(), BODY_LEN)) {
            let mut body = [0u8; BODY_LEN];
            body.copy_from_slice(&bytes);
            if let Ok(request) = DescriptorRequest::parse(&body) {
                prop_assert_eq!(DescriptorRequest::parse(&body_of(&request.emit())), Ok(request));
            }
        }
    }
}
