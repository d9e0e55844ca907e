//! `veil-quic`: veil links over QUIC v1.
//!
//! [`QuicTransport`] glues a quinn-proto [`Endpoint`](quinn_proto::Endpoint)
//! and its connections to veil links: one link per QUIC connection, its own
//! frames on one bidirectional stream that the dialler opens, and each
//! circuit's cells on a stream of its own, so circuits sharing a connection
//! never wait for each other (no head-of-line blocking). Like the core it is
//! sans-IO (datagrams in and out, time passed in), so it runs in any loop.
//! [`QuicSocket`] is the std driver: one mio UDP socket under one
//! transport, for a mio event loop such as veil-mio's. [`QuicLinks`] moves
//! bytes between a transport and a veil node: anything that
//! [`Drive`](veil_core::node::Drive)s, the [`Node`](veil_core::node::Node)
//! itself or a wrapper such as veil-mio's trace recorder.
//!
//! TLS 1.3 (rustls, ring) encrypts each connection; every node makes its own
//! throw-away self-signed certificate, and the certificate is deliberately
//! not what authenticates the peer: the veil link handshake inside does,
//! bound to the TLS session by a TLS exporter (channel binding).
//! `docs/quic.md` gives the design, every value visible on the wire, and the
//! security argument.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
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

mod circuit_streams;
mod config;
mod error;
mod link;
mod socket;
mod tls;
mod transport;

pub use circuit_streams::READ_AHEAD_CELLS;
pub use config::{
    QuicConfig, DEFAULT_ALPN, DEFAULT_LOOPBACK_MAX_MTU, DEFAULT_MAX_MTU, MAX_DATAGRAM,
};
pub use error::{CloseCause, ConnectError, SetupError};
pub use link::{QuicLinks, DEFAULT_READ_CHUNK};
pub use socket::{QuicSocket, SocketStats};
pub use transport::{
    CircuitStream, ConnId, HandshakeInfo, QuicEvent, QuicTransport, ReadOutcome, Role,
    StreamClosed, CHANNEL_BINDING_LABEL,
};

/// The core this crate drives, re-exported so a program names exactly the
/// version the transport was built against.
pub use veil_core;
