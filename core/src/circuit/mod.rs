//! Circuits: paths of relays built hop by hop, each hop keyed by its own
//! handshake. So far: the hop handshake. The circuit state machines, flow
//! control and messages come next (issue 3).

mod hop_handshake;

pub use hop_handshake::{
    respond, HopHandshakeClient, HopHandshakeError, HOP_MESSAGE_LEN, HOP_PROLOGUE, SEED_LABEL,
};
