//! `DIAL_BACK` cells (command 7, circuit id 0): how a node learns whether
//! others can dial it (relay spec §10, "Reachability").
//!
//! A node asks a linked peer to dial one of its addresses back
//! ([`DialBack::Request`]). The peer dials it as a stranger would and, once
//! the handshake is done, sends the request's nonce over that new link
//! ([`DialBack::Proof`]) and closes it: the asker counts what it saw arrive,
//! not what it was told. A dial that fails, or one the peer will not make,
//! is answered over the asking link ([`DialBack::Answer`]).
//!
//! Body: `kind u8 ‖ nonce u64 ‖` then, for a request, the address (as in a
//! descriptor) and for an answer one outcome byte. The rest of the 509-byte
//! body is zero when sent and ignored when read.

use core::fmt;

use crate::cgo::BODY_LEN;
use crate::identity::{Address, AddressError};
use crate::link::Cell;

use super::{CellCommand, CellRepr, CircuitId};

/// One `DIAL_BACK` cell's meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialBack {
    /// Dial me back at `address`, and show `nonce` on that link.
    Request {
        /// Names the check; unguessable, so a proof cannot be forged.
        nonce: u64,
        /// One address the asker would advertise.
        address: Address,
    },
    /// Sent over the dial-back link itself: the asker was reached.
    Proof {
        /// The request's nonce.
        nonce: u64,
    },
    /// The dial was not made, or did not get through.
    Answer {
        /// The request's nonce.
        nonce: u64,
        /// What happened.
        outcome: DialBackOutcome,
    },
}

/// Why a dial-back brought no proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DialBackOutcome {
    /// Dialled, and nobody who proved the asker's identity answered.
    Unreachable,
    /// Not dialled: the address is not in the network the asker's link
    /// comes from, so a stranger could not reach it there either (and a
    /// peer must not be made to dial other networks on a node's word).
    OtherNetwork,
    /// Not dialled for now (the peer is busy with other checks, or does not
    /// make them): no verdict, ask someone else.
    Declined,
}

impl DialBackOutcome {
    fn code(self) -> u8 {
        match self {
            DialBackOutcome::Unreachable => 1,
            DialBackOutcome::OtherNetwork => 2,
            DialBackOutcome::Declined => 3,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => DialBackOutcome::Unreachable,
            2 => DialBackOutcome::OtherNetwork,
            3 => DialBackOutcome::Declined,
            _ => return None,
        })
    }
}

/// Why a `DIAL_BACK` body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DialBackError {
    /// The kind byte is not 1 (request), 2 (proof) or 3 (answer).
    UnknownKind(u8),
    /// An answer's outcome byte is not 1, 2 or 3.
    UnknownOutcome(u8),
    /// A request's address could not be read.
    Address(AddressError),
}

impl fmt::Display for DialBackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DialBackError::UnknownKind(k) => write!(
                f,
                "dial-back kind {k} is unknown (1 = request, 2 = proof, 3 = answer)"
            ),
            DialBackError::UnknownOutcome(o) => write!(
                f,
                "dial-back outcome {o} is unknown (1 = unreachable, 2 = other network, 3 = declined)"
            ),
            DialBackError::Address(e) => write!(f, "dial-back request: {e}"),
        }
    }
}

impl core::error::Error for DialBackError {}

const REQUEST: u8 = 1;
const PROOF: u8 = 2;
const ANSWER: u8 = 3;
/// Kind and nonce.
const HEADER_LEN: usize = 1 + 8;

impl DialBack {
    /// Reads a `DIAL_BACK` cell's body.
    pub fn parse(body: &[u8; BODY_LEN]) -> Result<Self, DialBackError> {
        let (&[kind], rest) = body.split_first_chunk::<1>().unwrap_or((&[0], &[]));
        let (nonce, rest) = rest.split_first_chunk::<8>().unwrap_or((&[0; 8], &[]));
        let nonce = u64::from_be_bytes(*nonce);
        match kind {
            REQUEST => {
                let (address, _) = Address::parse(rest).map_err(DialBackError::Address)?;
                Ok(DialBack::Request { nonce, address })
            }
            PROOF => Ok(DialBack::Proof { nonce }),
            ANSWER => {
                let code = rest.first().copied().unwrap_or(0);
                let outcome =
                    DialBackOutcome::from_code(code).ok_or(DialBackError::UnknownOutcome(code))?;
                Ok(DialBack::Answer { nonce, outcome })
            }
            other => Err(DialBackError::UnknownKind(other)),
        }
    }

    /// The nonce the cell carries.
    pub fn nonce(&self) -> u64 {
        match self {
            DialBack::Request { nonce, .. }
            | DialBack::Proof { nonce }
            | DialBack::Answer { nonce, .. } => *nonce,
        }
    }

    /// The whole cell (circuit id 0).
    pub fn emit(&self) -> Cell {
        let mut body = [0u8; BODY_LEN];
        let kind = match self {
            DialBack::Request { .. } => REQUEST,
            DialBack::Proof { .. } => PROOF,
            DialBack::Answer { .. } => ANSWER,
        };
        if let Some((head, rest)) = body.split_first_chunk_mut::<HEADER_LEN>() {
            let (k, nonce) = head.split_at_mut(1);
            k.fill(kind);
            nonce.copy_from_slice(&self.nonce().to_be_bytes());
            match self {
                DialBack::Request { address, .. } => {
                    // An address is at most 20 bytes: it always fits.
                    let _ = address.emit(rest);
                }
                DialBack::Proof { .. } => {}
                DialBack::Answer { outcome, .. } => {
                    if let Some(byte) = rest.first_mut() {
                        *byte = outcome.code();
                    }
                }
            }
        }
        CellRepr {
            circuit_id: CircuitId::LINK,
            command: CellCommand::DialBack,
            body,
        }
        .emit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Transport;
    use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
    use proptest::prelude::*;

    fn body_of(cell: &Cell) -> [u8; BODY_LEN] {
        CellRepr::parse(cell).unwrap().body
    }

    #[test]
    fn each_kind_reads_back_as_written() {
        let v4 = Address {
            transport: Transport::Tcp,
            socket: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 7000),
        };
        let v6 = Address {
            transport: Transport::Quic,
            socket: SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 443),
        };
        for message in [
            DialBack::Request {
                nonce: 1,
                address: v4,
            },
            DialBack::Request {
                nonce: u64::MAX,
                address: v6,
            },
            DialBack::Proof { nonce: 7 },
            DialBack::Answer {
                nonce: 9,
                outcome: DialBackOutcome::OtherNetwork,
            },
        ] {
            let cell = message.emit();
            assert_eq!(CellCommand::of(&cell), Some(CellCommand::DialBack));
            assert_eq!(DialBack::parse(&body_of(&cell)), Ok(message));
        }
    }

    #[test]
    fn the_layout_is_the_specified_one() {
        let cell = DialBack::Answer {
            nonce: 0x0102_0304_0506_0708,
            outcome: DialBackOutcome::Declined,
        }
        .emit();
        assert_eq!(&cell[..4], &[0, 0, 0, 0]);
        assert_eq!(cell[4], 7);
        assert_eq!(&cell[5..15], &[3, 1, 2, 3, 4, 5, 6, 7, 8, 3]);
        assert!(cell[15..].iter().all(|&b| b == 0));
    }

    #[test]
    fn unknown_kinds_outcomes_and_addresses_are_refused() {
        let mut body = [0u8; BODY_LEN];
        assert_eq!(DialBack::parse(&body), Err(DialBackError::UnknownKind(0)));
        body[0] = ANSWER;
        body[9] = 4;
        assert_eq!(
            DialBack::parse(&body),
            Err(DialBackError::UnknownOutcome(4))
        );
        body[0] = REQUEST;
        body[9] = 1;
        body[10] = 5;
        assert_eq!(
            DialBack::parse(&body),
            Err(DialBackError::Address(AddressError::UnknownFamily(5)))
        );
    }

    proptest! {
        #[test]
        fn any_body_parses_or_is_refused_without_panicking(bytes in proptest::collection::vec(any::<u8>(), BODY_LEN)) {
            let mut body = [0u8; BODY_LEN];
            body.copy_from_slice(&bytes);
            if let Ok(message) = DialBack::parse(&body) {
                prop_assert_eq!(DialBack::parse(&body_of(&message.emit())), Ok(message));
            }
        }
    }
}
