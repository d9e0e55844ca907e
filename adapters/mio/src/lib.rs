//! `veil-mio`: runs a veil node over TCP on a std host.
//!
//! The protocol core ([`veil_core::node::Node`]) never touches a socket or a
//! clock. This crate is the thin std layer around it: one [`mio::Poll`]
//! drives a TCP listener, the dialled and accepted connections, and the
//! node's timers, so one thread runs a whole node without a runtime or
//! threads of its own.
//!
//! The node decides whom to connect to (bootstrap addresses, circuits'
//! first hops, the next hop of an `EXTEND`); the runtime makes those TCP
//! connections and reports failures back. Other threads can interrupt a
//! wait with [`Runtime::waker`], and [`Runtime::shutdown`] closes every
//! link cleanly.
//!
//! [`Runtime::bind_recording`] also writes a trace of every input to the
//! node, which [`trace::replay`] runs through a fresh node to check that
//! every output matches (see [`trace`]; a trace holds the node's secret
//! key).
//!
//! Memory stays bounded under any peer behaviour: each connection holds at
//! most one unsent outgoing message and at most one read's worth of bytes
//! the node has not consumed yet; while either is pending, that direction of
//! the socket is left alone and TCP flow control pushes back on the peer.
//!
//! ```no_run
//! use veil_core::identity::Identity;
//! use veil_core::node::{Event, NodeConfig, Output};
//! use veil_mio::Runtime;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let identity = Identity::from_secret_bytes([7; 32]);
//! let mut rt = Runtime::bind(NodeConfig::default(), identity, "127.0.0.1:0".parse()?)?;
//! println!("listening on {}", rt.local_addr());
//! loop {
//!     rt.turn(None, |_node, output| {
//!         if let Output::Event(Event::LinkEstablished { peer, .. }) = output {
//!             println!("linked with {peer}");
//!         }
//!     })?;
//! }
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// An I/O error from a peer must never panic the node: outside tests every
// potential panic site is a compile error.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented,
    )
)]

pub mod capture;
mod clock;
mod connection;
mod dial;
mod error;
mod private_file;
mod runtime;
mod std_node;
mod tcp_socket;
pub mod trace;

pub use capture::CaptureError;
pub use clock::Clock;
pub use connection::ConnectionInfo;
pub use dial::DialFailure;
pub use error::{BindError, DialError, OfferServiceError, TurnError};
pub use runtime::{Runtime, RuntimeOptions};
pub use std_node::{
    build_node, StdNode, StdProfile, EVENTS, MESSAGES, MSG, OUTPUT_BUFFER, OWN, PEERS, READ_CHUNK,
    RELAYED, RX, TXQ,
};
pub use trace::TracedNode;

/// The core this crate drives, re-exported so an embedding program names
/// exactly the version the runtime was built against.
pub use veil_core;

/// The QUIC transport the runtime drives beside TCP
/// ([`Runtime::listen_quic`]), re-exported for its `QuicConfig`.
#[cfg(feature = "quic")]
pub use veil_quic;
