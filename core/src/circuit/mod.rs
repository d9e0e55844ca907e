//! Circuits: paths of relays built hop by hop, each hop keyed by its own
//! handshake and encrypted with its own CGO layer.

mod build_timeout;
mod client_table;
mod engine;
mod flow;
mod hop_handshake;
mod liveness;
mod ready_ephemerals;
mod relay_table;
#[cfg(feature = "shaping")]
mod shaping;
#[cfg(test)]
mod shaping_tests;

pub use build_timeout::{BuildTimeDecodeError, BuildTimeEstimator};
pub use client_table::{CircuitHandle, ClientCircuit, ClientTable};
pub use engine::{
    CircuitContext, CircuitEngine, CircuitError, CircuitEvent, CircuitProtocolViolation,
    CircuitTimeouts, RelayData, RelayQuotas, RendezvousTables, MAX_INTRO_ROLES, MAX_PARKED_EXTENDS,
    MAX_PARKED_EXTENDS_PER_LINK, MAX_RENDEZVOUS_ROLES, MAX_SERVICE_HOPS, STATUS_OK, STATUS_REFUSED,
};
pub use flow::{receive_window, Flow, CIRCUIT_WINDOW, CREDIT_BATCH, MAX_CIRCUIT_WINDOW};
pub use hop_handshake::{
    respond, respond_introduction, respond_with, HopHandshakeClient, HopHandshakeError,
    HOP_MESSAGE_LEN, HOP_PROLOGUE, RENDEZVOUS_PROLOGUE, SEED_LABEL,
};
pub use liveness::{
    Liveness, Verdict, MAX_BACKOFF, MAX_RTO, MIN_PROBE_WAIT, MIN_RTO, PROBE_NONCE_LEN,
};
pub use ready_ephemerals::{ReadyEphemeral, ReadyEphemerals};
pub use relay_table::{AwaitingLink, CircuitEnd, RelayCircuit, RelayDirection, RelayTable};
#[cfg(feature = "shaping")]
pub use shaping::{IdleSlot, ShapeState, Shaping};

#[cfg(test)]
mod engine_tests;
#[cfg(test)]
mod rendezvous_tests;
