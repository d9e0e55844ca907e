//! The plaintext inside a recognised relay cell: the 493-byte CGO payload.
//!
//! ```text
//! relay_command u8
//! length        u16     bytes of `data` in use, at most 490
//! data          [490]   `length` bytes, then zero padding
//! ```

use core::fmt;

use crate::cgo::PAYLOAD_LEN;

/// Bytes of data one relay cell can carry.
pub const RELAY_DATA_LEN: usize = PAYLOAD_LEN - 3;

/// What a relay message does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RelayCommand {
    /// A piece of an end-to-end message.
    Data,
    /// End-to-end acknowledgement of messages.
    Ack,
    /// Asks the hop to extend the circuit to another relay.
    Extend,
    /// The answer to `Extend`.
    Extended,
    /// Flow-control credit: the receiver can take more cells.
    Credit,
    /// Long-range padding; dropped by the hop that recognises it.
    Padding,
    /// Asks the hop that recognises it to answer with `ProbeReply` and the
    /// same data: whether each hop of a quiet circuit is still there.
    Probe,
    /// The answer to `Probe`.
    ProbeReply,
    /// A service asks the last hop of its circuit to be one of its
    /// introduction points (relay spec §13).
    EstablishIntro,
    /// The introduction point's answer to `EstablishIntro`.
    IntroEstablished,
    /// A sender's introduction, for the service an introduction point serves.
    Introduce1,
    /// The introduction, passed on to the service over its own circuit.
    Introduce2,
    /// The introduction point's answer to `Introduce1`.
    IntroduceAck,
    /// A sender asks the last hop of its circuit to wait for a service
    /// with a one-time cookie.
    EstablishRendezvous,
    /// The rendezvous point's answer to `EstablishRendezvous`.
    RendezvousEstablished,
    /// The service answers at the rendezvous point: the two circuits join.
    Rendezvous1,
    /// The service's handshake answer, passed on to the sender.
    Rendezvous2,
    /// Asks the hop that recognises it for a node's current descriptor
    /// (relay spec §2.3): `node_id [32] ‖ known_issued_at u64`.
    Lookup,
    /// The answer to `Lookup`: a signed descriptor.
    LookupAnswer,
}

impl RelayCommand {
    /// The wire byte.
    pub fn code(self) -> u8 {
        match self {
            RelayCommand::Data => 1,
            RelayCommand::Ack => 2,
            RelayCommand::Extend => 3,
            RelayCommand::Extended => 4,
            RelayCommand::Credit => 5,
            RelayCommand::Padding => 6,
            RelayCommand::Probe => 7,
            RelayCommand::ProbeReply => 8,
            RelayCommand::EstablishIntro => 9,
            RelayCommand::IntroEstablished => 10,
            RelayCommand::Introduce1 => 11,
            RelayCommand::Introduce2 => 12,
            RelayCommand::IntroduceAck => 13,
            RelayCommand::EstablishRendezvous => 14,
            RelayCommand::RendezvousEstablished => 15,
            RelayCommand::Rendezvous1 => 16,
            RelayCommand::Rendezvous2 => 17,
            RelayCommand::Lookup => 18,
            RelayCommand::LookupAnswer => 19,
        }
    }

    /// The command for a wire byte.
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => RelayCommand::Data,
            2 => RelayCommand::Ack,
            3 => RelayCommand::Extend,
            4 => RelayCommand::Extended,
            5 => RelayCommand::Credit,
            6 => RelayCommand::Padding,
            7 => RelayCommand::Probe,
            8 => RelayCommand::ProbeReply,
            9 => RelayCommand::EstablishIntro,
            10 => RelayCommand::IntroEstablished,
            11 => RelayCommand::Introduce1,
            12 => RelayCommand::Introduce2,
            13 => RelayCommand::IntroduceAck,
            14 => RelayCommand::EstablishRendezvous,
            15 => RelayCommand::RendezvousEstablished,
            16 => RelayCommand::Rendezvous1,
            17 => RelayCommand::Rendezvous2,
            18 => RelayCommand::Lookup,
            19 => RelayCommand::LookupAnswer,
            _ => return None,
        })
    }
}

/// Why a relay payload was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RelayMessageError {
    /// Unknown relay command.
    UnknownCommand(u8),
    /// `length` exceeds [`RELAY_DATA_LEN`].
    BadLength(u16),
}

impl fmt::Display for RelayMessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RelayMessageError::UnknownCommand(c) => write!(f, "relay command {c} is unknown"),
            RelayMessageError::BadLength(n) => {
                write!(f, "relay data length {n} exceeds {RELAY_DATA_LEN}")
            }
        }
    }
}

impl core::error::Error for RelayMessageError {}

/// A relay message borrowing its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayMessage<'a> {
    /// What it does.
    pub command: RelayCommand,
    /// Its data.
    pub data: &'a [u8],
}

impl<'a> RelayMessage<'a> {
    /// Parses a recognised payload.
    pub fn parse(payload: &'a [u8; PAYLOAD_LEN]) -> Result<Self, RelayMessageError> {
        let (&[code, l0, l1], data) = payload
            .split_first_chunk::<3>()
            .ok_or(RelayMessageError::BadLength(0))?;
        let command =
            RelayCommand::from_code(code).ok_or(RelayMessageError::UnknownCommand(code))?;
        let length = u16::from_be_bytes([l0, l1]);
        let data = data
            .get(..usize::from(length))
            .ok_or(RelayMessageError::BadLength(length))?;
        Ok(RelayMessage { command, data })
    }

    /// The 493-byte payload, zero-padded; `None` if the data is too long.
    pub fn emit(&self) -> Option<[u8; PAYLOAD_LEN]> {
        let length = u16::try_from(self.data.len()).ok()?;
        if self.data.len() > RELAY_DATA_LEN {
            return None;
        }
        let mut payload = [0u8; PAYLOAD_LEN];
        let [l0, l1] = length.to_be_bytes();
        let (header, data) = payload.split_first_chunk_mut::<3>()?;
        *header = [self.command.code(), l0, l1];
        data.get_mut(..self.data.len())?.copy_from_slice(self.data);
        Some(payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn lengths_beyond_the_cell_are_refused() {
        let mut payload = [0u8; PAYLOAD_LEN];
        payload[0] = 1;
        payload[1..3].copy_from_slice(&491u16.to_be_bytes());
        assert_eq!(
            RelayMessage::parse(&payload),
            Err(RelayMessageError::BadLength(491))
        );
        payload[0] = 0;
        assert_eq!(
            RelayMessage::parse(&payload),
            Err(RelayMessageError::UnknownCommand(0))
        );
        let long = [0u8; RELAY_DATA_LEN + 1];
        assert_eq!(
            RelayMessage {
                command: RelayCommand::Data,
                data: &long
            }
            .emit(),
            None
        );
    }

    proptest! {
        #[test]
        fn parse_of_emit_is_identity(code in 1u8..=17, data in proptest::collection::vec(any::<u8>(), 0..=RELAY_DATA_LEN)) {
            let message = RelayMessage { command: RelayCommand::from_code(code).unwrap(), data: &data };
            let payload = message.emit().unwrap();
            prop_assert_eq!(RelayMessage::parse(&payload).unwrap(), message);
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), PAYLOAD_LEN)) {
            let _ = RelayMessage::parse(&bytes.try_into().unwrap());
        }
    }
}
