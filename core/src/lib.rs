//! `veil-core`: the protocol core of veil.
//!
//! This crate is `no_std`, allocation-free and sans-IO. It never touches a
//! socket, a clock or an allocator: the owner hands a [`node::Node`] its
//! inputs (bytes from a link, the current time, commands) through one entry
//! point, [`Node::handle`](node::Node::handle), and drains its outputs
//! (bytes for links, events, messages, connections to make, and the next
//! deadline) through one other, [`Node::poll`](node::Node::poll). Every
//! table and queue has a capacity its [`node::Profile`] fixes when the node
//! is built, so the memory a node uses is
//! `core::mem::size_of::<Node<P>>()` (plus the link table and message pool
//! the profile places as caller storage) and nothing more.
//!
//! Modules, bottom up (each uses only those above it in this list):
//! - [`time`]: the monotonic microsecond clock the caller passes in.
//! - [`capacity`]: fixed-capacity storage, named once in a profile.
//! - [`rate`]: token buckets, the per-source rate limits.
//! - [`noise`]: the Noise `XX` (links) and `NK` (circuit hops) handshakes.
//! - [`cgo`]: Counter Galois Onion, the relay-cell encryption of circuits.
//! - [`identity`]: Ed25519 identities, node ids, addresses and signed
//!   descriptors.
//! - [`link`]: the encrypted, framed link session between two nodes, which
//!   carries opaque 514-byte cells; link ids.
//! - [`cell`]: the cell format circuits use (circuit id, command, body) and
//!   the bodies of each command.
//! - [`discovery`]: the node table and path selection.
//! - [`circuit`]: circuits as a client and as a hop: hop handshakes, CGO
//!   layers, flow control, the learned build timeout.
//! - [`message`]: end-to-end messages over circuits: fragments,
//!   reassembly, acknowledgement and resending.
//! - [`node`]: the state machine that owns all of it, and its one surface.
//!
//! The architecture, with the data path of a cell from socket to socket,
//! is in `docs/architecture.md`; driving a node over your own sockets is
//! shown below.
//!
#![doc = include_str!("../../docs/embedding.md")]
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
// Input must never be able to panic the core. These lints make every
// potential panic site a compile error outside tests; the code uses
// `get`, `split_at_checked`, checked and wrapping arithmetic instead.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented,
        clippy::as_conversions,
    )
)]
#![warn(missing_docs)]

pub mod capacity;
pub mod cell;
pub mod cgo;
pub mod circuit;
pub mod discovery;
pub mod identity;
pub mod link;
mod logging;
pub mod message;
pub mod node;
pub mod noise;
#[cfg(any(feature = "cover-traffic", feature = "mixing-delays"))]
pub mod random_delay;
pub mod rate;
pub mod time;

/// Re-exported for [`node_profile!`], whose storage types are `heapless`
/// collections.
#[doc(hidden)]
pub use heapless;
