//! Cell commands.

/// What a cell is for. The command byte is also CGO's associated data for
/// relay cells, so a relay that turns `RelayEarly` into `Relay` (or back)
/// turns the cell into noise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CellCommand {
    /// Link padding; circuit id 0; the body is ignored.
    Padding,
    /// Opens a circuit hop: carries the client's hop handshake.
    Create,
    /// The hop's handshake answer.
    Created,
    /// A CGO-encrypted relay cell.
    Relay,
    /// A relay cell that may carry `EXTEND`; each circuit accepts at most
    /// [`MAX_RELAY_EARLY`](super::MAX_RELAY_EARLY) of them, which caps the
    /// circuit's length.
    RelayEarly,
    /// Tears the circuit down, with a reason.
    Destroy,
    /// Link-level (circuit id 0): one signed node descriptor, for discovery.
    Descriptor,
    /// Link-level (circuit id 0): a reachability check, its proof or its
    /// answer ([`DialBack`](super::DialBack)).
    DialBack,
    /// Link-level (circuit id 0): a lookup of one node's current descriptor
    /// ([`DescriptorRequest`](super::DescriptorRequest)).
    DescriptorRequest,
    /// Link-level (circuit id 0): what the sender asks of the peer's idle
    /// padding towards it ([`parse_padding_negotiate`](super::parse_padding_negotiate)).
    PaddingNegotiate,
}

impl CellCommand {
    /// The wire byte.
    pub fn code(self) -> u8 {
        match self {
            CellCommand::Padding => 0,
            CellCommand::Create => 1,
            CellCommand::Created => 2,
            CellCommand::Relay => 3,
            CellCommand::RelayEarly => 4,
            CellCommand::Destroy => 5,
            CellCommand::Descriptor => 6,
            CellCommand::DialBack => 7,
            CellCommand::DescriptorRequest => 8,
            CellCommand::PaddingNegotiate => 9,
        }
    }

    /// The command for a wire byte.
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => CellCommand::Padding,
            1 => CellCommand::Create,
            2 => CellCommand::Created,
            3 => CellCommand::Relay,
            4 => CellCommand::RelayEarly,
            5 => CellCommand::Destroy,
            6 => CellCommand::Descriptor,
            7 => CellCommand::DialBack,
            8 => CellCommand::DescriptorRequest,
            9 => CellCommand::PaddingNegotiate,
            _ => return None,
        })
    }

    /// The command of a whole cell (its fifth byte, after the circuit id),
    /// read without parsing the rest.
    pub fn of(cell: &crate::link::Cell) -> Option<Self> {
        cell.get(4).copied().and_then(Self::from_code)
    }

    /// Whether the command belongs on circuit id 0 (the link itself).
    pub fn is_link_level(self) -> bool {
        matches!(
            self,
            CellCommand::Padding
                | CellCommand::Descriptor
                | CellCommand::DialBack
                | CellCommand::DescriptorRequest
                | CellCommand::PaddingNegotiate
        )
    }

    /// Whether the body is CGO-encrypted.
    pub fn is_relay(self) -> bool {
        matches!(self, CellCommand::Relay | CellCommand::RelayEarly)
    }
}
