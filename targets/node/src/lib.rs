//! The contract of `veil node`'s control socket and the one client of it:
//! the part of the `veil` command that other programs use.
//!
//! # Why this crate has a library
//!
//! `veil send`, `veil reply`, `veil learn-service`, `veil listen`,
//! `veil status`, `veil bench` and the integration tests in `tests/` all
//! talk to running nodes over the control
//! socket (CONTROL.md). Integration tests can only use a crate's library,
//! so the protocol's types and its client live here, and the binary
//! (`src/main.rs`, the `veil` command) uses them exactly as the tests do.
//! Only what both need is here: the node thread, the control server, the
//! local networks and the subcommands stay private to the binary, so this
//! library's public surface is the wire contract and nothing more, and the
//! crate boundary keeps the contract from depending on the node.
//!
//! # Layers
//!
//! Imports go one way, each module using only those listed after it:
//!
//! 1. [`control_client`]: connects (presenting the cookie over TCP),
//!    sends typed requests, reads typed answers, with one error type per
//!    operation;
//! 2. [`control_frame`]: the binary frames a connection may switch to
//!    (the line's JSON as a header, the data as raw bytes after it);
//!    [`control_protocol`]: the request and answer lines, the cookie
//!    line, their framing and limits;
//! 3. [`control_stream`]: one connection, over a Unix domain socket or
//!    TCP;
//! 4. [`control_address`]: where a node's control socket is (the socket
//!    and cookie files in its data directory, or a configured address);
//! 5. [`status`]: the types of the `status` answer.
//!
//! The binary's modules all sit above these (see `main.rs`).
#![forbid(unsafe_code)]
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

pub mod control_address;
pub mod control_client;
pub mod control_frame;
pub mod control_protocol;
pub mod control_stream;
pub mod status;
