//! `veil-smoltcp`: drives a veil node over smoltcp TCP sockets.
//!
//! `no_std`, no `alloc`, no `unsafe`. The caller owns everything that takes
//! memory — the smoltcp [`Interface`], its [`Device`], the [`SocketSet`]
//! storage and every socket's receive and transmit buffers — and hands this
//! crate the handles of the TCP sockets it may use. The caller also owns the
//! clock (a veil [`Instant`]) and the entropy (the node's seed and the
//! interface's `random_seed`, from a hardware RNG on a chip).
//!
//! [`Driver::poll`] drives any [`Drive`](veil_core::node::Drive) (a
//! [`Node`](veil_core::node::Node) of any profile) and moves bytes both ways:
//!
//! - every socket the driver is not using listens on the listen port
//!   (smoltcp has no accept backlog: one listening socket per connection
//!   that may arrive at once), so peers connecting at the same moment are
//!   all accepted, up to the free sockets; a dial takes a socket that still
//!   only listens. A socket that completes a TCP handshake becomes an
//!   accepted link ([`OpenLink`](veil_core::node::OpenLink));
//! - the node's dial requests ([`Output::Dial`](veil_core::node::Output::Dial))
//!   become TCP connects; an established connect becomes a dialled link, a
//!   failed one goes back as [`DialFailed`](veil_core::node::DialFailed);
//! - received bytes go to the node ([`Receive`](veil_core::node::Receive))
//!   straight out of the socket's receive buffer; what the node does not
//!   consume stays there, so TCP flow control pushes back on the peer and no
//!   copy is kept;
//! - the node learns each socket's free transmit space
//!   ([`TransportRoom`](veil_core::node::TransportRoom)) and gives no link
//!   message larger, so a message is written whole, never split or held;
//! - `LinkClosed` closes the socket (after its `Close` frame goes out), and a
//!   socket that ends (FIN, RST, timeout) is reported as
//!   [`TransportClosed`](veil_core::node::TransportClosed).
//!
//! Link bytes are those of the std node: the core writes them, this crate
//! only carries them.
//!
//! With the `defmt` feature the driver logs what happens to its sockets
//! (accepted, connected, failed, ended) through defmt, turns on the core's
//! defmt logging (links established and closed) and derives
//! `defmt::Format` for this crate's types.
#![cfg_attr(not(test), no_std)]
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

mod driver;
mod logging;
pub mod medium;
mod profile;

pub use driver::{DialError, Driver, DriverConfig, Slot, SocketState};
pub use profile::{EmbeddedProfile, EMBEDDED_MESSAGE};

pub use smoltcp;
pub use veil_core;

use core::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use veil_core::identity::{Address, Transport};
pub use veil_core::link::MIN_TRANSMIT_BUFFER;
use veil_core::time::Instant;

/// The veil address of a TCP listener at `ip:port`, for
/// [`SetAddresses`](veil_core::node::SetAddresses) and
/// [`AddBootstrap`](veil_core::node::AddBootstrap).
pub fn tcp_address(ip: Ipv4Addr, port: u16) -> Address {
    Address {
        transport: Transport::Tcp,
        socket: SocketAddr::V4(SocketAddrV4::new(ip, port)),
    }
}

/// A veil instant as a smoltcp instant (both count microseconds).
pub fn to_smoltcp_instant(now: Instant) -> smoltcp::time::Instant {
    smoltcp::time::Instant::from_micros(i64::try_from(now.as_micros()).unwrap_or(i64::MAX))
}

/// A smoltcp instant as a veil instant (negative times become zero).
pub fn from_smoltcp_instant(at: smoltcp::time::Instant) -> Instant {
    Instant::from_micros(u64::try_from(at.total_micros()).unwrap_or(0))
}
