//! `veil-core`: the protocol core of veil.
//!
//! This crate is `no_std`, allocation-free and sans-IO. It never touches a
//! socket, a clock or an allocator: the caller feeds it bytes, link events and
//! the current time, and pulls out transmits, events and the next deadline.
//! Every table and queue has a capacity fixed when the node is built, so the
//! memory a node uses is `core::mem::size_of::<Node<…>>()` and nothing more.
//!
//! Layers, bottom up:
//! - [`time`]: the monotonic microsecond clock the caller passes in.
//! - [`noise`]: the Noise `XX` (links) and `NK` (circuit hops) handshakes.
//! - [`identity`]: Ed25519 identities, node ids and signed descriptors.
//! - [`link`]: the encrypted, framed link session between two nodes.
//! - [`node`]: the top-level state machine that owns many links.
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

pub mod identity;
pub mod link;
mod logging;
pub mod node;
pub mod noise;

pub mod capacity;
pub mod cell;
pub mod cgo;
pub mod circuit;
pub mod discovery;
pub mod message;
pub mod time;

/// Re-exported for [`node_profile!`], whose storage types are `heapless`
/// collections.
#[doc(hidden)]
pub use heapless;
