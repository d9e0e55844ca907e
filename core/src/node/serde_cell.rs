//! Serde for a whole cell (514 bytes): serde's own array support stops at
//! 32 elements, so a cell goes as a byte string of exactly that length. The
//! owned form is for the test-only `Event::CellReceived`.

use serde::de::{Error, Visitor};
use serde::{Deserializer, Serializer};

use crate::link::{Cell, CELL_LEN};

#[cfg_attr(not(feature = "testing"), allow(dead_code))]
pub(crate) fn serialize<S: Serializer>(cell: &Cell, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_bytes(cell)
}

#[cfg_attr(not(feature = "testing"), allow(dead_code))]
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Cell, D::Error> {
    deserializer.deserialize_bytes(CellVisitor)
}

#[cfg_attr(not(feature = "testing"), allow(dead_code))]
struct CellVisitor;

impl Visitor<'_> for CellVisitor {
    type Value = Cell;

    fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "a cell of {CELL_LEN} bytes")
    }

    fn visit_bytes<E: Error>(self, bytes: &[u8]) -> Result<Cell, E> {
        Cell::try_from(bytes).map_err(|_| E::invalid_length(bytes.len(), &self))
    }
}

/// A borrowed cell: decoding checks the length and copies nothing.
pub(crate) mod borrowed {
    use serde::de::{Error, Visitor};
    use serde::{Deserializer, Serializer};

    use crate::link::{Cell, CELL_LEN};

    pub(crate) fn serialize<S: Serializer>(cell: &&Cell, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(*cell)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<&'de Cell, D::Error> {
        deserializer.deserialize_bytes(BorrowedCell)
    }

    struct BorrowedCell;

    impl<'de> Visitor<'de> for BorrowedCell {
        type Value = &'de Cell;

        fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            write!(f, "a cell of {CELL_LEN} bytes, borrowed")
        }

        fn visit_borrowed_bytes<E: Error>(self, bytes: &'de [u8]) -> Result<&'de Cell, E> {
            <&Cell>::try_from(bytes).map_err(|_| E::invalid_length(bytes.len(), &self))
        }
    }
}
