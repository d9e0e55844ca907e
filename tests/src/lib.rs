//! `veil-sim`: whole veil networks in one process, deterministically.
//!
//! Nodes are real [`veil_core::node::Node`]s; the network between them is
//! simulated: a clock that jumps from one scheduled happening to the next,
//! and byte streams that can be delayed, split into arbitrary chunks,
//! tampered with, silenced or cut (middleware layers on each wire,
//! [`WireLayer`]). Everything random comes from one seed, so a run is
//! reproduced exactly by its seed — down to every byte sent.
//!
//! The cross-crate tests in `tests/` are built on this crate, and so is the
//! `in_memory_network` example.

pub mod churn;
mod conditions;
pub mod fuzzing;
mod net;
mod network;
mod profile;
mod sim_node;
mod tap;
mod wire;

pub use conditions::{StreamConditions, SEND_BUFFER};
pub use net::DialStats;
pub use network::{Sim, Tamper, ATTACKER_NETWORK};
pub use profile::{
    link_storage, message_storage, SimNodeCore, SimProfile, SIM_EVENTS, SIM_MESSAGES, SIM_MSG,
    SIM_OWN, SIM_PEERS, SIM_RELAYED, SIM_RX, SIM_TXQ,
};
pub use sim_node::{Delivered, NodeIndex, SimNode};
pub use tap::Tapped;
pub use wire::{BlackHole, Direction, WireId, WireLayer};
