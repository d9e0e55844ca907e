//! Cells: the fixed-size unit that links carry and circuits are made of.
//! Every cell is 514 bytes at every hop: `circuit_id u32 ‖ command u8 ‖
//! body [509]`. Specified in `docs/relay_protocol_spec.md`.

mod circuit_id;
mod command;
mod descriptor_request;
mod destroy;
mod dial_back;
mod extend;
mod handshake_body;
mod packet;
mod padding_negotiate;
mod relay_message;
mod rendezvous;

pub use circuit_id::CircuitId;
pub use command::CellCommand;
pub use descriptor_request::{DescriptorRequest, DescriptorRequestError, MAX_LOOKUP_HOPS};
pub use destroy::DestroyReason;
pub use dial_back::{DialBack, DialBackError, DialBackOutcome};
pub use extend::{ExtendAddresses, ExtendError, ExtendRepr, MAX_EXTEND_ADDRESSES};
pub use handshake_body::{
    emit_create, emit_created, emit_descriptor_body, parse_create, parse_created,
    parse_descriptor_body, HandshakeBodyError, HandshakeBytes, HANDSHAKE_TYPE_NK,
    MAX_HANDSHAKE_LEN,
};
pub use packet::{CellError, CellRepr};
pub use padding_negotiate::{
    emit_padding_negotiate, parse_padding_negotiate, PaddingNegotiateError,
};
pub use relay_message::{RelayCommand, RelayMessage, RelayMessageError, RELAY_DATA_LEN};
pub use rendezvous::{
    parse_introduce1, parse_rendezvous1, Cookie, IntroductionPayload, RendezvousDataError,
    COOKIE_LEN, MAX_INTRODUCTION_PAYLOAD, RENDEZVOUS_HANDSHAKE_LEN,
};

/// The most `RELAY_EARLY` cells a circuit may carry. `EXTEND` is only
/// accepted in `RELAY_EARLY` cells, so no circuit can have more hops than
/// this (Tor's rule; veil's default path is 3 relays plus the destination).
pub const MAX_RELAY_EARLY: u8 = 8;
