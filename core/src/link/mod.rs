//! The link layer: an authenticated, encrypted, long-lived session between
//! two nodes over any ordered byte stream (TCP, a QUIC stream, smoltcp TCP).
//!
//! The wire format is specified byte for byte in
//! `docs/transport_layer_spec.md`.

mod close;
mod config;
mod frame;
mod hello;
mod id;
mod idle_padding;
pub mod obfs;
mod rtt;
mod session;
mod stats;

pub use close::CloseReason;
pub use config::LinkConfig;
pub use frame::{
    cells_padding, read_length_prefix, write_length_prefix, Cell, Frame, FrameError, FrameKind,
    CELLS_HEADER_LEN, CELL_COUNT_LEN, CELL_LEN, KIND_LEN, LENGTH_PREFIX_LEN, MAX_MESSAGE_LEN,
    MIN_MAX_MESSAGE_LEN, TAG_LEN,
};
pub use hello::{HelloError, LinkHello, HELLO_LEN, LINK_STATIC_DOMAIN};
pub use id::LinkId;
pub use idle_padding::{LinkPadding, PaddingRange, PaddingRangeError, PaddingRequest};
pub use obfs::{
    FIRST_HEADER_LEN, MARK_LEN, MAX_CELLS_PADDING, MAX_HANDSHAKE_PADDING, REPRESENTATIVE_LEN,
};
pub use rtt::RttEstimator;
pub use session::{
    is_link_level, ClosedBy, LinkParams, LinkPhase, LinkRole, LinkSession, QueueCellError,
    CHANNEL_BINDING_LEN, CLOSE_GRACE, PING_TIMEOUT_FLOOR, PING_TIMEOUT_RTOS, STALLED_PING_INTERVAL,
};
pub use stats::LinkStats;

/// The Noise prologue of every link. Both sides mix it into the handshake
/// hash, so a peer speaking another version fails the handshake at message 2
/// instead of misreading frames later.
pub const PROLOGUE: &[u8] = b"veil link v2";

/// A transmit buffer of this many bytes can always hold the next message of
/// any link, whatever the peer's advertised limit.
pub const MIN_TRANSMIT_BUFFER: usize = LENGTH_PREFIX_LEN + MIN_MAX_MESSAGE_LEN;
