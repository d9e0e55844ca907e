//! A whole cell: `circuit_id u32 ‖ command u8 ‖ body [509]`.

use core::fmt;

use crate::cgo::BODY_LEN;
use crate::link::{Cell, CELL_LEN};

use super::{CellCommand, CircuitId};

/// A parsed cell.
#[derive(Clone, PartialEq, Eq)]
pub struct CellRepr {
    /// Which circuit on the link (0 for link padding).
    pub circuit_id: CircuitId,
    /// What the cell is for.
    pub command: CellCommand,
    /// The body, interpreted per command.
    pub body: [u8; BODY_LEN],
}

impl fmt::Debug for CellRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CellRepr")
            .field("circuit_id", &self.circuit_id)
            .field("command", &self.command)
            .finish_non_exhaustive()
    }
}

/// Why a cell was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CellError {
    /// A command byte this version does not know.
    UnknownCommand(u8),
    /// Link-level commands must use circuit id 0, and the others must not.
    CircuitIdMismatch {
        /// The command byte.
        command: u8,
        /// The circuit id it came with.
        circuit_id: u32,
    },
}

impl fmt::Display for CellError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CellError::UnknownCommand(c) => write!(f, "cell command {c} is unknown"),
            CellError::CircuitIdMismatch { command, circuit_id } => write!(
                f,
                "cell command {command} cannot use circuit id {circuit_id}: link-level cells use 0, circuits never do"
            ),
        }
    }
}

impl core::error::Error for CellError {}

impl CellRepr {
    /// Parses a cell received from a link.
    pub fn parse(cell: &Cell) -> Result<Self, CellError> {
        let (id, rest) = cell.split_first_chunk::<4>().unwrap_or((&[0; 4], &[]));
        let circuit_id = CircuitId(u32::from_be_bytes(*id));
        let (&code, body_bytes) = rest.split_first().unwrap_or((&0xff, &[]));
        let command = CellCommand::from_code(code).ok_or(CellError::UnknownCommand(code))?;
        if command.is_link_level() != (circuit_id == CircuitId::LINK) {
            return Err(CellError::CircuitIdMismatch {
                command: code,
                circuit_id: circuit_id.0,
            });
        }
        let mut body = [0u8; BODY_LEN];
        if let Ok(bytes) = <&[u8; BODY_LEN]>::try_from(body_bytes) {
            body = *bytes;
        }
        Ok(CellRepr {
            circuit_id,
            command,
            body,
        })
    }

    /// The cell's bytes.
    pub fn emit(&self) -> Cell {
        let mut cell = [0u8; CELL_LEN];
        if let Some((id, rest)) = cell.split_first_chunk_mut::<4>() {
            *id = self.circuit_id.0.to_be_bytes();
            if let Some((command, body)) = rest.split_first_mut() {
                *command = self.command.code();
                if let Ok(body) = <&mut [u8; BODY_LEN]>::try_from(body) {
                    *body = self.body;
                }
            }
        }
        cell
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn padding_and_circuit_ids_must_agree() {
        let mut cell = [0u8; CELL_LEN];
        assert_eq!(
            CellRepr::parse(&cell).unwrap().command,
            CellCommand::Padding
        );
        cell[4] = CellCommand::Relay.code();
        assert_eq!(
            CellRepr::parse(&cell),
            Err(CellError::CircuitIdMismatch {
                command: 3,
                circuit_id: 0
            })
        );
        cell[0] = 0x80;
        assert!(CellRepr::parse(&cell).is_ok());
        cell[4] = 0;
        assert!(matches!(
            CellRepr::parse(&cell),
            Err(CellError::CircuitIdMismatch { .. })
        ));
        cell[4] = 10;
        assert_eq!(CellRepr::parse(&cell), Err(CellError::UnknownCommand(10)));
    }

    proptest! {
        #[test]
        fn parse_of_emit_is_identity(id in 1u32.., code in 1u8..=5, body in proptest::collection::vec(any::<u8>(), BODY_LEN)) {
            let repr = CellRepr {
                circuit_id: CircuitId(id),
                command: CellCommand::from_code(code).unwrap(),
                body: body.try_into().unwrap(),
            };
            prop_assert_eq!(CellRepr::parse(&repr.emit()).unwrap(), repr);
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), CELL_LEN)) {
            let _ = CellRepr::parse(&bytes.try_into().unwrap());
        }
    }
}
