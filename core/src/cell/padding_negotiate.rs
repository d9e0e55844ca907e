//! `PADDING_NEGOTIATE` cells (command 9, circuit id 0): what one side asks
//! of its peer's idle padding towards it (relay spec §3, transport spec
//! §4.3), as Tor's cell of the same name.
//!
//! Body: `version u8 (0) ‖ command u8 (1 start, 2 stop) ‖ low_ms u16 ‖
//! high_ms u16`, big-endian; with `stop` the two waits are zero. The rest
//! of the 509-byte body is zero when sent and ignored when read.

use core::fmt;

use crate::cgo::BODY_LEN;
use crate::link::{Cell, PaddingRange, PaddingRangeError, PaddingRequest};

use super::{CellCommand, CellRepr, CircuitId};

/// The only version of the body.
const VERSION: u8 = 0;
const START: u8 = 1;
const STOP: u8 = 2;

/// Why a `PADDING_NEGOTIATE` body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PaddingNegotiateError {
    /// A version other than 0.
    Version(u8),
    /// A command other than 1 (start) or 2 (stop).
    Command(u8),
    /// A start whose range is not one.
    Range(PaddingRangeError),
}

impl fmt::Display for PaddingNegotiateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PaddingNegotiateError::Version(v) => write!(
                f,
                "padding negotiation of version {v}; only version {VERSION} is known"
            ),
            PaddingNegotiateError::Command(c) => write!(
                f,
                "padding negotiation command {c}; expected {START} (start) or {STOP} (stop)"
            ),
            PaddingNegotiateError::Range(e) => write!(f, "padding negotiation: {e}"),
        }
    }
}

impl core::error::Error for PaddingNegotiateError {}

/// Reads a `PADDING_NEGOTIATE` cell's body.
pub fn parse_padding_negotiate(
    body: &[u8; BODY_LEN],
) -> Result<PaddingRequest, PaddingNegotiateError> {
    let [version, command, low_high, low_low, high_high, high_low, ..] = *body;
    if version != VERSION {
        return Err(PaddingNegotiateError::Version(version));
    }
    match command {
        START => PaddingRange::new(
            u16::from_be_bytes([low_high, low_low]),
            u16::from_be_bytes([high_high, high_low]),
        )
        .map(PaddingRequest::Start)
        .map_err(PaddingNegotiateError::Range),
        STOP => Ok(PaddingRequest::Stop),
        other => Err(PaddingNegotiateError::Command(other)),
    }
}

/// The whole cell (circuit id 0) asking for `request`.
pub fn emit_padding_negotiate(request: PaddingRequest) -> Cell {
    let mut body = [0u8; BODY_LEN];
    let head = match request {
        PaddingRequest::Start(range) => {
            let [a, b] = range.low_ms().to_be_bytes();
            let [c, d] = range.high_ms().to_be_bytes();
            [VERSION, START, a, b, c, d]
        }
        PaddingRequest::Stop => [VERSION, STOP, 0, 0, 0, 0],
    };
    if let Some(out) = body.first_chunk_mut::<6>() {
        *out = head;
    }
    CellRepr {
        circuit_id: CircuitId::LINK,
        command: CellCommand::PaddingNegotiate,
        body,
    }
    .emit()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn body_of(cell: &Cell) -> [u8; BODY_LEN] {
        CellRepr::parse(cell).unwrap().body
    }

    #[test]
    fn the_layout_is_the_specs() {
        let cell = emit_padding_negotiate(PaddingRequest::Start(PaddingRange::REDUCED));
        // circuit id 0, command 9 (relay spec §3).
        assert_eq!(&cell[..5], &[0, 0, 0, 0, 9]);
        let body = body_of(&cell);
        // 9000 = 0x2328, 14000 = 0x36b0.
        assert_eq!(&body[..6], &[0, 1, 0x23, 0x28, 0x36, 0xb0]);
        assert!(body[6..].iter().all(|b| *b == 0));
        assert_eq!(
            parse_padding_negotiate(&body),
            Ok(PaddingRequest::Start(PaddingRange::REDUCED))
        );
        let stop = body_of(&emit_padding_negotiate(PaddingRequest::Stop));
        assert_eq!(&stop[..6], &[0, 2, 0, 0, 0, 0]);
        assert_eq!(parse_padding_negotiate(&stop), Ok(PaddingRequest::Stop));
    }

    #[test]
    fn malformed_bodies_get_typed_errors() {
        let mut body = [0u8; BODY_LEN];
        body[0] = 1;
        assert_eq!(
            parse_padding_negotiate(&body),
            Err(PaddingNegotiateError::Version(1))
        );
        body[0] = 0;
        body[1] = 3;
        assert_eq!(
            parse_padding_negotiate(&body),
            Err(PaddingNegotiateError::Command(3))
        );
        body[1] = START;
        assert_eq!(
            parse_padding_negotiate(&body),
            Err(PaddingNegotiateError::Range(PaddingRangeError::Zero))
        );
        body[2..6].copy_from_slice(&[0, 9, 0, 1]);
        assert_eq!(
            parse_padding_negotiate(&body),
            Err(PaddingNegotiateError::Range(PaddingRangeError::Inverted))
        );
    }

    proptest! {
        #[test]
        fn any_body_parses_or_errs_and_requests_round_trip(body in proptest::collection::vec(any::<u8>(), BODY_LEN)) {
            let body: [u8; BODY_LEN] = body.try_into().unwrap();
            if let Ok(request) = parse_padding_negotiate(&body) {
                let again = body_of(&emit_padding_negotiate(request));
                prop_assert_eq!(parse_padding_negotiate(&again), Ok(request));
            }
        }
    }
}
